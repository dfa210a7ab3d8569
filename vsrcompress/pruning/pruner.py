"""The pruning driver: from a validated config to a narrower BasicVSRNet/IconVSRNet, in one or several steps.

Everything that can be wrong (options, network structure, an unreachable MAC budget) is reported by the
constructor, before importance scoring, backward passes or any layer change; Taylor without sample clips is
reported by the first step, before anything is scored (the clips may be handed over just before each step).
"""
import re
import warnings
from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn

from vsrcompress.pruning.budget import search_budget
from vsrcompress.pruning.complexity import MacProfile, conv_shapes, count_params
from vsrcompress.pruning.config import PruningConfig, parse_pruning_config
from vsrcompress.pruning.coupling import SINGLE_WIDTH_PARTS, ChannelGroup, coupling_groups
from vsrcompress.pruning.importance import group_scores, taylor_gradients
from vsrcompress.pruning.surgery import Plan, apply_plan, removed_channels
from vsrcompress.pruning.targets import plan_at, ratio_candidates

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class VSRChannelPruner:
    """Prunes a BasicVSRNet/IconVSRNet in place toward the config's target in ``steps`` steps.

    Usage, with fine-tuning between steps::

        pruner = VSRChannelPruner(net, {'ratio': 0.5, 'steps': 2})
        while not pruner.finished:
            pruner.step()
            ...  # rebuild the optimizer (pruned weights are new tensors), fine-tune
        report = pruner.report()

    Across processes: rank 0 computes ``plan = pruner.plan_step()``, broadcasts it (plain data), and every
    rank calls ``pruner.apply(plan)``, so all ranks end with the same widths and weights.

    Args:
        net: The network to prune (changed in place).
        options: The ``pruning:`` options (see ``vsrcompress.pruning.config``) or a ``PruningConfig``.
        samples: ``(lq clip, target clip)`` pairs for the Taylor criterion, re-read at every step; may also be
            assigned to ``pruner.samples`` before each step (e.g. the current training batch).
        loss_fn: Loss for the Taylor criterion, ``loss_fn(output, target)``; default L1.
    """

    def __init__(self, net: nn.Module, options: Mapping | PruningConfig,
                 samples: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None, loss_fn: LossFn | None = None):
        self.config = options if isinstance(options, PruningConfig) else parse_pruning_config(options)
        groups = coupling_groups(net)
        self.net = net
        self.samples = list(samples) if samples is not None else None
        self.loss_fn = loss_fn
        self.dense_widths = {g.name: g.width for g in groups}
        self.active = self._select_groups(groups)
        self.widths_before = net.width_spec() if hasattr(net, 'width_spec') else None
        self.params_before = count_params(net)
        self.shapes_before = conv_shapes(net)
        self._profile: MacProfile | None = None
        self.history: list[Plan] = []
        if self.config.mac_budget is not None:
            self._check_budget_reachable([g for g in groups if g.name in self.active])

    def _select_groups(self, groups: list[ChannelGroup]) -> set[str]:
        """Names of the groups this pruner may narrow: in a pruned part and not ignored (warns on dead patterns)."""
        pruned_parts = set(self.config.ratios) if self.config.ratios else set(self.config.parts)
        active = set()
        for pattern in self.config.ignore:
            if not any(re.fullmatch(pattern, name) for g in groups for name in (g.name, *g.producers)):
                warnings.warn(f'pruning.ignore: {pattern!r} matches no channel group and no producing module; '
                              f'group names: {[g.name for g in groups]} (producers are conv names such as '
                              f'{groups[0].producers[0]!r}).', stacklevel=3)
        for group in groups:
            ignored = any(re.fullmatch(p, name) for p in self.config.ignore for name in (group.name, *group.producers))
            if group.part in pruned_parts and not ignored:
                active.add(group.name)
        for part in SINGLE_WIDTH_PARTS:
            names = {g.name for g in groups if g.part == part}
            if active & names and names - active:
                raise ValueError(f'pruning.ignore: the {part} groups share one width and are pruned together; '
                                 f'ignore all of them (pattern {part + ".*"!r}) or none, not '
                                 f'{sorted(names - active)}.')
        return active

    @property
    def profile(self) -> MacProfile:
        """MAC profile at the reference size, traced on first use (meta-device forwards, seconds) and shared."""
        if self._profile is None:
            variable = frozenset(piece.module for g in coupling_groups(self.net) for piece in g.slices)
            self._profile = MacProfile(self.net, self.config.reference_size, variable)
        return self._profile

    @property
    def macs_before(self) -> float:
        return self.profile.macs_per_frame(self.shapes_before)

    def _predict_macs(self, groups: list[ChannelGroup], plan: Plan) -> float:
        return self.profile.macs_per_frame(conv_shapes(self.net, removed_channels(groups, plan)))

    def _check_budget_reachable(self, groups: list[ChannelGroup]) -> None:
        cfg = self.config
        floor_ratio = ratio_candidates(groups, self.dense_widths, cfg.ranking, cfg.round_to)[-1]
        zeros = {g.name: torch.zeros(g.width) for g in groups}
        floor_plan = plan_at(groups, zeros, self.dense_widths, {p: floor_ratio for p in cfg.parts}, cfg.ranking,
                             cfg.min_width, cfg.round_to)
        smallest = self._predict_macs(groups, floor_plan) / self.macs_before
        if smallest > cfg.mac_budget:
            raise ValueError(f'pruning.mac_budget: {cfg.mac_budget} is below {smallest:.4f}, the fraction of dense '
                             f'MACs left with every group of parts {list(cfg.parts)} at its minimum width '
                             f'(min_width={cfg.min_width}, round_to={cfg.round_to}, ignore={list(cfg.ignore)}).')

    @property
    def finished(self) -> bool:
        return len(self.history) >= self.config.steps

    def _scores(self, groups: list[ChannelGroup]) -> dict[str, torch.Tensor]:
        if self.config.criterion != 'taylor':
            return group_scores(self.net, groups, self.config.criterion)
        if not self.samples:
            raise ValueError('pruning.criterion: taylor scores channels with gradients and needs sample clips: '
                             'pass samples=[(lq, target), ...] or set pruner.samples before the step.')
        with taylor_gradients(self.net, self.samples, self.loss_fn):
            return group_scores(self.net, groups, 'taylor')

    def plan_step(self) -> Plan:
        """The plan of the next step (nothing changes yet): ratios or MAC budget at ``k / steps`` of the way."""
        cfg = self.config
        if self.finished:
            raise RuntimeError(f'pruning: all {cfg.steps} steps are done.')
        progress = (len(self.history) + 1) / cfg.steps
        groups = [g for g in coupling_groups(self.net) if g.name in self.active]
        scores = self._scores(groups)
        if cfg.mac_budget is None:
            ratios = {part: ratio * progress for part, ratio in cfg.ratios.items()}
            return plan_at(groups, scores, self.dense_widths, ratios, cfg.ranking, cfg.min_width, cfg.round_to)
        fraction = 1 - (1 - cfg.mac_budget) * progress
        _, plan, _ = search_budget(groups, scores, self.dense_widths, cfg.parts, cfg.ranking, cfg.min_width,
                                   cfg.round_to, lambda p: self._predict_macs(groups, p),
                                   fraction * self.macs_before)
        return plan

    def apply(self, plan: Mapping[str, list[int]]) -> None:
        """Cut a plan's units out of the network and record it in the history."""
        plan = {name: sorted(int(u) for u in units) for name, units in plan.items()}
        apply_plan(self.net, plan)
        self.history.append(plan)

    def step(self) -> Plan:
        """Plan and apply the next step; returns the plan."""
        plan = self.plan_step()
        self.apply(plan)
        return plan

    def report(self) -> dict:
        """Plain-data provenance: config, widths, params and MACs per frame before/after, history."""
        groups = coupling_groups(self.net)
        removed = {}
        for part in sorted({g.part for g in groups if g.name in self.active}):
            names = [g.name for g in groups if g.part == part and g.name in self.active]
            now = sum(g.width for g in groups if g.name in names)
            removed[part] = 1 - now / sum(self.dense_widths[n] for n in names)
        macs_after = self.profile.macs_per_frame(conv_shapes(self.net))
        return {
            'config': self.config.to_dict(),
            'steps_done': len(self.history),
            'reference_size': list(self.config.reference_size),
            'widths_before': self.widths_before,
            'widths_after': self.net.width_spec() if hasattr(self.net, 'width_spec') else None,
            'params_before': self.params_before,
            'params_after': count_params(self.net),
            'macs_per_frame_before': self.macs_before,
            'macs_per_frame_after': macs_after,
            'mac_fraction': macs_after / self.macs_before,
            'removed_fraction': removed,
            'history': [dict(plan) for plan in self.history],
        }


def prune_network(net: nn.Module, options: Mapping | PruningConfig,
                  samples: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
                  loss_fn: LossFn | None = None) -> dict:
    """Prune ``net`` in place through all steps at once (no fine-tuning between them); returns the report."""
    pruner = VSRChannelPruner(net, options, samples, loss_fn)
    while not pruner.finished:
        pruner.step()
    return pruner.report()
