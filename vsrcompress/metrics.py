"""PSNR/SSIM of a network on whole validation clips, frame by frame, and the bicubic floor it must beat.

The numbers are BasicSR's (``calculate_psnr``/``calculate_ssim`` on 8-bit RGB, no border crop, clip means averaged
over clips), as in the training logs, so a report, a benchmark and a training run can be compared; the per-frame
curves show how error builds up along the recurrence. basicsr is imported when measuring, not with this module.
"""
import math
import statistics

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def unit_range_psnr(reference: np.ndarray | torch.Tensor, other: np.ndarray | torch.Tensor) -> float:
    """PSNR in dB between two float signals of data range 1 (inf when identical), in float64: how closely an engine
    or a quantized network reproduces a reference output, rather than BasicSR's 8-bit image PSNR below."""
    def as_array(x):
        return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)
    mse = float(np.mean((as_array(reference) - as_array(other)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


class BicubicUpsampler(nn.Module):
    """Bicubic upsampling of every frame of a (n, t, c, h, w) clip: the reference a VSR network must beat."""

    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        n, t, c, h, w = clip.shape
        out = F.interpolate(clip.view(n * t, c, h, w), scale_factor=self.scale, mode='bicubic', align_corners=False)
        return out.clamp(0, 1).view(n, t, c, h * self.scale, w * self.scale)


@torch.no_grad()
def clip_quality(net: nn.Module, dataset, max_clips: int | None = None) -> dict:
    """Per-frame PSNR/SSIM on the first ``max_clips`` clips of a ``FootageTestDataset`` (all by default).

    Returns ``{'psnr', 'ssim'}`` (mean of clip means), ``per_frame``: ``{clip: {'psnr': [...], 'ssim': [...]}}`` and
    ``psnr_per_clip``: ``{clip: mean PSNR}``.
    """
    from basicsr.metrics import calculate_psnr, calculate_ssim
    from basicsr.utils import tensor2img

    was_training = net.training
    device = next(net.parameters(), torch.empty(0)).device  # bicubic has no parameters: CPU
    net.eval()
    per_frame = {}
    try:
        for index in range(min(len(dataset), max_clips or len(dataset))):
            item = dataset[index]
            sr = net(item['lq'].unsqueeze(0).to(device))[0].cpu()
            frames = [(tensor2img(sr[t]), tensor2img(item['gt'][t])) for t in range(sr.shape[0])]
            per_frame[item['folder']] = {'psnr': [float(calculate_psnr(a, b, 0)) for a, b in frames],
                                         'ssim': [float(calculate_ssim(a, b, 0)) for a, b in frames]}
    finally:
        net.train(was_training)
    per_clip = {clip: {k: statistics.fmean(v[k]) for k in ('psnr', 'ssim')} for clip, v in per_frame.items()}
    return {'psnr': statistics.fmean(c['psnr'] for c in per_clip.values()),
            'ssim': statistics.fmean(c['ssim'] for c in per_clip.values()), 'per_frame': per_frame,
            'psnr_per_clip': {clip: c['psnr'] for clip, c in per_clip.items()}}


def clip_summary(net: nn.Module, dataset, max_clips: int | None = None) -> dict:
    """``clip_quality`` without the per-frame lists: ``{'psnr', 'ssim', 'psnr_per_clip'}``, for a benchmark's row."""
    quality = clip_quality(net, dataset, max_clips)
    return {key: quality[key] for key in ('psnr', 'ssim', 'psnr_per_clip')}
