"""Export a vsrcompress (dense, pruned, INT8) or official BasicSR checkpoint to ONNX, check it in ONNX Runtime,
optionally build a TensorRT engine; or to an OpenVINO IR for CPUs (``--format openvino``), checked in OpenVINO.

Usage::

    python scripts/export.py --checkpoint pruned.pth --output basicvsr_t9.onnx --frames 9 --height 180 --width 320
    python scripts/export.py --checkpoint pruned.pth --output basicvsr_t9_dyn_fp16.onnx --frames 9 --dynamic \\
        --precision fp16
    python scripts/export.py --checkpoint net_g_int8.pth --output basicvsr_t9_int8.onnx --frames 9 --height 180 \\
        --width 320 --precision int8-ort --calib-clips datasets/demo
    python scripts/export.py --checkpoint net_g_int8.pth --output basicvsr_t9_int8_trt.onnx --frames 9 --dynamic \\
        --precision int8-trt --trt
    python scripts/export.py --checkpoint pruned.pth --output basicvsr_t9.xml --frames 9 --height 180 --width 320 \\
        --format openvino --inference-precision bf16
    python scripts/export.py --checkpoint net_g_int8.pth --output basicvsr_t9_int8.xml --frames 9 --height 180 \\
        --width 320 --precision int8-trt --format openvino --inference-precision f32 --calib-clips datasets/demo
    python scripts/export.py --checkpoint BasicVSR_REDS4-543c8261.pth --arch BasicVSRNet \\
        --arch-opt num_feat=64 --arch-opt num_block=30 --output basicvsr.onnx --frames 9 --height 180 --width 320

``--frames`` is the window T the graph takes: the inference ``--interval`` plus twice the ``--overlap``.
The FP32 check (default on) fails the export when ONNX Runtime differs from PyTorch by more than ``--atol``; INT8
graphs (from INT8 checkpoints, format vsrcompress-int8/1) must reach ``--min-int8-psnr`` against the fake-quantized
PyTorch network. ``int8-ort`` needs measured conv output ranges: from the checkpoint, or measured here on
``--calib-clips`` (the footage the network was calibrated on).

``--format openvino`` converts the graph of ``--precision`` (fp32, int8-trt or int8-ort) into ``<output>.xml`` +
``.bin`` and records ``--inference-precision`` (f32 or bf16, required: OpenVINO would otherwise pick BF16 by itself
on CPUs that have it) for the OpenVINO backend. The check runs the IR in f32 and, where the CPU has BF16, in bf16,
and prints both: the PSNR cost of BF16 is measured, never assumed.
"""
import argparse
import os
import sys

