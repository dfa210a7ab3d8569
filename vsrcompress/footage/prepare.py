"""Turn video files and frame folders into a BasicSR training set: GT/LQ clips, train/val split, meta info, LMDB."""
import math
import os

import numpy as np
from tqdm import tqdm

from vsrcompress.cli import refuse_output_over_inputs
from vsrcompress.footage import layout
from vsrcompress.footage.degradations import ClipDegradation, DegradationConfig
from vsrcompress.footage.geometry import GTGeometry
from vsrcompress.footage.sources import FrameSource, open_source
from vsrcompress.footage.writer import ClipWriter, FootageWriter, check_output


def clip_rng(seed: int, clip_index: int) -> np.random.Generator:
    """The random stream of one clip: independent of how many draws earlier clips made."""
    return np.random.default_rng([seed, clip_index])


def choose_val_clips(num_clips: int, val_ratio: float, seed: int) -> set[int]:
    """Indices of the clips that go to validation: round(ratio x clips), at least one, never all."""
    if val_ratio <= 0:
        return set()
    num_val = max(1, round(val_ratio * num_clips))
    if num_val >= num_clips:
        raise ValueError(f'--val-ratio {val_ratio}: {num_clips} clip(s) leave none for training; use more footage, '
                         'a shorter --clip-length or a smaller --val-ratio.')
    return {int(i) for i in np.random.default_rng(seed).choice(num_clips, num_val, replace=False)}


def _usable_frames(source: FrameSource, stride: int, max_frames: int | None) -> int:
    count = math.ceil(source.num_frames / stride)
    return count if max_frames is None else min(count, max_frames)


def _clip_bases(paths: list[str]) -> list[str]:
    """A clip-name prefix per input: its file/folder name, made unique with the input position when needed."""
    stems = [layout.safe_clip_name(os.path.splitext(os.path.basename(os.path.normpath(p)))[0]) for p in paths]
    return [stem if stems.count(stem) == 1 else f'{stem}_{i}' for i, stem in enumerate(stems)]


