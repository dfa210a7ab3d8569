"""What a model costs to deploy: parameters, MACs per frame, checkpoint size, latency and working memory per frame.

Each model is a network in memory or a checkpoint file (dense, pruned, INT8 ``vsrcompress-int8/1`` or official
BasicSR), or the name of an official configuration (``OFFICIAL_MODELS``, random weights: speed and size do not
depend on their values). All models are loaded and checked before anything is measured.

- Params and MACs per frame: torch-pruning's counter on a meta copy at the input size, in steady state
  (``vsrcompress.pruning.complexity.count_complexity``). An INT8 network is counted as the float network it
  dequantizes to (same shapes).
- Latency, as each model deploys, on one window of ``frames`` frames through the inference backends (uint8 frames
  in and out, as the streaming pipeline calls them): ONNX Runtime CPU on a graph exported at the input size (or
  with dynamic height and width: ``dynamic_graph``), ``fp32``, or ``int8-ort`` for INT8 networks (which needs
  their measured conv output ranges); PyTorch CPU FP32; and where CUDA is available PyTorch CUDA FP32 (PyTorch
  for float networks only: it runs INT8 networks as fake quantization, float math that deploys nowhere). All
  (model, backend) pairs run round-robin, the order reversed every other round, after ``warmup`` untimed rounds,
  so a noisy machine disturbs them alike; the median window time over ``repeats`` rounds, divided by ``frames``,
  is the time per frame.
- Peak memory (CPU backends): the working memory of one forward, measured in a fresh process (multiprocessing
  ``spawn``) per model and backend, so that neither loading nor other models' allocator caches count. The child
  builds the backend and the input, resets its RSS high-water mark (Linux ``/proc/self/clear_refs``, which plain
  ``ru_maxrss`` cannot do), runs one forward and reports the high-water mark minus the RSS before the forward.
  That includes the one-time cost of a process's first forward (library code paged in, thread pools, ONNX
  Runtime's arena growing): about 20 MiB here for either backend (a tiny network's first forward against its third).

A measurement that cannot be made for one model (an INT8 checkpoint without ``conv_output_range``, CUDA absent)
is recorded as unavailable with the reason; the other measurements go on.
"""
import copy
import os
import pickle
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from pytorch_quantization.nn import QuantConv2d, TensorQuantizer
from torch import nn

from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet, IconVSRNet
from vsrcompress.bench.machine import load_average, machine_info
from vsrcompress.bench.peak_memory import forward_peak, peak_memory_unavailable, run_in_children
from vsrcompress.bench.timing import time_interleaved
from vsrcompress.checkpoint import load_checkpoint, load_network
from vsrcompress.export import DYNAMIC_TRACE_SIZE, MIN_SIZE, export_onnx
from vsrcompress.export.openvino_export import export_openvino
from vsrcompress.export.openvino_runtime import bf16_supported
from vsrcompress.inference.backends import Backend, OnnxRuntimeBackend, TorchBackend
from vsrcompress.inference.openvino_backend import OpenVINOBackend
from vsrcompress.pruning.complexity import clip_lengths, count_complexity
from vsrcompress.quantization.quantizers import is_quantized

OFFICIAL_MODELS = {  # the published full-size configurations (BasicSR options for REDS)
    'basicvsr': (BasicVSRNet, {'num_feat': 64, 'num_block': 30, 'scale': 4}),
    'iconvsr': (IconVSRNet, {'num_feat': 64, 'num_block': 30, 'keyframe_stride': 5, 'temporal_padding': 2,
                             'scale': 4}),
}
# <engine>-<device>[-<precision>]: how a model is timed (engines: vsrcompress.inference.BACKENDS)
LATENCY_BACKENDS = ('onnxruntime-cpu', 'openvino-cpu-f32', 'openvino-cpu-bf16', 'torch-cpu', 'torch-cuda')
OPENVINO_BACKENDS = {'openvino-cpu-f32': 'f32', 'openvino-cpu-bf16': 'bf16'}  # backend -> inference precision
FLOAT_ONLY = 'PyTorch runs INT8 networks as fake quantization (float math), which deploys nowhere'


