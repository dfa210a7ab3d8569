"""INT8 on a trained network: FP32 vs post-training quantization (each calibrator) vs QAT, in PSNR, checkpoint size
and training-step time.

The quantization engine runs directly on the network (no BasicSR model, no YAML):

1. FP32: the checkpoint's network on the validation clips (whole clips, ``vsrcompress.metrics.clip_quality``, as the
   recipe's report measures them).
2. PTQ, once per calibrator: a copy quantized (``skip_parts`` kept float) and calibrated on ``calib_windows``
   windows of ``frames`` consecutive training frames, spread over the training clips.
3. QAT: the best PTQ network fine-tuned ``qat_iters`` steps with fake quantization: Charbonnier distillation from
   the frozen FP32 network plus ``pixel_weight`` x Charbonnier against the ground truth, Adam at ``lr``, batches
   of random ``patch`` x ``patch`` LR crops of training windows. Then its PSNR, and the PSNR of its exported INT8
   checkpoint reloaded (must be the same network).
4. Sizes: the FP32 network saved as a vsrcompress checkpoint (params only) vs the INT8 checkpoint as the recipe
   writes it (``export_int8_checkpoint`` with the conv output ranges).
5. Step time: one FP32 training step vs one QAT step (same loss, same batch, same optimizer), interleaved
   (``vsrcompress.bench.timing``); the medians and their ratio, on every device of ``timing_devices``.

Targets of the issue, checked in the report: QAT PSNR within 0.05 dB of FP32; INT8 checkpoint <= 26 % of the FP32
bytes; QAT step <= 1.5x the FP32 step.
"""
import copy
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from vsrcompress.checkpoint import load_network
from vsrcompress.atomic_files import write_figure
from vsrcompress.bench.inputs import (InputError, NetworkInputs, at_least, charbonnier_loss, check_inputs,
                                      load_fp32_network, spread)
from vsrcompress.bench.machine import load_average, machine_info, machine_line
from vsrcompress.bench.timing import time_interleaved
from vsrcompress.checkpoint import arch_options, load_checkpoint, network_checkpoint, save_atomic
from vsrcompress.export import MIN_SIZE, footage_test_dataset, read_footage_windows
from vsrcompress.metrics import clip_summary
from vsrcompress.quantization import (CALIBRATORS, OUTPUT_RANGE_KEY, QUANTIZATION_PARTS, QuantConfig, calibrate,
                                      calibrate_output_ranges, export_int8_checkpoint, quantize_network)

PSNR_TARGET_DB, SIZE_TARGET, STEP_TARGET = 0.05, 0.26, 1.5


def _devices() -> list[str]:
    return ['cpu', 'cuda'] if torch.cuda.is_available() else ['cpu']


@dataclass
class QatConfig(NetworkInputs):
    """What ``run`` measures (and ``NetworkInputs``: checkpoint, footage, threads, validation clips).

    Attributes:
        calibrators: PTQ calibrators compared; QAT starts from the best of them.
        skip_parts: Parts kept float (``quantization.skip_parts`` names).
        calib_windows: Calibration windows.
        frames: Frames per calibration and training window.
        patch: LR crop size of QAT and timing batches.
        batch_size: Windows per QAT and timing batch.
        qat_iters: QAT fine-tuning steps.
        lr: Adam learning rate of QAT.
        pixel_weight: Weight of the loss against ground truth next to the distillation loss.
        timing_rounds: Timed FP32 + QAT step pairs per device, after one untimed pair.
        device: Where PTQ, QAT and PSNR run.
        timing_devices: Devices the step times are measured on.
        seed: Seed of the QAT batches and crops.
    """
    calibrators: tuple[str, ...] = tuple(CALIBRATORS)
    skip_parts: tuple[str, ...] = ('spynet',)
    calib_windows: int = 8
    frames: int = 3
    patch: int = 64
    batch_size: int = 2
    qat_iters: int = 100
    lr: float = 1e-4
    pixel_weight: float = 1.0
    timing_rounds: int = 10
    device: str = field(default_factory=lambda: _devices()[-1])
    timing_devices: tuple[str, ...] = field(default_factory=lambda: tuple(_devices()))
    seed: int = 0


