"""INT8 ONNX export: conv output ranges, the TensorRT and the ONNX Runtime CPU placements (Q/DQ where expected,
integer kernels in ONNX Runtime, output close to the fake-quantized network), INT8 checkpoints in the export and
inference scripts, and bad requests. Tiny networks, CPU."""
import json
import math
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper
from torch import nn
from conftest import script_main

from vsrcompress.checkpoint import load_network
from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet
from vsrcompress.checkpoint import network_checkpoint, save_atomic
from vsrcompress.export import (DEFAULT_INT8_MIN_PSNR, SAFE_WEIGHT_CODE, check_onnx, conv_int8_table, export_onnx,
                                integer_kernel_summary, ort_optimized_ops,
                                place_ort_int8_qdq, qdq_coverage, quantizers_bypassed, read_int8_placement)
from vsrcompress.quantization import calibrate, export_int8_checkpoint, quant_convs, quantize_network
from vsrcompress.quantization.output_ranges import OUTPUT_RANGE_KEY, calibrate_output_ranges

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMES, SIZE, BLOCKS = 3, 64, 1
ARCH = {'type': 'BasicVSRNet', 'num_feat': 8, 'num_block': BLOCKS, 'scale': 4,
        'widths': {'spynet': [[8, 8, 8, 8]] * 6, 'upsample': [8, 8], 'hr': 8}}
RESIDUAL_ADDS = 2 * BLOCKS * FRAMES  # both directions, every time step


pytestmark = pytest.mark.usefixtures('one_thread')


