"""Export a BasicVSR/IconVSR network (dense or pruned) to ONNX for a window of T frames.

The recurrence is unrolled by tracing, so T is fixed in the graph; the streaming pipeline feeds windows of
exactly T = interval + 2 * overlap frames. Height and width are fixed or dynamic: SpyNet computes its internal
resize from the input's shape, so one dynamic graph is correct at every size (checked in tests at a size other
than the export size). The graph's contract (frames, size, scale,
precision) is stored in the model's metadata, where the inference backends read it.

Precisions: ``fp32``, ``fp16`` (the FP32 graph converted, see ``fp16_graph``), and two INT8 placements for a
quantized network (an INT8 checkpoint loaded with ``load_int8_checkpoint``), both from its calibrated ranges:

- ``int8-trt``: pytorch-quantization's own Q/DQ export (``qdq_export_mode``): Q/DQ on every quantized conv's input
  (per tensor) and weight (per output channel) and on the identity input of residual adds. TensorRT's explicit
  quantization fuses these into INT8 convs (with the residual add).
- ``int8-ort``: the FP32 graph with the placement ONNX Runtime's CPU provider runs as integer kernels
  (Q/DQ on conv outputs too, ReLU folded, int8 LeakyRelu/Add/Concat/DepthToSpace; see ``ort_int8_graph``).

A quantized network exported as ``fp32``/``fp16`` gives the float graph of its (dequantized) weights.
"""
import contextlib
import json
import os
import warnings
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass

import onnx
import torch
from torch import nn

from vsrcompress.archs.basicvsr_net_arch import IconVSRNet
from vsrcompress.atomic_files import make_temporary, write_atomic
from vsrcompress.export.deform_conv_symbolic import DEFORM_CONV_OPSET, deform_conv_symbolic
from vsrcompress.export.fp16_graph import convert_graph_to_fp16
from vsrcompress.export.int8_network import conv_int8_table, quantizers_bypassed, require_int8_network
from vsrcompress.export.ort_int8_graph import place_ort_int8_qdq
from vsrcompress.quantization.onnx_mode import qdq_export_mode
from vsrcompress.quantization.quantizers import is_quantized

PRECISIONS = ('fp32', 'fp16', 'int8-trt', 'int8-ort')
INT8_PRECISIONS = ('int8-trt', 'int8-ort')
DEFAULT_OPSET = 17
INPUT_NAME, OUTPUT_NAME = 'lq', 'sr'
MIN_SIZE = 33  # SpyNet's coarsest pyramid level needs frames larger than 32 px
# graphs with dynamic height/width are traced at this size: any size works, and a full-size trace costs a forward
DYNAMIC_TRACE_SIZE = 64
_METADATA_KEY = 'vsrcompress.graph'
_INT8_METADATA_KEY = 'vsrcompress.int8_placement'


@dataclass(frozen=True)
class OnnxGraphSpec:
    """What an exported graph takes and gives: a (1, frames, 3, height, width) clip, ``scale`` x larger out.

    ``height``/``width`` are None when the graph has dynamic spatial axes.
    """
    frames: int
    height: int | None
    width: int | None
    scale: int
    precision: str
    arch: str
    opset: int

    @property
    def dynamic(self) -> bool:
        return self.height is None


def read_graph_spec(model: str | onnx.ModelProto) -> OnnxGraphSpec:
    """The ``OnnxGraphSpec`` stored in a graph written by ``export_onnx``."""
    source = model if isinstance(model, str) else 'the ONNX model'
    if isinstance(model, str):
        if not os.path.isfile(model):
            raise FileNotFoundError(f'onnx: {model} does not exist.')
        try:
            model = onnx.load(model, load_external_data=False)
        except Exception as err:  # noqa: BLE001  (protobuf's DecodeError and friends: not an ONNX file at all)
            raise ValueError(f'onnx: {model} is not an ONNX graph ({type(err).__name__}); give a .onnx file from '
                             'scripts/export.py.') from err
    props = {p.key: p.value for p in model.metadata_props}
    if _METADATA_KEY not in props:
        raise ValueError(f'onnx: {source} was not written by vsrcompress.export (no {_METADATA_KEY!r} metadata); '
                         'export it with scripts/export.py.')
    return OnnxGraphSpec(**json.loads(props[_METADATA_KEY]))


def _check_request(net: nn.Module, frames: int, height: int, width: int, precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f'precision: {precision!r} is not supported; allowed: {list(PRECISIONS)}')
    min_frames = 2 * net.temporal_padding + 1 if isinstance(net, IconVSRNet) else 2
    if not isinstance(frames, int) or frames < min_frames:
        raise ValueError(f'frames: {type(net).__name__} needs a window of at least {min_frames} frames, got {frames!r}')
    for key, value in (('height', height), ('width', width)):
        if not isinstance(value, int) or value < MIN_SIZE:
            raise ValueError(f'{key}: must be an integer >= {MIN_SIZE} (SpyNet needs frames larger than 32 px), '
                             f'got {value!r}')


