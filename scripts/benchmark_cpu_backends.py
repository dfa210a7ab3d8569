"""Full-size BasicVSR/IconVSR on this CPU: dense vs pruned vs pruned INT8 in PyTorch, ONNX Runtime and OpenVINO.

Usage::

    python scripts/benchmark_cpu_backends.py                                   # 180x320 LR, 5-frame windows
    python scripts/benchmark_cpu_backends.py --archs basicvsr --height 90 --width 160 --repeats 3

Writes results/benchmarks/cpu_backends.{json,md,png} (``--name`` changes the base name). See
``vsrcompress/bench/cpu_backends.py`` for what is measured and how.
"""
import argparse
import os
import sys

import vsrcompress  # noqa: F401  (registers the archs with basicsr)
from vsrcompress.bench import cpu_backends
from vsrcompress.bench.cpu_backends import CpuBackendsConfig
from vsrcompress.bench.script import command_line, run_benchmark

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv: list[str] | None = None) -> int:
    defaults = CpuBackendsConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--archs', nargs='+', default=list(defaults.archs), help='basicvsr and/or iconvsr')
    parser.add_argument('--frames', type=int, default=defaults.frames, help='window length')
    parser.add_argument('--height', type=int, default=defaults.height, help='LR height')
    parser.add_argument('--width', type=int, default=defaults.width, help='LR width')
    parser.add_argument('--mac-budget', type=float, default=defaults.mac_budget, help='pruned MACs / dense MACs')
    parser.add_argument('--repeats', type=int, default=defaults.repeats, help='timed interleaved rounds')
    parser.add_argument('--warmup', type=int, default=defaults.warmup, help='untimed rounds first')
    parser.add_argument('--threads', type=int, default=defaults.threads, help='CPU threads (0: all)')
    parser.add_argument('--clips', help='footage dataset for INT8 calibration (default: the demo footage)')
    parser.add_argument('--streams', type=int, default=defaults.streams, help='inputs at once (0: skip that part)')
    parser.add_argument('--stream-frames', type=int, default=defaults.stream_frames, help='frames per input')
    parser.add_argument('--tiny', action='store_true', help='8-channel, 1-block networks: a quick check of the '
                        'whole run, no meaningful numbers')
    parser.add_argument('--output-dir', default=os.path.join(ROOT, 'results', 'benchmarks'))
    parser.add_argument('--name', default='cpu_backends', help='base name of the result files')
    args = parser.parse_args(argv)
    config = CpuBackendsConfig(tuple(args.archs), args.frames, args.height, args.width, args.mac_budget, args.repeats,
                               args.warmup, args.threads, args.clips, streams=args.streams,
                               stream_frames=args.stream_frames,
                               network={'num_feat': 8, 'num_block': 1} if args.tiny else {},
                               command=command_line('benchmark_cpu_backends.py', argv))
    return run_benchmark(cpu_backends, config, parser, args.output_dir, args.name)


if __name__ == '__main__':
    sys.exit(main())
