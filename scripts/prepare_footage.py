#!/usr/bin/env python
"""Turn your footage (video files or folders of frames) into a BasicSR training set for vsrcompress.

Example:
    python scripts/prepare_footage.py --input cam1.mp4 cam2.mp4 frames_cam3/ --output datasets/footage \\
        --scale 4 --clip-length 30 --val-inputs cam2.mp4 --resize 960 0 --jpeg-quality 60 90 --noise-sigma 0 3 --lmdb

Writes DIR/{train,val}/{GT,LQ}/<clip>/00000000.png, DIR/meta_info_{train,val}.txt, DIR/footage.json (every
option, the seed and each clip's degradation) and, with --lmdb, DIR/{train,val}/{GT,LQ}.lmdb.
Exit status: 0 done; 2 bad options or inputs; 1 writing or a codec failed. A failed run leaves no output behind.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a clean checkout

from vsrcompress.footage import DegradationConfig, prepare_footage  # noqa: E402  (also registers basicsr parts)
from vsrcompress.footage.degradations import VIDEO_CODECS  # noqa: E402


def range_arg(values: list[float] | None, flag: str, parser: argparse.ArgumentParser):
    """One value (fixed) or MIN MAX (drawn per clip)."""
    if values is None:
        return None
    if len(values) > 2:
        parser.error(f'{flag}: give one value or MIN MAX, got {len(values)} values')
    return tuple(values) if len(values) == 2 else values[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--input', nargs='+', required=True, metavar='PATH',
                        help='video files (mp4, avi, mkv, ... anything OpenCV decodes) and/or folders of frame images')
    parser.add_argument('--output', required=True, metavar='DIR', help='dataset folder to create')
    parser.add_argument('--scale', type=int, default=4, choices=(2, 4), help='GT / LQ size ratio (default: 4)')
    parser.add_argument('--clip-length', type=int, default=30,
                        help='frames per clip; 0 = one clip per input; leftover frames are dropped (default: 30)')
    parser.add_argument('--val-ratio', type=float, default=0.1,
                        help='fraction of clips, drawn with --seed, used for validation (default: 0.1)')
    parser.add_argument('--val-inputs', nargs='+', metavar='PATH',
                        help='inputs (among --input) whose clips form the val split instead of --val-ratio')
    parser.add_argument('--max-frames', type=int, help='use at most this many frames of each input (after --stride)')
    parser.add_argument('--stride', type=int, default=1, help='keep every N-th source frame (default: 1)')
    parser.add_argument('--crop', type=int, nargs=4, metavar=('X', 'Y', 'W', 'H'), help='GT crop in source pixels')
    parser.add_argument('--resize', type=int, nargs=2, metavar=('W', 'H'),
                        help='GT size after --crop; 0 for one side keeps the aspect ratio')
    parser.add_argument('--lmdb', action='store_true', help="also write GT/LQ LMDBs (basicsr's format)")
    parser.add_argument('--blur-sigma', type=float, nargs='+', metavar='SIGMA',
                        help='Gaussian blur std in GT pixels before downscaling: value or MIN MAX per clip')
    parser.add_argument('--noise-sigma', type=float, nargs='+', metavar='SIGMA',
                        help='Gaussian noise std (0-255 scale) added to LQ: value or MIN MAX per clip')
    parser.add_argument('--jpeg-quality', type=int, nargs='+', metavar='Q',
                        help='JPEG-compress LQ frames: quality or MIN MAX per clip (1-100)')
    parser.add_argument('--video-codec', choices=VIDEO_CODECS,
                        help='re-encode each LQ clip with this OpenCV video codec (fixed quality, see docs)')
    parser.add_argument('--seed', type=int, default=0, help='seed of degradations and the val draw (default: 0)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing footage dataset at --output')
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    args = parser.parse_args(argv)

    try:
        degradation = DegradationConfig(blur_sigma=range_arg(args.blur_sigma, '--blur-sigma', parser),
                                        noise_sigma=range_arg(args.noise_sigma, '--noise-sigma', parser),
                                        jpeg_quality=range_arg(args.jpeg_quality, '--jpeg-quality', parser),
                                        video_codec=args.video_codec)
        record = prepare_footage(args.input, args.output, scale=args.scale, clip_length=args.clip_length,
                                 val_ratio=args.val_ratio, val_inputs=args.val_inputs, max_frames=args.max_frames,
                                 stride=args.stride, crop=args.crop, resize=args.resize, lmdb=args.lmdb,
                                 degradation=degradation, seed=args.seed, overwrite=args.overwrite,
                                 progress=not args.quiet)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError) as err:  # bad options or inputs
        parser.exit(2, f'prepare_footage: error: {err}\n')
    except (OSError, RuntimeError) as err:  # the disk or a codec failed; the partial folder is already removed
        parser.exit(1, f'prepare_footage: error: {err}\n')
    counts = {split: len(names) for split, names in record['splits'].items()}
    frames = sum(clip['frames'] for clip in record['clips'].values())
    print(f'wrote {args.output}: {counts["train"]} train / {counts["val"]} val clips, {frames} frames at x{args.scale}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
