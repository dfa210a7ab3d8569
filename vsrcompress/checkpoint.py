"""Checkpoint files: atomic writes, strict loads that say what mismatched, and self-describing networks.

A vsrcompress network checkpoint is plain data (loadable with ``torch.load(weights_only=True)``)::

    {'params': state_dict,                      # as basicsr saves it, so basicsr tools still read it
     'arch': {'type': 'BasicVSRNet', ...},      # network_g options (paths to pretrained parts removed)
     'widths': {...},                           # width spec from ``net.width_spec()``
     ...}                                       # stage-specific extras (provenance, quantization, ...)

Official BasicSR checkpoints hold only ``params``; they load into an arch built from the YAML.
"""
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from vsrcompress.atomic_files import write_atomic

PRETRAINED_KEYS = ('spynet_path', 'edvr_path')


def save_atomic(obj: object, path: str) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: a crash never leaves half a file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def write(tmp: str) -> None:
        with open(tmp, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
    write_atomic(path, write)


def torch_load_failure(err: Exception) -> str:
    """What a failed ``torch.load(..., weights_only=True)`` means for a user, without torch's advice to turn the
    safety off (``weights_only=False`` would run whatever the file holds)."""
    text = str(err)
    if 'Unsupported global' in text or 'Unsupported class' in text:
        return 'it holds Python objects, which are never unpickled (only plain tensors, numbers and strings)'
    if ('zip archive' in text or 'magic number' in text or 'Weights only load failed' in text
            or isinstance(err, (EOFError, UnicodeDecodeError))):
        return 'truncated, damaged or not a PyTorch file'
    return text.strip().splitlines()[0] if text.strip() else type(err).__name__


def load_checkpoint(path: str, option_key: str = 'checkpoint') -> dict:
    """Load a plain-data checkpoint on CPU, naming the option key and file when it cannot be read."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{option_key}: {path} does not exist.')
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # truncated file, pickled modules, not a torch file at all
        raise ValueError(f'{option_key}: {path} is not a loadable plain-data checkpoint: '
                         f'{torch_load_failure(err)}.') from err
    if not isinstance(ckpt, Mapping):
        raise ValueError(f'{option_key}: {path} holds a {type(ckpt).__name__}, expected a dict.')
    return ckpt


def select_params(ckpt: Mapping, path: str, param_key: str | None = 'params', option_key: str = 'checkpoint') -> dict:
    """Pick the state dict under ``param_key`` (falling back to ``params``), without ``module.`` prefixes."""
    if param_key is not None:
        if param_key not in ckpt and 'params' in ckpt:
            param_key = 'params'
        if param_key not in ckpt:
            raise KeyError(f'{option_key}: {path} has no {param_key!r} entry; it has {sorted(ckpt)}.')
        ckpt = ckpt[param_key]
    return {k[7:] if k.startswith('module.') else k: v for k, v in ckpt.items()}


def load_state_strict(net: nn.Module, state: Mapping, source: str, option_key: str = 'checkpoint') -> None:
    """``load_state_dict(strict=True)`` whose error lists missing, unexpected and wrongly shaped keys."""
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f'{k}: checkpoint {tuple(state[k].shape)} vs network {tuple(own[k].shape)}'
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        lines = [f'{option_key}: {source} does not match {type(net).__name__}.']
        for title, items in (('missing keys', missing), ('unexpected keys', unexpected), ('shape mismatch', shapes)):
            if items:
                more = ' ...' if len(items) > 10 else ''
                lines.append(f'  {title} ({len(items)}): ' + '; '.join(items[:10]) + more)
        if shapes:
            lines.append('  A pruned checkpoint needs its width spec: network_g.widths, or a checkpoint with "widths".')
        raise ValueError('\n'.join(lines))
    net.load_state_dict(state, strict=True)


def arch_options(network_opt: Mapping) -> dict:
    """network_g options as stored in a checkpoint: without pretrained-part paths (the weights are inside)."""
    return {k: v for k, v in dict(network_opt).items() if k not in PRETRAINED_KEYS and k != 'widths'}


def network_checkpoint(net: nn.Module, network_opt: Mapping, **extra) -> dict:
    """The plain-data checkpoint of a network: params, arch options, width spec and any extras."""
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    ckpt = {'params': state, 'arch': arch_options(network_opt)}
    if hasattr(net, 'width_spec'):
        ckpt['widths'] = net.width_spec()
    ckpt.update(extra)
    return ckpt


@dataclass
class LoadedNetwork:
    """A network rebuilt from a checkpoint and what the file says about it.

    ``kind`` is ``'dense'``, ``'pruned'`` (the file has a width spec) or ``'int8'`` (format ``vsrcompress-int8/1``:
    the fake-quantized network, its ``quant_config`` and, when measured, the ``conv_output_range`` the ``int8-ort``
    export needs). ``arch`` is the network_g options it was built from, ``widths`` its width spec (or None).
    """
    net: nn.Module
    kind: str = 'dense'
    conv_output_range: dict[str, torch.Tensor] | None = None
    quant_config: dict | None = None
    arch: dict = field(default_factory=dict)
    widths: dict | None = None

    @property
    def int8(self) -> bool:
        return self.kind == 'int8'


def load_network(path: str, network_opt: Mapping | None = None, param_key: str = 'params') -> LoadedNetwork:
    """Rebuild the network of any vsrcompress (dense, pruned, INT8) or official BasicSR checkpoint, loaded strictly.

    The one loader the scripts, exports, recipe and benchmarks use. INT8 checkpoints carry no ``params``: the float
    network is rebuilt from ``arch``/``widths`` and ``load_int8_checkpoint`` inserts the quantizers and restores
    weights and calibrated ranges.

    Args:
        path: Checkpoint file.
        network_opt: network_g options; needed for official checkpoints, which carry no ``arch`` entry.
        param_key: Which state dict of a float checkpoint to load (``params`` or ``params_ema``).
    """
    from basicsr.archs import build_network  # archs are basicsr-registered; the engines never call this

    from vsrcompress.quantization.int8_checkpoint import INT8_FORMAT, load_int8_checkpoint  # imports this module
    from vsrcompress.quantization.output_ranges import OUTPUT_RANGE_KEY

    ckpt = load_checkpoint(path)
    int8 = ckpt.get('format') == INT8_FORMAT
    opt = dict(ckpt.get('arch') or {})
    opt.update(arch_options(network_opt or {}))
    if 'type' not in opt:
        what = 'an INT8 checkpoint without an "arch" entry' if int8 else 'a checkpoint without an "arch" entry'
        raise ValueError(f'checkpoint: {path} is {what}; give the network_g options (type, num_feat, ...; '
                         '--arch/--arch-opt in the scripts) it was trained with.')
    widths = ckpt.get('widths') or (network_opt or {}).get('widths')
    if not int8:
        if widths:
            opt['widths'] = widths
        net = build_network(opt)
        load_state_strict(net, select_params(ckpt, path, param_key), path)
        return LoadedNetwork(net, kind='pruned' if ckpt.get('widths') else 'dense', arch=opt,
                             widths=widths or None)
    if widths:
        opt['widths'] = widths = _spynet_widths_from_weights(widths, ckpt)
    net = build_network(opt)
    load_int8_checkpoint(net, ckpt, 'checkpoint')
    ranges = ckpt.get(OUTPUT_RANGE_KEY)
    return LoadedNetwork(net.eval(), conv_output_range=dict(ranges) if ranges else None,
                         quant_config=dict(ckpt['quantization']['config']), kind='int8', arch=opt,
                         widths=widths or None)


def _spynet_widths_from_weights(widths: dict, ckpt: Mapping) -> dict:
    """``widths`` with SpyNet's rows read from the stored weight shapes when they are empty.

    Kept for INT8 checkpoints written by earlier versions, which stored ``'spynet': [[], ...]`` for a quantized
    SpyNet; ``width_spec()`` now counts every ``_ConvNd`` (``QuantConv2d`` included), so new files have the widths.
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
