"""Speed of pruned BasicVSR/IconVSR: dense vs 25/50/75 % width removal vs a MAC budget, measured in one run.

For each architecture the dense network (random weights: speed does not depend on their values) and its pruned
variants (every part pruned: trunk, blocks, tail, SpyNet, IconVSR's EDVR; L1, uniform, round_to 8) are timed
interleaved, round-robin over the variants with the order reversed every other repeat, with the same torch thread
count, in each memory format asked for (NCHW ``contiguous`` and ``channels_last``, which spares oneDNN a layout
reorder around every conv; speed-ups compare within one format).
MACs per frame are counted at the reference LR size (default 180x320) whatever size is timed; the dense and
the MAC-budget variant are also recounted with torch-pruning's counter as a check. Peak memory is measured in
a fresh child process per variant: the RSS high-water mark of one forward (Linux ``/proc/self/clear_refs``
resets it after the imports and the model build), and its rise above the RSS before the forward.

    python scripts/benchmark_pruning.py                        # full size: 64 ch, 30 blocks, 180x320
    python scripts/benchmark_pruning.py --quick                # minutes: smaller clip, 1 repeat
    python scripts/benchmark_pruning.py --archs basicvsr --lq-size 90 160 --frames 2 --repeats 3
    python scripts/benchmark_pruning.py --archs iconvsr --lq-size 90 160 --ratios 0.5,edvr=0.75   # per-part ratios

Writes results/benchmarks/pruning_speed.{json,md,png} (``--out``/``--name`` change that). ``--save-checkpoints DIR``
also writes every variant as a checkpoint, so that ``scripts/model_complexity.py`` times the same networks in ONNX
Runtime (the CPU deployment runtime), interleaved in one run as well:

    python scripts/benchmark_pruning.py --archs basicvsr --ratios 0.5 --save-checkpoints experiments/pruning_speed
    python scripts/model_complexity.py --models experiments/pruning_speed/basicvsr_*.pth --input-size 320 180 \
        --frames 2 --backends onnxruntime-cpu --no-memory --output results/benchmarks/pruning_speed_basicvsr_ort
"""
import argparse
import copy
import multiprocessing
import os
import platform
import statistics
import time

import torch

from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet, IconVSRNet
from vsrcompress.checkpoint import network_checkpoint, save_atomic
from vsrcompress.pruning import PARTS, count_complexity, prune_network
from vsrcompress.atomic_files import write_benchmark_result, write_figure

ARCHS = {'basicvsr': BasicVSRNet, 'iconvsr': IconVSRNet}
FORMATS = {'contiguous': torch.contiguous_format, 'channels_last': torch.channels_last}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--archs', nargs='+', choices=sorted(ARCHS), default=['basicvsr', 'iconvsr'])
    parser.add_argument('--num-feat', type=int, default=64)
    parser.add_argument('--num-block', type=int, default=30)
    parser.add_argument('--scale', type=int, choices=(2, 4), default=4)
    parser.add_argument('--lq-size', type=int, nargs=2, default=[180, 320], metavar=('H', 'W'),
                        help='LR size of the timed clip')
    parser.add_argument('--mac-size', type=int, nargs=2, default=[180, 320], metavar=('H', 'W'),
                        help='LR size at which MACs per frame are counted and the MAC budget applies')
    parser.add_argument('--frames', type=int, default=None,
                        help='frames per timed clip (default: 2 for BasicVSR; 11 for IconVSR: keyframes 0, 5, 10, '
                             'close to the one in 5 of a long video that MACs per frame count)')
    parser.add_argument('--repeats', type=int, default=3, help='timed rounds over all variants')
    parser.add_argument('--warmup', type=int, default=1, help='untimed rounds first')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--ratios', type=ratio_target, nargs='*',
                        default=[ratio_target(r) for r in ('0.25', '0.5', '0.75')],
                        help='width-removal variants: a ratio for every part, optionally followed by per-part '
                             'overrides, e.g. 0.5,edvr=0.75')
    parser.add_argument('--mac-budget', type=float, default=0.25, help='0 leaves the budget variant out')
    parser.add_argument('--formats', nargs='+', choices=FORMATS, default=list(FORMATS),
                        help='memory formats to time (each variant in each)')
    parser.add_argument('--no-memory', action='store_true', help='skip the per-variant peak-memory children')
    parser.add_argument('--quick', action='store_true',
                        help='a few minutes: 64x112 clip, 1 repeat (MACs still at --mac-size)')
    parser.add_argument('--save-checkpoints', metavar='DIR',
                        help='also write each variant to DIR/<arch>_<variant>.pth (for scripts/model_complexity.py)')
    parser.add_argument('--out', default='results/benchmarks')
    parser.add_argument('--name', default='pruning_speed')
    args = parser.parse_args()
    if args.quick:
        args.lq_size, args.repeats, args.warmup = [64, 112], 1, 1
    if args.repeats < 1 or args.threads < 1 or not 0 <= args.mac_budget <= 1:
        parser.error('repeats and threads >= 1, mac-budget in [0, 1]')
    return args


