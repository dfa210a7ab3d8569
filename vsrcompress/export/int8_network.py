"""What the INT8 exports read from a quantized network: per-conv integer weights, scales and ranges.

The quantization engine (``vsrcompress.quantization``) leaves a network whose ``QuantConv2d`` layers hold the
calibrated input range (per tensor), the weight ranges (per output channel) and float weights; the INT8 checkpoint
restores exactly that state. The exports take the ranges from there as they are, never re-calibrating:
scale = amax / 127, zero point 0 (symmetric), as pytorch-quantization's fake quantization computes them.
"""
import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from pytorch_quantization.nn import TensorQuantizer
from pytorch_quantization.tensor_quant import tensor_quant
from torch import nn

from vsrcompress.quantization.quantizers import check_calibrated, effective_amax, quant_convs

INT8_BITS = 8
INT8_BOUND = 2 ** (INT8_BITS - 1) - 1  # 127: symmetric scale = amax / 127, codes -128..127 as in ONNX


@dataclass(frozen=True)
class ConvInt8:
    """One quantized conv as integer kernels need it.

    ``weight`` holds the integer codes (int8, (out, in, kh, kw)); ``weight_scale`` the per-output-channel scale
    (float32, (out,)) with ``w ~= weight * weight_scale``. ``input_amax`` is the calibrated input range,
    ``output_range`` the measured output range (min, max), None when it was not measured.
    """
    input_amax: float
    weight: np.ndarray
    weight_scale: np.ndarray
    output_range: tuple[float, float] | None


def require_int8_network(net: nn.Module, what: str = 'INT8 export') -> None:
    """Fail clearly unless ``net`` is a calibrated 8-bit quantized network."""
    convs = quant_convs(net)
    if not convs:
        raise ValueError(f'precision: {what} needs a quantized network (an INT8 checkpoint, format '
                         f'vsrcompress-int8/1, loaded with load_int8_checkpoint); {type(net).__name__} has no '
                         'quantized conv.')
    check_calibrated(net)
    other_bits = sorted({f'{name}: {conv.input_quantizer.num_bits} bits' for name, conv in convs.items()
                         if conv.input_quantizer.num_bits != INT8_BITS or conv.weight_quantizer.num_bits != INT8_BITS})
    if other_bits:
        raise ValueError(f'precision: {what} writes 8-bit integer tensors; this network is quantized with other '
                         f'bit widths ({other_bits[:3]}), which ONNX int8 tensors cannot represent.')


def conv_int8_table(net: nn.Module, output_ranges: Mapping[str, torch.Tensor] | None = None) -> dict[str, ConvInt8]:
    """The ``ConvInt8`` of every quantized conv, by module name; ``output_ranges`` from ``calibrate_output_ranges``."""
    require_int8_network(net)
    output_ranges = dict(output_ranges or {})
    unknown = sorted(set(output_ranges) - set(quant_convs(net)))
    if unknown:
        raise ValueError(f'conv output ranges name layers that are not quantized convs of {type(net).__name__}: '
                         f'{unknown[:5]}')
    bad = [name for name, r in output_ranges.items()
           if tuple(torch.as_tensor(r).shape) != (2,) or not float(r[0]) <= 0 <= float(r[1])]
    if bad:
        raise ValueError(f'conv output ranges must be [min, max] with min <= 0 <= max; not so for {bad[:5]}')
    table = {}
    for name, conv in quant_convs(net).items():
        quantizer = conv.weight_quantizer
        with torch.no_grad():
            codes, _ = tensor_quant(conv.weight.detach().float(), quantizer.amax, INT8_BITS, False,
                                    quantizer.narrow_range)
        weight_amax = quantizer.amax.detach().float().flatten().cpu().numpy()
        out = output_ranges.get(name)
        table[name] = ConvInt8(input_amax=float(effective_amax(conv.input_quantizer)),
                               weight=codes.cpu().numpy().astype(np.int8),
                               weight_scale=(weight_amax / INT8_BOUND).astype(np.float32),
                               output_range=None if out is None else (float(out[0]), float(out[1])))
    return table


@contextlib.contextmanager
def quantizers_bypassed(net: nn.Module) -> Iterator[None]:
    """Run a quantized network in exact float for the duration (every quantizer disabled, then restored)."""
    quantizers = [m for m in net.modules() if isinstance(m, TensorQuantizer)]
    disabled = [q._disabled for q in quantizers]  # the library keeps the switch in this attribute
    for quantizer in quantizers:
        quantizer.disable()
    try:
        yield
    finally:
        for quantizer, was_disabled in zip(quantizers, disabled):
            quantizer.disable() if was_disabled else quantizer.enable()
