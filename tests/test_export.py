"""ONNX export: FP32 graphs match PyTorch in ONNX Runtime (dense, pruned, dynamic sizes, IconVSR with dense or
pruned EDVR), FP16 graphs are FP16 throughout, and bad requests fail clearly. Tiny networks, CPU."""
import copy
import json
import os

import onnx
import pytest
import torch
from conftest import script_main

from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet, IconVSRNet
from vsrcompress.checkpoint import network_checkpoint, save_atomic
from vsrcompress.export import (OnnxMismatchError, TensorRTUnavailableError, build_tensorrt_engine, check_onnx,
                                export_onnx, float_tensor_types, read_graph_spec, tensorrt_unavailable_reason)
from vsrcompress.export.fp16_graph import convert_graph_to_fp16
from vsrcompress.pruning import prune_network

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIGHT_ATOL = 1e-5
SMALL_SPYNET = [[8, 8, 8, 8]] * 6
PRUNED_WIDTHS = {'backward': 12, 'backward_blocks': [8, 4], 'forward': 10, 'forward_blocks': [6, 8], 'fusion': 8,
                 'upsample': [8, 4], 'hr': 8, 'spynet': [[8, 12, 8, 4]] * 6}
tensorrt_usable = tensorrt_unavailable_reason() is None


pytestmark = pytest.mark.usefixtures('one_thread')


def tiny_basicvsr(**widths) -> BasicVSRNet:
    torch.manual_seed(0)
    return BasicVSRNet(num_feat=8, num_block=1, scale=4,
                       widths={'spynet': SMALL_SPYNET, 'upsample': [8, 8], 'hr': 8, **widths})


@pytest.fixture(scope='module')
def dense_graph(tmp_path_factory):
    """A tiny dense BasicVSR and its fixed-size FP32 graph (3 frames of 40x48), exported once for the module."""
    net = tiny_basicvsr()
    path = str(tmp_path_factory.mktemp('dense') / 'net.onnx')
    return net, path, export_onnx(net, path, frames=3, height=40, width=48)


@pytest.mark.parametrize('variant', ['dense', 'pruned'])
def test_fp32_fixed_size_graph_matches_pytorch(tmp_path, dense_graph, variant):
    if variant == 'dense':
        net, path, spec = dense_graph
    else:
        net = BasicVSRNet(num_feat=16, num_block=2, widths=PRUNED_WIDTHS)
        path = str(tmp_path / 'net.onnx')
        spec = export_onnx(net, path, frames=3, height=40, width=48)
        assert net.width_spec()['backward_blocks'] == [8, 4]
    assert (spec.frames, spec.height, spec.width, spec.scale, spec.precision) == (3, 40, 48, 4, 'fp32')
    assert read_graph_spec(path) == spec
    graph = onnx.load(path)
    dims = [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 3, 40, 48]
    [match] = check_onnx(path, net, 40, 48, atol=TIGHT_ATOL)
    assert match.max_abs_error <= TIGHT_ATOL and match.psnr_db > 100
    assert [f for f in os.listdir(os.path.dirname(path)) if f.startswith('.tmp_')] == []


def test_dynamic_graph_matches_pytorch_at_another_size(tmp_path):
    net = tiny_basicvsr()
    for p in net.spynet.parameters():
        p.data.mul_(3)
    path = str(tmp_path / 'dyn.onnx')
    spec = export_onnx(net, path, frames=3, height=40, width=48, dynamic=True)
    assert spec.dynamic and spec.height is None
    matches = check_onnx(path, net, 40, 48, atol=TIGHT_ATOL)
    assert [(m.height, m.width) for m in matches] == [(40, 48), (48, 60)]  # the second is not a multiple of 32
    assert all(m.max_abs_error <= TIGHT_ATOL for m in matches)


def test_fp16_graph_is_fp16_and_close_to_pytorch(tmp_path):
    net = tiny_basicvsr()
    path = str(tmp_path / 'fp16.onnx')
    spec = export_onnx(net, path, frames=3, height=40, width=48, precision='fp16')
    graph = onnx.load(path)
    assert spec.precision == 'fp16'
    assert float_tensor_types(graph) == {'float32': 0, 'float16': len(graph.graph.initializer) + 2}
    types = {v.name: v.type.tensor_type.elem_type for v in onnx.shape_inference.infer_shapes(graph).graph.value_info}
    convs = [n for n in graph.graph.node if n.op_type == 'Conv']
    warps = [n for n in graph.graph.node if n.op_type == 'GridSample']
    assert all(types[n.output[0]] == onnx.TensorProto.FLOAT16 for n in convs)  # the heavy layers run in FP16
    assert warps and all(types[name] == onnx.TensorProto.FLOAT for n in warps for name in (*n.input, *n.output))
    [match] = check_onnx(path, net, 40, 48)  # reported, not enforced, for FP16
    assert match.psnr_db > 55, match


