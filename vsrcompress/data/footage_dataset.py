"""BasicSR datasets for footage of any clip names, clip lengths and frame sizes (scripts/prepare_footage.py layout).

basicsr's video datasets assume REDS or Vimeo-90K naming (100-frame clips, fixed partitions). These read the
meta-info file written by ``prepare_footage``/``make_demo_footage`` and check every clip when they are built -
frame files or LMDB keys present, one frame size per clip, GT = LQ x scale, LQ >= 64 px, enough frames for the
window - so a bad dataset fails at startup with the clip and file named, not hours into training.
"""
import os
import random

import torch
from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils import FileClient, img2tensor, imfrombytes
from basicsr.utils.registry import DATASET_REGISTRY
from PIL import Image
from torch.utils import data

from vsrcompress.footage import layout


class _FootageClips(data.Dataset):
    """What both footage datasets share: option checks, clip validation and frame reading."""

    def __init__(self, opt: dict, min_frames: int):
        super().__init__()
        self.opt = opt
        self.name = opt.get('name', type(self).__name__)
        self.scale = opt.get('scale')
        if self.scale not in (2, 4):
            raise ValueError(f'scale: {self.scale!r} is not supported by {type(self).__name__}; allowed: 2, 4')
        for key in ('dataroot_gt', 'dataroot_lq'):
            if not opt.get(key):
                raise ValueError(f'{self.key(key)}: missing.')
        self.gt_root, self.lq_root = str(opt['dataroot_gt']), str(opt['dataroot_lq'])
        self.io_backend_opt = dict(opt.get('io_backend') or {'type': 'disk'})
        backend = self.io_backend_opt.get('type')
        if backend not in ('disk', 'lmdb'):
            raise ValueError(f"{self.key('io_backend.type')}: {backend!r} is not supported; allowed: disk, lmdb")
        self.is_lmdb = backend == 'lmdb'
        if self.is_lmdb:
            self.io_backend_opt.update(db_paths=[self.lq_root, self.gt_root], client_keys=['lq', 'gt'])
        self.file_client = None  # opened in the worker process that reads
        self.clips = layout.read_meta_info(opt.get('meta_info_file'), self.key('meta_info_file'))
        self.lq_sizes = self._check_clips(min_frames)

    def key(self, option: str) -> str:
        """Option path for error messages, e.g. ``datasets[demo_train].gt_size``."""
        return f'datasets[{self.name}].{option}'

    def _check_clips(self, min_frames: int) -> dict[str, tuple[int, int]]:
        """Validate every clip; returns clip -> LQ (h, w)."""
        if self.is_lmdb:
            shapes = {kind: layout.read_lmdb_shapes(root, self.key(f'dataroot_{kind}'))
                      for kind, root in (('gt', self.gt_root), ('lq', self.lq_root))}
        lq_sizes = {}
        for clip in self.clips:
            if clip.num_frames < min_frames:
                raise ValueError(f'{self.key("meta_info_file")}: clip {clip.name} has {clip.num_frames} frames, '
                                 f'fewer than the {min_frames} one window needs (num_frame, interval_list).')
            if self.is_lmdb:
                gt = self._lmdb_clip_sizes(clip, shapes['gt'], self.gt_root)
                lq = self._lmdb_clip_sizes(clip, shapes['lq'], self.lq_root)
            else:
                gt = self._disk_clip_size(clip, self.gt_root)
                lq = self._disk_clip_size(clip, self.lq_root)
            if gt != clip.gt_shape[:2]:
                raise ValueError(f'clip {clip.name}: GT frames are {gt[1]}x{gt[0]} but the meta info says '
                                 f'{clip.gt_shape[1]}x{clip.gt_shape[0]}.')
            if (lq[0] * self.scale, lq[1] * self.scale) != gt:
                raise ValueError(f'clip {clip.name}: GT {gt[1]}x{gt[0]} is not LQ {lq[1]}x{lq[0]} '
                                 f'x scale {self.scale}.')
            if min(lq) < layout.MIN_LQ_SIZE:
                raise ValueError(f'clip {clip.name}: LQ frames are {lq[1]}x{lq[0]}; at least {layout.MIN_LQ_SIZE} px '
                                 'per side are needed (SpyNet fails on small inputs).')
            lq_sizes[clip.name] = lq
        return lq_sizes

    def _disk_clip_size(self, clip: layout.ClipInfo, root: str) -> tuple[int, int]:
        folder = os.path.join(root, clip.name)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f'clip {clip.name}: folder {folder} does not exist.')
        size, first = None, None
        for i in range(clip.num_frames):
            path = layout.frame_path(root, clip.name, i)
            if not os.path.isfile(path):
                raise FileNotFoundError(f'clip {clip.name}: frame {path} is missing (meta info says '
                                        f'{clip.num_frames} frames).')
            with Image.open(path) as img:  # header only
                frame_size = img.size[::-1]
            if size is None:
                size, first = frame_size, path
            elif frame_size != size:
                raise ValueError(f'clip {clip.name}: mixed frame sizes: {path} is {frame_size[1]}x{frame_size[0]}, '
                                 f'{first} is {size[1]}x{size[0]}.')
        return size

    def _lmdb_clip_sizes(self, clip: layout.ClipInfo, shapes: dict, root: str) -> tuple[int, int]:
        sizes = set()
        for i in range(clip.num_frames):
            key = layout.lmdb_key(clip.name, i)
            if key not in shapes:
                raise KeyError(f'clip {clip.name}: key {key} is missing from {root}.')
            sizes.add(shapes[key][:2])
        if len(sizes) > 1:
            raise ValueError(f'clip {clip.name}: mixed frame sizes in {root}: {sorted(sizes)}')
        return sizes.pop()

    def frame_location(self, clip: str, index: int, kind: str) -> str:
        """Path on disk, or LMDB key, of one frame; ``kind`` is 'gt' or 'lq'."""
        if self.is_lmdb:
            return layout.lmdb_key(clip, index)
        return layout.frame_path(self.gt_root if kind == 'gt' else self.lq_root, clip, index)

    def read_frames(self, clip: str, indices: list[int], kind: str) -> list:
        """Frames as float32 BGR (h, w, 3) arrays in [0, 1]."""
        if self.file_client is None:
            backend_opt = dict(self.io_backend_opt)
            self.file_client = FileClient(backend_opt.pop('type'), **backend_opt)
        frames = []
        for i in indices:
            location = self.frame_location(clip, i, kind)
            content = self.file_client.get(location, kind)
            if content is None:
                raise KeyError(f'clip {clip}: {kind} frame {location} is missing from the LMDB.')
            frames.append(imfrombytes(content, float32=True))
        return frames


