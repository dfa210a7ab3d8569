"""Quality of a pruned network: the teacher vs pruned (before fine-tuning) vs plain fine-tuning vs fine-tuning with
knowledge distillation (KD), in PSNR on the validation clips.

The pruning engine runs directly on the network (no BasicSR model, no YAML):

1. Teacher: the checkpoint's dense network, frozen, and bicubic upsampling, on the whole validation clips
   (``vsrcompress.metrics``, as the recipe's report measures them).
2. Pruned: a copy with ``ratio`` of the channels of every part removed (trunk, blocks, tail, SpyNet, IconVSR's EDVR;
   ``criterion``, uniform ranking, round_to 4, min_width 4, MACs counted at ``reference_size``: the demo recipe's
   prune stage).
3. Two fine-tunes of that same pruned copy for ``iters`` steps, interleaved on the same batches (one step of each on
   every batch, so both see identical data): plain (Charbonnier to GT) and KD (Charbonnier to GT + ``distill_weight``
   x Charbonnier to the frozen teacher's output, as ``DistillVSRModel``). Batches come from ``FootageRecurrentDataset``
   with the demo's training options (``frames``-frame windows, ``gt_size`` crops, flips and rotations); Adam with
   betas (0.9, 0.99), SpyNet at ``flow_lr_mul`` x ``lr``, cosine decay to 1e-6, as the demo recipe.
   Both are measured every ``eval_every`` steps (the curves) and at the end. With ``feature_distill_weight`` W > 0
   a third run, KD + hidden states, adds W x the attention-map distance between the student's and the teacher's
   trunk outputs at every time step (``vsrcompress.feature_distillation``, as ``train.feature_distill_opt``).

Targets of the issue, checked in the report: after KD fine-tuning within 0.3 dB of the teacher; KD better than plain
fine-tuning at equal iterations.
"""
import copy
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vsrcompress.atomic_files import write_figure
from vsrcompress.bench.inputs import (InputError, NetworkInputs, at_least, charbonnier_loss, check_inputs,
                                      load_fp32_network)
from vsrcompress.bench.machine import load_average, machine_info, machine_line
from vsrcompress.data.footage_dataset import FootageRecurrentDataset, FootageTestDataset
from vsrcompress.export import footage_options, footage_test_dataset
from vsrcompress.feature_distillation import feature_distill_loss, recorded_outputs
from vsrcompress.metrics import BicubicUpsampler, clip_summary
from vsrcompress.network_parts import FLOW_PARTS, HIDDEN_STATE_LAYERS
from vsrcompress.pruning import (CRITERIA, PRUNING_PARTS, PruningConfig, count_complexity, parse_pruning_config,
                                 prune_network)
from vsrcompress.pruning.complexity import clip_lengths

KD_TARGET_DB = 0.3
ETA_MIN = 1e-6  # the demo recipe's cosine floor


@dataclass
class PruningQualityConfig(NetworkInputs):
    """What ``run`` measures (and ``NetworkInputs``: checkpoint, footage, threads, validation clips).

    Attributes:
        ratio: Fraction of the channels of every part removed, in (0, 1).
        criterion: Channel importance (``CRITERIA``; taylor scores on the first training batch).
        reference_size: LR (height, width) at which MACs per frame are counted.
        iters: Fine-tuning steps of each method.
        eval_every: Steps between two PSNR measurements of the curves.
        lr: Adam learning rate.
        flow_lr_mul: Learning-rate factor of SpyNet and EDVR.
        distill_weight: Weight of the loss to the teacher in KD fine-tuning.
        feature_distill_weight: > 0 adds a third run: KD + this weight x hidden-state (attention map) distillation.
        batch: Windows per training batch.
        frames: Frames per training window.
        gt_size: GT crop of the training windows (LR crop = gt_size / scale).
        seed: Seed of the batches, crops and flips.
    """
    ratio: float = 0.5
    criterion: str = 'l1'
    reference_size: tuple[int, int] = (64, 96)
    iters: int = 200
    eval_every: int = 50
    lr: float = 5e-4
    flow_lr_mul: float = 0.125
    distill_weight: float = 1.0
    feature_distill_weight: float = 0.0
    batch: int = 2
    frames: int = 3
    gt_size: int = 256
    seed: int = 0


def check(config: PruningQualityConfig) -> None:
    """Refuse a configuration that cannot run, before any work (errors name the field and what is allowed)."""
    at_least(1, iters=config.iters, eval_every=config.eval_every, batch=config.batch)
    at_least(2, frames=config.frames)  # a recurrent network needs a sequence
    if not 0 < config.ratio < 1:
        raise ValueError(f'ratio: the fraction of channels removed must be in (0, 1), got {config.ratio}')
    if config.criterion not in CRITERIA:
        raise ValueError(f'criterion: {config.criterion!r}; allowed: {list(CRITERIA)}')
    if not config.lr > 0 or not config.flow_lr_mul >= 0 or not config.distill_weight > 0 or \
            config.feature_distill_weight < 0:
        raise ValueError(f'lr and distill_weight must be > 0, flow_lr_mul and feature_distill_weight >= 0, got '
                         f'{config.lr}, {config.distill_weight}, {config.flow_lr_mul} and '
                         f'{config.feature_distill_weight}')
    pruning_config(config)
    check_inputs(config, 'a dense FP32 vsrcompress checkpoint')


