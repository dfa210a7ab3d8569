"""Quality of a pruned network: the teacher vs pruned (before fine-tuning) vs plain fine-tuning vs fine-tuning with
knowledge distillation (KD), in PSNR on the validation clips. Prints the tables and writes
``<out>/<name>.{json,md,png}`` (default results/benchmarks/pruning_quality).

The pruning engine runs directly on the network (no BasicSR model, no YAML):

1. Teacher: the checkpoint's dense network, frozen, and bicubic upsampling, on the whole validation clips (BasicSR's
   ``calculate_psnr``/``calculate_ssim`` on 8-bit RGB, the mean of clip means, as ``vsrcompress.recipe.clip_quality``
   measures the recipe's report).
2. Pruned: a copy with ``--ratio`` of the channels of every part removed (trunk, blocks, tail, SpyNet, IconVSR's EDVR;
   ``--criterion``, uniform ranking, round_to 4, min_width 4, MACs counted at ``--reference-size``: the demo recipe's
   prune stage).
3. Two fine-tunes of that same pruned copy for ``--iters`` steps, interleaved on the same batches (one step of each on
   every batch, so both see identical data): plain (Charbonnier to GT) and KD (Charbonnier to GT + ``--distill-weight``
   x Charbonnier to the frozen teacher's output, as ``DistillVSRModel``). Batches come from ``FootageRecurrentDataset``
   with the demo's training options (``--frames``-frame windows, ``--gt-size`` crops, flips and rotations); Adam with
   betas (0.9, 0.99), SpyNet at ``--flow-lr-mul`` x ``--lr``, cosine decay to 1e-6, as the demo recipe.
   Both are measured every ``--eval-every`` steps (the curves) and at the end. With ``--feature-distill-weight W``
   a third run, KD + hidden states, adds W x the attention-map distance between the student's and the teacher's
   trunk outputs at every time step (``vsrcompress.feature_distillation``, as ``train.feature_distill_opt``).

Targets of the issue, checked in the report: after KD fine-tuning within 0.3 dB of the teacher; KD better than plain
fine-tuning at equal iterations.

    python scripts/make_demo_footage.py                                  # datasets/demo
    python compress.py -opt options/demo/basicvsr_prune_qat_demo.yml     # its teacher stage trains the default net
    python scripts/benchmark_pruning_quality.py                          # that teacher on datasets/demo
    python scripts/benchmark_pruning_quality.py --checkpoint experiments/x/models/net_g_latest.pth \\
        --footage datasets/mine --ratio 0.75 --iters 1000 --eval-every 100
"""
import argparse
import copy
import os
import platform
import random
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn

import vsrcompress  # noqa: F401  (registers the archs and makes basicsr importable: before any basicsr import)
from basicsr.losses.basic_loss import CharbonnierLoss  # after vsrcompress, on purpose
from vsrcompress.data.footage_dataset import FootageRecurrentDataset, FootageTestDataset
from vsrcompress.export import footage_options, footage_test_dataset, load_deployable_network
from vsrcompress.export.cli_options import add_arch_arguments, network_options
from vsrcompress.feature_distillation import feature_distill_loss, recorded_outputs
from vsrcompress.footage import layout
from vsrcompress.models.recurrent_vsr_model import FLOW_PARTS
from vsrcompress.pruning import CRITERIA, PARTS, PruningConfig, count_complexity, parse_pruning_config, prune_network
from vsrcompress.pruning.complexity import clip_lengths
from vsrcompress.recipe.clip_quality import BicubicUpsampler, clip_quality
from vsrcompress.atomic_files import write_benchmark_result, write_figure

