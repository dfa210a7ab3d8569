"""Convert an exported FP32 ONNX graph into an FP16 graph (FP16 inputs, weights, activations and outputs).

The network cannot be exported from ``model.half()``: basicsr's ``flow_warp`` casts its sampling grid with
``.float()``, so a half-precision forward fails in ``grid_sample`` (Half input, Float grid). Converting the
traced FP32 graph avoids that. TensorRT 10.12+ builds strongly typed networks (and 11.x knows no other kind),
so an FP16 engine is built from a graph whose tensors are FP16; ONNX Runtime's CUDA provider runs it as is.

What changes: float initializers and ``Constant`` values become float16, ``Cast(to=FLOAT)`` becomes
``Cast(to=FLOAT16)``, ``ConstantOfShape`` fills with float16, and the graph inputs/outputs become float16.
What stays FP32: ``Resize`` scales, which ONNX types as float only (a Cast back to float is inserted), and the
flow warps: FP16 has 0.5 px steps between 1024 and 2048 and 0.25 px from 512, too coarse for sampling positions at
the LR widths of 4K output. So every ``GridSample`` runs in FP32, and so does the element-wise arithmetic that
builds its grid (base grid + flow, normalisation), back to the nearest heavy layer (convolution, resize): those
layers' outputs are cast to FP32 on the way in, and the warped features back to FP16 on the way out.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_RESIZE_SCALES_INPUT = 2
# cheap element-wise and shape ops that may build a sampling grid; any other op ends the FP32 region
_GRID_OPS = frozenset({'Add', 'Sub', 'Mul', 'Div', 'Neg', 'Max', 'Min', 'Clip', 'Floor', 'Unsqueeze', 'Squeeze',
                       'Concat', 'Transpose', 'Slice', 'Gather', 'Reshape', 'Expand', 'Split', 'Identity', 'Cast',
                       'Constant', 'ConstantOfShape', 'Range', 'Where'})


def _to_fp16_tensor(tensor: TensorProto) -> TensorProto:
    if tensor.data_type != TensorProto.FLOAT:
        return tensor
    array = numpy_helper.to_array(tensor).astype(np.float16)
    return numpy_helper.from_array(array, tensor.name)


def _set_elem_type(value_info: onnx.ValueInfoProto) -> None:
    tensor_type = value_info.type.tensor_type
    if tensor_type.elem_type == TensorProto.FLOAT:
        tensor_type.elem_type = TensorProto.FLOAT16


def _fp32_warp_region(graph: onnx.GraphProto) -> set[int]:
    """Indices of the nodes that stay FP32: every ``GridSample`` and the ``_GRID_OPS`` its grid is computed by."""
    producer = {out: i for i, node in enumerate(graph.node) for out in node.output}
    region: set[int] = set()
    pending = []
    for i, node in enumerate(graph.node):
        if node.op_type == 'GridSample':
            region.add(i)
            pending.append(node.input[1])
    while pending:
        i = producer.get(pending.pop())
        if i is None or i in region or graph.node[i].op_type not in _GRID_OPS:
            continue
        region.add(i)
        pending.extend(name for name in graph.node[i].input if name)
    return region


def convert_graph_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """An FP16 copy of an FP32 graph (see the module docstring for what is converted); the input is unchanged."""
    model = onnx.shape_inference.infer_shapes(onnx.ModelProto.FromString(model.SerializeToString()))
    graph = model.graph
    region = _fp32_warp_region(graph)
    float_names = {v.name for v in [*graph.value_info, *graph.input, *graph.output]
                   if v.type.tensor_type.elem_type == TensorProto.FLOAT}
    float_names |= {init.name for init in graph.initializer if init.data_type == TensorProto.FLOAT}
    made_in_region = {out for i in region if graph.node[i].op_type != 'GridSample' for out in graph.node[i].output}
    initializers = {init.name for init in graph.initializer}
    for i, init in enumerate(graph.initializer):
        graph.initializer[i].CopyFrom(_to_fp16_tensor(init))
    for value_info in [*graph.input, *graph.output]:
        _set_elem_type(value_info)
    del graph.value_info[:]

    nodes = []
    casts: dict[tuple[str, int], str] = {}

    def cast(name: str, to: int) -> str:
        """``name`` cast to ``to`` (one Cast node per tensor and type)."""
        if (name, to) not in casts:
            casts[(name, to)] = f'{name}_as_{"fp32" if to == TensorProto.FLOAT else "fp16"}'
            nodes.append(helper.make_node('Cast', [name], [casts[(name, to)]], to=to))
        return casts[(name, to)]

    for i, node in enumerate(graph.node):
        fp32 = i in region
        for attr in node.attribute:
            if node.op_type == 'Cast' and attr.name == 'to' and attr.i == TensorProto.FLOAT and not fp32:
                attr.i = TensorProto.FLOAT16
            elif attr.type == onnx.AttributeProto.TENSOR and node.op_type in ('Constant', 'ConstantOfShape') \
                    and not fp32:
                attr.t.CopyFrom(_to_fp16_tensor(attr.t))
        for k, name in enumerate(node.input):
            if name not in float_names or (name in made_in_region) == fp32 and name not in initializers:
                continue
            if fp32:  # an FP16 tensor (from outside, or an initializer now FP16) into the FP32 region
                node.input[k] = cast(name, TensorProto.FLOAT)
            elif name in made_in_region:  # an FP32 tensor of the region used outside it
                node.input[k] = cast(name, TensorProto.FLOAT16)
        if node.op_type == 'GridSample':  # warped features go back to FP16
            warped = node.output[0]
            node.output[0] = f'{warped}_fp32'
            nodes.append(node)
            nodes.append(helper.make_node('Cast', [node.output[0]], [warped], to=TensorProto.FLOAT16))
            continue
        if node.op_type == 'Resize' and len(node.input) > _RESIZE_SCALES_INPUT and node.input[_RESIZE_SCALES_INPUT]:
            scales_fp32 = f'{node.input[_RESIZE_SCALES_INPUT]}_fp32_for_{node.name or len(nodes)}'
            nodes.append(helper.make_node('Cast', [node.input[_RESIZE_SCALES_INPUT]], [scales_fp32],
                                          to=TensorProto.FLOAT))
            node.input[_RESIZE_SCALES_INPUT] = scales_fp32
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    onnx.checker.check_model(model)
    return model


def float_tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    """How many initializers and graph inputs/outputs are float32 vs float16: the structural FP16 check."""
    counts = {'float32': 0, 'float16': 0}
    names = {TensorProto.FLOAT: 'float32', TensorProto.FLOAT16: 'float16'}
    for init in model.graph.initializer:
        if init.data_type in names:
            counts[names[init.data_type]] += 1
    for value_info in [*model.graph.input, *model.graph.output]:
        elem = value_info.type.tensor_type.elem_type
        if elem in names:
            counts[names[elem]] += 1
    return counts
