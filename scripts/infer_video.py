"""Streaming super-resolution of a video file, frame folder, camera or stream URL to a video or frame folder.

Usage::

    python scripts/infer_video.py --input clip.mp4 --output clip_sr.mp4 --checkpoint pruned.pth --interval 5 \\
        --lookahead 2
    python scripts/infer_video.py --input frames/ --output sr_frames --onnx basicvsr_i5_l2.onnx
    python scripts/infer_video.py --input rtsp://camera/stream --output live_sr.mp4 --engine basicvsr_i5_l2.engine \\
        --backend tensorrt --device cuda --report run.json
    python scripts/infer_video.py --input cam1.mp4 cam2.mp4 cam3.mp4 --output sr1.mp4 sr2.mp4 sr3.mp4 \\
        --openvino basicvsr_i5_l2.xml --report cams.json
    python scripts/infer_video.py --input clip.mp4 --output clip_sr.mp4 --onnx basicvsr_t9.onnx --windowed --overlap 2

Stateful streaming (the default): each model call delivers ``--interval`` frames and reads ``--lookahead`` more for
the backward branch; the forward state is carried from call to call, so nothing is computed twice by the forward
branch and the tail. Graphs exported with ``--interval I --lookahead L`` take exactly those (the defaults here);
PyTorch takes any (default 5 and 2). ``--windowed`` runs today's windows instead: every call from zero state on
``interval + 2 * overlap`` frames, the overlap computed and discarded (graphs exported with ``--frames T``).

Several inputs take one output each and run concurrently, each with its own state (OpenVINO: one asynchronous
request per input in throughput mode). The OpenVINO backend runs in the inference precision recorded in the IR
(``f32``/``bf16``) unless ``--inference-precision`` says otherwise; the report records it.
An interrupted run leaves ``<output stem>.partial<ext>`` (playable; ``.partial-2`` where that name is an input,
a model file or another output) or nothing, never a file under --output.
"""
import argparse
import sys

import vsrcompress  # noqa: F401  (registers the archs with basicsr)
from vsrcompress.cli import exit_with_error, refuse_output_over_inputs
from vsrcompress.checkpoint import load_network
from vsrcompress.export.cli_options import add_arch_arguments, network_options
from vsrcompress.export.openvino_runtime import INFERENCE_PRECISIONS
from vsrcompress.inference import BACKENDS, DEVICES, make_backend, run_video_sr, validate_chunking
from vsrcompress.inference.multi_stream import run_many_video_sr
from vsrcompress.inference.stream_plan import (DEFAULT_INTERVAL, DEFAULT_LOOKAHEAD, DEFAULT_WINDOWED_INTERVAL,
                                               validate_streaming)
from vsrcompress.model_files import model_files