def make_clip(seed: int, frames: int = FRAMES, size: int = SIZE) -> torch.Tensor:
    """A smooth random texture panning across the frames, (1, frames, 3, size, size) in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    base = nn.functional.interpolate(torch.rand(1, 3, size // 4 + 2, size // 4 + 2, generator=gen),
                                     size=(size + 2 * frames, size + 2 * frames), mode='bicubic').clamp(0, 1)
    return torch.stack([base[0, :, t:t + size, 2 * t:2 * t + size] for t in range(frames)])[None]


def float_net() -> BasicVSRNet:
    torch.manual_seed(0)
    return BasicVSRNet(**{k: v for k, v in ARCH.items() if k != 'type'}).eval()


@pytest.fixture(scope='module')
def int8(tmp_path_factory):
    """A calibrated tiny BasicVSR, its conv output ranges and its INT8 checkpoint (with arch and ranges)."""
    net = float_net()
    report = quantize_network(net, {})
    clips = [make_clip(1), make_clip(2)]
    calibrate(net, clips, {})
    ranges = calibrate_output_ranges(net, clips, {})
    path = str(tmp_path_factory.mktemp('int8') / 'net_int8.pth')
    export_int8_checkpoint(net, {}, report, path, extra={'arch': {k: v for k, v in ARCH.items() if k != 'widths'},
                                                         OUTPUT_RANGE_KEY: ranges})
    return net, ranges, path


@pytest.fixture(scope='module')
def ort_graph(int8, tmp_path_factory):
    net, ranges, _ = int8
    path = str(tmp_path_factory.mktemp('ort') / 'int8_ort.onnx')
    export_onnx(net, path, FRAMES, SIZE, SIZE, precision='int8-ort', conv_output_range=ranges)
    return path


def test_output_ranges_bound_every_conv_output(int8):
    net, ranges, _ = int8
    assert set(ranges) == set(quant_convs(net))
    seen = {}
    hooks = [conv.register_forward_hook(lambda m, a, y, name=name: seen.setdefault(name, []).append(y))
             for name, conv in quant_convs(net).items()]
    with torch.no_grad():
        net(make_clip(1))  # a calibration clip: its outputs lie inside the max-calibrated ranges
    for hook in hooks:
        hook.remove()
    for name, (lo, hi) in ranges.items():
        assert ranges[name].dtype == torch.float32 and lo <= 0 <= hi, name
        outputs = torch.cat([y.flatten() for y in seen[name]])
        assert lo <= outputs.min() and outputs.max() <= hi, name
        assert hi - lo > 0, name
    percentile = calibrate_output_ranges(net, [make_clip(1)], {'calibrator': 'percentile', 'percentile': 99.0})
    assert all(percentile[n][1] <= ranges[n][1] and percentile[n][0] >= ranges[n][0] for n in ranges)
    assert any(percentile[n][1] < ranges[n][1] for n in ranges)  # the percentile clips outliers


def test_output_ranges_bad_input(int8):
    net, _, _ = int8
    with pytest.raises(ValueError, match='zero batches'):
        calibrate_output_ranges(net, [], {})
    uncalibrated = float_net()
    quantize_network(uncalibrated, {})
    with pytest.raises(ValueError, match='no calibrated range'):
        calibrate_output_ranges(uncalibrated, [make_clip(1)], {})


def test_int8_trt_graph_has_tensorrt_qdq_and_matches_fake_quant(int8, tmp_path):
    net, _, _ = int8
    path = str(tmp_path / 'int8_trt.onnx')
    spec = export_onnx(net, path, FRAMES, SIZE, SIZE, precision='int8-trt')
    assert spec.precision == 'int8-trt'
    cov = qdq_coverage(path)
    # every Conv node is a call of a quantized conv: activation Q/DQ per tensor, weight Q/DQ per output channel
    assert cov.conv_nodes > 0 and cov.conv_input_dq == cov.conv_weight_dq == cov.conv_weight_per_channel == \
        cov.conv_nodes
    assert cov.conv_output_q == 0  # TensorRT placement: nothing on conv outputs
    assert cov.add_dq_inputs.get(1) == RESIDUAL_ADDS  # the identity input of every residual add
    assert cov.quantized_layers == sorted(quant_convs(net))
    assert cov.quantize_nodes == cov.conv_nodes + len(quant_convs(net)) + RESIDUAL_ADDS
    [match] = check_onnx(path, net, SIZE, SIZE, clips=[make_clip(3)])
    assert match.psnr_db > 70, match  # measured 78-81 dB: the fake quantization itself, in ONNX ops


def test_int8_ort_graph_places_qdq_on_conv_outputs(int8, ort_graph):
    net, _, _ = int8
    cov = qdq_coverage(ort_graph)
    # every conv reads quantized values, has int8 per-channel weights and a quantized output
    assert cov.conv_nodes > 0 and cov.conv_input_dq == cov.conv_weight_dq == cov.conv_weight_per_channel == \
        cov.conv_output_q == cov.conv_nodes
    assert cov.add_dq_inputs.get(2) == RESIDUAL_ADDS  # residual adds in integers: both inputs quantized
    graph = onnx.load(ort_graph).graph
    assert 'Relu' not in {n.op_type for n in graph.node}  # every ReLU folded into its conv's output quantization
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    int8_weights = [name for name in inits if name.endswith('.weight_int8')]
    assert len(int8_weights) == len(quant_convs(net)) and all(inits[n].dtype == np.int8 for n in int8_weights)
    assert not [name for name in inits if name.endswith('.weight')]  # no float copy of a quantized weight left
    placement = read_int8_placement(ort_graph)
    assert placement['quantized_convs'] == cov.conv_nodes and placement['float_output_convs'] == 0
    assert placement['folded_relus'] == 2 * BLOCKS * FRAMES + 2 * 6 * 4  # trunks; SpyNet: 2 calls x 6 levels x 4
    assert placement['int8_ops']['Add'] == RESIDUAL_ADDS and placement['int8_ops']['LeakyRelu'] > 0
    assert 'conv_last' in placement['measured_output_ranges'] and 'fusion' in placement['derived_output_ranges']


def test_int8_ort_graph_runs_as_integer_kernels(ort_graph):
    """ONNX Runtime fuses the Q/DQ placement into integer kernels, and they compute what the Q/DQ graph says (no
    int16 saturation in the AVX2 kernels: with full-range weight codes the two differed by 17 dB on a toy model)."""
    summary = integer_kernel_summary(ort_optimized_ops(ort_graph))
    cov = qdq_coverage(ort_graph)
    ops = summary['integer_ops']
    assert ops['QLinearConv'] == cov.conv_nodes  # every conv became an integer conv
    assert summary['float_convs'] == 0
    assert ops['QLinearAdd'] == RESIDUAL_ADDS and ops['QLinearLeakyRelu'] > 0 and ops['QLinearConcat'] > 0
    assert summary['quantize_dequantize'] < cov.quantize_nodes + cov.dequantize_nodes  # most Q/DQ fused away
    clip = make_clip(3).numpy()
    outputs = []
    for level in (ort.GraphOptimizationLevel.ORT_ENABLE_ALL, ort.GraphOptimizationLevel.ORT_DISABLE_ALL):
        options = ort.SessionOptions()
        options.graph_optimization_level = level  # DISABLE_ALL: the Q/DQ math node by node, in float
        outputs.append(ort.InferenceSession(ort_graph, options, providers=['CPUExecutionProvider'])
                       .run(None, {'lq': clip})[0])
    assert 10 * math.log10(1 / np.mean((outputs[0] - outputs[1]) ** 2)) > 70


def test_int8_ort_graph_matches_fake_quant(int8, ort_graph):
    net, _, _ = int8
    clip = make_clip(3)
    [match] = check_onnx(ort_graph, net, SIZE, SIZE, clips=[clip])
    # Conv outputs and residual sums are quantized here but float in the fake-quantized network: measured 69 dB
    assert match.psnr_db > 60 > DEFAULT_INT8_MIN_PSNR, match
    with torch.no_grad(), quantizers_bypassed(net):
        float_out = net(clip).numpy()
    got = ort.InferenceSession(ort_graph, providers=['CPUExecutionProvider']).run(None, {'lq': clip.numpy()})[0]
    float_psnr = 10 * math.log10(1 / np.mean((got - float_out) ** 2))
    assert abs(float_psnr - match.psnr_db) < 3  # about as far from float as from the fake quantization


def test_relu_and_leaky_relu_ranges_come_from_the_reader(tmp_path):
    """Conv -> ReLU -> Conv: [0, amax] with zero point 0 (the ReLU is the Q); Conv -> LeakyReLU -> Conv:
    [max(measured min, -amax / slope), amax]; the last conv's output: its measured range."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                        nn.LeakyReLU(0.1), nn.Conv2d(8, 4, 3, padding=1)).eval()
    quantize_network(net, {})
    x = torch.randn(2, 3, 16, 16)
    calibrate(net, [x], {})
    ranges = calibrate_output_ranges(net, [x], {})
    path = str(tmp_path / 'seq.onnx')
    with torch.no_grad(), quantizers_bypassed(net):
        torch.onnx.export(net, (x,), path, dynamo=False, opset_version=17, input_names=['x'], output_names=['y'])
    model, report = place_ort_int8_qdq(onnx.load(path), conv_int8_table(net, ranges), float_output_layers=())
    assert report.folded_relus == 1 and report.derived_output_ranges == ['0', '2']
    assert report.measured_output_ranges == ['4']
    graph = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}

    def conv_node(layer: str) -> onnx.NodeProto:
        return next(n for n in graph.node if n.op_type == 'Conv' and producer[n.input[1]].input[0] == f'{layer}.'
                    'weight_int8')

    def output_qparams(layer: str) -> tuple[float, int]:
        q = next(n for n in graph.node if n.op_type == 'QuantizeLinear' and n.input[0] == conv_node(layer).output[0])
        return float(inits[q.input[1]]), int(inits[q.input[2]])

    amax2 = float(net[2].input_quantizer.amax)
    amax4 = float(net[4].input_quantizer.amax)
    assert output_qparams('0') == pytest.approx((amax2 / 255, 0))
    lo = max(float(ranges['2'][0]), -amax4 / 0.1)
    scale, zero_point = output_qparams('2')
    assert scale == pytest.approx((amax4 - lo) / 255) and zero_point == round(-lo / scale)
    scale, zero_point = output_qparams('4')
    assert scale == pytest.approx(float(ranges['4'][1] - ranges['4'][0]) / 255)
    table = conv_int8_table(net, ranges)
    weight_dq = producer[conv_node('2').input[1]]
    codes, weight_scale = inits[weight_dq.input[0]], inits[weight_dq.input[1]]
    assert np.abs(codes).max() == SAFE_WEIGHT_CODE  # same per-channel amax, codes +-64 (no int16 saturation)
    assert np.allclose(weight_scale, table['2'].weight_scale * 127 / SAFE_WEIGHT_CODE)
    assert np.abs(codes * weight_scale[:, None, None, None] - table['2'].weight * table['2'].weight_scale[:, None,
                  None, None]).max() <= weight_scale.max() / 2 + 1e-7
    bias_dq = producer[conv_node('2').input[2]]
    assert inits[bias_dq.input[0]].dtype == np.int32  # int32 bias at input scale x weight scale
    assert np.allclose(inits[bias_dq.input[1]], amax2 / 255 * weight_scale)
    session = ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])
    with torch.no_grad():
        expected = net(x).numpy()
    got = session.run(None, {'x': x.numpy()})[0]
    assert np.abs(got - expected).max() < 0.05 * np.abs(expected).max()


