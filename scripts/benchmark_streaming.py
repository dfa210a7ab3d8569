"""Stateful streaming against windows: quality of the demo teacher on the demo validation clips, then delivered FPS
and latency of full-size BasicVSR/IconVSR (pruned INT8 on OpenVINO and ONNX Runtime, pruned in torch, dense FP32
on ONNX Runtime) through the real pipeline. Prints the tables and writes ``<out>/<name>.{json,md,png}`` (default
results/benchmarks/streaming).

What is measured and how: ``vsrcompress/bench/streaming.py``.

    python scripts/make_demo_footage.py                                  # datasets/demo
    python compress.py -opt options/demo/basicvsr_prune_qat_demo.yml     # its teacher stage trains the default net
    python scripts/benchmark_streaming.py                                # both parts, about 40 min on 2 cores
    python scripts/benchmark_streaming.py --archs basicvsr --engines openvino-int8 onnxruntime-dense
"""
import argparse
import sys

from vsrcompress.bench import streaming
from vsrcompress.bench.inputs import add_input_arguments, inputs_from_args
from vsrcompress.bench.script import command_line, run_benchmark
from vsrcompress.bench.streaming import ENGINES, StreamingConfig
from vsrcompress.report.complexity import OFFICIAL_MODELS


def _pair(text: str) -> tuple[int, int]:
    """``I/E`` (interval / overlap or lookahead) as two integers."""
    first, _, second = text.partition('/')
    try:
        return int(first), int(second)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected INTERVAL/N, e.g. 5/2, got {text!r}') from None


def main(argv: list[str] | None = None) -> int:
    d = StreamingConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input_arguments(parser, 'streaming', 'FP32 network of the quality part, dense or pruned',
                        'val split for the quality part, train split for INT8 calibration')
    parser.add_argument('--windowed', nargs='+', type=_pair, default=list(d.windowed), metavar='I/O',
                        help='windowed modes, interval/overlap (default 5/0 5/2 15/2 3/1; 5/2 needed)')
    parser.add_argument('--stateful', nargs='+', type=_pair, default=list(d.stateful), metavar='I/L',
                        help='stateful modes, interval/lookahead (default 1/0 1/2 3/1 5/2 8/2; 1/0 and 5/2 needed)')
    parser.add_argument('--archs', nargs='*', choices=sorted(OFFICIAL_MODELS), default=list(d.archs),
                        help='full-size networks of the speed part (none: quality only)')
    for arch, size in d.sizes.items():
        parser.add_argument(f'--{arch}-size', type=int, nargs=2, default=list(size), metavar=('H', 'W'),
                            help=f'LR size of the {arch} clip (default {size[0]} {size[1]})')
    parser.add_argument('--frames', type=int, default=d.frames, help=f'frames of the speed clip (default {d.frames})')
    parser.add_argument('--engines', nargs='+', choices=list(ENGINES), default=list(d.engines),
                        help='engines of the speed part (default: all)')
    parser.add_argument('--full-grid', nargs='*', choices=list(ENGINES), default=list(d.full_grid),
                        help='engines that run every mode and the paced latency runs (default openvino-int8); '
                             'the others run windowed and stateful 5/2 (onnxruntime-dense: windowed 5/2)')
    parser.add_argument('--rounds', type=int, default=d.rounds, help='interleaved timed rounds')
    parser.add_argument('--pace-margin', type=float, default=d.pace_margin,
                        help='frame period of the paced runs over the time per delivered frame (> 1)')
    parser.add_argument('--mac-budget', type=float, default=d.mac_budget, help='pruned MACs / dense MACs')
    parser.add_argument('--calib-windows', type=int, default=d.calib_windows, help='INT8 calibration windows')
    parser.add_argument('--tiny', action='store_true', help='8-channel, 1-block full-size stand-ins: a quick check '
                        'of the whole run, no meaningful speed numbers')
    args = parser.parse_args(argv)
    config = StreamingConfig(**inputs_from_args(parser, args, command_line('benchmark_streaming.py', argv)),
                             windowed=tuple(args.windowed), stateful=tuple(args.stateful), archs=tuple(args.archs),
                             sizes={arch: tuple(getattr(args, f'{arch}_size')) for arch in d.sizes},
                             frames=args.frames, engines=tuple(args.engines), full_grid=tuple(args.full_grid),
                             rounds=args.rounds, pace_margin=args.pace_margin, mac_budget=args.mac_budget,
                             calib_windows=args.calib_windows,
                             network={'num_feat': 8, 'num_block': 1} if args.tiny else {})
    return run_benchmark(streaming, config, parser, args.out, args.name)


if __name__ == '__main__':
    sys.exit(main())