def pruning_config(config: PruningQualityConfig) -> PruningConfig:
    """The demo recipe's prune stage with this run's ratio, criterion and reference size (errors name the key)."""
    return parse_pruning_config({'criterion': config.criterion, 'ratio': config.ratio,
                                 'parts': list(PRUNING_PARTS),
                                 'reference_size': list(config.reference_size), 'round_to': 4, 'min_width': 4,
                                 'steps': 1})


def _load_inputs(config: PruningQualityConfig) -> tuple[nn.Module, FootageRecurrentDataset, FootageTestDataset]:
    """The frozen teacher, the training windows and the validation clips; bad files fail here, before any work."""
    teacher = load_fp32_network(config, 'the benchmark prunes an FP32 network.')
    shortest, _ = clip_lengths(teacher)
    if config.frames < shortest:
        raise InputError(f'frames: {type(teacher).__name__} needs windows of at least {shortest} frames, '
                         f'got {config.frames}')
    scale = int(teacher.scale)
    try:
        train_set = FootageRecurrentDataset({
            **footage_options(config.footage, 'train', scale), 'num_frame': config.frames, 'gt_size': config.gt_size,
            'interval_list': [1], 'random_reverse': False, 'use_hflip': True, 'use_rot': True,
            'batch_size_per_gpu': config.batch})
        val_set = footage_test_dataset(config.footage, 'val', scale)
    except (ValueError, KeyError, FileNotFoundError) as err:
        raise InputError(f'footage/frames/gt_size: {err}') from err
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
        config: ``lr``, ``flow_lr_mul``, ``iters``, ``distill_weight``.
        feature_weight: Weight of the hidden-state (attention map) loss to the teacher; 0 leaves it out.
    """

    def __init__(self, net: nn.Module, teacher: nn.Module | None, config: PruningQualityConfig,
                 feature_weight: float = 0.0):
        self.net, self.teacher = net.train().requires_grad_(True), teacher
        self.distill_weight, self.feature_weight = config.distill_weight, feature_weight
        self.hidden_states = list(HIDDEN_STATE_LAYERS) if feature_weight else []
        flow = [p for n, p in net.named_parameters() if any(part in n for part in FLOW_PARTS)]
        other = [p for n, p in net.named_parameters() if not any(part in n for part in FLOW_PARTS)]
        groups = [{'params': other, 'lr': config.lr}, {'params': flow, 'lr': config.lr * config.flow_lr_mul}]
        self.optimizer = torch.optim.Adam([g for g in groups if g['params']], betas=(0.9, 0.99), weight_decay=0)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=config.iters, eta_min=ETA_MIN)
        self.loss_fn = charbonnier_loss()
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


def fine_tune_all(pruned: nn.Module, pruned_quality: dict, teacher: nn.Module, train_set: FootageRecurrentDataset,
                  val_set: FootageTestDataset, config: PruningQualityConfig, log: Callable[[str], None]
                  ) -> tuple[dict[str, FineTune], list[dict], dict[str, dict]]:
    """Plain, KD (and KD + hidden states) fine-tuning of copies of ``pruned``, one step of each per batch.

    Each network is validated once per curve point (at 0 all are ``pruned``, whose ``clip_summary`` is
    ``pruned_quality``). Returns the runs, the PSNR curve (``[{'iter', 'plain', 'kd', ...}, ...]``) and each run's
    ``clip_summary`` after its last step.
    """
    runs = {'plain': FineTune(copy.deepcopy(pruned), None, config),
            'kd': FineTune(copy.deepcopy(pruned), teacher, config)}
    if config.feature_distill_weight:
        runs['kd_feat'] = FineTune(copy.deepcopy(pruned), teacher, config, config.feature_distill_weight)
    sampler = BatchSampler(train_set, config.batch, config.seed)
    points = eval_points(config.iters, config.eval_every)
    curve, quality = [], {}
    for it in range(config.iters + 1):
        if it > 0:
            lq, gt = sampler.next()
            for run_ in runs.values():
                run_.step(lq, gt)
        if it in points:
            quality = {m: pruned_quality if it == 0 else clip_summary(r.net, val_set, config.val_clips)
                       for m, r in runs.items()}
            row = {'iter': it, **{m: q['psnr'] for m, q in quality.items()}}
            curve.append(row)
            log(f'  iter {it:5d}: ' + ', '.join(f'{m} {row[m]:.3f} dB' for m in runs)
                + f" (train {' + '.join(f'{r.seconds:.0f} s' for r in runs.values())})")
    return runs, curve, quality


def targets(rows: dict[str, dict]) -> list[dict]:
    """The issue's two targets, measured value vs limit."""
    drop = rows['teacher']['psnr'] - rows['kd']['psnr']
    gain = rows['kd']['psnr'] - rows['plain']['psnr']
    return [{'target': f'KD fine-tuned PSNR within {KD_TARGET_DB} dB of the teacher', 'value': drop,
             'unit': 'dB below the teacher', 'comparison': '<=', 'limit': KD_TARGET_DB, 'met': drop <= KD_TARGET_DB},
            {'target': 'KD better than plain fine-tuning at equal iterations', 'value': gain,
             'unit': 'dB above plain', 'comparison': '>', 'limit': 0.0, 'met': gain > 0}]


