"""INT8 on a trained network: FP32 vs post-training quantization (each calibrator) vs QAT, in PSNR, checkpoint size
and training-step time. Prints the tables and writes ``<out>/<name>.{json,md,png}`` (default results/benchmarks/qat).

The quantization engine runs directly on the network (no BasicSR model, no YAML):

1. FP32: the checkpoint's network on the validation clips (whole clips; BasicSR's ``calculate_psnr``/``calculate_ssim``
   on 8-bit RGB, the mean of clip means, as ``vsrcompress.recipe.clip_quality`` measures the recipe's report).
2. PTQ, once per calibrator: a copy quantized (``--skip-parts`` kept float) and calibrated on ``--calib-windows``
   windows of ``--frames`` consecutive training frames, spread over the training clips.
3. QAT: the best PTQ network fine-tuned ``--qat-iters`` steps with fake quantization: Charbonnier distillation from
   the frozen FP32 network plus ``--pixel-weight`` x Charbonnier against the ground truth, Adam at ``--lr``, batches
   of random ``--patch`` x ``--patch`` LR crops of training windows. Then its PSNR, and the PSNR of its exported INT8
   checkpoint reloaded (must be the same network).
4. Sizes: the FP32 network saved as a vsrcompress checkpoint (params only) vs the INT8 checkpoint as the recipe
   writes it (``export_int8_checkpoint`` with the conv output ranges).
5. Step time: one FP32 training step vs one QAT step (same loss, same batch, same optimizer), alternated and the
   order swapped every round; the medians and their ratio, on every device of ``--timing-devices``.

On a CPU shared with other jobs give ``--threads 1``: with two threads on two busy cores the demo run did not finish
in 10 minutes; with one it takes about 4 (results/benchmarks/qat.md).

Targets of the issue, checked in the report: QAT PSNR within 0.05 dB of FP32; INT8 checkpoint <= 26 % of the FP32
bytes; QAT step <= 1.5x the FP32 step.

    python scripts/make_demo_footage.py                                  # datasets/demo
    python compress.py -opt options/demo/basicvsr_prune_qat_demo.yml     # its teacher stage trains the default net
    python scripts/benchmark_qat.py                                      # that teacher on datasets/demo
    python scripts/benchmark_qat.py --checkpoint experiments/x/models/net_g_latest.pth --footage datasets/mine \\
        --calibrators max entropy --qat-iters 500
"""
import argparse
import copy
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import pytorch_quantization
import torch
from torch import nn

import vsrcompress  # noqa: F401  (registers the archs and makes basicsr importable: before any basicsr import)
from basicsr.losses.basic_loss import CharbonnierLoss  # after vsrcompress, on purpose
from vsrcompress.checkpoint import arch_options, load_checkpoint, network_checkpoint, save_atomic
from vsrcompress.data.footage_dataset import FootageTestDataset
from vsrcompress.export import MIN_SIZE, footage_test_dataset, load_deployable_network, read_footage_windows
from vsrcompress.export.cli_options import add_arch_arguments, network_options
from vsrcompress.footage import layout
from vsrcompress.quantization import (CALIBRATORS, OUTPUT_RANGE_KEY, SKIP_PARTS, QuantConfig, calibrate,
                                      calibrate_output_ranges, export_int8_checkpoint, quantize_network)
from vsrcompress.recipe.clip_quality import clip_quality
from vsrcompress.atomic_files import write_benchmark_result, write_figure

