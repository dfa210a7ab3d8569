"""How a source frame becomes a GT frame: optional crop, optional resize, then a crop to a multiple of the scale."""
from dataclasses import dataclass

import cv2
import numpy as np

from vsrcompress.footage.layout import MIN_LQ_SIZE


@dataclass(frozen=True)
class GTGeometry:
    """Crop (x, y, w, h in source pixels) then resize (w, h; one may be 0 to keep the aspect ratio) then mod-crop.

    The mod-crop removes the right/bottom remainder so that GT = LQ x scale exactly, as basicsr's ``mod_crop``.
    """

    scale: int
    crop: tuple[int, int, int, int] | None = None
    resize: tuple[int, int] | None = None

    def __post_init__(self):
        if self.scale not in (2, 4):
            raise ValueError(f'--scale: {self.scale!r} is not supported; allowed: 2, 4')
        if self.crop is not None:
            x, y, w, h = self.crop
            if x < 0 or y < 0 or w <= 0 or h <= 0:
                raise ValueError(f'--crop: X Y W H needs X, Y >= 0 and W, H > 0, got {list(self.crop)}')
        if self.resize is not None:
            w, h = self.resize
            if w < 0 or h < 0 or (w == 0 and h == 0):
                raise ValueError(f'--resize: W H needs non-negative sizes, at most one 0, got {list(self.resize)}')

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """(w, h) after crop and resize, before the mod-crop."""
        if self.crop is not None:
            width, height = self.crop[2], self.crop[3]
        if self.resize is not None:
            w, h = self.resize
            width, height = (w or round(width * h / height)), (h or round(height * w / width))
        return width, height

    def gt_size(self, width: int, height: int) -> tuple[int, int]:
        """(w, h) of GT frames made from source frames of ``width`` x ``height``."""
        width, height = self.resized_size(width, height)
        return width - width % self.scale, height - height % self.scale

    def check_source(self, name: str, width: int, height: int) -> None:
        """Raise before processing when the crop leaves the frame or the LQ frames would be too small."""
        if self.crop is not None:
            x, y, w, h = self.crop
            if x + w > width or y + h > height:
                raise ValueError(f'--crop {x} {y} {w} {h}: leaves the {width}x{height} frames of {name}.')
        gt_w, gt_h = self.gt_size(width, height)
        lq_w, lq_h = gt_w // self.scale, gt_h // self.scale
        if min(lq_w, lq_h) < MIN_LQ_SIZE:
            raise ValueError(f'{name}: {width}x{height} frames give GT {gt_w}x{gt_h} and LQ {lq_w}x{lq_h} at x'
                             f'{self.scale}; LQ frames need at least {MIN_LQ_SIZE} px per side (SpyNet). Use larger '
                             'frames, a larger --crop/--resize, or --scale 2.')

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """Source frame (H, W, 3) -> GT frame, contiguous uint8."""
        if self.crop is not None:
            x, y, w, h = self.crop
            frame = frame[y:y + h, x:x + w]
        if self.resize is not None:
            w, h = self.resized_size(frame.shape[1], frame.shape[0])
            if (w, h) != (frame.shape[1], frame.shape[0]):
                shrink = w * h < frame.shape[0] * frame.shape[1]
                frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
        h, w = frame.shape[:2]
        return np.ascontiguousarray(frame[:h - h % self.scale, :w - w % self.scale])