@DATASET_REGISTRY.register()
class FootageRecurrentDataset(_FootageClips):
    """Training windows from footage clips, for recurrent VSR (BasicVSR/IconVSR).

    Each item is a window of ``num_frame`` frames inside one clip (never across clips): a random frame step
    from ``interval_list``, an aligned random crop, flips/rotations shared by all frames, optional reversal.

    Options (``datasets.train``):
        dataroot_gt, dataroot_lq (str): Folders of clip folders (or the .lmdb folders with ``io_backend: lmdb``).
        meta_info_file (str): The split's meta info written by prepare_footage.
        io_backend (dict): ``{type: disk}`` or ``{type: lmdb}``.
        num_frame (int): Frames per window (>= 2).
        gt_size (int | None): GT crop size (LQ crop = gt_size / scale, >= 64); None keeps whole frames (all clips
            then need one size when batches hold more than one window).
        interval_list (list[int]): Frame steps to draw from (each clip needs a window at the smallest one; larger
            ones are used where they fit). Default: [1].
        random_reverse (bool): Reverse the window with probability 0.5. Default: False.
        use_hflip, use_rot (bool): basicsr ``augment`` flips and 90-degree rotations. Default: False.
        scale (int): Set by basicsr from the top-level ``scale``.

    Returns per item: ``lq`` (T, 3, h, w), ``gt`` (T, 3, h*scale, w*scale), RGB in [0, 1]; ``key``
    ``<clip>/<first frame>``.
    """

    def __init__(self, opt: dict):
        name = opt.get('name')
        num_frame = opt.get('num_frame')
        if not isinstance(num_frame, int) or num_frame < 2:
            raise ValueError(f'datasets[{name}].num_frame: needs an integer >= 2, got {num_frame!r}')
        interval_list = list(opt.get('interval_list') or [1])
        if not all(isinstance(v, int) and v >= 1 for v in interval_list):
            raise ValueError(f'datasets[{name}].interval_list: needs positive integers, got {interval_list!r}')
        super().__init__(opt, min_frames=(num_frame - 1) * min(interval_list) + 1)
        self.num_frame = num_frame
        self.interval_list = interval_list
        self.random_reverse = bool(opt.get('random_reverse', False))
        self.gt_size = opt.get('gt_size')
        if self.gt_size is not None:
            lq_patch = self.gt_size // self.scale
            if self.gt_size % self.scale or lq_patch < layout.MIN_LQ_SIZE:
                raise ValueError(f"{self.key('gt_size')}: {self.gt_size} must be a multiple of scale {self.scale} "
                                 f'giving an LQ patch >= {layout.MIN_LQ_SIZE} px.')
            for clip, (h, w) in self.lq_sizes.items():
                if min(h, w) < lq_patch:
                    raise ValueError(f"{self.key('gt_size')}: {self.gt_size} is larger than the frames of clip {clip} "
                                     f'(LQ {w}x{h}, GT {w * self.scale}x{h * self.scale}).')
        elif opt.get('batch_size_per_gpu', 1) > 1 and len(set(self.lq_sizes.values())) > 1:
            raise ValueError(f"{self.key('gt_size')}: null keeps whole frames, but the clips have different sizes "
                             f'{sorted(set(self.lq_sizes.values()))} (LQ h, w) that cannot share a batch; set a crop.')
        # every window start of every clip at frame step 1: one epoch visits each window once
        self.windows = [(clip.name, start, clip.num_frames) for clip in self.clips
                        for start in range(clip.num_frames - num_frame + 1)]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict:
        clip, start, clip_len = self.windows[index]
        interval = random.choice([v for v in self.interval_list if (self.num_frame - 1) * v < clip_len])
        span = (self.num_frame - 1) * interval
        if start + span >= clip_len:
            start = random.randint(0, clip_len - 1 - span)
        indices = list(range(start, start + span + 1, interval))
        if self.random_reverse and random.random() < 0.5:
            indices.reverse()

        img_lqs = self.read_frames(clip, indices, 'lq')
        img_gts = self.read_frames(clip, indices, 'gt')
        if self.gt_size is not None:
            img_gts, img_lqs = paired_random_crop(img_gts, img_lqs, self.gt_size, self.scale,
                                                  self.frame_location(clip, indices[0], 'gt'))
        imgs = augment(img_lqs + img_gts, self.opt.get('use_hflip', False), self.opt.get('use_rot', False))
        tensors = img2tensor(imgs)
        return {'lq': torch.stack(tensors[:self.num_frame]), 'gt': torch.stack(tensors[self.num_frame:]),
                'key': f'{clip}/{layout.frame_stem(start)}'}