@dataclass
class ModelEntry:
    """One model to measure: a network in memory (``net``) or a checkpoint file (``checkpoint``), not both.

    Attributes:
        name: Label in the table and the key for the model's PSNR.
        net: A BasicVSRNet/IconVSRNet, dense, pruned or quantized (left unchanged).
        checkpoint: A checkpoint file that ``load_network`` reads.
        network_opt: network_g options for a checkpoint without an ``arch`` entry (official BasicSR files).
        param_key: State dict of a float checkpoint to load (``params`` or ``params_ema``).
        conv_output_range: A quantized ``net``'s measured conv output ranges, for the ``int8-ort`` graph
            (checkpoints bring their own).
        psnr_db: The model's PSNR, if known; plotted against MACs and latency.
        description: Where the model comes from, for the table (default: the checkpoint path or 'in memory').
    """
    name: str
    net: nn.Module | None = None
    checkpoint: str | None = None
    network_opt: Mapping | None = None
    param_key: str = 'params'
    conv_output_range: Mapping[str, torch.Tensor] | None = None
    psnr_db: float | None = None
    description: str | None = None


@dataclass
class _Prepared:
    """A loaded model and what its measurement has gathered so far."""
    entry: ModelEntry
    net: nn.Module
    int8: bool
    conv_output_range: Mapping[str, torch.Tensor] | None
    checkpoint_bytes: int | None
    onnx_path: str | None = None
    onnx_precision: str | None = None
    openvino_path: str | None = None
    latency_notes: dict[str, str] = field(default_factory=dict)
    memory_notes: dict[str, str] = field(default_factory=dict)
    peak_memory_mib: dict[str, float] = field(default_factory=dict)


def official_network(name: str) -> nn.Module:
    """The official full-size configuration ``name`` (a key of ``OFFICIAL_MODELS``) with random weights (seed 0)."""
    if name not in OFFICIAL_MODELS:
        raise ValueError(f'model {name!r} is not an official configuration; names: {sorted(OFFICIAL_MODELS)}')
    cls, options = OFFICIAL_MODELS[name]
    with torch.random.fork_rng(devices=[]):  # deterministic weights without touching the caller's RNG
        torch.manual_seed(0)
        return cls(**options).eval()


def model_entry(spec: str, network_opt: Mapping | None = None, param_key: str = 'params',
                psnr_db: float | None = None) -> ModelEntry:
    """A ``ModelEntry`` for a command-line model: an official name (``OFFICIAL_MODELS``) or a checkpoint file.

    Args:
        spec: Model name or checkpoint path; also the entry's name.
        network_opt: Network options for official BasicSR checkpoints; ignored for checkpoints that carry an
            ``arch`` entry (vsrcompress ones), so one set of options serves a mixed list.
        param_key: State dict of a float checkpoint to load.
        psnr_db: The model's PSNR, if known.
    """
    if spec in OFFICIAL_MODELS:
        cls, options = OFFICIAL_MODELS[spec]
        return ModelEntry(spec, net=official_network(spec), psnr_db=psnr_db,
                          description=f'{cls.__name__} {options["num_feat"]} ch, {options["num_block"]} blocks, '
                                      'random weights')
    if not os.path.isfile(spec):
        raise ValueError(f'model {spec!r} is neither a checkpoint file nor an official configuration; '
                         f'names: {sorted(OFFICIAL_MODELS)}')
    if network_opt and load_checkpoint(spec).get('arch'):
        network_opt = None
    return ModelEntry(spec, checkpoint=spec, network_opt=network_opt, param_key=param_key, psnr_db=psnr_db)


def _float_shapes(net: nn.Module) -> nn.Module:
    """``net`` itself if float; for a quantized network, a meta copy with the float modules it dequantizes to."""
    if not is_quantized(net):
        return net
    counted = copy.deepcopy(net).to('meta')
    replaced = []
    for name, module in list(counted.named_modules()):
        if any(name.startswith(prefix + '.') for prefix in replaced):
            continue  # a quantizer inside a conv that is gone already
        if isinstance(module, QuantConv2d):
            replacement = nn.Conv2d(module.in_channels, module.out_channels, module.kernel_size, module.stride,
                                    module.padding, module.dilation, module.groups, bias=module.bias is not None,
                                    padding_mode=module.padding_mode, device='meta')
            replaced.append(name)
        elif isinstance(module, TensorQuantizer):
            replacement = nn.Identity()
        else:
            continue
        parent, _, child = name.rpartition('.')
        setattr(counted.get_submodule(parent) if parent else counted, child, replacement)
    return counted


def count_model_complexity(net: nn.Module, width: int, height: int) -> dict[str, float]:
    """``{'params', 'macs_per_frame'}`` of ``net`` (INT8: its float shapes) at an LR input of ``width`` x ``height``."""
    counted = count_complexity(_float_shapes(net), (height, width))
    return {'params': counted['params'], 'macs_per_frame': counted['macs_per_frame']}


