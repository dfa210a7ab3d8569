"""INT8 on a trained network: FP32 vs post-training quantization (each calibrator) vs QAT, in PSNR, checkpoint size
and training-step time. Prints the tables and writes ``<out>/<name>.{json,md,png}`` (default results/benchmarks/qat).

What is measured and how: ``vsrcompress/bench/qat.py``. On a CPU shared with other jobs give ``--threads 1``: with two
threads on two busy cores the demo run did not finish in 10 minutes; with one it takes about 4
(results/benchmarks/qat.md).

    python scripts/make_demo_footage.py                                  # datasets/demo
    python compress.py -opt options/demo/basicvsr_prune_qat_demo.yml     # its teacher stage trains the default net
    python scripts/benchmark_qat.py                                      # that teacher on datasets/demo
    python scripts/benchmark_qat.py --checkpoint experiments/x/models/net_g_latest.pth --footage datasets/mine \\
        --calibrators max entropy --qat-iters 500
"""
import argparse
import sys

from vsrcompress.bench import qat
from vsrcompress.bench.inputs import add_input_arguments, inputs_from_args
from vsrcompress.bench.qat import QatConfig
from vsrcompress.bench.script import command_line, run_benchmark
from vsrcompress.quantization import CALIBRATORS, QUANTIZATION_PARTS


def main(argv: list[str] | None = None) -> int:
    d = QatConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input_arguments(parser, 'qat', 'FP32 network, dense or pruned',
                        'train split for calibration and QAT, val split for PSNR')
    parser.add_argument('--calibrators', nargs='+', choices=CALIBRATORS, default=list(d.calibrators),
                        help='PTQ calibrators to compare (default: all); QAT starts from the best of them')
    parser.add_argument('--skip-parts', nargs='*', choices=sorted(QUANTIZATION_PARTS), default=list(d.skip_parts),
                        help='parts kept float (default: spynet, as the demo recipe); give none to quantize all')
    parser.add_argument('--calib-windows', type=int, default=d.calib_windows, help='calibration windows')
    parser.add_argument('--frames', type=int, default=d.frames,
                        help='frames per calibration and training window (the demo\'s num_frame)')
    parser.add_argument('--patch', type=int, default=d.patch, help='LR crop size of QAT and timing batches')
    parser.add_argument('--batch-size', type=int, default=d.batch_size, help='windows per QAT and timing batch')
    parser.add_argument('--qat-iters', type=int, default=d.qat_iters, help='QAT fine-tuning steps')
    parser.add_argument('--lr', type=float, default=d.lr, help='Adam learning rate of QAT')
    parser.add_argument('--pixel-weight', type=float, default=d.pixel_weight,
                        help='weight of the loss against ground truth next to the distillation loss')
    parser.add_argument('--timing-rounds', type=int, default=d.timing_rounds,
                        help='timed FP32 + QAT step pairs per device, after one untimed pair')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default=d.device,
                        help=f'where PTQ, QAT and PSNR run (default {d.device})')
    parser.add_argument('--timing-devices', nargs='+', choices=('cpu', 'cuda'), default=list(d.timing_devices),
                        help=f'devices the step times are measured on (default {" ".join(d.timing_devices)})')
    parser.add_argument('--seed', type=int, default=d.seed, help='seed of the QAT batches and crops')
    args = parser.parse_args(argv)
    config = QatConfig(**inputs_from_args(parser, args, command_line('benchmark_qat.py', argv)),
                       calibrators=tuple(args.calibrators), skip_parts=tuple(args.skip_parts),
                       calib_windows=args.calib_windows, frames=args.frames, patch=args.patch,
                       batch_size=args.batch_size, qat_iters=args.qat_iters, lr=args.lr,
                       pixel_weight=args.pixel_weight, timing_rounds=args.timing_rounds, device=args.device,
                       timing_devices=tuple(args.timing_devices), seed=args.seed)
    return run_benchmark(qat, config, parser, args.out, args.name)


if __name__ == '__main__':
    sys.exit(main())
