"""Which frames of a streaming call are IconVSR keyframes, and which frames EDVR reads for each.

IconVSR refines its hidden states with EDVR features at keyframes: every ``keyframe_stride`` frames of the whole
sequence and its last frame. In a stream the schedule is the stream's (global frame index), not the call's, and the
stream's last frame is a keyframe once the stream is known to have ended. EDVR reads ``2 * temporal_padding + 1``
frames centred on the keyframe; outside the sequence basicsr mirrors in its own way (for padding 2: frames 4, 3 before
the start, frames n-4, n-5 after the end), which is kept so that a stream that sees its whole clip equals the
whole-sequence network exactly. Frames a call cannot see (after its lookahead while the stream goes on, or before the
carried ones) are replaced by the nearest frame it can see.

The plan addresses frames in the call's *buffer*: the ``past`` carried frames (oldest first), then the call's frames.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class KeyframePlan:
    """EDVR inputs of one call: ``neighbours[k]`` are buffer positions of slot k's frames; ``slots[j]`` is the slot of
    the call's frame j, or -1 if frame j is no keyframe. Slots beyond the keyframes in use repeat the first slot's
    neighbours (a fixed-size graph computes them and uses none)."""
    slots: tuple[int, ...]
    neighbours: tuple[tuple[int, ...], ...]


def max_keyframes(frames: int, stride: int) -> int:
    """The most schedule keyframes a call of ``frames`` frames can hold, over every phase of the schedule."""
    return -(-frames // stride)


def plan_keyframes(first: int, frames: int, real_frames: int, ended: bool, stride: int, padding: int, past: int,
                   past_valid: int, max_slots: int | None = None) -> KeyframePlan:
    """The keyframes of a call and the buffer positions of their EDVR neighbours.

    Args:
        first: Global index of the call's first frame.
        frames: Frames in the call (a fixed-length graph's, mirrored padding at the end of a stream included).
        real_frames: How many of them are the stream's frames ``first, first + 1, ...``; the rest are padding.
        ended: The stream's last frame is ``first + real_frames - 1``: it is a keyframe, and EDVR mirrors after it.
        stride: ``keyframe_stride``.
        padding: ``temporal_padding`` (EDVR reads ``2 * padding + 1`` frames).
        past: Carried frames at the start of the buffer.
        past_valid: How many of the carried frames are real (fewer at the start of a stream).
        max_slots: EDVR slots of a fixed-size graph; None: as many as there are keyframes. A stream's last keyframe
            that finds no free slot is left out (the graph then differs from PyTorch at the stream's very end only).
    """
    keys = [j for j in range(real_frames) if (first + j) % stride == 0]
    if ended and real_frames - 1 not in keys:
        keys.append(real_frames - 1)
    if max_slots is not None:
        keys = keys[:max_slots]
    end = first + real_frames  # the sequence length, when ended
    lowest, highest = first - min(past_valid, past, first), end - 1

    def position(v: int) -> int:
        if v < 0:
            v = padding - v  # basicsr's mirror before the start
        if ended and v >= end:
            v = 2 * end - padding - 2 - v  # and after the end
        return min(max(v, lowest), highest) - first + past

    neighbours = [tuple(position(first + j + d) for d in range(-padding, padding + 1)) for j in keys]
    slots = [-1] * frames
    for slot, j in enumerate(keys):
        slots[j] = slot
    if max_slots is not None:
        filler = neighbours[0] if neighbours else tuple([past] * (2 * padding + 1))
        neighbours += [filler] * (max_slots - len(neighbours))
    return KeyframePlan(tuple(slots), tuple(neighbours))