DEFAULT_CHECKPOINT = 'experiments/demo_basicvsr_prune_qat_teacher/models/net_g_latest.pth'
DEFAULT_FOOTAGE = 'datasets/demo'
KD_TARGET_DB = 0.3
ETA_MIN = 1e-6  # the demo recipe's cosine floor
HIDDEN_STATES = ['backward_trunk', 'forward_trunk']
MAKE_TEACHER = ('python scripts/make_demo_footage.py && python compress.py -opt '
                'options/demo/basicvsr_prune_qat_demo.yml (its first stage, teacher, writes it)')


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--checkpoint', default=DEFAULT_CHECKPOINT,
                        help=f'dense FP32 teacher (default: the demo teacher, {DEFAULT_CHECKPOINT})')
    parser.add_argument('--footage', default=DEFAULT_FOOTAGE,
                        help=f'footage dataset: train split for fine-tuning, val split for PSNR (default '
                             f'{DEFAULT_FOOTAGE}, made by scripts/make_demo_footage.py)')
    parser.add_argument('--ratio', type=float, default=0.5,
                        help='fraction of the channels of every part removed, in (0, 1) (default 0.5)')
    parser.add_argument('--criterion', choices=CRITERIA, default='l1',
                        help='channel importance (default l1; taylor scores on the first training batch)')
    parser.add_argument('--reference-size', type=int, nargs=2, default=[64, 96], metavar=('H', 'W'),
                        help='LR size at which MACs per frame are counted (default 64 96, the demo frames)')
    parser.add_argument('--iters', type=int, default=200, help='fine-tuning steps of each method (default 200)')
    parser.add_argument('--eval-every', type=int, default=50,
                        help='steps between two PSNR measurements of the curves (default 50)')
    parser.add_argument('--lr', type=float, default=5e-4, help='Adam learning rate (default 5e-4, the demo\'s)')
    parser.add_argument('--flow-lr-mul', type=float, default=0.125,
                        help='learning-rate factor of SpyNet and EDVR (default 0.125, the demo\'s train.flow_lr_mul)')
    parser.add_argument('--distill-weight', type=float, default=1.0,
                        help='weight of the loss to the teacher in KD fine-tuning (default 1, the demo\'s)')
    parser.add_argument('--feature-distill-weight', type=float, default=0.0,
                        help='> 0 adds a third run: KD + this weight x hidden-state (attention map) distillation')
    parser.add_argument('--batch', type=int, default=2, help='windows per training batch (default 2, the demo\'s)')
    parser.add_argument('--frames', type=int, default=3, help='frames per training window (default 3, the demo\'s)')
    parser.add_argument('--gt-size', type=int, default=256,
                        help='GT crop of the training windows; LR crop = gt-size / scale (default 256, the demo\'s)')
    parser.add_argument('--val-clips', type=int, default=None, help='validation clips measured (default: all)')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads(),
                        help=f'torch CPU threads (default {torch.get_num_threads()})')
    parser.add_argument('--seed', type=int, default=0, help='seed of the batches, crops and flips (default 0)')
    parser.add_argument('--out', default='results/benchmarks', help='output folder (default results/benchmarks)')
    parser.add_argument('--name', default='pruning_quality',
                        help='output file name without extension (default pruning_quality)')
    add_arch_arguments(parser)
    args = parser.parse_args(argv)
    positive = {'--iters': args.iters, '--eval-every': args.eval_every, '--batch': args.batch,
                '--threads': args.threads}
    for flag, value in positive.items():
        if value < 1:
            parser.error(f'{flag}: must be >= 1, got {value}')
    if not 0 < args.ratio < 1:
        parser.error(f'--ratio: the fraction of channels removed must be in (0, 1), got {args.ratio}')
    if args.frames < 2:
        parser.error(f'--frames: must be >= 2 (a recurrent network needs a sequence), got {args.frames}')
    if not args.lr > 0 or not args.flow_lr_mul >= 0 or not args.distill_weight > 0 or args.feature_distill_weight < 0:
        parser.error(f'--lr and --distill-weight must be > 0, --flow-lr-mul and --feature-distill-weight >= 0, got '
                     f'{args.lr}, {args.distill_weight}, {args.flow_lr_mul} and {args.feature_distill_weight}')
    if args.val_clips is not None and args.val_clips < 1:
        parser.error(f'--val-clips: must be >= 1, got {args.val_clips}')
    try:
        args.pruning = pruning_config(args)
        args.network_opt = network_options(args.arch, args.arch_opt)
    except ValueError as err:
        parser.error(str(err))
    if not os.path.isfile(args.checkpoint):
        parser.error(f'--checkpoint: {args.checkpoint} does not exist. '
                     + (f'It is the demo teacher; make it with: {MAKE_TEACHER}.' if args.checkpoint ==
                        DEFAULT_CHECKPOINT else 'Give a dense FP32 vsrcompress checkpoint.'))
    for split in layout.SPLITS:
        if not os.path.isfile(layout.meta_info_path(args.footage, split)):
            parser.error(f'--footage: {args.footage} has no {split} split ({layout.meta_info_path(args.footage, split)}'
                         f' is missing); make the demo footage with python scripts/make_demo_footage.py or prepare '
                         f'footage with scripts/prepare_footage.py')
    os.makedirs(args.out, exist_ok=True)
    if not os.access(args.out, os.W_OK):
        parser.error(f'--out: {args.out} is not writable')
    return args


