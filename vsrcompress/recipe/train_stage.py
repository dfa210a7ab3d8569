"""One training stage of a recipe in its own process: ``python -m vsrcompress.recipe.train_stage ROOT -opt F``.

A process per stage gives each stage BasicSR's own logger, TensorBoard writer and seed, as ``train.py`` would;
``ROOT`` is the folder ``experiments/`` lives in (the recipe's root, not this package's).
"""
import sys

import vsrcompress  # noqa: F401  (registers archs/models/datasets, makes basicsr run on CPU)
from basicsr.train import train_pipeline


def main() -> None:
    root = sys.argv.pop(1)
    try:
        train_pipeline(root)
    except KeyboardInterrupt:  # forwarded by compress.py: its last checkpoint and state stay for --auto_resume
        print('recipe stage: interrupted', file=sys.stderr, flush=True)
        sys.exit(130)


if __name__ == '__main__':
    main()
