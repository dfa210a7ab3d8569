"""Several inputs at once (a box serving several cameras): one streaming pipeline per input, one output each.

Every input runs in its own thread with a backend of its own state (``for_another_stream``: the same model; for
OpenVINO its own asynchronous infer request on one compiled model in throughput mode, for PyTorch and ONNX Runtime
calls that take turns on the CPU), so live cameras are all served at once, each stream carrying its own state.
Every input is opened (and so checked) before the first frame is processed. One
input's failure does not stop the others: each output is complete or left as a partial file by the usual rule,
and the run then raises the first error. Ctrl-C stops all of them. The complete outputs are published after the
combined report is written: a report that cannot be written leaves every output as a partial file.
"""
import sys
import threading
import time
from collections.abc import Sequence

from vsrcompress.cli import refuse_output_over_inputs
from vsrcompress.inference.backends import Backend
from vsrcompress.inference.frame_sink import FrameSink, check_writable_folder
from vsrcompress.inference.frame_source import open_frame_source
from vsrcompress.inference.pipeline import run_video_sr
from vsrcompress.inference.run_report import write_report_json
from vsrcompress.inference.stream_plan import make_planner


def _check_inputs(inputs: Sequence[str], outputs: Sequence[str], report_path: str | None, fps: float | None) -> None:
    if len(inputs) != len(outputs):
        raise ValueError(f'output: {len(inputs)} inputs need as many outputs (one per input, in order), got '
                         f'{len(outputs)}.')
    refuse_output_over_inputs([*outputs, report_path], inputs, 'output/report', 'input')
    if report_path:  # now, not after every output was made
        check_writable_folder(report_path)
    for spec in inputs:
        open_frame_source(spec, fps).close()


def run_many_video_sr(inputs: Sequence[str], outputs: Sequence[str], backend: Backend, interval: int | None = None,
                      overlap: int | None = None, report_path: str | None = None, fps: float | None = None,
                      fourcc: str | None = None,
                      **run_options) -> dict:
    """Super-resolve every ``inputs[i]`` into ``outputs[i]``; returns (and writes) the combined report.

    Args:
        inputs: Video files, frame folders, camera indices or stream URLs.
        outputs: One output per input, in order.
        backend: Serves the first input; ``for_another_stream`` makes one sibling per further input.
        interval: Output frames delivered per model call (default: as ``run_video_sr``).
        overlap: Windowed mode: context frames on each side of a chunk (None: stateful streaming).
        report_path: Write the combined report (every input's report plus the aggregate) here as JSON.
        fps: Output frame rate; default each input's.
        fourcc: Video codec; default by extension.
        run_options: Further keyword arguments of ``run_video_sr``.

    Returns:
        ``{'inputs': [report per input], 'concurrent': bool, 'wall_seconds', 'frames_out', 'aggregate_fps',
        'complete': bool}``.
    """
    _check_inputs(inputs, outputs, report_path, fps)
    make_planner(backend, interval, overlap, run_options.get('lookahead'))  # a bad mode fails before any input runs
    run_options['protected'] = [*run_options.get('protected', ()), *inputs, *outputs, report_path]
    concurrent = len(inputs) > 1
    backends = [backend] + [backend.for_another_stream() if concurrent else backend for _ in inputs[1:]]
    reports: list[dict | None] = [None] * len(inputs)
    errors: list[tuple[int, BaseException]] = []
    held: list[FrameSink] = []  # checked outputs, published once the report is written
    cancel = threading.Event()

    def run(index: int) -> None:
        try:
            reports[index] = run_video_sr(inputs[index], outputs[index], backends[index], interval, overlap, fps=fps,
                                          fourcc=fourcc, progress=False, cancel=cancel, held_outputs=held,
                                          **run_options)
        except BaseException as err:  # noqa: BLE001  (reported after every input has ended)
            errors.append((index, err))

    started = time.perf_counter()
    if concurrent:
        threads = [threading.Thread(target=run, args=(i,), name=f'input-{i}', daemon=True) for i in range(len(inputs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                try:
                    thread.join()
                except KeyboardInterrupt:
                    cancel.set()
                    errors.append((-1, KeyboardInterrupt()))
    else:
        for index in range(len(inputs)):
            run(index)
            if errors and isinstance(errors[-1][1], KeyboardInterrupt):
                break
    wall = time.perf_counter() - started
    per_input = [reports[i] or {'input': inputs[i], 'output': outputs[i], 'complete': False,
                                'error': next((f'{type(e).__name__}: {e}' for j, e in errors if j == i), 'not run')}
                 for i in range(len(inputs))]
    frames_out = sum(r.get('frames_out', 0) for r in per_input if r.get('complete'))
    combined = {'inputs': per_input, 'concurrent': concurrent, **backend.describe(), 'wall_seconds': wall,
                'frames_out': frames_out, 'aggregate_fps': frames_out / wall if wall > 0 else None,
                'complete': not errors}
    if report_path:
        try:
            write_report_json(combined, report_path)
        except BaseException:
            kept = [str(sink.abort()) for sink in held]
            print(f'the report could not be written: no output published; kept as {", ".join(kept)}',
                  file=sys.stderr)
            raise
    for sink in held:
        sink.finish()
    print(f'{len(inputs)} inputs ({"concurrently" if concurrent else "one after another"}): {frames_out} frames in '
          f'{wall:.1f} s, aggregate {combined["aggregate_fps"]:.2f} FPS')
    if errors:
        index, err = next(((i, e) for i, e in errors if isinstance(e, KeyboardInterrupt)), errors[0])
        if not isinstance(err, KeyboardInterrupt):
            print(f'input {inputs[index]} failed; the other inputs ran to their end.')
        raise err
    return combined