def ratio_target(text: str) -> tuple[str, dict]:
    """``'0.5'`` or ``'0.5,edvr=0.75'`` -> (label, per-part ratios), every ratio in (0, 1)."""
    try:
        first, *overrides = text.split(',')
        ratios = {part: float(first) for part in PARTS}
        ratios.update({part: float(value) for part, value in (item.split('=') for item in overrides)})
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r}: expected R or R,PART=R,... (parts: {list(PARTS)})') from None
    if set(ratios) - set(PARTS) or not all(0 < r < 1 for r in ratios.values()):
        raise argparse.ArgumentTypeError(f'{text!r}: ratios must be in (0, 1), parts in {list(PARTS)}')
    return ' '.join(['ratio', first, *overrides]).replace('=', ' '), ratios


def arch_kwargs(args: argparse.Namespace) -> dict:
    return {'num_feat': args.num_feat, 'num_block': args.num_block, 'scale': args.scale}


def build_variants(name: str, args: argparse.Namespace) -> list[dict]:
    """The dense network and its pruned copies, each with its pruning report."""
    torch.manual_seed(0)
    dense = ARCHS[name](**arch_kwargs(args)).eval()
    common = {'criterion': 'l1', 'round_to': 8, 'min_width': 8, 'reference_size': list(args.mac_size)}
    targets = [(label, {'ratio': ratios}) for label, ratios in args.ratios]
    if args.mac_budget:
        targets.append((f'MACs <= {args.mac_budget:g}', {'mac_budget': args.mac_budget}))
    variants = []
    for label, target in targets:
        net = copy.deepcopy(dense)
        started = time.perf_counter()
        report = prune_network(net, {**common, **target})
        spec = net.width_spec()
        print(f'{name} {label}: pruned in {time.perf_counter() - started:.1f} s; hidden {spec["backward"]}/'
              f'{spec["forward"]}, upsample {spec["upsample"]}, hr {spec["hr"]}, '
              f'{100 * report["mac_fraction"]:.1f} % MACs', flush=True)
        variants.append({'label': label, 'net': net, 'report': report})
    base = variants[0]['report']
    dense_report = {'widths_after': dense.width_spec(), 'params_after': base['params_before'],
                    'macs_per_frame_after': base['macs_per_frame_before'], 'mac_fraction': 1.0}
    return [{'label': 'dense', 'net': dense, 'report': dense_report}, *variants]


def save_variants(name: str, variants: list[dict], args: argparse.Namespace) -> None:
    """Each variant as a deployable checkpoint: ``dense``, ``ratio0.5``, ``ratio0.5edvr0.75``, ``mac0.25``."""
    os.makedirs(args.save_checkpoints, exist_ok=True)
    arch = {'type': ARCHS[name].__name__, **arch_kwargs(args)}
    for variant in variants:
        report = variant['report']
        slug = ('dense' if variant['label'] == 'dense' else variant['label'].replace(' ', '')
                if report['config'].get('ratio') else f"mac{report['config']['mac_budget']:g}")
        path = os.path.join(args.save_checkpoints, f'{name}_{slug}.pth')
        save_atomic(network_checkpoint(variant['net'], arch), path)
        print(f'  wrote {path}', flush=True)


