"""Run an exported graph in an engine (ONNX Runtime here, OpenVINO in ``openvino_check``) on the same clip as PyTorch
and measure how closely they agree.

FP32/FP16 graphs are compared with the float network (a quantized network runs with its quantizers bypassed);
INT8 graphs with the fake-quantized network, which is what their Q/DQ nodes express. A stateful graph is run for
``STATEFUL_CHECK_CALLS`` consecutive calls of one stream, the engine and PyTorch each carrying its own state, so an
error that the carried state accumulates shows as growth from call to call (``check_error_growth``).
"""
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from vsrcompress.export.int8_network import quantizers_bypassed
from vsrcompress.export.onnx_export import INPUT_NAME, INT8_PRECISIONS, OnnxGraphSpec, read_graph_spec
from vsrcompress.export.stateful_graph import StreamContract, stateful_forward
from vsrcompress.streaming.state import STATE_NAMES
from vsrcompress.metrics import unit_range_psnr
from vsrcompress.quantization.quantizers import is_quantized

DEFAULT_FP32_ATOL = 1e-3  # on outputs in [0, 1]: a quarter of an 8-bit gray level
# INT8 graph vs the fake-quantized network. Q/DQ on conv inputs and weights (int8-trt) is the fake quantization
# itself (tiny BasicVSR in tests: 75-80 dB, rounding-tie and float-order differences); int8-ort also quantizes conv
# outputs and residual sums, which the fake-quantized network keeps float (tests: 48-58 dB; measured numbers in
# docs/deploy.md). 40 dB = RMS error of a quarter of an 8-bit gray level.
DEFAULT_INT8_MIN_PSNR = 40.0
STATEFUL_CHECK_CALLS = 4
# The last call of a stateful check may be this much worse than the first (max abs error ratio, PSNR drop in dB):
# a state error that compounds grows much faster; float noise between calls stays well inside.
MAX_ERROR_GROWTH, MAX_PSNR_DROP_DB = 3.0, 6.0


class OnnxMismatchError(RuntimeError):
    """An FP32 (INT8) graph whose ONNX Runtime output differs from PyTorch by more than the tolerance (bound)."""


@dataclass(frozen=True)
class OnnxMatch:
    """PyTorch vs an engine on one clip size: worst absolute difference and PSNR (data range 1).

    Stateful graphs: over every call of the check (the worst call), with ``calls`` holding each call's
    ``max_abs_error`` and ``psnr_db`` in order.
    """
    height: int
    width: int
    max_abs_error: float
    psnr_db: float
    torch_seconds: float
    engine_seconds: float
    calls: tuple[dict, ...] | None = None


def check_sizes(height: int, width: int, dynamic: bool) -> list[tuple[int, int]]:
    """Sizes to compare at: the export size, plus another size for dynamic graphs (not a multiple of
    SpyNet's 32; a multiple of 4 when the export size is, as stateful IconVSR graphs need)."""
    return [(height, width), (height + 8, width + 12)] if dynamic else [(height, width)]


def spec_check_sizes(spec: OnnxGraphSpec, height: int, width: int) -> list[tuple[int, int]]:
    """``check_sizes`` of a written graph: a fixed-size graph is checked at its own size."""
    return check_sizes(spec.height or height, spec.width or width, spec.dynamic)


def crop_check_clips(windows: Sequence[dict], sizes: list[tuple[int, int]]) -> list[torch.Tensor] | None:
    """Footage windows (``{'lq': tensor}``) cropped to ``sizes``, reused in turn; None if a frame is too small."""
    clips = []
    for (h, w), window in zip(sizes, list(windows) * len(sizes)):
        lq = window['lq']
        if lq.shape[-2] < h or lq.shape[-1] < w:
            return None
        clips.append(lq[..., :h, :w].contiguous())
    return clips


Runner = Callable[[dict[str, np.ndarray]], Sequence[np.ndarray]]


