"""Q/DQ export mode: quantizers emit PyTorch's native fake-quant ops, which ONNX export turns into Q/DQ nodes.

pytorch-quantization's own fake quantization is a custom autograd function that ONNX cannot express; its class-wide
switch ``TensorQuantizer.use_fb_fake_quant`` swaps in ``torch.fake_quantize_per_{tensor,channel}_affine``, exported
by ``torch.onnx.export(..., dynamo=False)`` as QuantizeLinear/DequantizeLinear (opset >= 13 for per-channel axes).
"""
import contextlib
from collections.abc import Iterator

from pytorch_quantization.nn import TensorQuantizer

from vsrcompress.quantization.quantizers import quiet_quantizer_logs


@contextlib.contextmanager
def qdq_export_mode() -> Iterator[None]:
    """Switch every TensorQuantizer to native fake quantization for the duration (e.g. one ONNX export)."""
    previous = TensorQuantizer.use_fb_fake_quant
    TensorQuantizer.use_fb_fake_quant = True
    try:
        with quiet_quantizer_logs():
            yield
    finally:
        TensorQuantizer.use_fb_fake_quant = previous