def test_bad_int8_requests_fail_before_export(int8, tmp_path):
    net, ranges, _ = int8
    with pytest.raises(ValueError, match='int8-ort needs the measured output range'):
        export_onnx(net, str(tmp_path / 'x.onnx'), FRAMES, SIZE, SIZE, precision='int8-ort')
    with pytest.raises(ValueError, match=r"float_output_layers: \['nope'\] are not quantized convs"):
        export_onnx(net, str(tmp_path / 'x.onnx'), FRAMES, SIZE, SIZE, precision='int8-ort', conv_output_range=ranges,
                    float_output_layers=['nope'])
    with pytest.raises(ValueError, match='needs a quantized network'):
        export_onnx(float_net(), str(tmp_path / 'x.onnx'), FRAMES, SIZE, SIZE, precision='int8-trt')
    with pytest.raises(ValueError, match=r'\[min, max\] with min <= 0 <= max'):
        conv_int8_table(net, {name: torch.tensor([0.5, 1.0]) for name in ranges})
    with pytest.raises(ValueError, match='not quantized convs'):
        conv_int8_table(net, {'no_such_conv': torch.tensor([-1.0, 1.0])})
    assert os.listdir(tmp_path) == []


def test_int8_checkpoint_loads_and_exports_as_fp32(int8, tmp_path):
    net, _, path = int8
    loaded = load_network(path)
    assert loaded.int8 and set(loaded.conv_output_range) == set(quant_convs(net))
    clip = make_clip(3)
    with torch.no_grad():
        assert torch.equal(loaded.net(clip), net(clip))  # the fake-quantized network, bit for bit
    onnx_path = str(tmp_path / 'fp32.onnx')
    export_onnx(loaded.net, onnx_path, FRAMES, SIZE, SIZE)  # the float graph of the dequantized weights
    assert qdq_coverage(onnx_path).quantize_nodes == 0
    [match] = check_onnx(onnx_path, loaded.net, SIZE, SIZE, atol=1e-5)
    assert match.max_abs_error <= 1e-5


