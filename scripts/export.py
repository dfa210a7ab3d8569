"""Export a vsrcompress (or official BasicSR) checkpoint to ONNX, check it in ONNX Runtime, optionally TensorRT.

Usage::

    python scripts/export.py --checkpoint pruned.pth --output basicvsr_t9.onnx --frames 9 --height 180 --width 320
    python scripts/export.py --checkpoint pruned.pth --output basicvsr_t9_dyn_fp16.onnx --frames 9 --dynamic --fp16
    python scripts/export.py --checkpoint BasicVSR_REDS4-543c8261.pth --arch BasicVSRNet \\
        --arch-opt num_feat=64 --arch-opt num_block=30 --output basicvsr.onnx --frames 9 --height 180 --width 320

``--frames`` is the window T the graph takes: the inference ``--interval`` plus twice the ``--overlap``.
The FP32 check (default on) fails the export when ONNX Runtime differs from PyTorch by more than ``--atol``.
"""
import argparse
import json
import math
import os
import sys
from dataclasses import asdict

import vsrcompress  # noqa: F401  (registers the archs with basicsr)
from vsrcompress.checkpoint import build_network_from_checkpoint
from vsrcompress.export import (DEFAULT_FP32_ATOL, OnnxMismatchError, build_tensorrt_engine, check_onnx, export_onnx,
                                tensorrt_unavailable_reason)
from vsrcompress.export.cli_options import add_arch_arguments, network_options

DYNAMIC_TRACE_SIZE = 64


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--checkpoint', required=True, help='vsrcompress checkpoint (with arch/widths) or official')
    parser.add_argument('--output', required=True, help='ONNX file to write')
    parser.add_argument('--frames', type=int, required=True, help='window length T (interval + 2 * overlap)')
    parser.add_argument('--height', type=int, help='LR input height (the fixed size; trace/check size if --dynamic)')
    parser.add_argument('--width', type=int, help='LR input width')
    parser.add_argument('--dynamic', action='store_true', help='dynamic height/width axes')
    parser.add_argument('--fp16', action='store_true', help='write an FP16 graph (converted from the FP32 trace)')
    parser.add_argument('--check', action=argparse.BooleanOptionalAction, default=True,
                        help='compare with PyTorch in ONNX Runtime (default on; FP32 must match within --atol)')
    parser.add_argument('--atol', type=float, default=DEFAULT_FP32_ATOL, help='FP32 max abs error allowed')
    parser.add_argument('--opset', type=int, help='ONNX opset (default 17; 19 for IconVSR)')
    parser.add_argument('--trt', action='store_true', help='also build a TensorRT engine (<output>.engine)')
    parser.add_argument('--trt-max-height', type=int, default=1088, help='dynamic engine profile: max height')
    parser.add_argument('--trt-max-width', type=int, default=1920, help='dynamic engine profile: max width')
    parser.add_argument('--report', help='write what was exported and measured as JSON')
    add_arch_arguments(parser)
    args = parser.parse_args(argv)
    if args.height is None or args.width is None:
        if not args.dynamic:
            parser.error('--height and --width are required unless --dynamic')
        args.height = args.height or DYNAMIC_TRACE_SIZE
        args.width = args.width or DYNAMIC_TRACE_SIZE
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.trt:  # say it now, not after a long export
        reason = tensorrt_unavailable_reason()
        if reason:
            print(f'note: --trt: the TensorRT engine will not be built: {reason}.', file=sys.stderr)
    net = build_network_from_checkpoint(args.checkpoint, network_options(args.arch, args.arch_opt), args.param_key)
    spec = export_onnx(net, args.output, args.frames, args.height, args.width, dynamic=args.dynamic,
                       precision='fp16' if args.fp16 else 'fp32', opset=args.opset)
    size = 'dynamic' if spec.dynamic else f'{spec.width}x{spec.height}'
    print(f'wrote {args.output}: {spec.arch} x{spec.scale}, {spec.frames} frames, {size}, {spec.precision}, '
          f'opset {spec.opset}')
    report = {'checkpoint': args.checkpoint, 'onnx': args.output, 'graph': asdict(spec), 'checks': []}
    if args.check:
        try:
            matches = check_onnx(args.output, net, args.height, args.width, args.atol)
        except OnnxMismatchError as err:
            os.replace(args.output, args.output + '.mismatch')
            print(f'error: {err}\nThe graph was moved to {args.output}.mismatch.', file=sys.stderr)
            return 1
        print(f"{'input':>10} {'max abs err':>12} {'PSNR dB':>8} {'torch s':>8} {'ORT s':>8}")
        for m in matches:
            psnr = 'inf' if math.isinf(m.psnr_db) else f'{m.psnr_db:.1f}'
            print(f'{m.width:>4}x{m.height:<5} {m.max_abs_error:>12.3g} {psnr:>8} {m.torch_seconds:>8.2f} '
                  f'{m.onnxruntime_seconds:>8.2f}')
        report['checks'] = [asdict(m) for m in matches]
    if args.trt:
        reason = tensorrt_unavailable_reason()
        if reason:
            print(f'TensorRT engine not built: {reason}. The ONNX graph is complete.', file=sys.stderr)
            report['tensorrt'] = {'built': False, 'reason': reason}
        else:
            engine = build_tensorrt_engine(args.output, os.path.splitext(args.output)[0] + '.engine',
                                           args.trt_max_height, args.trt_max_width)
            print(f'wrote TensorRT engine {engine}')
            report['tensorrt'] = {'built': True, 'engine': engine}
    if args.report:
        with open(args.report, 'w') as f:
            json.dump(report, f, indent=2, default=str)
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (ValueError, KeyError, FileNotFoundError) as err:
        print(f'error: {err}', file=sys.stderr)
        sys.exit(2)
