"""Which parts (or layers) of a trained network cost PSNR when quantized to INT8: the measurement behind the skip
lists of the option files.

The checkpoint's network is quantized as ``QATVSRModel`` does (``quantization``: bits, calibrator; its ``skip_parts``
stay float throughout), calibrated on ``calib_windows`` windows of ``calib_frames`` training frames, then
``vsrcompress.quantization.sensitivity_analysis`` measures on the first ``frames`` frames of each validation clip:
for every unit, the PSNR with only it quantized and with all but it quantized, and, for ``budget_db``, the greedy skip
list (re-measured). Units are the parts of ``quantization.skip_parts`` (``units='parts'``: a few forwards; layers
outside every part form ``other``) or single layers (``units='layers'``: two forwards per layer, about 400 for
full-size BasicVSR). Outputs are compared with the ground truth in float, clamped to [0, 1].
"""
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from vsrcompress.atomic_files import write_figure
from vsrcompress.bench.inputs import InputError, NetworkInputs, at_least, check_inputs, load_fp32_network, spread
from vsrcompress.bench.machine import load_average, machine_info, machine_line
from vsrcompress.export import footage_test_dataset, read_footage_windows
from vsrcompress.quantization import QuantConfig, calibrate, part_units, quantize_network, sensitivity_analysis

UNITS = ('parts', 'layers')


@dataclass
class SensitivityConfig(NetworkInputs):
    """What ``run`` measures (and ``NetworkInputs``: checkpoint, footage, threads, validation clips).

    Attributes:
        quantization: Bits, calibrator and float parts (``QuantConfig``).
        units: ``parts`` (skip_parts parts) or ``layers`` (single layers), switched as one.
        budget_db: PSNR loss vs float the suggested skip list must stay within.
        calib_windows: Calibration windows.
        calib_frames: Frames per calibration window.
        frames: First frames of each validation clip measured (None: whole clips).
    """
    quantization: QuantConfig = field(default_factory=QuantConfig)
    units: str = 'parts'
    budget_db: float = 0.05
    calib_windows: int = 8
    calib_frames: int = 3
    frames: int | None = None


def check(config: SensitivityConfig) -> None:
    """Refuse a configuration that cannot run, before any work (errors name the field and what is allowed)."""
    at_least(1, calib_windows=config.calib_windows)
    at_least(2, calib_frames=config.calib_frames, frames=config.frames)  # a recurrent network needs a sequence
    if config.units not in UNITS:
        raise ValueError(f'units: {config.units!r}; allowed: {list(UNITS)}')
    if not config.budget_db >= 0:
        raise ValueError(f'budget_db: must be >= 0 dB, got {config.budget_db}')
    check_inputs(config, 'an FP32 network, dense or pruned, ours or official with an arch')


def _load_inputs(config: SensitivityConfig) -> tuple[nn.Module, list[torch.Tensor], list[tuple[str, dict]]]:
    """The FP32 network, the calibration clips and the (cropped) validation clips; bad files fail here."""
    net = load_fp32_network(config, 'give the FP32 network')
    scale = int(net.scale)
    windows = read_footage_windows(config.footage, config.calib_frames, scale, 'train')
    if not windows:
        raise InputError(f'footage: no training clip of {config.footage} has {config.calib_frames} frames')
    calib = [w['lq'] for w in spread(windows, config.calib_windows)]
    val_set = footage_test_dataset(config.footage, 'val', scale)
    clips = []
    for i in range(min(len(val_set), config.val_clips or len(val_set))):
        item = val_set[i]
        frames = config.frames or item['lq'].shape[0]
        clips.append((item['folder'], {'lq': item['lq'][None, :frames], 'gt': item['gt'][None, :frames]}))
    return net, calib, clips


