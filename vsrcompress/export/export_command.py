"""What ``scripts/export.py`` does once its flags are parsed: load, export (ONNX or OpenVINO IR), check, build a
TensorRT engine, report. The script keeps only the flags and their checks; see its docstring for usage.
"""
import argparse
import json
import os
import sys
from dataclasses import asdict

from vsrcompress.atomic_files import write_failure, write_text
from vsrcompress.export.artifact_digest import file_checksums
from vsrcompress.checkpoint import load_network
from vsrcompress.export.cli_options import network_options
from vsrcompress.export.footage_windows import read_footage_windows
from vsrcompress.export.onnx_check import OnnxMismatchError, check_onnx, check_sizes, crop_check_clips
from vsrcompress.export.onnx_export import INT8_PRECISIONS, export_onnx, read_int8_placement
from vsrcompress.export.openvino_check import export_checked_openvino
from vsrcompress.export.openvino_runtime import check_inference_precision
from vsrcompress.export.qdq_summary import integer_kernel_summary, ort_optimized_ops, qdq_coverage
from vsrcompress.export.tensorrt_build import build_tensorrt_engine, tensorrt_unavailable_reason
from vsrcompress.model_files import engine_spec, openvino_weights
from vsrcompress.quantization import QuantConfig
from vsrcompress.quantization.output_ranges import calibrate_output_ranges


def run_export(args: argparse.Namespace) -> int:
    """Export ``args.checkpoint`` as ``scripts/export.py`` parsed it (its flags are the fields); the exit status.

    Loads the network (any kind ``load_network`` reads), exports the ONNX graph or OpenVINO IR, checks it against
    PyTorch, builds a TensorRT engine when asked and possible, and writes the JSON report atomically.
    """
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
        return _export_openvino(args, net, ranges, windows)
    spec = export_onnx(net, args.output, args.frames, args.height, args.width, dynamic=args.dynamic,
                       precision=args.precision, opset=args.opset, conv_output_range=ranges,
                       float_output_layers=args.float_output, interval=args.interval)
    size = 'dynamic' if spec.dynamic else f'{spec.width}x{spec.height}'
    print(f'wrote {args.output}: {spec.arch} x{spec.scale}, {_calls(spec.frames, spec.stream)}, {size}, '
          f'{spec.precision}, opset {spec.opset}')
    report = {'checkpoint': args.checkpoint, 'onnx': args.output, 'graph': asdict(spec), 'checks': []}
    if int8:
        report['int8'] = _int8_summary(args.output)
    if args.check:
        clips = crop_check_clips(windows, check_sizes(args.height, args.width, args.dynamic)) if windows else None
        try:
            matches = check_onnx(args.output, net, args.height, args.width, args.atol, args.min_int8_psnr, clips)
        except OnnxMismatchError as err:
            os.replace(args.output, args.output + '.mismatch')
            print(f'error: {err}\nThe graph was moved to {args.output}.mismatch.', file=sys.stderr)
            return 1
        report['checks'] = [asdict(m) for m in matches]
        _print_checks(report['checks'], 'ORT', 'fake-quantized PyTorch' if int8 else 'PyTorch', clips is not None)
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
    built = report.get('tensorrt', {}).get('engine')
    report['sha256'] = file_checksums([args.output, *([built, engine_spec(built)] if built else [])])
    if args.report:
        _write_report(args.report, report, list(report['sha256']))
    return 0


def written_files(args: argparse.Namespace) -> list[tuple[str | None, str]]:
    """(path, what it is) of every file ``run_export`` may write (``None`` where a flag was not given): the graph or
    IR (with its ``.bin``), the TensorRT engine (with its ``.json``), where a failed check moves the graph, the
    report. ``scripts/export.py`` refuses any two of them that are one file, and any of them that is an input."""
    stem = os.path.splitext(args.output)[0]
    moved = '--output (moved there by a failed check)'
    if args.format == 'openvino':
        files = [(args.output, '--output'), (openvino_weights(args.output), "--output's weights")]
        if args.check:
            files += [(stem + '.mismatch.xml', moved), (stem + '.mismatch.bin', moved)]
    else:
        engine = stem + '.engine' if args.trt else None
        files = [(args.output, '--output'), (engine, '--trt engine'),
                 (engine and engine_spec(engine), "--trt engine's .json")]
        if args.check:
            files.append((args.output + '.mismatch', moved))
    return [*files, (args.report, '--report')]


def _export_openvino(args: argparse.Namespace, net, ranges, windows: list[dict]) -> int:
    """``--format openvino``: export, convert, check (f32 and bf16 where supported); print the table."""
    clips = crop_check_clips(windows, check_sizes(args.height, args.width, args.dynamic)) if windows else None
    try:
        record = export_checked_openvino(net, args.output, args.frames, args.height, args.width,
                                         args.inference_precision, args.precision, args.dynamic, ranges,
                                         args.float_output, args.check, clips, args.atol, args.min_int8_psnr,
                                         interval=args.interval)
    except OnnxMismatchError as err:
        print(f'error: {err}\nThe IR was moved to {args.output[:-4]}.mismatch.xml/.bin.', file=sys.stderr)
        return 1
    spec = record['graph']
    size = 'dynamic' if spec['height'] is None else f'{spec["width"]}x{spec["height"]}'
    print(f'wrote {args.output} (+ .bin): {spec["arch"]} x{spec["scale"]}, {_calls(spec["frames"], spec["stream"])}, '
          f'{size}, {spec["precision"]} graph, OpenVINO inference precision {args.inference_precision}; convolutions by '
          f'runtime precision: {record["kernels"]["convolutions_by_precision"]}')
    if record['checks']:
        _print_checks(record['checks'], 'OV', 'fake-quantized PyTorch' if args.precision in INT8_PRECISIONS
                      else 'PyTorch FP32', clips is not None)
    if args.report:
        _write_report(args.report, {'checkpoint': args.checkpoint, **record}, list(record['sha256']))
    return 0


def _write_report(path: str, report: dict, published: list[str]) -> None:
    """Write the JSON report; if it cannot be written, remove what the export published (a failed run leaves no
    output, as ``infer_video`` does) and raise one OSError saying both."""
    try:
        write_text(path, json.dumps(report, indent=2, default=str))
    except OSError as err:
        for output in published:
            if os.path.exists(output):
                os.remove(output)
        raise OSError(f'{write_failure(path, err, "report")}; removed what this export wrote '
                      f'({", ".join(published)}): a failed run publishes nothing.') from err


def _calls(frames: int, stream: dict | None) -> str:
    if stream is None:
        return f'windowed, {frames} frames'
    return f'stateful, interval {stream["interval"]} + lookahead {stream["lookahead"]}'


def _print_checks(checks: list[dict], engine: str, against: str, footage: bool) -> None:
    """The engine-vs-PyTorch table; a precision column where the checks have one (OpenVINO)."""
    precision = 'inference_precision' in checks[0]
    print(f"{'input':>10}{' precision' if precision else ''} {'max abs err':>12} {'PSNR dB':>8} {'torch s':>8} "
          f"{engine + ' s':>8}   (vs {against}, {'footage' if footage else 'random'} clip)")
    for m in checks:
        print(f"{m['width']:>4}x{m['height']:<5}{' %9s' % m['inference_precision'] if precision else ''} "
              f"{m['max_abs_error']:>12.3g} {m['psnr_db']:>8.1f} {m['torch_seconds']:>8.2f} "
              f"{m['engine_seconds']:>8.2f}")


def _int8_summary(onnx_path: str) -> dict:
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
