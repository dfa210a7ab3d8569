"""Fetch official BasicSR checkpoints by name into experiments/pretrained_models/.

Usage: ``python scripts/download_pretrained.py BasicVSR_REDS4 spynet_sintel_final`` (``--list`` shows the names).
The short hash in each file name (e.g. ``-543c8261``) is checked against the SHA256 of the downloaded file.
"""
import argparse
import sys
from os import path as osp

from vsrcompress.pretrained import CHECKPOINTS, fetch_all


def main(argv: list[str] | None = None) -> int:
    """Fetch the named checkpoints; returns 1 when any failed (each failure printed with its URL)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('names', nargs='*', help='checkpoint names (see --list)')
    parser.add_argument('--list', action='store_true', help='list the known checkpoint names')
    parser.add_argument('--out', default=osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'experiments',
                                                  'pretrained_models'))
    args = parser.parse_args(argv)
    if args.list or not args.names:
        for name, (file_name, _) in CHECKPOINTS.items():
            print(f'{name:38s} {file_name}')
        return 0
    unknown = [n for n in args.names if n not in CHECKPOINTS]
    if unknown:
        parser.error(f'unknown checkpoint names {unknown}; known: {", ".join(CHECKPOINTS)}')
    return 1 if fetch_all(args.names, args.out) else 0


if __name__ == '__main__':
    sys.exit(main())
