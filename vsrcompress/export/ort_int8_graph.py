"""INT8 placement for ONNX Runtime's CPU provider: Q/DQ around every quantized conv's input, weight, bias and output.

ONNX Runtime rewrites ``DQ(x) -> Conv(DQ(w), DQ(b)) -> Q`` into ``QLinearConv`` (integer kernels) only when the
conv's output is quantized as well; with Q/DQ on conv inputs only (the TensorRT placement) every conv runs in FP32
between extra quantize/dequantize steps (FIELD_NOTES: 1.35x slower than FP32). This pass takes the FP32 graph of
the network and places:

- on each quantized conv: its input Q/DQ with the calibrated input range, its int8 weight codes with the
  per-channel scales (DequantizeLinear, axis 0), its bias as int32 at scale ``input_scale * weight_scale`` (what
  ``QLinearConv`` expects), and a Q/DQ on its output;
- the output range, derived from the readers' calibrated input range wherever the output reaches quantized convs
  through Concat, ReLU, LeakyReLU or DepthToSpace only: ``Conv -> Relu -> Conv`` quantizes the first output to
  [0, amax] with zero point 0, so the Q is the ReLU (the ReLU node is removed) and the step is amax / 255;
  ``Conv -> [DepthToSpace ->] LeakyRelu -> Conv`` quantizes it to [max(measured min, -amax / slope), amax];
  elsewhere (residual branches, SpyNet's flow residuals) the measured range (``calibrate_output_ranges``);
- ``LeakyRelu``, ``Add``, ``Concat`` whose inputs are all quantized and whose output feeds quantized convs get a
  Q/DQ on the output (ONNX Runtime turns them into QLinearLeakyRelu, QLinearAdd, QLinearConcat): the residual
  stream stays in integers between blocks. ``DepthToSpace`` (pixel shuffle) keeps its input's quantization.

Everything else stays float (SpyNet's warps and resizes, flow arithmetic, ``GridSample``, the final add of the
upsampled input) and reads dequantized values; so do ``float_output_layers``, if any. Ranges are never
re-calibrated: every scale is a calibrated or measured range of the quantization engine. Activations are uint8
(symmetric ranges with zero point 128: the engine's int8 grid): ONNX Runtime's x86 kernels are U8S8; with int8
activations it fused only 140 of 195 convs of a test model and no residual add.
"""
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

from vsrcompress.export.int8_network import INT8_BOUND, ConvInt8

_WEIGHT_SUFFIX = '.weight'
_INT8_OPS = ('LeakyRelu', 'Add', 'Concat')  # run on int8 inputs when their output feeds quantized convs
_PASS_THROUGH_OPS = ('DepthToSpace',)  # move values only: the output keeps the input's quantization
_LEVELS = 255  # uint8 codes
_SYMMETRIC_ZERO_POINT = 128
# ONNX Runtime's x86 U8S8 kernels without VNNI (AVX2) add pairs of uint8 x int8 products in int16 with saturation:
# 255 * 127 * 2 overflows, 255 * 64 * 2 does not. Weight codes are limited to +-64 (scale amax / 64, the same
# per-channel amax), as ONNX Runtime's own quantizer does with reduce_range. Measured on a toy BasicVSR: full-range
# codes reach 57.7 dB against the fake-quantized network in ONNX Runtime although the same Q/DQ graph computes
# 75.0 dB exactly (saturation); +-64 codes give 73.9 dB, identical with and without ONNX Runtime's fusion.
SAFE_WEIGHT_CODE = 64
_MIN_SPAN = 1e-8  # an all-zero tensor still needs a positive scale


