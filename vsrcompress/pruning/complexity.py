"""MACs per frame and parameters, counted with torch-pruning's counter at a reference LR size.

Counting runs on a ``meta``-device copy (shapes only, no arithmetic): a 180x320 count of a 30-block BasicVSR
takes about a second instead of a full forward. Deformable convs (IconVSR's EDVR, ``torchvision.ops.
deform_conv2d``) are invisible to the counter and their offset check calls ``.item()``, which meta tensors
cannot; in the counting copy each one becomes a plain conv of the same shape, so it counts as the 3x3 conv it is.

MACs per frame is the steady-state cost of a long video: ``(count(n0 + k frames) - count(n0 frames)) / k``,
with k the IconVSR keyframe stride (1 for BasicVSR) and n0 the shortest valid clip. That is two SpyNet calls,
both trunks and the tail per frame, plus one EDVR call per keyframe interval for IconVSR.

``MacProfile`` records every counted module call of one such count, so the MACs of any narrower version of the
same network follow without another forward (conv MACs are bilinear in its channel counts, an activation's, pool's
or upsampling's count is linear in the channels of the conv output it reads): the MAC-budget search uses it.
"""
import copy

import torch
from torch import nn
from torch_pruning.utils import count_ops_and_params, op_counter

from vsrcompress.pruning.coupling import is_deform_conv

ConvShapes = dict[str, tuple[int, int]]