def compare_runner_with_torch(run: Runner, spec: OnnxGraphSpec, net: nn.Module,
                              sizes: list[tuple[int, int]], source: str, seed: int = 0,
                              clips: Sequence[torch.Tensor] | None = None) -> list[OnnxMatch]:
    """Run ``net`` (CPU) and ``run`` (an engine: float32 inputs by name -> its outputs in order) on the same clips.

    Args:
        run: One call of the exported graph.
        spec: The graph's spec; INT8 graphs are compared with the fake-quantized network, float graphs of a
            quantized network with its quantizers bypassed.
        net: The network the graph was exported from.
        sizes: (height, width) of the random clips.
        source: The graph's file, for error messages.
        seed: Seed of the random clips.
        clips: Inputs (1, frames, 3, h, w) in [0, 1] to use instead of random clips, e.g. calibration clips:
            INT8 ranges are calibrated on real footage, and uniform noise drives activations past them. A stateful
            graph's check streams through them joined in time (and repeated to the length of its calls).
    """
    contract = spec.contract
    length = spec.frames if contract is None else (STATEFUL_CHECK_CALLS - 1) * contract.interval + contract.frames
    generator = torch.Generator().manual_seed(seed)
    if clips is None:
        clips = [torch.rand(1, length, 3, height, width, generator=generator) for height, width in sizes]
    elif contract is not None:
        joined = torch.cat(list(clips), dim=1)
        clips = [torch.cat([joined] * -(-length // joined.shape[1]), dim=1)[:, :length]]
    was_training, device = net.training, next(net.parameters()).device
    net.eval().cpu()
    float_graph = spec.precision not in INT8_PRECISIONS and is_quantized(net)
    dtype = np.float16 if spec.precision == 'fp16' else np.float32
    try:
        with torch.no_grad(), quantizers_bypassed(net) if float_graph else contextlib.nullcontext():
            if contract is None:
                return [_compare_window(run, net, clip, dtype, source) for clip in clips]
            return [_compare_stream(run, net, contract, clip, dtype, source) for clip in clips]
    finally:
        net.train(was_training).to(device)


def _timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def _difference(expected: np.ndarray, got: np.ndarray, source: str, what: str) -> tuple[float, float]:
    if got.shape != expected.shape:
        raise OnnxMismatchError(f'{source}: output shape {got.shape} {what}, PyTorch gives {expected.shape}.')
    return float(np.abs(got - expected).max()), unit_range_psnr(expected, got)


def _compare_window(run: Runner, net: nn.Module, clip: torch.Tensor, dtype, source: str) -> OnnxMatch:
    height, width = clip.shape[-2:]
    expected, torch_s = _timed(lambda: net(clip).numpy())
    got, engine_s = _timed(lambda: run({INPUT_NAME: clip.numpy().astype(dtype)})[0].astype(np.float32))
    error, psnr = _difference(expected, got, source, f'at input {height}x{width}')
    return OnnxMatch(height, width, error, psnr, torch_s, engine_s)


def _compare_stream(run: Runner, net: nn.Module, contract: StreamContract, clip: torch.Tensor, dtype,
                    source: str) -> OnnxMatch:
    """Consecutive calls of one stream through the graph and through PyTorch, each carrying its own state."""
    height, width = clip.shape[-2:]
    engine_state = contract.zero_state(height, width, dtype)
    torch_state = [torch.from_numpy(engine_state[name]).float() for name in STATE_NAMES]
    calls, torch_s, engine_s = [], 0.0, 0.0
    for call in range(STATEFUL_CHECK_CALLS):
        first = call * contract.interval
        lq = clip[:, first:first + contract.frames]
        keyframes = contract.keyframe_feeds(first, contract.frames, ended=False)
        with stateful_forward(net, contract):
            (expected, *torch_state), seconds = _timed(net, lq, *torch_state,
                                                        *(torch.from_numpy(v) for v in keyframes.values()))
        torch_s += seconds
        feeds = {INPUT_NAME: lq.numpy().astype(dtype), **engine_state, **keyframes}
        outputs, seconds = _timed(run, feeds)
        engine_s += seconds
        engine_state = dict(zip(STATE_NAMES, outputs[1:]))
        error, psnr = _difference(expected.numpy(), np.asarray(outputs[0]).astype(np.float32), source,
                                  f'at input {height}x{width}, call {call + 1}')
        calls.append({'max_abs_error': error, 'psnr_db': psnr})
    return OnnxMatch(height, width, max(c['max_abs_error'] for c in calls), min(c['psnr_db'] for c in calls),
                     torch_s, engine_s, tuple(calls))


def check_error_growth(matches: Sequence[OnnxMatch], source: str) -> None:
    """Raise ``OnnxMismatchError`` if a stateful check's last call is much worse than its first (the carried state
    compounds the engine's error); windowed checks pass."""
    for m in matches:
        if not m.calls:
            continue
        first, last = m.calls[0], m.calls[-1]
        grew = last['max_abs_error'] > MAX_ERROR_GROWTH * first['max_abs_error'] + 1e-6
        dropped = last['psnr_db'] < first['psnr_db'] - MAX_PSNR_DROP_DB
        if grew and dropped:
            raise OnnxMismatchError(
                f'{source}: the error grows from call to call at {m.height}x{m.width} (call 1: max abs '
                f'{first["max_abs_error"]:.3g}, {first["psnr_db"]:.1f} dB; call {len(m.calls)}: '
                f'{last["max_abs_error"]:.3g}, {last["psnr_db"]:.1f} dB): the carried state diverges from PyTorch.')


def compare_with_torch(onnx_path: str, net: nn.Module, sizes: list[tuple[int, int]], seed: int = 0,
                       providers: list[str] | None = None, clips: Sequence[torch.Tensor] | None = None
                       ) -> list[OnnxMatch]:
    """``compare_runner_with_torch`` for a graph written by ``export_onnx``, in ONNX Runtime (default: CPU)."""
    spec = read_graph_spec(onnx_path)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # FP16 graphs: ORT warns for every node it cannot constant-fold in FP16
    session = ort.InferenceSession(onnx_path, options, providers=providers or ['CPUExecutionProvider'])
    return compare_runner_with_torch(lambda feeds: session.run(None, feeds), spec, net, sizes, onnx_path, seed, clips)


def check_onnx(onnx_path: str, net: nn.Module, height: int, width: int, atol: float = DEFAULT_FP32_ATOL,
               min_int8_psnr: float = DEFAULT_INT8_MIN_PSNR, clips: Sequence[torch.Tensor] | None = None
               ) -> list[OnnxMatch]:
    """Compare graph and network (two sizes for dynamic graphs); raise ``OnnxMismatchError`` if FP32 or INT8 differs.

    FP32 must match within ``atol``; INT8 graphs must reach ``min_int8_psnr`` against the fake-quantized network.
    FP16 graphs are only reported: ONNX Runtime's CPU provider runs many FP16 nodes through inserted casts to
    FP32, so on CPU the comparison measures the FP16 rounding of weights and I/O, not FP16 arithmetic.
    ``clips`` replaces the random clips (see ``compare_with_torch``).
    """
    spec = read_graph_spec(onnx_path)
    matches = compare_with_torch(onnx_path, net, spec_check_sizes(spec, height, width), clips=clips)
    check_error_growth(matches, onnx_path)
    if spec.precision in INT8_PRECISIONS:
        bad = [m for m in matches if not m.psnr_db >= min_int8_psnr]
        if bad:
            details = '; '.join(f'{m.height}x{m.width}: PSNR {m.psnr_db:.1f} dB' for m in bad)
            raise OnnxMismatchError(f'{onnx_path}: the {spec.precision} graph in ONNX Runtime is further from the '
                                    f'fake-quantized PyTorch network than {min_int8_psnr:g} dB: {details}')
    if spec.precision == 'fp32':
        bad = [m for m in matches if not m.max_abs_error <= atol]
        if bad:
            details = '; '.join(f'{m.height}x{m.width}: max abs error {m.max_abs_error:.3g}, PSNR {m.psnr_db:.1f} dB'
                                for m in bad)
            raise OnnxMismatchError(f'{onnx_path}: ONNX Runtime does not match PyTorch within {atol:g}: {details}')
    return matches