def run(config: SensitivityConfig, log: Callable[[str], None] | None = print) -> dict:
    """Every measurement of the module docstring, as one plain-data result."""
    log = log or (lambda line: None)
    torch.set_num_threads(config.threads)
    machine = machine_info(config.threads)
    quant = config.quantization
    fp32, calib, clips = _load_inputs(config)
    net = copy.deepcopy(fp32)
    quantize_network(net, quant)
    started = time.perf_counter()
    calibrate(net, calib, quant)
    units = part_units(net) if config.units == 'parts' else None
    what = f'{len(units)} parts' if units else 'every layer'
    log(f'calibrated in {time.perf_counter() - started:.1f} s; measuring {what}')
    started = time.perf_counter()
    report = sensitivity_analysis(net, [c['lq'] for _, c in clips], [c['gt'] for _, c in clips], config.budget_db,
                                  units)
    seconds = time.perf_counter() - started
    machine['load_average_after'] = load_average()
    return {
        'command': config.command,
        'machine': machine,
        'config': {'checkpoint': config.checkpoint, 'network': type(fp32).__name__, 'widths': fp32.width_spec(),
                   'footage': config.footage, 'units': config.units, 'quantization': quant.as_dict(),
                   'calib_windows': len(calib), 'calib_frames': config.calib_frames,
                   'val_clips': [name for name, _ in clips], 'frames': int(clips[0][1]['lq'].shape[1]),
                   'lq_size': list(clips[0][1]['lq'].shape[-2:]), 'analysis_s': seconds},
        'members': units or {},
        'report': report.as_dict(),
    }


def markdown(result: dict) -> str:
    """The report: float and quantized PSNR, one row per unit, the suggested skip list."""
    c, r, m = result['config'], result['report'], result['machine']
    q = c['quantization']
    kept = ', '.join(q['skip_parts']) or 'none'
    lines = [f"# Quantization sensitivity of {c['network']}", '', f"Command: `{result['command']}`", '',
             f"Network `{c['checkpoint']}`; {q['num_bits']}-bit, calibrator {q['calibrator']} on {c['calib_windows']} "
             f"windows of {c['calib_frames']} training frames; parts kept float throughout: {kept}. PSNR on the "
             f"first {c['frames']} frames of {len(c['val_clips'])} validation clips of `{c['footage']}` "
             f"({c['lq_size'][0]}x{c['lq_size'][1]} LR), float outputs clamped to [0, 1]. Units: {c['units']}. "
             f"Analysis took {c['analysis_s']:.0f} s. {machine_line(m)}", '',
             f"Float {r['psnr_float']:.3f} dB; every unit quantized {r['psnr_quantized']:.3f} dB "
             f"({r['psnr_quantized'] - r['psnr_float']:+.3f} dB).", '',
             '| unit | layers | PSNR only it quantized | drop (dB) | PSNR all but it quantized | gain as float (dB) |',
             '|---|---|---|---|---|---|']
    for s in r['layers']:
        count = len(result['members'].get(s['name'], [s['name']]))
        lines.append(f"| {s['name']} | {count} | {s['psnr_alone']:.3f} | {s['drop_alone']:+.3f} | "
                     f"{s['psnr_as_float']:.3f} | {s['gain_as_float']:+.3f} |")
    lines += ['', f"Suggested float units for a {r['psnr_budget_db']:g} dB budget: "
              f"{r['suggested_skip'] or 'none'} -> {r['psnr_with_suggested_skip']:.3f} dB "
              f"({r['psnr_with_suggested_skip'] - r['psnr_float']:+.3f} dB vs float, measured)."]
    return '\n'.join(lines) + '\n'


def plot(result: dict, path: str) -> None:
    """Per unit: PSNR lost with only it quantized, and PSNR regained with only it float."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    layers = result['report']['layers'][:40]
    names = [s['name'] for s in layers]
    fig, ax = plt.subplots(figsize=(max(7, 0.45 * len(names) + 3), 4.5))
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [s['drop_alone'] for s in layers], 0.4, label='drop with only it quantized')
    ax.bar([i + 0.2 for i in x], [s['gain_as_float'] for s in layers], 0.4, label='gain with only it float')
    ax.axhline(0, color='black', linewidth=0.6)
    ax.set_xticks(list(x), names, rotation=45, ha='right', fontsize=8)
    ax.set(ylabel='PSNR (dB)', title=f"{result['config']['network']}: INT8 sensitivity per {result['config']['units']}"
           f" (most sensitive first)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    write_figure(path, fig)