@dataclass(frozen=True)
class _Range:
    """A wanted quantization of a tensor.

    ``sym``: the engine's symmetric grid, scale amax / 127, codes -128..127 (uint8 with zero point 128): conv inputs.
    ``relu``: [0, hi], zero point 0, so the Q applies the ReLU. ``asym``: [lo, hi] on the 255 steps of uint8.
    ``leaky``: the input of a LeakyReLU whose output must fit [-hi, hi]: [lo, hi] with lo = -hi / slope at most,
    narrowed to the measured minimum when there is one.
    """
    lo: float
    hi: float
    kind: str = 'sym'

    def scale_and_zero_point(self) -> tuple[float, int]:
        if self.kind == 'sym':
            return max(self.hi, _MIN_SPAN) / INT8_BOUND, _SYMMETRIC_ZERO_POINT
        scale = max(self.hi - self.lo, _MIN_SPAN) / _LEVELS
        return scale, int(np.clip(round(-self.lo / scale), 0, _LEVELS))

    def union(self, other: '_Range') -> '_Range':
        kind = 'sym' if self.kind == other.kind == 'sym' else 'asym'
        return _Range(min(self.lo, other.lo), max(self.hi, other.hi), kind)


def _symmetric(amax: float) -> _Range:
    return _Range(-amax, amax, 'sym')


@dataclass
class OrtInt8Report:
    """What the pass placed: quantized conv nodes, other int8 nodes by op type, folded ReLUs, and compromises."""
    quantized_convs: int = 0
    float_output_convs: int = 0
    float_convs: int = 0
    int8_ops: dict[str, int] = field(default_factory=dict)
    folded_relus: int = 0
    derived_output_ranges: list[str] = field(default_factory=list)
    measured_output_ranges: list[str] = field(default_factory=list)
    merged_ranges: int = 0  # tensors read by quantized convs with different ranges: the union is used
    clipped_biases: int = 0


def conv_layer_name(node: onnx.NodeProto) -> str | None:
    """The module name of a Conv node's layer, from its weight initializer (``<layer>.weight``)."""
    if node.op_type != 'Conv' or len(node.input) < 2 or not node.input[1].endswith(_WEIGHT_SUFFIX):
        return None
    return node.input[1][:-len(_WEIGHT_SUFFIX)]