def pruning_config(args: argparse.Namespace) -> PruningConfig:
    """The demo recipe's prune stage with this run's ratio, criterion and reference size (errors name the key)."""
    return parse_pruning_config({'criterion': args.criterion, 'ratio': args.ratio,
                                 'parts': list(PARTS),
                                 'reference_size': list(args.reference_size), 'round_to': 4, 'min_width': 4,
                                 'steps': 1})


def load_inputs(args: argparse.Namespace) -> tuple[nn.Module, FootageRecurrentDataset, FootageTestDataset]:
    """The frozen teacher, the training windows and the validation clips; bad files fail here, before any work."""
    try:
        loaded = load_deployable_network(args.checkpoint, args.network_opt, args.param_key)
    except (ValueError, KeyError) as err:
        raise SystemExit(f'--checkpoint: {err}') from err
    if loaded.int8:
        raise SystemExit(f'--checkpoint: {args.checkpoint} is an INT8 checkpoint; the benchmark prunes an FP32 '
                         'network.')
    teacher = loaded.net.eval().requires_grad_(False)
    shortest, _ = clip_lengths(teacher)
    if args.frames < shortest:
        raise SystemExit(f'--frames: {type(teacher).__name__} needs windows of at least {shortest} frames, '
                         f'got {args.frames}')
    scale = int(teacher.scale)
    try:
        train_set = FootageRecurrentDataset({
            **footage_options(args.footage, 'train', scale), 'num_frame': args.frames, 'gt_size': args.gt_size,
            'interval_list': [1], 'random_reverse': False, 'use_hflip': True, 'use_rot': True,
            'batch_size_per_gpu': args.batch})
        val_set = footage_test_dataset(args.footage, 'val', scale)
    except (ValueError, KeyError, FileNotFoundError) as err:
        raise SystemExit(f'--footage/--frames/--gt-size: {err}') from err
    return teacher, train_set, val_set


class BatchSampler:
    """Random training batches of whole ``FootageRecurrentDataset`` items, reproducible from one seed.

    The dataset crops, flips and rotates with Python's ``random``: it is seeded here too, so a seed fixes the batches.
    """

    def __init__(self, dataset: FootageRecurrentDataset, batch: int, seed: int):
        self.dataset, self.batch = dataset, batch
        self.gen = torch.Generator().manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        items = [self.dataset[int(i)] for i in torch.randint(len(self.dataset), (self.batch,), generator=self.gen)]
        return torch.stack([item['lq'] for item in items]), torch.stack([item['gt'] for item in items])


