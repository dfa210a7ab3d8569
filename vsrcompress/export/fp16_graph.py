"""Convert an exported FP32 ONNX graph into an FP16 graph (FP16 inputs, weights, activations and outputs).

The network cannot be exported from ``model.half()``: basicsr's ``flow_warp`` casts its sampling grid with
``.float()``, so a half-precision forward fails in ``grid_sample`` (Half input, Float grid). Converting the
traced FP32 graph avoids that. TensorRT 10.12+ builds strongly typed networks (and 11.x knows no other kind),
so an FP16 engine is built from a graph whose tensors are FP16; ONNX Runtime's CUDA provider runs it as is.

What changes: float initializers and ``Constant`` values become float16, ``Cast(to=FLOAT)`` becomes
``Cast(to=FLOAT16)``, ``ConstantOfShape`` fills with float16, and the graph inputs/outputs become float16.
What stays FP32: ``Resize`` scales, which ONNX types as float only (a Cast back to float is inserted).
Known precision cost: flow-warp sampling coordinates are float16 too (0.5 px steps above 1024 px).
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_RESIZE_SCALES_INPUT = 2


def _to_fp16_tensor(tensor: TensorProto) -> TensorProto:
    if tensor.data_type != TensorProto.FLOAT:
        return tensor
    array = numpy_helper.to_array(tensor).astype(np.float16)
    return numpy_helper.from_array(array, tensor.name)


def _set_elem_type(value_info: onnx.ValueInfoProto) -> None:
    tensor_type = value_info.type.tensor_type
    if tensor_type.elem_type == TensorProto.FLOAT:
        tensor_type.elem_type = TensorProto.FLOAT16


def convert_graph_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """An FP16 copy of an FP32 graph (see the module docstring for what is converted); the input is unchanged."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    for i, init in enumerate(graph.initializer):
        graph.initializer[i].CopyFrom(_to_fp16_tensor(init))
    for value_info in [*graph.input, *graph.output]:
        _set_elem_type(value_info)
    del graph.value_info[:]

    nodes = []
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == 'Cast' and attr.name == 'to' and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
            elif attr.type == onnx.AttributeProto.TENSOR and node.op_type in ('Constant', 'ConstantOfShape'):
                attr.t.CopyFrom(_to_fp16_tensor(attr.t))
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
