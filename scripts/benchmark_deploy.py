"""Deployment speed and streaming quality on this CPU: torch FP32 vs ONNX Runtime FP32 vs ONNX Runtime INT8.

Three parts, one run:

1. Model latency per frame, interleaved (round-robin over the backends, the order reversed every other round, on
   the same window): torch FP32, ONNX Runtime FP32, ONNX Runtime INT8 with the CPU placement (``int8-ort``: integer
   kernels) and, for reference, the TensorRT placement (``int8-trt``) run by ONNX Runtime. Speed-ups from the
   medians and from the best round of each backend (the least disturbed by other jobs on a shared machine). Also the
   PSNR of each output against torch FP32 (and the ground truth with ``--clips``), and what ONNX Runtime fused.
2. Streaming (``vsrcompress.inference``: decode thread -> model -> encode thread) of a frame folder with the ONNX
   Runtime FP32 and INT8 graphs: FPS, model time per frame, pipeline overhead over model-only time, latencies.
3. Interval/overlap sweep (torch FP32, any window length): chunk latency, model time per output frame and PSNR of
   the chunked output against processing the whole sequence at once, for intervals 3, 5, 8, 15 and overlaps 0, 2, 4.

Without ``--checkpoint`` the network has random weights (speed does not depend on them) and INT8 is post-training
quantization calibrated on synthetic moving-texture clips; its PSNR numbers say little about a trained network.
With ``--checkpoint`` (dense, pruned or INT8 vsrcompress checkpoint) and ``--clips`` (a footage dataset, see
``vsrcompress/footage/layout.py``) the numbers are real: a float checkpoint is calibrated on the train split, an INT8
one brings its own ranges; timing and sweeps run on the val split::

    python scripts/benchmark_deploy.py                                   # random BasicVSR 64 ch, 10 blocks
    python scripts/benchmark_deploy.py --checkpoint experiments/demo_teacher/models/net_g_latest.pth \\
        --clips datasets/demo
    python scripts/benchmark_deploy.py --checkpoint experiments/demo_qat/models/net_g_int8.pth --clips datasets/demo

Writes results/benchmarks/deploy.{json,md,png}. The machine may be shared: the load average is recorded before
and after each part, and speed-ups are only compared within the interleaved rounds of part 1.
"""
import argparse
import copy
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict

import cv2
import numpy as np
import onnxruntime as ort
import torch
from torch.nn import functional as F

import vsrcompress  # noqa: F401  (registers the archs with basicsr)
from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet
from vsrcompress.export import (export_onnx, integer_kernel_summary, load_deployable_network, ort_optimized_ops,
                                output_psnr, qdq_coverage, quantizers_bypassed, read_footage_windows,
                                read_int8_placement)
from vsrcompress.inference import OnnxRuntimeBackend, TorchBackend, run_video_sr
from vsrcompress.quantization import QuantConfig, calibrate, quantize_network
from vsrcompress.quantization.output_ranges import calibrate_output_ranges
from vsrcompress.atomic_files import write_benchmark_result, write_figure

