"""What a bidirectional recurrent VSR network carries from one streaming call to the next.

The forward branch is causal, so its hidden state after the last delivered frame, with the frames the next flow and
keyframe need, makes the next call continue the whole-sequence forward branch exactly. The backward branch starts
afresh in every call from the end of its lookahead and carries nothing.

Carried tensors (the graph inputs and outputs of a stateful export, by these names):

- ``feat_forward`` (b, C, H, W): the forward trunk's hidden state, C its width (``net.forward_trunk.num_feat``).
- ``past_lq`` (b, P, 3, H, W): the last P LQ frames, oldest first. BasicVSR: P = 1 (the flow to the next frame).
  IconVSR: P = 2 * temporal_padding, because basicsr's mirror at the end of a sequence reads that far back.

H and W are the frames' size, for IconVSR rounded up to a multiple of 4 (its EDVR alignment pads to that). A stream
starts from zeros: the forward branch then warps a zero state, which is exactly starting without one.
"""
from dataclasses import dataclass

import torch
from torch import nn

STATE_NAMES = ('feat_forward', 'past_lq')
STATE_OUTPUT_SUFFIX = '_out'
ICONVSR_SIZE_MULTIPLE = 4


def is_iconvsr(net: nn.Module) -> bool:
    """IconVSR-like: it has EDVR keyframe features (duck-typed, so the engine needs no arch import)."""
    return hasattr(net, 'edvr')


def past_frames(net: nn.Module) -> int:
    """P, the LQ frames a network carries (see the module docstring)."""
    return 2 * net.temporal_padding if is_iconvsr(net) else 1


def state_size(net: nn.Module, height: int, width: int) -> tuple[int, int]:
    """The (H, W) of the carried tensors for frames of ``height`` x ``width``."""
    if not is_iconvsr(net):
        return height, width
    m = ICONVSR_SIZE_MULTIPLE
    return -(-height // m) * m, -(-width // m) * m


@dataclass
class StreamState:
    """The carried tensors and ``frame_index``, the global index of the next frame (IconVSR's keyframe schedule)."""
    feat_forward: torch.Tensor
    past_lq: torch.Tensor
    frame_index: int = 0

    @classmethod
    def zeros(cls, net: nn.Module, batch: int, height: int, width: int, device=None, dtype=None) -> 'StreamState':
        """The state a stream starts from, for frames of ``height`` x ``width``."""
        h, w = state_size(net, height, width)
        return cls(torch.zeros(batch, net.forward_trunk.num_feat, h, w, device=device, dtype=dtype),
                   torch.zeros(batch, past_frames(net), 3, h, w, device=device, dtype=dtype))

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """In ``STATE_NAMES`` order."""
        return self.feat_forward, self.past_lq

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors())
