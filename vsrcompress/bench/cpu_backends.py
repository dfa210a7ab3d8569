"""The whole CPU chain at full size: dense vs pruned vs pruned INT8, in PyTorch, ONNX Runtime and OpenVINO.

For each arch (full-size BasicVSR 64 ch / 30 blocks, IconVSR): the dense network (random weights: speed does not
depend on their values), the same network pruned to a MAC budget, and the pruned network INT8-quantized and
calibrated on footage clips. Every (variant, engine, precision) runs the same window, interleaved round-robin in one
run; nothing is left implicit: PyTorch FP32, ONNX Runtime FP32 and ``int8-ort``, OpenVINO ``f32``/``bf16`` for
float graphs and both INT8 Q/DQ placements (``int8-trt``, ``int8-ort``) with their float layers in ``f32``/``bf16``.
Each output is compared with its PyTorch reference (FP32; INT8: the fake-quantized network).

A last part serves several inputs at once (several cameras) with the fastest OpenVINO INT8 IR: one input at a time
(latency mode) against all at once (asynchronous requests in throughput mode), through the real streaming pipeline
(decode -> model -> encode, video files in and out); the aggregate FPS of both.
"""
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from vsrcompress.bench.clips import moving_clip, write_clip
from vsrcompress.bench.full_size import build_variants, calibration_clips
from vsrcompress.bench.machine import load_average, machine_info, machine_line
from vsrcompress.bench.timing import time_interleaved
from vsrcompress.export import DYNAMIC_TRACE_SIZE, export_onnx
from vsrcompress.export.onnx_export import INPUT_NAME
from vsrcompress.export.openvino_export import export_openvino
from vsrcompress.export.openvino_runtime import bf16_supported, runtime_kernel_summary, time_by_layer_type
from vsrcompress.inference.backends import OnnxRuntimeBackend
from vsrcompress.inference.multi_stream import run_many_video_sr
from vsrcompress.inference.openvino_backend import OpenVINOBackend
from vsrcompress.inference.pipeline import run_video_sr
from vsrcompress.metrics import unit_range_psnr
from vsrcompress.report.complexity import OFFICIAL_MODELS, count_model_complexity

REFERENCE = 'dense | onnxruntime fp32'
LAYER_TYPES_KEPT = 8  # the slowest OpenVINO layer types stored per row: 96-99.8 % of the time in the full-size run


@dataclass
class CpuBackendsConfig:
    """What ``run`` measures.

    Attributes:
        archs: Keys of ``OFFICIAL_MODELS`` (full-size configurations).
        frames: Window length every engine runs (IconVSR needs >= 5).
        height: LR height of the window.
        width: LR width.
        mac_budget: Pruned variant: MACs per frame as a fraction of dense.
        repeats: Timed interleaved rounds (median and best reported).
        warmup: Untimed rounds first.
        threads: CPU threads of every engine (0: all CPUs).
        clips: Footage dataset for INT8 calibration (None: the demo footage, made in a temporary folder).
        calib_windows: Calibration windows.
        streams: Inputs of the several-cameras part (0: skip it).
        stream_frames: Frames per input in that part.
        network: Options over the official configuration (e.g. ``{'num_block': 10}``; tests use tiny networks).
        command: The command line, for the record.
    """
    archs: tuple[str, ...] = ('basicvsr', 'iconvsr')
    frames: int = 5
    height: int = 180
    width: int = 320
    mac_budget: float = 0.25
    repeats: int = 2
    warmup: int = 1
    threads: int = 0
    clips: str | None = None
    calib_windows: int = 4
    streams: int = 4
    stream_frames: int = 16
    network: dict = field(default_factory=dict)
    command: str = ''


def check(config: CpuBackendsConfig) -> None:
    """Refuse a configuration that cannot run, before any work."""
    unknown = [a for a in config.archs if a not in OFFICIAL_MODELS]
    if unknown or not config.archs:
        raise ValueError(f'archs: {unknown or config.archs} not known; allowed: {sorted(OFFICIAL_MODELS)}')
    if not 0 < config.mac_budget < 1:
        raise ValueError(f'mac_budget: expected a fraction in (0, 1), got {config.mac_budget}')
    if min(config.height, config.width) < 64 or config.frames < 5:
        raise ValueError(f'size: expected height and width >= 64 and frames >= 5, got {config.height}x{config.width}, '
                         f'{config.frames} frames')
    if config.clips is not None and not os.path.isdir(config.clips):
        raise ValueError(f'clips: {config.clips} is not a footage dataset folder')