def time_variants(variants: list[dict], clip: torch.Tensor, args: argparse.Namespace) -> None:
    """Seconds per clip of each (variant, format), timed round-robin in alternating order; median kept."""
    entries = [(v, fmt) for fmt in args.formats for v in variants]
    times = {(v['label'], fmt): [] for v, fmt in entries}
    with torch.inference_mode():
        for rnd in range(args.warmup + args.repeats):
            for variant, fmt in entries if rnd % 2 == 0 else entries[::-1]:
                net = variant['net'].to(memory_format=FORMATS[fmt])
                started = time.perf_counter()
                net(clip)  # 5-D clip; channels_last weights make every conv output channels_last
                elapsed = time.perf_counter() - started
                if rnd >= args.warmup:
                    times[(variant['label'], fmt)].append(elapsed)
            print(f'  round {rnd + 1}/{args.warmup + args.repeats} done', flush=True)
    for variant in variants:
        variant['seconds'] = {fmt: times[(variant['label'], fmt)] for fmt in args.formats}
        variant['median_s'] = {fmt: statistics.median(times[(variant['label'], fmt)]) for fmt in args.formats}
        variant['net'].to(memory_format=torch.contiguous_format)


def _proc_status_mib(field: str) -> float:
    with open('/proc/self/status') as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ':')) / 1024


def _memory_child(arch: str, kwargs: dict, widths: dict, state: dict, clip_shape: tuple, threads: int,
                  queue: multiprocessing.Queue) -> None:
    """Peak RSS of one forward in a fresh process; the high-water mark is reset after imports and model build."""
    torch.set_num_threads(threads)
    net = ARCHS[arch](**kwargs, widths=widths).eval()
    net.load_state_dict(state)
    clip = torch.rand(*clip_shape)
    with open('/proc/self/clear_refs', 'w') as refs:
        refs.write('5')  # Linux >= 4.0: VmHWM := VmRSS
    before = _proc_status_mib('VmRSS')
    with torch.inference_mode():
        net(clip)
    peak = _proc_status_mib('VmHWM')
    queue.put({'peak_rss_mib': peak, 'forward_peak_mib': peak - before})


def measure_memory(arch: str, variants: list[dict], clip_shape: tuple, args: argparse.Namespace) -> None:
    context = multiprocessing.get_context('spawn')
    for variant in variants:
        queue = context.Queue()
        child = context.Process(target=_memory_child, args=(
            arch, arch_kwargs(args), variant['net'].width_spec(), variant['net'].state_dict(), clip_shape,
            args.threads, queue))
        child.start()
        variant.update(queue.get())
        child.join()


def summarize(arch: str, variants: list[dict], frames: int, checks: dict) -> dict:
    dense_s = variants[0]['median_s']
    rows = []
    for v in variants:
        report = v['report']
        rows.append({
            'variant': v['label'], 'widths': report['widths_after'], 'params': report['params_after'],
            'macs_per_frame': report['macs_per_frame_after'], 'mac_fraction': report['mac_fraction'],
            'seconds_per_clip': v['seconds'],
            'median_ms_per_frame': {f: 1000 * s / frames for f, s in v['median_s'].items()},
            'speedup': {f: dense_s[f] / s for f, s in v['median_s'].items()},
            'peak_rss_mib': v.get('peak_rss_mib'), 'forward_peak_mib': v.get('forward_peak_mib')})
    return {'arch': arch, 'frames': frames, 'rows': rows, 'tp_counter_check': checks}


def markdown(results: list[dict], meta: dict) -> str:
    lines = ['# Pruning speed benchmark', '',
             f'CPU: {meta["cpu"]}, torch {meta["torch"]}, {meta["threads"]} threads; timed clip '
             f'{meta["lq_size"][0]}x{meta["lq_size"][1]} LR, x{meta["scale"]}, {meta["repeats"]} timed repeats '
             f'(median, interleaved); MACs per frame at {meta["mac_size"][0]}x{meta["mac_size"][1]} LR. '
             f'Networks: {meta["num_feat"]} ch, {meta["num_block"]} blocks. Pruned: trunk, blocks, tail, SpyNet, '
             'EDVR (IconVSR) (L1, uniform, round_to 8).', '']
    formats = meta['formats']
    for result in results:
        timing_heads = ''.join(f' ms/frame {f} | speed-up {f} |' for f in formats)
        lines += [f'## {result["arch"]} ({result["frames"]} frames per clip)', '',
                  '| variant | hidden (b/f) | tail (up, hr) | params (M) | GMACs/frame | MACs vs dense |'
                  + timing_heads + ' peak RSS (MiB) | forward peak (MiB) |',
                  '|---' * (8 + 2 * len(formats)) + '|']
        for r in result['rows']:
            w = r['widths']
            mem = [f'{r[k]:.0f}' if r[k] is not None else '-' for k in ('peak_rss_mib', 'forward_peak_mib')]
            timing = ''.join(f' {r["median_ms_per_frame"][f]:.0f} | {r["speedup"][f]:.2f}x |' for f in formats)
            edvr = f', EDVR {w["edvr"]}' if 'edvr' in w else ''
            lines.append(f'| {r["variant"]} | {w["backward"]}/{w["forward"]}{edvr} | {w["upsample"]}, {w["hr"]} | '
                         f'{r["params"] / 1e6:.2f} | {r["macs_per_frame"] / 1e9:.1f} | '
                         f'{100 * r["mac_fraction"]:.1f} % |{timing} {mem[0]} | {mem[1]} |')
        check = result['tp_counter_check']
        lines += ['', 'torch-pruning counter (meta device) vs engine report, GMACs/frame: '
                  + ', '.join(f'{k}: {v["counted"] / 1e9:.2f} vs {v["reported"] / 1e9:.2f}' for k, v in check.items()),
                  '']
    return '\n'.join(lines)