INTERVALS, OVERLAPS = (3, 5, 8, 15), (0, 2, 4)
BACKENDS = ('torch fp32', 'onnxruntime fp32', 'onnxruntime int8-ort', 'onnxruntime int8-trt')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--checkpoint', help='dense, pruned or INT8 vsrcompress checkpoint (default: random weights)')
    parser.add_argument('--clips', help='footage dataset folder: calibration (train) and benchmark clips (val)')
    parser.add_argument('--num-feat', type=int, default=64, help='random network: channels')
    parser.add_argument('--num-block', type=int, default=10, help='random network: residual blocks per trunk')
    parser.add_argument('--lq-size', type=int, nargs=2, default=[64, 96], metavar=('H', 'W'),
                        help='LR frame size (with --clips: frames are cropped to it, or used whole when smaller)')
    parser.add_argument('--interval', type=int, default=3, help='parts 1-2: output frames per window')
    parser.add_argument('--overlap', type=int, default=1, help='parts 1-2: context frames each side of a window')
    parser.add_argument('--rounds', type=int, default=9, help='part 1: timed rounds (after one warm-up round)')
    parser.add_argument('--stream-frames', type=int, default=21, help='part 2: frames streamed per backend and run')
    parser.add_argument('--stream-rounds', type=int, default=3, help='part 2: interleaved runs per backend')
    parser.add_argument('--sweep-frames', type=int, default=24, help='part 3: sequence length (0 skips part 3)')
    parser.add_argument('--calib-clips', type=int, default=4, help='synthetic calibration clips (no --clips)')
    parser.add_argument('--threads', type=int, default=2, help='torch and ONNX Runtime intra-op threads')
    parser.add_argument('--out', default='results/benchmarks')
    parser.add_argument('--name', default='deploy')
    args = parser.parse_args()
    if args.interval < 2 or not 0 <= args.overlap < args.interval:
        parser.error('--interval >= 2 and 0 <= --overlap < --interval')
    if min(args.rounds, args.threads, args.calib_clips, args.stream_rounds) < 1 or args.stream_frames < 2:
        parser.error('--rounds, --threads, --calib-clips, --stream-rounds >= 1 and --stream-frames >= 2')
    if args.sweep_frames and args.sweep_frames <= max(INTERVALS):
        parser.error(f'--sweep-frames must exceed the largest interval ({max(INTERVALS)}) or be 0')
    for flag, path in (('--checkpoint', args.checkpoint), ('--clips', args.clips)):
        if path and not os.path.exists(path):
            parser.error(f'{flag}: {path} does not exist')
    os.makedirs(args.out, exist_ok=True)
    if not os.access(args.out, os.W_OK):
        parser.error(f'--out: {args.out} is not writable')
    return args


def load() -> dict:
    one, five, fifteen = os.getloadavg()
    return {'load_1min': round(one, 2), 'load_5min': round(five, 2), 'load_15min': round(fifteen, 2)}


def synthetic_clip(frames: int, height: int, width: int, seed: int) -> torch.Tensor:
    """A smooth random texture panning diagonally, (1, frames, 3, height, width) in [0, 1]: real motion for SpyNet."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, height // 6 + frames, width // 6 + frames, generator=gen)
    base = F.interpolate(base, size=(height + 3 * frames, width + 3 * frames), mode='bicubic').clamp(0, 1)
    return torch.stack([base[0, :, 2 * t:2 * t + height, 3 * t:3 * t + width] for t in range(frames)])[None]


def crop(clip: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return clip[..., :min(height, clip.shape[-2]), :min(width, clip.shape[-1])].contiguous()


def footage_sequence(root: str, frames: int, scale: int, height: int, width: int) -> torch.Tensor:
    """The first ``frames`` frames of the val split's first clip long enough, cropped, (1, frames, 3, h, w)."""
    windows = read_footage_windows(root, frames, scale, 'val', max_windows=1)
    if not windows:
        raise ValueError(f'--clips: {root} has no val clip with {frames} frames')
    return crop(windows[0]['lq'], height, width)


