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
import json
import math
import os
import sys
from dataclasses import asdict

import vsrcompress  # noqa: F401  (registers the archs with basicsr)
from vsrcompress.checkpoint import load_network
from vsrcompress.cli import refuse_output_over_inputs
from vsrcompress.inference.frame_sink import check_writable_folder
from vsrcompress.export import (DEFAULT_FP32_ATOL, DEFAULT_INT8_MIN_PSNR, DYNAMIC_TRACE_SIZE, INT8_PRECISIONS,
                                PRECISIONS, OnnxMismatchError, build_tensorrt_engine, check_onnx, export_onnx,
                                integer_kernel_summary, ort_optimized_ops, qdq_coverage, read_footage_windows,
                                read_int8_placement, tensorrt_unavailable_reason)
from vsrcompress.export.cli_options import add_arch_arguments, network_options
from vsrcompress.export.openvino_check import export_checked_openvino
from vsrcompress.export.openvino_export import OPENVINO_GRAPH_PRECISIONS
from vsrcompress.export.openvino_runtime import INFERENCE_PRECISIONS, check_inference_precision
from vsrcompress.quantization import QuantConfig
from vsrcompress.quantization.output_ranges import calibrate_output_ranges


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--checkpoint', required=True, help='vsrcompress checkpoint (dense, pruned, INT8) or official')
    parser.add_argument('--output', required=True, help='ONNX file to write (.xml with --format openvino)')
    parser.add_argument('--format', choices=('onnx', 'openvino'), default='onnx',
                        help='onnx (default) or openvino: an OpenVINO IR (.xml + .bin) for Intel/AMD CPUs')
    parser.add_argument('--inference-precision', choices=INFERENCE_PRECISIONS,
                        help='--format openvino (required): f32 or bf16, what OpenVINO runs the float layers in')
    parser.add_argument('--frames', type=int, required=True, help='window length T (interval + 2 * overlap)')
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
    stem = os.path.splitext(args.output)[0]
    outputs = [args.output, args.report, stem + '.engine' if args.trt else None,
               stem + '.bin' if args.format == 'openvino' else None]
    try:
        refuse_output_over_inputs(outputs, [args.checkpoint], '--output/--report', '--checkpoint')
        if args.report:  # checked now, not after minutes of exporting
            check_writable_folder(args.report)
    except ValueError as err:
        parser.error(str(err))
    return args


def check_clips(windows: list[dict], height: int, width: int, dynamic: bool) -> list | None:
    """Footage windows cropped to the check sizes (as ``check_onnx`` uses them), or None if frames are too small."""
    sizes = [(height, width), (height + 6, width + 10)] if dynamic else [(height, width)]
    clips = []
    for (h, w), window in zip(sizes, windows * len(sizes)):
        lq = window['lq']
        if lq.shape[-2] < h or lq.shape[-1] < w:
            return None
        clips.append(lq[..., :h, :w].contiguous())
    return clips


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.trt:  # say it now, not after a long export
        reason = tensorrt_unavailable_reason()
        if reason:
            print(f'note: --trt: the TensorRT engine will not be built: {reason}.', file=sys.stderr)
    if args.format == 'openvino':
        check_inference_precision(args.inference_precision)  # bf16 on a CPU without it: say so before loading
    loaded = load_network(args.checkpoint, network_options(args.arch, args.arch_opt), args.param_key)
    int8 = args.precision in INT8_PRECISIONS
    if int8 and not loaded.int8:
        raise ValueError(f'--precision {args.precision}: {args.checkpoint} is not an INT8 checkpoint (format '
                         'vsrcompress-int8/1, written by QAT training: python train.py -opt options/basicvsr_qat.yml)')
    net, ranges = loaded.net, loaded.conv_output_range
    windows = []
    if args.calib_clips and int8:
        config = QuantConfig.from_dict(loaded.quant_config)
        windows = read_footage_windows(args.calib_clips, args.frames, int(net.scale), args.calib_split,
                                       config.calib_batches)
        if args.precision == 'int8-ort' and ranges is None:
            ranges = calibrate_output_ranges(net, (w['lq'] for w in windows), config)
            print(f'measured {len(ranges)} conv output ranges ({config.calibrator}) on {len(windows)} windows of '
                  f'{args.calib_clips} ({args.calib_split})')
    if args.format == 'openvino':
        return openvino_main(args, net, ranges, windows)
    spec = export_onnx(net, args.output, args.frames, args.height, args.width, dynamic=args.dynamic,
                       precision=args.precision, opset=args.opset, conv_output_range=ranges,
                       float_output_layers=args.float_output)
    size = 'dynamic' if spec.dynamic else f'{spec.width}x{spec.height}'
    print(f'wrote {args.output}: {spec.arch} x{spec.scale}, {spec.frames} frames, {size}, {spec.precision}, '
          f'opset {spec.opset}')
    report = {'checkpoint': args.checkpoint, 'onnx': args.output, 'graph': asdict(spec), 'checks': []}
    if int8:
        report['int8'] = int8_summary(args.output)
    if args.check:
        clips = check_clips(windows, args.height, args.width, args.dynamic) if windows else None
        try:
            matches = check_onnx(args.output, net, args.height, args.width, args.atol, args.min_int8_psnr, clips)
        except OnnxMismatchError as err:
            os.replace(args.output, args.output + '.mismatch')
            print(f'error: {err}\nThe graph was moved to {args.output}.mismatch.', file=sys.stderr)
            return 1
        against = 'fake-quantized PyTorch' if int8 else 'PyTorch'
        print(f"{'input':>10} {'max abs err':>12} {'PSNR dB':>8} {'torch s':>8} {'ORT s':>8}   (vs {against}, "
              f"{'footage' if clips else 'random'} clip)")
        for m in matches:
            psnr = 'inf' if math.isinf(m.psnr_db) else f'{m.psnr_db:.1f}'
            print(f'{m.width:>4}x{m.height:<5} {m.max_abs_error:>12.3g} {psnr:>8} {m.torch_seconds:>8.2f} '
                  f'{m.engine_seconds:>8.2f}')
        report['checks'] = [asdict(m) for m in matches]
    if args.trt:
        reason = tensorrt_unavailable_reason()
        if reason:
            print(f'TensorRT engine not built: {reason}. The ONNX graph is complete.', file=sys.stderr)
            report['tensorrt'] = {'built': False, 'reason': reason}
        else:
            engine = build_tensorrt_engine(args.output, os.path.splitext(args.output)[0] + '.engine',
                                           args.trt_max_height, args.trt_max_width,
                                           opt_height=args.trt_opt_height, opt_width=args.trt_opt_width)
            print(f'wrote TensorRT engine {engine}')
            report['tensorrt'] = {'built': True, 'engine': engine}
    if args.report:
        with open(args.report, 'w') as f:
            json.dump(report, f, indent=2, default=str)
    return 0


