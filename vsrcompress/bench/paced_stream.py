"""A stream at a frame rate: a file's frames released one frame period apart, through the real pipeline.

``run_video_sr`` reads a file as fast as it decodes, so its frames queue up ahead of the model and the end-to-end
latency it reports is mostly that backlog. A camera delivers a frame every period instead; ``PacedSource`` gives a
file's frames at that rate (frame k not before k periods after the first), and ``run_paced`` streams it through the
same decode -> model -> encode stages, so the latency measured is what a live viewer waits at that frame rate.
"""
import time
from collections.abc import Iterator

import numpy as np

from vsrcompress.inference.backend_base import Backend
from vsrcompress.inference.frame_sink import FrameSink
from vsrcompress.inference.frame_source import FrameSource, open_frame_source
from vsrcompress.inference.pipeline import super_resolve_stream
from vsrcompress.inference.run_report import RunStats
from vsrcompress.inference.stream_plan import make_planner


class PacedSource(FrameSource):
    """``source``'s frames, frame k released ``k * period`` seconds after iteration starts (a camera at
    ``1 / period`` frames per second); later if decoding is slower than that."""

    def __init__(self, source: FrameSource, period: float):
        if not period > 0:
            raise ValueError(f'period: must be > 0 seconds, got {period!r}')
        self.name, self.height, self.width = source.name, source.height, source.width
        self.fps, self.frame_count, self.period = 1.0 / period, source.frame_count, period
        self._source = source

    def __iter__(self) -> Iterator[np.ndarray]:
        start = time.perf_counter()
        for k, frame in enumerate(self._source):
            delay = start + k * self.period - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            yield frame

    def close(self) -> None:
        self._source.close()


def run_paced(input_spec: str, output: str, backend: Backend, period: float, interval: int,
              lookahead: int | None = None, overlap: int | None = None) -> dict:
    """Stream ``input_spec`` into ``output`` at one frame per ``period`` seconds; the run report (as
    ``run_video_sr``'s, plus ``frame_period_ms``). Stateful unless ``overlap`` is given."""
    planner = make_planner(backend, interval, overlap, lookahead)
    source = PacedSource(open_frame_source(input_spec), period)
    try:
        sink = FrameSink(output, source.fps, source.width * backend.scale, source.height * backend.scale,
                         avoid=[input_spec])
    except BaseException:
        source.close()
        raise
    stats = RunStats()
    backend.reset_stream()
    super_resolve_stream(source, sink, backend, planner, stats, progress=False)
    mode = {'mode': 'stateful', 'lookahead': planner.lookahead} if overlap is None else {'mode': 'windowed',
                                                                                          'overlap': overlap}
    return stats.report(**mode, interval=planner.interval, frame_period_ms=1000.0 * period)