def _ort(path: str, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """The graph's float input to float output in ONNX Runtime (the streaming backend's session, without its uint8
    conversions, which are not the engine's time)."""
    session = OnnxRuntimeBackend(path, threads=threads).session
    return lambda lq: session.run(None, {INPUT_NAME: lq})[0]


def _openvino(xml: str, precision: str, threads: int, shape: tuple[int, ...]) -> tuple[Callable, dict]:
    """As ``_ort``, for OpenVINO; plus the compiled model's kernel summary."""
    backend = OpenVINOBackend(xml, precision, threads, input_shape=shape)
    return (lambda lq: np.asarray(backend.request.infer([lq])[0])), runtime_kernel_summary(backend.compiled)


def _torch(net: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    def run(lq: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(lq)).numpy()
    return run


def _runners(variants: dict, folder: str, config: CpuBackendsConfig, threads: int, log: Callable[[str], None]
             ) -> tuple[dict, dict, dict, dict]:
    """``{name: run(lq)}``, the OpenVINO kernel summaries, the PyTorch reference name of every runner, and the
    ``(IR path, precision)`` of every OpenVINO runner."""
    shape = (1, config.frames, 3, config.height, config.width)
    precisions = ['f32'] + (['bf16'] if bf16_supported() else [])
    runners, kernels, reference, irs = {}, {}, {}, {}
    graphs = {}
    for variant in ('dense', 'pruned'):
        graphs[(variant, 'fp32')] = (variants[variant], None)
    int8, ranges = variants['pruned int8']
    graphs[('pruned int8', 'int8-ort')] = (int8, ranges)
    graphs[('pruned int8', 'int8-trt')] = (int8, ranges)
    for (variant, graph), (net, ranges) in graphs.items():
        onnx_path = os.path.join(folder, f'{variant.replace(" ", "_")}_{graph}.onnx')
        export_onnx(net, onnx_path, config.frames, DYNAMIC_TRACE_SIZE, DYNAMIC_TRACE_SIZE, dynamic=True,
                    precision=graph, conv_output_range=ranges)
        xml = onnx_path[:-5] + '.xml'
        export_openvino(onnx_path, xml, 'f32')
        ref = f'{variant} | torch {"fp32" if graph == "fp32" else "fake-quant"}'
        if graph != 'int8-trt':  # ONNX Runtime runs int8-trt graphs as float math with Q/DQ: not a deployment
            runners[f'{variant} | onnxruntime {graph}'] = _ort(onnx_path, threads)
            reference[f'{variant} | onnxruntime {graph}'] = ref
        for precision in precisions:
            engine = precision if graph == 'fp32' else f'{graph}+{precision}'
            name = f'{variant} | openvino {engine}'
            runners[name], kernels[name] = _openvino(xml, precision, threads, shape)
            reference[name] = ref
            irs[name] = (xml, precision)
        log(f'{variant} {graph}: ONNX and OpenVINO IR ready')
    for variant in ('dense', 'pruned'):
        runners[f'{variant} | torch fp32'] = _torch(variants[variant])
        reference[f'{variant} | torch fp32'] = f'{variant} | torch fp32'
    return runners, kernels, reference, irs


def _measure_arch(arch: str, variants: dict, config: CpuBackendsConfig, threads: int, log: Callable[[str], None]
                  ) -> dict:
    lq = moving_clip(config.frames, config.height, config.width)
    counts = {v: count_model_complexity(variants[v], config.width, config.height) for v in ('dense', 'pruned')}
    with tempfile.TemporaryDirectory(prefix='cpu_backends_') as folder:
        runners, kernels, reference, irs = _runners(variants, folder, config, threads, log)
        array = lq.numpy()
        outputs = {}
        seconds = time_interleaved({n: (lambda r=r, n=n: outputs.__setitem__(n, r(array))) for n, r in runners.items()},
                                   config.repeats, config.warmup, log)
        layers = {name: time_by_layer_type(xml, precision, array, threads)[:LAYER_TYPES_KEPT]
                  for name, (xml, precision) in irs.items()}
        log(f'{arch}: OpenVINO time by layer type counted')
    int8 = variants['pruned int8'][0]
    with torch.inference_mode():
        outputs['pruned int8 | torch fake-quant'] = int8(lq).numpy()
    rows = []
    for name, times in seconds.items():
        variant, engine = name.split(' | ')
        rows.append({'name': name, 'variant': variant, 'engine': engine.split()[0], 'precision': engine.split()[1],
                     'macs_per_frame': counts['pruned' if variant != 'dense' else 'dense']['macs_per_frame'],
                     'window_seconds': times, 'ms_per_frame_median': 1000 * float(np.median(times)) / config.frames,
                     'ms_per_frame_best': 1000 * min(times) / config.frames,
                     'psnr_vs_reference_db': unit_range_psnr(outputs[reference[name]], outputs[name]),
                     'reference': reference[name], 'openvino_kernels': kernels.get(name),
                     'openvino_time_by_layer_type': layers.get(name)})
    ref = next(r for r in rows if r['name'] == REFERENCE)
    for row in rows:
        row['speedup_vs_dense_ort_fp32'] = ref['ms_per_frame_median'] / row['ms_per_frame_median']
        row['speedup_vs_dense_ort_fp32_best'] = ref['ms_per_frame_best'] / row['ms_per_frame_best']
    return {'arch': arch, 'params': {v: counts[v]['params'] for v in counts}, 'pruned_widths': variants['widths'],
            'rows': rows}


def _measure_streams(arch: str, int8: torch.nn.Module, config: CpuBackendsConfig, threads: int, ir_precision: str
                     ) -> dict:
    """Several inputs one at a time vs all at once, with the pruned INT8 network's IR (``int8-trt`` placement)."""
    shape = (1, config.frames, 3, config.height, config.width)
    overlap = 1
    interval = config.frames - 2 * overlap
    with tempfile.TemporaryDirectory(prefix='cpu_streams_') as folder:
        onnx_path, xml = os.path.join(folder, 'int8.onnx'), os.path.join(folder, 'int8.xml')
        export_onnx(int8, onnx_path, config.frames, DYNAMIC_TRACE_SIZE, DYNAMIC_TRACE_SIZE, dynamic=True,
                    precision='int8-trt')
        export_openvino(onnx_path, xml, ir_precision)
        inputs = [write_clip(moving_clip(config.stream_frames, config.height, config.width, seed=i),
                             os.path.join(folder, f'camera{i}.avi')) for i in range(config.streams)]
        one = OpenVINOBackend(xml, threads=threads, input_shape=shape)
        started = time.perf_counter()
        sequential = [run_video_sr(p, os.path.join(folder, f'seq{i}.avi'), one, interval, overlap, progress=False)
                      for i, p in enumerate(inputs)]
        sequential_wall = time.perf_counter() - started
        many = OpenVINOBackend(xml, threads=threads, mode='throughput', input_shape=shape)
        concurrent = run_many_video_sr(inputs, [os.path.join(folder, f'con{i}.avi') for i in range(len(inputs))],
                                       many, interval, overlap)
    frames_out = sum(r['frames_out'] for r in sequential)
    result = {'arch': arch, 'graph': 'pruned int8-trt', 'inference_precision': ir_precision, 'inputs': len(inputs),
              'frames_per_input': [r['frames_out'] for r in sequential], 'interval': interval, 'overlap': overlap,
              'one_at_a_time': {'wall_seconds': sequential_wall, 'aggregate_fps': frames_out / sequential_wall,
                                'fps_per_input': [r['fps'] for r in sequential]},
              'all_at_once': {'wall_seconds': concurrent['wall_seconds'], 'aggregate_fps': concurrent['aggregate_fps'],
                              'fps_per_input': [r['fps'] for r in concurrent['inputs']],
                              'openvino_streams': concurrent['openvino_streams']}}
    result['aggregate_speedup'] = result['all_at_once']['aggregate_fps'] / result['one_at_a_time']['aggregate_fps']
    return result


def _targets(archs: list[dict], streams: dict | None) -> list[dict]:
    targets = []
    for arch in archs:
        int8 = max((r for r in arch['rows'] if r['variant'] == 'pruned int8' and r['engine'] == 'openvino'),
                   key=lambda r: r['speedup_vs_dense_ort_fp32'])
        dense_ov = min((r for r in arch['rows'] if r['variant'] == 'dense' and r['engine'] == 'openvino'),
                       key=lambda r: r['ms_per_frame_median'])
        vs_ov = dense_ov['ms_per_frame_median'] / int8['ms_per_frame_median']
        targets.append({'arch': arch['arch'], 'target': f'pruned INT8 on OpenVINO ({int8["precision"]}) >= 20x dense '
                        'FP32 in ONNX Runtime', 'measured': int8['speedup_vs_dense_ort_fp32'],
                        'met': int8['speedup_vs_dense_ort_fp32'] >= 20})
        targets.append({'arch': arch['arch'], 'target': f'pruned INT8 on OpenVINO >= 5x dense on OpenVINO '
                        f'({dense_ov["precision"]}, the faster dense precision)', 'measured': vs_ov, 'met': vs_ov >= 5})
    if streams:
        targets.append({'arch': streams['arch'], 'target': f'{streams["inputs"]} inputs at once >= 1.5x aggregate FPS '
                        'of one at a time', 'measured': streams['aggregate_speedup'],
                        'met': streams['aggregate_speedup'] >= 1.5})
    return targets


def run(config: CpuBackendsConfig, log: Callable[[str], None] | None = print) -> dict:
    """Measure everything (see the module docstring); returns the JSON-ready result."""
    log = log or (lambda line: None)
    check(config)
    threads = config.threads or os.cpu_count() or 1
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    machine = machine_info(threads)
    try:
        calib = calibration_clips(config.clips, config.frames, config.calib_windows)
        variants = {arch: build_variants(arch, config.network, config.mac_budget, (config.height, config.width),
                                         calib, log) for arch in config.archs}
        archs = [_measure_arch(arch, variants[arch], config, threads, log) for arch in config.archs]
        precision = 'bf16' if bf16_supported() else 'f32'
        first = config.archs[0]
        streams = (_measure_streams(first, variants[first]['pruned int8'][0], config, threads, precision)
                   if config.streams > 1 else None)
    finally:
        torch.set_num_threads(old_threads)
    machine['load_average_after'] = load_average()
    return {'machine': machine, 'config': asdict(config), 'archs': archs, 'streams': streams,
            'targets': _targets(archs, streams)}


def markdown(result: dict) -> str:
    """The result as a Markdown page: setup, one table per arch, the several-inputs part, the targets."""
    m, c = result['machine'], result['config']
    network = ', '.join(f'{k} {v}' for k, v in c['network'].items()) or 'official full-size configurations'
    lines = ['# CPU engines at full size: torch vs ONNX Runtime vs OpenVINO\n',
             f'`{c["command"]}`. {machine_line(m)}\n',
             f'Networks: {network}. One window of {c["frames"]} frames of {c["width"]}x{c["height"]} LR (x4 out), '
             'random weights, '
             f'{c["repeats"]} timed interleaved rounds after {c["warmup"]} warm-up; pruned = MAC budget '
             f'{c["mac_budget"]:g}; INT8 calibrated on {c["calib_windows"]} footage windows '
             f'({c["clips"] or "demo footage"}). Precision of every engine is named: OpenVINO `f32`/`bf16` is the '
             'inference precision of float layers; `int8-trt`/`int8-ort` the Q/DQ placement of the INT8 graph. PSNR '
             'against the PyTorch reference of the same network (INT8: the fake-quantized network).\n']
    for arch in result['archs']:
        lines += [f'## {arch["arch"]}\n', '| variant | engine | precision | GMACs/frame | ms/frame (median) | best | '
                  'vs dense ORT FP32 (median / best) | PSNR vs reference (dB) |', '|---|---|---|---|---|---|---|---|']
        for r in sorted(arch['rows'], key=lambda r: -r['ms_per_frame_median']):
            lines.append(f'| {r["variant"]} | {r["engine"]} | {r["precision"]} | {r["macs_per_frame"] / 1e9:.1f} | '
                         f'{r["ms_per_frame_median"]:.0f} | {r["ms_per_frame_best"]:.0f} | '
                         f'{r["speedup_vs_dense_ort_fp32"]:.2f}x / {r["speedup_vs_dense_ort_fp32_best"]:.2f}x | '
                         f'{r["psnr_vs_reference_db"]:.1f} |')
        int8 = [r for r in arch['rows'] if r['openvino_kernels'] and r['variant'] == 'pruned int8']
        lines.append('\nOpenVINO convolutions by runtime precision: ' + '; '.join(
            f'{r["precision"]}: {r["openvino_kernels"]["convolutions_by_precision"]}' for r in int8) + '\n')
        lines += _layer_time_table(arch['rows'])
    s = result['streams']
    if s:
        lines += ['## Several inputs at once\n', f'{s["inputs"]} video files of {s["frames_per_input"]} frames, '
                  f'{s["arch"]} {s["graph"]} IR in OpenVINO ({s["inference_precision"]} float layers), interval '
                  f'{s["interval"]}, overlap {s["overlap"]}, through the streaming pipeline (decode, model, encode).\n',
                  '| mode | wall s | aggregate FPS | FPS per input |', '|---|---|---|---|']
        for key, label in (('one_at_a_time', 'one at a time (latency mode)'),
                           ('all_at_once', f'all at once ({s["all_at_once"]["openvino_streams"]} OpenVINO streams)')):
            part = s[key]
            lines.append(f'| {label} | {part["wall_seconds"]:.1f} | {part["aggregate_fps"]:.2f} | '
                         f'{", ".join(f"{v:.2f}" for v in part["fps_per_input"])} |')
        lines.append(f'\nAggregate speed-up: {s["aggregate_speedup"]:.2f}x\n')
    lines += ['## Targets\n', '| arch | target | measured | met |', '|---|---|---|---|']
    lines += [f'| {t["arch"]} | {t["target"]} | {t["measured"]:.2f}x | {"yes" if t["met"] else "no"} |'
              for t in result['targets']]
    return '\n'.join(lines) + '\n'


def _layer_time_table(rows: list[dict], top: int = 4) -> list[str]:
    """Where each OpenVINO run spends its time: the largest layer types with their kernels and shares."""
    profiled = [r for r in rows if r.get('openvino_time_by_layer_type')]
    if not profiled:
        return []
    lines = ['OpenVINO time by layer type (one counted inference; kernel names give the instruction set and the '
             'precision, e.g. `brgconv_avx512_I8` = integer convolutions on AVX-512 VNNI, `amx` where AMX is used):\n',
             '| variant | precision | largest layer types: kernel, layers, share of the time |', '|---|---|---|']
    for r in sorted(profiled, key=lambda r: -r['ms_per_frame_median']):
        parts = [f'{x["layer_type"]} `{x["kernel"]}` x{x["layers"]} {100 * x["share"]:.0f} %'
                 for x in r['openvino_time_by_layer_type'][:top]]
        lines.append(f'| {r["variant"]} | {r["precision"]} | {"; ".join(parts)} |')
    return lines + ['']


def plot(result: dict, path: str) -> None:
    """ms per frame of every (variant, engine, precision), one panel per arch, log scale, fastest at the top."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    from vsrcompress.atomic_files import write_figure

    archs = result['archs']
    fig, axes = plt.subplots(1, len(archs), figsize=(7 * len(archs), 6), squeeze=False)
    colors = {'dense': 'tab:gray', 'pruned': 'tab:blue', 'pruned int8': 'tab:green'}
    for ax, arch in zip(axes[0], archs):
        rows = sorted(arch['rows'], key=lambda r: -r['ms_per_frame_median'])
        ax.barh([r['name'] for r in rows], [r['ms_per_frame_median'] for r in rows],
                color=[colors[r['variant']] for r in rows])
        for i, r in enumerate(rows):
            ax.text(r['ms_per_frame_median'], i, f' {r["speedup_vs_dense_ort_fp32"]:.1f}x', va='center', fontsize=8)
        ax.set_xscale('log')
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel('ms per frame (median, log scale)')
        ax.set_title(f'{arch["arch"]}, {result["config"]["width"]}x{result["config"]["height"]} LR x4\n'
                     'labels: speed-up vs dense ONNX Runtime FP32', fontsize=10)
        ax.tick_params(axis='y', labelsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    fig.legend(handles, list(colors), loc='lower center', ncol=3)
    fig.suptitle(f'{result["machine"]["cpu_model"]}, {result["machine"]["threads"]} threads')
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    write_figure(path, fig)
