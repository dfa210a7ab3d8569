"""Train with a BasicSR option file: ``python train.py -opt options/X.yml [--auto_resume] [--launcher pytorch]``."""
from os import path as osp

import vsrcompress  # noqa: F401  (registers our archs/models/datasets, makes basicsr run on CPU)
from basicsr.train import train_pipeline

if __name__ == '__main__':
    train_pipeline(osp.dirname(osp.abspath(__file__)))
