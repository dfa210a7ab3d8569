"""Evaluate with a BasicSR option file: ``python test.py -opt options/X.yml``."""
import sys
from os import path as osp

import vsrcompress  # noqa: F401  (registers our archs/models/datasets, makes basicsr run on CPU)
from basicsr.test import test_pipeline
from vsrcompress.compat import run_pipeline

if __name__ == '__main__':
    sys.exit(run_pipeline(test_pipeline, osp.dirname(osp.abspath(__file__))))