def _check_request(models: Sequence[ModelEntry], width: int, height: int, frames: int, repeats: int, warmup: int,
                   threads: int, backends: Sequence[str]) -> None:
    for key, value in (('width', width), ('height', height)):
        if not isinstance(value, int) or value < MIN_SIZE:
            raise ValueError(f'input size: {key} must be an integer >= {MIN_SIZE} (SpyNet needs frames larger than '
                             f'32 px), got {value!r}')
    if not isinstance(frames, int) or frames < 2:
        raise ValueError(f'frames: need a window of at least 2 frames, got {frames!r}')
    if repeats < 1 or warmup < 0 or threads < 1:
        raise ValueError(f'repeats >= 1, warmup >= 0 and threads >= 1 required; got repeats {repeats}, warmup '
                         f'{warmup}, threads {threads}')
    unknown = sorted(set(backends) - set(LATENCY_BACKENDS))
    if unknown or not backends:
        raise ValueError(f'backends: {unknown or "none given"} not supported; allowed: {list(LATENCY_BACKENDS)}')
    if not models:
        raise ValueError('models: nothing to measure')
    names = [m.name for m in models]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f'models: names must be unique; repeated: {duplicates}')
    for m in models:
        if (m.net is None) == (m.checkpoint is None):
            raise ValueError(f'model {m.name!r}: give either a network or a checkpoint file, not '
                             f'{"both" if m.net is not None else "neither"}')
        if m.checkpoint is not None and not os.path.isfile(m.checkpoint):
            raise FileNotFoundError(f'model {m.name!r}: checkpoint {m.checkpoint} does not exist')


def _prepare(entry: ModelEntry, frames: int) -> _Prepared:
    """Load the model and check that it takes windows of ``frames`` frames."""
    if entry.checkpoint is not None:
        loaded = load_network(entry.checkpoint, entry.network_opt, entry.param_key)
        prepared = _Prepared(entry, loaded.net.eval(), loaded.int8, loaded.conv_output_range,
                             os.path.getsize(entry.checkpoint))
    else:
        prepared = _Prepared(entry, entry.net, is_quantized(entry.net), entry.conv_output_range, None)
    min_frames = clip_lengths(prepared.net)[0]
    if frames < min_frames:
        raise ValueError(f'frames: model {entry.name!r} ({type(prepared.net).__name__}) needs windows of at least '
                         f'{min_frames} frames, got {frames}')
    return prepared


def _export(model: _Prepared, folder: str, index: int, frames: int, width: int, height: int, dynamic: bool) -> None:
    """The model's deployment graph for ONNX Runtime CPU, or the reason there is none."""
    model.onnx_precision = 'int8-ort' if model.int8 else 'fp32'
    if model.int8 and not model.conv_output_range:
        model.latency_notes['onnxruntime-cpu'] = (
            'int8-ort needs the measured conv output ranges (conv_output_range), which this INT8 model lacks; '
            'store them in the INT8 checkpoint (vsrcompress.quantization.calibrate_output_ranges)')
        return
    path = os.path.join(folder, f'model_{index}.onnx')
    try:
        size = (min(height, DYNAMIC_TRACE_SIZE), min(width, DYNAMIC_TRACE_SIZE)) if dynamic else (height, width)
        export_onnx(model.net, path, frames, *size, dynamic=dynamic, precision=model.onnx_precision,
                    conv_output_range=model.conv_output_range if model.int8 else None)
    except ValueError as err:  # incomplete ranges: the reason belongs in the table, the other models go on
        if not model.int8:
            raise
        model.latency_notes['onnxruntime-cpu'] = str(err)
        return
    model.onnx_path = path
    model.openvino_path = path[:-5] + '.xml'
    ov_graph = path
    if model.int8:  # OpenVINO runs pytorch-quantization's own placement (the fake quantization itself)
        ov_graph = path[:-5] + '_int8_trt.onnx'
        export_onnx(model.net, ov_graph, frames, *size, dynamic=dynamic, precision='int8-trt')
    export_openvino(ov_graph, model.openvino_path, 'f32')  # the precision is chosen per backend when compiled


def _input_clip(frames: int, height: int, width: int) -> np.ndarray:
    """The window every backend runs: RGB uint8 (frames, height, width, 3), as the streaming pipeline feeds it."""
    return np.random.default_rng(0).integers(0, 256, (frames, height, width, 3), dtype=np.uint8)