def place_ort_int8_qdq(model: onnx.ModelProto, convs: Mapping[str, ConvInt8],
                       float_output_layers: Collection[str] = (), weight_code: int = SAFE_WEIGHT_CODE
                       ) -> tuple[onnx.ModelProto, OrtInt8Report]:
    """Return a copy of the FP32 ``model`` with the CPU integer-kernel Q/DQ placement, and what was placed.

    Args:
        model: The FP32 graph traced from the network with its quantizers bypassed; conv weights are initializers
            named ``<layer>.weight`` (shared by all time steps of the unrolled recurrence).
        convs: ``conv_int8_table`` of the quantized network; layers not in it stay float.
        float_output_layers: Quantized convs whose output stays float: their input keeps its Q/DQ and their weight
            is the dequantized int8 weight, so they compute what the fake-quantized network computes, in FP32.
            E.g. ``conv_last``, the RGB detail added to the upsampled frame: toy BasicVSR against the fake-quantized
            network 73.9 dB float vs 72.0 dB quantized, at 5-10 % of the INT8 run time (float conv at HR plus the
            dequantization of its input).
        weight_code: Largest weight code of the integer convs: 64 by default (see ``SAFE_WEIGHT_CODE``); 127 keeps
            the engine's weight codes as they are, for CPUs whose integer kernels do not saturate (VNNI, ARM).
    """
    if not 1 <= weight_code <= INT8_BOUND:
        raise ValueError(f'weight_code: must be 1..{INT8_BOUND}, got {weight_code!r}')
    unknown = sorted(set(float_output_layers) - set(convs))
    if unknown:
        raise ValueError(f'float_output_layers: {unknown} are not quantized convs; quantized convs: {sorted(convs)}')
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    report = OrtInt8Report()
    outputs = {o.name for o in graph.output}
    consumers = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    producer = {out: node for node in graph.node for out in node.output}

    def layer_of(node):
        layer = conv_layer_name(node)
        return layer if layer in convs else None

    def foldable_relu(node):  # quantized conv -> Relu, the conv output read by nothing else
        source = producer.get(node.input[0])
        return (source is not None and layer_of(source) is not None and len(consumers[node.input[0]]) == 1
                and node.output[0] not in outputs)

    wanted = _wanted_ranges(graph.node, layer_of, foldable_relu, convs, report)
    quant: dict[str, _Range] = {}
    kept, conv_inputs = [], {}
    derived, measured = set(), set()
    for node in graph.node:
        layer = layer_of(node)
        if layer is not None:
            x, y = node.input[0], node.output[0]
            quant.setdefault(x, wanted[x])
            conv_inputs[id(node)] = (layer, quant[x], layer in float_output_layers)
            if layer in float_output_layers:
                report.float_output_convs += 1
            else:
                quant[y] = _conv_output_range(layer, convs[layer], wanted.get(y), [c.op_type for c in consumers[y]])
                (derived if y in wanted else measured).add(layer)
                report.quantized_convs += 1
        elif node.op_type == 'Conv':
            report.float_convs += 1
        elif node.op_type == 'Relu' and node.input[0] in quant and quant[node.input[0]].kind == 'relu' \
                and foldable_relu(node):
            for consumer in consumers[node.output[0]]:  # the quantization of the conv output is the ReLU
                consumer.input[:] = [node.input[0] if i == node.output[0] else i for i in consumer.input]
            report.folded_relus += 1
            continue
        elif node.op_type in _INT8_OPS and all(i in quant for i in node.input) and node.output[0] in wanted:
            quant[node.output[0]] = wanted[node.output[0]]
            report.int8_ops[node.op_type] = report.int8_ops.get(node.op_type, 0) + 1
        elif node.op_type in _PASS_THROUGH_OPS and node.input[0] in quant:
            quant[node.output[0]] = quant[node.input[0]]
            report.int8_ops[node.op_type] = report.int8_ops.get(node.op_type, 0) + 1
        kept.append(node)
    report.derived_output_ranges, report.measured_output_ranges = sorted(derived), sorted(measured)

    builder = _QdqBuilder(graph, weight_code)
    for node in kept:
        if id(node) not in conv_inputs:
            continue
        layer, x_range, float_output = conv_inputs[id(node)]
        if float_output:
            node.input[1] = builder.dequantized_weight(layer, convs[layer])
        else:
            node.input[1], bias = builder.conv_parameters(node, layer, convs[layer], x_range, report)
            if len(node.input) > 2:
                node.input[2] = bias
    builder.rebuild(kept, quant, outputs)
    onnx.checker.check_model(model)
    return model, report


def _conv_output_range(layer: str, conv: ConvInt8, wanted: _Range | None, readers: list[str]) -> _Range:
    """Derived from the readers' calibrated range where possible, else the measured one."""
    measured = None if conv.output_range is None else _Range(*conv.output_range, kind='asym')
    if wanted is not None and wanted.kind == 'leaky' and measured is not None:
        return _Range(max(wanted.lo, measured.lo), wanted.hi, 'asym')
    if wanted is not None:
        return wanted if wanted.kind != 'leaky' else _Range(wanted.lo, wanted.hi, 'asym')
    if measured is None:
        raise ValueError(f'int8-ort: the output range of {layer} is needed (its output feeds {readers}, not a '
                         'quantized conv) but was not measured; measure conv output ranges with '
                         'calibrate_output_ranges (scripts/export.py --calib-clips) or keep the layer float '
                         '(quantization.skip).')
    return measured


