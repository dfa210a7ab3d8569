"""Writes a footage dataset (layout in ``layout.py``) so that a half-written one is never taken for a complete one.

Everything goes into a hidden temporary folder next to the output; only when every clip, meta-info file, LMDB
and the footage.json record are written is it renamed to the output path. Any error removes the temporary
folder. An existing output is replaced only with ``overwrite`` and only if it is a footage dataset (it holds
footage.json) or empty, so a mistyped ``--output`` cannot delete unrelated files.
"""
import json
import os
import shutil
import tempfile
from dataclasses import asdict

import cv2
import numpy as np
from basicsr.utils.lmdb_util import LmdbMaker
from tqdm import tqdm

from vsrcompress.atomic_files import make_temporary
from vsrcompress.footage import layout
from vsrcompress.footage.degradations import ClipDegradation, LQClipMaker

PNG_COMPRESSION = 1  # fast to write and read; the level basicsr's LMDB tools use


def check_output(output: str, overwrite: bool) -> None:
    """Refuse an existing output unless overwriting a footage dataset (or an empty folder) was asked for."""
    if not os.path.lexists(output):
        return
    if not overwrite:
        raise FileExistsError(f'--output {output}: already exists; pass --overwrite to replace it.')
    if not os.path.isdir(output) or os.path.islink(output):
        raise FileExistsError(f'--output {output}: exists and is not a folder; it will not be replaced.')
    if os.listdir(output) and not os.path.isfile(os.path.join(output, layout.RECORD_FILE)):
        raise FileExistsError(f'--output {output}: is a non-empty folder without {layout.RECORD_FILE}, so not a '
                              'footage dataset; --overwrite only replaces footage datasets. Choose another --output.')


def _imwrite(path: str, img: np.ndarray) -> None:
    if not cv2.imwrite(path, img, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION]):
        raise OSError(f'could not write {path}')


class ClipWriter:
    """Writes the GT and LQ frames of one clip as they arrive."""

    def __init__(self, root: str, name: str, scale: int, degradation: ClipDegradation, rng: np.random.Generator):
        self.name = name
        self.gt_dir = os.path.join(root, layout.GT_DIR, name)
        self.lq_dir = os.path.join(root, layout.LQ_DIR, name)
        os.makedirs(self.gt_dir)
        os.makedirs(self.lq_dir)
        self.lq_maker = LQClipMaker(scale, degradation, rng, work_dir=root)
        self.gt_shape = None
        self.num_gt = 0
        self.num_lq = 0

    def add(self, gt: np.ndarray) -> None:
        if self.gt_shape is None:
            self.gt_shape = gt.shape
        elif gt.shape != self.gt_shape:
            raise ValueError(f'clip {self.name}: frame {self.num_gt} is {gt.shape}, earlier frames {self.gt_shape}.')
        _imwrite(os.path.join(self.gt_dir, layout.frame_stem(self.num_gt) + layout.FRAME_EXT), gt)
        self.num_gt += 1
        self._write_lq(self.lq_maker.add(gt))

    def _write_lq(self, frames) -> None:
        for lq in frames:
            _imwrite(os.path.join(self.lq_dir, layout.frame_stem(self.num_lq) + layout.FRAME_EXT), lq)
            self.num_lq += 1

    def close(self) -> layout.ClipInfo:
        self._write_lq(self.lq_maker.finish())
        if self.num_lq != self.num_gt:
            raise RuntimeError(f'clip {self.name}: wrote {self.num_gt} GT but {self.num_lq} LQ frames.')
        return layout.ClipInfo(self.name, self.num_gt, tuple(self.gt_shape))

    def discard(self) -> None:
        """Drop an incomplete clip (a video codec's temporary file goes with the staging folder)."""
        shutil.rmtree(self.gt_dir)
        shutil.rmtree(self.lq_dir)


