"""Deployment speed and streaming quality on this CPU: torch FP32 vs ONNX Runtime FP32 vs ONNX Runtime INT8.

Three parts, one run: (1) model latency per frame, interleaved, with PSNR against torch FP32; (2) streaming a
frame folder through the pipeline with the ONNX Runtime graphs; (3) an interval/overlap sweep (intervals 3, 5, 8,
15 and overlaps 0, 2, 4 by default). What is measured and how: ``vsrcompress/bench/deploy.py``.

Without ``--checkpoint`` the network has random weights (speed does not depend on them) and INT8 is post-training
quantization calibrated on synthetic moving-texture clips; its PSNR numbers say little about a trained network.
With ``--checkpoint`` (dense, pruned or INT8 vsrcompress checkpoint) and ``--clips`` (a footage dataset, see
``vsrcompress/footage/layout.py``) the numbers are real: a float checkpoint is calibrated on the train split, an INT8
one brings its own ranges; timing and sweeps run on the val split::

    python scripts/benchmark_deploy.py                                   # random BasicVSR 64 ch, 10 blocks
    python scripts/benchmark_deploy.py --checkpoint experiments/demo_teacher/models/net_g_latest.pth \\
        --clips datasets/demo
    python scripts/benchmark_deploy.py --checkpoint experiments/demo_qat/models/net_g_int8.pth --clips datasets/demo

Writes results/benchmarks/deploy.{json,md,png}. The machine may be shared: the load average is recorded before
and after each part, and speed-ups are only compared within the interleaved rounds of part 1.
"""
import argparse
import sys

import vsrcompress  # noqa: F401  (registers the archs with basicsr)
from vsrcompress.bench import deploy
from vsrcompress.bench.deploy import INTERVALS, OVERLAPS, DeployConfig
from vsrcompress.bench.script import command_line, run_benchmark


def main(argv: list[str] | None = None) -> int:
    defaults = DeployConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--checkpoint', help='dense, pruned or INT8 vsrcompress checkpoint (default: random weights)')
    parser.add_argument('--clips', help='footage dataset folder: calibration (train) and benchmark clips (val)')
    parser.add_argument('--num-feat', type=int, default=defaults.num_feat, help='random network: channels')
    parser.add_argument('--num-block', type=int, default=defaults.num_block,
                        help='random network: residual blocks per trunk')
    parser.add_argument('--lq-size', type=int, nargs=2, default=list(defaults.lq_size), metavar=('H', 'W'),
                        help='LR frame size (with --clips: frames are cropped to it, or used whole when smaller)')
    parser.add_argument('--interval', type=int, default=defaults.interval, help='parts 1-2: output frames per window')
    parser.add_argument('--overlap', type=int, default=defaults.overlap,
                        help='parts 1-2: context frames each side of a window')
    parser.add_argument('--rounds', type=int, default=defaults.rounds,
                        help='part 1: timed rounds (after one warm-up round)')
    parser.add_argument('--stream-frames', type=int, default=defaults.stream_frames,
                        help='part 2: frames streamed per backend and run')
    parser.add_argument('--stream-rounds', type=int, default=defaults.stream_rounds,
                        help='part 2: interleaved runs per backend')
    parser.add_argument('--sweep-frames', type=int, default=defaults.sweep_frames,
                        help='part 3: sequence length (0 skips part 3)')
    parser.add_argument('--sweep-intervals', type=int, nargs='+', default=list(INTERVALS),
                        help=f'part 3: intervals (default {" ".join(map(str, INTERVALS))})')
    parser.add_argument('--sweep-overlaps', type=int, nargs='+', default=list(OVERLAPS),
                        help=f'part 3: overlaps (default {" ".join(map(str, OVERLAPS))})')
    parser.add_argument('--calib-clips', type=int, default=defaults.calib_clips,
                        help='synthetic calibration clips (no --clips)')
    parser.add_argument('--threads', type=int, default=defaults.threads, help='torch and ONNX Runtime intra-op threads')
    parser.add_argument('--out', default='results/benchmarks')
    parser.add_argument('--name', default='deploy')
    args = parser.parse_args(argv)
    config = DeployConfig(args.checkpoint, args.clips, args.num_feat, args.num_block, tuple(args.lq_size),
                          args.interval, args.overlap, args.rounds, args.stream_frames, args.stream_rounds,
                          args.sweep_frames, tuple(args.sweep_intervals), tuple(args.sweep_overlaps),
                          args.calib_clips, args.threads,
                          command=command_line('benchmark_deploy.py', argv))
    return run_benchmark(deploy, config, parser, args.out, args.name)


if __name__ == '__main__':
    sys.exit(main())