@DATASET_REGISTRY.register()
class FootageTestDataset(_FootageClips):
    """Whole footage clips (or fixed windows) for validation/test in basicsr's ``VideoRecurrentModel`` way.

    One item is one clip: ``len`` is the number of clips, and ``data_info['folder']`` holds one entry per frame
    (what ``dist_validation`` counts to size its per-frame metric table). With ``num_frame`` set, each clip is
    cut into consecutive windows of that many frames (the last one aligned to the clip end, so it may overlap
    the previous one), and each window is a folder ``<clip>/<first frame>``: long clips then fit in memory.

    Options (``datasets.val``/``datasets.test_*``):
        dataroot_gt, dataroot_lq, meta_info_file, io_backend: as for FootageRecurrentDataset.
        num_frame (int | None): Window length; None evaluates whole clips. Default: None.

    Returns per item: ``lq`` (T, 3, h, w), ``gt`` (T, 3, H, W), ``folder``, ``idx`` (``<first frame>/<clip
    frames>``) and ``lq_path`` (first LQ frame).
    """

    def __init__(self, opt: dict):
        num_frame = opt.get('num_frame')
        if num_frame is not None and (not isinstance(num_frame, int) or num_frame < 2):
            raise ValueError(f"datasets[{opt.get('name')}].num_frame: needs null (whole clips) or an integer >= 2, "
                             f'got {num_frame!r}')
        super().__init__(opt, min_frames=num_frame or 2)
        self.items = []  # (folder, clip, first frame, window length, clip length)
        for clip in self.clips:
            if num_frame is None:
                self.items.append((clip.name, clip.name, 0, clip.num_frames, clip.num_frames))
                continue
            starts = list(range(0, clip.num_frames - num_frame + 1, num_frame))
            if starts[-1] + num_frame < clip.num_frames:
                starts.append(clip.num_frames - num_frame)
            self.items.extend((f'{clip.name}/{layout.frame_stem(s)}', clip.name, s, num_frame, clip.num_frames)
                              for s in starts)
        self.data_info = {'folder': [], 'idx': [], 'lq_path': [], 'gt_path': []}
        for folder, clip, start, length, clip_frames in self.items:
            for i in range(start, start + length):
                self.data_info['folder'].append(folder)
                self.data_info['idx'].append(f'{i}/{clip_frames}')
                self.data_info['lq_path'].append(self.frame_location(clip, i, 'lq'))
                self.data_info['gt_path'].append(self.frame_location(clip, i, 'gt'))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        folder, clip, start, length, clip_frames = self.items[index]
        indices = list(range(start, start + length))
        return {'lq': torch.stack(img2tensor(self.read_frames(clip, indices, 'lq'))),
                'gt': torch.stack(img2tensor(self.read_frames(clip, indices, 'gt'))),
                'folder': folder, 'idx': f'{start}/{clip_frames}',
                'lq_path': self.frame_location(clip, start, 'lq')}
