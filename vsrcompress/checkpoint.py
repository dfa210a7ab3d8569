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
                lines.append(f'  {title} ({len(items)}): ' + '; '.join(items[:10]) + (' ...' if len(items) > 10 else ''))
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


def build_network_from_checkpoint(path: str, network_opt: Mapping | None = None, param_key: str = 'params') -> nn.Module:
    """Rebuild a registered network (dense or pruned) from a checkpoint and load its weights strictly.

    Args:
        path: A vsrcompress or official BasicSR checkpoint.
        network_opt: network_g options; needed for official checkpoints, which carry no ``arch`` entry.
        param_key: Which state dict to load (``params`` or ``params_ema``).
    """
    from basicsr.archs import build_network  # archs are basicsr-registered; engines never call this

    ckpt = load_checkpoint(path)
    opt = dict(ckpt.get('arch') or {})
    opt.update(arch_options(network_opt or {}))
    if 'type' not in opt:
        raise ValueError(f'{path} carries no arch description; give network_g options (type, num_feat, ...).')
    widths = ckpt.get('widths') or (network_opt or {}).get('widths')
    if widths:
        opt['widths'] = widths
    net = build_network(opt)
    load_state_strict(net, select_params(ckpt, path, param_key), path)
    return net