def test_fp16_graph_samples_flow_warps_in_fp32():
    """At 4K-output LR widths FP16 cannot hold sampling positions (1 px steps from 1024 px): the warp stays FP32."""
    import io

    import numpy as np
    import onnxruntime as ort
    from basicsr.archs.arch_util import flow_warp

    class Warp(torch.nn.Module):
        def forward(self, x, flow):
            return flow_warp(x, flow.permute(0, 2, 3, 1))

    torch.manual_seed(0)
    height, width = 64, 1100
    x = torch.nn.functional.interpolate(torch.rand(1, 8, 8, 137), size=(height, width), mode='bicubic')
    flow = torch.rand(1, 2, height, width) * 6 - 3  # up to 3 px either way
    buffer = io.BytesIO()
    torch.onnx.export(Warp(), (x, flow), buffer, input_names=['x', 'flow'], opset_version=17, dynamo=False)
    graph = convert_graph_to_fp16(onnx.load_from_string(buffer.getvalue()))
    session = ort.InferenceSession(graph.SerializeToString(), providers=['CPUExecutionProvider'])
    out = session.run(None, {'x': x.numpy().astype(np.float16), 'flow': flow.numpy().astype(np.float16)})[0]
    mse = float(((out.astype(np.float32) - Warp()(x, flow).numpy()) ** 2).mean())
    assert 10 * np.log10(1 / mse) > 65  # an FP16 grid gives about 42 dB here, the FP32 warp about 77 dB


@pytest.mark.parametrize('edvr_pruned', [False, True], ids=['dense', 'edvr-pruned'])
def test_iconvsr_exports_with_deformconv_and_matches(tmp_path, edvr_pruned):
    torch.manual_seed(0)
    net = IconVSRNet(num_feat=8, num_block=1, keyframe_stride=5,
                     widths={'spynet': SMALL_SPYNET, 'upsample': [8, 8], 'hr': 8, 'edvr': 16 if edvr_pruned else 8})
    for name, module in net.named_modules():
        if name.endswith('conv_offset'):  # zero-initialised: give the DCNs real offsets to sample with
            torch.nn.init.normal_(module.weight, std=0.05)
    if edvr_pruned:  # one channel per deformable group left
        prune_network(net, {'ratio': {'edvr': 0.5}, 'round_to': 4, 'min_width': 4, 'reference_size': [40, 40]})
        assert net.width_spec()['edvr'] == 8
    path = str(tmp_path / 'icon.onnx')
    spec = export_onnx(net, path, frames=6, height=40, width=40)
    assert spec.opset == 19
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert 'DeformConv' in ops
    [match] = check_onnx(path, net, 40, 40, atol=TIGHT_ATOL)
    assert match.max_abs_error <= TIGHT_ATOL
    export_onnx(net, str(tmp_path / 'icon5.onnx'), frames=5, height=40, width=40)  # last frame not on the stride
    [match] = check_onnx(str(tmp_path / 'icon5.onnx'), net, 40, 40, atol=TIGHT_ATOL)
    assert match.max_abs_error <= TIGHT_ATOL


def test_fp32_mismatch_raises(dense_graph):
    net, path, _ = dense_graph
    other = copy.deepcopy(net)
    with torch.no_grad():
        other.conv_last.bias.add_(0.01)  # the graph holds other weights than this network
    with pytest.raises(OnnxMismatchError, match='does not match PyTorch within'):
        check_onnx(path, other, 40, 48, atol=1e-3)


@pytest.mark.parametrize('kwargs, message', [
    ({'height': 32}, r'height: must be an integer >= 33'),
    ({'frames': 1}, r'frames: BasicVSRNet needs a window of at least 2 frames'),
    ({'precision': 'int8'}, r"precision: 'int8' is not supported; allowed: \['fp32', 'fp16', 'int8-trt', 'int8-ort'\]"),
    ({'opset': 17, 'iconvsr': True}, r'opset: IconVSR needs DeformConv'),
])
def test_bad_export_requests_fail_clearly(tmp_path, kwargs, message):
    net = IconVSRNet(num_feat=8, num_block=1) if kwargs.pop('iconvsr', False) else tiny_basicvsr()
    request = {'frames': 6, 'height': 40, 'width': 40, **kwargs}
    with pytest.raises(ValueError, match=message):
        export_onnx(net, str(tmp_path / 'x.onnx'), **request)
    assert os.listdir(tmp_path) == []


