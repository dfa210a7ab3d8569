"""The on-disk layout of a prepared footage dataset: the one place where writer and datasets agree on names.

::

    DIR/
      footage.json              how the data was made: inputs, options, seed, per-clip degradation
      meta_info_train.txt       one line per clip: ``<clip> <num_frames> (<H>,<W>,3)`` (GT shape, REDS style)
      meta_info_val.txt
      train/GT/<clip>/00000000.png ...    ground truth
      train/LQ/<clip>/00000000.png ...    low quality, GT size / scale
      train/GT.lmdb, train/LQ.lmdb        optional (--lmdb): keys ``<clip>/00000000``, basicsr's LMDB format
      val/...                             same for the validation split
"""
import os
import re
from dataclasses import dataclass

FRAME_EXT = '.png'
RECORD_FILE = 'footage.json'
SPLITS = ('train', 'val')
GT_DIR, LQ_DIR = 'GT', 'LQ'
LMDB_SUFFIX = '.lmdb'
LMDB_META_FILE = 'meta_info.txt'  # written by basicsr's LmdbMaker inside every .lmdb folder
MIN_LQ_SIZE = 64  # SpyNet fails at 32 px or less; 64 keeps a margin for crops and its pyramid
CLIP_NAME_PATTERN = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')  # ASCII (LMDB keys), no spaces or slashes


@dataclass(frozen=True)
class ClipInfo:
    """One clip as a meta-info line describes it."""

    name: str
    num_frames: int
    gt_shape: tuple[int, int, int]  # (H, W, C) of its GT frames

    def meta_line(self) -> str:
        h, w, c = self.gt_shape
        return f'{self.name} {self.num_frames} ({h},{w},{c})'


def frame_stem(index: int) -> str:
    """Frame file name without extension; also the frame part of an LMDB key."""
    return f'{index:08d}'


def frame_path(root: str, clip: str, index: int) -> str:
    return os.path.join(root, clip, frame_stem(index) + FRAME_EXT)


def lmdb_key(clip: str, index: int) -> str:
    return f'{clip}/{frame_stem(index)}'


def split_dir(root: str, split: str, kind: str) -> str:
    """``DIR/<split>/<GT|LQ>``: the folder of clip folders (append LMDB_SUFFIX for the LMDB)."""
    return os.path.join(root, split, kind)


def meta_info_path(root: str, split: str) -> str:
    return os.path.join(root, f'meta_info_{split}.txt')


def safe_clip_name(text: str) -> str:
    """Turn an input name into a clip name that is a valid folder name and ASCII LMDB key."""
    name = re.sub(r'[^A-Za-z0-9_.-]+', '_', text).strip('._-')
    return name or 'clip'


def write_meta_info(path: str, clips: list[ClipInfo]) -> None:
    with open(path, 'w', encoding='ascii') as f:
        f.writelines(clip.meta_line() + '\n' for clip in clips)


def read_meta_info(path: str, option_key: str = 'meta_info_file') -> list[ClipInfo]:
    """Parse a meta-info file, naming the file and line of anything malformed."""
    if not path:
        raise ValueError(f'{option_key}: missing; footage datasets need the meta info file written by '
                         'scripts/prepare_footage.py (DIR/meta_info_train.txt or DIR/meta_info_val.txt).')
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{option_key}: {path} does not exist (scripts/prepare_footage.py writes it).')
    clips = []
    with open(path, encoding='utf-8') as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            clips.append(_parse_meta_line(line, f'{option_key}: {path}, line {line_no}'))
    if not clips:
        raise ValueError(f'{option_key}: {path} lists no clips.')
    names = [clip.name for clip in clips]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f'{option_key}: {path} lists clips more than once: {duplicates}')
    return clips


def _parse_meta_line(line: str, where: str) -> ClipInfo:
    fields = line.split()
    shape = re.fullmatch(r'\((\d+),(\d+),(\d+)\)', fields[2]) if len(fields) == 3 else None
    if shape is None or not fields[1].isdigit():
        raise ValueError(f"{where}: expected '<clip> <num_frames> (<H>,<W>,<C>)', got {line.strip()!r}")
    if not CLIP_NAME_PATTERN.match(fields[0]):
        raise ValueError(f'{where}: clip name {fields[0]!r} must be ASCII letters, digits, _ . - (no spaces or /).')
    h, w, c = (int(v) for v in shape.groups())
    return ClipInfo(fields[0], int(fields[1]), (h, w, c))


def read_lmdb_shapes(lmdb_path: str, option_key: str) -> dict[str, tuple[int, int, int]]:
    """Key -> (H, W, C) from the meta_info.txt that basicsr's LmdbMaker writes inside an LMDB folder."""
    meta = os.path.join(lmdb_path, LMDB_META_FILE)
    if not os.path.isfile(os.path.join(lmdb_path, 'data.mdb')):
        raise FileNotFoundError(f'{option_key}: {lmdb_path} is not an LMDB folder (no data.mdb).')
    if not os.path.isfile(meta):
        raise FileNotFoundError(f'{option_key}: {meta} is missing; it lists the keys and shapes of the LMDB.')
    shapes = {}
    with open(meta, encoding='ascii') as f:
        for line_no, line in enumerate(f, 1):
            match = re.fullmatch(r'(\S+)\.png \((\d+),(\d+),(\d+)\) \d+', line.strip())
            if match is None:
                raise ValueError(f'{option_key}: {meta}, line {line_no}: unexpected entry {line.strip()!r}')
            shapes[match.group(1)] = tuple(int(v) for v in match.groups()[1:])
    return shapes
