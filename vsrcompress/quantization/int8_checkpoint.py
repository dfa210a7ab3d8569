"""Deployable INT8 checkpoints: int8 weights with per-channel scales, activation ranges, float parts as they are.

Layout (plain tensors, strings and numbers only, so ``torch.load(weights_only=True)`` reads it)::

    {'format': 'vsrcompress-int8/1',
     'int8_weights':    {conv: int8 tensor (out, in, kh, kw)},        # w ~= q * weight_scale, per output channel
     'weight_scale':    {conv: float32 (out,)},                       # = weight_amax / (2**(num_bits-1) - 1)
     'weight_amax':     {conv: float32 (out,)},                       # kept so a reload is bit-exact
     'activation_amax': {quantizer module: float32 scalar},           # conv inputs and residual adds, per tensor
     'float_params':    {state-dict key: tensor},                     # biases, float (skipped) layers, buffers
     'quantization':    {num_bits, calibrator, skip, skip_parts, skipped, quantized, residual, config, source},
     'widths': {...}, ...}                                            # width spec and caller extras (arch, ...)

Weights take one byte each (also below 8 bits), so the file is about a quarter of the FP32 one. All tensors of
one dtype are views into one shared storage, which ``torch.save`` writes as a single record: one record per
tensor costs about 300 bytes, which on BasicVSR (about 1000 small tensors) would add 1 % of the FP32 size and
break the 26 % target. The dict entries still load as ordinary tensors of their own shapes. Loading puts
``q / scale`` back as the float weight: fake quantization maps it to itself, so the reloaded network computes
exactly what the network computed before saving.
"""
from collections.abc import Mapping

import torch
from pytorch_quantization.tensor_quant import tensor_quant
from torch import nn

from vsrcompress.checkpoint import load_checkpoint, load_state_strict, save_atomic
from vsrcompress.quantization.config import QuantConfig
from vsrcompress.quantization.insertion import QuantReport, candidate_layers, insert_quantizers
from vsrcompress.quantization.quantizers import (activation_quantizers, check_calibrated, effective_amax, is_quantized,
                                                 quant_convs, quiet_quantizer_logs, residual_quantizers)

INT8_FORMAT = 'vsrcompress-int8/1'


def pack_int8_checkpoint(net: nn.Module, config: QuantConfig | Mapping | None, report: QuantReport,
                         source: str | None = None) -> dict:
    """The INT8 checkpoint of a calibrated (and possibly QAT-trained) network, as a plain dict."""
    config = QuantConfig.coerce(config)
    check_calibrated(net)
    bound = 2.0 ** (config.num_bits - 1) - 1
    state = net.state_dict()
    consumed = set()
    int8_weights, weight_scale, weight_amax = {}, {}, {}
    for name, conv in quant_convs(net).items():
        quantizer = conv.weight_quantizer
        if quantizer.num_bits != config.num_bits:
            raise ValueError(f'{name}: weight quantizer has {quantizer.num_bits} bits, config says {config.num_bits}')
        with torch.no_grad():
            q, _ = tensor_quant(conv.weight.detach(), quantizer.amax, quantizer.num_bits, False, quantizer.narrow_range)
        int8_weights[name] = q.to(torch.int8).cpu()
        weight_amax[name] = quantizer.amax.detach().flatten().float().cpu().clone()
        weight_scale[name] = weight_amax[name] / bound
        consumed |= {f'{name}.weight', f'{name}._weight_quantizer._amax'}
    activation_amax = {}
    for name, quantizer in activation_quantizers(net).items():
        activation_amax[name] = effective_amax(quantizer).detach().float().cpu().clone()
        consumed.add(f'{name}._amax')
    float_params = {k: v.detach().cpu().clone() for k, v in state.items() if k not in consumed}
    tables = _share_storage({'int8_weights': int8_weights, 'weight_scale': weight_scale, 'weight_amax': weight_amax,
                             'activation_amax': activation_amax, 'float_params': float_params})
    ckpt = {
        'format': INT8_FORMAT,
        **tables,
        'quantization': {
            'num_bits': config.num_bits, 'calibrator': config.calibrator, 'skip': list(config.skip),
            'skip_parts': list(config.skip_parts), 'skipped': dict(report.skipped), 'quantized': list(quant_convs(net)),
            'residual': list(residual_quantizers(net)), 'config': config.as_dict(), 'source': source},
    }
    if hasattr(net, 'width_spec'):
        ckpt['widths'] = net.width_spec()
    return ckpt


