"""Deployment export: ONNX graphs (FP32/FP16) checked against PyTorch in ONNX Runtime, TensorRT engines.

Plain PyTorch/onnx/onnxruntime; takes any BasicVSRNet/IconVSRNet module (dense or pruned). See docs_deploy.md.
"""
from vsrcompress.export.fp16_graph import convert_graph_to_fp16, float_tensor_types
from vsrcompress.export.onnx_check import (DEFAULT_FP32_ATOL, OnnxMatch, OnnxMismatchError, check_onnx,
                                           compare_with_torch, output_psnr)
from vsrcompress.export.onnx_export import (INPUT_NAME, MIN_SIZE, OUTPUT_NAME, PRECISIONS, OnnxGraphSpec, export_onnx,
                                            read_graph_spec)
from vsrcompress.export.tensorrt_build import (TensorRTUnavailableError, build_tensorrt_engine, read_engine_spec,
                                               require_tensorrt, tensorrt_unavailable_reason)

__all__ = [
    'DEFAULT_FP32_ATOL', 'INPUT_NAME', 'MIN_SIZE', 'OUTPUT_NAME', 'PRECISIONS', 'OnnxGraphSpec', 'OnnxMatch',
    'OnnxMismatchError', 'TensorRTUnavailableError', 'build_tensorrt_engine', 'check_onnx', 'compare_with_torch',
    'convert_graph_to_fp16', 'export_onnx', 'float_tensor_types', 'output_psnr', 'read_engine_spec',
    'read_graph_spec', 'require_tensorrt', 'tensorrt_unavailable_reason',
]
