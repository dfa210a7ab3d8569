"""Train with a BasicSR option file: ``python train.py -opt options/X.yml [--auto_resume] [--launcher pytorch]``."""
import sys
from os import path as osp

import vsrcompress  # noqa: F401  (registers our archs/models/datasets, makes basicsr run on CPU)
from basicsr.train import train_pipeline
from vsrcompress.compat import run_pipeline

if __name__ == '__main__':
    sys.exit(run_pipeline(train_pipeline, osp.dirname(osp.abspath(__file__))))
