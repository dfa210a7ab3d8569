"""Stateful streaming of BasicVSR/IconVSR: the forward state carried across calls, a lookahead for the backward branch.

Plain PyTorch (no basicsr). ``stream_step`` is the one recurrence (the archs' whole-sequence ``forward`` calls it);
``StreamState`` what a call carries; ``plan_keyframes`` IconVSR's global keyframe schedule. See docs/deploy.md.
"""
from vsrcompress.streaming.keyframes import KeyframePlan, max_keyframes, plan_keyframes
from vsrcompress.streaming.state import STATE_NAMES, StreamState, past_frames, state_size
from vsrcompress.streaming.step import Keyframes, StepOutput, recurrence, stream_step

__all__ = ['STATE_NAMES', 'KeyframePlan', 'Keyframes', 'StepOutput', 'StreamState', 'max_keyframes', 'past_frames',
           'plan_keyframes', 'recurrence', 'state_size', 'stream_step']
