"""vsrcompress: structured pruning and INT8 QAT for BasicVSR/IconVSR, as a BasicSR extension.

Importing the package registers its archs, models and datasets with basicsr. The compression engines
(``vsrcompress.pruning``, ``vsrcompress.quantization``, ``vsrcompress.export``) are plain PyTorch.
"""
from vsrcompress import compat

compat.install()

from vsrcompress import archs, data, models  # noqa: E402,F401  (registration)

__version__ = '0.1.0'
