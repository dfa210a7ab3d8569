"""Convert a graph written by ``export_onnx`` into an OpenVINO IR (``.xml`` + ``.bin``) for Intel/AMD CPUs.

OpenVINO reaches the CPU's matrix and vector units (AMX, AVX512-BF16, VNNI) that ONNX Runtime's CPU provider does
not use for these networks. The IR is the ONNX graph as OpenVINO's converter reads it, with two additions:

- IconVSR's ``DeformConv`` (ONNX opset 19) has no rule in OpenVINO's ONNX frontend; each one is rewritten to the
  frontend's ``org.openvinotoolkit.DeformableConv2D`` (OpenVINO's ``DeformableConvolution``, bilinear sampling
  with zero padding as torchvision's ``deform_conv2d``) plus an ``Add`` of the bias. Outputs match PyTorch to
  float rounding (tested with non-zero offsets).
- The graph's contract (``OnnxGraphSpec``) and the inference precision chosen at export are stored in the IR's
  runtime info, where the OpenVINO backend reads them, so a run never guesses its precision.

Weights stay FP32 in the ``.bin`` (no FP16 compression): the inference precision is a runtime choice (``f32`` or
``bf16``, see ``openvino_runtime``). INT8 graphs (``int8-trt``/``int8-ort`` Q/DQ placements) become FakeQuantize
nodes that OpenVINO's CPU plugin runs as u8/i8 convolutions.
"""
import json
import os
import tempfile
from dataclasses import asdict

import numpy as np
import onnx
from onnx import helper, numpy_helper

from vsrcompress.atomic_files import write_failure
from vsrcompress.export.artifact_digest import (mark_openvino_digests, remove_onnx_digest, seal_openvino_digests,
                                                verify_openvino_ir)
from vsrcompress.export.onnx_export import (INPUT_NAME, OnnxGraphSpec, check_spec_input, parse_graph_spec,
                                            read_graph_spec)
from vsrcompress.export.openvino_runtime import INFERENCE_PRECISIONS, check_inference_precision

OPENVINO_GRAPH_PRECISIONS = ('fp32', 'int8-trt', 'int8-ort')  # FP16 graphs: the CPU plugin runs f32 or bf16 anyway
_RT_GRAPH = ['vsrcompress', 'graph']
_RT_PRECISION = ['vsrcompress', 'inference_precision']
_OV_DOMAIN = 'org.openvinotoolkit'


def deform_conv_for_openvino(model: onnx.ModelProto) -> int:
    """Rewrite every ONNX ``DeformConv`` of ``model`` in place into OpenVINO's ``DeformableConv2D`` + bias ``Add``.

    Returns:
        The number of nodes rewritten (0 for BasicVSR, which has none).
    """
    graph, nodes, count = model.graph, [], 0
    for node in graph.node:
        if node.op_type != 'DeformConv' or node.domain not in ('', 'ai.onnx'):
            nodes.append(node)
            continue
        count += 1
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        x, weight, offset = node.input[:3]
        bias = node.input[3] if len(node.input) > 3 and node.input[3] else None
        mask = node.input[4] if len(node.input) > 4 and node.input[4] else None
        conv_out = f'{node.output[0]}_before_bias' if bias else node.output[0]
        nodes.append(helper.make_node(
            'DeformableConv2D', [x, offset, weight] + ([mask] if mask else []), [conv_out], domain=_OV_DOMAIN,
            name=node.name, strides=attrs.get('strides', [1, 1]), pads=attrs.get('pads', [0, 0, 0, 0]),
            dilations=attrs.get('dilations', [1, 1]), group=attrs.get('group', 1),
            deformable_groups=attrs.get('offset_group', 1), bilinear_interpolation_pad=1))
        if bias:
            shape = f'{node.name}_bias_shape'
            graph.initializer.append(numpy_helper.from_array(np.array([1, -1, 1, 1], dtype=np.int64), shape))
            nodes.append(helper.make_node('Reshape', [bias, shape], [f'{node.name}_bias_nchw']))
            nodes.append(helper.make_node('Add', [conv_out, f'{node.name}_bias_nchw'], [node.output[0]]))
    if count:
        del graph.node[:]
        graph.node.extend(nodes)
        if not any(op.domain == _OV_DOMAIN for op in model.opset_import):
            model.opset_import.append(helper.make_opsetid(_OV_DOMAIN, 1))
    return count


