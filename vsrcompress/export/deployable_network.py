"""Any checkpoint the deployment tools take, as a ready network: dense, pruned, official, or INT8.

INT8 checkpoints (format ``vsrcompress-int8/1``) carry no ``params``: the float network is rebuilt from their
``arch`` and ``widths`` entries and ``load_int8_checkpoint`` inserts the quantizers and restores the weights and
calibrated ranges, giving the fake-quantized network. Their measured conv output ranges (``conv_output_range``,
needed by the ``int8-ort`` export) come along when the checkpoint has them.
"""
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from vsrcompress.checkpoint import arch_options, build_network_from_checkpoint, load_checkpoint
from vsrcompress.quantization.int8_checkpoint import INT8_FORMAT, load_int8_checkpoint
from vsrcompress.quantization.output_ranges import OUTPUT_RANGE_KEY


@dataclass
class DeployableNetwork:
    """The network (fake-quantized for INT8 checkpoints) and what the exports need to know about it.

    ``quant_config`` is the ``quantization:`` section an INT8 checkpoint was made with (calibrator, calib_batches).
    """
    net: nn.Module
    int8: bool
    conv_output_range: dict[str, torch.Tensor] | None = None
    quant_config: dict | None = None


def load_deployable_network(path: str, network_opt: Mapping | None = None, param_key: str = 'params'
                            ) -> DeployableNetwork:
    """Rebuild the network of any vsrcompress or official BasicSR checkpoint (see the module docstring).

    Args:
        path: Checkpoint file.
        network_opt: network_g options; needed for official checkpoints, which carry no ``arch`` entry.
        param_key: Which state dict of a float checkpoint to load (``params`` or ``params_ema``).
    """
    ckpt = load_checkpoint(path)
    if ckpt.get('format') != INT8_FORMAT:
        return DeployableNetwork(build_network_from_checkpoint(path, network_opt, param_key), int8=False)
    from basicsr.archs import build_network  # archs are basicsr-registered; engines never call this

    opt = dict(ckpt.get('arch') or {})
    opt.update(arch_options(network_opt or {}))
    if 'type' not in opt:
        raise ValueError(f'checkpoint: {path} is an INT8 checkpoint without an "arch" entry; give the network '
                         'options (--arch, --arch-opt) it was trained with.')
    widths = ckpt.get('widths') or (network_opt or {}).get('widths')
    if widths:
        opt['widths'] = _spynet_widths_from_weights(widths, ckpt)
    net = build_network(opt)
    load_int8_checkpoint(net, ckpt, 'checkpoint')
    ranges = ckpt.get(OUTPUT_RANGE_KEY)
    return DeployableNetwork(net.eval(), int8=True, conv_output_range=dict(ranges) if ranges else None,
                             quant_config=dict(ckpt['quantization']['config']))


def _spynet_widths_from_weights(widths: dict, ckpt: Mapping) -> dict:
    """``widths`` with SpyNet's rows read from the stored weight shapes when they are empty.

    ``width_spec()`` of a quantized network finds no SpyNet convs (``QuantConv2d`` is not an ``nn.Conv2d``), so INT8
    checkpoints of networks with a quantized SpyNet store ``'spynet': [[], ...]``; the shapes are in the file.
    """
    rows = widths.get('spynet')
    if not rows or any(rows):
        return widths
    shapes = {name: tuple(q.shape) for name, q in ckpt['int8_weights'].items()}
    shapes.update({name[:-len('.weight')]: tuple(t.shape) for name, t in ckpt['float_params'].items()
                   if name.startswith('spynet.') and name.endswith('.weight')})
    try:
        spynet = [[shapes[f'spynet.basic_module.{level}.basic_module.{2 * i}'][0] for i in range(4)]
                  for level in range(len(rows))]
    except KeyError as err:
        raise ValueError(f'checkpoint: its SpyNet widths are empty and weight {err} is missing; cannot rebuild '
                         'the network.') from err
    return {**widths, 'spynet': spynet}