def build_networks(args: argparse.Namespace, window: int) -> tuple[torch.nn.Module, dict, str]:
    """The fake-quantized network, its conv output ranges, and where its INT8 ranges came from."""
    h, w = args.lq_size
    if args.checkpoint:
        loaded = load_deployable_network(args.checkpoint)
        net = loaded.net
        if loaded.int8:
            config = QuantConfig.from_dict(loaded.quant_config)
            if loaded.conv_output_range is not None:
                return net, loaded.conv_output_range, 'INT8 checkpoint (QAT/PTQ ranges and conv output ranges)'
            clips = calibration_clips(args, window, config.calib_batches, int(net.scale))
            return net, calibrate_output_ranges(net, clips, config), 'INT8 checkpoint; conv output ranges measured'
    else:
        torch.manual_seed(0)
        net = BasicVSRNet(num_feat=args.num_feat, num_block=args.num_block, scale=4).eval()
    config = QuantConfig()
    net = copy.deepcopy(net)
    quantize_network(net, config)
    clips = calibration_clips(args, window, config.calib_batches, int(net.scale))
    calibrate(net, clips, config)
    source = f'post-training calibration ({config.calibrator}) on {len(clips)} ' + \
        (f'train windows of {args.clips}' if args.clips else f'synthetic {h}x{w} clips')
    return net.eval(), calibrate_output_ranges(net, clips, config), source


def calibration_clips(args: argparse.Namespace, frames: int, count: int, scale: int) -> list[torch.Tensor]:
    if args.clips:
        windows = read_footage_windows(args.clips, frames, scale, 'train', max_windows=count)
        return [crop(w['lq'], *args.lq_size) for w in windows]
    return [synthetic_clip(frames, *args.lq_size, seed=100 + i) for i in range(min(count, args.calib_clips))]


