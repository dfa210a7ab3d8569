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
import dataclasses
import json
import os
import types
import typing
import warnings
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass

import onnx
import torch
from torch import nn

from vsrcompress.archs.basicvsr_net_arch import IconVSRNet
from vsrcompress.atomic_files import make_temporary, write_atomic, write_failure
from vsrcompress.export.artifact_digest import stamp_onnx, verify_onnx
from vsrcompress.export.deform_conv_symbolic import DEFORM_CONV_OPSET, deform_conv_symbolic
from vsrcompress.export.fp16_graph import convert_graph_to_fp16
from vsrcompress.export.int8_network import conv_int8_table, quantizers_bypassed, require_int8_network
from vsrcompress.export.ort_int8_graph import place_ort_int8_qdq
from vsrcompress.export.stateful_graph import (STATE_OUTPUTS, StreamContract, example_call, stateful_forward,
                                               stream_contract)
from vsrcompress.quantization.onnx_mode import qdq_export_mode
from vsrcompress.quantization.quantizers import is_quantized
from vsrcompress.streaming.state import STATE_NAMES

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
    stream: dict | None = None  # a stateful graph's ``StreamContract`` as a dict; None: a windowed graph

    @property
    def dynamic(self) -> bool:
        return self.height is None

    @property
    def contract(self) -> StreamContract | None:
        """What a stateful graph takes per call; None for a windowed graph (no state: windows of ``frames``)."""
        return None if self.stream is None else StreamContract.from_dict(self.stream)


def read_graph_spec(model: str | onnx.ModelProto) -> OnnxGraphSpec:
    """The ``OnnxGraphSpec`` stored in a graph written by ``export_onnx``, checked before anything runs the graph.

    A graph given by path is verified first (``artifact_digest.verify_onnx``: its external data present, its content
    the one its checksum records); its metadata must be a spec this version knows, and its ``lq`` input the shape
    the spec says. Each failure is a ValueError naming the file.
    """
    path = model if isinstance(model, str) else None
    source = path or 'the ONNX model'
    if path is not None:
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
    if path is not None:
        verify_onnx(path, model)
    spec = parse_graph_spec(props[_METADATA_KEY], f'onnx: {source}')
    inputs = {i.name: [d.dim_value if d.HasField('dim_value') else None for d in i.type.tensor_type.shape.dim]
              for i in model.graph.input}
    check_spec_input(inputs.get(INPUT_NAME), spec, f'onnx: {source}')
    return spec


def _is_scalar_hint(hint) -> bool:
    return hint in (int, float, str, bool, type(None))


