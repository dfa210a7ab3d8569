"""Cutting a pruning plan's channels out of the network with torch-pruning's per-layer pruning functions.

A plan is plain data, ``{group name: [unit indices to remove]}`` in the network's current numbering, so it
can be logged, broadcast to other ranks (``torch.distributed.broadcast_object_list``) and replayed on a fresh
dense copy. All indices of one step are mapped to channels before any layer changes, because pruning the
backward width moves the forward slice of a concatenated input.
"""
from collections.abc import Mapping

import torch
import torch_pruning as tp
from torch import nn

from vsrcompress.pruning.coupling import ChannelGroup, coupling_groups, is_deform_conv

Plan = dict[str, list[int]]


def check_plan(groups: list[ChannelGroup], plan: Mapping[str, list[int]]) -> dict[str, ChannelGroup]:
    """Reject unknown group names, out-of-range or repeated units, and plans that empty a group."""
    by_name = {g.name: g for g in groups}
    for name, units in plan.items():
        if name not in by_name:
            raise KeyError(f'pruning plan: unknown group {name!r}; groups of this network: {sorted(by_name)}')
        width = by_name[name].width
        if len(set(units)) != len(units) or any(not 0 <= u < width for u in units):
            raise ValueError(f'pruning plan: group {name!r} has {width} units; got indices {sorted(units)}')
        if len(units) >= width:
            raise ValueError(f'pruning plan: group {name!r} would lose all {width} units.')
    return by_name


def removed_channels(groups: list[ChannelGroup], plan: Mapping[str, list[int]]) -> dict[tuple[str, str], list[int]]:
    """``{(module name, 'in'|'out'): sorted channel indices}`` that the plan removes, in current numbering."""
    by_name = check_plan(groups, plan)
    removed: dict[tuple[str, str], set[int]] = {}
    for name, units in plan.items():
        for piece in by_name[name].slices:
            removed.setdefault((piece.module, piece.dim), set()).update(piece.channels(list(units)))
    return {key: sorted(idxs) for key, idxs in removed.items() if idxs}


def _prune_deform_conv(dcn: nn.Module, dim: str, idxs: list[int]) -> None:
    """torch-pruning's conv pruner reads ``transposed``, which basicsr's deformable conv lacks: cut it here."""
    axis, attr = (0, 'out_channels') if dim == 'out' else (1, 'in_channels')
    removed = set(idxs)
    keep = torch.tensor([i for i in range(dcn.weight.shape[axis]) if i not in removed], device=dcn.weight.device)
    dcn.weight = nn.Parameter(dcn.weight.detach().index_select(axis, keep))
    if dim == 'out' and dcn.bias is not None:
        dcn.bias = nn.Parameter(dcn.bias.detach().index_select(0, keep))
    setattr(dcn, attr, len(keep))


def apply_plan(net: nn.Module, plan: Mapping[str, list[int]]) -> None:
    """Remove the plan's units in place; parameters keep their ``requires_grad`` (a frozen SpyNet stays frozen).

    torch-pruning replaces each pruned weight by a new ``nn.Parameter``: optimizers built before this call
    hold stale tensors and must be rebuilt.
    """
    removal = removed_channels(coupling_groups(net), plan)
    frozen = {name for name, p in net.named_parameters() if not p.requires_grad}
    for (module_name, dim), idxs in removal.items():
        conv = net.get_submodule(module_name)
        if is_deform_conv(conv):
            _prune_deform_conv(conv, dim, idxs)
            continue
        prune = tp.prune_conv_out_channels if dim == 'out' else tp.prune_conv_in_channels
        prune(conv, idxs)
    for name, p in net.named_parameters():
        p.requires_grad_(name not in frozen)
