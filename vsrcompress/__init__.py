"""vsrcompress: structured pruning and INT8 QAT for BasicVSR/IconVSR, as a BasicSR extension.

Importing the package registers its archs, models and datasets with basicsr when basicsr is installed. The
compression engines (``vsrcompress.pruning``, ``vsrcompress.quantization``) are plain PyTorch and import without
it, so they can be used in a deployment environment that has no basicsr.
"""
import importlib.util

__version__ = '0.1.0'

if importlib.util.find_spec('basicsr') is not None:
    from vsrcompress import compat

    compat.install()

    from vsrcompress import archs, data, models  # noqa: F401  (registration)