def run(config: PruningQualityConfig, log: Callable[[str], None] | None = print) -> dict:
    """Every measurement of the module docstring, as one plain-data result."""
    log = log or (lambda line: None)
    torch.set_num_threads(config.threads)
    machine = machine_info(config.threads)
    pruning = pruning_config(config)
    teacher, train_set, val_set = _load_inputs(config)
    size = tuple(config.reference_size)
    pruned = copy.deepcopy(teacher)
    samples = [BatchSampler(train_set, config.batch, config.seed + 1).next()] if config.criterion == 'taylor' else None
    started = time.perf_counter()
    report = prune_network(pruned, pruning, samples, charbonnier_loss())
    prune_s = time.perf_counter() - started
    pruned.eval().requires_grad_(False)
    log(f"pruned {config.ratio:g} ({config.criterion}) in {prune_s:.1f} s: {report['params_before']:,} -> "
        f"{report['params_after']:,} params, {report['mac_fraction']:.1%} of the MACs")

    clips = min(len(val_set), config.val_clips or len(val_set))
    log(f'teacher, bicubic and pruned on {clips} validation clips')
    pruned_quality = clip_summary(pruned, val_set, config.val_clips)
    rows = {'teacher': {**complexity(teacher, size), **clip_summary(teacher, val_set, config.val_clips)},
            'bicubic': {'params': 0, 'macs_per_frame': None, 'widths': None,
                        **clip_summary(BicubicUpsampler(int(teacher.scale)), val_set, config.val_clips)},
            'pruned': {**complexity(pruned, size), **pruned_quality}}
    log(f"teacher {rows['teacher']['psnr']:.3f} dB, bicubic {rows['bicubic']['psnr']:.3f} dB, pruned "
          f"{rows['pruned']['psnr']:.3f} dB; fine-tuning plain and KD, {config.iters} steps each")
    runs, curve, quality = fine_tune_all(pruned, pruned_quality, teacher, train_set, val_set, config, log)
    shape = {k: rows['pruned'][k] for k in ('params', 'macs_per_frame', 'widths')}  # fine-tuning keeps the shapes
    for method, run_ in runs.items():
        rows[method] = {**shape, **run_.summary(), **quality[method]}
    for row in rows.values():
        row['delta_db'] = row['psnr'] - rows['teacher']['psnr']
    machine['load_average_after'] = load_average()
    return {
        'command': config.command,
        'machine': machine,
        'config': {'checkpoint': config.checkpoint, 'footage': config.footage, 'network': type(teacher).__name__,
                   'scale': int(teacher.scale), 'pruning': pruning.to_dict(), 'prune_s': prune_s,
                   'engine_mac_fraction': report['mac_fraction'], 'removed_fraction': report['removed_fraction'],
                   'iters': config.iters, 'eval_every': config.eval_every, 'lr': config.lr,
                   'flow_lr_mul': config.flow_lr_mul,
                   'eta_min': ETA_MIN, 'distill_weight': config.distill_weight,
                   'feature_distill_weight': config.feature_distill_weight, 'batch': config.batch,
                   'frames': config.frames, 'gt_size': config.gt_size, 'train_windows': len(train_set),
                   'val_clips': clips, 'seed': config.seed},
        'quality': [{'name': name, **row} for name, row in rows.items()],
        'curve': curve,
        'targets': targets(rows),
    }


LABELS = {'teacher': 'teacher (dense)', 'bicubic': 'bicubic', 'pruned': 'pruned, before fine-tuning',
          'plain': 'pruned + plain fine-tune', 'kd': 'pruned + KD fine-tune',
          'kd_feat': 'pruned + KD + hidden-state fine-tune'}
CURVE_LABELS = {'plain': 'plain (dB)', 'kd': 'KD (dB)', 'kd_feat': 'KD + hidden states (dB)'}


def markdown(result: dict) -> str:
    """The report: one row per network, the PSNR curves, the targets."""
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
             machine_line(m), '',
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
