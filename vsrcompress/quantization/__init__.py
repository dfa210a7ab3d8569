"""INT8 (2-8 bit) quantization engine for BasicVSR/IconVSR and any network built from ``nn.Conv2d``.

Plain PyTorch + pytorch-quantization 2.1.3; no basicsr import. The BasicSR model reads the ``quantization:``
YAML section and calls, in order::

    report = quantize_network(net, cfg)           # insertion.py: QuantConv2d + residual-add quantizers
    calibrate(net, (d['lq'] for d in loader), cfg)  # calibration.py: whole clips, ranges frozen afterwards
    ... QAT fine-tuning (ordinary training; ranges are buffers, learned ranges are parameters) ...
    export_int8_checkpoint(net, cfg, report, path, source=...)   # int8_checkpoint.py
    load_int8_checkpoint(float_net, path)          # back into a fake-quant network, bit-exact

``sensitivity_analysis`` (sensitivity.py) measures per-layer PSNR cost and suggests a skip list for a budget;
``qdq_export_mode`` (onnx_mode.py) makes ONNX export emit QuantizeLinear/DequantizeLinear; ``quantizer_ranges``
(range_summary.py) reads every layer's current amax, e.g. for TensorBoard histograms.
"""
from vsrcompress.quantization.calibration import calibrate, calibrate_weights
from vsrcompress.quantization.config import CALIBRATORS, QUANTIZATION_PARTS, QuantConfig
from vsrcompress.quantization.distributed import sync_amax_across_ranks
from vsrcompress.quantization.insertion import QuantReport, candidate_layers, quantize_network
from vsrcompress.quantization.int8_checkpoint import (INT8_FORMAT, export_int8_checkpoint, load_int8_checkpoint,
                                                      pack_int8_checkpoint)
from vsrcompress.quantization.onnx_mode import qdq_export_mode
from vsrcompress.quantization.output_ranges import OUTPUT_RANGE_KEY, calibrate_output_ranges
from vsrcompress.quantization.quantizers import (activation_quantizers, check_calibrated, effective_amax,
                                                 layer_quantizers, quant_convs, quiet_quantizer_logs,
                                                 residual_quantizers, set_quantization_enabled)
from vsrcompress.quantization.range_summary import quantizer_ranges
from vsrcompress.quantization.sensitivity import SensitivityReport, clip_psnr, part_units, sensitivity_analysis

__all__ = [
    'CALIBRATORS', 'INT8_FORMAT', 'OUTPUT_RANGE_KEY', 'QUANTIZATION_PARTS', 'QuantConfig', 'QuantReport',
    'SensitivityReport',
    'activation_quantizers', 'calibrate', 'calibrate_output_ranges', 'calibrate_weights', 'candidate_layers',
    'check_calibrated', 'clip_psnr',
    'effective_amax', 'export_int8_checkpoint', 'layer_quantizers', 'load_int8_checkpoint', 'pack_int8_checkpoint',
    'qdq_export_mode', 'quant_convs', 'quantize_network', 'quantizer_ranges', 'quiet_quantizer_logs',
    'residual_quantizers',
    'part_units', 'sensitivity_analysis', 'set_quantization_enabled', 'sync_amax_across_ranks',
]