def _share_storage(tables: dict[str, dict[str, torch.Tensor]]) -> dict[str, dict[str, torch.Tensor]]:
    """The same tables with every tensor turned into a view of one flat storage per dtype."""
    by_dtype = {}
    for table in tables.values():
        for tensor in table.values():
            by_dtype.setdefault(tensor.dtype, []).append(tensor.reshape(-1))
    flat = {dtype: torch.cat(parts) for dtype, parts in by_dtype.items()}
    offsets = dict.fromkeys(flat, 0)
    shared = {}
    for key, table in tables.items():
        shared[key] = {}
        for name, tensor in table.items():
            start = offsets[tensor.dtype]
            offsets[tensor.dtype] = start + tensor.numel()
            shared[key][name] = flat[tensor.dtype][start:start + tensor.numel()].view(tensor.shape)
    return shared


def export_int8_checkpoint(net: nn.Module, config: QuantConfig | Mapping | None, report: QuantReport, path: str,
                           source: str | None = None, extra: Mapping | None = None) -> dict:
    """Write the INT8 checkpoint atomically to ``path`` and return it.

    Args:
        net: Calibrated quantized network.
        config: The ``quantization:`` options the network was quantized with.
        report: What ``quantize_network`` returned (for the skip reasons).
        path: Output file.
        source: The FP32 checkpoint it came from, recorded in the metadata.
        extra: More top-level entries, e.g. ``{'arch': network_g options}`` so the network can be rebuilt.
    """
    ckpt = pack_int8_checkpoint(net, config, report, source)
    clashes = sorted(set(extra or {}) & set(ckpt))
    if clashes:
        raise ValueError(f'export_int8_checkpoint: extra keys {clashes} would overwrite INT8 checkpoint entries')
    ckpt.update(extra or {})
    save_atomic(ckpt, path)
    return ckpt


def load_int8_checkpoint(net: nn.Module, ckpt: str | Mapping, option_key: str = 'int8_checkpoint') -> QuantReport:
    """Quantize a float network of the checkpoint's architecture exactly as saved and load its INT8 state.

    Args:
        net: A float network built with the checkpoint's arch options and ``widths``.
        ckpt: Path to the INT8 checkpoint, or the loaded dict.
        option_key: Option name used in error messages.

    Returns:
        The quantization report stored with the checkpoint.
    """
    source = ckpt if isinstance(ckpt, str) else 'INT8 checkpoint'
    if isinstance(ckpt, str):
        ckpt = load_checkpoint(ckpt, option_key)
    if ckpt.get('format') != INT8_FORMAT:
        raise ValueError(f'{option_key}: {source} is not a vsrcompress INT8 checkpoint (format {ckpt.get("format")!r},'
                         f' expected {INT8_FORMAT!r}); keys: {sorted(ckpt)}')
    if is_quantized(net):
        raise ValueError(f'{option_key}: {type(net).__name__} already carries quantizers; pass a float network.')
    meta = ckpt['quantization']
    config = QuantConfig.from_dict(meta['config'])
    convs, residuals = candidate_layers(net)
    missing = sorted(set(meta['quantized']) - set(convs)) + sorted(set(meta['residual']) - set(residuals))
    if missing:
        raise ValueError(f'{option_key}: {source} quantizes layers that {type(net).__name__} lacks (build it with the '
                         f'checkpoint\'s arch options and widths): {missing[:10]}{" ..." if len(missing) > 10 else ""}')
    insert_quantizers(net, config, meta['quantized'], meta['residual'])
    state = dict(ckpt['float_params'])
    for name, q in ckpt['int8_weights'].items():
        amax = ckpt['weight_amax'][name].view(-1, 1, 1, 1)
        state[f'{name}.weight'] = dequantize_weight(q, amax, config.num_bits)
        state[f'{name}._weight_quantizer._amax'] = amax
    state.update({f'{name}._amax': amax for name, amax in ckpt['activation_amax'].items()})
    with quiet_quantizer_logs():
        load_state_strict(net, state, source, option_key)
    return QuantReport(config.num_bits, list(meta['quantized']), list(meta['residual']), dict(meta['skipped']))


def dequantize_weight(q: torch.Tensor, amax: torch.Tensor, num_bits: int) -> torch.Tensor:
    """``q / scale`` with the same float32 operations as pytorch-quantization's fake quantization."""
    scale = torch.tensor(2.0 ** (num_bits - 1) - 1.0) / amax.float()
    return q.float() / scale  # a channel with amax 0 has q = 0, and 0 / inf = 0 as in the library
