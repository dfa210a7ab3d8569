"""Per-layer sensitivity: how much PSNR each quantized layer costs, and which layers to keep in float.

Two measurements per layer, both against the ground truth and relative to the float network:
``drop_alone`` quantizes only that layer (its own damage), ``gain_as_float`` quantizes every layer but that one
(how much the fully quantized network recovers if it stays float). Layers are sorted by ``gain_as_float``.
For a PSNR budget the suggested skip list is built greedily in that order and re-measured at every step, so the
suggestion's PSNR is measured, not estimated. The unit of analysis may also be a part (``part_units``): a full-size
network has about 200 quantized layers, two forwards each, while the parts that ``skip_parts`` can keep float are
a handful, so a part-level run is what fits a CPU.
"""
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from vsrcompress.metrics import unit_range_psnr
from vsrcompress.network_parts import QUANTIZATION_PARTS
from vsrcompress.quantization.quantizers import check_calibrated, layer_quantizers, set_quantization_enabled

OTHER_LAYERS = 'other'  # the part_units entry for layers outside every skip part (the residual blocks)


@dataclass
class LayerSensitivity:
    """PSNRs (dB) of one layer's (or part's) two experiments and their difference to the float / fully quantized
    network."""

    name: str
    psnr_alone: float
    psnr_as_float: float
    drop_alone: float
    gain_as_float: float


@dataclass
class SensitivityReport:
    """Float and fully quantized PSNR, per-layer results (most sensitive first) and the budgeted skip list."""

    psnr_float: float
    psnr_quantized: float
    layers: list[LayerSensitivity]
    psnr_budget_db: float | None = None
    suggested_skip: list[str] = field(default_factory=list)
    psnr_with_suggested_skip: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        """Markdown table of the per-layer results."""
        lines = ['| layer | PSNR only it quantized | drop | PSNR all but it quantized | gain |',
                 '|---|---|---|---|---|']
        lines += [f'| {s.name} | {s.psnr_alone:.3f} | {s.drop_alone:.3f} | {s.psnr_as_float:.3f} | '
                  f'{s.gain_as_float:.3f} |' for s in self.layers]
        return '\n'.join(lines)


def clip_psnr(output: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR (dB) of a whole clip in [0, 1], pooled over frames; outputs are clamped to [0, 1] first."""
    return unit_range_psnr(target, output.clamp(0, 1))


def part_units(net: nn.Module) -> dict[str, list[str]]:
    """The quantized layers of ``net`` grouped by the ``skip_parts`` they belong to (parts without layers left out);
    layers in no part are grouped under ``OTHER_LAYERS``."""
    units: dict[str, list[str]] = {}
    for name in layer_quantizers(net):
        part = next((p for p, pattern in QUANTIZATION_PARTS.items() if re.fullmatch(pattern, name)), OTHER_LAYERS)
        units.setdefault(part, []).append(name)
    return units


def sensitivity_analysis(net: nn.Module, clips: Sequence[torch.Tensor], targets: Sequence[torch.Tensor],
                         psnr_budget_db: float | None = None,
                         units: Mapping[str, Sequence[str]] | None = None) -> SensitivityReport:
    """Measure every quantized layer's PSNR cost on a few clips; optionally suggest a skip list for a budget.

    Args:
        net: A calibrated quantized network; left with every quantizer enabled.
        clips: Low-quality clips (b, n, c, h, w), few and small: the network runs 2 x units + 2 times over them.
        targets: Ground-truth clips matching ``clips`` (b, n, c, h*scale, w*scale), values in [0, 1].
        psnr_budget_db: Allowed PSNR loss of the quantized network vs float; None skips the suggestion.
        units: What is switched as one, by name: e.g. ``part_units(net)``. Default: every layer on its own.

    Returns:
        The report; ``suggested_skip`` holds unit names: layer names for ``quantization.skip`` (or, with
        ``part_units``, part names for ``quantization.skip_parts``).
    """
    if len(clips) == 0 or len(clips) != len(targets):
        raise ValueError(f'sensitivity_analysis: need as many targets as clips (>= 1), got {len(clips)} clips and '
                         f'{len(targets)} targets')
    if psnr_budget_db is not None and not psnr_budget_db >= 0:
        raise ValueError(f'sensitivity_analysis: psnr_budget_db must be >= 0 dB, got {psnr_budget_db!r}')
    check_calibrated(net)
    names = list(layer_quantizers(net))
    units = {name: [name] for name in names} if units is None else {k: list(v) for k, v in units.items()}
    unknown = sorted({layer for layers in units.values() for layer in layers} - set(names))
    if unknown or not all(units.values()):
        raise ValueError(f'sensitivity_analysis: units must name quantized layers of the network; unknown or empty: '
                         f'{unknown or [k for k, v in units.items() if not v]}')
    every_layer = [layer for layers in units.values() for layer in layers]
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()

    def psnr_with_quantized(quantized: Sequence[str]) -> float:
        set_quantization_enabled(net, False)
        if quantized:
            set_quantization_enabled(net, True, quantized)
        with torch.no_grad():
            values = [clip_psnr(net(lq.to(device)), gt.to(device)) for lq, gt in zip(clips, targets)]
        return sum(values) / len(values)

    try:
        psnr_float = psnr_with_quantized([])
        psnr_quantized = psnr_with_quantized(every_layer)
        layers = []
        for name, members in units.items():
            alone = psnr_with_quantized(members)
            as_float = psnr_with_quantized([n for n in every_layer if n not in members])
            layers.append(LayerSensitivity(name, alone, as_float, psnr_float - alone, as_float - psnr_quantized))
        layers.sort(key=lambda s: s.gain_as_float, reverse=True)
        report = SensitivityReport(psnr_float, psnr_quantized, layers, psnr_budget_db)
        if psnr_budget_db is not None:
            skip, psnr = [], psnr_quantized
            for candidate in layers:
                if psnr_float - psnr <= psnr_budget_db:
                    break
                skip.append(candidate.name)
                floats = {layer for unit in skip for layer in units[unit]}
                psnr = psnr_with_quantized([n for n in every_layer if n not in floats])
            report.suggested_skip, report.psnr_with_suggested_skip = skip, psnr
    finally:
        set_quantization_enabled(net, True)
        net.train(was_training)
    return report
