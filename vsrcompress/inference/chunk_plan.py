"""Which input frames each model call sees and which of its outputs are kept, for a stream of unknown length.

A bidirectional recurrent network needs frames after a chunk as well as before it: each call processes a
window of ``interval`` output frames plus up to ``overlap`` context frames on each side, whose outputs are
computed and discarded, so chunk borders do not show. Every window has the same length
T = interval + 2 * overlap (an exported graph is traced for one T): at the start of the stream the window takes
its context from the right, at the end from the left, and a stream shorter than T is padded by mirroring.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    """One model call: input frames ``indices`` (len T, mirrored at the end of a short stream); the outputs
    for frames ``keep_start <= i < keep_stop`` are kept, at positions ``i - indices[0]`` of the output."""
    indices: tuple[int, ...]
    keep_start: int
    keep_stop: int

    @property
    def first(self) -> int:
        return self.indices[0]

    def output_position(self, index: int) -> int:
        """Where frame ``index`` is in the window's output (a window outputs every frame it reads)."""
        return index - self.first

    def frames_waited(self, index: int) -> int:
        """Later frames kept frame ``index`` waited for before its window could run."""
        return max(self.indices) - index


def mirrored_indices(count: int, length: int) -> list[int]:
    """``0..count-1`` extended to ``length`` entries by bouncing back and forth (0 1 2 1 0 1 ...)."""
    if count == 1:
        return [0] * length
    period = 2 * (count - 1)
    return [k % period if k % period < count else period - k % period for k in range(length)]


def validate_chunking(interval: int, overlap: int, window_frames: int | None = None) -> int:
    """Check ``interval``/``overlap`` (and a backend's fixed window length); return the window length T."""
    if not isinstance(interval, int) or interval < 2:
        raise ValueError(f'interval: must be an integer >= 2 (frames kept per model call), got {interval!r}')
    if not isinstance(overlap, int) or not 0 <= overlap < interval:
        raise ValueError(f'overlap: must be an integer with 0 <= overlap < interval ({interval}), got {overlap!r}')
    frames = interval + 2 * overlap
    if window_frames is not None and frames != window_frames:
        fitting = [(window_frames - 2 * o, o) for o in range(window_frames) if window_frames - 2 * o >= max(2, o + 1)]
        hint = ', '.join(f'--interval {i} --overlap {o}' for i, o in fitting)
        raise ValueError(f'interval/overlap: the model takes windows of exactly {window_frames} frames, but '
                         f'interval + 2 * overlap = {interval} + 2 * {overlap} = {frames}. Fitting choices: {hint}; '
                         f'or export a graph with --frames {frames}.')
    return frames


class ChunkPlanner:
    """Emits ``Window``s as frames arrive; ``next_window`` is called with the frames available so far.

    Args:
        interval: Output frames kept per model call (>= 2).
        overlap: Context frames on each side, computed and discarded (0 <= overlap < interval).
        window_frames: A backend's fixed window length, which must equal interval + 2 * overlap; None if any.
        min_frames: Fewest frames the network accepts (IconVSR: 2 * temporal_padding + 1); short streams are
            mirrored up to it.
    """

    def __init__(self, interval: int, overlap: int, window_frames: int | None = None, min_frames: int = 2):
        self.frames = validate_chunking(interval, overlap, window_frames)
        self.interval, self.overlap = interval, overlap
        self.pad_to = self.frames if window_frames is not None else min_frames
        self.next_output = 0

    def next_window(self, available: int, ended: bool) -> Window | None:
        """The next window if its frames are available (``ended``: ``available`` is the stream length)."""
        start = self.next_output
        if ended and start >= available:
            return None
        if not ended:
            first = max(0, start - self.overlap)
            if available < first + self.frames:
                return None
            window = Window(tuple(range(first, first + self.frames)), start, start + self.interval)
        elif available >= self.frames:
            first = max(0, min(start - self.overlap, available - self.frames))
            window = Window(tuple(range(first, first + self.frames)), start, min(start + self.interval, available))
        else:
            length = max(available, self.pad_to)  # the whole (short) stream is in this one window
            window = Window(tuple(mirrored_indices(available, length)), start, available)
        self.next_output = window.keep_stop
        return window

    def oldest_needed(self) -> int:
        """Frames before this index are never read again and may be dropped from the buffer."""
        return max(0, self.next_output - self.frames)