def check(config: QatConfig) -> None:
    """Refuse a configuration that cannot run, before any work (errors name the field and what is allowed)."""
    at_least(1, calib_windows=config.calib_windows, batch_size=config.batch_size, qat_iters=config.qat_iters,
             timing_rounds=config.timing_rounds)
    at_least(2, frames=config.frames)  # a recurrent network needs a sequence
    at_least(MIN_SIZE, patch=config.patch)  # SpyNet needs frames larger than 32 px
    if not config.lr > 0 or not config.pixel_weight >= 0:
        raise ValueError(f'lr must be > 0 and pixel_weight >= 0, got {config.lr} and {config.pixel_weight}')
    unknown = [c for c in config.calibrators if c not in CALIBRATORS] or not config.calibrators
    if unknown:
        raise ValueError(f'calibrators: {list(config.calibrators)} not known; allowed: {list(CALIBRATORS)}')
    if not set(config.skip_parts) <= set(QUANTIZATION_PARTS):
        raise ValueError(f'skip_parts: {list(config.skip_parts)}; allowed: {sorted(QUANTIZATION_PARTS)}')
    for device in (config.device, *config.timing_devices):
        if device not in _devices():
            raise ValueError(f'device/timing_devices: {device} is not available here; allowed: {_devices()}')
    check_inputs(config)


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


def step_times(fp32: nn.Module, qat: nn.Module, windows: list[dict], config: QatConfig, scale: int,
               device: torch.device) -> dict:
    """Median FP32 and QAT training-step times on one batch, interleaved after one untimed pair."""
    teacher = copy.deepcopy(fp32).to(device).eval().requires_grad_(False)
    students = {'fp32': copy.deepcopy(fp32).to(device).train().requires_grad_(True),
                'qat': copy.deepcopy(qat).to(device).train()}
    optimizers = {k: torch.optim.Adam([p for p in s.parameters() if p.requires_grad], lr=config.lr)
                  for k, s in students.items()}
    loss_fn = charbonnier_loss()
    lq, gt = (t.to(device) for t in sample_batch(windows, config.batch_size, config.patch, scale,
                                                 torch.Generator().manual_seed(config.seed + 1)))

    def step(kind: str) -> Callable[[], None]:
        def once() -> None:
            train_step(students[kind], teacher, optimizers[kind], loss_fn, config.pixel_weight, lq, gt)
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
        return once

    seconds = time_interleaved({k: step(k) for k in students}, config.timing_rounds, warmup=1)
    median = {k: statistics.median(v) * 1e3 for k, v in seconds.items()}
    return {'fp32_ms': median['fp32'], 'qat_ms': median['qat'], 'ratio': median['qat'] / median['fp32'],
            'fp32_ms_all': [s * 1e3 for s in seconds['fp32']], 'qat_ms_all': [s * 1e3 for s in seconds['qat']],
            'batch': [*lq.shape], 'rounds': config.timing_rounds}


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


def _load_inputs(config: QatConfig, device: torch.device) -> tuple[nn.Module, dict, list[dict], list[torch.Tensor],
                                                                    object]:
    """The FP32 network (frozen, on ``device``), its arch options, the training windows, the calibration clips (spread
    over the training windows) and the validation set; bad files fail here, before any measurement."""
    fp32 = load_fp32_network(config, 'the benchmark quantizes an FP32 network (dense or pruned).').to(device)
    scale = int(fp32.scale)
    arch = arch_options({**(load_checkpoint(config.checkpoint).get('arch') or {}), **(config.network_opt or {})})
    try:
        windows = read_footage_windows(config.footage, config.frames, scale, 'train')
        val_set = footage_test_dataset(config.footage, 'val', scale)
    except (ValueError, FileNotFoundError) as err:
        raise InputError(f'footage: {err}') from err
    if not windows:
        raise InputError(f'footage: {config.footage} has no training clip with {config.frames} frames (frames)')
    smallest = min(min(w['lq'].shape[-2:]) for w in windows)
    if smallest < config.patch:
        raise InputError(f'patch: {config.patch} is larger than the smallest LR training frame side ({smallest} px)')
    calib = [w['lq'] for w in spread(windows, config.calib_windows)]
    return fp32, arch, windows, calib, val_set


def _post_training_quantization(fp32: nn.Module, calib: list[torch.Tensor], val_set, config: QatConfig,
                                log: Callable[[str], None]) -> tuple[list[dict], tuple]:
    """One calibrated copy per calibrator and its PSNR; returns the rows and (row, net, config, report) of the best."""
    rows, best = [], None
    for calibrator in config.calibrators:
        quant = QuantConfig(calibrator=calibrator, calib_batches=len(calib), skip_parts=tuple(config.skip_parts))
        net = copy.deepcopy(fp32)
        report = quantize_network(net, quant)
        started = time.perf_counter()
        calibrate(net, calib, quant)
        seconds = time.perf_counter() - started
        row = {'name': f'PTQ {calibrator}', 'kind': 'ptq', 'calibrator': calibrator, 'calibration_s': seconds,
               **clip_summary(net, val_set, config.val_clips)}
        rows.append(row)
        log(f"PTQ {calibrator}: {row['psnr']:.3f} dB (calibrated in {seconds:.1f} s)")
        if best is None or row['psnr'] > best[0]['psnr']:
            best = (row, net, quant, report)
    return rows, best