def read_int8_placement(model: str | onnx.ModelProto) -> dict | None:
    """What ``int8-ort`` placed (``OrtInt8Report`` as a dict), stored in the graph's metadata; None otherwise."""
    if isinstance(model, str):
        model = onnx.load(model, load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    return json.loads(props[_INT8_METADATA_KEY]) if _INT8_METADATA_KEY in props else None


def export_onnx(net: nn.Module, path: str, frames: int, height: int, width: int, dynamic: bool = False,
                precision: str = 'fp32', opset: int | None = None,
                conv_output_range: Mapping[str, torch.Tensor] | None = None,
                float_output_layers: Collection[str] = ()) -> OnnxGraphSpec:
    """Trace ``net`` on a (1, frames, 3, height, width) clip and write the ONNX graph atomically to ``path``.

    Args:
        net: A BasicVSRNet/IconVSRNet (any width spec); exported in eval mode on CPU, left unchanged.
        path: Output ``.onnx`` file; written to a temporary file first, then renamed.
        frames: Window length T the graph takes (the recurrence is unrolled for exactly T frames).
        height: Input height used for tracing; the graph's fixed height unless ``dynamic``.
        width: Input width used for tracing; the graph's fixed width unless ``dynamic``.
        dynamic: Leave height and width of input and output as symbolic axes.
        precision: One of ``PRECISIONS``; the INT8 ones need a calibrated 8-bit quantized network.
        opset: ONNX opset; default 17, and 19 (the first with DeformConv) for IconVSR.
        conv_output_range: For ``int8-ort``: the measured output range [min, max] of every quantized conv
            (``calibrate_output_ranges``, stored in INT8 checkpoints under ``conv_output_range``).
        float_output_layers: For ``int8-ort``: quantized convs whose output stays float (see ``place_ort_int8_qdq``).
    """
    _check_request(net, frames, height, width, precision)
    int8_table = None
    if precision in INT8_PRECISIONS:
        require_int8_network(net, precision)
    if precision == 'int8-ort':
        int8_table = conv_int8_table(net, conv_output_range)
        unknown = sorted(set(float_output_layers) - set(int8_table))
        if unknown:
            raise ValueError(f'float_output_layers: {unknown} are not quantized convs of {type(net).__name__}; '
                             f'quantized convs: {sorted(int8_table)}')
        missing = [name for name, conv in int8_table.items()
                   if conv.output_range is None and name not in float_output_layers]
        if missing:
            raise ValueError(f'precision: int8-ort needs the measured output range of every quantized conv; missing '
                             f'for {len(missing)} ({missing[:3]}{" ..." if len(missing) > 3 else ""}). Measure them '
                             'with vsrcompress.quantization.calibrate_output_ranges on the calibration clips '
                             '(scripts/export.py --calib-clips), or store them in the INT8 checkpoint.')
    needs_deform_conv = isinstance(net, IconVSRNet)
    opset = opset or (DEFORM_CONV_OPSET if needs_deform_conv else DEFAULT_OPSET)
    if needs_deform_conv and opset < DEFORM_CONV_OPSET:
        raise ValueError(f'opset: IconVSR needs DeformConv, which ONNX has from opset {DEFORM_CONV_OPSET}; '
                         f'got {opset}')
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise ValueError(f'output: cannot write {path}: folder {folder} does not exist or is not writable.')

    was_training = net.training
    device = next(net.parameters()).device
    net.eval().cpu()
    clip = torch.rand(1, frames, 3, height, width, generator=torch.Generator().manual_seed(0))
    dynamic_axes = {INPUT_NAME: {3: 'height', 4: 'width'}, OUTPUT_NAME: {3: 'out_height', 4: 'out_width'}}
    tmp = make_temporary(folder, suffix='.onnx')
    try:
        with torch.no_grad(), contextlib.ExitStack() as stack, warnings.catch_warnings():
            warnings.simplefilter('ignore', torch.jit.TracerWarning)  # shape-to-Python conversions are handled
            if needs_deform_conv:
                stack.enter_context(deform_conv_symbolic())
            if precision == 'int8-trt':
                stack.enter_context(qdq_export_mode())
            elif is_quantized(net):  # the float graph: int8-ort places its own Q/DQ on it
                stack.enter_context(quantizers_bypassed(net))
            torch.onnx.export(net, (clip,), tmp, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              opset_version=opset, dynamo=False, dynamic_axes=dynamic_axes if dynamic else None)
        model = onnx.load(tmp)
        if precision == 'fp16':
            model = convert_graph_to_fp16(model)
        if precision == 'int8-ort':
            model, placement = place_ort_int8_qdq(model, int8_table, float_output_layers)
            meta = model.metadata_props.add()
            meta.key, meta.value = _INT8_METADATA_KEY, json.dumps(asdict(placement))
        spec = OnnxGraphSpec(frames=frames, height=None if dynamic else height, width=None if dynamic else width,
                             scale=int(net.scale), precision=precision, arch=type(net).__name__, opset=opset)
        meta = model.metadata_props.add()
        meta.key, meta.value = _METADATA_KEY, json.dumps(asdict(spec))
        write_atomic(path, lambda out: onnx.save(model, out))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
        net.train(was_training).to(device)
    return spec
