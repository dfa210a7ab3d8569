"""Stateful streaming against windows: quality on a trained network, speed and latency of full-size networks.

Two parts, one run, over one grid of modes: windowed (interval, overlap), every call from zero state on
``interval + 2 * overlap`` frames, against stateful (interval, lookahead), the forward state carried between calls
and ``lookahead`` frames for the backward branch.

1. Quality: the trained FP32 network (the demo teacher by default) streams every validation clip through
   ``run_video_sr`` (PNG frames in and out, torch) in every mode; PSNR against the ground truth (BasicSR's 8-bit
   PSNR, mean of frames, mean of clips) and against the whole-sequence output of the same network (``net(clip)``,
   rounded as the pipeline rounds; one MSE over every frame of every clip), frames waited, network frames per
   delivered frame, MACs per delivered frame.
2. Speed: full-size BasicVSR and IconVSR (random weights; pruned to ``mac_budget``, INT8 calibrated on footage:
   ``full_size``) stream a moving clip written as a video file through ``run_video_sr`` (decode -> model ->
   encode) on each engine: pruned INT8 on OpenVINO (``int8-trt`` IR, float layers f32) and on ONNX Runtime
   (``int8-ort``), the pruned network in torch (FP32: torch runs INT8 only as fake quantization) and the dense FP32
   network on ONNX Runtime (the reference, windowed 5/2). Every (engine, mode) run is one pipeline run, all of them
   interleaved round after round (``timing``), after one untimed call each; delivered FPS is the median over rounds.
   Then the latency: each full-grid engine streams every mode again from a source paced at one frame period
   (``paced_stream``: ``pace_margin`` x its slowest mode's time per delivered frame, so every mode keeps up and all
   are compared at one frame rate), and the per-frame mode (1, 0) once more at ``pace_margin`` x its own time per
   frame, the fastest rate it sustains, for the per-frame latency target.

Targets (issue 23), checked in the result: stateful 5/2 >= 1.4x the delivered FPS of windowed 5/2 on the same engine
and network (OpenVINO INT8, torch) with PSNR against the whole sequence no lower (quality part); the compressed
network streaming statefully (5/2) on its best engine >= 20x the dense FP32 network on ONNX Runtime windowed 5/2
(BasicVSR); per-frame mode end-to-end latency p95 <= one frame period + one step's compute (median model call).
"""
import contextlib
import io
import math
import os
import shutil
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
import torch

from vsrcompress.bench.call_macs import macs_per_delivered_frame
from vsrcompress.bench.clips import moving_clip, write_clip
from vsrcompress.bench.full_size import build_variants, calibration_clips
from vsrcompress.bench.inputs import InputError, NetworkInputs, at_least, check_inputs, load_fp32_network
from vsrcompress.bench.machine import load_average, machine_info, machine_line
from vsrcompress.bench.paced_stream import run_paced
from vsrcompress.bench.timing import time_interleaved
from vsrcompress.export import DYNAMIC_TRACE_SIZE, MIN_SIZE, export_onnx, footage_test_dataset
from vsrcompress.export.openvino_export import export_openvino
from vsrcompress.inference.backends import Backend, OnnxRuntimeBackend, TorchBackend
from vsrcompress.inference.chunk_plan import validate_chunking
from vsrcompress.inference.openvino_backend import OpenVINOBackend
from vsrcompress.inference.pipeline import run_video_sr
from vsrcompress.inference.stream_plan import StreamCall, validate_streaming
from vsrcompress.report.complexity import OFFICIAL_MODELS

WINDOWED = ((5, 0), (5, 2), (15, 2), (3, 1))  # (interval, overlap)
STATEFUL = ((1, 0), (1, 2), (3, 1), (5, 2), (8, 2))  # (interval, lookahead)
TARGET_MODE, PER_FRAME = (5, 2), (1, 0)  # both modes' default, compared by the targets; the per-frame mode
# name -> (network variant, engine, graph precision)
ENGINES = {'openvino-int8': ('pruned int8', 'openvino', 'int8-trt'),
           'onnxruntime-int8': ('pruned int8', 'onnxruntime', 'int8-ort'),
           'torch-pruned': ('pruned', 'torch', 'fp32'),
           'onnxruntime-dense': ('dense', 'onnxruntime', 'fp32')}
