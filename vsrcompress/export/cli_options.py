"""Network options from the command line, for official checkpoints that carry no ``arch`` entry.

``--arch IconVSRNet --arch-opt num_feat=64 --arch-opt num_block=30`` becomes the ``network_g`` dict
``{'type': 'IconVSRNet', 'num_feat': 64, 'num_block': 30}`` that ``load_network`` takes.
"""
import argparse

import yaml


def add_arch_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--arch``, ``--arch-opt`` and ``--param-key`` to a script's parser."""
    parser.add_argument('--arch', help='network type for checkpoints without an "arch" entry (official BasicSR '
                                       'ones): BasicVSRNet or IconVSRNet')
    parser.add_argument('--arch-opt', action='append', default=[], metavar='KEY=VALUE',
                        help='network option for --arch, repeatable, e.g. num_feat=64 num_block=30 scale=4')
    parser.add_argument('--param-key', default='params', help='state dict to load: params or params_ema')


def network_options(arch: str | None, arch_opts: list[str]) -> dict | None:
    """The network_g dict for ``load_network``; None when nothing was given."""
    if arch is None and not arch_opts:
        return None
    options = {'type': arch} if arch else {}
    for item in arch_opts:
        key, sep, value = item.partition('=')
        if not sep or not key:
            raise ValueError(f'--arch-opt: expected KEY=VALUE, got {item!r}')
        options[key.strip()] = yaml.safe_load(value)
    return options
