"""Finding and switching the quantizers of a network that ``quantize_network`` has prepared.

A *quantized layer* is either a ``QuantConv2d`` (an input quantizer per tensor and a weight quantizer per output
channel) or a residual-add quantizer (a ``TensorQuantizer`` that replaced an ``nn.Identity`` named ``skip_quant``).
"""
import contextlib
from collections.abc import Iterable, Iterator

import torch
from absl import logging as absl_logging
from pytorch_quantization.nn import QuantConv2d, TensorQuantizer
from pytorch_quantization.nn.modules.clip import Clip
from torch import nn

RESIDUAL_QUANT_NAME = 'skip_quant'


def quant_convs(net: nn.Module) -> dict[str, QuantConv2d]:
    """Every quantized conv by module name, in registration order."""
    return {name: m for name, m in net.named_modules() if isinstance(m, QuantConv2d)}


def residual_quantizers(net: nn.Module) -> dict[str, TensorQuantizer]:
    """Every residual-add input quantizer by module name."""
    return {name: m for name, m in net.named_modules()
            if isinstance(m, TensorQuantizer) and name.rsplit('.', 1)[-1] == RESIDUAL_QUANT_NAME}


def activation_quantizers(net: nn.Module) -> dict[str, TensorQuantizer]:
    """Every per-tensor quantizer whose range comes from data (conv inputs and residual adds), by module name."""
    found = {f'{name}._input_quantizer': conv.input_quantizer for name, conv in quant_convs(net).items()}
    found.update(residual_quantizers(net))
    return found


def layer_quantizers(net: nn.Module) -> dict[str, list[TensorQuantizer]]:
    """The quantizers of each quantized layer (conv: input and weight), keyed by the layer's module name."""
    layers = {name: [conv.input_quantizer, conv.weight_quantizer] for name, conv in quant_convs(net).items()}
    layers.update({name: [q] for name, q in residual_quantizers(net).items()})
    return layers


def is_quantized(net: nn.Module) -> bool:
    """Whether ``quantize_network`` has already run on this network."""
    return any(isinstance(m, TensorQuantizer) for m in net.modules())


def set_quantization_enabled(net: nn.Module, enabled: bool, layers: Iterable[str] | None = None) -> None:
    """Switch fake quantization on or off for the given layers (all when None); off means exact float."""
    table = layer_quantizers(net)
    names = list(table) if layers is None else list(layers)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise KeyError(f'not quantized layers: {unknown}; quantized layers: {list(table)}')
    for name in names:
        for quantizer in table[name]:
            quantizer.enable() if enabled else quantizer.disable()


def effective_amax(quantizer: TensorQuantizer) -> torch.Tensor:
    """The range a quantizer uses now: its learned clip range when ``learn_amax`` is on, else its ``_amax``."""
    clip = getattr(quantizer, 'clip', None)
    if isinstance(clip, Clip):
        return torch.max(-clip.clip_value_min, clip.clip_value_max).detach()
    return quantizer.amax


def uncalibrated_quantizers(net: nn.Module) -> list[str]:
    """Activation quantizers whose range is still the NaN placeholder set at insertion."""
    return [name for name, q in activation_quantizers(net).items()
            if q.amax is None or not bool(torch.isfinite(q.amax).all())]


def check_calibrated(net: nn.Module) -> None:
    """Fail, naming the layers, when a quantized network would run with placeholder ranges (NaN outputs)."""
    if not is_quantized(net):
        raise ValueError(f'{type(net).__name__} has no quantizers; call quantize_network first.')
    missing = uncalibrated_quantizers(net)
    if missing:
        raise ValueError(f'{len(missing)} quantizers have no calibrated range (run calibrate or load a quantized '
                         f'checkpoint): {missing[:10]}{" ..." if len(missing) > 10 else ""}')


@contextlib.contextmanager
def quiet_quantizer_logs() -> Iterator[None]:
    """Silence pytorch-quantization's per-quantizer absl warnings ("Overwriting amax", "Load amax ...") for a while.

    The library logs one line per quantizer on every state load and amax initialisation; on a network with a
    hundred quantizers that buries the training log.
    """
    previous = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        absl_logging.set_verbosity(previous)
