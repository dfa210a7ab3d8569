"""The recurrence of BasicVSR and IconVSR, written once: a streaming call that carries the forward state.

A call gets ``keep`` frames to deliver followed by lookahead frames. The backward branch runs over all of them from a
zero state at the last one (its output is used for the kept frames only); the forward branch continues from the
carried state over the kept frames only; the fusion and HR tail run on the kept frames only. The whole-sequence
``forward`` of the archs is the call that keeps every frame of a clip, has no state and ends the stream, so one code
path serves training, evaluation, streaming inference and the stateful graph export.

Plain PyTorch: the network's own modules and methods (``spynet``, the trunks, ``warp``, ``upsample``, ``edvr``) do
the work, so this module needs no basicsr.
"""
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from vsrcompress.streaming.keyframes import plan_keyframes
from vsrcompress.streaming.state import StreamState, is_iconvsr, past_frames


@dataclass
class StepOutput:
    """The kept frames' SR (b, keep, 3, H*scale, W*scale), the state for the next call and, when asked for, the
    forward branch's hidden state after each kept frame."""
    sr: torch.Tensor
    state: StreamState
    forward_features: list[torch.Tensor] | None = None


@dataclass
class Keyframes:
    """IconVSR's EDVR inputs for one call (see ``keyframes.KeyframePlan``).

    ``slots`` is a list of ints when the plan is known while the network runs (PyTorch); inside a traced graph it
    is a tensor input, and so is ``neighbours``: each frame then fuses through ``torch.where``, since a graph cannot
    branch on its inputs.
    """
    slots: Sequence[int] | torch.Tensor
    neighbours: Sequence[torch.Tensor] | torch.Tensor

    def features(self, net: nn.Module, buffer: torch.Tensor) -> list[torch.Tensor]:
        """EDVR features of every slot from the buffer (carried frames, then the call's frames)."""
        return [net.edvr(buffer.index_select(1, self.neighbours[k])) for k in range(len(self.neighbours))]

    def fuse(self, j: int, feat: torch.Tensor, fusion: nn.Module, features: list[torch.Tensor]) -> torch.Tensor:
        """``feat`` refined with the keyframe features if frame ``j`` is a keyframe, else ``feat``."""
        if isinstance(self.slots, torch.Tensor):
            slot = self.slots[j]
            fused = fusion(torch.cat([feat, torch.stack(features)[slot.clamp(min=0)]], dim=1))
            return torch.where(slot >= 0, fused, feat)
        if self.slots[j] < 0:
            return feat
        return fusion(torch.cat([feat, features[self.slots[j]]], dim=1))


