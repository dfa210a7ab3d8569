"""Where an INT8 graph carries Q/DQ, and which nodes ONNX Runtime turned into integer kernels.

``qdq_coverage`` reads the exported graph: per Conv node whether its activation and weight come from
DequantizeLinear (per channel or not) and whether its output goes to QuantizeLinear; per Add node how many of its
inputs come from DequantizeLinear. ``ort_optimized_ops`` asks ONNX Runtime itself: it optimizes the graph as an
inference session would (``SessionOptions.optimized_model_filepath``) and counts the op types that remain, e.g.
``QLinearConv`` for fused convs and ``Conv``/``FusedConv`` for convs left in FP32.
"""
import math
import os
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import onnx
import onnxruntime as ort


@dataclass
class QdqCoverage:
    """Q/DQ counts and, per op, how many nodes are wrapped how (see the module docstring)."""
    quantize_nodes: int = 0
    dequantize_nodes: int = 0
    conv_nodes: int = 0
    conv_input_dq: int = 0
    conv_weight_dq: int = 0
    conv_weight_per_channel: int = 0
    conv_output_q: int = 0
    add_nodes: int = 0
    add_dq_inputs: dict[int, int] = field(default_factory=dict)  # number of DQ inputs -> Add nodes
    quantized_layers: list[str] = field(default_factory=list)  # layers (weight names) with DQ on the weight


def _weight_layer(name: str, producer: dict, initializers: set) -> str | None:
    """The layer a conv weight comes from, following DQ/Q/Identity back to an initializer ``<layer>.weight...``."""
    seen = 0
    while name not in initializers and name in producer and seen < 4:
        name, seen = producer[name].input[0], seen + 1
    return name.rsplit('.weight', 1)[0] if name in initializers and '.weight' in name else None


def qdq_coverage(model: str | onnx.ModelProto) -> QdqCoverage:
    """Count Q/DQ nodes and how Conv and Add nodes are wrapped by them."""
    if isinstance(model, str):
        model = onnx.load(model)
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    consumers = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    initializers = {init.name for init in graph.initializer}
    sizes = {init.name: math.prod(init.dims) for init in graph.initializer}  # constants: initializers or nodes
    sizes.update({node.output[0]: math.prod(attr.t.dims) for node in graph.node if node.op_type == 'Constant'
                  for attr in node.attribute if attr.name == 'value'})

    def from_dq(name: str) -> onnx.NodeProto | None:
        node = producer.get(name)
        return node if node is not None and node.op_type == 'DequantizeLinear' else None

    ops = Counter(node.op_type for node in graph.node)
    cov = QdqCoverage(quantize_nodes=ops['QuantizeLinear'], dequantize_nodes=ops['DequantizeLinear'])
    layers = set()
    for node in graph.node:
        if node.op_type == 'Conv':
            cov.conv_nodes += 1
            cov.conv_input_dq += from_dq(node.input[0]) is not None
            weight_dq = from_dq(node.input[1])
            if weight_dq is not None:
                cov.conv_weight_dq += 1
                axis = next((a.i for a in weight_dq.attribute if a.name == 'axis'), 1)
                cov.conv_weight_per_channel += axis == 0 and sizes.get(weight_dq.input[1], 1) > 1
                layer = _weight_layer(node.input[1], producer, initializers)
                if layer:
                    layers.add(layer)
            readers = consumers[node.output[0]]
            cov.conv_output_q += bool(readers) and all(r.op_type == 'QuantizeLinear' for r in readers)
        elif node.op_type == 'Add':
            cov.add_nodes += 1
            count = sum(from_dq(name) is not None for name in node.input)
            cov.add_dq_inputs[count] = cov.add_dq_inputs.get(count, 0) + 1
    cov.quantized_layers = sorted(layers)
    return cov


def ort_optimized_ops(onnx_path: str, threads: int = 1) -> Counter:
    """Op types (``domain:op`` for non-ONNX domains) of the graph ONNX Runtime's CPU provider actually runs.

    The graph is optimized at ``ORT_ENABLE_ALL`` (what inference sessions use by default, layout changes included)
    and written to a temporary file, which is read back and deleted.
    """
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the optimized graph holds hardware-specific nodes; ORT warns about saving it
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    fd, optimized = tempfile.mkstemp(prefix='.tmp_ort_optimized_', suffix='.onnx',
                                     dir=os.path.dirname(os.path.abspath(onnx_path)))
    os.close(fd)
    try:
        options.optimized_model_filepath = optimized
        ort.InferenceSession(onnx_path, options, providers=['CPUExecutionProvider'])
        model = onnx.load(optimized)
    finally:
        os.remove(optimized)
    return Counter(f'{n.domain}:{n.op_type}' if n.domain not in ('', 'ai.onnx') else n.op_type
                   for n in model.graph.node)


def integer_kernel_summary(ops: Counter) -> dict:
    """From ``ort_optimized_ops``: integer kernels by op, convs left in float, and Q/DQ nodes still executed."""
    def name(key: str) -> str:
        return key.rsplit(':', 1)[-1]
    return {
        'integer_ops': {name(k): n for k, n in sorted(ops.items()) if 'QLinear' in k or 'Integer' in k},
        'float_convs': sum(n for k, n in ops.items() if name(k) in ('Conv', 'FusedConv')),
        'quantize_dequantize': sum(n for k, n in ops.items() if name(k) in ('QuantizeLinear', 'DequantizeLinear')),
    }
