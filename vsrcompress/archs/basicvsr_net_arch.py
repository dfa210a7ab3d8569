"""BasicVSR and IconVSR with every prunable width settable from a plain-data width spec.

The module and parameter names follow basicsr's ``BasicVSR``/``IconVSR`` exactly, so the official
checkpoints load strictly. What is new: a ``scale`` of 2 (one pixel-shuffle stage, the 1080p -> 4K case)
or 4, and a ``widths`` dict that sets the hidden-state width of each trunk, the inner width of each
residual block, the upsampling tail and SpyNet's layers. ``width_spec()`` reads that dict back from the
layer shapes, so a pruned network is rebuilt as ``Net(**arch_opts, widths=spec)`` and then loaded strictly.
"""
import copy
import math
import os

import torch
from basicsr.archs.arch_util import default_init_weights, flow_warp
from basicsr.archs.basicvsr_arch import EDVRFeatureExtractor
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn import functional as F

from vsrcompress.checkpoint import load_checkpoint, load_state_strict, select_params
from vsrcompress.streaming.step import stream_step

SPYNET_LEVELS = 6
SPYNET_WIDTHS = (32, 64, 32, 16)
SUPPORTED_SCALES = (2, 4)


class ResidualBlock(nn.Module):
    """conv-relu-conv residual block whose inner width may differ from its outer width."""

    def __init__(self, num_feat: int, mid_feat: int):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, mid_feat, 3, 1, 1, bias=True)
        self.conv2 = nn.Conv2d(mid_feat, num_feat, 3, 1, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        self.skip_quant = nn.Identity()  # INT8: replaced by a quantizer so TensorRT can fuse conv2 with the add
        default_init_weights([self.conv1, self.conv2], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip_quant(x) + self.conv2(self.relu(self.conv1(x)))


class ConvResidualTrunk(nn.Module):
    """One propagation branch: a conv to the hidden width, then residual blocks."""

    def __init__(self, num_in_ch: int, num_feat: int, mid_feats: list[int]):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(num_in_ch, num_feat, 3, 1, 1, bias=True), nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Sequential(*[ResidualBlock(num_feat, mid) for mid in mid_feats]))

    @property
    def num_feat(self) -> int:
        return self.main[0].out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class SpyNetLevel(nn.Module):
    """One pyramid level of SpyNet: five 7x7 convs from (ref, warped supp, flow) to a flow residual."""

    def __init__(self, widths: list[int]):
        super().__init__()
        chans = [8, *widths, 2]
        layers = []
        for i in range(len(chans) - 1):
            layers.append(nn.Conv2d(chans[i], chans[i + 1], kernel_size=7, stride=1, padding=3))
            if i < len(chans) - 2:
                layers.append(nn.ReLU(inplace=False))
        self.basic_module = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.basic_module(x)


class SpyNetFlow(nn.Module):
    """SpyNet optical flow (same computation and parameter names as basicsr's SpyNet), width-configurable."""

    def __init__(self, widths: list[list[int]], load_path: str | None = None):
        super().__init__()
        self.basic_module = nn.ModuleList([SpyNetLevel(w) for w in widths])
        if load_path:
            load_state_strict(self, _load_params(load_path, 'spynet_path'), load_path, 'network_g.spynet_path')
        self.register_buffer('mean', torch.Tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer('std', torch.Tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def process(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        """Coarse-to-fine flow for inputs whose height and width are multiples of 32.

        Every pyramid level is then exactly twice the one below, so no padding is needed (basicsr's version pads,
        which the ONNX tracer would freeze to the export size); the coarsest level starts from a zero flow.
        """
        ref = [(ref - self.mean) / self.std]
        supp = [(supp - self.mean) / self.std]
        for _ in range(len(self.basic_module) - 1):
            ref.insert(0, F.avg_pool2d(ref[0], kernel_size=2, stride=2, count_include_pad=False))
            supp.insert(0, F.avg_pool2d(supp[0], kernel_size=2, stride=2, count_include_pad=False))
        flow = None
        for level in range(len(ref)):
            if flow is None:
                upsampled = torch.zeros_like(ref[level][:, :2])
            else:
                upsampled = F.interpolate(flow, scale_factor=2, mode='bilinear', align_corners=True) * 2.0
            warped = flow_warp(supp[level], upsampled.permute(0, 2, 3, 1), interp_mode='bilinear',
                               padding_mode='border')
            flow = self.basic_module[level](torch.cat([ref[level], warped, upsampled], 1)) + upsampled
        return flow

    def forward(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        # Sizes come from the input's shape (not Python numbers), so a traced graph stays correct at every size.
        h, w = ref.shape[2], ref.shape[3]
        if not torch.jit.is_tracing() and min(h, w) <= 32:
            raise ValueError(f'SpyNet needs frames larger than 32x32 pixels, got {h}x{w}.')
        h_up, w_up = (h + 31) // 32 * 32, (w + 31) // 32 * 32
        ref = F.interpolate(ref, size=(h_up, w_up), mode='bilinear', align_corners=False)
        supp = F.interpolate(supp, size=(h_up, w_up), mode='bilinear', align_corners=False)
        flow = F.interpolate(self.process(ref, supp), size=(h, w), mode='bilinear', align_corners=False)
        return torch.cat([flow[:, :1] * (w / w_up), flow[:, 1:] * (h / h_up)], dim=1)


def _load_params(path: str, option_key: str) -> dict:
    """The ``params`` state dict of an official pretrained-part file; errors name ``network_g.<option_key>``."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'network_g.{option_key}: {path} does not exist '
                                '(scripts/download_pretrained.py fetches the official weights).')
    return select_params(load_checkpoint(path, f'network_g.{option_key}'), path, 'params', f'network_g.{option_key}')


def _check_widths(widths: dict, defaults: dict) -> dict:
    """Merge a (partial) width spec over the defaults, rejecting unknown keys and impossible shapes."""
    unknown = set(widths) - set(defaults)
    if unknown:
        raise ValueError(f'network_g.widths: unknown keys {sorted(unknown)}; allowed: {sorted(defaults)}')
    spec = copy.deepcopy(defaults)
    spec.update(copy.deepcopy(widths))
    for key, default in defaults.items():
        value = spec[key]
        if isinstance(default, list):
            if not isinstance(value, list) or len(value) != len(default):
                raise ValueError(f'network_g.widths.{key}: expected a list of {len(default)} entries, got {value!r}')
            flat = [v for row in value for v in (row if isinstance(row, list) else [row])]
            if isinstance(default[0], list) and any(len(row) != len(default[0]) for row in value):
                raise ValueError(f'network_g.widths.{key}: every row needs {len(default[0])} widths, got {value!r}')
        else:
            flat = [value]
        if not all(isinstance(v, int) and v > 0 for v in flat):
            raise ValueError(f'network_g.widths.{key}: widths must be positive integers, got {value!r}')
    return spec


class _RecurrentVSR(nn.Module):
    """What BasicVSR and IconVSR share: flow, the upsampling tail, and the width-spec plumbing."""

    def __init__(self, scale: int):
        super().__init__()
        if scale not in SUPPORTED_SCALES:
            raise ValueError(f'network_g.scale: {scale!r} is not supported; allowed: {list(SUPPORTED_SCALES)}')
        self.scale = scale
        self.num_stages = int(math.log2(scale))
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)

    def _default_widths(self, num_feat: int, num_block: int) -> dict:
        return {
            'backward': num_feat,
            'backward_blocks': [num_feat] * num_block,
            'forward': num_feat,
            'forward_blocks': [num_feat] * num_block,
            'upsample': [num_feat, 64][-self.num_stages:],
            'hr': 64,
            'spynet': [list(SPYNET_WIDTHS) for _ in range(SPYNET_LEVELS)],
        }

    def _build_tail(self, in_feat: int, spec: dict) -> None:
        chans = [in_feat, *spec['upsample']]
        for k in range(self.num_stages):
            setattr(self, f'upconv{k + 1}', nn.Conv2d(chans[k], chans[k + 1] * 4, 3, 1, 1, bias=True))
        self.conv_hr = nn.Conv2d(chans[-1], spec['hr'], 3, 1, 1)
        self.conv_last = nn.Conv2d(spec['hr'], 3, 3, 1, 1)

    def upsample(self, feat: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
        """HR tail: pixel-shuffle stages, conv_hr, conv_last, plus the bilinear-upscaled input."""
        for k in range(self.num_stages):
            feat = self.lrelu(self.pixel_shuffle(getattr(self, f'upconv{k + 1}')(feat)))
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        return out + F.interpolate(lq, scale_factor=self.scale, mode='bilinear', align_corners=False)

    def warp(self, feat: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        """``feat`` warped by ``flow`` (b, 2, h, w), as the propagation branches align their hidden states."""
        return flow_warp(feat, flow.permute(0, 2, 3, 1))

    def width_spec(self) -> dict:
        """The width spec of this network as it is now (after pruning too), read off the layer shapes."""
        spec = {
            'backward': self.backward_trunk.num_feat,
            'backward_blocks': [blk.conv1.out_channels for blk in self.backward_trunk.main[2]],
            'forward': self.forward_trunk.num_feat,
            'forward_blocks': [blk.conv1.out_channels for blk in self.forward_trunk.main[2]],
            'upsample': [getattr(self, f'upconv{k + 1}').out_channels // 4 for k in range(self.num_stages)],
            'hr': self.conv_hr.out_channels,
            'spynet': [[m.out_channels for m in level.basic_module if isinstance(m, nn.modules.conv._ConvNd)][:-1]
                       for level in self.spynet.basic_module],
        }
        return spec


@ARCH_REGISTRY.register()
class BasicVSRNet(_RecurrentVSR):
    """BasicVSR (bidirectional recurrent VSR) for x2/x4 with a settable width spec.

    Args:
        num_feat: Default width of the hidden states and residual blocks. Default: 64.
        num_block: Residual blocks per trunk. Default: 15 (the official models use 30).
        scale: Upscaling factor, 2 or 4. Default: 4.
        spynet_path: Official SpyNet weights (key ``params``) to start from. Default: None.
        widths: Partial or full width spec overriding the widths implied by ``num_feat``; keys are those
            of ``width_spec()``: backward, backward_blocks, forward, forward_blocks, fusion, upsample, hr, spynet.
    """

    def __init__(self, num_feat: int = 64, num_block: int = 15, scale: int = 4, spynet_path: str | None = None,
                 widths: dict | None = None):
        super().__init__(scale)
        defaults = self._default_widths(num_feat, num_block)
        defaults['fusion'] = num_feat
        spec = _check_widths(widths or {}, defaults)

        self.spynet = SpyNetFlow(spec['spynet'], spynet_path)
        self.backward_trunk = ConvResidualTrunk(spec['backward'] + 3, spec['backward'], spec['backward_blocks'])
        self.forward_trunk = ConvResidualTrunk(spec['forward'] + 3, spec['forward'], spec['forward_blocks'])
        self.fusion = nn.Conv2d(spec['backward'] + spec['forward'], spec['fusion'], 1, 1, 0, bias=True)
        self._build_tail(spec['fusion'], spec)

    def width_spec(self) -> dict:
        return {**super().width_spec(), 'fusion': self.fusion.out_channels}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve a clip (b, n, 3, h, w) -> (b, n, 3, h*scale, w*scale): the whole sequence in one call."""
        return stream_step(self, x, keep=int(x.shape[1]), ended=True).sr  # int: the tracer's sizes are tensors


@ARCH_REGISTRY.register()
class IconVSRNet(_RecurrentVSR):
    """IconVSR (BasicVSR + EDVR keyframe features) for x2/x4 with a settable width spec.

    The EDVR feature extractor (deformable convs) has one width, ``widths['edvr']`` (a multiple of its 8
    deformable groups); the pruning engine narrows all its channel spaces to one width so it rebuilds from the spec.

    Args:
        num_feat: Default width of the hidden states and residual blocks. Default: 64.
        num_block: Residual blocks per trunk. Default: 15 (the official models use 30).
        keyframe_stride: Every this many frames is a keyframe refined with EDVR features. Default: 5.
        temporal_padding: Neighbours on each side fed to EDVR (2 or 3). Default: 2.
        scale: Upscaling factor, 2 or 4. Default: 4.
        spynet_path: Official SpyNet weights (key ``params``). Default: None.
        edvr_path: Official EDVR weights for IconVSR (key ``params``). Default: None.
        widths: Width spec as for ``BasicVSRNet`` without ``fusion``, plus ``edvr``.
    """

    def __init__(self, num_feat: int = 64, num_block: int = 15, keyframe_stride: int = 5, temporal_padding: int = 2,
                 scale: int = 4, spynet_path: str | None = None, edvr_path: str | None = None,
                 widths: dict | None = None):
        super().__init__(scale)
        if temporal_padding not in (2, 3):
            raise ValueError(f'network_g.temporal_padding: {temporal_padding!r} is not supported; allowed: [2, 3]')
        defaults = self._default_widths(num_feat, num_block)
        defaults['edvr'] = num_feat
        spec = _check_widths(widths or {}, defaults)
        self.temporal_padding = temporal_padding
        self.keyframe_stride = keyframe_stride

        # Loaded here, not through EDVRFeatureExtractor's load_path: a wrong file would fail inside basicsr with
        # torch's raw error, naming neither the option key nor the file.
        self.edvr = EDVRFeatureExtractor(temporal_padding * 2 + 1, spec['edvr'], None)
        if edvr_path:
            load_state_strict(self.edvr, _load_params(edvr_path, 'edvr_path'), edvr_path, 'network_g.edvr_path')
        self.spynet = SpyNetFlow(spec['spynet'], spynet_path)
        cb, cf = spec['backward'], spec['forward']
        self.backward_fusion = nn.Conv2d(cb + spec['edvr'], cb, 3, 1, 1, bias=True)
        self.backward_trunk = ConvResidualTrunk(cb + 3, cb, spec['backward_blocks'])
        self.forward_fusion = nn.Conv2d(cf + spec['edvr'], cf, 3, 1, 1, bias=True)
        self.forward_trunk = ConvResidualTrunk(cb + cf + 3, cf, spec['forward_blocks'])
        self._build_tail(cf, spec)

    def width_spec(self) -> dict:
        return {**super().width_spec(), 'edvr': self.edvr.conv_first.out_channels}

    def pad_spatial(self, x: torch.Tensor) -> torch.Tensor:
        """Reflect-pad height and width to multiples of 4, as EDVR's PCD alignment needs."""
        n, t, c, h, w = x.size()
        pad_h, pad_w = (4 - h % 4) % 4, (4 - w % 4) % 4
        x = F.pad(x.view(-1, c, h, w), [0, pad_w, 0, pad_h], mode='reflect')
        return x.view(n, t, c, h + pad_h, w + pad_w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve a clip (b, n, 3, h, w) -> (b, n, 3, h*scale, w*scale); n >= 2*temporal_padding+1."""
        n = int(x.shape[1])
        if n < 2 * self.temporal_padding + 1:
            raise ValueError(f'IconVSR with temporal_padding={self.temporal_padding} needs at least '
                             f'{2 * self.temporal_padding + 1} frames, got {n}.')
        return stream_step(self, x, keep=n, ended=True).sr
