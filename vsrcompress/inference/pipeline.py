"""Streaming video super-resolution: decode thread -> model (caller's thread) -> encode thread.

The stages talk through bounded queues, so decoding and encoding overlap the model and memory stays bounded
for streams of any length. An exception in any stage stops all three (each waits on its queue with a
timeout and checks a shared stop flag) and is re-raised in the caller's thread after the threads are joined;
Ctrl-C in the caller's thread does the same. The output is then finalized as a playable partial file (see
``frame_sink``), never left under the output name.
"""
import queue
import sys
import threading
import time
from collections.abc import Sequence

import cv2
import numpy as np
import torch
from tqdm import tqdm

from vsrcompress.inference.backends import Backend
from vsrcompress.inference.chunk_plan import ChunkPlanner
from vsrcompress.inference.stream_plan import StreamCall, StreamPlanner, make_planner
from vsrcompress.inference.frame_sink import FrameSink, check_writable_folder
from vsrcompress.inference.frame_source import FrameSource, open_frame_source
from vsrcompress.inference.run_report import RunStats, format_report, write_report_json

_END = object()
_POLL_SECONDS = 0.1


class _Stopped(Exception):
    """Another stage failed; this one leaves quietly (the other stage's exception is the one raised)."""


class _Stages:
    """The stop flag, the first error, and queue operations that give up when the flag is set.

    ``cancel`` is set from outside (the main thread of a several-input run, on Ctrl-C): every stage then stops as
    if interrupted, and the output is finalized as a partial file.
    """

    def __init__(self, cancel: threading.Event | None = None):
        self.stop = threading.Event()
        self.cancel = cancel
        self.errors: list[BaseException] = []

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set() and not self.stop.is_set():
            self.fail(KeyboardInterrupt('cancelled'))

    def fail(self, err: BaseException) -> None:
        if not isinstance(err, _Stopped):
            self.errors.append(err)
        self.stop.set()

    def put(self, q: queue.Queue, item) -> None:
        self._check_cancel()
        while not self.stop.is_set():
            self._check_cancel()
            try:
                q.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                pass
        raise _Stopped

    def get(self, q: queue.Queue):
        while True:
            try:
                return q.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                self._check_cancel()
                if self.stop.is_set():
                    raise _Stopped from None