def prepare_footage(inputs: list[str], output: str, scale: int = 4, clip_length: int = 30, val_ratio: float = 0.1,
                    val_inputs: list[str] | None = None, max_frames: int | None = None, stride: int = 1,
                    crop: tuple[int, int, int, int] | None = None, resize: tuple[int, int] | None = None,
                    lmdb: bool = False, degradation: DegradationConfig | None = None, seed: int = 0,
                    overwrite: bool = False, progress: bool = True) -> dict:
    """Write a footage dataset (see ``layout.py``) from video files and frame folders.

    Every input is validated (readable, non-empty, one frame size, LQ >= 64 px) before any frame is written, and
    ``output`` may neither hold an input nor lie inside an input folder (the dataset would be read as frames).

    Args:
        inputs: Video files or folders of frame images, in order.
        output: Dataset folder to create.
        scale: GT / LQ size ratio, 2 or 4.
        clip_length: Frames per clip; 0 makes each input one clip. Frames left over at the end of an input are
            dropped (counted in footage.json).
        val_ratio: Fraction of the clips, drawn with ``seed``, that form the validation split.
        val_inputs: Inputs whose clips form the validation split instead (a holdout by camera/video).
        max_frames: Use at most the first this many frames (after ``stride``) of each input; later frames are
            never decoded, so a file damaged after them still gives them.
        stride: Keep every ``stride``-th source frame.
        crop: GT crop (x, y, w, h) in source pixels, applied first.
        resize: GT size (w, h) after the crop; one of them 0 keeps the aspect ratio.
        lmdb: Also write LMDBs (basicsr format) next to the frame folders.
        degradation: LQ degradation ranges; None or an empty config gives clean bicubic LQ.
        seed: Seed of the per-clip degradations and of the validation draw.
        overwrite: Replace an existing footage dataset at ``output``.
        progress: Show progress bars.

    Returns:
        The footage.json record.
    """
    inputs = [str(p) for p in inputs]
    val_inputs = [str(p) for p in (val_inputs or [])]
    if not inputs:
        raise ValueError('--input: give at least one video file or frame folder.')
    if clip_length < 0 or (0 < clip_length < 2):
        raise ValueError(f'--clip-length: must be 0 (one clip per input) or >= 2, got {clip_length}')
    if not 0 <= val_ratio < 1:
        raise ValueError(f'--val-ratio: must be in [0, 1), got {val_ratio}')
    if max_frames is not None and max_frames < 2:
        raise ValueError(f'--max-frames: must be >= 2, got {max_frames}')
    if stride < 1:
        raise ValueError(f'--stride: must be >= 1, got {stride}')
    normalized = [os.path.realpath(p) for p in inputs]
    unknown = [p for p in val_inputs if os.path.realpath(p) not in normalized]
    if unknown:
        raise ValueError(f'--val-inputs: {unknown} are not among the --input paths.')
    if val_inputs and len(val_inputs) == len(inputs):
        raise ValueError('--val-inputs: every input is a validation input; nothing is left for training.')
    degradation = degradation or DegradationConfig()
    geometry = GTGeometry(scale, crop, resize)
    refuse_output_over_inputs([output], inputs, output_is_folder=True)
    check_output(output, overwrite)

    sources = [open_source(p) for p in inputs]
    for source in sources:
        geometry.check_source(source.path, source.width, source.height)
        usable = _usable_frames(source, stride, max_frames)
        if usable < max(clip_length, 2):
            raise ValueError(f'--input {source.path}: {usable} usable frames (after --stride/--max-frames), fewer '
                             f'than --clip-length {clip_length}; lower --clip-length or use 0 for one clip per input.')

    val_set = {os.path.realpath(p) for p in val_inputs}
    if not val_set:  # fail now, not after processing, when the split is impossible
        choose_val_clips(sum(_usable_frames(s, stride, max_frames) // clip_length if clip_length else 1
                             for s in sources), val_ratio, seed)
    clip_inputs, dropped = [], {}
    with FootageWriter(output, scale, overwrite, lmdb, progress) as writer:
        total = sum(_usable_frames(s, stride, max_frames) for s in sources)
        with tqdm(total=total, unit='frame', desc='prepare footage', disable=not progress) as bar:
            for source, base in zip(sources, _clip_bases(inputs)):
                dropped[source.path] = _write_input(writer, source, base, geometry, degradation, clip_length, stride,
                                                    max_frames, seed, clip_inputs, bar)
        names = [name for name, _ in clip_inputs]
        if val_set:
            splits = {name: 'val' if os.path.realpath(path) in val_set else 'train' for name, path in clip_inputs}
        else:
            val_idx = choose_val_clips(len(names), val_ratio, seed)
            splits = {name: 'val' if i in val_idx else 'train' for i, name in enumerate(names)}
        record = {'created_by': 'vsrcompress.footage.prepare_footage', 'inputs': inputs, 'seed': seed,
                  'options': {'clip_length': clip_length, 'val_ratio': val_ratio, 'val_inputs': val_inputs,
                              'max_frames': max_frames, 'stride': stride, 'crop': list(crop) if crop else None,
                              'resize': list(resize) if resize else None},
                  'degradation': degradation.as_dict(), 'dropped_frames': dropped}
        return writer.commit(splits, record)


def _write_input(writer: FootageWriter, source: FrameSource, base: str, geometry: GTGeometry,
                 degradation: DegradationConfig, clip_length: int, stride: int, max_frames: int | None, seed: int,
                 clip_inputs: list, bar: tqdm) -> int:
    """Write the clips of one input; returns how many trailing frames did not fill a clip."""
    clip, first = None, 0
    for index, frame in source.frames(stride, max_frames):
        if clip is None:
            name = base if clip_length == 0 else f'{base}_{index:06d}'
            rng = clip_rng(seed, len(clip_inputs))
            clip_deg = degradation.sample(rng)
            clip, first = writer.start_clip(name, clip_deg, rng), index
        clip.add(geometry.apply(frame))
        bar.update(1)
        if clip.num_gt == clip_length:
            _close_clip(writer, clip, clip_deg, source, first, index, stride, clip_inputs)
            clip = None
    if clip is not None and clip_length == 0:
        _close_clip(writer, clip, clip_deg, source, first, index, stride, clip_inputs)
    elif clip is not None:
        clip.discard()
        return clip.num_gt
    return 0


def _close_clip(writer: FootageWriter, clip: ClipWriter, clip_deg: ClipDegradation, source: FrameSource, first: int,
                last: int, stride: int, clip_inputs: list) -> None:
    writer.add_clip(clip.close(), clip_deg, {'input': source.path, 'first_frame': first, 'last_frame': last,
                                             'stride': stride})
    clip_inputs.append((clip.name, source.path))
