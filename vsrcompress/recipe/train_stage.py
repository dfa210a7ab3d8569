"""One training stage of a recipe in its own process: ``python -m vsrcompress.recipe.train_stage ROOT -opt F``.

A process per stage gives each stage BasicSR's own logger, TensorBoard writer and seed, as ``train.py`` would;
``ROOT`` is the folder ``experiments/`` lives in (the recipe's root, not this package's).
"""
import sys

import vsrcompress  # noqa: F401  (registers archs/models/datasets, makes basicsr run on CPU)
from basicsr.train import train_pipeline


def main() -> None:
    root = sys.argv.pop(1)
    train_pipeline(root)


if __name__ == '__main__':
    main()