def _decode(source: FrameSource, padded: tuple[int, int], out_q: queue.Queue, stages: _Stages, stats: RunStats):
    try:
        pad_h, pad_w = padded[0] - source.height, padded[1] - source.width
        for index, frame in enumerate(source):
            read_at = time.perf_counter()
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            if pad_h or pad_w:
                rgb = cv2.copyMakeBorder(rgb, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
            stages.put(out_q, (index, rgb, read_at))
            stats.frames_in += 1
        stages.put(out_q, _END)
    except BaseException as err:  # noqa: BLE001  (handed to the caller's thread)
        stages.fail(err)


def _encode(sink: FrameSink, in_q: queue.Queue, stages: _Stages, stats: RunStats, total: int | None, progress: bool):
    bar = tqdm(total=total, unit='frame', desc='super-resolving', disable=not progress, file=sys.stderr)
    try:
        while (item := stages.get(in_q)) is not _END:
            _, rgb, read_at = item
            sink.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            stats.frame_latency_seconds.append(time.perf_counter() - read_at)
            stats.frames_out += 1
            bar.update(1)
    except BaseException as err:  # noqa: BLE001
        stages.fail(err)
    finally:
        bar.close()


def _run_model(backend: Backend, planner: StreamPlanner | ChunkPlanner, crop: tuple[int, int], in_q: queue.Queue,
               out_q: queue.Queue, stages: _Stages, stats: RunStats) -> None:
    """The caller's-thread stage: buffer decoded frames, run each call (stateful or windowed), pass the kept SR
    frames on."""
    buffer: dict[int, tuple[np.ndarray, float]] = {}
    available, ended = 0, False
    out_h, out_w = crop[0] * backend.scale, crop[1] * backend.scale
    while True:
        window = planner.next_window(available, ended)
        if window is None:
            if ended:
                break
            item = stages.get(in_q)
            if item is _END:
                ended = True
            else:
                buffer[item[0]] = item[1:]
                available += 1
            continue
        clip = np.stack([buffer[i][0] for i in window.indices])
        stateful = isinstance(window, StreamCall)
        start = time.perf_counter()
        sr = backend.stream(clip, window) if stateful else backend.infer(clip)
        stats.chunk_seconds.append(time.perf_counter() - start)
        stats.chunk_frames.append(len(window.indices))
        # the forward branch and tail: a stateful graph runs its fixed interval, PyTorch the kept frames
        stats.forward_frames.append(len(window.indices) if not stateful else
                                    backend.contract.interval if backend.contract else window.keep)
        stats.state_bytes = max(stats.state_bytes, backend.state_bytes())
        for index in range(window.keep_start, window.keep_stop):
            stats.frames_waited.append(window.frames_waited(index))
            stages.put(out_q, (index, sr[window.output_position(index), :out_h, :out_w], buffer[index][1]))
        for index in [i for i in buffer if i < planner.oldest_needed()]:
            del buffer[index]
    stages.put(out_q, _END)


def super_resolve_stream(source: FrameSource, sink: FrameSink, backend: Backend,
                         planner: StreamPlanner | ChunkPlanner,
                         stats: RunStats, progress: bool = True, cancel: threading.Event | None = None,
                         publish: bool = True) -> None:
    """Run the three stages until the source ends; raise the first stage error after stopping all of them.

    On success the sink is sealed (every frame checked on disk) and, with ``publish``, finished; otherwise it is
    aborted (partial output kept, see ``frame_sink``). ``stats`` is filled in either way.
    """
    padded = backend.padded_size(source.height, source.width)
    depth = 2 * planner.frames
    decoded, encoded = queue.Queue(maxsize=depth), queue.Queue(maxsize=depth)
    stages = _Stages(cancel)
    threads = [threading.Thread(target=_decode, args=(source, padded, decoded, stages, stats), name='decode',
                                daemon=True),
               threading.Thread(target=_encode, args=(sink, encoded, stages, stats, source.frame_count, progress),
                                name='encode', daemon=True)]
    for thread in threads:
        thread.start()
    try:
        _run_model(backend, planner, (source.height, source.width), decoded, encoded, stages, stats)
    except BaseException as err:  # noqa: BLE001  (KeyboardInterrupt included: stop the threads, then re-raise)
        stages.fail(err)
    for thread in threads:
        while thread.is_alive():  # a second Ctrl-C while the threads wind down must not skip the cleanup
            try:
                thread.join()
            except KeyboardInterrupt as err:
                stages.fail(err)
    source.close()
    if not stages.errors and stats.frames_out != stats.frames_in:
        stages.errors.append(RuntimeError(f'{stats.frames_in} frames decoded but {stats.frames_out} written.'))
    if not stages.errors:
        try:
            sink.seal()
        except OSError as err:
            stages.errors.append(err)
    if stages.errors:
        partial = sink.abort()
        where = f'{sink.frames_written} frames kept in {partial}' if partial else 'no output kept'
        print(f'run stopped early ({type(stages.errors[0]).__name__}): {where}', file=sys.stderr)
        raise stages.errors[0]
    if publish:
        sink.finish()


def run_video_sr(input_spec: str, output: str, backend: Backend, interval: int | None = None,
                 overlap: int | None = None, report_path: str | None = None, fps: float | None = None,
                 fourcc: str | None = None,
                 progress: bool = True, cancel: threading.Event | None = None, allow_truncated: bool = False,
                 protected: Sequence[str | None] = (), held_outputs: list[FrameSink] | None = None,
                 lookahead: int | None = None) -> dict:
    """Super-resolve ``input_spec`` into ``output``; every check runs before the first frame is processed.

    Stateful streaming (the forward state carried from call to call, ``lookahead`` frames for the backward branch)
    unless ``overlap`` is given: then windowed, every call from zero state on ``interval + 2 * overlap`` frames.

    Args:
        input_spec: Video file, folder of images, camera index or stream URL (see ``open_frame_source``).
        output: Video file (``.mp4``, ``.avi``, ...) or, without extension, a folder of PNG frames.
        backend: A ``Backend`` from ``make_backend``.
        interval: Output frames delivered per model call; default the graph's, else 5 (windowed PyTorch: 15).
        overlap: Windowed mode: context frames on each side of a chunk, computed and discarded (< interval).
        report_path: Also write the report as JSON here.
        fps: Output frame rate; default the input's (25 for folders).
        fourcc: Video codec; default by extension (mp4v for .mp4, MJPG for .avi/.mkv).
        progress: Show a tqdm progress bar.
        cancel: Set from another thread to stop the run as Ctrl-C would (several inputs at once).
        allow_truncated: Accept a video file that decodes fewer frames than its container reports (an error
            otherwise); the report's ``input_frame_count`` and ``frames_in`` show the difference.
        protected: Further files the run reads or writes (model files, other outputs): a partial output is named so
            that it replaces none of them (nor ``input_spec`` or ``report_path``).
        held_outputs: With a list, the checked output is appended to it unpublished (the caller finishes or aborts
            it, e.g. after writing a combined report) instead of being published here.
        lookahead: Stateful mode: frames after the delivered ones the backward branch reads; default the graph's,
            else 2.

    Returns:
        The report (also printed): frame counts, FPS, network frames per delivered frame, chunk and end-to-end
        latency p50/p95 (ms, and frames waited), memory and the carried state's.
    """
    planner = make_planner(backend, interval, overlap, lookahead)
    if report_path:
        check_writable_folder(report_path)
    source = open_frame_source(input_spec, fps, allow_truncated)
    try:
        padded = backend.padded_size(source.height, source.width)
        sink = FrameSink(output, source.fps, source.width * backend.scale, source.height * backend.scale, fourcc,
                         avoid=[input_spec, report_path, *protected])
    except BaseException:
        source.close()
        raise
    if backend.uses_torch_cuda():  # not for CPU/ONNX Runtime: that would open a CUDA context for nothing
        torch.cuda.reset_peak_memory_stats()
    context = {'input': input_spec, 'output': output, 'input_frame_count': source.frame_count, **backend.describe(),
               'mode': 'windowed' if overlap is not None else 'stateful', 'interval': planner.interval,
               **({'overlap': overlap} if overlap is not None else {'lookahead': planner.lookahead}),
               'window_frames': planner.frames, 'input_size': [source.height, source.width],
               'padded_size': list(padded),
               'output_size': [source.height * backend.scale, source.width * backend.scale]}
    stats = RunStats()
    backend.reset_stream()
    try:
        super_resolve_stream(source, sink, backend, planner, stats, progress, cancel, publish=False)
    except BaseException:
        if report_path:
            _write_failure_report(stats.report(**context, complete=False, partial_output=sink.partial), report_path)
        raise
    report = stats.report(**context, complete=True, gpu_peak_mib=backend.gpu_peak_mib())
    if report_path:
        try:  # before the output is published: a report that cannot be written leaves no output either
            write_report_json(report, report_path)
        except BaseException:
            sink.abort()
            raise
    if held_outputs is None:
        sink.finish()
    else:
        held_outputs.append(sink)
    print(format_report(report))
    return report


def _write_failure_report(report: dict, path: str) -> None:
    """Record a failed run; if even that fails (a full disk), say so and let the run's own error be raised."""
    try:
        write_report_json(report, path)
    except OSError as err:
        print(f'warning: the report of the failed run could not be written either: {err}', file=sys.stderr)
