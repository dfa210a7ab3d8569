"""Deployment speed and streaming quality on this CPU: torch FP32 vs ONNX Runtime FP32 vs ONNX Runtime INT8.

Three parts, one run:

1. Model latency per frame, interleaved (``vsrcompress.bench.timing``, on the same window): torch FP32, ONNX Runtime
   FP32, ONNX Runtime INT8 with the CPU placement (``int8-ort``: integer kernels) and, for reference, the TensorRT
   placement (``int8-trt``) run by ONNX Runtime. Speed-ups from the medians and from the best round of each backend
   (the least disturbed by other jobs on a shared machine). Also the PSNR of each output against torch FP32 (and
   the ground truth with ``clips``), and what ONNX Runtime fused.
2. Streaming (``vsrcompress.inference``: decode thread -> model -> encode thread) of a frame folder with the ONNX
   Runtime FP32 and INT8 graphs: FPS, model time per frame, pipeline overhead over model-only time, latencies.
3. Interval/overlap sweep (torch FP32, any window length): chunk latency, model time per output frame and PSNR of
   the chunked output against processing the whole sequence at once.

Without a checkpoint the network has random weights (speed does not depend on them) and INT8 is post-training
quantization calibrated on synthetic moving-texture clips; its PSNR numbers say little about a trained network.
With a checkpoint (dense, pruned or INT8) and ``clips`` (a footage dataset) the numbers are real: a float checkpoint
is calibrated on the train split, an INT8 one brings its own ranges; timing and sweeps run on the val split.
"""
import copy
import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch

from vsrcompress.checkpoint import load_network
from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet
from vsrcompress.bench.clips import moving_clip, write_clip
from vsrcompress.bench.machine import load_average, machine_info, machine_line
from vsrcompress.bench.timing import time_interleaved
from vsrcompress.export import (INPUT_NAME, export_onnx, integer_kernel_summary, ort_optimized_ops, qdq_coverage,
                                quantizers_bypassed, read_footage_windows, read_int8_placement)
from vsrcompress.inference import OnnxRuntimeBackend, TorchBackend, run_video_sr
from vsrcompress.metrics import unit_range_psnr
from vsrcompress.quantization import QuantConfig, calibrate, quantize_network
from vsrcompress.quantization.output_ranges import calibrate_output_ranges

INTERVALS, OVERLAPS = (3, 5, 8, 15), (0, 2, 4)
# <engine> <graph precision>: the ways a checkpoint deploys that this benchmark times side by side
DEPLOYMENTS = ('torch fp32', 'onnxruntime fp32', 'onnxruntime int8-ort', 'onnxruntime int8-trt')


@dataclass
class DeployConfig:
    """What ``run`` measures.

    Attributes:
        checkpoint: Dense, pruned or INT8 vsrcompress checkpoint (None: a random BasicVSRNet).
        clips: Footage dataset: calibration (train split) and benchmark clips (val split); None: synthetic clips.
        num_feat: Random network: channels.
        num_block: Random network: residual blocks per trunk.
        lq_size: LR (height, width); footage frames are cropped to it, or used whole when smaller.
        interval: Parts 1-2: output frames per window.
        overlap: Parts 1-2: context frames each side of a window.
        rounds: Part 1: timed interleaved rounds (after one warm-up round).
        stream_frames: Part 2: frames streamed per backend and run.
        stream_rounds: Part 2: interleaved runs per backend.
        sweep_frames: Part 3: sequence length (0 skips part 3); must exceed every sweep interval.
        sweep_intervals: Part 3: intervals.
        sweep_overlaps: Part 3: overlaps (those below the interval are run).
        calib_clips: Synthetic calibration clips (no ``clips``).
        threads: torch and ONNX Runtime intra-op threads.
        command: The command line, for the record.
    """
    checkpoint: str | None = None
    clips: str | None = None
    num_feat: int = 64
    num_block: int = 10
    lq_size: tuple[int, int] = (64, 96)
    interval: int = 3
    overlap: int = 1
    rounds: int = 9
    stream_frames: int = 21
    stream_rounds: int = 3
    sweep_frames: int = 24
    sweep_intervals: tuple[int, ...] = INTERVALS
    sweep_overlaps: tuple[int, ...] = OVERLAPS
    calib_clips: int = 4
    threads: int = 2
    command: str = ''