def _fine_tune(student: nn.Module, teacher: nn.Module, windows: list[dict], config: QatConfig, scale: int,
               device: torch.device) -> dict:
    """``qat_iters`` QAT steps on random crops; returns the time and the mean loss of the first and last tenth."""
    student.train().requires_grad_(True)
    optimizer = torch.optim.Adam(student.parameters(), lr=config.lr)
    loss_fn = charbonnier_loss()
    gen = torch.Generator().manual_seed(config.seed)
    losses, started = [], time.perf_counter()
    for _ in range(config.qat_iters):
        lq, gt = sample_batch(windows, config.batch_size, config.patch, scale, gen)
        losses.append(train_step(student, teacher, optimizer, loss_fn, config.pixel_weight, lq.to(device),
                                 gt.to(device)))
    seconds = time.perf_counter() - started
    student.eval()
    tail = max(1, len(losses) // 10)
    return {'iters': config.qat_iters, 'train_s': seconds, 'loss_first': statistics.fmean(losses[:tail]),
            'loss_last': statistics.fmean(losses[-tail:])}


def run(config: QatConfig, log: Callable[[str], None] | None = print) -> dict:
    """Every measurement of the module docstring, as one plain-data result."""
    log = log or (lambda line: None)
    torch.set_num_threads(config.threads)
    machine = machine_info(config.threads)
    device = torch.device(config.device)
    fp32, arch, windows, calib, val_set = _load_inputs(config, device)
    scale = int(fp32.scale)
    log(f'FP32 on {min(len(val_set), config.val_clips or len(val_set))} validation clips')
    rows = [{'name': 'FP32', 'kind': 'fp32', **clip_summary(fp32, val_set, config.val_clips)}]
    ptq_rows, (start_row, student, quant, report) = _post_training_quantization(fp32, calib, val_set, config, log)
    rows += ptq_rows

    log(f"QAT from PTQ {start_row['calibrator']}: {config.qat_iters} steps")
    training = _fine_tune(student, fp32, windows, config, scale, device)
    rows.append({'name': 'QAT', 'kind': 'qat', 'calibrator': start_row['calibrator'], **training,
                 **clip_summary(student, val_set, config.val_clips)})
    log(f"QAT: {rows[-1]['psnr']:.3f} dB ({training['train_s']:.1f} s)")

    with tempfile.TemporaryDirectory() as folder:
        fp32_path, int8_path = os.path.join(folder, 'fp32.pth'), os.path.join(folder, 'int8.pth')
        save_atomic(network_checkpoint(fp32, arch), fp32_path)
        ranges = calibrate_output_ranges(student, calib, quant)  # as the recipe's net_g_int8.pth carries them
        export_int8_checkpoint(student, quant, report, int8_path, source=config.checkpoint,
                               extra={'arch': arch, OUTPUT_RANGE_KEY: ranges})
        sizes = {'fp32_bytes': os.path.getsize(fp32_path), 'int8_bytes': os.path.getsize(int8_path),
                 'input_checkpoint_bytes': os.path.getsize(config.checkpoint)}
        sizes['ratio'] = sizes['int8_bytes'] / sizes['fp32_bytes']
        reloaded = load_network(int8_path).net.to(device)
        rows.append({'name': 'INT8 checkpoint', 'kind': 'int8_reload', 'calibrator': start_row['calibrator'],
                     **clip_summary(reloaded, val_set, config.val_clips)})
    for row in rows:
        row['delta_db'] = row['psnr'] - rows[0]['psnr']

    timing = {}
    for name in config.timing_devices:
        log(f'step time on {name}: {config.timing_rounds} rounds')
        timing[name] = step_times(fp32, student, windows, config, scale, torch.device(name))
    machine['load_average_after'] = load_average()
    result = {
        'command': config.command,
        'machine': machine,
        'config': {'checkpoint': config.checkpoint, 'param_key': config.param_key, 'footage': config.footage,
                   'network': type(fp32).__name__, 'widths': fp32.width_spec() if hasattr(fp32, 'width_spec') else None,
                   'scale': scale, 'device': config.device, 'calibrators': list(config.calibrators),
                   'skip_parts': list(config.skip_parts), 'quantized_convs': len(report.quantized),
                   'residual_quantizers': len(report.residual), 'float_convs': len(report.skipped),
                   'calib_windows': len(calib), 'frames': config.frames, 'train_windows': len(windows),
                   'val_clips': len(rows[0]['psnr_per_clip']), 'qat_iters': config.qat_iters, 'lr': config.lr,
                   'pixel_weight': config.pixel_weight, 'batch_size': config.batch_size, 'patch': config.patch,
                   'seed': config.seed},
        'quality': rows,
        'sizes': sizes,
        'step_time': timing,
    }
    result['targets'] = targets(result)
    return result


def markdown(result: dict) -> str:
    """The report: quality rows, checkpoint sizes, step times, targets."""
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
             machine_line(m), '',
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