def quality(net: nn.Module, dataset: FootageTestDataset, max_clips: int | None) -> dict:
    """PSNR/SSIM (dB, mean of clip means) and each clip's mean PSNR."""
    result = clip_quality(net, dataset, max_clips)
    per_clip = {clip: statistics.fmean(v['psnr']) for clip, v in result['per_frame'].items()}
    return {'psnr': result['psnr'], 'ssim': result['ssim'], 'psnr_per_clip': per_clip}


def complexity(net: nn.Module, reference_size: tuple[int, int]) -> dict:
    """Params, MACs per frame at the reference LR size (torch-pruning's counter) and the width spec."""
    counted = count_complexity(net, reference_size)
    return {'params': counted['params'], 'macs_per_frame': counted['macs_per_frame'],
            'widths': net.width_spec() if hasattr(net, 'width_spec') else None}


class FineTune:
    """One fine-tuning run of a pruned copy: Adam (SpyNet at a lower rate), cosine decay, Charbonnier losses.

    Args:
        net: The student (trained in place).
        teacher: Frozen network whose output is the distillation target; None fine-tunes against GT only.
        args: ``lr``, ``flow_lr_mul``, ``iters``, ``distill_weight``.
        feature_weight: Weight of the hidden-state (attention map) loss to the teacher; 0 leaves it out.
    """

    def __init__(self, net: nn.Module, teacher: nn.Module | None, args: argparse.Namespace,
                 feature_weight: float = 0.0):
        self.net, self.teacher = net.train().requires_grad_(True), teacher
        self.distill_weight, self.feature_weight = args.distill_weight, feature_weight
        self.hidden_states = HIDDEN_STATES if feature_weight else []
        flow = [p for n, p in net.named_parameters() if any(part in n for part in FLOW_PARTS)]
        other = [p for n, p in net.named_parameters() if not any(part in n for part in FLOW_PARTS)]
        groups = [{'params': other, 'lr': args.lr}, {'params': flow, 'lr': args.lr * args.flow_lr_mul}]
        self.optimizer = torch.optim.Adam([g for g in groups if g['params']], betas=(0.9, 0.99), weight_decay=0)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=args.iters, eta_min=ETA_MIN)
        self.loss_fn = CharbonnierLoss(loss_weight=1.0, reduction='mean')
        self.losses: list[float] = []
        self.seconds = 0.0

    def step(self, lq: torch.Tensor, gt: torch.Tensor) -> None:
        started = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        with recorded_outputs(self.net, self.hidden_states) as student_feats:
            output = self.net(lq)
        loss = self.loss_fn(output, gt)
        if self.teacher is not None:
            with torch.no_grad(), recorded_outputs(self.teacher, self.hidden_states) as teacher_feats:
                target = self.teacher(lq)
            loss = loss + self.distill_weight * self.loss_fn(output, target)
            if self.feature_weight:
                loss = loss + self.feature_weight * feature_distill_loss(student_feats, teacher_feats, 'attention')
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.losses.append(loss.item())
        self.seconds += time.perf_counter() - started

    def summary(self) -> dict:
        """Steps, seconds and the mean loss of the first and last tenth of the steps."""
        tail = max(1, len(self.losses) // 10)
        return {'iters': len(self.losses), 'train_s': self.seconds, 'loss_first': statistics.fmean(self.losses[:tail]),
                'loss_last': statistics.fmean(self.losses[-tail:])}


def eval_points(iters: int, every: int) -> list[int]:
    """Iterations at which the curves are measured: 0 (the pruned network), every ``every`` steps, and the last."""
    return sorted({0, *range(every, iters + 1, every), iters})


def fine_tune_all(pruned: nn.Module, teacher: nn.Module, train_set: FootageRecurrentDataset,
                  val_set: FootageTestDataset, args: argparse.Namespace) -> tuple[dict[str, FineTune], list[dict]]:
    """Plain, KD (and KD + hidden states) fine-tuning of copies of ``pruned``, one step of each per batch; returns
    the runs and the PSNR curve (``[{'iter', 'plain', 'kd', ...}, ...]``)."""
    runs = {'plain': FineTune(copy.deepcopy(pruned), None, args), 'kd': FineTune(copy.deepcopy(pruned), teacher, args)}
    if args.feature_distill_weight:
        runs['kd_feat'] = FineTune(copy.deepcopy(pruned), teacher, args, args.feature_distill_weight)
    sampler = BatchSampler(train_set, args.batch, args.seed)
    points = eval_points(args.iters, args.eval_every)
    curve = []
    for it in range(args.iters + 1):
        if it > 0:
            lq, gt = sampler.next()
            for run_ in runs.values():
                run_.step(lq, gt)
        if it in points:
            row = {'iter': it, **{m: quality(r.net, val_set, args.val_clips)['psnr'] for m, r in runs.items()}}
            curve.append(row)
            print(f'  iter {it:5d}: ' + ', '.join(f'{m} {row[m]:.3f} dB' for m in runs)
                  + f" (train {' + '.join(f'{r.seconds:.0f} s' for r in runs.values())})", flush=True)
    return runs, curve


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def machine_info(threads: int) -> dict:
    return {'when': time.strftime('%Y-%m-%d %H:%M:%S %Z'), 'host': platform.node(), 'platform': platform.platform(),
            'processor': platform.processor() or platform.machine(), 'cpus': os.cpu_count(), 'threads': threads,
            'python': platform.python_version(), 'torch': torch.__version__, 'load_average_before': load_average()}


def targets(rows: dict[str, dict]) -> list[dict]:
    """The issue's two targets, measured value vs limit."""
    drop = rows['teacher']['psnr'] - rows['kd']['psnr']
    gain = rows['kd']['psnr'] - rows['plain']['psnr']
    return [{'target': f'KD fine-tuned PSNR within {KD_TARGET_DB} dB of the teacher', 'value': drop,
             'unit': 'dB below the teacher', 'comparison': '<=', 'limit': KD_TARGET_DB, 'met': drop <= KD_TARGET_DB},
            {'target': 'KD better than plain fine-tuning at equal iterations', 'value': gain,
             'unit': 'dB above plain', 'comparison': '>', 'limit': 0.0, 'met': gain > 0}]


def run(args: argparse.Namespace, command: str) -> dict:
    """Every measurement of the module docstring, as one plain-data result (``command``: the line that asked)."""
    torch.set_num_threads(args.threads)
    machine = machine_info(args.threads)
    teacher, train_set, val_set = load_inputs(args)
    size = tuple(args.reference_size)
    pruned = copy.deepcopy(teacher)
    samples = [BatchSampler(train_set, args.batch, args.seed + 1).next()] if args.criterion == 'taylor' else None
    started = time.perf_counter()
    report = prune_network(pruned, args.pruning, samples, CharbonnierLoss(loss_weight=1.0, reduction='mean'))
    prune_s = time.perf_counter() - started
    pruned.eval().requires_grad_(False)
    print(f"pruned {args.ratio:g} ({args.criterion}) in {prune_s:.1f} s: {report['params_before']:,} -> "
          f"{report['params_after']:,} params, {report['mac_fraction']:.1%} of the MACs", flush=True)

    clips = min(len(val_set), args.val_clips or len(val_set))
    print(f'teacher, bicubic and pruned on {clips} validation clips', flush=True)
    rows = {'teacher': {**complexity(teacher, size), **quality(teacher, val_set, args.val_clips)},
            'bicubic': {'params': 0, 'macs_per_frame': None, 'widths': None,
                        **quality(BicubicUpsampler(int(teacher.scale)), val_set, args.val_clips)},
            'pruned': {**complexity(pruned, size), **quality(pruned, val_set, args.val_clips)}}
    print(f"teacher {rows['teacher']['psnr']:.3f} dB, bicubic {rows['bicubic']['psnr']:.3f} dB, pruned "
          f"{rows['pruned']['psnr']:.3f} dB; fine-tuning plain and KD, {args.iters} steps each", flush=True)
    runs, curve = fine_tune_all(pruned, teacher, train_set, val_set, args)
    shape = {k: rows['pruned'][k] for k in ('params', 'macs_per_frame', 'widths')}  # fine-tuning keeps the shapes
    for method, run_ in runs.items():
        rows[method] = {**shape, **run_.summary(), **quality(run_.net, val_set, args.val_clips)}
    for row in rows.values():
        row['delta_db'] = row['psnr'] - rows['teacher']['psnr']
    machine['load_average_after'] = load_average()
    return {
        'command': command,
        'machine': machine,
        'config': {'checkpoint': args.checkpoint, 'footage': args.footage, 'network': type(teacher).__name__,
                   'scale': int(teacher.scale), 'pruning': args.pruning.to_dict(), 'prune_s': prune_s,
                   'engine_mac_fraction': report['mac_fraction'], 'removed_fraction': report['removed_fraction'],
                   'iters': args.iters, 'eval_every': args.eval_every, 'lr': args.lr, 'flow_lr_mul': args.flow_lr_mul,
                   'eta_min': ETA_MIN, 'distill_weight': args.distill_weight,
                   'feature_distill_weight': args.feature_distill_weight, 'batch': args.batch,
                   'frames': args.frames, 'gt_size': args.gt_size, 'train_windows': len(train_set),
                   'val_clips': clips, 'seed': args.seed},
        'quality': [{'name': name, **row} for name, row in rows.items()],
        'curve': curve,
        'targets': targets(rows),
    }


LABELS = {'teacher': 'teacher (dense)', 'bicubic': 'bicubic', 'pruned': 'pruned, before fine-tuning',
          'plain': 'pruned + plain fine-tune', 'kd': 'pruned + KD fine-tune',
          'kd_feat': 'pruned + KD + hidden-state fine-tune'}
CURVE_LABELS = {'plain': 'plain (dB)', 'kd': 'KD (dB)', 'kd_feat': 'KD + hidden states (dB)'}


def markdown(result: dict) -> str:
    c, m = result['config'], result['machine']
    p = c['pruning']
    lines = ['# Pruning quality: teacher vs pruned vs plain and KD fine-tuning', '', f"Command: `{result['command']}`",
             '',
             f"Teacher: {c['network']} x{c['scale']} from `{c['checkpoint']}`. Pruned: ratio "
             f"{p['ratio']['trunk']:g} of every part ({', '.join(p['ratio'])}), criterion {p['criterion']}, "
             f"{p['ranking']} ranking, round_to {p['round_to']}, min_width {p['min_width']}; MACs per frame at "
             f"{p['reference_size'][0]}x"
             f"{p['reference_size'][1]} LR (torch-pruning's counter). Fine-tuning: {c['iters']} steps each, "
             f"interleaved on the same batches ({c['batch']} windows of {c['frames']} frames, {c['gt_size']} px GT "
             f"crops, flips/rotations, seed {c['seed']}), Adam lr {c['lr']:g} (SpyNet x{c['flow_lr_mul']:g}) with "
             f"cosine decay to {c['eta_min']:g}; plain: Charbonnier to GT; KD: Charbonnier to GT + "
             f"{c['distill_weight']:g} x Charbonnier to the teacher's output"
             + (f"; KD + hidden states: KD + {c['feature_distill_weight']:g} x attention-map distance of the trunk "
                f"outputs" if c.get('feature_distill_weight') else '') + f". PSNR/SSIM on {c['val_clips']} whole "
             f"validation clips of `{c['footage']}` (BasicSR's metrics on 8-bit RGB, mean of clip means).", '',
             f"Machine: {m['processor']}, {m['cpus']} CPUs ({m['threads']} torch threads); {m['platform']}; torch "
             f"{m['torch']}; load average (1/5/15 min) {m['load_average_before']} before, {m['load_average_after']} "
             f"after; {m['when']}.", '',
             '| network | params | MMACs/frame | PSNR (dB) | vs teacher (dB) | SSIM | fine-tune (s) |',
             '|---|---|---|---|---|---|---|']
    for r in result['quality']:
        macs = '-' if r['macs_per_frame'] is None else f"{r['macs_per_frame'] / 1e6:.1f}"
        seconds = f"{r['train_s']:.1f}" if 'train_s' in r else '-'
        lines.append(f"| {LABELS[r['name']]} | {r['params']:,} | {macs} | {r['psnr']:.3f} | {r['delta_db']:+.3f} | "
                     f"{r['ssim']:.4f} | {seconds} |")
    methods = [m for m in CURVE_LABELS if m in result['curve'][0]]
    lines += ['', '| iteration | ' + ' | '.join(CURVE_LABELS[m] for m in methods) + ' | KD - plain (dB) |',
              '|---' * (len(methods) + 2) + '|']
    lines += [f"| {row['iter']} | " + ' | '.join(f'{row[m]:.3f}' for m in methods)
              + f" | {row['kd'] - row['plain']:+.3f} |" for row in result['curve']]
    lines += ['', '| target | measured | limit | met |', '|---|---|---|---|']
    for t in result['targets']:
        lines.append(f"| {t['target']} | {t['value']:.3f} {t['unit']} | {t['comparison']} {t['limit']:g} | "
                     f"{'yes' if t['met'] else 'no'} |")
    return '\n'.join(lines) + '\n'


def plot(result: dict, path: str) -> None:
    """PSNR vs fine-tuning iteration for plain and KD, teacher and bicubic as horizontal lines; the right panel
    leaves out iteration 0 (the pruned network), whose drop would flatten the differences between the methods."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    rows = {r['name']: r for r in result['quality']}
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, curve in zip(axes, (result['curve'], result['curve'][1:])):
        iters = [row['iter'] for row in curve]
        ax.plot(iters, [row['plain'] for row in curve], 'o-', color='tab:orange', label='plain fine-tune (GT)')
        ax.plot(iters, [row['kd'] for row in curve], 's-', color='tab:green', label='KD fine-tune (GT + teacher)')
        if 'kd_feat' in curve[0]:
            ax.plot(iters, [row['kd_feat'] for row in curve], '^-', color='tab:purple', label='KD + hidden states')
        ax.axhline(rows['teacher']['psnr'], color='tab:blue', label=f"teacher {rows['teacher']['psnr']:.2f} dB")
        ax.axhline(rows['teacher']['psnr'] - KD_TARGET_DB, color='tab:blue', linestyle=':',
                   label=f'teacher - {KD_TARGET_DB} dB (target)')
        ax.axhline(rows['bicubic']['psnr'], color='gray', linestyle='--',
                   label=f"bicubic {rows['bicubic']['psnr']:.2f} dB")
        ax.set(xlabel='fine-tuning iteration', ylabel='validation PSNR (dB)')
        ax.grid(alpha=0.3)
    axes[0].set_title(f"{result['config']['network']} pruned {result['config']['pruning']['ratio']['trunk']:g}: "
                      f"from the pruned network (iteration 0, {rows['pruned']['psnr']:.2f} dB)")
    axes[1].set_title('the same, without iteration 0')
    axes[0].legend(fontsize=8, loc='lower right')
    fig.tight_layout()
    write_figure(path, fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = ' '.join(['python', 'scripts/benchmark_pruning_quality.py', *(sys.argv[1:] if argv is None else argv)])
    result = run(args, command)
    write_benchmark_result(os.path.join(args.out, args.name), result, markdown(result), plot)
    return 0


if __name__ == '__main__':
    sys.exit(main())