def check(config: DeployConfig) -> None:
    """Raise ValueError naming the setting if ``config`` cannot run; before any work."""
    if config.interval < 2 or not 0 <= config.overlap < config.interval:
        raise ValueError(f'interval >= 2 and 0 <= overlap < interval required, got interval {config.interval}, '
                         f'overlap {config.overlap}')
    if min(config.rounds, config.threads, config.calib_clips, config.stream_rounds) < 1 or config.stream_frames < 2:
        raise ValueError('rounds, threads, calib_clips, stream_rounds >= 1 and stream_frames >= 2 required')
    if not config.sweep_intervals or min(config.sweep_intervals) < 1 or not config.sweep_overlaps \
            or min(config.sweep_overlaps) < 0:
        raise ValueError(f'sweep_intervals >= 1 and sweep_overlaps >= 0 required, got {config.sweep_intervals}, '
                         f'{config.sweep_overlaps}')
    if config.sweep_frames and config.sweep_frames <= max(config.sweep_intervals):
        raise ValueError(f'sweep_frames must exceed the largest interval ({max(config.sweep_intervals)}) or be 0, '
                         f'got {config.sweep_frames}')
    for key, path in (('checkpoint', config.checkpoint), ('clips', config.clips)):
        if path and not os.path.exists(path):
            raise ValueError(f'{key}: {path} does not exist')


def _load() -> dict:
    one, five, fifteen = load_average()
    return {'load_1min': one, 'load_5min': five, 'load_15min': fifteen}


def _crop(clip: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return clip[..., :min(height, clip.shape[-2]), :min(width, clip.shape[-1])].contiguous()


def _footage_sequence(root: str, frames: int, scale: int, height: int, width: int
                      ) -> tuple[torch.Tensor, np.ndarray]:
    """The first ``frames`` frames of the val split's first clip long enough, cropped: LQ (1, frames, 3, h, w) and
    the matching GT crop."""
    windows = read_footage_windows(root, frames, scale, 'val', max_windows=1)
    if not windows:
        raise ValueError(f'clips: {root} has no val clip with {frames} frames')
    lq = _crop(windows[0]['lq'], height, width)
    return lq, windows[0]['gt'][..., :lq.shape[-2] * scale, :lq.shape[-1] * scale].numpy()


def _build_networks(config: DeployConfig, window: int) -> tuple[torch.nn.Module, dict, str]:
    """The fake-quantized network, its conv output ranges, and where its INT8 ranges came from."""
    h, w = config.lq_size
    if config.checkpoint:
        loaded = load_network(config.checkpoint)
        net = loaded.net
        if loaded.int8:
            quant = QuantConfig.from_dict(loaded.quant_config)
            if loaded.conv_output_range is not None:
                return net, loaded.conv_output_range, 'INT8 checkpoint (QAT/PTQ ranges and conv output ranges)'
            clips = _calibration_clips(config, window, quant.calib_batches, int(net.scale))
            return net, calibrate_output_ranges(net, clips, quant), 'INT8 checkpoint; conv output ranges measured'
    else:
        torch.manual_seed(0)
        net = BasicVSRNet(num_feat=config.num_feat, num_block=config.num_block, scale=4).eval()
    quant = QuantConfig()
    net = copy.deepcopy(net)
    quantize_network(net, quant)
    clips = _calibration_clips(config, window, quant.calib_batches, int(net.scale))
    calibrate(net, clips, quant)
    source = f'post-training calibration ({quant.calibrator}) on {len(clips)} ' + \
        (f'train windows of {config.clips}' if config.clips else f'synthetic {h}x{w} clips')
    return net.eval(), calibrate_output_ranges(net, clips, quant), source


def _calibration_clips(config: DeployConfig, frames: int, count: int, scale: int) -> list[torch.Tensor]:
    if config.clips:
        windows = read_footage_windows(config.clips, frames, scale, 'train', max_windows=count)
        return [_crop(w['lq'], *config.lq_size) for w in windows]
    return [moving_clip(frames, *config.lq_size, seed=100 + i) for i in range(min(count, config.calib_clips))]


def _read_frames(folder: str) -> np.ndarray:
    return np.stack([cv2.imread(os.path.join(folder, name)) for name in sorted(os.listdir(folder))])


def _stream(backend, frames_dir: str, out_dir: str, interval: int, overlap: int) -> dict:
    report = run_video_sr(frames_dir, out_dir, backend, interval, overlap, progress=False)
    keys = ('frames_out', 'fps', 'model_ms_per_output_frame', 'pipeline_overhead', 'wall_seconds', 'model_seconds',
            'chunk_latency', 'end_to_end_latency', 'frames_per_chunk_call', 'peak_rss_mib')
    return {k: report[k] for k in keys}


def _median_run(reports: list[dict]) -> dict:
    """The run with the median FPS, plus the FPS, model time and overhead of every run."""
    ranked = sorted(reports, key=lambda r: r['fps'])
    return {**ranked[len(ranked) // 2], 'runs': [{k: r[k] for k in ('fps', 'model_ms_per_output_frame',
                                                                     'pipeline_overhead')} for r in reports]}