def _backend_forward(backend: str, payload: str | bytes, clip_shape: tuple[int, int, int], threads: int
                     ) -> Callable[[], object]:
    """In the measuring child: the backend and its input built, one forward left to run."""
    torch.set_num_threads(threads)
    if backend == 'onnxruntime-cpu':
        runner = OnnxRuntimeBackend(payload, 'cpu', threads)
    else:
        runner = TorchBackend(pickle.loads(payload), 'cpu')
    clip = _input_clip(*clip_shape)
    return lambda: runner.infer(clip)


def _forward_peaks(payloads: Mapping[str, str | bytes], clip_shape: tuple[int, int, int], threads: int
                   ) -> dict[str, tuple[float | None, str | None]]:
    """``{backend: (working memory of one forward in MiB, None) or (None, why not)}``.

    One child per backend, all at once: each measures only its own process, so they may overlap in time.
    """
    reason = peak_memory_unavailable()
    if reason:
        return {b: (None, reason) for b in payloads}
    results = run_in_children({b: (forward_peak, (_backend_forward, b, p, clip_shape, threads))
                               for b, p in payloads.items()})
    return {b: (None, why) if result is None else (result['forward_peak_mib'], None)
            for b, (result, why) in results.items()}


def _runners(model: _Prepared, backends: Sequence[str], threads: int, cpu_net: nn.Module | None,
             clip_shape: tuple[int, int, int]) -> dict[str, Backend]:
    """The backends that can run this model; the reason goes to ``latency_notes`` for the others."""
    runners = {}
    for backend in backends:
        if backend == 'onnxruntime-cpu':
            if model.onnx_path:
                runners[backend] = OnnxRuntimeBackend(model.onnx_path, 'cpu', threads)
        elif backend in OPENVINO_BACKENDS:
            precision = OPENVINO_BACKENDS[backend]
            if not model.openvino_path:
                model.latency_notes[backend] = model.latency_notes.get('onnxruntime-cpu', 'no ONNX graph')
            elif precision == 'bf16' and not bf16_supported():
                model.latency_notes[backend] = 'this CPU has no BF16 support (AVX512-BF16 or AMX)'
            else:
                runners[backend] = OpenVINOBackend(model.openvino_path, precision, threads,
                                                   input_shape=(1, clip_shape[0], 3, *clip_shape[1:]))
        elif model.int8:
            model.latency_notes[backend] = FLOAT_ONLY
        elif backend == 'torch-cpu':
            runners[backend] = TorchBackend(cpu_net, 'cpu')
        elif torch.cuda.is_available():
            runners[backend] = TorchBackend(copy.deepcopy(cpu_net), 'cuda')
        else:
            model.latency_notes[backend] = 'CUDA is not available on this machine'
    return runners