DEFAULT_CHECKPOINT = 'experiments/demo_basicvsr_prune_qat_teacher/models/net_g_latest.pth'
DEFAULT_FOOTAGE = 'datasets/demo'
PSNR_TARGET_DB, SIZE_TARGET, STEP_TARGET = 0.05, 0.26, 1.5
MAKE_TEACHER = ('python scripts/make_demo_footage.py && python compress.py -opt '
                'options/demo/basicvsr_prune_qat_demo.yml (its first stage, teacher, writes it)')


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--checkpoint', default=DEFAULT_CHECKPOINT,
                        help=f'FP32 network, dense or pruned (default: the demo teacher, {DEFAULT_CHECKPOINT})')
    parser.add_argument('--footage', default=DEFAULT_FOOTAGE,
                        help=f'footage dataset: train split for calibration and QAT, val split for PSNR '
                             f'(default {DEFAULT_FOOTAGE}, made by scripts/make_demo_footage.py)')
    parser.add_argument('--calibrators', nargs='+', choices=CALIBRATORS, default=list(CALIBRATORS),
                        help='PTQ calibrators to compare (default: all); QAT starts from the best of them')
    parser.add_argument('--skip-parts', nargs='*', choices=sorted(SKIP_PARTS), default=['spynet'],
                        help='parts kept float (default: spynet, as the demo recipe); give none to quantize all')
    parser.add_argument('--calib-windows', type=int, default=8, help='calibration windows (default 8, as the recipe)')
    parser.add_argument('--frames', type=int, default=3,
                        help='frames per calibration and training window (default 3, the demo\'s num_frame)')
    parser.add_argument('--patch', type=int, default=64, help='LR crop size of QAT and timing batches (default 64)')
    parser.add_argument('--batch-size', type=int, default=2, help='windows per QAT and timing batch (default 2)')
    parser.add_argument('--qat-iters', type=int, default=100, help='QAT fine-tuning steps (default 100)')
    parser.add_argument('--lr', type=float, default=1e-4, help='Adam learning rate of QAT (default 1e-4)')
    parser.add_argument('--pixel-weight', type=float, default=1.0,
                        help='weight of the loss against ground truth next to the distillation loss (default 1)')
    parser.add_argument('--val-clips', type=int, default=None, help='validation clips measured (default: all)')
    parser.add_argument('--timing-rounds', type=int, default=10,
                        help='timed FP32 + QAT step pairs per device, after one untimed pair (default 10)')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cuda' if cuda else 'cpu',
                        help='where PTQ, QAT and PSNR run (default: cuda when available)')
    parser.add_argument('--timing-devices', nargs='+', choices=('cpu', 'cuda'),
                        default=['cpu', 'cuda'] if cuda else ['cpu'],
                        help='devices the step times are measured on (default: cpu, and cuda when available)')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads(),
                        help=f'torch CPU threads (default {torch.get_num_threads()})')
    parser.add_argument('--seed', type=int, default=0, help='seed of the QAT batches and crops (default 0)')
    parser.add_argument('--out', default='results/benchmarks', help='output folder (default results/benchmarks)')
    parser.add_argument('--name', default='qat', help='output file name without extension (default qat)')
    add_arch_arguments(parser)
    args = parser.parse_args(argv)
    positive = {'--calib-windows': args.calib_windows, '--batch-size': args.batch_size, '--qat-iters': args.qat_iters,
                '--timing-rounds': args.timing_rounds, '--threads': args.threads}
    for flag, value in positive.items():
        if value < 1:
            parser.error(f'{flag}: must be >= 1, got {value}')
    if args.frames < 2:
        parser.error(f'--frames: must be >= 2 (a recurrent network needs a sequence), got {args.frames}')
    if args.patch < MIN_SIZE:
        parser.error(f'--patch: must be >= {MIN_SIZE} (SpyNet needs frames larger than 32 px), got {args.patch}')
    if not args.lr > 0 or not args.pixel_weight >= 0:
        parser.error(f'--lr must be > 0 and --pixel-weight >= 0, got {args.lr} and {args.pixel_weight}')
    if args.val_clips is not None and args.val_clips < 1:
        parser.error(f'--val-clips: must be >= 1, got {args.val_clips}')
    if not cuda and 'cuda' in [args.device, *args.timing_devices]:
        parser.error('--device/--timing-devices: cuda is not available here; allowed: cpu')
    if not os.path.isfile(args.checkpoint):
        parser.error(f'--checkpoint: {args.checkpoint} does not exist. '
                     + (f'It is the demo teacher; make it with: {MAKE_TEACHER}.' if args.checkpoint ==
                        DEFAULT_CHECKPOINT else 'Give a dense or pruned FP32 vsrcompress checkpoint.'))
    for split in layout.SPLITS:
        if not os.path.isfile(layout.meta_info_path(args.footage, split)):
            parser.error(f'--footage: {args.footage} has no {split} split ({layout.meta_info_path(args.footage, split)}'
                         f' is missing); make the demo footage with python scripts/make_demo_footage.py or prepare '
                         f'footage with scripts/prepare_footage.py')
    try:
        args.network_opt = network_options(args.arch, args.arch_opt)
    except ValueError as err:
        parser.error(str(err))
    os.makedirs(args.out, exist_ok=True)
    if not os.access(args.out, os.W_OK):
        parser.error(f'--out: {args.out} is not writable')
    return args


