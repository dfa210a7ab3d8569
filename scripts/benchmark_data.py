#!/usr/bin/env python
"""Throughput of the footage data path on the demo footage: is data preparation or loading a bottleneck?

    python scripts/benchmark_data.py            # results/benchmarks/data_throughput.{json,md,png}

Measures prepare_footage (frames/s), the footage loaders (samples/s) and, for comparison, training steps of the
demo network; what and how: ``vsrcompress/bench/data_throughput.py``. On a shared machine every number is a lower
bound (the load average is recorded).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a clean checkout

from vsrcompress.bench import data_throughput  # noqa: E402
from vsrcompress.bench.data_throughput import DataThroughputConfig  # noqa: E402
from vsrcompress.bench.script import command_line, run_benchmark  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv: list[str] | None = None) -> int:
    defaults = DataThroughputConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--output-dir', default=os.path.join(REPO, 'results', 'benchmarks'))
    parser.add_argument('--name', default='data_throughput', help='base name of the result files')
    parser.add_argument('--frames', type=int, default=defaults.frames,
                        help=f'frames per demo clip (>= 15 for the fine-tune window; default: {defaults.frames})')
    parser.add_argument('--batches', type=int, default=defaults.batches,
                        help=f'loader batches timed per case (default: {defaults.batches})')
    parser.add_argument('--train-iters', type=int, default=defaults.train_iters,
                        help=f'training steps timed (default: {defaults.train_iters})')
    parser.add_argument('--train-clips', type=int, default=defaults.train_clips,
                        help=f'demo training clips, the prepare_footage input (default: {defaults.train_clips})')
    parser.add_argument('--gt-size', type=int, nargs=2, default=list(defaults.gt_size), metavar=('H', 'W'),
                        help='GT size of the demo frames (default: %(default)s)')
    parser.add_argument('--workers', type=int, help='loader workers of every case (default: the option files\')')
    args = parser.parse_args(argv)
    config = DataThroughputConfig(args.frames, args.batches, args.train_iters, args.train_clips,
                                  gt_size=tuple(args.gt_size), workers=args.workers,
                                  command=command_line('benchmark_data.py', argv))
    return run_benchmark(data_throughput, config, parser, args.output_dir, args.name)


if __name__ == '__main__':
    sys.exit(main())