DEFAULT_OVERLAP = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--input', required=True, nargs='+',
                        help='video file, folder of images, camera index or stream URL; several: one --output each')
    parser.add_argument('--output', required=True, nargs='+',
                        help='video file (.mp4/.avi/.mkv/.mov) or folder for PNG frames, one per --input')
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument('--checkpoint', help='network checkpoint, INT8 ones run fake-quantized (torch backend)')
    model.add_argument('--onnx', help='graph from scripts/export.py, any precision (onnxruntime backend)')
    model.add_argument('--engine', help='engine from scripts/export.py --trt (tensorrt backend)')
    model.add_argument('--openvino', help='IR (.xml) from scripts/export.py --format openvino (openvino backend, CPU)')
    parser.add_argument('--backend', choices=BACKENDS, help='default: by the model file given')
    parser.add_argument('--device', choices=DEVICES, default='cpu')
    parser.add_argument('--fp16', action='store_true', help='torch backend on cuda: FP16 autocast')
    parser.add_argument('--inference-precision', choices=INFERENCE_PRECISIONS,
                        help='openvino backend: f32 or bf16 for the float layers (default: the one the IR records)')
    parser.add_argument('--interval', type=int, help=f'frames delivered per model call (default: the graph\'s; '
                                                     f'{DEFAULT_INTERVAL} for torch; --windowed: T - 2 * overlap, '
                                                     f'{DEFAULT_WINDOWED_INTERVAL} for torch)')
    parser.add_argument('--lookahead', type=int, help='frames after the delivered ones that the backward branch reads '
                                                      f'(default: the graph\'s; {DEFAULT_LOOKAHEAD} for torch)')
    parser.add_argument('--windowed', action='store_true',
                        help='windowed mode: every call from zero state, --overlap frames each side computed and '
                             'discarded (graphs exported with --frames)')
    parser.add_argument('--overlap', type=int, help=f'--windowed: context frames each side (default {DEFAULT_OVERLAP})')
    parser.add_argument('--fps', type=float, help='output frame rate (default: the input\'s; 25 for folders)')
    parser.add_argument('--fourcc', help='video codec (default: mp4v for .mp4, MJPG for .avi/.mkv)')
    parser.add_argument('--report', help='write the timing/memory report as JSON')
    parser.add_argument('--allow-truncated', action='store_true',
                        help='accept a video file that decodes fewer frames than its container reports')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    add_arch_arguments(parser)
    args = parser.parse_args(argv)
    default_backend = ('torch' if args.checkpoint else 'onnxruntime' if args.onnx else
                       'openvino' if args.openvino else 'tensorrt')
    args.backend = args.backend or default_backend
    if args.backend != default_backend:
        parser.error(f'--backend {args.backend} needs ' + {'torch': '--checkpoint', 'onnxruntime': '--onnx',
                                                           'openvino': '--openvino',
                                                           'tensorrt': '--engine'}[args.backend])
    if args.inference_precision and args.backend != 'openvino':
        parser.error('--inference-precision applies to the openvino backend (--openvino) only')
    if args.windowed:
        if args.lookahead is not None:
            parser.error('--lookahead applies to stateful streaming; --windowed uses --overlap')
        args.overlap = DEFAULT_OVERLAP if args.overlap is None else args.overlap
    elif args.overlap is not None:
        parser.error('--overlap applies to --windowed mode (stateful streaming, the default, uses --lookahead)')
    if len(args.input) != len(args.output):
        parser.error(f'--output: {len(args.input)} inputs need {len(args.input)} outputs (one per input, in order), '
                     f'got {len(args.output)}')
    model_flag, model = {'torch': ('--checkpoint', args.checkpoint), 'onnxruntime': ('--onnx', args.onnx),
                         'openvino': ('--openvino', args.openvino), 'tensorrt': ('--engine', args.engine)}[args.backend]
    args.model_files = model_files(model)  # with the IR's .bin, the ONNX external data, the engine's .json
    input_flags = ['--input'] * len(args.input) + [model_flag] + [f'{model_flag} file'] * (len(args.model_files) - 1)
    try:
        refuse_output_over_inputs([*args.output, args.report], [*args.input, *args.model_files],
                                  ['--output'] * len(args.output) + ['--report'], input_flags)
    except ValueError as err:
        exit_with_error(err)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    net = None
    if args.backend == 'torch':  # check the streaming flags before loading anything
        if args.windowed and args.interval is not None:
            validate_chunking(args.interval, args.overlap)
        elif not args.windowed:
            validate_streaming(DEFAULT_INTERVAL if args.interval is None else args.interval,
                               DEFAULT_LOOKAHEAD if args.lookahead is None else args.lookahead)
        net = load_network(args.checkpoint, network_options(args.arch, args.arch_opt), args.param_key).net
    backend = make_backend(args.backend, args.device, net=net, onnx_path=args.onnx, engine_path=args.engine,
                           fp16=args.fp16, openvino_path=args.openvino, inference_precision=args.inference_precision,
                           openvino_mode='throughput' if len(args.input) > 1 else 'latency')
    streaming = {'interval': args.interval, 'overlap': args.overlap, 'lookahead': args.lookahead,
                 'report_path': args.report, 'fps': args.fps, 'fourcc': args.fourcc,
                 'allow_truncated': args.allow_truncated, 'protected': args.model_files}
    if len(args.input) > 1:
        run_many_video_sr(args.input, args.output, backend, **streaming)
        return 0
    run_video_sr(args.input[0], args.output[0], backend, progress=not args.no_progress, **streaming)
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        sys.exit(130)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f'error: {err}', file=sys.stderr)
        sys.exit(2)
    except OSError as err:  # a failed write (full disk): nothing was published under --output
        print(f'error: {err}', file=sys.stderr)
        sys.exit(1)