import vsrcompress  # noqa: F401  (registers the archs with basicsr)
from vsrcompress.cli import exit_with_error, refuse_output_over_inputs
from vsrcompress.export import DEFAULT_FP32_ATOL, DEFAULT_INT8_MIN_PSNR, DYNAMIC_TRACE_SIZE, PRECISIONS
from vsrcompress.export.cli_options import add_arch_arguments
from vsrcompress.export.export_command import run_export, written_files
from vsrcompress.export.openvino_export import OPENVINO_GRAPH_PRECISIONS
from vsrcompress.export.openvino_runtime import INFERENCE_PRECISIONS
from vsrcompress.inference.frame_sink import check_writable_folder
from vsrcompress.inference.stream_plan import DEFAULT_INTERVAL, DEFAULT_LOOKAHEAD, validate_streaming


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--checkpoint', required=True,
                        help='vsrcompress checkpoint (dense, pruned, INT8) or official BasicSR checkpoint '
                             '(with --arch)')
    parser.add_argument('--output', required=True, help='ONNX file to write (.xml with --format openvino)')
    parser.add_argument('--format', choices=('onnx', 'openvino'), default='onnx',
                        help='onnx (default) or openvino: an OpenVINO IR (.xml + .bin) for Intel/AMD CPUs')
    parser.add_argument('--inference-precision', choices=INFERENCE_PRECISIONS,
                        help='--format openvino (required): f32 or bf16, what OpenVINO runs the float layers in')
    parser.add_argument('--interval', type=int, help=f'stateful graph (the default): frames delivered per call '
                                                     f'(default {DEFAULT_INTERVAL})')
    parser.add_argument('--lookahead', type=int, help=f'stateful graph: frames after them for the backward branch '
                                                      f'(default {DEFAULT_LOOKAHEAD})')
    parser.add_argument('--frames', type=int, help='windowed graph instead: window length T (interval + 2 * overlap '
                                                   'of infer_video --windowed); every call from zero state')
    parser.add_argument('--height', type=int, help='LR input height (the fixed size; trace/check size if --dynamic)')
    parser.add_argument('--width', type=int, help='LR input width')
    parser.add_argument('--dynamic', action='store_true', help='dynamic height/width axes')
    parser.add_argument('--precision', choices=PRECISIONS, help='graph precision (default fp32); int8-trt: Q/DQ for '
                        'TensorRT, int8-ort: integer kernels in ONNX Runtime (CPU); both need an INT8 checkpoint')
    parser.add_argument('--fp16', action='store_true', help='same as --precision fp16')
    parser.add_argument('--calib-clips', help='footage dataset folder: int8-ort measures missing conv output ranges '
                                              'on it; INT8 checks run on its frames instead of random ones')
    parser.add_argument('--calib-split', default='train', choices=('train', 'val'), help='split of --calib-clips')
    parser.add_argument('--float-output', action='append', default=[], metavar='LAYER',
                        help='int8-ort: keep this quantized conv\'s output float (repeatable), e.g. conv_last: a bit '
                             'closer to the fake-quantized network, a bit slower')
    parser.add_argument('--check', action=argparse.BooleanOptionalAction, default=True,
                        help='compare with PyTorch in ONNX Runtime (default on; FP32 must match within --atol, INT8 '
                             'reach --min-int8-psnr)')
    parser.add_argument('--atol', type=float, default=DEFAULT_FP32_ATOL, help='FP32 max abs error allowed')
    parser.add_argument('--min-int8-psnr', type=float, default=DEFAULT_INT8_MIN_PSNR,
                        help='INT8: PSNR (dB) required between ONNX Runtime and the fake-quantized network')
    parser.add_argument('--opset', type=int, help='ONNX opset (default 17; 19 for IconVSR)')
    parser.add_argument('--trt', action='store_true', help='also build a TensorRT engine (<output>.engine)')
    parser.add_argument('--trt-max-height', type=int, help='dynamic engine profile: max LR height (default 2160/scale)')
    parser.add_argument('--trt-max-width', type=int, help='dynamic engine profile: max LR width (default 3840/scale)')
    parser.add_argument('--trt-opt-height', type=int, help='dynamic engine profile: tuned height (default: max)')
    parser.add_argument('--trt-opt-width', type=int, help='dynamic engine profile: tuned width (default: max)')
    parser.add_argument('--report', help='write what was exported and measured as JSON')
    add_arch_arguments(parser)
    args = parser.parse_args(argv)
    if args.frames is not None:
        if args.interval is not None or args.lookahead is not None:
            parser.error('--frames makes a windowed graph, --interval/--lookahead a stateful one: give one of them')
    else:
        args.interval = DEFAULT_INTERVAL if args.interval is None else args.interval
        args.lookahead = DEFAULT_LOOKAHEAD if args.lookahead is None else args.lookahead
        try:
            validate_streaming(args.interval, args.lookahead)
        except ValueError as err:
            parser.error(str(err))
        args.frames = args.interval + args.lookahead
    if args.fp16 and args.precision not in (None, 'fp16'):
        parser.error(f'--fp16 contradicts --precision {args.precision}')
    args.precision = 'fp16' if args.fp16 else args.precision or 'fp32'
    if args.float_output and args.precision != 'int8-ort':
        parser.error('--float-output applies to --precision int8-ort only')
    if args.trt and args.precision == 'int8-ort':
        parser.error('--trt: TensorRT builds INT8 engines from --precision int8-trt graphs (int8-ort is for ONNX '
                     'Runtime on CPUs)')
    if args.format == 'openvino':
        if args.inference_precision is None:
            parser.error('--format openvino needs --inference-precision f32 or bf16 (bf16: faster on CPUs with '
                         'AVX512-BF16 or AMX; the check prints its PSNR cost against f32)')
        if args.precision not in OPENVINO_GRAPH_PRECISIONS:
            parser.error(f'--format openvino takes --precision {"/".join(OPENVINO_GRAPH_PRECISIONS)}, not '
                         f'{args.precision} (choose --inference-precision instead of an FP16 graph)')
        if args.trt:
            parser.error('--trt builds TensorRT engines from ONNX graphs; it does not apply to --format openvino')
        if not args.output.endswith('.xml'):
            parser.error(f'--output: an OpenVINO IR is an .xml file (weights in .bin beside it), got {args.output}')
    elif args.inference_precision:
        parser.error('--inference-precision applies to --format openvino only')
    if args.calib_clips and not os.path.isdir(args.calib_clips):
        parser.error(f'--calib-clips: {args.calib_clips} is not a folder')
    if args.height is None or args.width is None:
        if not args.dynamic:
            parser.error('--height and --width are required unless --dynamic')
        args.height = args.height or DYNAMIC_TRACE_SIZE
        args.width = args.width or DYNAMIC_TRACE_SIZE
    try:
        written = written_files(args)
        refuse_output_over_inputs([path for path, _ in written], [args.checkpoint], [flag for _, flag in written],
                                  '--checkpoint')
        if args.report:  # checked now, not after minutes of exporting
            check_writable_folder(args.report)
    except ValueError as err:
        exit_with_error(err)
    return args


def main(argv: list[str] | None = None) -> int:
    return run_export(parse_args(argv))


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (ValueError, KeyError, FileNotFoundError) as err:
        print(f'error: {err}', file=sys.stderr)
        sys.exit(2)
    except OSError as err:  # a failed write (full disk): the exporters left nothing partial
        print(f'error: {err}', file=sys.stderr)
        sys.exit(1)
