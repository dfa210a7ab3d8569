#!/usr/bin/env python
"""Write the embedded demo footage (clips filmed over scikit-image's sample photographs; no download).

    python scripts/make_demo_footage.py                  # datasets/demo, the layout prepare_footage writes

Running it again with the same settings keeps the existing dataset; other settings need --overwrite.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a clean checkout

from vsrcompress.footage import make_demo_footage  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--output', default='datasets/demo', help='dataset folder (default: datasets/demo)')
    parser.add_argument('--seed', type=int, default=0, help='seed of cameras, objects and textures (default: 0)')
    parser.add_argument('--train-clips', type=int, default=6, help='training clips (default: 6)')
    parser.add_argument('--val-clips', type=int, default=2, help='validation clips, unseen photographs (default: 2)')
    parser.add_argument('--frames', type=int, default=12, help='frames per clip (default: 12)')
    parser.add_argument('--gt-height', type=int, default=256, help='GT frame height (default: 256)')
    parser.add_argument('--gt-width', type=int, default=384, help='GT frame width (default: 384)')
    parser.add_argument('--scale', type=int, default=4, choices=(2, 4), help='GT / LQ size ratio (default: 4)')
    parser.add_argument('--lmdb', action='store_true', help='also write LMDBs')
    parser.add_argument('--overwrite', action='store_true', help='replace a demo dataset made with other settings')
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    args = parser.parse_args(argv)
    try:
        record = make_demo_footage(args.output, seed=args.seed, train_clips=args.train_clips,
                                   val_clips=args.val_clips, num_frames=args.frames, gt_height=args.gt_height,
                                   gt_width=args.gt_width, scale=args.scale, lmdb=args.lmdb,
                                   overwrite=args.overwrite, progress=not args.quiet)
    except (ValueError, FileExistsError) as err:
        parser.exit(2, f'make_demo_footage: error: {err}\n')
    except (OSError, RuntimeError) as err:  # the disk failed; the writer already removed the partial folder
        parser.exit(1, f'make_demo_footage: error: {err}\n')
    print(f"{args.output}: {len(record['splits']['train'])} train / {len(record['splits']['val'])} val clips")
    return 0


if __name__ == '__main__':
    sys.exit(main())
