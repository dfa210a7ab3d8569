"""Compare models by what they cost to deploy: params, MACs per frame, checkpoint size, CPU (and GPU) latency per
frame and the working memory of a forward, at one LR input size. Prints a Markdown table and writes
``<output>.json``, ``<output>.md`` and ``<output>.png``.

Models are official full-size configurations by name (``basicvsr``, ``iconvsr``: 64 channels, 30 blocks, random
weights, as speed and size do not depend on them) or checkpoint files (dense, pruned, INT8 ``vsrcompress-int8/1``;
official BasicSR files need ``--arch``/``--arch-opt``)::

    python scripts/model_complexity.py --models basicvsr iconvsr experiments/x/models/net_g_latest.pth \\
        experiments/y/models/net_g_int8.pth --input-size 640 360 \\
        --psnr experiments/x/models/net_g_latest.pth=30.9 --psnr experiments/y/models/net_g_int8.pth=30.7
    python scripts/model_complexity.py --models IconVSR_REDS-aaa5367f.pth --arch IconVSRNet \\
        --arch-opt num_feat=64 --arch-opt num_block=30

How each number is measured: vsrcompress/report/complexity.py. Full-size models are slow on a CPU: on 2 cores at
640x360, ONNX Runtime took about 2 minutes per 5-frame window of BasicVSR and 4 of IconVSR (PyTorch is slower).
Each model and backend runs ``--warmup`` + ``--repeats`` windows, one more in a fresh process for the memory
(``--no-memory`` skips it), and the ONNX export traces PyTorch once at the input size (``--dynamic-graph`` traces at
64x64). There, ``--backends onnxruntime-cpu --repeats 1 --warmup 0 --dynamic-graph`` measured both in 17 minutes.
"""
import argparse
import math
import os
import sys

import vsrcompress  # noqa: F401  (registers the archs with basicsr)
from vsrcompress.cli import exit_with_error, refuse_output_over_inputs
from vsrcompress.export import MIN_SIZE
from vsrcompress.export.cli_options import add_arch_arguments, network_options
from vsrcompress.report import (LATENCY_BACKENDS, OFFICIAL_MODELS, measure_complexity, model_entry,
                                write_complexity_report)

DEFAULT_OUTPUT = 'results/benchmarks/model_complexity'


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', required=True, metavar='NAME_OR_CHECKPOINT',
                        help=f'official configurations {sorted(OFFICIAL_MODELS)} and/or checkpoint files')
    parser.add_argument('--input-size', type=int, nargs=2, default=[640, 360], metavar=('W', 'H'),
                        help='LR input width and height (default 640 360)')
    parser.add_argument('--frames', type=int, default=5, help='window length every backend runs (default 5)')
    parser.add_argument('--repeats', type=int, default=3, help='timed rounds over all models (default 3)')
    parser.add_argument('--warmup', type=int, default=1, help='untimed rounds first (default 1)')
    parser.add_argument('--threads', type=int, default=os.cpu_count(),
                        help=f'PyTorch and ONNX Runtime threads (default: all {os.cpu_count()} CPUs)')
    parser.add_argument('--backends', nargs='+', choices=LATENCY_BACKENDS, default=list(LATENCY_BACKENDS),
                        help='latencies to measure (default all; torch-cuda is skipped where CUDA is absent)')
    parser.add_argument('--no-memory', action='store_true', help='skip the peak-memory forwards (one per model and '
                                                                 'CPU backend, each in a fresh process)')
    parser.add_argument('--dynamic-graph', action='store_true',
                        help='export ONNX graphs with dynamic height/width, traced at 64x64: skips a full-size '
                             'tracing forward (minutes per model on a CPU at 640x360), runs about 3 %% slower')
    parser.add_argument('--psnr', action='append', default=[], metavar='MODEL=DB',
                        help='PSNR of a model as given in --models, repeatable; plotted against MACs and latency')
    parser.add_argument('--output', default=DEFAULT_OUTPUT, help=f'output prefix (default {DEFAULT_OUTPUT})')
    add_arch_arguments(parser)
    args = parser.parse_args(argv)
    width, height = args.input_size
    if min(width, height) < MIN_SIZE:
        parser.error(f'--input-size: width and height must be >= {MIN_SIZE} (SpyNet needs frames larger than 32 px), '
                     f'got {width} {height}')
    if args.frames < 2 or args.repeats < 1 or args.warmup < 0 or args.threads < 1:
        parser.error('--frames >= 2, --repeats >= 1, --warmup >= 0 and --threads >= 1 required')
    duplicates = sorted({m for m in args.models if args.models.count(m) > 1})
    if duplicates:
        parser.error(f'--models: given more than once: {duplicates}')
    args.psnr_db = {}
    for item in args.psnr:
        model, sep, value = item.rpartition('=')
        try:
            db = float(value)
        except ValueError:
            db = math.nan
        if not sep or model not in args.models or not math.isfinite(db):
            parser.error(f'--psnr: expected MODEL=DB with MODEL one of --models {args.models} and a finite DB, '
                         f'got {item!r}')
        args.psnr_db[model] = db
    try:
        args.network_opt = network_options(args.arch, args.arch_opt)
    except ValueError as err:
        parser.error(str(err))
    try:
        refuse_output_over_inputs([f'{args.output}.{ext}' for ext in ('json', 'md', 'png')], args.models,
                                  '--output', '--models')
    except ValueError as err:
        exit_with_error(err)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    entries = []
    for spec in args.models:
        try:
            entries.append(model_entry(spec, args.network_opt, args.param_key, args.psnr_db.get(spec)))
        except ValueError as err:
            raise SystemExit(f'--models: {err}') from err
    width, height = args.input_size
    rows = measure_complexity(entries, width, height, args.frames, args.repeats, args.warmup, args.threads,
                              args.backends, memory=not args.no_memory, dynamic_graph=args.dynamic_graph)
    command = ' '.join(['python', 'scripts/model_complexity.py', *(argv if argv is not None else sys.argv[1:])])
    paths = write_complexity_report(rows, args.output, command)
    with open(paths['md']) as f:
        print('\n' + f.read())
    print(f"wrote {paths['json']}, {paths['md']}, {paths['png']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