class _DeformConvAsConv(nn.Module):
    """Counting stand-in for a modulated deformable conv: its offset conv, then a plain conv of its shape."""

    def __init__(self, dcn: nn.Module):
        super().__init__()
        self.conv_offset = dcn.conv_offset
        self.conv = nn.Conv2d(dcn.in_channels, dcn.out_channels, dcn.kernel_size, dcn.stride, dcn.padding,
                              dcn.dilation, dcn.groups, bias=dcn.bias is not None, device=dcn.weight.device)

    def forward(self, x: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        self.conv_offset(feat)
        return self.conv(x)


def meta_copy(net: nn.Module) -> nn.Module:
    """A shape-only copy of the network for counting, deformable convs replaced by plain convs."""
    counted = copy.deepcopy(net).to('meta').eval()
    for name, module in list(counted.named_modules()):
        if is_deform_conv(module):
            parent, _, child = name.rpartition('.')
            setattr(counted.get_submodule(parent) if parent else counted, child, _DeformConvAsConv(module))
    return counted


def clip_lengths(net: nn.Module) -> tuple[int, int]:
    """(shortest valid clip, frames per steady-state period) for the per-frame difference."""
    return max(2, 2 * getattr(net, 'temporal_padding', 0) + 1), getattr(net, 'keyframe_stride', 1)


def _meta_clip(frames: int, lq_size: tuple[int, int]) -> torch.Tensor:
    return torch.zeros(1, frames, 3, *lq_size, device='meta')


def _convs(net: nn.Module) -> dict[str, nn.Module]:
    """Plain and deformable convs by name (a deformable conv counts as the conv of its shape)."""
    return {name: m for name, m in net.named_modules() if isinstance(m, nn.Conv2d) or is_deform_conv(m)}


def conv_shapes(net: nn.Module, removal: dict[tuple[str, str], list[int]] | None = None) -> ConvShapes:
    """``{conv name: (in, out)}`` of the network now, minus the channels a pending removal would cut."""
    removal = removal or {}
    return {name: (m.in_channels - len(removal.get((name, 'in'), ())),
                   m.out_channels - len(removal.get((name, 'out'), ())))
            for name, m in _convs(net).items()}


@torch.no_grad()
def count_complexity(net: nn.Module, lq_size: tuple[int, int] = (180, 320)) -> dict[str, float]:
    """``{'macs_per_frame', 'params'}`` by ``tp.utils.count_ops_and_params`` on a meta copy."""
    counted = meta_copy(net)
    first, period = clip_lengths(net)
    macs_short, params = count_ops_and_params(counted, _meta_clip(first, lq_size))
    macs_long, _ = count_ops_and_params(counted, _meta_clip(first + period, lq_size))
    return {'macs_per_frame': (macs_long - macs_short) / period, 'params': int(params)}


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _trace_key(net: nn.Module, lq_size: tuple[int, int], variable: frozenset[str]) -> tuple:
    """What a trace depends on: class, modules, conv geometry (channels only of fixed convs), scalars, size."""
    def geometry(name: str, m: nn.Module) -> tuple | None:
        if not (isinstance(m, nn.Conv2d) or is_deform_conv(m)):
            return None
        channels = () if name in variable else (m.in_channels, m.out_channels)
        return (*channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups, m.bias is not None)

    modules = tuple((name, type(m).__qualname__, geometry(name, m)) for name, m in net.named_modules())
    scalars = tuple(sorted((k, v) for k, v in vars(net).items()
                           if isinstance(v, (bool, int, float, str)) and not k.startswith('_') and k != 'training'))
    return type(net).__module__, type(net).__qualname__, modules, scalars, tuple(lq_size)


_TRACES: dict[tuple, tuple] = {}  # pure function of the key; shared by pruners of the same network
_MAX_TRACES = 8


class MacProfile:
    """The counter's per-call record of one network, to predict the MACs of any narrower version of it.

    Each counted call keeps a width-free scale: a conv's spatial positions (MACs = positions *
    (k*k*in*out/groups + out*bias)); an activation, pool or upsampling its positions per channel of the conv
    output it reads (through PixelShuffle too); other calls a constant. Traces are cached by
    network structure, so every width variant of one network shares a single trace.

    Args:
        net: The network to trace (any width variant).
        lq_size: LR (height, width) of the reference frame.
        variable: Convs whose channel counts may differ between the variants the profile serves (the pruning
            groups' convs); every other conv must keep its shape.
    """

    def __init__(self, net: nn.Module, lq_size: tuple[int, int] = (180, 320), variable: frozenset[str] = frozenset()):
        key = _trace_key(net, lq_size, frozenset(variable))
        if key not in _TRACES:
            if len(_TRACES) >= _MAX_TRACES:
                del _TRACES[next(iter(_TRACES))]
            first, period = clip_lengths(net)
            shapes = conv_shapes(net)
            conv_meta = {name: (m.weight.shape[2] * m.weight.shape[3], m.groups, m.bias is not None)
                         for name, m in _convs(net).items()}
            counted = meta_copy(net)
            calls = [_trace(counted, _meta_clip(n, lq_size), shapes, conv_meta) for n in (first, first + period)]
            _TRACES[key] = (conv_meta, period, calls)
        self._conv_meta, self.period, self._calls = _TRACES[key]

    def _total(self, calls: list, shapes: ConvShapes) -> float:
        total = 0.0
        for kind, scale, key in calls:
            if kind == 'conv':
                total += scale * _per_position(self._conv_meta[key], shapes[key])
            elif kind == 'act':
                source, per_unit = key
                total += scale * (shapes[source][1] // per_unit)
            else:
                total += scale
        return total

    def macs_per_frame(self, shapes: ConvShapes) -> float:
        """MACs per frame of the network with these conv shapes (``conv_shapes(net)``, or a planned version)."""
        return (self._total(self._calls[1], shapes) - self._total(self._calls[0], shapes)) / self.period


def _per_position(conv_meta: tuple[int, int, bool], shape: tuple[int, int]) -> int:
    kernel, groups, bias = conv_meta
    return kernel * shape[0] * shape[1] // groups + (shape[1] if bias else 0)


@torch.no_grad()
def _trace(counted: nn.Module, clip: torch.Tensor, shapes: ConvShapes, conv_meta: dict) -> list[tuple]:
    """Run the counter's hooks once and keep, per call, ``(kind, width-free scale, key)``."""
    calls, produced, alive, handles = [], {}, [], []

    def record(name: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            alive.append(output)  # keeps tensor ids unique during the trace
            if isinstance(module, nn.PixelShuffle):
                source = produced.get(id(inputs[0]))
                if source:
                    produced[id(output)] = (source[0], source[1] * module.upscale_factor ** 2)
                return
            counter_hook = op_counter.MODULES_MAPPING[type(module)]
            module.__flops__ = 0
            counter_hook(module, inputs, output)
            flops = float(module.__flops__)
            del module.__flops__
            if isinstance(module, nn.Conv2d) and name in conv_meta:
                produced[id(output)] = (name, 1)
                calls.append(('conv', flops / _per_position(conv_meta[name], shapes[name]), name))
            elif id(inputs[0]) in produced:  # activation, pooling, upsampling: linear in the conv's channels
                source, per_unit = produced[id(inputs[0])]
                calls.append(('act', flops / (shapes[source][1] // per_unit), (source, per_unit)))
                produced[id(output)] = (source, per_unit)
            else:
                calls.append(('const', flops, None))
        return hook

    stand_ins = {name + '.conv': name for name, m in counted.named_modules() if isinstance(m, _DeformConvAsConv)}
    for name, module in counted.named_modules():
        if type(module) in op_counter.MODULES_MAPPING or isinstance(module, nn.PixelShuffle):
            handles.append(module.register_forward_hook(record(stand_ins.get(name, name))))
    try:
        counted(clip)
    finally:
        for handle in handles:
            handle.remove()
    return calls