def _sweep(net: torch.nn.Module, sequence: torch.Tensor, work: str, config: DeployConfig,
           log: Callable[[str], None]) -> list[dict]:
    """Chunked streaming (torch FP32) for every interval/overlap against the whole sequence at once."""
    frames_dir = write_clip(sequence, os.path.join(work, 'sweep_in'))
    backend = TorchBackend(net)
    with quantizers_bypassed(net):
        rgb = (sequence[0].permute(0, 2, 3, 1).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
        start = time.perf_counter()
        full = backend.infer(np.ascontiguousarray(rgb))[..., ::-1]  # BGR, as the frames are written
        full_s = time.perf_counter() - start
        rows = [{'interval': 'full', 'overlap': 0, 'window_frames': len(rgb), 'psnr_vs_full_db': math.inf,
                 'chunk_p50_ms': 1000 * full_s, 'model_ms_per_output_frame': 1000 * full_s / len(rgb),
                 'end_to_end_p50_ms': None, 'wait_frames': len(rgb)}]
        for interval in config.sweep_intervals:
            for overlap in config.sweep_overlaps:
                if overlap >= interval:
                    continue
                out_dir = os.path.join(work, f'sweep_{interval}_{overlap}')
                report = _stream(backend, frames_dir, out_dir, interval, overlap)
                got = _read_frames(out_dir)
                rows.append({'interval': interval, 'overlap': overlap, 'window_frames': interval + 2 * overlap,
                             'psnr_vs_full_db': unit_range_psnr(full / 255.0, got / 255.0),
                             'chunk_p50_ms': report['chunk_latency']['p50_ms'],
                             'model_ms_per_output_frame': report['model_ms_per_output_frame'],
                             'end_to_end_p50_ms': report['end_to_end_latency']['p50_ms'],
                             'wait_frames': interval + overlap})
                shutil.rmtree(out_dir)
                log(f'  interval {interval:2d} overlap {overlap}: PSNR vs full {rows[-1]["psnr_vs_full_db"]:.2f} dB, '
                      f'{rows[-1]["model_ms_per_output_frame"]:.0f} ms per output frame')
    return rows


def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return '-'
    if isinstance(value, float):
        return 'inf' if math.isinf(value) else f'{value:.{digits}f}'
    return str(value)


def _finite_number(value) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def markdown(result: dict) -> str:
    """The three parts as Markdown tables, with the setup and the load average around each part."""
    cfg, lat = result['config'], result['latency']
    lines = [f"# Deployment benchmark ({result['machine']['when']})", '',
             f"Command: `{result['command']}`", '',
             f"Network: {cfg['network']}; LR {cfg['lq_size'][1]}x{cfg['lq_size'][0]}, x{cfg['scale']}, windows of "
             f"{cfg['window_frames']} frames; weights: {cfg['weights']}; INT8 ranges: {cfg['int8_source']}.",
             machine_line(result['machine']) + ' Load average (1 min) per part, before/after: '
             + ', '.join(f"{part} {v['before']['load_1min']}/{v['after']['load_1min']}"
                         for part, v in result['load'].items()) + '.', '',
             '## Model latency (interleaved rounds, same window)', '',
             '| backend | ms per frame (median) | p25-p75 | best | speed-up vs ORT FP32 (medians) | '
             'speed-up (best rounds) | PSNR vs torch FP32 (dB) |'
             + (' PSNR vs GT (dB) |' if 'psnr_vs_gt_db' in lat[DEPLOYMENTS[0]] else ''),
             '|---|---|---|---|---|---|---|' + ('---|' if 'psnr_vs_gt_db' in lat[DEPLOYMENTS[0]] else '')]
    for name, row in lat.items():
        gt = f" {_fmt(row['psnr_vs_gt_db'], 2)} |" if 'psnr_vs_gt_db' in row else ''
        lines.append(f"| {name} | {row['ms_per_frame_median']:.0f} | {row['ms_per_frame_p25']:.0f}-"
                     f"{row['ms_per_frame_p75']:.0f} | {row['ms_per_frame_best']:.0f} | "
                     f"{row['speedup_vs_ort_fp32']:.2f}x | {row['speedup_vs_ort_fp32_best']:.2f}x | "
                     f"{_fmt(row['psnr_vs_torch_fp32_db'], 2)} |{gt}")
    fused = result['int8_ort_fused']
    lines += ['', f"ONNX Runtime CPU, int8-ort graph after optimization: integer kernels {fused['integer_ops']}, "
                  f"{fused['float_convs']} float convs, {fused['quantize_dequantize']} Q/DQ nodes left.", '',
              f"## Streaming (decode thread -> model -> encode thread, frame folder in and out; interval "
              f"{cfg['interval']}, overlap {cfg['overlap']}; the median of {cfg['stream_rounds']} interleaved runs)",
              '',
              '| backend | frames | FPS | model ms/frame | pipeline overhead | chunk p50/p95 ms | '
              'end-to-end p50/p95 ms |', '|---|---|---|---|---|---|---|']
    for name, row in result['streaming'].items():
        lines.append(f"| {name} | {row['frames_out']} | {row['fps']:.2f} | {row['model_ms_per_output_frame']:.0f} | "
                     f"{100 * row['pipeline_overhead']:.1f} % | {row['chunk_latency']['p50_ms']:.0f}/"
                     f"{row['chunk_latency']['p95_ms']:.0f} | {row['end_to_end_latency']['p50_ms']:.0f}/"
                     f"{row['end_to_end_latency']['p95_ms']:.0f} |")
    if result['sweep']:
        lines += ['', f"## Interval / overlap (torch FP32, {cfg['sweep_frames']} frames, against the whole sequence "
                      'in one call)', '',
                  '| interval | overlap | window | PSNR vs full (dB) | chunk p50 ms | model ms per output frame | '
                  'frames waited for |', '|---|---|---|---|---|---|---|']
        for row in result['sweep']:
            lines.append(f"| {row['interval']} | {row['overlap']} | {row['window_frames']} | "
                         f"{_fmt(row['psnr_vs_full_db'], 2)} | {row['chunk_p50_ms']:.0f} | "
                         f"{row['model_ms_per_output_frame']:.0f} | {row['wait_frames']} |")
    return '\n'.join(lines) + '\n'


def plot(result: dict, path: str) -> None:
    """Model latency per backend; with the sweep, chunked-output PSNR and cost against the interval per overlap."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from vsrcompress.atomic_files import write_figure

    panels = 3 if result['sweep'] else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.2))
    axes = np.atleast_1d(axes)
    names = list(result['latency'])
    axes[0].bar(range(len(names)), [result['latency'][n]['ms_per_frame_median'] for n in names],
                color=['#888', '#4a7', '#27c', '#c72'][:len(names)])
    axes[0].set_xticks(range(len(names)), [n.replace('onnxruntime ', 'ORT\n') for n in names])
    axes[0].set_ylabel('ms per frame (median)')
    axes[0].set_title('model latency, CPU')
    if result['sweep']:
        rows = [r for r in result['sweep'] if r['interval'] != 'full']
        for overlap in sorted({r['overlap'] for r in rows}):
            sel = [r for r in rows if r['overlap'] == overlap]
            psnr = [r['psnr_vs_full_db'] if _finite_number(r['psnr_vs_full_db']) else 120.0 for r in sel]
            axes[1].plot([r['interval'] for r in sel], psnr, marker='o', label=f'overlap {overlap}')
            axes[2].plot([r['interval'] for r in sel], [r['model_ms_per_output_frame'] for r in sel], marker='o',
                         label=f'overlap {overlap}')
        axes[1].set_xlabel('interval (frames kept per call)')
        axes[1].set_ylabel('PSNR vs full sequence (dB, identical shown as 120)')
        axes[1].set_title('chunked vs whole-sequence output')
        axes[2].set_xlabel('interval')
        axes[2].set_ylabel('model ms per output frame')
        axes[2].set_title('cost of the overlap')
        for ax in axes[1:]:
            ax.set_xticks(sorted({r['interval'] for r in rows}))
            ax.legend()
    fig.tight_layout()
    write_figure(path, fig)


def _finite(value):
    """The result with infinite PSNRs (identical outputs) written as the string 'inf': JSON has no infinity."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return 'inf' if isinstance(value, float) and math.isinf(value) else value




def _latency_rows(seconds: dict[str, list[float]], outputs: dict, window_frames: int, gt: np.ndarray | None,
                  log: Callable[[str], None]) -> dict:
    reference = outputs['torch fp32']
    ort_fp32, ort_fp32_best = statistics.median(seconds['onnxruntime fp32']), min(seconds['onnxruntime fp32'])
    latency = {}
    for name in DEPLOYMENTS:
        per_frame = sorted(1000 * s / window_frames for s in seconds[name])
        q = statistics.quantiles(per_frame, n=4) if len(per_frame) > 1 else per_frame * 3
        latency[name] = {'ms_per_frame_median': statistics.median(per_frame), 'ms_per_frame_p25': q[0],
                         'ms_per_frame_p75': q[-1], 'ms_per_frame_best': per_frame[0],
                         'ms_per_frame_all': per_frame,
                         'speedup_vs_ort_fp32': ort_fp32 / statistics.median(seconds[name]),
                         'speedup_vs_ort_fp32_best': ort_fp32_best / min(seconds[name]),
                         'psnr_vs_torch_fp32_db': unit_range_psnr(reference, outputs[name])}
        if gt is not None:
            latency[name]['psnr_vs_gt_db'] = unit_range_psnr(gt, np.clip(outputs[name], 0, 1))
        log(f"  {name:22s} {latency[name]['ms_per_frame_median']:8.0f} ms/frame  "
            f"{latency[name]['speedup_vs_ort_fp32']:.2f}x vs ORT FP32 (best rounds "
            f"{latency[name]['speedup_vs_ort_fp32_best']:.2f}x)  PSNR vs torch FP32 "
            f"{_fmt(latency[name]['psnr_vs_torch_fp32_db'], 2)} dB")
    return latency


def run(config: DeployConfig, log: Callable[[str], None] | None = print) -> dict:
    """Measure the three parts (see the module docstring); the JSON-ready result (infinite PSNRs as ``'inf'``)."""
    log = log or (lambda line: None)
    check(config)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    window_frames = config.interval + 2 * config.overlap
    machine = machine_info(config.threads)  # its load average is the one before the run
    loads = {}
    work = tempfile.mkdtemp(prefix='benchmark_deploy_')
    try:
        loads['setup'] = {'before': _load()}
        net, ranges, int8_source = _build_networks(config, window_frames)
        scale = int(net.scale)
        if config.clips:
            window, gt = _footage_sequence(config.clips, window_frames, scale, *config.lq_size)
        else:
            window, gt = moving_clip(window_frames, *config.lq_size, seed=7), None
        h, w = window.shape[-2:]
        graphs = {}
        for name in DEPLOYMENTS[1:]:
            precision = name.split()[1]
            graphs[name] = os.path.join(work, f'{precision}.onnx')
            start = time.perf_counter()
            export_onnx(net, graphs[name], window_frames, h, w, precision=precision, conv_output_range=ranges)
            log(f'exported {precision} in {time.perf_counter() - start:.0f} s')
        fused = integer_kernel_summary(ort_optimized_ops(graphs['onnxruntime int8-ort'], config.threads))
        placement = read_int8_placement(graphs['onnxruntime int8-ort'])
        coverage = {name: asdict(qdq_coverage(graphs[name])) for name in DEPLOYMENTS[2:]}
        loads['setup']['after'] = _load()

        log(f'part 1: {config.rounds} interleaved rounds of {len(DEPLOYMENTS)} backends on {window_frames} frames of '
            f'{w}x{h}')
        loads['latency'] = {'before': _load()}
        backends = {name: OnnxRuntimeBackend(path, threads=config.threads) for name, path in graphs.items()}
        lq, outputs = window.numpy(), {}

        def torch_fp32() -> None:
            with torch.inference_mode(), quantizers_bypassed(net):
                outputs['torch fp32'] = net(window).numpy()

        runners = {'torch fp32': torch_fp32,
                   **{name: (lambda name=name, session=backends[name].session:
                             outputs.__setitem__(name, session.run(None, {INPUT_NAME: lq})[0])) for name in graphs}}
        seconds = time_interleaved(runners, config.rounds, 1)
        loads['latency']['after'] = _load()
        latency = _latency_rows(seconds, outputs, window_frames, gt, log)

        log(f'part 2: streaming {config.stream_frames} frames, interval {config.interval}, overlap {config.overlap}')
        stream_clip = (_footage_sequence(config.clips, config.stream_frames, scale, h, w)[0] if config.clips
                       else moving_clip(config.stream_frames, h, w, seed=11))
        frames_dir = write_clip(stream_clip, os.path.join(work, 'stream_in'))
        loads['streaming'] = {'before': _load()}
        runs = {name: [] for name in ('onnxruntime fp32', 'onnxruntime int8-ort')}

        def streamed(name: str) -> None:
            out_dir = os.path.join(work, f'stream_{name.split()[1]}_{len(runs[name])}')
            runs[name].append(_stream(backends[name], frames_dir, out_dir, config.interval, config.overlap))
            shutil.rmtree(out_dir)

        time_interleaved({name: (lambda name=name: streamed(name)) for name in runs}, config.stream_rounds, 0)
        streaming = {name: _median_run(reports) for name, reports in runs.items()}
        for name, row in streaming.items():
            log(f"  {name:22s} {row['fps']:.2f} fps, model {row['model_ms_per_output_frame']:.0f} ms/frame, "
                f"overhead {100 * row['pipeline_overhead']:.1f} % (median run of {config.stream_rounds})")
        loads['streaming']['after'] = _load()

        rows = []
        if config.sweep_frames:
            log(f'part 3: interval/overlap sweep over {config.sweep_frames} frames (torch FP32)')
            sequence = (_footage_sequence(config.clips, config.sweep_frames, scale, h, w)[0] if config.clips
                        else moving_clip(config.sweep_frames, h, w, seed=13))
            loads['sweep'] = {'before': _load()}
            rows = _sweep(net, sequence, work, config, log)
            loads['sweep']['after'] = _load()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        torch.set_num_threads(old_threads)

    spec = net.width_spec() if hasattr(net, 'width_spec') else {}
    machine['load_average_after'] = load_average()
    return _finite({
        'command': config.command,
        'machine': machine,
        'config': {'network': f"{type(net).__name__} {spec.get('backward', '?')} ch, "
                              f"{len(spec.get('backward_blocks', []))} blocks",
                   'weights': config.checkpoint or 'random (seed 0)', 'int8_source': int8_source, 'scale': scale,
                   'lq_size': [int(h), int(w)], 'window_frames': window_frames, 'interval': config.interval,
                   'overlap': config.overlap, 'threads': config.threads, 'rounds': config.rounds,
                   'stream_rounds': config.stream_rounds, 'clips': config.clips, 'sweep_frames': config.sweep_frames,
                   'sweep_intervals': list(config.sweep_intervals), 'sweep_overlaps': list(config.sweep_overlaps)},
        'load': loads,
        'latency': latency,
        'int8_ort_fused': fused,
        'int8_ort_placement': placement,
        'qdq_coverage': coverage,
        'streaming': streaming,
        'sweep': rows,
    })
