"""Deployment export: ONNX graphs (FP32/FP16/INT8) checked against PyTorch in ONNX Runtime, TensorRT engines.

Plain PyTorch/onnx/onnxruntime; takes any BasicVSRNet/IconVSRNet module (dense, pruned or quantized). See
docs/deploy.md.
"""
from vsrcompress.export.footage_windows import footage_options, footage_test_dataset, read_footage_windows
from vsrcompress.export.fp16_graph import convert_graph_to_fp16, float_tensor_types
from vsrcompress.export.int8_network import ConvInt8, conv_int8_table, quantizers_bypassed, require_int8_network
from vsrcompress.export.onnx_check import (DEFAULT_FP32_ATOL, DEFAULT_INT8_MIN_PSNR, OnnxMatch, OnnxMismatchError,
                                           check_onnx, compare_with_torch)
from vsrcompress.export.onnx_export import (DYNAMIC_TRACE_SIZE, INPUT_NAME, INT8_PRECISIONS, MIN_SIZE, OUTPUT_NAME,
                                            PRECISIONS, OnnxGraphSpec, export_onnx, read_graph_spec,
                                            read_int8_placement)
from vsrcompress.export.ort_int8_graph import SAFE_WEIGHT_CODE, OrtInt8Report, place_ort_int8_qdq
from vsrcompress.export.qdq_summary import QdqCoverage, integer_kernel_summary, ort_optimized_ops, qdq_coverage
from vsrcompress.export.tensorrt_build import (TensorRTUnavailableError, build_tensorrt_engine, read_engine_spec,
                                               require_tensorrt, tensorrt_unavailable_reason)

__all__ = [
    'DEFAULT_FP32_ATOL', 'DEFAULT_INT8_MIN_PSNR', 'DYNAMIC_TRACE_SIZE', 'INPUT_NAME', 'INT8_PRECISIONS', 'MIN_SIZE',
    'OUTPUT_NAME', 'PRECISIONS', 'SAFE_WEIGHT_CODE', 'ConvInt8', 'OnnxGraphSpec', 'OnnxMatch', 'OnnxMismatchError',
    'OrtInt8Report', 'QdqCoverage', 'TensorRTUnavailableError', 'build_tensorrt_engine', 'check_onnx',
    'compare_with_torch', 'conv_int8_table', 'convert_graph_to_fp16', 'export_onnx', 'float_tensor_types',
    'footage_options', 'footage_test_dataset', 'integer_kernel_summary', 'ort_optimized_ops',
    'place_ort_int8_qdq', 'qdq_coverage', 'quantizers_bypassed', 'read_engine_spec', 'read_footage_windows',
    'read_graph_spec',
    'read_int8_placement', 'require_int8_network', 'require_tensorrt', 'tensorrt_unavailable_reason',
]
