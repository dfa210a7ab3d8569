"""Quality of a pruned network: the teacher vs pruned (before fine-tuning) vs plain fine-tuning vs fine-tuning with
knowledge distillation (KD), in PSNR on the validation clips. Prints the tables and writes
``<out>/<name>.{json,md,png}`` (default results/benchmarks/pruning_quality).

What is measured and how: ``vsrcompress/bench/pruning_quality.py``.

    python scripts/make_demo_footage.py                                  # datasets/demo
    python compress.py -opt options/demo/basicvsr_prune_qat_demo.yml     # its teacher stage trains the default net
    python scripts/benchmark_pruning_quality.py                          # that teacher on datasets/demo
    python scripts/benchmark_pruning_quality.py --checkpoint experiments/x/models/net_g_latest.pth \\
        --footage datasets/mine --ratio 0.75 --iters 1000 --eval-every 100
"""
import argparse
import sys

from vsrcompress.bench import pruning_quality
from vsrcompress.bench.inputs import add_input_arguments, inputs_from_args
from vsrcompress.bench.pruning_quality import PruningQualityConfig
from vsrcompress.bench.script import command_line, run_benchmark
from vsrcompress.pruning import CRITERIA


def main(argv: list[str] | None = None) -> int:
    d = PruningQualityConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input_arguments(parser, 'pruning_quality', 'dense FP32 teacher',
                        'train split for fine-tuning, val split for PSNR')
    parser.add_argument('--ratio', type=float, default=d.ratio,
                        help=f'fraction of the channels of every part removed, in (0, 1) (default {d.ratio})')
    parser.add_argument('--criterion', choices=CRITERIA, default=d.criterion,
                        help='channel importance (default l1; taylor scores on the first training batch)')
    parser.add_argument('--reference-size', type=int, nargs=2, default=list(d.reference_size), metavar=('H', 'W'),
                        help='LR size at which MACs per frame are counted (default 64 96, the demo frames)')
    parser.add_argument('--iters', type=int, default=d.iters, help=f'fine-tuning steps of each method ({d.iters})')
    parser.add_argument('--eval-every', type=int, default=d.eval_every,
                        help=f'steps between two PSNR measurements of the curves (default {d.eval_every})')
    parser.add_argument('--lr', type=float, default=d.lr, help='Adam learning rate (default: the demo\'s)')
    parser.add_argument('--flow-lr-mul', type=float, default=d.flow_lr_mul,
                        help='learning-rate factor of SpyNet and EDVR (default: the demo\'s train.flow_lr_mul)')
    parser.add_argument('--distill-weight', type=float, default=d.distill_weight,
                        help='weight of the loss to the teacher in KD fine-tuning (default 1, the demo\'s)')
    parser.add_argument('--feature-distill-weight', type=float, default=d.feature_distill_weight,
                        help='> 0 adds a third run: KD + this weight x hidden-state (attention map) distillation')
    parser.add_argument('--batch', type=int, default=d.batch, help='windows per training batch (the demo\'s)')
    parser.add_argument('--frames', type=int, default=d.frames, help='frames per training window (the demo\'s)')
    parser.add_argument('--gt-size', type=int, default=d.gt_size,
                        help='GT crop of the training windows; LR crop = gt-size / scale (default: the demo\'s)')
    parser.add_argument('--seed', type=int, default=d.seed, help='seed of the batches, crops and flips')
    args = parser.parse_args(argv)
    config = PruningQualityConfig(**inputs_from_args(parser, args, command_line('benchmark_pruning_quality.py', argv)),
                                  ratio=args.ratio, criterion=args.criterion,
                                  reference_size=tuple(args.reference_size), iters=args.iters,
                                  eval_every=args.eval_every, lr=args.lr, flow_lr_mul=args.flow_lr_mul,
                                  distill_weight=args.distill_weight,
                                  feature_distill_weight=args.feature_distill_weight, batch=args.batch,
                                  frames=args.frames, gt_size=args.gt_size, seed=args.seed)
    return run_benchmark(pruning_quality, config, parser, args.out, args.name)


if __name__ == '__main__':
    sys.exit(main())
