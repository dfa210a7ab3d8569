"""Compile an OpenVINO IR for the CPU with an explicit inference precision, and say what the plugin made of it.

OpenVINO's CPU plugin picks BF16 by itself on CPUs that have it (AVX512-BF16 or AMX), which changes the output
(about 4e-3 max abs difference on a random BasicVSR); here the precision is always passed explicitly:

- ``f32``: every float layer in FP32.
- ``bf16``: float layers in BF16 (weights and activations rounded to 8 mantissa bits, FP32 accumulation); refused
  on a CPU whose plugin does not list BF16 among its optimization capabilities.

INT8 graphs run their quantized convolutions as u8/i8 kernels either way; the precision applies to the rest.
"""
import os

INFERENCE_PRECISIONS = ('f32', 'bf16')
# latency: one request, every thread on it; throughput: several requests in parallel streams (several cameras)
PERFORMANCE_MODES = ('latency', 'throughput')


def cpu_capabilities() -> list[str]:
    """The CPU plugin's optimization capabilities (``FP32``, ``BF16``, ``INT8``, ...)."""
    import openvino as ov

    return list(ov.Core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES'))


def bf16_supported() -> bool:
    """Whether OpenVINO's CPU plugin runs BF16 natively on this CPU."""
    return 'BF16' in cpu_capabilities()


def check_inference_precision(precision: str, require_support: bool = True) -> None:
    """Raise a clear ValueError for an unknown precision, or for ``bf16`` on a CPU without BF16 support."""
    if precision not in INFERENCE_PRECISIONS:
        raise ValueError(f'inference precision: {precision!r} is not supported by the OpenVINO backend; allowed: '
                         f'{list(INFERENCE_PRECISIONS)}')
    if require_support and precision == 'bf16' and not bf16_supported():
        from vsrcompress.bench.machine import cpu_flags, cpu_model

        raise ValueError(f'inference precision: bf16 needs a CPU with AVX512-BF16 or AMX; this one ({cpu_model()}, '
                         f'flags {cpu_flags()}) has OpenVINO capabilities {cpu_capabilities()}. Use f32.')


def compile_openvino(model, precision: str, threads: int = 0, mode: str = 'latency', streams: int | None = None,
                     input_shape: tuple[int, ...] | dict | None = None, profile: bool = False):
    """Compile an IR path or ``ov.Model`` for the CPU in ``precision``; returns an ``ov.CompiledModel``.

    Args:
        model: An ``.xml`` path or an ``openvino.Model``.
        precision: ``f32`` or ``bf16`` (checked against the CPU).
        threads: CPU threads for inference (0: OpenVINO's default, all cores).
        mode: ``latency`` (one request at a time) or ``throughput`` (several requests in parallel streams).
        streams: Throughput mode: number of parallel streams (default: OpenVINO's choice for the CPU).
        input_shape: Fix a dynamic graph's input to this shape before compiling (static shapes compile to faster
            kernels than dynamic ones); a dict of shapes by input name for several inputs.
        profile: Count time per layer (``PERF_COUNT``; read with ``time_by_layer_type``). Off for timing runs.
    """
    import openvino as ov

    check_inference_precision(precision)
    if mode not in PERFORMANCE_MODES:
        raise ValueError(f'mode: {mode!r} is not supported; allowed: {list(PERFORMANCE_MODES)}')
    if isinstance(model, str) and not os.path.isfile(model):
        raise FileNotFoundError(f'openvino: {model} does not exist.')
    if input_shape is not None:
        model = ov.Core().read_model(model) if isinstance(model, str) else model.clone()
        model.reshape({k: list(v) for k, v in input_shape.items()} if isinstance(input_shape, dict) else
                      list(input_shape))
    config = {'INFERENCE_PRECISION_HINT': precision, 'PERFORMANCE_HINT': mode.upper()}
    if threads:
        config['INFERENCE_NUM_THREADS'] = int(threads)
    if mode == 'throughput' and streams:
        config['NUM_STREAMS'] = int(streams)
    if profile:
        config['PERF_COUNT'] = True
    return ov.Core().compile_model(model, 'CPU', config)


def runtime_kernel_summary(compiled) -> dict:
    """Convolutions of the compiled model by the precision the plugin runs them in, e.g. ``{'u8': 89, 'f32': 4}``.

    Also the compiled model's inference precision and number of streams, as the plugin reports them.
    """
    convs: dict[str, int] = {}
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if 'layerType' in info and info['layerType'].astype(str) in ('Convolution', 'DeformableConvolution'):
            precision = info['runtimePrecision'].astype(str) if 'runtimePrecision' in info else 'unknown'
            convs[precision] = convs.get(precision, 0) + 1
    return {'convolutions_by_precision': dict(sorted(convs.items())),
            'inference_precision': compiled.get_property('INFERENCE_PRECISION_HINT').get_type_name(),
            'streams': int(compiled.get_property('NUM_STREAMS'))}


def time_by_layer_type(model, precision: str, lq, threads: int = 0) -> list[dict]:
    """Where one inference of ``lq`` spends its time, by layer type and kernel, largest first.

    Compiled separately with per-layer counters (they cost a little time), run once to warm up and once counted.
    Rows: ``layer_type`` (e.g. ``Convolution``), ``kernel`` (the plugin's implementation, e.g. ``brgconv_avx512_I8``:
    it names the instruction set and the precision), ``layers``, ``seconds`` and ``share`` of the counted total.
    """
    compiled = compile_openvino(model, precision, threads, input_shape=tuple(lq.shape), profile=True)
    request = compiled.create_infer_request()
    request.infer([lq])
    request.infer([lq])
    rows: dict[tuple[str, str], dict] = {}
    for layer in request.profiling_info:
        row = rows.setdefault((layer.node_type, layer.exec_type), {'layer_type': layer.node_type,
                                                                  'kernel': layer.exec_type, 'layers': 0,
                                                                  'seconds': 0.0})
        row['layers'] += 1
        row['seconds'] += layer.real_time.total_seconds()
    total = sum(r['seconds'] for r in rows.values()) or 1.0
    for row in rows.values():
        row['share'] = row['seconds'] / total
    return sorted(rows.values(), key=lambda r: -r['seconds'])