def measure_complexity(models: Sequence[ModelEntry], width: int, height: int, frames: int = 5, repeats: int = 3,
                       warmup: int = 1, threads: int | None = None, backends: Sequence[str] = LATENCY_BACKENDS,
                       memory: bool = True, dynamic_graph: bool = False, log: Callable[[str], None] | None = print
                       ) -> list[dict]:
    """Measure every model (see the module docstring) and return one JSON-ready row per model, in order.

    Args:
        models: The models; names unique. Networks passed in are left unchanged.
        width: LR input width.
        height: LR input height.
        frames: Window length every backend runs (IconVSR: at least 2 * temporal_padding + 1).
        repeats: Timed rounds over all (model, backend) pairs; the median is reported.
        warmup: Untimed rounds first.
        threads: Intra-op threads of PyTorch and ONNX Runtime; default: every CPU.
        backends: Which of ``LATENCY_BACKENDS`` to time; ``torch-cuda`` is skipped with a note where CUDA is absent.
        memory: Measure the peak working memory of one forward per CPU backend (one ``spawn`` child process each:
            the caller's main module must be safe to import, i.e. guarded by ``if __name__ == '__main__'``).
        dynamic_graph: Export ONNX graphs with dynamic height and width, traced at 64x64, instead of at the input
            size: tracing runs the PyTorch network once, which at full size on a CPU costs as much as a timed run.
            ONNX Runtime ran such a graph 2-3 % slower than the fixed-size one here (BasicVSR 64 ch, 10 blocks).
        log: Progress lines (None: quiet).

    Returns:
        Rows with ``name``, ``source``, ``arch``, ``int8``, ``params``, ``macs_per_frame``, ``checkpoint_bytes``,
        ``onnx_precision``, ``latency_ms_per_frame`` and ``window_seconds`` per backend (None where unavailable,
        the reason in ``latency_notes``), ``peak_memory_mib`` per CPU backend (``memory_notes``), ``psnr_db`` and
        ``setup`` (input size, frames, rounds, threads, versions, load average).
    """
    log = log or (lambda line: None)
    threads = threads or os.cpu_count() or 1
    _check_request(models, width, height, frames, repeats, warmup, threads, backends)
    prepared = [_prepare(entry, frames) for entry in models]
    setup = {'width': width, 'height': height, 'frames': frames, 'repeats': repeats, 'warmup': warmup,
             'threads': threads, 'backends': list(backends), 'memory': memory, 'dynamic_graph': dynamic_graph,
             'machine': machine_info(threads)}
    counts = [count_model_complexity(m.net, width, height) for m in prepared]
    clip = _input_clip(frames, height, width)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with tempfile.TemporaryDirectory(prefix='model_complexity_') as folder:
            cpu_nets = {}
            for index, model in enumerate(prepared):
                if {'onnxruntime-cpu', *OPENVINO_BACKENDS} & set(backends):
                    started = time.perf_counter()
                    _export(model, folder, index, frames, width, height, dynamic_graph)
                    log(f'{model.entry.name}: ONNX {model.onnx_precision} graph '
                        + (f'exported in {time.perf_counter() - started:.1f} s' if model.onnx_path
                           else 'unavailable: ' + model.latency_notes['onnxruntime-cpu']))
                if not model.int8 and {'torch-cpu', 'torch-cuda'} & set(backends):
                    cpu_nets[index] = copy.deepcopy(model.net).cpu().eval()
            if memory:
                for index, model in enumerate(prepared):
                    _measure_memory(model, cpu_nets.get(index), backends, clip.shape[:3], threads, log)
            timers = [(index, backend, runner) for index, model in enumerate(prepared)
                      for backend, runner in _runners(model, backends, threads, cpu_nets.get(index),
                                                                  clip.shape[:3]).items()]
            keys = {f'{prepared[index].entry.name} {backend}': (index, backend) for index, backend, _ in timers}
            runs = {name: (lambda r=r: r.infer(clip)) for name, (_, _, r) in zip(keys, timers)}
            seconds = {keys[name]: s for name, s in time_interleaved(runs, repeats, warmup, log).items()}
    finally:
        torch.set_num_threads(old_threads)
    setup['machine']['load_average_after'] = load_average()
    return [_row(model, count, {b: s for (i, b), s in seconds.items() if i == index}, backends, frames, setup)
            for index, (model, count) in enumerate(zip(prepared, counts))]


def _measure_memory(model: _Prepared, cpu_net: nn.Module | None, backends: Sequence[str],
                    clip_shape: tuple[int, int, int], threads: int, log: Callable[[str], None]) -> None:
    payloads = {}
    if 'onnxruntime-cpu' in backends and model.onnx_path:
        payloads['onnxruntime-cpu'] = model.onnx_path
    if 'torch-cpu' in backends and cpu_net is not None:
        payloads['torch-cpu'] = pickle.dumps(cpu_net)  # plain bytes: the child's copy is its own memory
    for backend, (peak, reason) in _forward_peaks(payloads, clip_shape, threads).items():
        if peak is None:
            model.memory_notes[backend] = reason
        else:
            model.peak_memory_mib[backend] = peak
        log(f'{model.entry.name}: {backend} forward peak memory '
            + (f'{peak:.0f} MiB' if peak is not None else f'unavailable: {reason}'))


def _row(model: _Prepared, count: dict, seconds: dict[str, list[float]], backends: Sequence[str], frames: int,
         setup: dict) -> dict:
    entry = model.entry
    return {
        'name': entry.name,
        'source': entry.description or entry.checkpoint or 'in memory',
        'arch': type(model.net).__name__,
        'int8': model.int8,
        'params': int(count['params']),
        'macs_per_frame': float(count['macs_per_frame']),
        'checkpoint_bytes': model.checkpoint_bytes,
        'onnx_precision': model.onnx_precision if model.onnx_path else None,
        'latency_ms_per_frame': {b: 1000 * statistics.median(seconds[b]) / frames if b in seconds else None
                                 for b in backends},
        'window_seconds': {b: seconds.get(b, []) for b in backends},
        'latency_notes': dict(model.latency_notes),
        'peak_memory_mib': dict(model.peak_memory_mib),
        'memory_notes': dict(model.memory_notes),
        'psnr_db': entry.psnr_db,
        'setup': setup,
    }