def test_export_script_int8_ort_from_checkpoint(int8, tmp_path, capsys):
    _, _, path = int8
    onnx_path, report = str(tmp_path / 'int8.onnx'), str(tmp_path / 'report.json')
    code = script_main('export')(['--checkpoint', path, '--output', onnx_path, '--frames', str(FRAMES),
                                    '--height', str(SIZE), '--width', str(SIZE), '--precision', 'int8-ort',
                                    '--float-output', 'conv_last', '--report', report])
    out = capsys.readouterr().out
    assert code == 0 and 'int8-ort' in out and 'QLinearConv' in out and 'vs fake-quantized PyTorch' in out
    data = json.load(open(report))
    assert data['int8']['ort_cpu']['integer_ops']['QLinearConv'] == data['int8']['qdq']['conv_output_q'] > 0
    assert data['int8']['ort_cpu']['float_convs'] == data['int8']['placement']['float_output_convs'] == FRAMES
    assert data['checks'][0]['psnr_db'] > 60  # a uniform-noise clip, other than the calibration clips


def test_export_script_measures_missing_ranges_on_footage(tiny_footage, tmp_path, capsys):
    net = float_net()
    report = quantize_network(net, {'calib_batches': 2})
    windows = [make_clip(1), make_clip(2)]
    calibrate(net, windows, {'calib_batches': 2})
    ckpt = str(tmp_path / 'no_ranges_int8.pth')
    export_int8_checkpoint(net, {'calib_batches': 2}, report, ckpt,
                           extra={'arch': {k: v for k, v in ARCH.items() if k != 'widths'}})
    onnx_path = str(tmp_path / 'int8.onnx')
    code = script_main('export')(['--checkpoint', ckpt, '--output', onnx_path, '--frames', str(FRAMES),
                                    '--height', str(SIZE), '--width', str(SIZE), '--precision', 'int8-ort',
                                    '--calib-clips', tiny_footage])
    out = capsys.readouterr().out
    assert code == 0 and 'measured' in out and 'conv output ranges' in out and '(vs fake-quantized PyTorch, footage' \
        in out
    with pytest.raises(ValueError, match='int8-ort needs the measured output range'):
        script_main('export')(['--checkpoint', ckpt, '--output', onnx_path, '--frames', str(FRAMES), '--height',
                                 str(SIZE), '--width', str(SIZE), '--precision', 'int8-ort'])