def test_export_to_missing_folder_fails_clearly(tmp_path):
    with pytest.raises(ValueError, match='output: cannot write'):
        export_onnx(tiny_basicvsr(), str(tmp_path / 'missing' / 'x.onnx'), frames=2, height=40, width=40)


@pytest.mark.skipif(tensorrt_usable, reason='TensorRT and a GPU are present: the unavailable path does not apply')
def test_tensorrt_unavailable_is_a_clear_error(tmp_path, dense_graph):
    reason = tensorrt_unavailable_reason()
    assert 'tensorrt' in reason or 'CUDA' in reason
    _, path, _ = dense_graph
    with pytest.raises(TensorRTUnavailableError, match='TensorRT is not available'):
        build_tensorrt_engine(path, str(tmp_path / 'net.engine'))
    assert not os.path.exists(tmp_path / 'net.engine')


def run_export_script(argv: list[str]) -> int:
    return script_main('export')(argv)


def test_export_script_on_pruned_checkpoint(tmp_path, capsys):
    net = BasicVSRNet(num_feat=16, num_block=2, scale=2, widths={**PRUNED_WIDTHS, 'upsample': [8]})
    ckpt = str(tmp_path / 'pruned.pth')
    save_atomic(network_checkpoint(net, {'type': 'BasicVSRNet', 'num_feat': 16, 'num_block': 2, 'scale': 2}), ckpt)
    onnx_path, report = str(tmp_path / 'pruned.onnx'), str(tmp_path / 'export.json')
    code = run_export_script(['--checkpoint', ckpt, '--output', onnx_path, '--frames', '3', '--height', '40',
                              '--width', '44', '--trt', '--report', report])
    out = capsys.readouterr()
    assert code == 0
    assert 'max abs err' in out.out and 'BasicVSRNet x2' in out.out
    data = json.load(open(report))
    assert data['graph']['scale'] == 2 and data['checks'][0]['max_abs_error'] < 1e-3
    if tensorrt_usable:
        assert data['tensorrt']['built'] is True and os.path.isfile(data['tensorrt']['engine'])
    else:
        assert 'TensorRT engine not built' in out.err and data['tensorrt']['built'] is False


def test_export_script_on_official_style_checkpoint(tmp_path):
    net = tiny_basicvsr()
    ckpt = str(tmp_path / 'official.pth')
    save_atomic({'params': net.state_dict()}, ckpt)  # official BasicSR files hold only 'params'
    widths = json.dumps(net.width_spec()).replace(' ', '')
    code = run_export_script(['--checkpoint', ckpt, '--output', str(tmp_path / 'o.onnx'), '--frames', '2',
                              '--dynamic', '--no-check', '--arch', 'BasicVSRNet', '--arch-opt', 'num_feat=8',
                              '--arch-opt', 'num_block=1', '--arch-opt', f'widths={widths}'])
    assert code == 0 and read_graph_spec(str(tmp_path / 'o.onnx')).dynamic


@pytest.mark.parametrize('flags', [['--fp16'], ['--precision', 'fp16']])
def test_export_script_fp16_flag_and_precision_agree(tmp_path, flags):
    ckpt = str(tmp_path / 'dense.pth')
    save_atomic(network_checkpoint(tiny_basicvsr(), {'type': 'BasicVSRNet', 'num_feat': 8, 'num_block': 1}), ckpt)
    code = run_export_script(['--checkpoint', ckpt, '--output', str(tmp_path / 'h.onnx'), '--frames', '2', '--dynamic',
                              '--no-check', *flags])
    assert code == 0 and read_graph_spec(str(tmp_path / 'h.onnx')).precision == 'fp16'


def test_graphs_and_checkpoints_get_the_users_permissions(tmp_path):
    """Atomic writes go through mkstemp (0600); what the user gets follows the umask, like any file."""
    net = tiny_basicvsr()
    old = os.umask(0o022)
    try:
        export_onnx(net, str(tmp_path / 'net.onnx'), frames=3, height=40, width=48)
        save_atomic({'params': net.state_dict()}, str(tmp_path / 'net.pth'))
    finally:
        os.umask(old)
    for name in ('net.onnx', 'net.pth'):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o644
    assert sorted(os.listdir(tmp_path)) == ['net.onnx', 'net.pth']  # no temporaries left
