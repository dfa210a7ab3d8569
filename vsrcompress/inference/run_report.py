"""Timing and memory of a streaming run: per-chunk model latency, frame-in to SR-frame-out latency, FPS, peak RSS.

Peak RSS is the process's lifetime high-water mark (``resource.getrusage``), so it includes model loading.
``pipeline_overhead`` is wall time over the summed model time, minus 1: what decoding, encoding and the
queues add on top of the model when the threads do not hide them.
"""
import json
import resource
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from vsrcompress.atomic_files import write_text


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 20 if sys.platform == 'darwin' else peak / 2 ** 10


def _summary(values_s: list[float]) -> dict:
    if not values_s:
        return {'count': 0}
    ms = np.asarray(values_s) * 1000.0
    return {'count': len(ms), 'p50_ms': float(np.percentile(ms, 50)), 'p95_ms': float(np.percentile(ms, 95)),
            'mean_ms': float(ms.mean()), 'max_ms': float(ms.max())}


def _frames_summary(values: list[int]) -> dict:
    if not values:
        return {'count': 0}
    return {'count': len(values), 'p50': float(np.percentile(values, 50)), 'p95': float(np.percentile(values, 95)),
            'max': int(max(values))}


@dataclass
class RunStats:
    """Collected while the pipeline runs (each list is appended by one thread only)."""
    started: float = field(default_factory=time.perf_counter)
    chunk_seconds: list[float] = field(default_factory=list)
    chunk_frames: list[int] = field(default_factory=list)  # frames each call read (the backward branch's)
    forward_frames: list[int] = field(default_factory=list)  # frames each call's forward branch and tail ran on
    frames_waited: list[int] = field(default_factory=list)  # later frames each delivered frame waited for
    state_bytes: int = 0  # the carried state's largest size
    frame_latency_seconds: list[float] = field(default_factory=list)
    frames_in: int = 0
    frames_out: int = 0

    def report(self, **context) -> dict:
        """A JSON-ready summary; ``context`` (input, output, backend, sizes, ...) is included as given."""
        wall = time.perf_counter() - self.started
        model = float(sum(self.chunk_seconds))
        return {
            **context,
            'frames_in': self.frames_in,
            'frames_out': self.frames_out,
            'wall_seconds': wall,
            'fps': self.frames_out / wall if wall > 0 else 0.0,
            'model_seconds': model,
            'model_ms_per_output_frame': 1000.0 * model / self.frames_out if self.frames_out else None,
            'pipeline_overhead': wall / model - 1.0 if model > 0 else None,
            'chunk_latency': _summary(self.chunk_seconds),
            'frames_per_chunk_call': int(np.mean(self.chunk_frames)) if self.chunk_frames else 0,
            # network frames computed per delivered frame: 1.0 is no recomputation (windowed: both equal T / interval)
            'network_frames_per_output_frame': {
                'backward': sum(self.chunk_frames) / self.frames_out if self.frames_out else None,
                'forward_and_tail': sum(self.forward_frames) / self.frames_out if self.frames_out else None},
            'end_to_end_latency': _summary(self.frame_latency_seconds),
            'latency_frames': _frames_summary(self.frames_waited),
            'state_mib': self.state_bytes / 2 ** 20,
            'peak_rss_mib': peak_rss_mib(),
        }


def format_report(report: dict) -> str:
    """A few console lines with the numbers that matter."""
    chunk, e2e = report['chunk_latency'], report['end_to_end_latency']
    lines = [f"{report['frames_out']} frames in {report['wall_seconds']:.2f} s: {report['fps']:.2f} fps "
             f"(model {report['model_seconds']:.2f} s, pipeline overhead "
             f"{100 * (report['pipeline_overhead'] or 0):.1f} %)"]
    if chunk['count']:
        lines.append(f"chunk latency p50 {chunk['p50_ms']:.1f} ms, p95 {chunk['p95_ms']:.1f} ms over "
                     f"{chunk['count']} calls of {report['frames_per_chunk_call']} frames")
    if e2e['count']:
        lines.append(f"end-to-end latency (frame in -> SR frame written) p50 {e2e['p50_ms']:.1f} ms, "
                     f"p95 {e2e['p95_ms']:.1f} ms")
    network, waited = report.get('network_frames_per_output_frame') or {}, report.get('latency_frames') or {}
    if network.get('backward') is not None:
        mode = report.get('mode', 'windowed')
        how = (f"interval {report.get('interval')}, lookahead {report.get('lookahead')}" if mode == 'stateful' else
               f"interval {report.get('interval')}, overlap {report.get('overlap')}")
        lines.append(f"{mode} ({how}): network frames per delivered frame: backward {network['backward']:.2f}, "
                     f"forward and tail {network['forward_and_tail']:.2f}; frames waited p50 {waited['p50']:.0f}, "
                     f"p95 {waited['p95']:.0f}; state {report.get('state_mib', 0):.1f} MiB")
    gpu = report.get('gpu_peak_mib')
    lines.append(f"peak RSS {report['peak_rss_mib']:.0f} MiB" + (f', GPU (torch) peak {gpu:.0f} MiB' if gpu else ''))
    return '\n'.join(lines)


def write_report_json(report: dict, path: str) -> None:
    """Write the report atomically (temporary file, then rename); a failed write is an OSError naming it."""
    try:
        write_text(path, json.dumps(report, indent=2))
    except OSError as err:
        raise OSError(f'report: cannot write {path}: {err.strerror or err}') from err