def test_export_script_bad_int8_requests(int8, tmp_path):
    ckpt = str(tmp_path / 'float.pth')
    save_atomic(network_checkpoint(float_net(), ARCH), ckpt)
    base = ['--output', str(tmp_path / 'x.onnx'), '--frames', str(FRAMES), '--height', str(SIZE), '--width',
            str(SIZE)]
    with pytest.raises(ValueError, match='is not an INT8 checkpoint'):
        script_main('export')(['--checkpoint', ckpt, *base, '--precision', 'int8-trt'])
    with pytest.raises(SystemExit):
        script_main('export')(['--checkpoint', int8[2], *base, '--precision', 'int8-trt', '--fp16'])
    with pytest.raises(SystemExit):
        script_main('export')(['--checkpoint', int8[2], *base, '--precision', 'int8-ort', '--trt'])
    with pytest.raises(SystemExit):
        script_main('export')(['--checkpoint', int8[2], *base, '--precision', 'int8-trt', '--float-output', 'x'])
    assert not os.path.exists(tmp_path / 'x.onnx')


def test_infer_video_runs_int8_graph_and_int8_checkpoint(int8, ort_graph, tmp_path):
    """The streaming script takes the int8-ort graph (onnxruntime) and the INT8 checkpoint (torch, fake-quantized);
    both give every frame, at scale x size, within a few gray levels of each other."""
    import cv2
    _, _, ckpt = int8
    folder = tmp_path / 'frames'
    folder.mkdir()
    frames = (make_clip(4, frames=5)[0].permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f'{i:03d}.png'), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    outputs = {}
    for name, model in (('onnx', ['--onnx', ort_graph]), ('torch', ['--checkpoint', ckpt, '--interval', '3'])):
        report = str(tmp_path / f'{name}.json')
        code = script_main('infer_video')(['--input', str(folder), '--output', str(tmp_path / name), *model,
                                             '--windowed', '--overlap', '0', '--report', report, '--no-progress'])
        assert code == 0
        written = sorted(os.listdir(tmp_path / name))
        assert len(written) == 5
        outputs[name] = np.stack([cv2.imread(str(tmp_path / name / f)) for f in written]).astype(int)
        assert outputs[name].shape == (5, 4 * SIZE, 4 * SIZE, 3)
    assert json.load(open(tmp_path / 'onnx.json'))['precision'] == 'int8-ort'
    diff = np.abs(outputs['onnx'] - outputs['torch'])
    assert diff.mean() < 0.5 and diff.max() <= 8  # gray levels: integer kernels vs fake quantization