def quality(net: nn.Module, dataset: FootageTestDataset, max_clips: int | None) -> dict:
    """PSNR/SSIM (dB, mean of clip means) and each clip's mean PSNR."""
    result = clip_quality(net, dataset, max_clips)
    per_clip = {clip: statistics.fmean(v['psnr']) for clip, v in result['per_frame'].items()}
    return {'psnr': result['psnr'], 'ssim': result['ssim'], 'psnr_per_clip': per_clip}


def sample_batch(windows: list[dict], batch: int, patch: int, scale: int, gen: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` random windows, each cropped at a random place to ``patch`` LR pixels (GT: ``patch * scale``)."""
    lqs, gts = [], []
    for _ in range(batch):
        window = windows[int(torch.randint(len(windows), (1,), generator=gen))]
        h, w = window['lq'].shape[-2:]
        y, x = (int(torch.randint(size - patch + 1, (1,), generator=gen)) for size in (h, w))
        lqs.append(window['lq'][..., y:y + patch, x:x + patch])
        gts.append(window['gt'][..., y * scale:(y + patch) * scale, x * scale:(x + patch) * scale])
    return torch.cat(lqs), torch.cat(gts)


def train_step(student: nn.Module, teacher: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
               pixel_weight: float, lq: torch.Tensor, gt: torch.Tensor) -> float:
    """One distillation step (Charbonnier to the teacher + ``pixel_weight`` x Charbonnier to GT); returns the loss."""
    optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        target = teacher(lq)
    output = student(lq)
    loss = loss_fn(output, target) + pixel_weight * loss_fn(output, gt)
    loss.backward()
    optimizer.step()
    return loss.item()  # waits for the device: timed steps end here


def timed(step: Callable[[], float], device: torch.device) -> float:
    """Seconds of one call of ``step`` (synchronised on CUDA)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    step()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def step_times(fp32: nn.Module, qat: nn.Module, windows: list[dict], args: argparse.Namespace, scale: int,
               device: torch.device) -> dict:
    """Median FP32 and QAT training-step times on one batch, alternated, order swapped every round."""
    teacher = copy.deepcopy(fp32).to(device).eval().requires_grad_(False)
    students = {'fp32': copy.deepcopy(fp32).to(device).train().requires_grad_(True),
                'qat': copy.deepcopy(qat).to(device).train()}
    optimizers = {k: torch.optim.Adam([p for p in s.parameters() if p.requires_grad], lr=args.lr)
                  for k, s in students.items()}
    loss_fn = CharbonnierLoss(loss_weight=1.0, reduction='mean').to(device)
    lq, gt = (t.to(device) for t in sample_batch(windows, args.batch_size, args.patch, scale,
                                                 torch.Generator().manual_seed(args.seed + 1)))
    steps = {k: (lambda k=k: train_step(students[k], teacher, optimizers[k], loss_fn, args.pixel_weight, lq, gt))
             for k in students}
    for step in steps.values():  # untimed: first-call allocations, oneDNN/cuDNN kernel selection
        step()
    seconds = {k: [] for k in steps}
    for round_ in range(args.timing_rounds):
        for kind in (('fp32', 'qat') if round_ % 2 == 0 else ('qat', 'fp32')):
            seconds[kind].append(timed(steps[kind], device))
    median = {k: statistics.median(v) * 1e3 for k, v in seconds.items()}
    return {'fp32_ms': median['fp32'], 'qat_ms': median['qat'], 'ratio': median['qat'] / median['fp32'],
            'fp32_ms_all': [s * 1e3 for s in seconds['fp32']], 'qat_ms_all': [s * 1e3 for s in seconds['qat']],
            'batch': [*lq.shape], 'rounds': args.timing_rounds}


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def machine_info(threads: int) -> dict:
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {'when': time.strftime('%Y-%m-%d %H:%M:%S %Z'), 'host': platform.node(), 'platform': platform.platform(),
            'processor': platform.processor() or platform.machine(), 'cpus': os.cpu_count(), 'threads': threads,
            'cuda_device': cuda, 'python': platform.python_version(), 'torch': torch.__version__,
            'pytorch_quantization': pytorch_quantization.__version__, 'load_average_before': load_average()}


def targets(result: dict) -> list[dict]:
    """The issue's three targets, measured value vs limit."""
    rows = {r['name']: r for r in result['quality']}
    drop = rows['FP32']['psnr'] - rows['QAT']['psnr']
    out = [{'target': f'QAT INT8 PSNR within {PSNR_TARGET_DB} dB of FP32', 'value': drop, 'unit': 'dB (FP32 - QAT)',
            'limit': PSNR_TARGET_DB, 'met': drop <= PSNR_TARGET_DB},
           {'target': f'INT8 checkpoint <= {SIZE_TARGET:.0%} of FP32 bytes', 'value': result['sizes']['ratio'],
            'unit': 'of FP32', 'limit': SIZE_TARGET, 'met': result['sizes']['ratio'] <= SIZE_TARGET}]
    for device, times in result['step_time'].items():
        out.append({'target': f'QAT training step <= {STEP_TARGET}x FP32 step ({device})', 'value': times['ratio'],
                    'unit': 'x FP32', 'limit': STEP_TARGET, 'met': times['ratio'] <= STEP_TARGET})
    return out


def load_inputs(args: argparse.Namespace, device: torch.device
                ) -> tuple[nn.Module, dict, list[dict], list[torch.Tensor], FootageTestDataset]:
    """The FP32 network (frozen, on ``device``), its arch options, the training windows, the calibration clips (spread
    over the training windows) and the validation set; bad files fail here, before any measurement."""
    try:
        loaded = load_deployable_network(args.checkpoint, args.network_opt, args.param_key)
    except (ValueError, KeyError) as err:
        raise SystemExit(f'--checkpoint: {err}') from err
    if loaded.int8:
        raise SystemExit(f'--checkpoint: {args.checkpoint} is an INT8 checkpoint; the benchmark quantizes an FP32 '
                         'network (dense or pruned).')
    fp32 = loaded.net.to(device).eval().requires_grad_(False)
    scale = int(fp32.scale)
    arch = arch_options({**(load_checkpoint(args.checkpoint).get('arch') or {}), **(args.network_opt or {})})
    try:
        windows = read_footage_windows(args.footage, args.frames, scale, 'train')
        val_set = footage_test_dataset(args.footage, 'val', scale)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f'--footage: {err}') from err
    if not windows:
        raise SystemExit(f'--footage: {args.footage} has no training clip with {args.frames} frames (--frames)')
    smallest = min(min(w['lq'].shape[-2:]) for w in windows)
    if smallest < args.patch:
        raise SystemExit(f'--patch: {args.patch} is larger than the smallest LR training frame side ({smallest} px)')
    count = min(args.calib_windows, len(windows))
    calib = [windows[round(i * (len(windows) - 1) / max(count - 1, 1))]['lq'] for i in range(count)]
    return fp32, arch, windows, calib, val_set


def post_training_quantization(fp32: nn.Module, calib: list[torch.Tensor], val_set: FootageTestDataset,
                               args: argparse.Namespace, device: torch.device) -> tuple[list[dict], tuple]:
    """One calibrated copy per calibrator and its PSNR; returns the rows and (row, net, config, report) of the best."""
    rows, best = [], None
    for calibrator in args.calibrators:
        config = QuantConfig(calibrator=calibrator, calib_batches=len(calib), skip_parts=tuple(args.skip_parts))
        net = copy.deepcopy(fp32)
        report = quantize_network(net, config)
        started = time.perf_counter()
        calibrate(net, calib, config)
        seconds = time.perf_counter() - started
        row = {'name': f'PTQ {calibrator}', 'kind': 'ptq', 'calibrator': calibrator, 'calibration_s': seconds,
               **quality(net, val_set, args.val_clips)}
        rows.append(row)
        print(f"PTQ {calibrator}: {row['psnr']:.3f} dB (calibrated in {seconds:.1f} s)", flush=True)
        if best is None or row['psnr'] > best[0]['psnr']:
            best = (row, net, config, report)
    return rows, best


def fine_tune(student: nn.Module, teacher: nn.Module, windows: list[dict], args: argparse.Namespace, scale: int,
              device: torch.device) -> dict:
    """``--qat-iters`` QAT steps on random crops; returns the time and the mean loss of the first and last tenth."""
    student.train().requires_grad_(True)
    optimizer = torch.optim.Adam(student.parameters(), lr=args.lr)
    loss_fn = CharbonnierLoss(loss_weight=1.0, reduction='mean').to(device)
    gen = torch.Generator().manual_seed(args.seed)
    losses, started = [], time.perf_counter()
    for _ in range(args.qat_iters):
        lq, gt = sample_batch(windows, args.batch_size, args.patch, scale, gen)
        losses.append(train_step(student, teacher, optimizer, loss_fn, args.pixel_weight, lq.to(device), gt.to(device)))
    seconds = time.perf_counter() - started
    student.eval()
    tail = max(1, len(losses) // 10)
    return {'iters': args.qat_iters, 'train_s': seconds, 'loss_first': statistics.fmean(losses[:tail]),
            'loss_last': statistics.fmean(losses[-tail:])}


def run(args: argparse.Namespace, command: str) -> dict:
    """Every measurement of the module docstring, as one plain-data result (``command``: the line that asked)."""
    torch.set_num_threads(args.threads)
    machine = machine_info(args.threads)
    device = torch.device(args.device)
    fp32, arch, windows, calib, val_set = load_inputs(args, device)
    scale = int(fp32.scale)
    print(f'FP32 on {min(len(val_set), args.val_clips or len(val_set))} validation clips', flush=True)
    rows = [{'name': 'FP32', 'kind': 'fp32', **quality(fp32, val_set, args.val_clips)}]
    ptq_rows, (start_row, student, config, report) = post_training_quantization(fp32, calib, val_set, args, device)
    rows += ptq_rows

    print(f"QAT from PTQ {start_row['calibrator']}: {args.qat_iters} steps", flush=True)
    training = fine_tune(student, fp32, windows, args, scale, device)
    rows.append({'name': 'QAT', 'kind': 'qat', 'calibrator': start_row['calibrator'], **training,
                 **quality(student, val_set, args.val_clips)})
    print(f"QAT: {rows[-1]['psnr']:.3f} dB ({training['train_s']:.1f} s)", flush=True)

    with tempfile.TemporaryDirectory() as folder:
        fp32_path, int8_path = os.path.join(folder, 'fp32.pth'), os.path.join(folder, 'int8.pth')
        save_atomic(network_checkpoint(fp32, arch), fp32_path)
        ranges = calibrate_output_ranges(student, calib, config)  # as the recipe's net_g_int8.pth carries them
        export_int8_checkpoint(student, config, report, int8_path, source=args.checkpoint,
                               extra={'arch': arch, OUTPUT_RANGE_KEY: ranges})
        sizes = {'fp32_bytes': os.path.getsize(fp32_path), 'int8_bytes': os.path.getsize(int8_path),
                 'input_checkpoint_bytes': os.path.getsize(args.checkpoint)}
        sizes['ratio'] = sizes['int8_bytes'] / sizes['fp32_bytes']
        reloaded = load_deployable_network(int8_path).net.to(device)
        rows.append({'name': 'INT8 checkpoint', 'kind': 'int8_reload', 'calibrator': start_row['calibrator'],
                     **quality(reloaded, val_set, args.val_clips)})
    for row in rows:
        row['delta_db'] = row['psnr'] - rows[0]['psnr']

    timing = {}
    for name in args.timing_devices:
        print(f'step time on {name}: {args.timing_rounds} rounds', flush=True)
        timing[name] = step_times(fp32, student, windows, args, scale, torch.device(name))
    machine['load_average_after'] = load_average()
    result = {
        'command': command,
        'machine': machine,
        'config': {'checkpoint': args.checkpoint, 'param_key': args.param_key, 'footage': args.footage,
                   'network': type(fp32).__name__, 'widths': fp32.width_spec() if hasattr(fp32, 'width_spec') else None,
                   'scale': scale, 'device': args.device, 'calibrators': args.calibrators,
                   'skip_parts': args.skip_parts, 'quantized_convs': len(report.quantized),
                   'residual_quantizers': len(report.residual), 'float_convs': len(report.skipped),
                   'calib_windows': len(calib), 'frames': args.frames, 'train_windows': len(windows),
                   'val_clips': len(rows[0]['psnr_per_clip']), 'qat_iters': args.qat_iters, 'lr': args.lr,
                   'pixel_weight': args.pixel_weight, 'batch_size': args.batch_size, 'patch': args.patch,
                   'seed': args.seed},
        'quality': rows,
        'sizes': sizes,
        'step_time': timing,
    }
    result['targets'] = targets(result)
    return result


def markdown(result: dict) -> str:
    c, m = result['config'], result['machine']
    lines = ['# INT8: FP32 vs PTQ vs QAT', '', f"Command: `{result['command']}`", '',
             f"Network: {c['network']} x{c['scale']} from `{c['checkpoint']}`; {c['quantized_convs']} convs and "
             f"{c['residual_quantizers']} residual adds quantized (8 bit), {c['float_convs']} convs float "
             f"(skip_parts: {', '.join(c['skip_parts']) or 'none'}). Footage `{c['footage']}`: calibration on "
             f"{c['calib_windows']} of {c['train_windows']} training windows of {c['frames']} frames; PSNR/SSIM on "
             f"{c['val_clips']} whole validation clips (BasicSR's metrics on 8-bit RGB, mean of clip means). QAT: "
             f"{c['qat_iters']} Adam steps at lr {c['lr']:g}, batches of {c['batch_size']} "
             f"{c['patch']}x{c['patch']} LR crops, Charbonnier to the FP32 network + {c['pixel_weight']:g} x "
             f"Charbonnier to GT; on {c['device']}.",
             '',
             f"Machine: {m['processor']}, {m['cpus']} CPUs ({m['threads']} torch threads), GPU: "
             f"{m['cuda_device'] or 'none'}; {m['platform']}; torch {m['torch']}, pytorch-quantization "
             f"{m['pytorch_quantization']}; load average (1/5/15 min) {m['load_average_before']} before, "
             f"{m['load_average_after']} after; {m['when']}.", '',
             '| network | calibrator | PSNR (dB) | vs FP32 (dB) | SSIM | time (s) |', '|---|---|---|---|---|---|']
    for r in result['quality']:
        seconds = r.get('calibration_s', r.get('train_s'))
        delta = round(r['delta_db'], 3) + 0.0  # no "-0.000"
        lines.append(f"| {r['name']} | {r.get('calibrator', '-')} | {r['psnr']:.3f} | {delta:+.3f} | {r['ssim']:.4f} | "
                     f"{'-' if seconds is None else f'{seconds:.1f}'} |")
    lines += ['', 'Time: calibration for PTQ, fine-tuning for QAT. "INT8 checkpoint": the QAT network exported with '
              '`export_int8_checkpoint` and reloaded.', '']
    s = result['sizes']
    lines += ['| checkpoint | bytes | % of FP32 |', '|---|---|---|',
              f"| FP32 (params, arch, widths) | {s['fp32_bytes']:,} | 100 % |",
              f"| INT8 (`vsrcompress-int8/1`, with conv output ranges) | {s['int8_bytes']:,} | {s['ratio']:.1%} |", '',
              '| device | batch (b, t, c, h, w) | FP32 step (ms) | QAT step (ms) | QAT / FP32 |',
              '|---|---|---|---|---|']
    for device, t in result['step_time'].items():
        lines.append(f"| {device} | {tuple(t['batch'])} | {t['fp32_ms']:.1f} | {t['qat_ms']:.1f} | "
                     f"{t['ratio']:.2f}x |")
    lines += ['', 'Step: teacher forward, student forward, the same losses, backward, Adam step; the medians of '
              f"{next(iter(result['step_time'].values()))['rounds']} alternated rounds (order swapped every round).",
              '', '| target | measured | limit | met |', '|---|---|---|---|']
    for t in result['targets']:
        value = f"{t['value']:.1%}" if t['unit'] == 'of FP32' else f"{t['value']:.3f} {t['unit']}"
        limit = f"{t['limit']:.0%}" if t['unit'] == 'of FP32' else f"{t['limit']}"
        lines.append(f"| {t['target']} | {value} | {limit} | {'yes' if t['met'] else 'no'} |")
    return '\n'.join(lines) + '\n'


def plot(result: dict, path: str) -> None:
    """PSNR per network, checkpoint sizes, step times per device."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    fig, (ax_psnr, ax_size, ax_step) = plt.subplots(1, 3, figsize=(15, 4.5), gridspec_kw={'width_ratios': [3, 1, 2]})
    rows = result['quality']
    colors = {'fp32': 'tab:blue', 'ptq': 'tab:orange', 'qat': 'tab:green', 'int8_reload': 'tab:green'}
    ax_psnr.bar(range(len(rows)), [r['delta_db'] for r in rows], color=[colors[r['kind']] for r in rows])
    ax_psnr.axhline(-PSNR_TARGET_DB, color='tab:red', linestyle='--', label=f'target: -{PSNR_TARGET_DB} dB')
    ax_psnr.axhline(0, color='black', linewidth=0.8)
    ax_psnr.set_xticks(range(len(rows)), [r['name'] for r in rows], rotation=20, fontsize=8)
    ax_psnr.set(ylabel='PSNR - FP32 PSNR (dB)', title=f"Validation PSNR vs FP32 ({rows[0]['psnr']:.2f} dB)")
    ax_psnr.legend(fontsize=8)
    sizes = result['sizes']
    ax_size.bar([0, 1], [sizes['fp32_bytes'] / 1e6, sizes['int8_bytes'] / 1e6], color=['tab:blue', 'tab:green'])
    ax_size.axhline(SIZE_TARGET * sizes['fp32_bytes'] / 1e6, color='tab:red', linestyle='--',
                    label=f'{SIZE_TARGET:.0%} of FP32')
    ax_size.set_xticks([0, 1], ['FP32', 'INT8'])
    ax_size.set(ylabel='MB', title='Checkpoint size')
    ax_size.legend(fontsize=8)
    devices = list(result['step_time'])
    for offset, (kind, color) in enumerate((('fp32', 'tab:blue'), ('qat', 'tab:green'))):
        ax_step.bar([i * 3 + offset for i in range(len(devices))],
                    [result['step_time'][d][f'{kind}_ms'] for d in devices], color=color, label=kind.upper())
    ax_step.set_xticks([i * 3 + 0.5 for i in range(len(devices))], devices)
    ax_step.set(ylabel='ms per training step (median)', title='Training step')
    ax_step.legend(fontsize=8)
    fig.tight_layout()
    write_figure(path, fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args, ' '.join(['python', 'scripts/benchmark_qat.py', *(sys.argv[1:] if argv is None else argv)]))
    write_benchmark_result(os.path.join(args.out, args.name), result, markdown(result), plot)
    return 0


if __name__ == '__main__':
    sys.exit(main())
