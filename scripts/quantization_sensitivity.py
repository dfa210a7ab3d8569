"""Which parts (or layers) of a trained network cost PSNR when quantized to INT8: the measurement behind the skip
lists of the option files. Prints the table and writes ``<out>/<name>.{json,md,png}`` (default
results/benchmarks/quantization_sensitivity).

The checkpoint's network is quantized as ``QATVSRModel`` does (``--num-bits``, ``--calibrator``; ``--skip-parts``
stay float throughout), calibrated on ``--calib-windows`` windows of ``--calib-frames`` training frames, then
``vsrcompress.quantization.sensitivity_analysis`` measures on the first ``--frames`` frames of each validation clip:
for every unit, the PSNR with only it quantized and with all but it quantized, and, for ``--budget-db``, the
greedy skip list (re-measured). Units are the parts of ``quantization.skip_parts`` (``--units parts``, the default:
a few forwards; layers outside every part form ``other``) or single layers (``--units layers``: two forwards per
layer, about 400 for full-size BasicVSR). Outputs are compared with the ground truth in float, clamped to [0, 1].

    python scripts/quantization_sensitivity.py                                  # the demo teacher on datasets/demo
    python scripts/download_pretrained.py BasicVSR_REDS4                       # official full-size weights
    python scripts/quantization_sensitivity.py --name quantization_sensitivity_basicvsr_reds4 \\
        --checkpoint experiments/pretrained_models/BasicVSR_REDS4-543c8261.pth \\
        --arch BasicVSRNet --arch-opt num_feat=64 --arch-opt num_block=30 --frames 6
"""
import argparse
import copy
import os
import platform
import sys
import time

import torch
from torch import nn

import vsrcompress  # noqa: F401  (registers the archs and makes basicsr importable: before any basicsr import)
from vsrcompress.export import footage_test_dataset, load_deployable_network, read_footage_windows
from vsrcompress.export.cli_options import add_arch_arguments, network_options
from vsrcompress.footage import layout
from vsrcompress.quantization import (CALIBRATORS, SKIP_PARTS, QuantConfig, calibrate, part_units, quantize_network,
                                      sensitivity_analysis)
from vsrcompress.atomic_files import write_benchmark_result, write_figure

DEFAULT_CHECKPOINT = 'experiments/demo_basicvsr_prune_qat_teacher/models/net_g_latest.pth'
DEFAULT_FOOTAGE = 'datasets/demo'


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--checkpoint', default=DEFAULT_CHECKPOINT,
                        help=f'FP32 network, dense or pruned, ours or official with --arch (default: the demo '
                             f'teacher, {DEFAULT_CHECKPOINT})')
    parser.add_argument('--footage', default=DEFAULT_FOOTAGE,
                        help=f'footage dataset: train split for calibration, val split for PSNR (default '
                             f'{DEFAULT_FOOTAGE})')
    parser.add_argument('--units', choices=('parts', 'layers'), default='parts',
                        help='what is switched as one: skip_parts parts (default) or single layers')
    parser.add_argument('--budget-db', type=float, default=0.05,
                        help='PSNR loss vs float the suggested skip list must stay within (default 0.05)')
    parser.add_argument('--num-bits', type=int, default=8, help='quantization bits (default 8)')
    parser.add_argument('--calibrator', choices=CALIBRATORS, default='max', help='range calibrator (default max)')
    parser.add_argument('--skip-parts', nargs='*', choices=sorted(SKIP_PARTS), default=[],
                        help='parts kept float throughout (default: none, every layer is measured)')
    parser.add_argument('--calib-windows', type=int, default=8, help='calibration windows (default 8)')
    parser.add_argument('--calib-frames', type=int, default=3, help='frames per calibration window (default 3)')
    parser.add_argument('--frames', type=int, default=None,
                        help='first frames of each validation clip measured (default: the whole clips)')
    parser.add_argument('--val-clips', type=int, default=None, help='validation clips measured (default: all)')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads(),
                        help=f'torch CPU threads (default {torch.get_num_threads()})')
    parser.add_argument('--out', default='results/benchmarks', help='output folder (default results/benchmarks)')
    parser.add_argument('--name', default='quantization_sensitivity',
                        help='output file name without extension (default quantization_sensitivity)')
    add_arch_arguments(parser)
    args = parser.parse_args(argv)
    for flag, value in {'--calib-windows': args.calib_windows, '--threads': args.threads,
                        '--frames': args.frames or 2, '--val-clips': args.val_clips or 1}.items():
        if value < 1:
            parser.error(f'{flag}: must be >= 1, got {value}')
    if args.calib_frames < 2 or (args.frames is not None and args.frames < 2):
        parser.error('--calib-frames and --frames: a recurrent network needs >= 2 frames')
    if not args.budget_db >= 0:
        parser.error(f'--budget-db: must be >= 0 dB, got {args.budget_db}')
    try:
        args.config = QuantConfig(num_bits=args.num_bits, calibrator=args.calibrator, calib_batches=args.calib_windows,
                                  skip_parts=tuple(args.skip_parts))
        args.network_opt = network_options(args.arch, args.arch_opt)
    except ValueError as err:
        parser.error(str(err))
    if not os.path.isfile(args.checkpoint):
        parser.error(f'--checkpoint: {args.checkpoint} does not exist' + (
            ' (the demo teacher: python scripts/make_demo_footage.py && python compress.py -opt '
            'options/demo/basicvsr_prune_qat_demo.yml makes it)' if args.checkpoint == DEFAULT_CHECKPOINT else ''))
    for split in layout.SPLITS:
        if not os.path.isfile(layout.meta_info_path(args.footage, split)):
            parser.error(f'--footage: {args.footage} has no {split} split ({layout.meta_info_path(args.footage, split)}'
                         ' is missing); make it with scripts/make_demo_footage.py or scripts/prepare_footage.py')
    os.makedirs(args.out, exist_ok=True)
    return args