def _wanted_ranges(nodes, layer_of, foldable_relu, convs: Mapping[str, ConvInt8], report: OrtInt8Report
                   ) -> dict[str, _Range]:
    """Ranges that quantized convs want for the tensors they read, carried back through Concat, ReLU, LeakyReLU
    and DepthToSpace, so that a conv's output range is its readers' calibrated input range wherever possible."""
    wanted: dict[str, _Range] = {}

    def want(tensor: str, rng: _Range) -> None:
        previous = wanted.get(tensor)
        if previous is not None and previous != rng:
            report.merged_ranges += 1
            rng = previous.union(rng)
        wanted[tensor] = rng

    for node in reversed(nodes):  # exported graphs are topologically sorted: consumers come first here
        layer = layer_of(node)
        out = wanted.get(node.output[0]) if node.output else None
        if layer is not None:
            want(node.input[0], _symmetric(convs[layer].input_amax))
        elif out is None:
            continue
        elif node.op_type in _PASS_THROUGH_OPS:
            want(node.input[0], out)
        elif out.kind != 'sym':  # below: carried back from a conv input's symmetric range only
            continue
        elif node.op_type == 'Concat':
            for name in node.input:
                want(name, out)
        elif node.op_type == 'Relu' and foldable_relu(node):
            want(node.input[0], _Range(0.0, out.hi, 'relu'))
        elif node.op_type == 'LeakyRelu':
            slope = next((a.f for a in node.attribute if a.name == 'alpha'), 0.01)
            if slope > 0:
                want(node.input[0], _Range(-out.hi / slope, out.hi, 'leaky'))
    return wanted


