"""The ranges (amax) a quantized network uses now, per layer, as plain tensors: what range logs and plots read.

Activation ranges are one number per quantizer (per tensor: conv inputs and residual adds); weight ranges one per
output channel of each quantized conv. A range far above its neighbours (an outlier activation, a dead or exploded
channel) is what a histogram of these values shows at a glance after calibration and during QAT.
"""
import torch
from torch import nn

from vsrcompress.quantization.quantizers import activation_quantizers, effective_amax, quant_convs


def quantizer_ranges(net: nn.Module) -> dict[str, dict[str, torch.Tensor]]:
    """Every quantizer's current range, by kind and layer, detached float32 copies on CPU.

    Args:
        net: A network prepared by ``quantize_network`` (calibrated, or holding NaN placeholders if not yet).

    Returns:
        ``{'activation': {quantizer module: scalar amax}, 'weight': {conv module: (out_channels,) amax}}``;
        activation ranges are the learned ones when ``learn_amax`` is on.
    """
    activation = {name: effective_amax(q).detach().float().reshape(()).cpu().clone()
                  for name, q in activation_quantizers(net).items()}
    weight = {name: conv.weight_quantizer.amax.detach().float().flatten().cpu().clone()
              for name, conv in quant_convs(net).items()}
    if not activation and not weight:
        raise ValueError(f'{type(net).__name__} has no quantizers; call quantize_network first.')
    return {'activation': activation, 'weight': weight}