def load_inputs(args: argparse.Namespace) -> tuple[nn.Module, list[torch.Tensor], list[tuple[str, dict]]]:
    """The FP32 network, the calibration clips and the (cropped) validation clips; bad files fail here."""
    try:
        loaded = load_deployable_network(args.checkpoint, args.network_opt, args.param_key)
    except (ValueError, KeyError) as err:
        raise SystemExit(f'--checkpoint: {err}') from err
    if loaded.int8:
        raise SystemExit(f'--checkpoint: {args.checkpoint} is an INT8 checkpoint; give the FP32 network')
    net = loaded.net.eval().requires_grad_(False)
    scale = int(net.scale)
    windows = read_footage_windows(args.footage, args.calib_frames, scale, 'train')
    if not windows:
        raise SystemExit(f'--footage: no training clip of {args.footage} has {args.calib_frames} frames')
    count = min(args.calib_windows, len(windows))
    calib = [windows[round(i * (len(windows) - 1) / max(count - 1, 1))]['lq'] for i in range(count)]
    val_set = footage_test_dataset(args.footage, 'val', scale)
    clips = []
    for i in range(min(len(val_set), args.val_clips or len(val_set))):
        item = val_set[i]
        frames = args.frames or item['lq'].shape[0]
        clips.append((item['folder'], {'lq': item['lq'][None, :frames], 'gt': item['gt'][None, :frames]}))
    return net, calib, clips


def run(args: argparse.Namespace, command: str) -> dict:
    torch.set_num_threads(args.threads)
    load_before = [round(v, 2) for v in os.getloadavg()]
    fp32, calib, clips = load_inputs(args)
    net = copy.deepcopy(fp32)
    quantize_network(net, args.config)
    started = time.perf_counter()
    calibrate(net, calib, args.config)
    units = part_units(net) if args.units == 'parts' else None
    what = f'{len(units)} parts' if units else 'every layer'
    print(f'calibrated in {time.perf_counter() - started:.1f} s; measuring {what}', flush=True)
    started = time.perf_counter()
    report = sensitivity_analysis(net, [c['lq'] for _, c in clips], [c['gt'] for _, c in clips], args.budget_db,
                                  units)
    seconds = time.perf_counter() - started
    return {
        'command': command,
        'machine': {'when': time.strftime('%Y-%m-%d %H:%M:%S %Z'), 'processor': platform.processor() or
                    platform.machine(), 'cpus': os.cpu_count(), 'threads': args.threads, 'torch': torch.__version__,
                    'load_average_before': load_before, 'load_average_after': [round(v, 2) for v in os.getloadavg()]},
        'config': {'checkpoint': args.checkpoint, 'network': type(fp32).__name__, 'widths': fp32.width_spec(),
                   'footage': args.footage, 'units': args.units, 'quantization': args.config.as_dict(),
                   'calib_windows': len(calib), 'calib_frames': args.calib_frames,
                   'val_clips': [name for name, _ in clips], 'frames': int(clips[0][1]['lq'].shape[1]),
                   'lq_size': list(clips[0][1]['lq'].shape[-2:]), 'analysis_s': seconds},
        'members': units or {},
        'report': report.as_dict(),
    }


def markdown(result: dict) -> str:
    c, r, m = result['config'], result['report'], result['machine']
    q = c['quantization']
    kept = ', '.join(q['skip_parts']) or 'none'
    lines = [f"# Quantization sensitivity of {c['network']}", '', f"Command: `{result['command']}`", '',
             f"Network `{c['checkpoint']}`; {q['num_bits']}-bit, calibrator {q['calibrator']} on {c['calib_windows']} "
             f"windows of {c['calib_frames']} training frames; parts kept float throughout: {kept}. PSNR on the "
             f"first {c['frames']} frames of {len(c['val_clips'])} validation clips of `{c['footage']}` "
             f"({c['lq_size'][0]}x{c['lq_size'][1]} LR), float outputs clamped to [0, 1]. Units: {c['units']}. "
             f"Analysis took {c['analysis_s']:.0f} s on {m['threads']} threads of {m['processor']} (load "
             f"{m['load_average_before']} before, {m['load_average_after']} after).", '',
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = ' '.join(['python', 'scripts/quantization_sensitivity.py', *(sys.argv[1:] if argv is None else argv)])
    result = run(args, command)
    write_benchmark_result(os.path.join(args.out, args.name), result, markdown(result), plot)
    return 0


if __name__ == '__main__':
    sys.exit(main())
