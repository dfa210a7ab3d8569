"""Streaming super-resolution of a video file, frame folder, camera or stream URL to a video or frame folder.

Usage::

    python scripts/infer_video.py --input clip.mp4 --output clip_sr.mp4 --checkpoint pruned.pth --interval 5 --overlap 2
    python scripts/infer_video.py --input frames/ --output sr_frames --onnx basicvsr_t9.onnx --overlap 2
    python scripts/infer_video.py --input rtsp://camera/stream --output live_sr.mp4 --engine basicvsr_t9.engine \\
        --backend tensorrt --device cuda --overlap 2 --report run.json
    python scripts/infer_video.py --input cam1.mp4 cam2.mp4 cam3.mp4 --output sr1.mp4 sr2.mp4 sr3.mp4 \\
        --openvino basicvsr_t9.xml --overlap 2 --report cams.json

Several inputs take one output each; the OpenVINO backend then serves them concurrently (asynchronous requests
in throughput mode, one per input), the others one after another. The OpenVINO backend runs in the inference
precision recorded in the IR (``f32``/``bf16``) unless ``--inference-precision`` says otherwise; the report
records it.

Each model call sees ``interval + 2 * overlap`` frames and keeps the middle ``interval``; ONNX graphs and
TensorRT engines take exactly the T they were exported for, so by default ``--interval`` is T - 2 * overlap.
An interrupted run leaves ``<output stem>.partial<ext>`` (playable) or nothing, never a file under --output.
"""
import argparse
import sys

import vsrcompress  # noqa: F401  (registers the archs with basicsr)
from vsrcompress.cli import refuse_output_over_inputs
from vsrcompress.checkpoint import load_network
from vsrcompress.export.cli_options import add_arch_arguments, network_options
from vsrcompress.export.openvino_runtime import INFERENCE_PRECISIONS
from vsrcompress.inference import BACKENDS, DEVICES, make_backend, run_video_sr, validate_chunking
from vsrcompress.inference.multi_stream import run_many_video_sr

DEFAULT_TORCH_INTERVAL = 15


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
    parser.add_argument('--interval', type=int, help=f'frames kept per model call (default: the graph\'s T - 2 * '
                                                     f'overlap; {DEFAULT_TORCH_INTERVAL} for torch)')
    parser.add_argument('--overlap', type=int, default=2, help='context frames each side, computed and discarded')
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
    if len(args.input) != len(args.output):
        parser.error(f'--output: {len(args.input)} inputs need {len(args.input)} outputs (one per input, in order), '
                     f'got {len(args.output)}')
    try:
        refuse_output_over_inputs([*args.output, args.report],
                                  [*args.input, args.checkpoint, args.onnx, args.engine, args.openvino],
                                  '--output/--report', '--input/model file')
    except ValueError as err:
        parser.error(str(err))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    net = None
    if args.backend == 'torch':
        if args.interval is not None:  # check chunking before loading anything
            validate_chunking(args.interval, args.overlap)
        net = load_network(args.checkpoint, network_options(args.arch, args.arch_opt), args.param_key).net
    backend = make_backend(args.backend, args.device, net=net, onnx_path=args.onnx, engine_path=args.engine,
                           fp16=args.fp16, openvino_path=args.openvino, inference_precision=args.inference_precision,
                           openvino_mode='throughput' if len(args.input) > 1 else 'latency')
    interval = args.interval
    if interval is None:
        window = backend.window_frames
        interval = DEFAULT_TORCH_INTERVAL if window is None else window - 2 * args.overlap
        if interval < 2:
            raise ValueError(f'overlap: the model takes {window}-frame windows; --overlap {args.overlap} '
                             f'leaves {interval} output frames per call. Use --overlap at most '
                             f'{(window - 2) // 2}, or export with more --frames.')
    if len(args.input) > 1:
        run_many_video_sr(args.input, args.output, backend, interval, args.overlap, report_path=args.report,
                          fps=args.fps, fourcc=args.fourcc, allow_truncated=args.allow_truncated)
        return 0
    run_video_sr(args.input[0], args.output[0], backend, interval, args.overlap, report_path=args.report,
                 fps=args.fps, fourcc=args.fourcc, progress=not args.no_progress, allow_truncated=args.allow_truncated)
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