def parse_graph_spec(values: str | Mapping, source: str) -> OnnxGraphSpec:
    """An ``OnnxGraphSpec`` from the JSON (or dict) a graph, IR or engine stores; a ValueError naming ``source``.

    Keys are ``OnnxGraphSpec``'s fields, whatever they are: an unknown key (metadata written by a newer vsrcompress,
    or edited), a missing one, or a scalar field of the wrong type is refused, not a TypeError later.
    """
    redo = 're-export it with scripts/export.py'
    if isinstance(values, str):
        try:
            values = json.loads(values)
        except json.JSONDecodeError as err:
            raise ValueError(f'{source}: its graph metadata is not valid JSON ({err}); {redo}.') from None
    if not isinstance(values, Mapping):
        raise ValueError(f'{source}: its graph metadata is a {type(values).__name__}, not a JSON object; {redo}.')
    fields = {f.name: f for f in dataclasses.fields(OnnxGraphSpec)}
    unknown = sorted(set(values) - set(fields))
    missing = [name for name, f in fields.items() if name not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if unknown:
        raise ValueError(f'{source}: its graph metadata has key(s) {unknown} this vsrcompress does not know (written '
                         f'by a newer vsrcompress, or edited); known keys: {list(fields)}. Run it with the vsrcompress '
                         f'that exported it, or {redo}.')
    if missing:
        raise ValueError(f'{source}: its graph metadata lacks key(s) {missing}; {redo}.')
    hints = typing.get_type_hints(OnnxGraphSpec)
    for name, value in values.items():
        hint = hints[name]
        options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        if all(_is_scalar_hint(o) for o in options) and not isinstance(value, options):  # others: not checked here
            raise ValueError(f'{source}: its graph metadata has {name}={value!r}, expected {hint}; {redo}.')
    return OnnxGraphSpec(**values)


def check_spec_input(dims: Sequence[int | None] | None, spec: OnnxGraphSpec, source: str) -> None:
    """Refuse a graph whose ``lq`` input (``dims``: None for a symbolic axis) is not the clip its ``spec`` says.

    Fixed axes must equal the spec's (1, frames, 3, height, width); a dynamic spec needs symbolic height and width.
    """
    expected = (1, spec.frames, 3, spec.height, spec.width)
    said = f'(1, {spec.frames}, 3, {"height, width" if spec.dynamic else f"{spec.height}, {spec.width}"})'
    if dims is None:
        raise ValueError(f'{source}: has no input {INPUT_NAME!r}, its metadata says {said}; re-export it with '
                         'scripts/export.py.')
    shape = '(' + ', '.join('?' if d is None else str(d) for d in dims) + ')'
    fits = len(dims) == len(expected) and all(d is None or e is None or d == e for d, e in zip(dims, expected))
    if not fits or (spec.dynamic and any(d is not None for d in dims[3:])) \
            or (not spec.dynamic and any(d is None for d in dims[3:])):
        raise ValueError(f'{source}: its input {INPUT_NAME!r} has shape {shape} but its metadata says {said}: the '
                         'metadata does not describe this graph; re-export it with scripts/export.py.')


def _check_request(net: nn.Module, frames: int, height: int, width: int, precision: str,
                   interval: int | None) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f'precision: {precision!r} is not supported; allowed: {list(PRECISIONS)}')
    min_frames = 2 * net.temporal_padding + 1 if isinstance(net, IconVSRNet) else 2
    if interval is not None:
        min_frames = interval
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
                float_output_layers: Collection[str] = (), interval: int | None = None) -> OnnxGraphSpec:
    """Trace ``net`` on a (1, frames, 3, height, width) clip and write the ONNX graph atomically to ``path``.

    With ``interval`` the graph is a stateful streaming call (``stateful_graph``): it keeps the first ``interval`` of
    its ``frames`` (the rest is the lookahead) and carries the forward state as extra inputs and outputs. Without,
    it is a windowed graph: every call starts from zero state on a window of ``frames``.

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
        interval: Stateful graph: frames delivered per call (``frames - interval`` is the lookahead); IconVSR's fixed
            sizes must be multiples of 4.
    """
    contract = None if interval is None else stream_contract(net, interval, frames - interval)
    _check_request(net, frames, height, width, precision, interval)
    if contract and not dynamic and (height % contract.size_multiple or width % contract.size_multiple):
        m = contract.size_multiple
        raise ValueError(f'height/width: a stateful {type(net).__name__} graph takes frames whose sides are multiples '
                         f'of {m} (EDVR alignment), got {width}x{height}; use {-(-width // m) * m}x'
                         f'{-(-height // m) * m} (smaller frames are padded to it) or --dynamic.')
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
    generator = torch.Generator().manual_seed(0)
    if contract is None:
        inputs, input_names, output_names = (torch.rand(1, frames, 3, height, width, generator=generator),), \
            [INPUT_NAME], [OUTPUT_NAME]
    else:
        inputs = example_call(contract, height, width, first=1, generator=generator)
        input_names, output_names = contract.input_names, [OUTPUT_NAME, *STATE_OUTPUTS]
    dynamic_axes = {INPUT_NAME: {3: 'height', 4: 'width'}, OUTPUT_NAME: {3: 'out_height', 4: 'out_width'},
                    # the state's spatial axes are the frames' (IconVSR: frames padded to multiples of 4)
                    STATE_NAMES[0]: {2: 'height', 3: 'width'}, STATE_NAMES[1]: {3: 'height', 4: 'width'},
                    STATE_OUTPUTS[0]: {2: 'height', 3: 'width'}, STATE_OUTPUTS[1]: {3: 'height', 4: 'width'}}
    dynamic_axes = {k: v for k, v in dynamic_axes.items() if k in input_names + output_names}
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
            if contract is not None:
                stack.enter_context(stateful_forward(net, contract))
            torch.onnx.export(net, inputs, tmp, input_names=input_names, output_names=output_names,
                              opset_version=opset, dynamo=False, dynamic_axes=dynamic_axes if dynamic else None)
        model = onnx.load(tmp)
        if precision == 'fp16':
            model = convert_graph_to_fp16(model)
        if precision == 'int8-ort':
            model, placement = place_ort_int8_qdq(model, int8_table, float_output_layers)
            meta = model.metadata_props.add()
            meta.key, meta.value = _INT8_METADATA_KEY, json.dumps(asdict(placement))
        spec = OnnxGraphSpec(frames=frames, height=None if dynamic else height, width=None if dynamic else width,
                             scale=int(net.scale), precision=precision, arch=type(net).__name__, opset=opset,
                             stream=None if contract is None else contract.to_dict())
        meta = model.metadata_props.add()
        meta.key, meta.value = _METADATA_KEY, json.dumps(asdict(spec))
        stamp_onnx(model)  # last: the checksum covers everything above
        write_atomic(path, lambda out: onnx.save(model, out))
    except OSError as err:  # a full disk, in torch's write of the trace or in onnx.save
        raise write_failure(path, err) from err
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
        net.train(was_training).to(device)
    return spec
