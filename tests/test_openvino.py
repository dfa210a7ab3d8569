"""OpenVINO: IRs from FP32 and INT8 graphs (IconVSR's deformable convs included) match PyTorch, the inference
precision is explicit everywhere, the export and inference scripts, and several inputs served at once. Tiny
networks, CPU; BF16 assertions take the other branch on CPUs without BF16."""
import json
import os

import cv2
import numpy as np
import openvino as ov
import pytest
import torch
from conftest import moving_frames, read_video, script_main, write_folder, write_video

from test_export_int8 import ARCH, FRAMES, SIZE, float_net, make_clip
from vsrcompress.archs.basicvsr_net_arch import IconVSRNet
from vsrcompress.checkpoint import network_checkpoint, save_atomic
from vsrcompress.export import OnnxMismatchError, export_onnx
from vsrcompress.export.openvino_check import check_openvino, export_checked_openvino
from vsrcompress.export.openvino_export import export_openvino, read_openvino_spec
from vsrcompress.export.openvino_runtime import (bf16_supported, check_inference_precision,
                                                 time_by_layer_type)
from vsrcompress.inference import make_backend, run_video_sr
from vsrcompress.inference.multi_stream import run_many_video_sr
from vsrcompress.quantization import calibrate, quantize_network
from vsrcompress.quantization.output_ranges import calibrate_output_ranges

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def quantized():
    net = float_net()
    quantize_network(net, {})
    clips = [make_clip(1), make_clip(2)]
    calibrate(net, clips, {})
    return net, calibrate_output_ranges(net, clips, {})


def test_iconvsr_deformable_convs_convert_and_match_pytorch(tmp_path):
    torch.manual_seed(0)
    net = IconVSRNet(num_feat=8, num_block=1, keyframe_stride=5, temporal_padding=2).eval()
    for name, param in net.named_parameters():
        if 'conv_offset' in name:  # basicsr zero-initialises offsets: make the sampling positions fractional
            param.data.normal_(0, 0.5)
    onnx_path, xml = str(tmp_path / 'icon.onnx'), str(tmp_path / 'icon.xml')
    export_onnx(net, onnx_path, 5, 64, 64)
    spec = export_openvino(onnx_path, xml, 'f32')
    assert read_openvino_spec(xml) == (spec, 'f32') and spec.arch == 'IconVSRNet'
    assert 'DeformableConvolution' in {op.get_type_name() for op in ov.Core().read_model(xml).get_ops()}
    f32 = [m for m in check_openvino(xml, net, 64, 64) if m.inference_precision == 'f32']
    assert f32 and f32[0].match.max_abs_error < 1e-4


def test_fp32_ir_f32_matches_and_bf16_is_measured_or_refused(tmp_path):
    net = float_net()
    record = export_checked_openvino(net, str(tmp_path / 'net.xml'), FRAMES, SIZE, SIZE, 'f32', dynamic=True)
    checks = {(c['inference_precision'], c['height']): c for c in record['checks']}
    assert checks[('f32', SIZE)]['max_abs_error'] < 1e-4 and ('f32', SIZE + 8) in checks  # dynamic: a second size
    assert record['kernels']['inference_precision'] == 'f32'
    if bf16_supported():
        bf16 = checks[('bf16', SIZE)]
        assert 35 < bf16['psnr_db'] < checks[('f32', SIZE)]['psnr_db'] and bf16['max_abs_error'] > 1e-5
        check_inference_precision('bf16')
    else:
        with pytest.raises(ValueError, match='bf16 needs a CPU with AVX512-BF16 or AMX'):
            check_inference_precision('bf16')
    with pytest.raises(ValueError, match=r"inference precision: 'fp16' is not supported.*\['f32', 'bf16'\]"):
        check_inference_precision('fp16')


@pytest.mark.parametrize('placement', ['int8-trt', 'int8-ort'])
def test_int8_irs_run_integer_convs_close_to_fake_quantization(quantized, tmp_path, placement):
    net, ranges = quantized
    record = export_checked_openvino(net, str(tmp_path / f'{placement}.xml'), FRAMES, SIZE, SIZE, 'f32', placement,
                                     conv_output_range=ranges, clips=[make_clip(3)])
    convs = record['kernels']['convolutions_by_precision']
    assert convs.get('u8', 0) + convs.get('i8', 0) > convs.get('f32', 0)  # most convs run as integer kernels
    f32 = next(c for c in record['checks'] if c['inference_precision'] == 'f32')
    assert f32['psnr_db'] >= 40.0
    layers = time_by_layer_type(str(tmp_path / f'{placement}.xml'), 'f32', make_clip(3).numpy())
    assert abs(sum(r['share'] for r in layers) - 1) < 1e-6 and layers[0]['seconds'] >= layers[-1]['seconds']
    convs = [r for r in layers if r['layer_type'] == 'Convolution']
    assert any(r['kernel'].endswith(('I8', 'u8', 'i8')) for r in convs), convs  # the integer kernels are named


def test_failed_check_leaves_no_ir_under_the_output_name(quantized, tmp_path):
    net, ranges = quantized
    xml = str(tmp_path / 'int8.xml')
    with pytest.raises(OnnxMismatchError, match='does not match PyTorch'):
        export_checked_openvino(net, xml, FRAMES, SIZE, SIZE, 'f32', 'int8-trt', min_int8_psnr=500.0)
    assert not os.path.exists(xml) and os.path.exists(str(tmp_path / 'int8.mismatch.xml'))