def plot(results: list[dict], formats: list[str], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    series = [(result, fmt) for result in results for fmt in formats]
    for result, fmt in series:
        rows = sorted(result['rows'], key=lambda r: r['mac_fraction'])
        axes[0].plot([100 * r['mac_fraction'] for r in rows], [r['median_ms_per_frame'][fmt] for r in rows], 'o-',
                     label=f'{result["arch"]} {fmt}')
        for r in rows:
            axes[0].annotate(r['variant'], (100 * r['mac_fraction'], r['median_ms_per_frame'][fmt]), fontsize=7)
    axes[0].set_xlabel('MACs per frame, % of dense')
    axes[0].set_ylabel('CPU latency, ms per frame')
    axes[0].legend(fontsize=8)
    width = 0.8 / len(series)
    for i, (result, fmt) in enumerate(series):
        rows = result['rows']
        axes[1].bar([k + i * width for k in range(len(rows))], [r['speedup'][fmt] for r in rows], width,
                    label=f'{result["arch"]} {fmt}')
        axes[1].set_xticks([k + width * (len(series) - 1) / 2 for k in range(len(rows))],
                           [r['variant'] for r in rows], rotation=20, fontsize=8)
    axes[1].axhline(3.0, color='gray', linestyle='--', linewidth=1, label='3x target')
    axes[1].set_ylabel('speed-up over dense (same run)')
    axes[1].legend()
    fig.tight_layout()
    write_figure(path, fig, dpi=120)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    meta = {'cpu': platform.processor() or platform.machine(), 'torch': torch.__version__, 'threads': args.threads,
            'lq_size': args.lq_size, 'mac_size': args.mac_size, 'scale': args.scale, 'repeats': args.repeats,
            'warmup': args.warmup, 'num_feat': args.num_feat, 'num_block': args.num_block, 'quick': args.quick,
            'formats': args.formats}
    results = []
    for arch in args.archs:
        frames = args.frames or (2 if arch == 'basicvsr' else 11)
        variants = build_variants(arch, args)
        if args.save_checkpoints:
            save_variants(arch, variants, args)
        checks = {}
        for variant in (variants[0], variants[-1]):
            counted = count_complexity(variant['net'], tuple(args.mac_size))['macs_per_frame']
            checks[variant['label']] = {'counted': counted, 'reported': variant['report']['macs_per_frame_after']}
        clip = torch.rand(1, frames, 3, *args.lq_size)
        print(f'{arch}: timing {len(variants)} variants on {frames}x{args.lq_size[0]}x{args.lq_size[1]}', flush=True)
        time_variants(variants, clip, args)
        if not args.no_memory:
            measure_memory(arch, variants, tuple(clip.shape), args)
        results.append(summarize(arch, variants, frames, checks))
        for row in results[-1]['rows']:
            print(f'  {row["variant"]:>14}: {row["macs_per_frame"] / 1e9:7.1f} GMACs/frame '
                  f'({100 * row["mac_fraction"]:5.1f} %), '
                  + ', '.join(f'{f} {row["median_ms_per_frame"][f]:.0f} ms/frame {row["speedup"][f]:.2f}x'
                              for f in args.formats), flush=True)
    write_benchmark_result(os.path.join(args.out, args.name), {'meta': meta, 'results': results},
                           markdown(results, meta), lambda _, path: plot(results, args.formats, path))


if __name__ == '__main__':
    main()