class FootageWriter:
    """Context manager that collects clips in a temporary folder and publishes them with ``commit``.

    Args:
        output: Dataset folder to create.
        scale: GT / LQ size ratio.
        overwrite: Replace an existing footage dataset at ``output``.
        make_lmdb: Also write GT/LQ LMDBs of each split with basicsr's ``LmdbMaker``.
        progress: Show tqdm progress bars.
    """

    def __init__(self, output: str, scale: int, overwrite: bool = False, make_lmdb: bool = False,
                 progress: bool = True):
        check_output(output, overwrite)
        self.output = os.path.abspath(output)
        self.scale = scale
        self.overwrite = overwrite
        self.make_lmdb = make_lmdb
        self.progress = progress
        self.tmp = None
        self.clips: dict[str, dict] = {}

    def __enter__(self) -> 'FootageWriter':
        parent = os.path.dirname(self.output)
        try:
            os.makedirs(parent, exist_ok=True)
            self.tmp = make_temporary(parent, f'.{os.path.basename(self.output)}.partial-', directory=True)
        except OSError as err:  # read-only place, a file where a folder should be, ...: say which option is wrong
            raise OSError(f'--output {self.output}: cannot create the dataset there: {err}') from err
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o777 & ~umask)  # mkdtemp makes it private; the published folder should not be
        self._staging = os.path.join(self.tmp, '_clips')
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.tmp is not None and os.path.isdir(self.tmp):
            shutil.rmtree(self.tmp)

    def start_clip(self, name: str, degradation: ClipDegradation, rng: np.random.Generator) -> ClipWriter:
        if not layout.CLIP_NAME_PATTERN.match(name):
            raise ValueError(f'clip name {name!r}: use ASCII letters, digits, _ . - only.')
        if name in self.clips:
            raise ValueError(f'clip name {name!r} is used twice.')
        return ClipWriter(self._staging, name, self.scale, degradation, rng)

    def add_clip(self, info: layout.ClipInfo, degradation: ClipDegradation, source: dict) -> None:
        """Register a closed clip with what it was made from (recorded in footage.json)."""
        h, w, c = info.gt_shape
        self.clips[info.name] = {'info': info, 'record': {
            'frames': info.num_frames, 'gt_size': [h, w], 'lq_size': [h // self.scale, w // self.scale],
            'source': source, 'degradation': asdict(degradation)}}

    def commit(self, splits: dict[str, str], record: dict) -> dict:
        """Move clips into their splits, write meta info, LMDBs and footage.json, then publish the folder.

        Args:
            splits: Clip name -> 'train' or 'val', for every added clip.
            record: Settings to store in footage.json (inputs, options, seed).

        Returns:
            The footage.json content.
        """
        if sorted(splits) != sorted(self.clips):
            raise ValueError('every clip needs exactly one split.')
        by_split = {split: [n for n in self.clips if splits[n] == split] for split in layout.SPLITS}
        for split, names in by_split.items():
            if not names:
                continue
            for kind in (layout.GT_DIR, layout.LQ_DIR):
                target = layout.split_dir(self.tmp, split, kind)
                os.makedirs(target)
                for name in names:
                    os.rename(os.path.join(self._staging, kind, name), os.path.join(target, name))
            layout.write_meta_info(layout.meta_info_path(self.tmp, split), [self.clips[n]['info'] for n in names])
            if self.make_lmdb:
                self._write_lmdbs(split, names)
        shutil.rmtree(self._staging)
        full_record = {**record, 'scale': self.scale, 'lmdb': self.make_lmdb,
                       'splits': {split: names for split, names in by_split.items()},
                       'clips': {name: {'split': splits[name], **clip['record']} for name, clip in self.clips.items()}}
        text = json.dumps(full_record, indent=2)
        with open(os.path.join(self.tmp, layout.RECORD_FILE), 'w', encoding='utf-8') as f:
            f.write(text)
        self._publish()
        return json.loads(text)  # what a later reader of footage.json sees (tuples become lists)

    def _write_lmdbs(self, split: str, names: list[str]) -> None:
        for kind in (layout.GT_DIR, layout.LQ_DIR):
            root = layout.split_dir(self.tmp, split, kind)
            frames = [(name, i) for name in names for i in range(self.clips[name]['info'].num_frames)]
            size = sum(os.path.getsize(layout.frame_path(root, n, i)) for n, i in frames)
            maker = LmdbMaker(root + layout.LMDB_SUFFIX, map_size=2 * size + (64 << 20), compress_level=PNG_COMPRESSION)
            for name, i in tqdm(frames, desc=f'LMDB {split}/{kind}', unit='frame', disable=not self.progress):
                h, w, c = self.clips[name]['info'].gt_shape
                if kind == layout.LQ_DIR:
                    h, w = h // self.scale, w // self.scale
                with open(layout.frame_path(root, name, i), 'rb') as f:
                    maker.put(f.read(), layout.lmdb_key(name, i), (h, w, c))
            maker.close()

    def _publish(self) -> None:
        old = None
        if os.path.lexists(self.output):
            check_output(self.output, self.overwrite)  # it may have appeared while we worked
            old = tempfile.mkdtemp(prefix=f'.{os.path.basename(self.output)}.old-', dir=os.path.dirname(self.output))
            os.rename(self.output, os.path.join(old, 'data'))
        os.rename(self.tmp, self.output)
        self.tmp = None
        if old is not None:
            shutil.rmtree(old)
