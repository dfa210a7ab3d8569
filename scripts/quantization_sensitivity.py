"""Which parts (or layers) of a trained network cost PSNR when quantized to INT8: the measurement behind the skip
lists of the option files. Prints the table and writes ``<out>/<name>.{json,md,png}`` (default
results/benchmarks/quantization_sensitivity).

What is measured and how: ``vsrcompress/bench/quantization_sensitivity.py``.

    python scripts/quantization_sensitivity.py                                  # the demo teacher on datasets/demo
    python scripts/download_pretrained.py BasicVSR_REDS4                       # official full-size weights
    python scripts/quantization_sensitivity.py --name quantization_sensitivity_basicvsr_reds4 \\
        --checkpoint experiments/pretrained_models/BasicVSR_REDS4-543c8261.pth \\
        --arch BasicVSRNet --arch-opt num_feat=64 --arch-opt num_block=30 --frames 6
"""
import argparse
import sys

from vsrcompress.bench import quantization_sensitivity
from vsrcompress.bench.inputs import add_input_arguments, inputs_from_args
from vsrcompress.bench.quantization_sensitivity import UNITS, SensitivityConfig
from vsrcompress.bench.script import command_line, run_benchmark
from vsrcompress.quantization import CALIBRATORS, QUANTIZATION_PARTS, QuantConfig


def main(argv: list[str] | None = None) -> int:
    d = SensitivityConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input_arguments(parser, 'quantization_sensitivity', 'FP32 network, dense or pruned, ours or official with '
                        '--arch', 'train split for calibration, val split for PSNR')
    parser.add_argument('--units', choices=UNITS, default=d.units,
                        help='what is switched as one: skip_parts parts (default) or single layers')
    parser.add_argument('--budget-db', type=float, default=d.budget_db,
                        help=f'PSNR loss vs float the suggested skip list must stay within (default {d.budget_db})')
    parser.add_argument('--num-bits', type=int, default=8, help='quantization bits (default 8)')
    parser.add_argument('--calibrator', choices=CALIBRATORS, default='max', help='range calibrator (default max)')
    parser.add_argument('--skip-parts', nargs='*', choices=sorted(QUANTIZATION_PARTS), default=[],
                        help='parts kept float throughout (default: none, every layer is measured)')
    parser.add_argument('--calib-windows', type=int, default=d.calib_windows,
                        help=f'calibration windows (default {d.calib_windows})')
    parser.add_argument('--calib-frames', type=int, default=d.calib_frames,
                        help=f'frames per calibration window (default {d.calib_frames})')
    parser.add_argument('--frames', type=int, default=None,
                        help='first frames of each validation clip measured (default: the whole clips)')
    args = parser.parse_args(argv)
    try:
        quant = QuantConfig(num_bits=args.num_bits, calibrator=args.calibrator, calib_batches=args.calib_windows,
                            skip_parts=tuple(args.skip_parts))
    except ValueError as err:
        parser.error(str(err))
    config = SensitivityConfig(**inputs_from_args(parser, args, command_line('quantization_sensitivity.py', argv)),
                               quantization=quant, units=args.units, budget_db=args.budget_db,
                               calib_windows=args.calib_windows, calib_frames=args.calib_frames, frames=args.frames)
    return run_benchmark(quantization_sensitivity, config, parser, args.out, args.name)


if __name__ == '__main__':
    sys.exit(main())
