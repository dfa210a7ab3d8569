"""MACs per delivered frame of a streaming call, counted by torch-pruning on the call as it is traced for export.

A windowed call is the network's forward on ``interval + 2 * overlap`` frames and delivers ``interval``; a stateful
call is ``stateful_forward`` on ``interval + lookahead`` frames with a carried state (the graph's inputs,
``example_call``) and delivers ``interval``. Both are counted on a meta copy (shapes only, see
``pruning.complexity``). IconVSR's stateful graph computes every EDVR slot of its fixed plan and both fusions at
every frame (a graph selects with ``torch.where`` instead of branching), used or not, and is counted as such.
"""
import torch
from torch import nn
from torch_pruning.utils import count_ops_and_params

from vsrcompress.export.stateful_graph import StreamContract, example_call, stateful_forward, stream_contract
from vsrcompress.pruning.complexity import meta_copy
from vsrcompress.streaming.state import state_size


class _StatefulCall(nn.Module):
    """The stateful call as a module: ``count_ops_and_params`` counts a deep copy of what it is given, and
    ``stateful_forward`` must patch that copy's forward (a patched ``forward`` attribute would still call the
    original's modules)."""

    def __init__(self, net: nn.Module, contract: StreamContract):
        super().__init__()
        self.net, self.contract = net, contract

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with stateful_forward(self.net, self.contract):
            return self.net(*inputs)


@torch.no_grad()
def macs_per_delivered_frame(net: nn.Module, height: int, width: int, interval: int, lookahead: int | None = None,
                             overlap: int | None = None) -> float:
    """MACs of one call of ``net`` on frames of ``height`` x ``width`` over the ``interval`` frames it delivers:
    windowed with ``overlap``, else stateful with ``lookahead``."""
    counted = meta_copy(net)
    if overlap is not None:
        macs, _ = count_ops_and_params(counted, torch.zeros(1, interval + 2 * overlap, 3, height, width,
                                                            device='meta'))
        return macs / interval
    contract = stream_contract(counted, interval, lookahead)
    # frames and state as shapes only; IconVSR's keyframe plan stays real (the graph indexes with its values)
    inputs = tuple(t.to('meta') if t.is_floating_point() else t
                   for t in example_call(contract, *state_size(counted, height, width), first=1))
    macs, _ = count_ops_and_params(_StatefulCall(counted, contract), inputs)
    return macs / interval