def ort_session(path: str, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def time_backends(net: torch.nn.Module, graphs: dict[str, str], window: torch.Tensor, rounds: int, threads: int
                  ) -> tuple[dict, dict]:
    """Seconds per window of each backend over interleaved rounds, and each backend's output."""
    sessions = {name: ort_session(path, threads) for name, path in graphs.items()}
    lq = window.numpy()

    def run(name: str) -> np.ndarray:
        if name == 'torch fp32':
            with torch.inference_mode(), quantizers_bypassed(net):
                return net(window).numpy()
        return sessions[name].run(None, {'lq': lq})[0]

    order = ['torch fp32', *graphs]
    outputs = {name: run(name) for name in order}  # warm-up round
    seconds = {name: [] for name in order}
    for r in range(rounds):
        for name in order if r % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            run(name)
            seconds[name].append(time.perf_counter() - start)
    return seconds, outputs


def write_frames(folder: str, clip: torch.Tensor) -> str:
    os.makedirs(folder)
    frames = (clip[0].permute(0, 2, 3, 1).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
    for i, frame in enumerate(frames):
        cv2.imwrite(os.path.join(folder, f'{i:05d}.png'), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


def read_frames(folder: str) -> np.ndarray:
    return np.stack([cv2.imread(os.path.join(folder, name)) for name in sorted(os.listdir(folder))])


def stream(backend, frames_dir: str, out_dir: str, interval: int, overlap: int) -> dict:
    report = run_video_sr(frames_dir, out_dir, backend, interval, overlap, progress=False)
    keys = ('frames_out', 'fps', 'model_ms_per_output_frame', 'pipeline_overhead', 'wall_seconds', 'model_seconds',
            'chunk_latency', 'end_to_end_latency', 'frames_per_chunk_call', 'peak_rss_mib')
    return {k: report[k] for k in keys}


def median_run(reports: list[dict]) -> dict:
    """The run with the median FPS, plus the FPS, model time and overhead of every run."""
    ranked = sorted(reports, key=lambda r: r['fps'])
    return {**ranked[len(ranked) // 2], 'runs': [{k: r[k] for k in ('fps', 'model_ms_per_output_frame',
                                                                     'pipeline_overhead')} for r in reports]}


def sweep(net: torch.nn.Module, sequence: torch.Tensor, work: str) -> list[dict]:
    """Chunked streaming (torch FP32) for every interval/overlap against the whole sequence at once."""
    frames_dir = write_frames(os.path.join(work, 'sweep_in'), sequence)
    backend = TorchBackend(net)
    with quantizers_bypassed(net):
        rgb = (sequence[0].permute(0, 2, 3, 1).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
        start = time.perf_counter()
        full = backend.infer(np.ascontiguousarray(rgb))[..., ::-1]  # BGR, as the frames are written
        full_s = time.perf_counter() - start
        rows = [{'interval': 'full', 'overlap': 0, 'window_frames': len(rgb), 'psnr_vs_full_db': math.inf,
                 'chunk_p50_ms': 1000 * full_s, 'model_ms_per_output_frame': 1000 * full_s / len(rgb),
                 'end_to_end_p50_ms': None, 'wait_frames': len(rgb)}]
        for interval in INTERVALS:
            for overlap in OVERLAPS:
                if overlap >= interval:
                    continue
                out_dir = os.path.join(work, f'sweep_{interval}_{overlap}')
                report = stream(backend, frames_dir, out_dir, interval, overlap)
                got = read_frames(out_dir)
                rows.append({'interval': interval, 'overlap': overlap, 'window_frames': interval + 2 * overlap,
                             'psnr_vs_full_db': output_psnr(full / 255.0, got / 255.0),
                             'chunk_p50_ms': report['chunk_latency']['p50_ms'],
                             'model_ms_per_output_frame': report['model_ms_per_output_frame'],
                             'end_to_end_p50_ms': report['end_to_end_latency']['p50_ms'],
                             'wait_frames': interval + overlap})
                shutil.rmtree(out_dir)
                print(f'  interval {interval:2d} overlap {overlap}: PSNR vs full {rows[-1]["psnr_vs_full_db"]:.2f} dB, '
                      f'{rows[-1]["model_ms_per_output_frame"]:.0f} ms per output frame', flush=True)
    return rows


def fmt(value, digits: int = 1) -> str:
    if value is None:
        return '-'
    if isinstance(value, float):
        return 'inf' if math.isinf(value) else f'{value:.{digits}f}'
    return str(value)


def markdown(result: dict) -> str:
    cfg, lat = result['config'], result['latency']
    lines = [f"# Deployment benchmark ({result['machine']['when']})", '',
             f"Command: `{result['command']}`", '',
             f"Network: {cfg['network']}; LR {cfg['lq_size'][1]}x{cfg['lq_size'][0]}, x{cfg['scale']}, windows of "
             f"{cfg['window_frames']} frames; weights: {cfg['weights']}; INT8 ranges: {cfg['int8_source']}.",
             f"Machine: {result['machine']['cpus']} CPUs, {cfg['threads']} threads, ONNX Runtime "
             f"{result['machine']['onnxruntime']}, torch {result['machine']['torch']}; load average before/after: "
             + ', '.join(f"{part} {v['before']['load_1min']}/{v['after']['load_1min']}"
                         for part, v in result['load'].items()) + '.', '',
             '## Model latency (interleaved rounds, same window)', '',
             '| backend | ms per frame (median) | p25-p75 | best | speed-up vs ORT FP32 (medians) | '
             'speed-up (best rounds) | PSNR vs torch FP32 (dB) |'
             + (' PSNR vs GT (dB) |' if 'psnr_vs_gt_db' in lat[BACKENDS[0]] else ''),
             '|---|---|---|---|---|---|---|' + ('---|' if 'psnr_vs_gt_db' in lat[BACKENDS[0]] else '')]
    for name, row in lat.items():
        gt = f" {fmt(row['psnr_vs_gt_db'], 2)} |" if 'psnr_vs_gt_db' in row else ''
        lines.append(f"| {name} | {row['ms_per_frame_median']:.0f} | {row['ms_per_frame_p25']:.0f}-"
                     f"{row['ms_per_frame_p75']:.0f} | {row['ms_per_frame_best']:.0f} | "
                     f"{row['speedup_vs_ort_fp32']:.2f}x | {row['speedup_vs_ort_fp32_best']:.2f}x | "
                     f"{fmt(row['psnr_vs_torch_fp32_db'], 2)} |{gt}")
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
                         f"{fmt(row['psnr_vs_full_db'], 2)} | {row['chunk_p50_ms']:.0f} | "
                         f"{row['model_ms_per_output_frame']:.0f} | {row['wait_frames']} |")
    return '\n'.join(lines) + '\n'


def plot(result: dict, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
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
        for overlap in OVERLAPS:
            sel = [r for r in rows if r['overlap'] == overlap]
            psnr = [r['psnr_vs_full_db'] if math.isfinite(r['psnr_vs_full_db']) else 120.0 for r in sel]
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
            ax.set_xticks(INTERVALS)
            ax.legend()
    fig.tight_layout()
    write_figure(path, fig)


def finite(value):
    """The result with infinite PSNRs (identical outputs) written as the string 'inf': JSON has no infinity."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return 'inf' if isinstance(value, float) and math.isinf(value) else value


def main() -> int:
    args = parse_args()
    torch.set_num_threads(args.threads)
    window_frames = args.interval + 2 * args.overlap
    loads = {}
    work = tempfile.mkdtemp(prefix='benchmark_deploy_')
    try:
        loads['setup'] = {'before': load()}
        net, ranges, int8_source = build_networks(args, window_frames)
        scale = int(net.scale)
        if args.clips:
            window = footage_sequence(args.clips, window_frames, scale, *args.lq_size)
            gt = read_footage_windows(args.clips, window_frames, scale, 'val', max_windows=1)[0]['gt']
            gt = gt[..., :window.shape[-2] * scale, :window.shape[-1] * scale].numpy()
        else:
            window, gt = synthetic_clip(window_frames, *args.lq_size, seed=7), None
        h, w = window.shape[-2:]
        graphs = {}
        for name, precision in (('onnxruntime fp32', 'fp32'), ('onnxruntime int8-ort', 'int8-ort'),
                                ('onnxruntime int8-trt', 'int8-trt')):
            graphs[name] = os.path.join(work, f'{precision}.onnx')
            start = time.perf_counter()
            export_onnx(net, graphs[name], window_frames, h, w, precision=precision, conv_output_range=ranges)
            print(f'exported {precision} in {time.perf_counter() - start:.0f} s', flush=True)
        fused = integer_kernel_summary(ort_optimized_ops(graphs['onnxruntime int8-ort'], args.threads))
        placement = read_int8_placement(graphs['onnxruntime int8-ort'])
        coverage = {name: asdict(qdq_coverage(graphs[name]))
                    for name in ('onnxruntime int8-ort', 'onnxruntime int8-trt')}
        loads['setup']['after'] = load()

        print(f'part 1: {args.rounds} interleaved rounds of {len(BACKENDS)} backends on {window_frames} frames of '
              f'{w}x{h}', flush=True)
        loads['latency'] = {'before': load()}
        seconds, outputs = time_backends(net, graphs, window, args.rounds, args.threads)
        loads['latency']['after'] = load()
        reference = outputs['torch fp32']
        ort_fp32, ort_fp32_best = statistics.median(seconds['onnxruntime fp32']), min(seconds['onnxruntime fp32'])
        latency = {}
        for name in BACKENDS:
            per_frame = sorted(1000 * s / window_frames for s in seconds[name])
            q = statistics.quantiles(per_frame, n=4) if len(per_frame) > 1 else per_frame * 3
            latency[name] = {'ms_per_frame_median': statistics.median(per_frame), 'ms_per_frame_p25': q[0],
                             'ms_per_frame_p75': q[-1], 'ms_per_frame_best': per_frame[0],
                             'ms_per_frame_all': per_frame,
                             'speedup_vs_ort_fp32': ort_fp32 / statistics.median(seconds[name]),
                             'speedup_vs_ort_fp32_best': ort_fp32_best / min(seconds[name]),
                             'psnr_vs_torch_fp32_db': output_psnr(reference, outputs[name])}
            if gt is not None:
                latency[name]['psnr_vs_gt_db'] = output_psnr(gt, np.clip(outputs[name], 0, 1))
            print(f"  {name:22s} {latency[name]['ms_per_frame_median']:8.0f} ms/frame  "
                  f"{latency[name]['speedup_vs_ort_fp32']:.2f}x vs ORT FP32 (best rounds "
                  f"{latency[name]['speedup_vs_ort_fp32_best']:.2f}x)  PSNR vs torch FP32 "
                  f"{fmt(latency[name]['psnr_vs_torch_fp32_db'], 2)} dB", flush=True)

        print(f'part 2: streaming {args.stream_frames} frames, interval {args.interval}, overlap {args.overlap}',
              flush=True)
        if args.clips:
            stream_clip = footage_sequence(args.clips, args.stream_frames, scale, h, w)
        else:
            stream_clip = synthetic_clip(args.stream_frames, h, w, seed=11)
        frames_dir = write_frames(os.path.join(work, 'stream_in'), stream_clip)
        loads['streaming'] = {'before': load()}
        backends = {name: OnnxRuntimeBackend(graphs[name], threads=args.threads)
                    for name in ('onnxruntime fp32', 'onnxruntime int8-ort')}
        runs = {name: [] for name in backends}
        for r in range(args.stream_rounds):  # interleaved, the order reversed every other round
            for name in list(backends) if r % 2 == 0 else list(backends)[::-1]:
                out_dir = os.path.join(work, f'stream_{r}_{len(runs[name])}')
                runs[name].append(stream(backends[name], frames_dir, out_dir, args.interval, args.overlap))
                shutil.rmtree(out_dir)
        streaming = {name: median_run(reports) for name, reports in runs.items()}
        for name, row in streaming.items():
            print(f"  {name:22s} {row['fps']:.2f} fps, model {row['model_ms_per_output_frame']:.0f} ms/frame, "
                  f"overhead {100 * row['pipeline_overhead']:.1f} % (median run of {args.stream_rounds})", flush=True)
        loads['streaming']['after'] = load()

        rows = []
        if args.sweep_frames:
            print(f'part 3: interval/overlap sweep over {args.sweep_frames} frames (torch FP32)', flush=True)
            sequence = (footage_sequence(args.clips, args.sweep_frames, scale, h, w) if args.clips
                        else synthetic_clip(args.sweep_frames, h, w, seed=13))
            loads['sweep'] = {'before': load()}
            rows = sweep(net, sequence, work)
            loads['sweep']['after'] = load()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    spec = net.width_spec() if hasattr(net, 'width_spec') else {}
    result = {
        'command': ' '.join(['python', *sys.argv]),
        'machine': {'when': time.strftime('%Y-%m-%d %H:%M'), 'cpus': os.cpu_count(), 'platform': platform.platform(),
                    'onnxruntime': ort.__version__, 'torch': torch.__version__},
        'config': {'network': f"{type(net).__name__} {spec.get('backward', '?')} ch, "
                              f"{len(spec.get('backward_blocks', []))} blocks",
                   'weights': args.checkpoint or 'random (seed 0)', 'int8_source': int8_source, 'scale': scale,
                   'lq_size': [int(h), int(w)], 'window_frames': window_frames, 'interval': args.interval,
                   'overlap': args.overlap, 'threads': args.threads, 'rounds': args.rounds,
                   'stream_rounds': args.stream_rounds,
                   'clips': args.clips, 'sweep_frames': args.sweep_frames},
        'load': loads,
        'latency': latency,
        'int8_ort_fused': fused,
        'int8_ort_placement': placement,
        'qdq_coverage': coverage,
        'streaming': streaming,
        'sweep': rows,
    }
    write_benchmark_result(os.path.join(args.out, args.name), finite(result), markdown(result),
                           lambda _, path: plot(result, path))  # JSON has no infinity; the table and plot do
    return 0


if __name__ == '__main__':
    sys.exit(main())
