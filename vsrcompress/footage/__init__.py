"""Custom footage -> BasicSR training data: frame reading, GT/LQ clips, degradations, demo footage.

``prepare_footage`` turns video files and frame folders into the layout described in ``layout.py``;
``make_demo_footage`` writes the same layout from scikit-image's sample photographs (no download). The
registered datasets that read it live in ``vsrcompress/data/footage_dataset.py``.
"""
from vsrcompress.footage.degradations import DegradationConfig
from vsrcompress.footage.demo import make_demo_footage
from vsrcompress.footage.prepare import prepare_footage

__all__ = ['DegradationConfig', 'make_demo_footage', 'prepare_footage']
