"""Deployable pruned checkpoints: plain tensors, the width spec and the pruning provenance, written atomically.

The file is ``vsrcompress.checkpoint.network_checkpoint`` data plus a ``pruning`` entry (the pruner's report:
config, widths, params and MACs before/after, the per-step plans, the source checkpoint). It loads with
``torch.load(weights_only=True)`` and rebuilds as ``NetClass(**arch, widths=widths)`` with a strict load; the
plans can also be replayed on the dense network to re-derive the pruned one from its teacher.
"""
from collections.abc import Mapping

from torch import nn

from vsrcompress.checkpoint import load_checkpoint, load_state_strict, network_checkpoint, save_atomic
from vsrcompress.pruning.surgery import apply_plan


def pruned_checkpoint(net: nn.Module, network_opt: Mapping, report: Mapping, source: str | None = None) -> dict:
    """Checkpoint data of a pruned network; ``source`` names the dense checkpoint it came from."""
    return network_checkpoint(net, network_opt, pruning={**report, 'source': source})


def save_pruned_checkpoint(path: str, net: nn.Module, network_opt: Mapping, report: Mapping,
                           source: str | None = None) -> dict:
    """Write ``pruned_checkpoint(...)`` to ``path`` atomically and return it."""
    ckpt = pruned_checkpoint(net, network_opt, report, source)
    save_atomic(ckpt, path)
    return ckpt


def rebuild_pruned_network(net_class: type[nn.Module], ckpt: Mapping | str, param_key: str = 'params') -> nn.Module:
    """Build ``net_class`` from a checkpoint's arch options and width spec, then load its weights strictly."""
    source = ckpt if isinstance(ckpt, str) else 'pruned checkpoint'
    if isinstance(ckpt, str):
        ckpt = load_checkpoint(ckpt)
    for key in ('arch', 'widths', param_key):
        if key not in ckpt:
            raise KeyError(f'{source}: no {key!r} entry; a pruned checkpoint holds arch, widths and {param_key}.')
    arch = dict(ckpt['arch'])
    arch_type = arch.pop('type', net_class.__name__)
    if arch_type != net_class.__name__:
        raise ValueError(f'{source}: holds a {arch_type}, not a {net_class.__name__}.')
    net = net_class(**arch, widths=ckpt['widths'])
    load_state_strict(net, ckpt[param_key], source)
    return net


def replay_history(net: nn.Module, history: list[Mapping[str, list[int]]]) -> None:
    """Re-apply recorded plans, in order, to the network they started from (e.g. the dense teacher's copy)."""
    for plan in history:
        apply_plan(net, plan)
