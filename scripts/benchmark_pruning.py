"""Speed of pruned BasicVSR/IconVSR: dense vs 25/50/75 % width removal vs a MAC budget, measured in one run.

What is measured and how: ``vsrcompress/bench/pruning_speed.py``. MACs per frame are counted at ``--mac-size``
(default 180x320) whatever size is timed; peak memory comes from a fresh child process per variant.

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
import sys

from vsrcompress.bench import pruning_speed
from vsrcompress.bench.pruning_speed import ARCHS, FORMATS, PruningSpeedConfig, ratio_target
from vsrcompress.bench.script import run_benchmark


def _ratio(text: str) -> tuple[str, dict]:
    try:
        return ratio_target(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def main(argv: list[str] | None = None) -> int:
    d = PruningSpeedConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--archs', nargs='+', choices=sorted(ARCHS), default=list(d.archs))
    parser.add_argument('--num-feat', type=int, default=d.num_feat)
    parser.add_argument('--num-block', type=int, default=d.num_block)
    parser.add_argument('--scale', type=int, choices=(2, 4), default=d.scale)
    parser.add_argument('--lq-size', type=int, nargs=2, default=list(d.lq_size), metavar=('H', 'W'),
                        help='LR size of the timed clip')
    parser.add_argument('--mac-size', type=int, nargs=2, default=list(d.mac_size), metavar=('H', 'W'),
                        help='LR size at which MACs per frame are counted and the MAC budget applies')
    parser.add_argument('--frames', type=int, default=None,
                        help='frames per timed clip (default: 2 for BasicVSR; 11 for IconVSR: keyframes 0, 5, 10, '
                             'close to the one in 5 of a long video that MACs per frame count)')
    parser.add_argument('--repeats', type=int, default=d.repeats, help='timed rounds over all variants')
    parser.add_argument('--warmup', type=int, default=d.warmup, help='untimed rounds first')
    parser.add_argument('--threads', type=int, default=d.threads)
    parser.add_argument('--ratios', type=_ratio, nargs='*', default=d.ratios,
                        help='width-removal variants: a ratio for every part, optionally followed by per-part '
                             'overrides, e.g. 0.5,edvr=0.75')
    parser.add_argument('--mac-budget', type=float, default=d.mac_budget, help='0 leaves the budget variant out')
    parser.add_argument('--formats', nargs='+', choices=FORMATS, default=list(d.formats),
                        help='memory formats to time (each variant in each)')
    parser.add_argument('--no-memory', action='store_true', help='skip the per-variant peak-memory children')
    parser.add_argument('--quick', action='store_true',
                        help='a few minutes: 64x112 clip, 1 repeat (MACs still at --mac-size)')
    parser.add_argument('--save-checkpoints', metavar='DIR',
                        help='also write each variant to DIR/<arch>_<variant>.pth (for scripts/model_complexity.py)')
    parser.add_argument('--out', default='results/benchmarks')
    parser.add_argument('--name', default='pruning_speed')
    args = parser.parse_args(argv)
    if args.quick:
        args.lq_size, args.repeats, args.warmup = [64, 112], 1, 1
    config = PruningSpeedConfig(tuple(args.archs), args.num_feat, args.num_block, args.scale, tuple(args.lq_size),
                                tuple(args.mac_size), args.frames, args.repeats, args.warmup, args.threads,
                                args.ratios, args.mac_budget, tuple(args.formats), memory=not args.no_memory,
                                save_checkpoints=args.save_checkpoints, quick=args.quick)
    return run_benchmark(pruning_speed, config, parser, args.out, args.name)


if __name__ == '__main__':
    sys.exit(main())
