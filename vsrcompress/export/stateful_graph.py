"""A streaming call as a graph: the carried state as named inputs and outputs, beside the frames.

A stateful graph takes ``interval + lookahead`` frames and returns the SR of the first ``interval``; the forward
branch's state goes in and comes out (``vsrcompress.streaming.state``), so an engine continues the stream call after
call with no recomputed frames. Inputs and outputs, by name (H, W: the frames' size; dynamic graphs keep them as
axes ``height``/``width``):

===================  =====================================  =========================================
name                 shape                                  what
===================  =====================================  =========================================
``lq``               (1, interval + lookahead, 3, H, W)     the call's frames in [0, 1]
``feat_forward``     (1, C, H, W)                           forward hidden state (C: forward width)
``past_lq``          (1, P, 3, H, W)                        carried frames (P: 1, IconVSR 2 * padding)
``key_neighbours``   (K, 2 * padding + 1) int64             IconVSR only: EDVR frames of each slot
``key_slots``        (interval + lookahead,) int64          IconVSR only: slot of each frame, -1: none
``sr``               (1, interval, 3, H * s, W * s)         the kept frames' SR
``feat_forward_out`` (1, C, H, W)                           the state for the next call
``past_lq_out``      (1, P, 3, H, W)                        the carried frames for the next call
===================  =====================================  =========================================

The first call of a stream feeds zeros for the state. IconVSR's keyframes follow the stream's global schedule,
which a graph cannot count: the caller plans them (``plan_keyframes``, the same plan PyTorch uses) and feeds the
plan; IconVSR's H and W are multiples of 4 (frames are padded to them, as its EDVR alignment needs).
"""
import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from vsrcompress.streaming.keyframes import max_keyframes, plan_keyframes
from vsrcompress.streaming.state import (ICONVSR_SIZE_MULTIPLE, STATE_NAMES, STATE_OUTPUT_SUFFIX, is_iconvsr,
                                         past_frames)
from vsrcompress.streaming.step import Keyframes, recurrence

KEY_NEIGHBOURS, KEY_SLOTS = 'key_neighbours', 'key_slots'
STATE_OUTPUTS = tuple(name + STATE_OUTPUT_SUFFIX for name in STATE_NAMES)


@dataclass(frozen=True)
class StreamContract:
    """What a stateful graph takes per call, stored in its metadata (``OnnxGraphSpec.stream``).

    ``keyframe_slots`` (K), ``keyframe_stride`` and ``temporal_padding`` are IconVSR's (None for BasicVSR).
    """
    interval: int
    lookahead: int
    feat_channels: int
    past_frames: int
    keyframe_stride: int | None = None
    temporal_padding: int | None = None
    keyframe_slots: int | None = None

    @property
    def frames(self) -> int:
        return self.interval + self.lookahead

    @property
    def iconvsr(self) -> bool:
        return self.keyframe_slots is not None

    @property
    def size_multiple(self) -> int:
        return ICONVSR_SIZE_MULTIPLE if self.iconvsr else 1

    @property
    def input_names(self) -> list[str]:
        return ['lq', *STATE_NAMES, *([KEY_NEIGHBOURS, KEY_SLOTS] if self.iconvsr else [])]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> 'StreamContract':
        return cls(**data)

    def zero_state(self, height: int, width: int, dtype=np.float32) -> dict[str, np.ndarray]:
        """The state a stream starts from, for (padded) frames of ``height`` x ``width``."""
        return {STATE_NAMES[0]: np.zeros((1, self.feat_channels, height, width), dtype),
                STATE_NAMES[1]: np.zeros((1, self.past_frames, 3, height, width), dtype)}

    def keyframe_feeds(self, first: int, real_frames: int, ended: bool) -> dict[str, np.ndarray]:
        """IconVSR's keyframe plan for a call starting at global frame ``first``; {} for BasicVSR.

        Args:
            first: Global index of the call's first frame.
            real_frames: The stream's frames in the call (fewer than ``frames`` at the end: mirrored padding).
            ended: The stream's last frame is in the call.
        """
        if not self.iconvsr:
            return {}
        plan = plan_keyframes(first, self.frames, real_frames, ended, self.keyframe_stride, self.temporal_padding,
                              self.past_frames, min(first, self.past_frames), max_slots=self.keyframe_slots)
        return {KEY_NEIGHBOURS: np.asarray(plan.neighbours, dtype=np.int64),
                KEY_SLOTS: np.asarray(plan.slots, dtype=np.int64)}


def stream_contract(net: nn.Module, interval: int, lookahead: int) -> StreamContract:
    """The contract of ``net``'s stateful graph keeping ``interval`` frames with ``lookahead`` more."""
    if not isinstance(interval, int) or interval < 1:
        raise ValueError(f'interval: must be an integer >= 1 (frames delivered per call), got {interval!r}')
    if not isinstance(lookahead, int) or lookahead < 0:
        raise ValueError(f'lookahead: must be an integer >= 0 (frames after the kept ones for the backward branch), '
                         f'got {lookahead!r}')
    keyframes = {}
    if is_iconvsr(net):
        keyframes = {'keyframe_stride': net.keyframe_stride, 'temporal_padding': net.temporal_padding,
                     'keyframe_slots': max_keyframes(interval + lookahead, net.keyframe_stride)}
    return StreamContract(interval, lookahead, net.forward_trunk.num_feat, past_frames(net), **keyframes)


@contextlib.contextmanager
def stateful_forward(net: nn.Module, contract: StreamContract) -> Iterator[nn.Module]:
    """``net`` whose ``forward`` is, for the duration, the graph's call (inputs and outputs as the module docstring).

    The network itself is traced (not a wrapper), so the graph's initializers keep the module names the INT8
    placements look up.
    """
    def forward(lq, feat_forward, past_lq, key_neighbours=None, key_slots=None):
        keyframes = Keyframes(key_slots, key_neighbours) if contract.iconvsr else None
        sr, feat, past, _ = recurrence(net, lq, contract.interval, feat_forward, past_lq, keyframes)
        return sr, feat, past

    net.forward = forward
    try:
        yield net
    finally:
        del net.forward


def example_call(contract: StreamContract, height: int, width: int, first: int = 0,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
    """Inputs of one call (random frames and state, the keyframe plan of a call at ``first``), in input order."""
    lq = torch.rand(1, contract.frames, 3, height, width, generator=generator)
    state = contract.zero_state(height, width)
    tensors = [lq] + [torch.rand(state[name].shape, generator=generator) for name in STATE_NAMES]
    tensors += [torch.from_numpy(a) for a in contract.keyframe_feeds(first, contract.frames, False).values()]
    return tuple(tensors)