REFERENCE = 'onnxruntime-dense'  # runs windowed 5/2 only (unless in full_grid): the 20x target's denominator
RATIO_ENGINES = ('openvino-int8', 'torch-pruned')  # where the 1.4x target is asked for
FPS_RATIO_TARGET, DENSE_RATIO_TARGET = 1.4, 20.0
CALIB_FRAMES = 5  # IconVSR needs 2 * temporal_padding + 1 frames
SIZES = {'basicvsr': (180, 320), 'iconvsr': (92, 160)}  # LR (height, width): IconVSR's stateful sides are x4


@dataclass(frozen=True)
class Mode:
    """One streaming mode: stateful (``extra`` = lookahead) or windowed (``extra`` = overlap)."""
    stateful: bool
    interval: int
    extra: int

    @property
    def label(self) -> str:
        return f'{"stateful" if self.stateful else "windowed"} {self.interval}/{self.extra}'

    @property
    def frames(self) -> int:
        """Frames one call reads."""
        return self.interval + (self.extra if self.stateful else 2 * self.extra)

    def run_args(self) -> dict:
        """``run_video_sr``'s mode arguments."""
        return {'interval': self.interval, 'lookahead' if self.stateful else 'overlap': self.extra}

    def row(self) -> dict:
        return {'mode': 'stateful' if self.stateful else 'windowed', 'interval': self.interval,
                'lookahead' if self.stateful else 'overlap': self.extra, 'label': self.label}


@dataclass
class StreamingConfig(NetworkInputs):
    """What ``run`` measures (and ``NetworkInputs``: the quality part's network, footage, threads, clips).

    Attributes:
        windowed: (interval, overlap) modes; must hold (5, 2).
        stateful: (interval, lookahead) modes; must hold (5, 2) and (1, 0).
        archs: Full-size networks of the speed part (``OFFICIAL_MODELS`` keys; empty: skip the speed part).
        sizes: LR (height, width) of each arch's clip.
        frames: Frames of the speed clip (more than any call reads).
        engines: ``ENGINES`` to run.
        full_grid: Engines that run every mode (and the paced latency runs); the others run windowed 5/2 and
            stateful 5/2 (the reference: windowed 5/2 only).
        rounds: Interleaved timed rounds of every (engine, mode) run.
        pace_margin: Frame period of the paced runs over the time per delivered frame (> 1: the stream keeps up).
        mac_budget: Pruned networks: MACs per frame as a fraction of dense.
        calib_windows: INT8 calibration windows (train split of ``footage``).
        network: Options over the official configurations (tests: ``{'num_feat': 8, 'num_block': 1}``).
    """
    windowed: tuple[tuple[int, int], ...] = WINDOWED
    stateful: tuple[tuple[int, int], ...] = STATEFUL
    archs: tuple[str, ...] = ('basicvsr', 'iconvsr')
    sizes: dict = field(default_factory=lambda: dict(SIZES))
    frames: int = 20
    engines: tuple[str, ...] = tuple(ENGINES)
    full_grid: tuple[str, ...] = ('openvino-int8',)
    rounds: int = 2
    pace_margin: float = 1.25
    mac_budget: float = 0.25
    calib_windows: int = 4
    network: dict = field(default_factory=dict)


def modes(config: StreamingConfig) -> list[Mode]:
    """Every mode of the grid, windowed first."""
    return [Mode(False, *m) for m in config.windowed] + [Mode(True, *m) for m in config.stateful]


