"""Inputs the speed benchmarks make themselves: a panning texture (real motion for SpyNet, unlike noise) and that
clip as a video file or frame folder, written through ``FrameSink`` so that a failed write stops the benchmark
instead of timing a short input.
"""
import numpy as np
import torch
from torch.nn import functional as F

from vsrcompress.inference.frame_sink import FrameSink


def moving_clip(frames: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A smooth random texture panning diagonally, (1, frames, 3, height, width) in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, height // 6 + frames, width // 6 + frames, generator=gen)
    base = F.interpolate(base, size=(height + 3 * frames, width + 3 * frames), mode='bicubic').clamp(0, 1)
    return torch.stack([base[0, :, 2 * t:2 * t + height, 3 * t:3 * t + width] for t in range(frames)])[None]


def write_clip(clip: torch.Tensor, path: str, fps: float = 25.0) -> str:
    """Write a (1, T, 3, H, W) RGB clip in [0, 1] to ``path``: a video file, or a PNG folder for a path without
    extension; every write checked. Returns ``path``."""
    frames = (clip[0].permute(0, 2, 3, 1).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)[..., ::-1]  # BGR
    sink = FrameSink(path, fps, frames.shape[2], frames.shape[1])
    try:
        for frame in frames:
            sink.write(np.ascontiguousarray(frame))
        return sink.finish()
    except BaseException:
        sink.abort()
        raise
