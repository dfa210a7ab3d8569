"""How many units each group keeps at a pruning ratio, and which units go.

Ratios are fractions of the dense width (the width when the pruner was created), so iterative steps aim at
``ratio * k / steps`` of the same reference. Kept widths are rounded UP to a multiple of ``round_to`` (never
below the floor ``min_width`` rounded up to ``round_to``, never above the current width), so a ratio of 0 keeps
everything and 0.5 of 64 keeps 32. For ``upsample.k`` groups a unit is one channel after PixelShuffle, so the
upconv keeps ``4 * width`` channels and is never cut inside a shuffle group.

The EDVR groups of IconVSR (part ``edvr``) share one width: they are always ranked uniformly, rounded to a
multiple of the deformable-group count as well, and a group read by a deformable conv loses its lowest-scored
units segment by segment, the same number in each.
"""
import math

import torch

from vsrcompress.pruning.coupling import SINGLE_WIDTH_PARTS, ChannelGroup
from vsrcompress.pruning.surgery import Plan


def unit_floor(dense: int, min_width: int, round_to: int) -> int:
    """Fewest units a group may keep."""
    return min(dense, round_to * math.ceil(min_width / round_to))


def keep_width(dense: int, ratio: float, min_width: int, round_to: int) -> int:
    """Units a group of ``dense`` units keeps at ``ratio`` (rounded up to ``round_to``, floored, <= dense)."""
    if ratio <= 0:
        return dense
    kept = round_to * math.ceil(dense * (1 - ratio) / round_to - 1e-9)
    return min(dense, max(unit_floor(dense, min_width, round_to), kept))


def part_round_to(groups: list[ChannelGroup], round_to: int) -> dict[str, int]:
    """Per part, the multiple its kept widths are rounded to: ``round_to`` and every group's segment count."""
    steps: dict[str, int] = {}
    for group in groups:
        steps[group.part] = math.lcm(steps.get(group.part, round_to), group.segments)
    return steps


def _lowest(score: torch.Tensor, count: int, segments: int = 1) -> list[int]:
    """The ``count`` lowest-scored units, ``count / segments`` from each contiguous segment."""
    size = score.numel() // segments
    return sorted(start + u for start in range(0, score.numel(), size)
                  for u in torch.argsort(score[start:start + size], stable=True)[:count // segments].tolist())


def uniform_plan(groups: list[ChannelGroup], scores: dict[str, torch.Tensor], dense: dict[str, int],
                 ratios: dict[str, float], min_width: int, round_to: int) -> Plan:
    """Every group of a part goes to the same fraction of its dense width; its lowest-scored units go."""
    plan = {}
    steps = part_round_to(groups, round_to)
    for group in groups:
        if group.part not in ratios:
            continue
        surplus = group.width - keep_width(dense[group.name], ratios[group.part], min_width, steps[group.part])
        if surplus > 0:
            plan[group.name] = _lowest(scores[group.name], surplus, group.segments)
    return plan


def global_plan(groups: list[ChannelGroup], scores: dict[str, torch.Tensor], dense: dict[str, int],
                ratios: dict[str, float], min_width: int, round_to: int) -> Plan:
    """Per part, the lowest-scored units across all its groups go until the part's total meets its ratio.

    Scores are normalized per group (torch-pruning's mean or LAMP normalizer), so they compare across groups.
    Each group keeps at least its floor; its kept width is then rounded up to ``round_to``.
    """
    plan = {}
    for part, ratio in ratios.items():
        members = [g for g in groups if g.part == part]
        target = math.ceil(sum(dense[g.name] for g in members) * (1 - ratio) - 1e-9)
        to_remove = sum(g.width for g in members) - target
        if to_remove <= 0:
            continue
        ranked = sorted((float(scores[g.name][u]), i, u) for i, g in enumerate(members) for u in range(g.width))
        removed: list[list[int]] = [[] for _ in members]
        for _, i, u in ranked:
            if to_remove == 0:
                break
            group = members[i]
            if group.width - len(removed[i]) > unit_floor(dense[group.name], min_width, round_to):
                removed[i].append(u)  # ascending score order
                to_remove -= 1
        for group, units in zip(members, removed):
            kept = min(group.width, round_to * math.ceil((group.width - len(units)) / round_to))
            units = units[:group.width - kept]  # rounding up gives back the best of the removed units
            if units:
                plan[group.name] = sorted(units)
    return plan


def plan_at(groups: list[ChannelGroup], scores: dict[str, torch.Tensor], dense: dict[str, int],
            ratios: dict[str, float], ranking: str, min_width: int, round_to: int) -> Plan:
    """The plan that brings the given groups to ``ratios`` (per part) of their dense widths."""
    if ranking == 'uniform':
        return uniform_plan(groups, scores, dense, ratios, min_width, round_to)
    single = [g for g in groups if g.part in SINGLE_WIDTH_PARTS]
    ranked = [g for g in groups if g.part not in SINGLE_WIDTH_PARTS]
    return {**uniform_plan(single, scores, dense, ratios, min_width, round_to),
            **global_plan(ranked, scores, dense, ratios, min_width, round_to)}


def ratio_candidates(groups: list[ChannelGroup], dense: dict[str, int], ranking: str, round_to: int) -> list[float]:
    """Ratios in [0, 1) at which the plan can change, ascending; the last one brings every group to its floor.

    Uniform (and the EDVR part): a group's kept width drops to ``j * step`` exactly at ratio ``1 - j*step/dense``,
    with ``step`` the part's rounding (``part_round_to``). Global: a part's total changes every ``1/total`` of ratio.
    """
    steps = part_round_to(groups, round_to)
    uniform = {g.name for g in groups if ranking == 'uniform' or g.part in SINGLE_WIDTH_PARTS}
    cuts = {1 - j * steps[g.part] / dense[g.name] for g in groups if g.name in uniform
            for j in range(1, math.ceil(dense[g.name] / steps[g.part]))}
    totals: dict[str, int] = {}
    for g in groups:
        if g.name not in uniform:
            totals[g.part] = totals.get(g.part, 0) + dense[g.name]
    cuts |= {k / total for total in totals.values() for k in range(1, total)}
    return sorted({0.0, *(c for c in cuts if 0 < c < 1)})
