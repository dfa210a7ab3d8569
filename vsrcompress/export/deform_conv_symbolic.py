"""ONNX export of ``torchvision.ops.deform_conv2d`` (IconVSR's EDVR alignment) as the DeformConv op.

torchvision registers no ONNX symbolic for ``torchvision::deform_conv2d``, so the legacy exporter fails on
IconVSR. ONNX has ``DeformConv`` since opset 19 with torchvision's conventions (offsets as (dy, dx) pairs per
kernel tap and offset group, an optional modulation mask), and ONNX Runtime's CPU provider implements it
(float and double; checked against PyTorch in tests/test_export.py with non-zero offsets).
"""
import contextlib
from collections.abc import Iterator

import torch
from torch.onnx import symbolic_helper

DEFORM_CONV_OPSET = 19
_OP_NAME = 'torchvision::deform_conv2d'


@symbolic_helper.parse_args('v', 'v', 'v', 'v', 'v', 'i', 'i', 'i', 'i', 'i', 'i', 'i', 'i', 'b')
def _deform_conv2d(g, x, weight, offset, mask, bias, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, n_weight_grps,
                   n_offset_grps, use_mask):
    kernel_h, kernel_w = symbolic_helper._get_tensor_sizes(weight)[2:]
    inputs = [x, weight, offset, bias] + ([mask] if use_mask else [])
    return g.op('DeformConv', *inputs, dilations_i=[dil_h, dil_w], group_i=n_weight_grps,
                kernel_shape_i=[kernel_h, kernel_w], offset_group_i=n_offset_grps, pads_i=[pad_h, pad_w, pad_h, pad_w],
                strides_i=[stride_h, stride_w])


@contextlib.contextmanager
def deform_conv_symbolic() -> Iterator[None]:
    """Within the block, the legacy ONNX exporter maps ``torchvision::deform_conv2d`` to ``DeformConv``."""
    torch.onnx.register_custom_op_symbolic(_OP_NAME, _deform_conv2d, DEFORM_CONV_OPSET)
    try:
        yield
    finally:
        torch.onnx.unregister_custom_op_symbolic(_OP_NAME, DEFORM_CONV_OPSET)
