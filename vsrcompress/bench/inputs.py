"""What the quality benchmarks read: a trained FP32 network and a footage dataset, the demo's by default.

``benchmark_qat``, ``benchmark_pruning_quality`` and ``quantization_sensitivity`` measure a trained network on real
footage (train split: calibration, fine-tuning; val split: PSNR). Their shared flags, defaults and checks live here,
so that a missing demo teacher or footage says once, the same way, how to make it, before any measurement.
"""
import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import torch
from torch import nn

from vsrcompress.checkpoint import load_network
from vsrcompress.export.cli_options import add_arch_arguments, network_options
from vsrcompress.footage import layout

DEMO_TEACHER = 'experiments/demo_basicvsr_prune_qat_teacher/models/net_g_latest.pth'
DEMO_FOOTAGE = 'datasets/demo'
MAKE_TEACHER = ('python scripts/make_demo_footage.py && python compress.py -opt '
                'options/demo/basicvsr_prune_qat_demo.yml (its first stage, teacher, writes it)')
T = TypeVar('T')


class InputError(ValueError):
    """A file's content does not fit the benchmark (found while loading, before any measurement)."""


@dataclass
class NetworkInputs:
    """The inputs every quality benchmark shares.

    Attributes:
        checkpoint: FP32 network, dense or pruned (vsrcompress or official BasicSR checkpoint).
        footage: Footage dataset folder with train and val splits.
        network_opt: network_g options for checkpoints without an ``arch`` entry (None: the checkpoint's).
        param_key: State dict to load: ``params`` or ``params_ema``.
        threads: torch CPU threads.
        val_clips: Validation clips measured (None: all).
        command: The command line, for the record.
    """
    checkpoint: str = DEMO_TEACHER
    footage: str = DEMO_FOOTAGE
    network_opt: dict | None = None
    param_key: str = 'params'
    threads: int = field(default_factory=torch.get_num_threads)
    val_clips: int | None = None
    command: str = ''


def at_least(minimum: int, **values: int | None) -> None:
    """ValueError naming the first of ``values`` (name -> value; None skipped) below ``minimum``."""
    for name, value in values.items():
        if value is not None and value < minimum:
            raise ValueError(f'{name}: must be >= {minimum}, got {value}')


def check_inputs(config: NetworkInputs, network: str = 'a dense or pruned FP32 vsrcompress checkpoint') -> None:
    """Refuse missing files and bad counts before any work; the demo defaults say how to make them."""
    at_least(1, threads=config.threads, val_clips=config.val_clips)
    if not os.path.isfile(config.checkpoint):
        how = (f'It is the demo teacher; make it with: {MAKE_TEACHER}.' if config.checkpoint == DEMO_TEACHER
               else f'Give {network}.')
        raise ValueError(f'checkpoint: {config.checkpoint} does not exist. {how}')
    for split in layout.SPLITS:
        meta = layout.meta_info_path(config.footage, split)
        if not os.path.isfile(meta):
            raise ValueError(f'footage: {config.footage} has no {split} split ({meta} is missing); make the demo '
                             f'footage with python scripts/make_demo_footage.py or prepare footage with '
                             f'scripts/prepare_footage.py')


def load_fp32_network(config: NetworkInputs, purpose: str) -> nn.Module:
    """The checkpoint's FP32 network, frozen in eval mode; an INT8 checkpoint or bad file is an ``InputError``
    (``purpose``: why FP32 is needed, for the message)."""
    try:
        loaded = load_network(config.checkpoint, config.network_opt, config.param_key)
    except (ValueError, KeyError) as err:
        raise InputError(f'checkpoint: {err}') from err
    if loaded.int8:
        raise InputError(f'checkpoint: {config.checkpoint} is an INT8 checkpoint; {purpose}')
    return loaded.net.eval().requires_grad_(False)


def charbonnier_loss() -> nn.Module:
    """The loss the fine-tuning benchmarks train with (BasicSR's, as the training options use)."""
    from basicsr.losses.basic_loss import CharbonnierLoss  # basicsr when measuring (vsrcompress makes it importable)

    return CharbonnierLoss(loss_weight=1.0, reduction='mean')


def spread(items: Sequence[T], count: int) -> list[T]:
    """``count`` items (at most all) evenly spaced from first to last: calibration that sees every clip."""
    count = min(count, len(items))
    return [items[round(i * (len(items) - 1) / max(count - 1, 1))] for i in range(count)]


def add_input_arguments(parser: argparse.ArgumentParser, name: str, checkpoint_help: str, footage_help: str) -> None:
    """The shared flags: ``--checkpoint``, ``--footage``, ``--threads``, ``--val-clips``, ``--out``, ``--name``
    (default ``name``) and the arch flags for official checkpoints."""
    threads = torch.get_num_threads()
    parser.add_argument('--checkpoint', default=DEMO_TEACHER,
                        help=f'{checkpoint_help} (default: the demo teacher, {DEMO_TEACHER})')
    parser.add_argument('--footage', default=DEMO_FOOTAGE,
                        help=f'footage dataset: {footage_help} (default {DEMO_FOOTAGE}, made by '
                             f'scripts/make_demo_footage.py)')
    parser.add_argument('--threads', type=int, default=threads, help=f'torch CPU threads (default {threads})')
    parser.add_argument('--val-clips', type=int, default=None, help='validation clips measured (default: all)')
    parser.add_argument('--out', default='results/benchmarks', help='output folder (default results/benchmarks)')
    parser.add_argument('--name', default=name, help=f'output file name without extension (default {name})')
    add_arch_arguments(parser)


def inputs_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace, command: str) -> dict:
    """The ``NetworkInputs`` fields from the shared flags (a bad ``--arch-opt`` is a usage error)."""
    try:
        network_opt = network_options(args.arch, args.arch_opt)
    except ValueError as err:
        parser.error(str(err))
    return {'checkpoint': args.checkpoint, 'footage': args.footage, 'network_opt': network_opt,
            'param_key': args.param_key, 'threads': args.threads, 'val_clips': args.val_clips, 'command': command}
