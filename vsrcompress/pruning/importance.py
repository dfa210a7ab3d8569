"""Channel importance: torch-pruning's criteria scored on our explicit channel groups.

Each ``ChannelGroup`` is handed to torch-pruning as a ``tp.Group`` whose items are the coupled conv slices and
whose ``root_idxs`` are the group's units, so the library's own scorers (group magnitude, Taylor, LAMP) read
every coupled weight - the hidden-state group sums over the trunk convs, the fed-back input slice and the
fusion/tail inputs; an upsample unit sums its r*r upconv rows.
"""
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
import torch_pruning as tp
from torch import nn
from torch.nn import functional as F

from vsrcompress.pruning.coupling import ChannelGroup, is_deform_conv

CRITERIA = ('l1', 'l2', 'taylor', 'lamp')


def make_importance(criterion: str) -> tp.importance.Importance:
    """The torch-pruning scorer for a criterion name; every scorer normalizes per group (mean or LAMP)."""
    if criterion == 'l1':
        return tp.importance.GroupMagnitudeImportance(p=1)
    if criterion == 'l2':
        return tp.importance.GroupMagnitudeImportance(p=2)
    if criterion == 'taylor':
        return tp.importance.GroupTaylorImportance()
    if criterion == 'lamp':
        return tp.importance.LAMPImportance(p=2)
    raise ValueError(f'pruning.criterion: {criterion!r} is unknown; allowed: {list(CRITERIA)}')


def to_tp_group(net: nn.Module, group: ChannelGroup) -> tp.Group:
    """The full-width torch-pruning group (all units) that a scorer expects."""
    units = list(range(group.width))
    root = tp.Node(net.get_submodule(group.slices[0].module), None, group.slices[0].module)
    tp_group = tp.Group()
    for piece in group.slices:
        handler = tp.prune_conv_out_channels if piece.dim == 'out' else tp.prune_conv_in_channels
        target = tp.Node(net.get_submodule(piece.module), None, piece.module)
        tp_group.add_dep(tp.Dependency(tp.prune_conv_out_channels, handler, root, target), piece.channels(units))
        tp_group[len(tp_group) - 1].root_idxs = [u for u in units for _ in range(piece.unit_size)]
    return tp_group


def group_scores(net: nn.Module, groups: list[ChannelGroup], criterion: str) -> dict[str, torch.Tensor]:
    """Per-unit importance of each group (higher = keep); Taylor needs gradients (see ``taylor_gradients``)."""
    scorer = make_importance(criterion)
    # deformable conv weights count like conv weights (the scorers skip layer types they do not know)
    scorer.target_types = [*scorer.target_types, *{type(m) for m in net.modules() if is_deform_conv(m)}]
    scores = {}
    for group in groups:
        score = scorer(to_tp_group(net, group))
        if score is None or score.numel() != group.width:
            raise RuntimeError(f'importance of group {group.name!r}: expected {group.width} scores, got '
                               f'{None if score is None else score.numel()}.')
        scores[group.name] = torch.nan_to_num(score.detach().float().cpu(), nan=0.0)  # all-zero group / mean 0
    return scores


@contextmanager
def taylor_gradients(net: nn.Module, samples: Iterable[tuple[torch.Tensor, torch.Tensor]],
                     loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> Iterator[None]:
    """Accumulate d(loss)/d(weight) over sample clips for the Taylor criterion, then restore the network.

    Every parameter requires grad while the samples run (a frozen SpyNet must be scored too); afterwards each
    parameter gets back its own ``requires_grad`` and ``.grad``.

    Args:
        net: The network being pruned.
        samples: ``(lq clip, target clip)`` pairs; targets may be ground truth or a dense teacher's output.
        loss_fn: ``loss_fn(output, target)``; default L1.
    """
    params = list(net.parameters())
    saved = [(p.requires_grad, p.grad) for p in params]
    device = params[0].device
    try:
        for p in params:
            p.requires_grad_(True)
            p.grad = None
        count = 0
        with torch.enable_grad():
            for lq, target in samples:
                output = net(lq.to(device))
                (loss_fn or F.l1_loss)(output, target.to(device)).backward()
                count += 1
        if count == 0:
            raise ValueError('pruning.criterion: taylor needs at least one (lq, target) sample clip; none given.')
        yield
    finally:
        for p, (requires_grad, grad) in zip(params, saved):
            p.grad = grad
            p.requires_grad_(requires_grad)
