"""Calibration: activation ranges measured on whole clips, then frozen in the quantizers' ``_amax`` buffers.

pytorch-quantization's quantizers are module-level, so in a recurrent network one quantizer serves every time
step. Calibration therefore runs the float network over whole clips: every time step of the recurrence reaches
the same collector, and the range covers the hidden state at the end of a clip as well as at its start.
Weights need no data: each output channel's range is the max |w| of that channel.
"""
import itertools
from collections.abc import Callable, Iterable, Mapping

import torch
from pytorch_quantization import calib
from pytorch_quantization.nn import TensorQuantizer
from pytorch_quantization.nn.modules.clip import Clip
from pytorch_quantization.utils import reduce_amax
from torch import nn

from vsrcompress.quantization.config import QuantConfig
from vsrcompress.quantization.distributed import sync_amax_across_ranks
from vsrcompress.quantization.histogram_amax import entropy_amax, mse_amax
from vsrcompress.quantization.quantizers import activation_quantizers, quant_convs, quiet_quantizer_logs


def calibrate_weights(net: nn.Module) -> None:
    """Set every weight quantizer's per-output-channel range to the max |w| of the current weights."""
    for conv in quant_convs(net).values():
        conv.weight_quantizer.amax.copy_(reduce_amax(conv.weight, axis=(1, 2, 3), keepdims=True))


def run_clips(net: nn.Module, clips: Iterable[torch.Tensor], batches: int, what: str,
              on_batch: Callable[[int], None]) -> int:
    """Forward up to ``batches`` of ``clips`` through ``net`` in eval mode without gradients, for hooks to measure;
    the training mode is restored after. ``on_batch(index)`` runs before each forward (hooks name the batch in
    their errors), ``what`` names the step in this one's. Returns how many batches ran."""
    was_training = net.training
    device = next(net.parameters()).device
    net.eval()
    count = 0
    try:
        with torch.no_grad():
            for index, clip in enumerate(itertools.islice(iter(clips), batches)):
                if not isinstance(clip, torch.Tensor):
                    raise TypeError(f'{what} batch {index}: expected a tensor (for video networks a batch of whole '
                                    f'clips (b, n, c, h, w)), got {type(clip).__name__}')
                on_batch(index)
                net(clip.to(device))
                count += 1
    finally:
        net.train(was_training)
    return count


def calibrate(net: nn.Module, clips: Iterable[torch.Tensor], config: QuantConfig | Mapping | None = None,
              ) -> dict[str, float]:
    """Measure and freeze every activation range of a quantized network on up to ``calib_batches`` clips.

    The network runs in float (all quantizers bypassed) under ``torch.no_grad`` and in eval mode; afterwards
    every quantizer is enabled, the training mode is restored, ranges are max-reduced across ranks when
    torch.distributed is running, and learnable ranges (``learn_amax``) start from the calibrated values.

    Args:
        net: A network prepared by ``quantize_network``.
        clips: Network inputs; for video networks batches of whole clips (b, n, c, h, w), e.g.
            ``(data['lq'] for data in loader)``.
        config: ``QuantConfig`` or the raw ``quantization:`` dict (calibrator, percentile, num_bins, calib_batches).

    Returns:
        The calibrated range (amax) of every activation quantizer, by module name.
    """
    config = QuantConfig.coerce(config)
    quantizers = activation_quantizers(net)
    if not quantizers:
        raise ValueError(f'{type(net).__name__} has no activation quantizers; call quantize_network first.')
    calibrate_weights(net)
    collectors = {name: _new_collector(config) for name in quantizers}
    seen = dict.fromkeys(quantizers, 0)
    batch = {'index': 0}

    def hook_for(name):
        def collect(module, args):
            x = args[0].detach()
            if x.numel() == 0:  # e.g. SpyNet on a one-frame clip: no frame pairs, nothing to measure
                return
            if not bool(torch.isfinite(x).all()):
                raise FloatingPointError(f'calibration batch {batch["index"]}: NaN or inf at the input of quantizer '
                                         f'{name}; check the input clips and the float network.')
            collectors[name].collect(x)
            seen[name] += 1
        return collect

    all_quantizers = [m for m in net.modules() if isinstance(m, TensorQuantizer)]
    handles = [q.register_forward_pre_hook(hook_for(name)) for name, q in quantizers.items()]
    for quantizer in all_quantizers:
        quantizer.disable()
    try:
        count = run_clips(net, clips, config.calib_batches, 'calibration', lambda index: batch.update(index=index))
    finally:
        for handle in handles:
            handle.remove()
        for quantizer in all_quantizers:
            quantizer.enable()
    if count == 0:
        raise ValueError('calibration got zero batches: the clip iterable is empty (quantization.calib_batches '
                         f'= {config.calib_batches} caps the count; at least one clip is needed).')
    unseen = [name for name, count in seen.items() if count == 0]
    if unseen:
        raise RuntimeError(f'calibration: these quantizers never ran, so their range is unknown: {unseen}')

    for name, quantizer in quantizers.items():
        quantizer.amax.copy_(_compute_amax(collectors[name], config))
    sync_amax_across_ranks(net)
    with quiet_quantizer_logs():
        for quantizer in quantizers.values():
            if isinstance(getattr(quantizer, 'clip', None), Clip):
                quantizer.init_learn_amax()
    return {name: float(q.amax) for name, q in quantizers.items()}


def _new_collector(config: QuantConfig) -> calib.MaxCalibrator | calib.HistogramCalibrator:
    if config.calibrator == 'max':
        return calib.MaxCalibrator(num_bits=config.num_bits, axis=None, unsigned=False)
    return calib.HistogramCalibrator(num_bits=config.num_bits, axis=None, unsigned=False, num_bins=config.num_bins)


def _compute_amax(collector: calib.MaxCalibrator | calib.HistogramCalibrator, config: QuantConfig) -> torch.Tensor:
    if config.calibrator == 'max':
        return collector.compute_amax()
    if config.calibrator == 'percentile':
        return collector.compute_amax('percentile', percentile=config.percentile)
    # The library keeps the histogram in these two attributes; its own mse/entropy searches are replaced (see
    # histogram_amax) because they need CUDA or take seconds per quantizer.
    search = mse_amax if config.calibrator == 'mse' else entropy_amax
    return search(collector._calib_hist, collector._calib_bin_edges, config.num_bits)
