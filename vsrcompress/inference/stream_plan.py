"""Which frames each stateful model call sees, for a stream of unknown length.

A stateful call delivers ``interval`` frames and reads ``lookahead`` frames after them for the backward branch; the
forward state is carried from the previous call, so no frame is computed twice by the forward branch and the tail,
and a frame waits for at most ``interval - 1 + lookahead`` later frames. At the end of the stream the calls shrink
to what is left. A fixed-length graph (an exported stateful graph takes exactly ``interval + lookahead`` frames) gets
the stream's last frames mirrored up to its length, as windowed graphs do; PyTorch takes the shorter call as it is.
"""
from dataclasses import dataclass

from vsrcompress.inference.chunk_plan import ChunkPlanner, mirrored_indices

DEFAULT_INTERVAL, DEFAULT_LOOKAHEAD = 5, 2
DEFAULT_WINDOWED_INTERVAL = 15  # windowed mode in PyTorch, which takes any window length


@dataclass(frozen=True)
class StreamCall:
    """One stateful call: frames ``indices`` (the stream's ``first .. first + real - 1``, then mirrored padding);
    the first ``keep`` outputs are delivered; ``ended``: the stream's last frame is among them."""
    indices: tuple[int, ...]
    keep: int
    real: int
    ended: bool

    @property
    def first(self) -> int:
        return self.indices[0]

    @property
    def keep_start(self) -> int:
        return self.first

    @property
    def keep_stop(self) -> int:
        return self.first + self.keep

    def output_position(self, index: int) -> int:
        """Where frame ``index`` is in the call's output (a stateful call outputs its kept frames only)."""
        return index - self.first

    def frames_waited(self, index: int) -> int:
        """Later frames kept frame ``index`` waited for before its call could run."""
        return self.first + self.real - 1 - index


def validate_streaming(interval: int, lookahead: int, contract=None) -> None:
    """Check ``interval``/``lookahead`` (and a stateful graph's own, which they must equal)."""
    if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
        raise ValueError(f'interval: must be an integer >= 1 (frames delivered per model call), got {interval!r}')
    if not isinstance(lookahead, int) or isinstance(lookahead, bool) or lookahead < 0:
        raise ValueError(f'lookahead: must be an integer >= 0 (frames the backward branch reads after the delivered '
                         f'ones), got {lookahead!r}')
    if contract is not None and (interval, lookahead) != (contract.interval, contract.lookahead):
        raise ValueError(f'interval/lookahead: the stateful graph was exported for --interval {contract.interval} '
                         f'--lookahead {contract.lookahead}, not --interval {interval} --lookahead {lookahead}; leave '
                         'them out to use the graph\'s, or export another graph (scripts/export.py --interval I '
                         '--lookahead L).')


class StreamPlanner:
    """Emits ``StreamCall``s as frames arrive; ``next_window`` is called with the frames available so far.

    Args:
        interval: Frames delivered per call (>= 1).
        lookahead: Frames after them the backward branch reads (>= 0).
        fixed_frames: Pad the calls at the end of the stream to ``interval + lookahead`` frames (graphs).
    """

    def __init__(self, interval: int, lookahead: int, fixed_frames: bool = False):
        validate_streaming(interval, lookahead)
        self.interval, self.lookahead, self.fixed_frames = interval, lookahead, fixed_frames
        self.frames = interval + lookahead
        self.next_output = 0

    def next_window(self, available: int, ended: bool) -> StreamCall | None:
        """The next call if its frames are available (``ended``: ``available`` is the stream length)."""
        start = self.next_output
        if start >= available and ended or not ended and available < start + self.frames:
            return None
        stop = min(available, start + self.frames)
        real = stop - start
        indices = tuple(range(start, stop))
        if self.fixed_frames and real < self.frames:
            indices = tuple(start + k for k in mirrored_indices(real, self.frames))
        call = StreamCall(indices, min(self.interval, real), real, ended and stop == available)
        self.next_output = call.keep_stop
        return call

    def oldest_needed(self) -> int:
        """Frames before this index are never read again and may be dropped from the buffer."""
        return self.next_output


def make_planner(backend, interval: int | None = None, overlap: int | None = None,
                 lookahead: int | None = None) -> 'StreamPlanner | ChunkPlanner':
    """The planner of a run on ``backend``: stateful unless ``overlap`` is given (windowed mode).

    Defaults: a graph's own interval and lookahead (stateful) or ``T - 2 * overlap`` (windowed); PyTorch's are
    ``DEFAULT_INTERVAL``/``DEFAULT_LOOKAHEAD`` and ``DEFAULT_WINDOWED_INTERVAL``. A graph run in the mode it was not
    exported for is refused here, before any frame, naming the flags.
    """
    from vsrcompress.inference.backend_base import require_mode

    if overlap is not None:
        if lookahead is not None:
            raise ValueError('lookahead: applies to stateful streaming; --overlap to --windowed mode: give one.')
        require_mode(backend, stateful=False)
        window = backend.window_frames
        if interval is None:
            interval = DEFAULT_WINDOWED_INTERVAL if window is None else window - 2 * overlap
            if interval < 2:
                raise ValueError(f'overlap: the model takes {window}-frame windows; --overlap {overlap} leaves '
                                 f'{interval} output frames per call. Use --overlap at most {(window - 2) // 2}, or '
                                 'export with more --frames.')
        return ChunkPlanner(interval, overlap, window, backend.min_frames)
    require_mode(backend, stateful=True)
    contract = backend.contract
    interval = interval if interval is not None else contract.interval if contract else DEFAULT_INTERVAL
    lookahead = lookahead if lookahead is not None else contract.lookahead if contract else DEFAULT_LOOKAHEAD
    validate_streaming(interval, lookahead, contract)
    return StreamPlanner(interval, lookahead, fixed_frames=contract is not None)