class _QdqBuilder:
    """Creates the initializers and Q/DQ nodes, and writes the node list back in topological order."""

    def __init__(self, graph: onnx.GraphProto, weight_code: int):
        self.graph = graph
        self.weight_code = weight_code
        self.constants: list[onnx.NodeProto] = []
        self.initializers = {init.name: init for init in graph.initializer}
        # The exporter stores identical parameters once and names the copies with Identity nodes (e.g. zero biases).
        self.aliases = {node.output[0]: node.input[0] for node in graph.node
                        if node.op_type == 'Identity' and node.input[0] in self.initializers}

    def _initializer(self, name: str, array: np.ndarray) -> str:
        if name not in self.initializers:
            self.graph.initializer.append(numpy_helper.from_array(array, name))
            self.initializers[name] = self.graph.initializer[-1]
        return name

    def _scalar_params(self, tensor: str, rng: _Range) -> tuple[str, str]:
        scale, zero_point = rng.scale_and_zero_point()
        key = f'{tensor}.{rng.kind}'
        return (self._initializer(f'{key}_scale', np.array(scale, dtype=np.float32)),
                self._initializer(f'{key}_zero_point', np.array(zero_point, dtype=np.uint8)))

    def dequantized_weight(self, layer: str, conv: ConvInt8) -> str:
        """The weight codes times their scales as a float initializer: what a float-output conv computes with
        (a constant weight lets ONNX Runtime pre-pack it; DQ(int8) would be dequantized on every run)."""
        weight = conv.weight.astype(np.float32) * conv.weight_scale.reshape(-1, 1, 1, 1)
        return self._initializer(f'{layer}.weight_dequantized', weight.astype(np.float32))

    def conv_parameters(self, node: onnx.NodeProto, layer: str, conv: ConvInt8, x_range: _Range,
                        report: OrtInt8Report) -> tuple[str, str]:
        """DQ(int8 weight codes) and DQ(int32 bias) for one Conv node; returns their output names."""
        w_scale = np.where(conv.weight_scale > 0, conv.weight_scale, 1.0).astype(np.float32)  # zero channels: q = 0
        codes = conv.weight
        if self.weight_code < INT8_BOUND:  # same amax, fewer codes: scale amax / weight_code
            w_scale = (w_scale * (INT8_BOUND / self.weight_code)).astype(np.float32)
            codes = np.clip(np.round(conv.weight.astype(np.float32) * (self.weight_code / INT8_BOUND)),
                            -self.weight_code, self.weight_code).astype(np.int8)
        codes = self._initializer(f'{layer}.weight_int8', codes)
        w_scale_name = self._initializer(f'{layer}.weight_scale', w_scale)
        w_zero = self._initializer(f'{layer}.weight_zero_point', np.zeros(len(w_scale), dtype=np.int8))
        weight = f'{node.name or node.output[0]}.weight_dq'
        self.constants.append(helper.make_node('DequantizeLinear', [codes, w_scale_name, w_zero], [weight], axis=0,
                                               name=weight))
        if len(node.input) < 3 or not node.input[2]:
            return weight, ''
        bias_name = self.aliases.get(node.input[2], node.input[2])
        if bias_name not in self.initializers:
            raise ValueError(f'int8-ort: the bias of {layer} ({node.input[2]}) is not a constant of the graph.')
        bias_float = numpy_helper.to_array(self.initializers[bias_name])
        x_scale = np.float32(x_range.scale_and_zero_point()[0])
        b_scale = (x_scale * w_scale).astype(np.float32)
        codes_b = np.round(bias_float.astype(np.float64) / b_scale)
        limit = np.iinfo(np.int32)
        report.clipped_biases += int(((codes_b < limit.min) | (codes_b > limit.max)).sum())
        codes_b = np.clip(codes_b, limit.min, limit.max).astype(np.int32)
        suffix = f'{x_range.kind}_{x_range.lo:.9g}_{x_range.hi:.9g}'
        b_codes = self._initializer(f'{layer}.bias_int32_{suffix}', codes_b)
        b_scale_name = self._initializer(f'{layer}.bias_scale_{suffix}', b_scale)
        b_zero = self._initializer(f'{layer}.bias_zero_point', np.zeros(len(b_scale), dtype=np.int32))
        bias = f'{node.name or node.output[0]}.bias_dq'
        self.constants.append(helper.make_node('DequantizeLinear', [b_codes, b_scale_name, b_zero], [bias], axis=0,
                                               name=bias))
        return weight, bias

    def rebuild(self, nodes: list[onnx.NodeProto], quant: Mapping[str, _Range], outputs: set[str]) -> None:
        """Insert Q -> DQ after each quantized tensor's producer and point its readers at the DQ output.

        A quantized graph output keeps its name on the DQ output (the producer writes ``<name>_float``), so the
        graph's interface does not change.
        """
        dq_name = {tensor: tensor if tensor in outputs else f'{tensor}_dq' for tensor in quant}
        source = {tensor: f'{tensor}_float' if tensor in outputs else tensor for tensor in quant}
        graph_inputs = {i.name for i in self.graph.input}
        ordered = list(self.constants)
        for tensor in quant:
            if tensor in graph_inputs:
                ordered += self._qdq(tensor, tensor, quant[tensor], dq_name[tensor])
        for node in nodes:
            node.input[:] = [dq_name.get(i, i) for i in node.input]
            produced = list(node.output)
            node.output[:] = [source.get(o, o) for o in produced]
            ordered.append(node)
            for tensor in produced:
                if tensor in quant:
                    ordered += self._qdq(tensor, source[tensor], quant[tensor], dq_name[tensor])
        read = {i for node in ordered for i in node.input} | outputs
        ordered = [node for node in ordered if node.op_type != 'Identity' or node.output[0] in read]
        read = {i for node in ordered for i in node.input}
        keep = [init for init in self.graph.initializer if init.name in read]
        del self.graph.initializer[:]
        self.graph.initializer.extend(keep)
        del self.graph.node[:]
        self.graph.node.extend(ordered)

    def _qdq(self, tensor: str, source: str, rng: _Range, dq_out: str) -> list[onnx.NodeProto]:
        scale, zero_point = self._scalar_params(tensor, rng)
        q_out = f'{tensor}_q'
        return [helper.make_node('QuantizeLinear', [source, scale, zero_point], [q_out], name=q_out),
                helper.make_node('DequantizeLinear', [q_out, scale, zero_point], [dq_out], name=dq_out)]
