"""Run an exported graph in an engine (ONNX Runtime here, OpenVINO in ``openvino_check``) on the same clip as PyTorch
and measure how closely they agree.

FP32/FP16 graphs are compared with the float network (a quantized network runs with its quantizers bypassed);
INT8 graphs with the fake-quantized network, which is what their Q/DQ nodes express.
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
from vsrcompress.metrics import unit_range_psnr
from vsrcompress.quantization.quantizers import is_quantized

DEFAULT_FP32_ATOL = 1e-3  # on outputs in [0, 1]: a quarter of an 8-bit gray level
# INT8 graph vs the fake-quantized network. Q/DQ on conv inputs and weights (int8-trt) is the fake quantization
# itself (tiny BasicVSR in tests: 75-80 dB, rounding-tie and float-order differences); int8-ort also quantizes conv
# outputs and residual sums, which the fake-quantized network keeps float (tests: 48-58 dB; measured numbers in
# docs/deploy.md). 40 dB = RMS error of a quarter of an 8-bit gray level.
DEFAULT_INT8_MIN_PSNR = 40.0


class OnnxMismatchError(RuntimeError):
    """An FP32 (INT8) graph whose ONNX Runtime output differs from PyTorch by more than the tolerance (bound)."""


@dataclass(frozen=True)
class OnnxMatch:
    """PyTorch vs an engine on one clip size: worst absolute difference and PSNR (data range 1)."""
    height: int
    width: int
    max_abs_error: float
    psnr_db: float
    torch_seconds: float
    engine_seconds: float


def check_sizes(height: int, width: int, dynamic: bool) -> list[tuple[int, int]]:
    """Sizes to compare at: the export size, plus an unaligned other size for dynamic graphs."""
    return [(height, width), (height + 6, width + 10)] if dynamic else [(height, width)]


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


def compare_runner_with_torch(run: Callable[[np.ndarray], np.ndarray], spec: OnnxGraphSpec, net: nn.Module,
                              sizes: list[tuple[int, int]], source: str, seed: int = 0,
                              clips: Sequence[torch.Tensor] | None = None) -> list[OnnxMatch]:
    """Run ``net`` (CPU) and ``run`` (an engine: float32 clip -> float32 output) on the same clips.

    Args:
        run: One forward of the exported graph.
        spec: The graph's spec; INT8 graphs are compared with the fake-quantized network, float graphs of a
            quantized network with its quantizers bypassed.
        net: The network the graph was exported from.
        sizes: (height, width) of the random clips.
        source: The graph's file, for error messages.
        seed: Seed of the random clips.
        clips: Inputs (1, frames, 3, h, w) in [0, 1] to use instead of random clips, e.g. calibration clips:
            INT8 ranges are calibrated on real footage, and uniform noise drives activations past them.
    """
    generator = torch.Generator().manual_seed(seed)
    if clips is None:
        clips = [torch.rand(1, spec.frames, 3, height, width, generator=generator) for height, width in sizes]
    was_training, device = net.training, next(net.parameters()).device
    net.eval().cpu()
    matches = []
    float_graph = spec.precision not in INT8_PRECISIONS and is_quantized(net)
    try:
        for clip in clips:
            height, width = clip.shape[-2:]
            start = time.perf_counter()
            with torch.no_grad(), quantizers_bypassed(net) if float_graph else contextlib.nullcontext():
                expected = net(clip).numpy()
            torch_s = time.perf_counter() - start
            start = time.perf_counter()
            got = run(clip.numpy()).astype(np.float32)
            engine_s = time.perf_counter() - start
            if got.shape != expected.shape:
                raise OnnxMismatchError(f'{source}: output shape {got.shape} at input {height}x{width}, '
                                        f'PyTorch gives {expected.shape}.')
            matches.append(OnnxMatch(height, width, float(np.abs(got - expected).max()), unit_range_psnr(expected, got),
                                     torch_s, engine_s))
    finally:
        net.train(was_training).to(device)
    return matches


def compare_with_torch(onnx_path: str, net: nn.Module, sizes: list[tuple[int, int]], seed: int = 0,
                       providers: list[str] | None = None, clips: Sequence[torch.Tensor] | None = None
                       ) -> list[OnnxMatch]:
    """``compare_runner_with_torch`` for a graph written by ``export_onnx``, in ONNX Runtime (default: CPU)."""
    spec = read_graph_spec(onnx_path)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # FP16 graphs: ORT warns for every node it cannot constant-fold in FP16
    session = ort.InferenceSession(onnx_path, options, providers=providers or ['CPUExecutionProvider'])
    input_dtype = np.float16 if spec.precision == 'fp16' else np.float32
    return compare_runner_with_torch(lambda lq: session.run(None, {INPUT_NAME: lq.astype(input_dtype)})[0], spec,
                                     net, sizes, onnx_path, seed, clips)


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
