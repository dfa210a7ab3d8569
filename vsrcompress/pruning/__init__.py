"""Structured channel pruning of BasicVSRNet/IconVSRNet, in plain PyTorch + torch-pruning (no basicsr).

Start with ``prune_network(net, options)`` (one call) or ``VSRChannelPruner`` (steps with fine-tuning between
them); ``save_pruned_checkpoint`` / ``rebuild_pruned_network`` store and restore the result. See
docs/pruning.md for every option and measured numbers.
"""
from vsrcompress.network_parts import PRUNING_PARTS
from vsrcompress.pruning.complexity import MacProfile, count_complexity
from vsrcompress.pruning.config import PruningConfig, parse_pruning_config
from vsrcompress.pruning.coupling import ChannelGroup, CoupledSlice, coupling_groups
from vsrcompress.pruning.importance import CRITERIA
from vsrcompress.pruning.pruned_checkpoint import (pruned_checkpoint, rebuild_pruned_network, replay_history,
                                                   save_pruned_checkpoint)
from vsrcompress.pruning.pruner import VSRChannelPruner, prune_network
from vsrcompress.pruning.surgery import Plan, apply_plan

__all__ = [
    'CRITERIA', 'PRUNING_PARTS', 'ChannelGroup', 'CoupledSlice', 'MacProfile', 'Plan', 'PruningConfig',
    'VSRChannelPruner',
    'apply_plan', 'count_complexity', 'coupling_groups', 'parse_pruning_config', 'prune_network', 'pruned_checkpoint',
    'rebuild_pruned_network', 'replay_history', 'save_pruned_checkpoint'
]