def check(config: StreamingConfig) -> None:
    """Refuse a configuration that cannot run, before any work (errors name the setting and what is allowed)."""
    at_least(1, rounds=config.rounds, calib_windows=config.calib_windows)
    for interval, overlap in config.windowed:
        validate_chunking(interval, overlap)
    for interval, lookahead in config.stateful:
        validate_streaming(interval, lookahead)
    if TARGET_MODE not in config.windowed or TARGET_MODE not in config.stateful or PER_FRAME not in config.stateful:
        raise ValueError(f'windowed/stateful: the targets compare windowed {TARGET_MODE} with stateful {TARGET_MODE} '
                         f'and time the per-frame mode {PER_FRAME}; keep them in the grid')
    unknown = [a for a in config.archs if a not in OFFICIAL_MODELS]
    if unknown:
        raise ValueError(f'archs: {unknown} not known; allowed: {sorted(OFFICIAL_MODELS)}')
    for arch in config.archs:
        size = config.sizes.get(arch)
        if size is None or len(size) != 2 or min(size) < 64:
            raise ValueError(f'sizes: {arch} needs an LR (height, width) of at least 64x64, got {size}')
    longest = max(m.frames for m in modes(config))
    if config.archs and config.frames <= longest:
        raise ValueError(f'frames: the speed clip must be longer than the longest call ({longest} frames), got '
                         f'{config.frames}')
    bad = [e for e in (*config.engines, *config.full_grid) if e not in ENGINES]
    if bad or not config.engines:
        raise ValueError(f'engines/full_grid: {bad or "none given"}; allowed: {list(ENGINES)}')
    if not set(config.full_grid) <= set(config.engines):
        raise ValueError(f'full_grid: {sorted(set(config.full_grid) - set(config.engines))} not among engines')
    if not config.pace_margin > 1:
        raise ValueError(f'pace_margin: must be > 1 (a stream paced faster than it is served only queues up), got '
                         f'{config.pace_margin}')
    if not 0 < config.mac_budget < 1:
        raise ValueError(f'mac_budget: expected a fraction in (0, 1), got {config.mac_budget}')
    check_inputs(config, 'a dense or pruned FP32 vsrcompress checkpoint (its whole-sequence output is the reference)')


def _quiet(run: Callable, *args, **kwargs) -> dict:
    """``run_video_sr`` without its console report (the benchmark logs its own lines)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return run(*args, **kwargs)


def _bgr_uint8(frames: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) RGB in [0, 1] -> (T, H, W, 3) BGR uint8, rounded as BasicSR's ``tensor2img``."""
    return (frames.clamp(0, 1).permute(0, 2, 3, 1).numpy()[..., ::-1] * 255.0).round().astype(np.uint8)


def _read_frames(folder: str) -> np.ndarray:
    return np.stack([cv2.imread(os.path.join(folder, name)) for name in sorted(os.listdir(folder))])


def _psnr_from_mse(mse: float) -> float | str:
    """8-bit PSNR from a mean squared error; ``'inf'`` for identical outputs (JSON has no infinity)."""
    return 'inf' if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def _weighted(reports: list[dict], key: str) -> dict:
    """``network_frames_per_output_frame`` over several runs, weighted by their delivered frames."""
    frames = sum(r['frames_out'] for r in reports)
    return {part: sum(r[key][part] * r['frames_out'] for r in reports) / frames for part in reports[0][key]}


def _latency_frames(reports: list[dict]) -> dict:
    return {k: max(r['latency_frames'][k] for r in reports) for k in ('p50', 'p95', 'max')}


