"""Windows of consecutive LQ (and GT) frames from a prepared footage dataset, as network inputs.

The deployment tools need real frames where random ones mislead: INT8 ranges are calibrated on footage, and
uniform noise drives activations past them. Frames are read with the footage test dataset (same checks and
reading as training/validation), from the layout ``vsrcompress.footage.layout`` describes.
"""
import os
from typing import TYPE_CHECKING

import torch

from vsrcompress.footage import layout

if TYPE_CHECKING:
    from vsrcompress.data.footage_dataset import FootageTestDataset


def footage_options(root: str, split: str, scale: int) -> dict:
    """The dataset options (paths, name, disk I/O) of one split of a footage dataset, for our footage datasets."""
    if split not in layout.SPLITS:
        raise ValueError(f'split: {split!r} is not a footage split; allowed: {list(layout.SPLITS)}')
    if not os.path.isdir(root):
        raise FileNotFoundError(f'clips: {root} is not a folder (a footage dataset from scripts/prepare_footage.py).')
    return {'name': f'{os.path.basename(os.path.normpath(root))}_{split}', 'scale': scale,
            'dataroot_gt': layout.split_dir(root, split, layout.GT_DIR),
            'dataroot_lq': layout.split_dir(root, split, layout.LQ_DIR),
            'meta_info_file': layout.meta_info_path(root, split), 'io_backend': {'type': 'disk'}}


def footage_test_dataset(root: str, split: str, scale: int, frames: int | None = None) -> 'FootageTestDataset':
    """One split of a footage dataset as ``FootageTestDataset``: whole clips, or consecutive ``frames``-frame
    windows."""
    from vsrcompress.data.footage_dataset import FootageTestDataset  # a basicsr dataset: imported when used

    opt = footage_options(root, split, scale)
    return FootageTestDataset(opt if frames is None else {**opt, 'num_frame': frames})


def read_footage_windows(root: str, frames: int, scale: int, split: str = 'train', max_windows: int | None = None
                         ) -> list[dict[str, torch.Tensor]]:
    """Consecutive windows of ``frames`` frames from every clip of one split, in clip order.

    Args:
        root: Footage dataset folder (``scripts/prepare_footage.py`` or ``make_demo_footage.py`` output).
        frames: Frames per window.
        scale: The network's scale, which must match the dataset's GT/LQ ratio.
        split: ``train`` or ``val``.
        max_windows: Stop after this many windows (None: all).

    Returns:
        ``[{'lq': (1, frames, 3, h, w), 'gt': (1, frames, 3, h * scale, w * scale)}, ...]``, RGB in [0, 1].
    """
    dataset = footage_test_dataset(root, split, scale, frames)
    count = len(dataset) if max_windows is None else min(max_windows, len(dataset))
    return [{'lq': item['lq'][None], 'gt': item['gt'][None]} for item in (dataset[i] for i in range(count))]
