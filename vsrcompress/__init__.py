"""vsrcompress: structured pruning and INT8 QAT for BasicVSR/IconVSR, as a BasicSR extension.

Importing the package registers its archs, models and datasets with basicsr when basicsr is installed. The
compression engines (``vsrcompress.pruning``, ``vsrcompress.quantization``) are plain PyTorch and import without
it, so they can be used in a deployment environment that has no basicsr.
"""
import importlib.util
import warnings

# pytorch-quantization 2.1.3 decorates functions with ``torch.jit.script`` when it is imported, which torch >= 2.5
# reports as deprecated (a FutureWarning on every CLI start). vsrcompress itself does not use ``torch.jit.script``;
# the third-party module is imported once here with that one message hidden, so the warning stays visible for any
# other code.
if importlib.util.find_spec('pytorch_quantization') is not None:
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message=r'`torch\.jit\.script` is deprecated', category=FutureWarning)
        import pytorch_quantization.tensor_quant  # noqa: F401

__version__ = '0.1.0'

if importlib.util.find_spec('basicsr') is not None:
    from vsrcompress import compat

    compat.install()

    from vsrcompress import archs, data, models  # noqa: F401  (registration)
