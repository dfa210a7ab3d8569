"""PSNR/SSIM of a network on whole validation clips, frame by frame.

The numbers are BasicSR's (``calculate_psnr``/``calculate_ssim`` on 8-bit RGB, no border crop, clip means
averaged over clips), as in the training logs; the per-frame curves show how error builds up along the
recurrence. Bicubic upsampling is measured the same way, as the floor a network must beat.
"""
import numpy as np
import torch
import torch.nn.functional as F
from basicsr.metrics import calculate_psnr, calculate_ssim
from basicsr.utils import tensor2img
from torch import nn


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

    Returns ``{'psnr', 'ssim'}`` (mean of clip means) and ``per_frame``: ``{clip: {'psnr': [...], 'ssim': [...]}}``.
    """
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
    return {'psnr': float(np.mean([np.mean(v['psnr']) for v in per_frame.values()])),
            'ssim': float(np.mean([np.mean(v['ssim']) for v in per_frame.values()])), 'per_frame': per_frame}