def recurrence(net: nn.Module, x: torch.Tensor, keep: int, feat_forward: torch.Tensor | None, past_lq: torch.Tensor,
               keyframes: Keyframes | None = None, return_features: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor] | None]:
    """Both branches and the tail on ``x`` (b, n, 3, h, w), sizes as the state's; see the module docstring.

    Args:
        net: A BasicVSRNet or IconVSRNet (dense, pruned or fake-quantized).
        x: The call's frames: ``keep`` kept frames, then the lookahead.
        keep: Frames to deliver (1 <= keep <= n).
        feat_forward: The carried forward state; None: the start of a sequence (nothing to warp).
        past_lq: The carried frames (b, P, 3, h, w), oldest first; zeros where none were seen.
        keyframes: IconVSR's keyframe plan for this call (buffer positions in ``cat(past_lq, x)``).
        return_features: Also return the forward state after each kept frame.

    Returns:
        SR of the kept frames (b, keep, 3, h*scale, w*scale), the forward state after the last kept frame, the
        carried frames for the next call, and the forward features (or None).
    """
    b, n, c, h, w = x.shape
    iconvsr = is_iconvsr(net)
    has_state = feat_forward is not None
    if n > 1:
        flows_backward = net.spynet(x[:, :-1].reshape(-1, c, h, w), x[:, 1:].reshape(-1, c, h, w)).view(b, n - 1, 2,
                                                                                                         h, w)
    # the forward flow into kept frame i comes from frame i - 1; with a state, frame -1 is the last carried frame
    refs = x[:, :keep] if has_state else x[:, 1:keep]
    supps = torch.cat([past_lq[:, -1:], x[:, :keep - 1]], dim=1) if has_state else x[:, :keep - 1]
    if refs.shape[1]:
        flows_forward = net.spynet(refs.reshape(-1, c, h, w), supps.reshape(-1, c, h, w)).view(b, -1, 2, h, w)
    key_features = keyframes.features(net, torch.cat([past_lq, x], dim=1)) if iconvsr else []

    backward = [None] * keep
    feat = x.new_zeros(b, net.backward_trunk.num_feat, h, w)
    for i in range(n - 1, -1, -1):
        if i < n - 1:
            feat = net.warp(feat, flows_backward[:, i])
        if iconvsr:
            feat = keyframes.fuse(i, feat, net.backward_fusion, key_features)
        feat = net.backward_trunk(torch.cat([x[:, i], feat], dim=1))
        if i < keep:
            backward[i] = feat

    outputs, features = [], []
    feat = feat_forward if has_state else x.new_zeros(b, net.forward_trunk.num_feat, h, w)
    for i in range(keep):
        if has_state or i > 0:
            feat = net.warp(feat, flows_forward[:, i if has_state else i - 1])
        if iconvsr:
            feat = keyframes.fuse(i, feat, net.forward_fusion, key_features)
            feat = net.forward_trunk(torch.cat([x[:, i], backward[i], feat], dim=1))
            fused = feat
        else:
            feat = net.forward_trunk(torch.cat([x[:, i], feat], dim=1))
            fused = net.lrelu(net.fusion(torch.cat([backward[i], feat], dim=1)))
        outputs.append(net.upsample(fused, x[:, i]))
        if return_features:
            features.append(feat)
    past = torch.cat([past_lq, x[:, :keep]], dim=1)[:, -past_lq.shape[1]:]
    return torch.stack(outputs, dim=1), feat, past, features if return_features else None


def stream_step(net: nn.Module, lq: torch.Tensor, keep: int, state: StreamState | None = None, ended: bool = False,
                return_features: bool = False) -> StepOutput:
    """One streaming call: SR of the first ``keep`` frames of ``lq`` (b, n, 3, h, w); the rest is lookahead.

    Args:
        net: A BasicVSRNet or IconVSRNet (dense, pruned or fake-quantized), in the mode the caller wants.
        lq: The call's frames in [0, 1].
        keep: Frames to deliver, 1 <= keep <= n.
        state: What the previous call returned; None (or ``StreamState.zeros``) at the start of a stream.
        ended: ``lq``'s last frame is the stream's last (IconVSR: it is a keyframe and EDVR mirrors after it).
        return_features: Also return the forward branch's hidden states (tests compare them).
    """
    b, n, h, w = lq.shape[0], int(lq.shape[1]), lq.shape[3], lq.shape[4]
    if not isinstance(keep, int) or not 1 <= keep <= n:
        raise ValueError(f'keep: must be an integer from 1 to the {n} frames of the call, got {keep!r}')
    x = net.pad_spatial(lq) if is_iconvsr(net) else lq
    hp, wp = x.shape[3:]
    first = 0 if state is None else state.frame_index
    if state is not None and tuple(state.feat_forward.shape[2:]) != (hp, wp):
        raise ValueError(f'state: carried for frames of {tuple(state.feat_forward.shape[2:])}, got frames of '
                         f'{(hp, wp)}; start a new stream (state=None) when the size changes.')
    past = state.past_lq if state is not None else x.new_zeros(b, past_frames(net), 3, hp, wp)
    keyframes = None
    if is_iconvsr(net):
        plan = plan_keyframes(first, n, n, ended, net.keyframe_stride, net.temporal_padding, past.shape[1],
                              min(first, past.shape[1]))
        keyframes = Keyframes(plan.slots, [torch.tensor(nb, device=x.device) for nb in plan.neighbours])
    sr, feat, past, features = recurrence(net, x, keep, None if state is None else state.feat_forward, past,
                                          keyframes, return_features)
    sr = sr[..., :net.scale * h, :net.scale * w]
    return StepOutput(sr, StreamState(feat, past, first + keep), features)