def openvino_main(args: argparse.Namespace, net, ranges, windows: list[dict]) -> int:
    """``--format openvino``: export, convert, check (f32 and bf16 where supported); print the table."""
    clips = check_clips(windows, args.height, args.width, args.dynamic) if windows else None
    try:
        record = export_checked_openvino(net, args.output, args.frames, args.height, args.width,
                                         args.inference_precision, args.precision, args.dynamic, ranges,
                                         args.float_output, args.check, clips, args.atol, args.min_int8_psnr)
    except OnnxMismatchError as err:
        print(f'error: {err}\nThe IR was moved to {args.output[:-4]}.mismatch.xml/.bin.', file=sys.stderr)
        return 1
    spec = record['graph']
    size = 'dynamic' if spec['height'] is None else f'{spec["width"]}x{spec["height"]}'
    print(f'wrote {args.output} (+ .bin): {spec["arch"]} x{spec["scale"]}, {spec["frames"]} frames, {size}, '
          f'{spec["precision"]} graph, OpenVINO inference precision {args.inference_precision}; convolutions by '
          f'runtime precision: {record["kernels"]["convolutions_by_precision"]}')
    if record['checks']:
        against = 'fake-quantized PyTorch' if args.precision in INT8_PRECISIONS else 'PyTorch FP32'
        print(f"{'input':>10} {'precision':>9} {'max abs err':>12} {'PSNR dB':>8} {'torch s':>8} {'OV s':>8}   "
              f"(vs {against}, {'footage' if clips else 'random'} clip)")
        for m in record['checks']:
            psnr = 'inf' if math.isinf(m['psnr_db']) else f'{m["psnr_db"]:.1f}'
            print(f"{m['width']:>4}x{m['height']:<5} {m['inference_precision']:>9} {m['max_abs_error']:>12.3g} "
                  f"{psnr:>8} {m['torch_seconds']:>8.2f} {m['engine_seconds']:>8.2f}")
    if args.report:
        with open(args.report, 'w') as f:
            json.dump({'checkpoint': args.checkpoint, **record}, f, indent=2, default=str)
    return 0


def int8_summary(onnx_path: str) -> dict:
    """Print and return where the graph has Q/DQ nodes and what ONNX Runtime's CPU provider fused."""
    coverage = qdq_coverage(onnx_path)
    fused = integer_kernel_summary(ort_optimized_ops(onnx_path))
    print(f'Q/DQ: {coverage.quantize_nodes} QuantizeLinear, {coverage.dequantize_nodes} DequantizeLinear; '
          f'{coverage.conv_nodes} Conv nodes: {coverage.conv_input_dq} with DQ input, {coverage.conv_weight_dq} DQ '
          f'weight ({coverage.conv_weight_per_channel} per channel), {coverage.conv_output_q} Q output; Add nodes by '
          f'DQ inputs: {dict(sorted(coverage.add_dq_inputs.items()))}')
    print(f"ONNX Runtime CPU (optimized graph): integer kernels {fused['integer_ops']}, {fused['float_convs']} float "
          f"convs, {fused['quantize_dequantize']} Q/DQ nodes left")
    return {'qdq': asdict(coverage), 'ort_cpu': fused, 'placement': read_int8_placement(onnx_path)}


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (ValueError, KeyError, FileNotFoundError) as err:
        print(f'error: {err}', file=sys.stderr)
        sys.exit(2)
