"""Finding the least pruning whose plan fits a MAC budget.

One ratio is shared by every pruned part. MACs fall monotonically as the ratio rises (kept widths only shrink),
so a bisection over the ratios at which the plan changes (``ratio_candidates``) finds the smallest ratio that
fits, with MACs predicted from the counter's profile instead of a forward per candidate. With ``round_to``
steps that ratio can undershoot the budget by a lot (64 channels move 8 at a time), so a give-back pass then
returns one ``round_to`` step at a time to the groups that the next smaller ratio would have kept wider,
cheapest step first, while the budget still holds.
"""
from collections.abc import Callable

import torch

from vsrcompress.pruning.coupling import ChannelGroup
from vsrcompress.pruning.surgery import Plan
from vsrcompress.pruning.targets import plan_at, ratio_candidates


def search_budget(groups: list[ChannelGroup], scores: dict[str, torch.Tensor], dense: dict[str, int],
                  parts: tuple[str, ...], ranking: str, min_width: int, round_to: int,
                  predict_macs: Callable[[Plan], float], max_macs: float) -> tuple[float, Plan, float]:
    """``(ratio, plan, predicted MACs per frame)`` of the least pruning whose MACs are <= ``max_macs``.

    Raises ValueError when even every group at its floor exceeds ``max_macs``.
    """
    candidates = ratio_candidates(groups, dense, ranking, round_to)
    evaluated: dict[int, tuple[Plan, float]] = {}

    def evaluate(i: int) -> tuple[Plan, float]:
        if i not in evaluated:
            plan = plan_at(groups, scores, dense, {p: candidates[i] for p in parts}, ranking, min_width, round_to)
            evaluated[i] = (plan, predict_macs(plan))
        return evaluated[i]

    if evaluate(0)[1] <= max_macs:
        return candidates[0], *evaluate(0)
    low, high = 0, len(candidates) - 1  # invariant: low does not fit, high fits
    if evaluate(high)[1] > max_macs:
        raise ValueError(f'pruning.mac_budget: {max_macs:.4g} MACs per frame cannot be reached: with every '
                         f'group of {list(parts)} at its minimum width the network needs {evaluate(high)[1]:.4g}.')
    while high - low > 1:
        mid = (low + high) // 2
        if evaluate(mid)[1] <= max_macs:
            high = mid
        else:
            low = mid
    plan, macs = _give_back(groups, scores, evaluate(high)[0], evaluate(low)[0], round_to, predict_macs, max_macs)
    return candidates[high], plan, macs


def _give_back(groups: list[ChannelGroup], scores: dict[str, torch.Tensor], plan: Plan, wider: Plan, round_to: int,
               predict_macs: Callable[[Plan], float], max_macs: float) -> tuple[Plan, float]:
    """Un-remove ``round_to`` units at a time (best-scored first) where ``wider`` removes fewer, if still fitting."""
    def restored(current: Plan, name: str) -> Plan:
        removed = current[name]
        keep_removed = max(len(wider.get(name, [])), len(removed) - round_to)
        ranked = sorted(removed, key=lambda u: (float(scores[name][u]), u))
        return {**current, name: sorted(ranked[:keep_removed])}

    macs = predict_macs(plan)
    costs = sorted((predict_macs(restored(plan, g.name)) - macs, g.name) for g in groups
                   if len(plan.get(g.name, [])) > len(wider.get(g.name, [])))
    for _, name in costs:
        while len(plan[name]) > len(wider.get(name, [])):
            trial = restored(plan, name)
            trial_macs = predict_macs(trial)
            if trial_macs > max_macs:
                break
            plan, macs = trial, trial_macs
    return {name: units for name, units in plan.items() if units}, macs