def test_bad_requests_fail_clearly(tmp_path):
    net = float_net()
    graph = str(tmp_path / 'fp16.onnx')
    export_onnx(net, graph, FRAMES, SIZE, SIZE, precision='fp16')
    with pytest.raises(ValueError, match='OpenVINO IRs are made from'):
        export_openvino(graph, str(tmp_path / 'x.xml'), 'f32')
    with pytest.raises(ValueError, match=r'an OpenVINO IR is an \.xml file'):
        export_openvino(graph, str(tmp_path / 'x.onnx'), 'f32')
    (tmp_path / 'bad.xml').write_text('not an IR')
    (tmp_path / 'bad.bin').write_bytes(b'')
    with pytest.raises(ValueError, match='is not a readable OpenVINO IR'):
        read_openvino_spec(str(tmp_path / 'bad.xml'))
    with pytest.raises(FileNotFoundError, match='missing.xml does not exist'):
        make_backend('openvino', openvino_path=str(tmp_path / 'missing.xml'))
    with pytest.raises(ValueError, match='runs on the CPU'):
        make_backend('openvino', 'cuda', openvino_path=str(tmp_path / 'bad.xml'))


def test_export_script_writes_a_checked_ir_and_refuses_implicit_precision(tmp_path, capsys):
    ckpt = str(tmp_path / 'net.pth')
    save_atomic(network_checkpoint(float_net(), {k: v for k, v in ARCH.items() if k != 'widths'}), ckpt)
    main = script_main('export')
    xml, report = str(tmp_path / 'net.xml'), str(tmp_path / 'export.json')
    base = ['--checkpoint', ckpt, '--output', xml, '--frames', str(FRAMES), '--height', '64', '--width', '64',
            '--format', 'openvino']
    assert main(base + ['--inference-precision', 'f32', '--report', report]) == 0
    out = capsys.readouterr().out
    assert 'OpenVINO inference precision f32' in out and os.path.exists(xml[:-4] + '.bin')
    saved = json.load(open(report))
    assert saved['inference_precision'] == 'f32' and saved['checks'][0]['max_abs_error'] < 1e-4
    for extra, message in ((['--precision', 'fp32'], 'needs --inference-precision'),
                           (['--inference-precision', 'f32', '--fp16'], 'not fp16'),
                           (['--inference-precision', 'f32', '--trt'], 'does not apply to --format openvino')):
        with pytest.raises(SystemExit):
            main(base + extra)
        assert message in capsys.readouterr().err


def test_infer_video_openvino_matches_torch_and_records_precision(tmp_path, capsys):
    net = float_net()
    frames = moving_frames(6, 64, 64)
    source = write_folder(str(tmp_path / 'in'), frames)
    xml = str(tmp_path / 'net.xml')
    export_checked_openvino(net, xml, 4, 64, 64, 'f32', check=False)
    report = str(tmp_path / 'run.json')
    assert script_main('infer_video')(['--input', source, '--output', str(tmp_path / 'ov'), '--openvino', xml,
                                  '--windowed', '--overlap', '1', '--report', report, '--no-progress']) == 0
    run_video_sr(source, str(tmp_path / 'torch'), make_backend('torch', net=net), 2, 1, progress=False)
    ov = np.stack([cv2.imread(str(tmp_path / 'ov' / f)) for f in sorted(os.listdir(tmp_path / 'ov'))]).astype(int)
    ref = np.stack([cv2.imread(str(tmp_path / 'torch' / f)) for f in sorted(os.listdir(tmp_path / 'torch'))])
    assert ov.shape == (6, 256, 256, 3) and np.abs(ov - ref).max() <= 1
    saved = json.load(open(report))
    assert (saved['backend'], saved['inference_precision'], saved['complete']) == ('openvino', 'f32', True)


def test_several_inputs_run_concurrently_with_one_output_each(tmp_path):
    net = float_net()
    xml = str(tmp_path / 'net.xml')
    export_checked_openvino(net, xml, 4, 64, 64, 'f32', check=False)
    inputs = [write_video(str(tmp_path / f'cam{i}.mp4'), moving_frames(5 + i, 64, 64)) for i in range(3)]
    outputs = [str(tmp_path / f'sr{i}.mp4') for i in range(3)]
    backend = make_backend('openvino', openvino_path=xml, openvino_mode='throughput')
    report = run_many_video_sr(inputs, outputs, backend, 2, 1, report_path=str(tmp_path / 'cams.json'))
    assert report['concurrent'] and report['complete'] and report['frames_out'] == 5 + 6 + 7
    assert [len(read_video(p)) for p in outputs] == [5, 6, 7]
    assert json.load(open(tmp_path / 'cams.json'))['inputs'][2]['frames_out'] == 7
    # the same outputs in one go through the script: one output per input, checked before any work
    main = script_main('infer_video')
    with pytest.raises(SystemExit):
        main(['--input', *inputs, '--output', outputs[0], '--openvino', xml])
    with pytest.raises(ValueError, match='are the same file'):
        run_many_video_sr(inputs[:2], [outputs[0]] * 2, backend, 2, 1)
    with pytest.raises((ValueError, FileNotFoundError), match='missing.mp4'):
        run_many_video_sr([inputs[0], str(tmp_path / 'missing.mp4')], outputs[:2], backend, 2, 1)