def _quality(config: StreamingConfig, work: str, log: Callable[[str], None]) -> dict:
    """Part 1 (see the module docstring)."""
    from basicsr.metrics import calculate_psnr

    net = load_fp32_network(config, 'the quality part streams an FP32 network (dense or pruned) against its own '
                                    'whole-sequence output.')
    try:
        dataset = footage_test_dataset(config.footage, 'val', int(net.scale))
    except (ValueError, FileNotFoundError) as err:
        raise InputError(f'footage: {err}') from err
    count = min(len(dataset), config.val_clips or len(dataset))
    backend, grid = TorchBackend(net), modes(config)
    gt_psnr = {m.label: [] for m in grid}
    sq_err = {m.label: 0.0 for m in grid}
    reports = {m.label: [] for m in grid}
    whole_psnr, pixels, clips = [], 0, []
    for index in range(count):
        item = dataset[index]
        lq, gt = item['lq'], _bgr_uint8(item['gt'])
        if lq.shape[0] <= 1:
            raise InputError(f'footage: val clip {item["folder"]} has {lq.shape[0]} frame; streaming needs more')
        clips.append({'clip': item['folder'], 'frames': int(lq.shape[0]), 'lq_size': list(lq.shape[-2:])})
        whole = backend.infer(np.ascontiguousarray((lq.permute(0, 2, 3, 1).numpy() * 255.0).round()
                                                   .astype(np.uint8)))[..., ::-1].astype(np.float64)
        whole_psnr.append(statistics.fmean(calculate_psnr(whole[t], gt[t], 0) for t in range(len(gt))))
        pixels += whole.size
        clip_dir = os.path.join(work, 'quality', f'clip{index}')
        os.makedirs(clip_dir)
        folder = write_clip(lq[None], os.path.join(clip_dir, 'lq'))
        for mode in grid:
            out = os.path.join(clip_dir, mode.label.replace(' ', '_').replace('/', '_'))
            reports[mode.label].append(_quiet(run_video_sr, folder, out, backend, progress=False, **mode.run_args()))
            sr = _read_frames(out).astype(np.float64)
            gt_psnr[mode.label].append(statistics.fmean(calculate_psnr(sr[t], gt[t], 0) for t in range(len(gt))))
            sq_err[mode.label] += float(((sr - whole) ** 2).sum())
            shutil.rmtree(out)
        log(f'quality: clip {item["folder"]} ({lq.shape[0]} frames) streamed in {len(grid)} modes')
    h, w = clips[0]['lq_size']
    frames = clips[0]['frames']
    rows = [{'mode': 'whole sequence', 'label': 'whole sequence', 'interval': None, 'psnr_vs_gt_db':
             statistics.fmean(whole_psnr), 'psnr_vs_whole_db': 'inf',
             'latency_frames': {'p50': (frames - 1) / 2, 'p95': 0.95 * (frames - 1), 'max': frames - 1},
             'network_frames_per_output_frame': {'backward': 1.0, 'forward_and_tail': 1.0},
             'macs_per_delivered_frame': macs_per_delivered_frame(net, h, w, frames, overlap=0)}]
    for mode in grid:
        runs = reports[mode.label]
        rows.append({**mode.row(), 'psnr_vs_gt_db': statistics.fmean(gt_psnr[mode.label]),
                     'psnr_vs_whole_db': _psnr_from_mse(sq_err[mode.label] / pixels),
                     'latency_frames': _latency_frames(runs),
                     'network_frames_per_output_frame': _weighted(runs, 'network_frames_per_output_frame'),
                     'macs_per_delivered_frame': macs_per_delivered_frame(
                         net, h, w, mode.interval, **{'lookahead' if mode.stateful else 'overlap': mode.extra})})
    spec = net.width_spec() if hasattr(net, 'width_spec') else {}
    return {'network': f'{type(net).__name__} {spec.get("backward", "?")} ch, '
                       f'{len(spec.get("backward_blocks", []))} blocks ({config.checkpoint})',
            'clips': clips, 'rows': rows}


def _engine_modes(engine: str, config: StreamingConfig) -> list[Mode]:
    if engine in config.full_grid:
        return modes(config)
    target = [Mode(False, *TARGET_MODE)] + ([] if engine == REFERENCE else [Mode(True, *TARGET_MODE)])
    return target


