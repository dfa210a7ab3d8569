"""Conv output ranges: what an integer-kernel deployment needs on top of the calibrated conv input ranges.

The fake-quantized network quantizes conv inputs (and residual-add inputs) only. ONNX Runtime's CPU provider runs
a conv in integer arithmetic only when its output is quantized too (DequantizeLinear -> Conv -> QuantizeLinear
becomes QLinearConv), so the export needs a range for every quantized conv's output. Where the output feeds a
quantized conv directly (through a ReLU at most), the consumer's calibrated input range serves; everywhere else
(before LeakyReLU, residual adds, pixel shuffle, the RGB output) the range is measured here.

It is measured on the fake-quantized network, as deployed: after QAT the weights have moved since calibration,
so call this right before writing the INT8 checkpoint, on the calibration clips, and store the result with it::

    ranges = calibrate_output_ranges(net, clips, cfg)
    export_int8_checkpoint(net, cfg, report, path, extra={OUTPUT_RANGE_KEY: ranges, 'arch': arch_options})

Ranges are signed, ``[min, max]``: a conv output before a LeakyReLU is far from symmetric, and an asymmetric
integer range spends its codes where the values are. Each side is measured with the config's calibrator (on the
positive part and on the negated negative part), so ``percentile``/``mse``/``entropy`` clip outliers as they do for
the input ranges.
"""
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from vsrcompress.quantization.calibration import _compute_amax, _new_collector, run_clips  # as for input ranges
from vsrcompress.quantization.config import QuantConfig
from vsrcompress.quantization.quantizers import check_calibrated, quant_convs

OUTPUT_RANGE_KEY = 'conv_output_range'  # INT8 checkpoint entry: {conv module name: float32 tensor [min, max]}


def calibrate_output_ranges(net: nn.Module, clips: Iterable[torch.Tensor], config: QuantConfig | Mapping | None = None,
                            ) -> dict[str, torch.Tensor]:
    """Measure the output range ``[min, max]`` (per tensor) of every quantized conv of a calibrated network.

    The network runs with fake quantization on, in eval mode, without gradients, over up to ``calib_batches``
    batches of whole clips; each conv's collector sees every time step. The method is the config's calibrator
    (max, percentile, mse or entropy), as for the input ranges. The network is left as it was.

    Args:
        net: A calibrated network prepared by ``quantize_network`` (or loaded with ``load_int8_checkpoint``).
        clips: Batches of whole clips (b, n, c, h, w), e.g. the calibration clips.
        config: ``QuantConfig`` or the raw ``quantization:`` dict.

    Returns:
        ``{conv module name: float32 tensor [min, max]}`` with min <= 0 <= max (plain data for the INT8 checkpoint).
    """
    config = QuantConfig.coerce(config)
    check_calibrated(net)
    convs = quant_convs(net)
    collectors = {name: (_new_collector(config), _new_collector(config)) for name in convs}
    seen = dict.fromkeys(convs, 0)
    batch = {'index': 0}

    def hook_for(name):
        def collect(module, args, output):
            y = output.detach()
            if not bool(torch.isfinite(y).all()):
                raise FloatingPointError(f'output range calibration batch {batch["index"]}: NaN or inf at the output '
                                         f'of {name}; check the input clips and the quantized network.')
            negative, positive = collectors[name]
            negative.collect(torch.relu(-y))
            positive.collect(torch.relu(y))
            seen[name] += 1
        return collect

    handles = [conv.register_forward_hook(hook_for(name)) for name, conv in convs.items()]
    try:
        count = run_clips(net, clips, config.calib_batches, 'output range calibration',
                          lambda index: batch.update(index=index))
    finally:
        for handle in handles:
            handle.remove()
    if count == 0:
        raise ValueError('output range calibration got zero batches: the clip iterable is empty.')
    unseen = [name for name, count in seen.items() if count == 0]
    if unseen:
        raise RuntimeError(f'output range calibration: these convs never ran, so their output range is unknown: '
                           f'{unseen}')
    return {name: torch.stack([-_compute_amax(negative, config).float().reshape(()),
                               _compute_amax(positive, config).float().reshape(())]).detach().cpu()
            for name, (negative, positive) in collectors.items()}