def export_openvino(onnx_path: str, xml_path: str, inference_precision: str) -> OnnxGraphSpec:
    """Convert ``onnx_path`` (from ``export_onnx``) to an IR at ``xml_path`` (``.bin`` beside it), atomically.

    Args:
        onnx_path: An FP32 or INT8 graph written by ``export_onnx``.
        xml_path: Output ``.xml``; the weights go to the same name with ``.bin``. Both are written to temporary
            names first; the ``.xml`` is renamed last, so a reader never finds an ``.xml`` with a partial ``.bin``.
        inference_precision: ``f32`` or ``bf16`` (``INFERENCE_PRECISIONS``): what the OpenVINO backend runs the
            float parts in (all of an FP32 graph, the unquantized layers of an INT8 one). Stored in the IR.

    Returns:
        The graph's spec (the same as the ONNX graph's).
    """
    import openvino as ov

    check_inference_precision(inference_precision, require_support=False)
    if not xml_path.endswith('.xml'):
        raise ValueError(f'output: an OpenVINO IR is an .xml file (weights in .bin beside it), got {xml_path!r}')
    spec = read_graph_spec(onnx_path)
    if spec.precision not in OPENVINO_GRAPH_PRECISIONS:
        raise ValueError(f'precision: OpenVINO IRs are made from {list(OPENVINO_GRAPH_PRECISIONS)} graphs, got a '
                         f'{spec.precision} graph ({onnx_path}); export fp32 and choose --inference-precision '
                         f'{"/".join(INFERENCE_PRECISIONS)} instead of an FP16 graph.')
    folder = os.path.dirname(os.path.abspath(xml_path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise ValueError(f'output: cannot write {xml_path}: folder {folder} does not exist or is not writable.')
    model = onnx.load(onnx_path)
    remove_onnx_digest(model)  # the graph's checksum does not describe the IR, which records its own
    deform_conv_for_openvino(model)
    try:
        with tempfile.TemporaryDirectory(prefix='.tmp_openvino_', dir=folder) as work:
            rewritten = os.path.join(work, 'graph.onnx')
            onnx.save(model, rewritten)
            ov_model = ov.convert_model(rewritten)
            ov_model.set_rt_info(json.dumps(asdict(spec)), _RT_GRAPH)
            ov_model.set_rt_info(inference_precision, _RT_PRECISION)
            mark_openvino_digests(ov_model)
            tmp_xml = os.path.join(work, 'model.xml')
            try:
                ov.save_model(ov_model, tmp_xml, compress_to_fp16=False)
            except RuntimeError as err:  # a failed write (full disk): "basic_ios::clear: iostream error"
                raise OSError(f'OpenVINO could not save the IR ({str(err).splitlines()[0]})') from err
            seal_openvino_digests(tmp_xml)
            for tmp in (tmp_xml, tmp_xml[:-4] + '.bin'):
                os.chmod(tmp, 0o644)
            os.replace(tmp_xml[:-4] + '.bin', xml_path[:-4] + '.bin')
            os.replace(tmp_xml, xml_path)
    except OSError as err:
        raise write_failure(xml_path, err) from err
    return spec


def read_openvino_spec(xml_path: str) -> tuple[OnnxGraphSpec, str]:
    """The ``OnnxGraphSpec`` and inference precision stored in an IR written by ``export_openvino``."""
    import openvino as ov

    if not os.path.isfile(xml_path):
        raise FileNotFoundError(f'openvino: {xml_path} does not exist.')
    if not os.path.isfile(xml_path[:-4] + '.bin'):
        raise FileNotFoundError(f'openvino: the weights {xml_path[:-4]}.bin of {xml_path} do not exist.')
    try:
        model = ov.Core().read_model(xml_path)
    except RuntimeError as err:
        raise ValueError(f'openvino: {xml_path} is not a readable OpenVINO IR ({str(err).splitlines()[0]}).') from None
    if not model.has_rt_info(_RT_GRAPH) or not model.has_rt_info(_RT_PRECISION):
        raise ValueError(f'openvino: {xml_path} was not written by vsrcompress (no graph spec in its runtime info); '
                         'convert it with scripts/export.py --format openvino.')
    verify_openvino_ir(xml_path, model)
    spec = parse_graph_spec(model.get_rt_info(_RT_GRAPH).astype(str), f'openvino: {xml_path}')
    inputs = {name: [d.get_length() if d.is_static else None for d in port.get_partial_shape()]
              for port in model.inputs for name in port.get_names()}
    check_spec_input(inputs.get(INPUT_NAME), spec, f'openvino: {xml_path}')
    return spec, model.get_rt_info(_RT_PRECISION).astype(str)