def _graph_backend(engine: str, mode: Mode, variants: dict, folder: str, threads: int, size: tuple[int, int],
                   cache: dict, log: Callable[[str], None]) -> Backend:
    """The engine's backend for ``mode``'s graph (stateful graphs per (interval, lookahead), windowed per window
    length), exported once per graph."""
    variant, kind, precision = ENGINES[engine]
    key = (engine, mode.stateful, mode.frames, mode.interval if mode.stateful else None)
    if key in cache:
        return cache[key]
    net, ranges = variants[variant] if variant == 'pruned int8' else (variants[variant], None)
    name = f'{engine}_{"stateful" if mode.stateful else "windowed"}_{mode.frames}_{mode.interval}'
    onnx_path = os.path.join(folder, name + '.onnx')
    spec = export_onnx(net, onnx_path, mode.frames, DYNAMIC_TRACE_SIZE, DYNAMIC_TRACE_SIZE, dynamic=True,
                       precision=precision, conv_output_range=ranges,
                       interval=mode.interval if mode.stateful else None)
    if kind == 'onnxruntime':
        backend = OnnxRuntimeBackend(onnx_path, threads=threads)
    else:
        xml = onnx_path[:-5] + '.xml'
        export_openvino(onnx_path, xml, 'f32')
        m = spec.contract.size_multiple if spec.contract else 1
        padded = tuple(max(MIN_SIZE, -(-v // m) * m) for v in size)
        backend = OpenVINOBackend(xml, 'f32', threads, input_shape=(1, mode.frames, 3, *padded))
    log(f'{engine}: {name} graph ready')
    cache[key] = backend
    return backend


def _warm(backend: Backend, mode: Mode, size: tuple[int, int]) -> None:
    """One untimed call (first-call allocations, lazy kernel setup), then a fresh stream."""
    clip = np.zeros((mode.frames, *backend.padded_size(*size), 3), np.uint8)
    if mode.stateful:
        backend.stream(clip, StreamCall(tuple(range(mode.frames)), mode.interval, mode.frames, False))
    else:
        backend.infer(clip)
    backend.reset_stream()


def _paced_summary(report: dict) -> dict:
    return {'frame_period_ms': report['frame_period_ms'], 'fps': report['fps'],
            'end_to_end_p50_ms': report['end_to_end_latency']['p50_ms'],
            'end_to_end_p95_ms': report['end_to_end_latency']['p95_ms'],
            'step_p50_ms': report['chunk_latency']['p50_ms'], 'step_p95_ms': report['chunk_latency']['p95_ms'],
            'latency_frames': report['latency_frames'], 'frames_out': report['frames_out']}


def _speed(arch: str, config: StreamingConfig, calib: list[torch.Tensor], threads: int, work: str,
           log: Callable[[str], None]) -> dict:
    """Part 2 for one arch (see the module docstring)."""
    size = tuple(config.sizes[arch])
    variants = build_variants(arch, config.network, config.mac_budget, size, calib, log)
    folder = os.path.join(work, arch)
    os.makedirs(folder)
    clip = write_clip(moving_clip(config.frames, *size), os.path.join(folder, 'input.avi'))
    output = os.path.join(folder, 'output.avi')
    plan = {f'{engine} | {mode.label}': (engine, mode) for engine in config.engines
            for mode in _engine_modes(engine, config)}
    cache, torch_backend, backends = {}, TorchBackend(variants['pruned']), {}
    for name, (engine, mode) in plan.items():
        backends[name] = (torch_backend if ENGINES[engine][1] == 'torch' else
                          _graph_backend(engine, mode, variants, folder, threads, size, cache, log))
    macs = {}
    for engine, mode in plan.values():
        variant = 'dense' if ENGINES[engine][0] == 'dense' else 'pruned'  # INT8: the pruned network's shapes
        if (variant, mode) not in macs:
            macs[(variant, mode)] = macs_per_delivered_frame(
                variants[variant], *size, mode.interval, **{'lookahead' if mode.stateful else 'overlap': mode.extra})
    for name, (engine, mode) in plan.items():
        _warm(backends[name], mode, size)
    log(f'{arch}: {len(plan)} pipeline runs of {config.frames} frames of {size[1]}x{size[0]}, {config.rounds} '
        'interleaved rounds')
    reports = {name: [] for name in plan}

    def streamed(name: str) -> None:
        reports[name].append(_quiet(run_video_sr, clip, output, backends[name], progress=False,
                                    **plan[name][1].run_args()))

    time_interleaved({name: (lambda name=name: streamed(name)) for name in plan}, config.rounds, 0, log)
    rows = {}
    for name, (engine, mode) in plan.items():
        runs = reports[name]
        rows[name] = {'name': name, 'engine': engine, 'variant': ENGINES[engine][0], **mode.row(),
                      'macs_per_delivered_frame': macs[('dense' if ENGINES[engine][0] == 'dense' else 'pruned', mode)],
                      'fps_runs': [r['fps'] for r in runs], 'fps': statistics.median(r['fps'] for r in runs),
                      'model_ms_per_output_frame': statistics.median(r['model_ms_per_output_frame'] for r in runs),
                      'network_frames_per_output_frame': runs[0]['network_frames_per_output_frame'],
                      'latency_frames': runs[0]['latency_frames'], 'state_mib': runs[0]['state_mib'],
                      'paced': None}
        windowed = rows.get(f'{engine} | {Mode(False, *TARGET_MODE).label}')
        rows[name]['fps_vs_windowed_5_2'] = rows[name]['fps'] / windowed['fps'] if windowed else None
        log(f'  {name}: {rows[name]["fps"]:.2f} fps (runs {", ".join(f"{v:.2f}" for v in rows[name]["fps_runs"])})')
    periods, per_frame = {}, None
    for engine in config.full_grid:
        names = [n for n, (e, _) in plan.items() if e == engine]
        periods[engine] = config.pace_margin * max(1.0 / rows[n]['fps'] for n in names)
        log(f'{arch}: {engine} paced at {1000 * periods[engine]:.0f} ms per frame')
        for name in names:
            mode = plan[name][1]
            rows[name]['paced'] = _paced_summary(run_paced(clip, output, backends[name], periods[engine],
                                                           **mode.run_args()))
            log(f'  {name}: end-to-end p95 {rows[name]["paced"]["end_to_end_p95_ms"]:.0f} ms')
    if config.full_grid:
        engine = config.full_grid[0]
        name = f'{engine} | {Mode(True, *PER_FRAME).label}'
        period = config.pace_margin / rows[name]['fps']
        per_frame = {'engine': engine, **_paced_summary(run_paced(clip, output, backends[name], period,
                                                                  *PER_FRAME))}
        log(f'{arch}: per-frame mode at {1000 * period:.0f} ms per frame: end-to-end p95 '
            f'{per_frame["end_to_end_p95_ms"]:.0f} ms, step p50 {per_frame["step_p50_ms"]:.0f} ms')
    return {'arch': arch, 'lq_size': list(size), 'frames': config.frames,
            'mac_fraction': variants['mac_fraction'], 'pruned_widths': variants['widths'],
            'frame_period_ms': {e: 1000 * p for e, p in periods.items()}, 'rows': list(rows.values()),
            'per_frame': per_frame}


def _row(arch: dict, engine: str, mode: tuple[int, int], stateful: bool) -> dict | None:
    label = Mode(stateful, *mode).label
    return next((r for r in arch['rows'] if r['engine'] == engine and r['label'] == label), None)


def targets(result: dict) -> list[dict]:
    """The issue's targets, measured value against limit (``met`` None: not measured in this run)."""
    quality = {r['label']: r for r in result['quality']['rows']}
    win, st = Mode(False, *TARGET_MODE).label, Mode(True, *TARGET_MODE).label
    psnr_st, psnr_win = (float(quality[label]['psnr_vs_whole_db']) for label in (st, win))
    out = []
    for arch in result['speed']:
        for engine in RATIO_ENGINES:
            a, b = _row(arch, engine, TARGET_MODE, True), _row(arch, engine, TARGET_MODE, False)
            ratio = a['fps'] / b['fps'] if a and b else None
            out.append({'target': f'{st} >= {FPS_RATIO_TARGET}x the delivered FPS of {win}, PSNR vs whole sequence '
                        'no lower', 'arch': arch['arch'], 'engine': engine, 'measured': ratio,
                        'measured_text': '-' if ratio is None else
                        f'{ratio:.2f}x; PSNR vs whole {psnr_st:.2f} vs {psnr_win:.2f} dB',
                        'met': None if ratio is None else ratio >= FPS_RATIO_TARGET and psnr_st >= psnr_win})
        reference = _row(arch, REFERENCE, TARGET_MODE, False)
        best = max((r for r in arch['rows'] if r['variant'] == 'pruned int8' and r['label'] == st),
                   key=lambda r: r['fps'], default=None)
        ratio = best['fps'] / reference['fps'] if best and reference else None
        out.append({'target': f'compressed network, {st} on its best engine >= {DENSE_RATIO_TARGET:g}x dense FP32 on '
                    f'ONNX Runtime {win}' + ('' if arch['arch'] == 'basicvsr' else ' (asked for BasicVSR)'),
                    'arch': arch['arch'], 'engine': best['engine'] if best else '-', 'measured': ratio,
                    'measured_text': '-' if ratio is None else f'{ratio:.1f}x',
                    'met': None if ratio is None else ratio >= DENSE_RATIO_TARGET})
        p = arch['per_frame']
        limit = p['frame_period_ms'] + p['step_p50_ms'] if p else None
        out.append({'target': 'per-frame mode 1/0: end-to-end latency p95 <= one frame period + one step',
                    'arch': arch['arch'], 'engine': p['engine'] if p else '-',
                    'measured': p['end_to_end_p95_ms'] if p else None,
                    'measured_text': '-' if not p else
                    f'{p["end_to_end_p95_ms"]:.0f} ms <= {p["frame_period_ms"]:.0f} + {p["step_p50_ms"]:.0f} ms',
                    'met': None if not p else p['end_to_end_p95_ms'] <= limit})
    return out


def run(config: StreamingConfig, log: Callable[[str], None] | None = print) -> dict:
    """Measure both parts (see the module docstring); returns the JSON-ready result."""
    log = log or (lambda line: None)
    check(config)
    threads = config.threads
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    machine = machine_info(threads)  # its load average is the one before the run
    work = tempfile.mkdtemp(prefix='benchmark_streaming_')
    try:
        quality = _quality(config, work, log)
        calib = calibration_clips(config.footage, CALIB_FRAMES, config.calib_windows) if config.archs else []
        speed = [_speed(arch, config, calib, threads, work, log) for arch in config.archs]
    finally:
        shutil.rmtree(work, ignore_errors=True)
        torch.set_num_threads(old_threads)
    machine['load_average_after'] = load_average()
    result = {'command': config.command, 'machine': machine, 'config': asdict(config), 'quality': quality,
              'speed': speed}
    result['targets'] = targets(result)
    return result


def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return '-'
    return value if isinstance(value, str) else f'{value:.{digits}f}'


def _extra(row: dict) -> str:
    return '-' if row['interval'] is None else str(row.get('lookahead', row.get('overlap')))


def markdown(result: dict) -> str:
    """The result as a Markdown page: setup, the quality grid, the speed grid per arch, the targets."""
    c, q = result['config'], result['quality']
    clips = ', '.join(f'{x["clip"]} ({x["frames"]} frames, {x["lq_size"][1]}x{x["lq_size"][0]})' for x in q['clips'])
    lines = ['# Stateful streaming against windows\n', f'`{result["command"]}`. {machine_line(result["machine"])}\n',
             '## Quality\n',
             f'{q["network"]} on the validation clips of `{c["footage"]}`: {clips}. Every mode streams each clip '
             'through `run_video_sr` (torch, PNG frames in and out). PSNR vs GT: BasicSR\'s 8-bit PSNR, mean of '
             'frames, mean of clips; vs whole sequence: against `net(clip)` rounded as the pipeline rounds (one MSE '
             'over every frame); latency in frames: later frames each delivered frame waited for; network frames '
             'per delivered frame: backward branch / forward branch and tail; MACs: the call as traced (windowed: '
             'the forward on its window; stateful: the stateful graph) over the frames it delivers. A window longer '
             'than a clip holds the whole clip.\n',
             '| mode | interval | overlap / lookahead | PSNR vs GT (dB) | PSNR vs whole (dB) | latency frames '
             'p50 / p95 / max | network frames (backward / rest) | MMACs per delivered frame |',
             '|---|---|---|---|---|---|---|---|']
    for r in q['rows']:
        lat, net = r['latency_frames'], r['network_frames_per_output_frame']
        lines.append(f'| {r["mode"]} | {r["interval"] or "-"} | {_extra(r)} | {r["psnr_vs_gt_db"]:.3f} | '
                     f'{_fmt(r["psnr_vs_whole_db"])} | {lat["p50"]:g} / {lat["p95"]:g} / {lat["max"]:g} | '
                     f'{net["backward"]:.2f} / {net["forward_and_tail"]:.2f} | '
                     f'{r["macs_per_delivered_frame"] / 1e6:.1f} |')
    network = ', '.join(f'{k} {v}' for k, v in c['network'].items()) or 'official full-size configurations'
    lines += ['', '## Speed\n',
              f'Networks: {network}, random weights; pruned to {c["mac_budget"]:g} of the MACs, INT8 calibrated on '
              f'{c["calib_windows"]} footage windows. A moving clip of {c["frames"]} frames (MJPG video file) '
              'through `run_video_sr` (decode -> model -> encode, MJPG out); every (engine, mode) run interleaved '
              f'over {c["rounds"]} rounds after one untimed call each: FPS is the median delivered frames per second. '
              'Engines: `openvino-int8` = pruned INT8, `int8-trt` IR, float layers f32; `onnxruntime-int8` = '
              '`int8-ort` graph; `torch-pruned` = the pruned network in FP32 (torch runs INT8 only as fake '
              'quantization); `onnxruntime-dense` = dense FP32 (the reference). '
              f'Latency in ms: the full-grid engines stream each mode again from a source paced at one frame period '
              f'({c["pace_margin"]:g} x their slowest mode\'s time per delivered frame: every mode keeps up, all at '
              'one frame rate); `-`: not paced.\n']
    for arch in result['speed']:
        periods = ', '.join(f'{e} {v:.0f} ms' for e, v in arch['frame_period_ms'].items()) or 'none'
        lines += [f'### {arch["arch"]}, {arch["lq_size"][1]}x{arch["lq_size"][0]} LR\n',
                  f'Pruned to {100 * arch["mac_fraction"]:.1f} % of the MACs. Frame period of the paced runs: '
                  f'{periods}.\n',
                  '| engine | mode | interval | overlap / lookahead | GMACs per delivered frame | delivered FPS | '
                  'vs windowed 5/2 | end-to-end latency p50 / p95 (ms, paced) | latency frames p50 / p95 / max | '
                  'network frames (backward / rest) | state MiB |', '|---|---|---|---|---|---|---|---|---|---|---|']
        for r in arch['rows']:
            lat, net, p = r['latency_frames'], r['network_frames_per_output_frame'], r['paced']
            paced = f'{p["end_to_end_p50_ms"]:.0f} / {p["end_to_end_p95_ms"]:.0f}' if p else '-'
            lines.append(f'| {r["engine"]} | {r["mode"]} | {r["interval"]} | {_extra(r)} | '
                         f'{r["macs_per_delivered_frame"] / 1e9:.1f} | {r["fps"]:.3f} | '
                         f'{_fmt(r["fps_vs_windowed_5_2"])}x | {paced} | {lat["p50"]:g} / {lat["p95"]:g} / '
                         f'{lat["max"]:g} | {net["backward"]:.2f} / {net["forward_and_tail"]:.2f} | '
                         f'{r["state_mib"]:.1f} |')
        p = arch['per_frame']
        if p:
            lines.append(f'\nPer-frame mode 1/0 on {p["engine"]} at its own rate ({c["pace_margin"]:g} x its time per '
                         f'frame): frame period {p["frame_period_ms"]:.0f} ms, {p["fps"]:.2f} FPS delivered, '
                         f'end-to-end p50 / p95 {p["end_to_end_p50_ms"]:.0f} / {p["end_to_end_p95_ms"]:.0f} ms, '
                         f'step (model call) p50 / p95 {p["step_p50_ms"]:.0f} / {p["step_p95_ms"]:.0f} ms.')
        lines.append('')
    lines += ['## Targets\n', '| arch | engine | target | measured | met |', '|---|---|---|---|---|']
    lines += [f'| {t["arch"]} | {t["engine"]} | {t["target"]} | {t["measured_text"]} | '
              f'{"not measured" if t["met"] is None else "yes" if t["met"] else "no"} |' for t in result['targets']]
    return '\n'.join(lines) + '\n'


def plot(result: dict, path: str) -> None:
    """PSNR against latency (quality part) and delivered FPS against paced latency (speed part), a line per mode."""
    import matplotlib

    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    from vsrcompress.atomic_files import write_figure

    colors = {'windowed': 'tab:orange', 'stateful': 'tab:blue'}
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 6))
    rows = result['quality']['rows']
    for mode, color in colors.items():
        points = sorted((r['latency_frames']['max'], r['psnr_vs_gt_db'], r['label'].split()[1])
                        for r in rows if r['mode'] == mode)
        left.plot([p[0] for p in points], [p[1] for p in points], 'o-', color=color, label=mode)
        for x, y, text in points:
            left.annotate(text, (x, y), textcoords='offset points', xytext=(4, 4), fontsize=8)
    whole = next(r for r in rows if r['mode'] == 'whole sequence')
    left.axhline(whole['psnr_vs_gt_db'], color='gray', linestyle='--', label='whole sequence in one call')
    left.ticklabel_format(axis='y', useOffset=False)
    left.set_xlabel('latency (later frames a delivered frame waits for, max)')
    left.set_ylabel('PSNR vs GT (dB)')
    left.set_title(f'Quality: {result["quality"]["network"]}', fontsize=9)
    left.legend(fontsize=8)
    markers = ['o', 's', '^', 'D']
    for k, arch in enumerate(result['speed']):
        for engine in result['config']['full_grid']:
            for mode, color in colors.items():
                points = sorted((r['paced']['end_to_end_p95_ms'], r['fps'], r['label'].split()[1])
                                for r in arch['rows'] if r['engine'] == engine and r['mode'] == mode and r['paced'])
                right.plot([p[0] for p in points], [p[1] for p in points], '-', marker=markers[k % len(markers)],
                           color=color, label=f'{arch["arch"]} {engine} {mode}')
                for x, y, text in points:
                    right.annotate(text, (x, y), textcoords='offset points', xytext=(4, 4), fontsize=8)
    right.set_xlabel('end-to-end latency p95 (ms), source paced at one frame period')
    right.set_ylabel('delivered FPS (unpaced, median of rounds)')
    right.set_title('Speed: full-size networks through the pipeline (labels: interval/overlap or lookahead)',
                    fontsize=9)
    right.legend(fontsize=8)
    fig.suptitle(f'{result["machine"]["cpu_model"]}, {result["machine"]["threads"]} threads', fontsize=10)
    fig.tight_layout()
    write_figure(path, fig)
