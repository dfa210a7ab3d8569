"""Stateful streaming end to end: graphs with the state as inputs and outputs (ONNX FP32/FP16/INT8, OpenVINO IRs)
checked over consecutive calls, infer_video's default mode on every CPU engine against PyTorch, one state per input,
the plan of calls and the report's numbers, refusals of mismatched modes. Tiny networks, CPU."""
import json
import os

import cv2
import numpy as np
import onnx
import pytest
import torch
from conftest import moving_frames, read_video, script_main, write_folder, write_video

from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet, IconVSRNet
from vsrcompress.checkpoint import network_checkpoint, save_atomic
from vsrcompress.export import OnnxGraphSpec, OnnxMismatchError, check_onnx, export_onnx, read_graph_spec
from vsrcompress.export.onnx_check import OnnxMatch, check_error_growth, compare_runner_with_torch
from vsrcompress.export.openvino_check import check_openvino
from vsrcompress.export.openvino_export import export_openvino
from vsrcompress.export.stateful_graph import stream_contract
from vsrcompress.export.tensorrt_build import profile_by_input, profile_shapes
from vsrcompress.inference import TorchBackend, make_backend, partial_path, run_video_sr
from vsrcompress.inference.multi_stream import run_many_video_sr
from vsrcompress.inference.stream_plan import StreamPlanner
from vsrcompress.quantization import calibrate, quantize_network
from vsrcompress.quantization.output_ranges import calibrate_output_ranges

SIZE, SCALE = 64, 2
NARROW = {'spynet': [[8, 8, 8, 8]] * 6, 'upsample': [8], 'hr': 8}

pytestmark = pytest.mark.usefixtures('one_thread')


def make_net(arch: str = 'basicvsr') -> torch.nn.Module:
    torch.manual_seed(0)
    cls, extra = (BasicVSRNet, {}) if arch == 'basicvsr' else (IconVSRNet, {'keyframe_stride': 3})
    return cls(num_feat=8, num_block=1, scale=SCALE, widths=NARROW, **extra).eval()


def smooth_clip(frames: int, seed: int) -> torch.Tensor:
    """A panning smooth texture (INT8 ranges are calibrated on it; uniform noise would exceed them)."""
    base = torch.nn.functional.interpolate(torch.rand(1, 3, 20, 20, generator=torch.Generator().manual_seed(seed)),
                                           size=(SIZE + 3 * frames, SIZE + 3 * frames), mode='bicubic').clamp(0, 1)
    return torch.stack([base[0, :, t:t + SIZE, 3 * t:3 * t + SIZE] for t in range(frames)])[None]


@pytest.fixture(scope='module')
def int8_net():
    net = make_net()
    quantize_network(net, {})
    clips = [smooth_clip(4, 1), smooth_clip(4, 2)]
    calibrate(net, clips, {})
    return net, calibrate_output_ranges(net, clips, {})


@pytest.mark.parametrize('arch, precision, dynamic', [('basicvsr', 'fp32', True), ('basicvsr', 'fp16', False),
                                                      ('basicvsr', 'int8-trt', False), ('basicvsr', 'int8-ort', False),
                                                      ('iconvsr', 'fp32', True)])
def test_stateful_graphs_match_the_pytorch_stream_in_onnx_runtime_and_openvino(tmp_path, int8_net, arch, precision,
                                                                               dynamic):
    net, ranges = int8_net if precision.startswith('int8') else (make_net(arch), None)
    path = str(tmp_path / 'stateful.onnx')
    spec = export_onnx(net, path, 4, SIZE, SIZE, dynamic=dynamic, precision=precision, conv_output_range=ranges,
                       interval=3)
    contract = spec.contract
    assert (contract.interval, contract.lookahead, contract.feat_channels) == (3, 1, 8)
    assert contract.past_frames == (1 if arch == 'basicvsr' else 4) and read_graph_spec(path) == spec
    graph = onnx.load(path).graph
    expected_inputs = ['lq', 'feat_forward', 'past_lq'] + (['key_neighbours', 'key_slots'] if arch == 'iconvsr' else [])
    assert [i.name for i in graph.input] == expected_inputs
    assert [o.name for o in graph.output] == ['sr', 'feat_forward_out', 'past_lq_out']
    clips = [smooth_clip(13, 3)] if precision.startswith('int8') else None
    matches = check_onnx(path, net, SIZE, SIZE, clips=clips)
    assert len(matches) == (2 if dynamic else 1) and all(len(m.calls) == 4 for m in matches)
    bound = {'fp32': 1e-5, 'fp16': 5e-3}.get(precision)
    for m in matches:
        assert m.max_abs_error <= bound if bound else m.psnr_db >= 45.0, m
    if precision == 'fp16':
        return
    xml = str(tmp_path / 'stateful.xml')
    export_openvino(path, xml, 'f32')
    for result in check_openvino(xml, net, SIZE, SIZE, clips=clips):
        assert len(result.match.calls) == 4
        if result.inference_precision == 'f32':
            assert result.match.max_abs_error <= bound if bound else result.match.psnr_db >= 45.0


def test_a_graph_that_drops_its_state_fails_the_check(tmp_path):
    net = make_net()
    path = str(tmp_path / 'stateful.onnx')
    spec = export_onnx(net, path, 3, SIZE, SIZE, interval=2)
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])

    def forgetful(feeds):  # every call from zeros: what a windowed graph without overlap would do
        feeds = {k: (np.zeros_like(v) if k in ('feat_forward', 'past_lq') else v) for k, v in feeds.items()}
        return session.run(None, feeds)
    matches = compare_runner_with_torch(forgetful, spec, net, [(SIZE, SIZE)], path)
    assert matches[0].calls[0]['max_abs_error'] < 1e-5 < matches[0].calls[1]['max_abs_error']  # call 1 starts at 0
    growing = [OnnxMatch(64, 64, 0.1, 20.0, 0, 0, ({'max_abs_error': 1e-4, 'psnr_db': 60.0},
                                                   {'max_abs_error': 0.1, 'psnr_db': 20.0}))]
    with pytest.raises(OnnxMismatchError, match='grows from call to call.*call 1: max abs 0.0001'):
        check_error_growth(growing, 'g.onnx')
    check_error_growth([OnnxMatch(64, 64, 1e-4, 60.0, 0, 0, ({'max_abs_error': 1e-4, 'psnr_db': 60.0},) * 4)], 'g')


def test_stream_planner_delivers_each_frame_once_with_its_lookahead():
    planner, calls = StreamPlanner(5, 2), []
    for available in range(1, 13):
        while call := planner.next_window(available, False):
            calls.append(call)
    while call := planner.next_window(12, True):
        calls.append(call)
    assert [(c.indices, c.keep, c.ended) for c in calls] == [
        (tuple(range(0, 7)), 5, False), (tuple(range(5, 12)), 5, False), ((10, 11), 2, True)]
    assert [calls[0].frames_waited(i) for i in range(5)] == [6, 5, 4, 3, 2]
    fixed = StreamPlanner(5, 2, fixed_frames=True)
    assert fixed.next_window(3, True).indices == (0, 1, 2, 1, 0, 1, 2)  # a graph's length, mirrored
    per_frame = StreamPlanner(1, 0)
    assert per_frame.next_window(1, False).indices == (0,) and per_frame.next_window(1, False) is None


def test_report_counts_network_frames_latency_in_frames_and_state(tmp_path):
    net = make_net()
    source = write_video(str(tmp_path / 'in.mp4'), moving_frames(12, SIZE, SIZE))
    report = run_video_sr(source, str(tmp_path / 'out.mp4'), TorchBackend(net), interval=5, lookahead=2,
                          progress=False)
    assert report['mode'] == 'stateful' and report['lookahead'] == 2 and report['frames_out'] == 12
    assert report['network_frames_per_output_frame'] == {'backward': 16 / 12, 'forward_and_tail': 1.0}
    assert report['latency_frames']['max'] == 6 and report['latency_frames']['count'] == 12
    assert report['state_mib'] == pytest.approx((8 + 3) * SIZE * SIZE * 4 / 2 ** 20)
    windowed = run_video_sr(source, str(tmp_path / 'win.mp4'), TorchBackend(net), interval=5, overlap=2,
                            progress=False)
    assert windowed['mode'] == 'windowed' and windowed['network_frames_per_output_frame']['forward_and_tail'] > 1.4
    assert windowed['state_mib'] == 0


@pytest.mark.parametrize('arch', ['basicvsr', 'iconvsr'])
def test_infer_video_streams_statefully_on_every_cpu_engine_like_pytorch(tmp_path, arch):
    net = make_net(arch)
    ckpt = str(tmp_path / 'net.pth')
    save_atomic(network_checkpoint(net, {'type': type(net).__name__, 'num_feat': 8, 'num_block': 1, 'scale': SCALE,
                                         **({'keyframe_stride': 3} if arch == 'iconvsr' else {}), 'widths': NARROW}),
                ckpt)
    source = write_folder(str(tmp_path / 'in'), moving_frames(11, SIZE, SIZE))
    onnx_path, xml = str(tmp_path / 'g.onnx'), str(tmp_path / 'g.xml')
    export_onnx(net, onnx_path, 5, SIZE, SIZE, interval=3)
    export_openvino(onnx_path, xml, 'f32')
    main = script_main('infer_video')
    outputs = {}
    for name, model in (('torch', ['--checkpoint', ckpt, '--interval', '3', '--lookahead', '2']),
                        ('onnx', ['--onnx', onnx_path]), ('openvino', ['--openvino', xml])):
        report = str(tmp_path / f'{name}.json')
        assert main(['--input', source, '--output', str(tmp_path / name), *model, '--report', report,
                     '--no-progress']) == 0
        saved = json.load(open(report))
        assert saved['mode'] == 'stateful' and (saved['interval'], saved['lookahead']) == (3, 2), name
        folder = tmp_path / name
        outputs[name] = np.stack([cv2.imread(str(folder / f)).astype(int) for f in sorted(os.listdir(folder))])
    assert outputs['torch'].shape == (11, SIZE * SCALE, SIZE * SCALE, 3)
    for name in ('onnx', 'openvino'):
        # frames 0-8 come from full calls, as PyTorch's; the last call pads to the graph's 5 frames by mirroring
        assert np.abs(outputs[name][:9] - outputs['torch'][:9]).max() <= 1, name
        assert np.abs(outputs[name] - outputs['torch']).mean() < 1.0, name


def test_several_inputs_carry_one_state_each(tmp_path):
    net = make_net()
    onnx_path, xml = str(tmp_path / 'g.onnx'), str(tmp_path / 'g.xml')
    export_onnx(net, onnx_path, 3, SIZE, SIZE, interval=2)
    export_openvino(onnx_path, xml, 'f32')
    inputs = [write_video(str(tmp_path / f'cam{i}.mp4'), moving_frames(5 + i, SIZE, SIZE, step=2 + i))
              for i in range(2)]
    for backend in (make_backend('torch', net=net), make_backend('onnxruntime', onnx_path=onnx_path),
                    make_backend('openvino', openvino_path=xml, openvino_mode='throughput')):
        alone = []
        for i, source in enumerate(inputs):
            run_video_sr(source, str(tmp_path / f'{backend.name}_alone{i}.avi'), backend, 2, lookahead=1,
                         progress=False)
            alone.append(read_video(str(tmp_path / f'{backend.name}_alone{i}.avi')))
        outputs = [str(tmp_path / f'{backend.name}_together{i}.avi') for i in range(2)]
        report = run_many_video_sr(inputs, outputs, backend, 2, lookahead=1)
        assert report['concurrent'] and report['complete'] and report['frames_out'] == 5 + 6
        for i, path in enumerate(outputs):  # each input's own state: the same frames as when it ran alone
            together = read_video(path)
            assert len(together) == len(alone[i]) and all(np.array_equal(a, b) for a, b in zip(together, alone[i]))


class InterruptedStream(TorchBackend):
    """The real torch backend, with Ctrl-C arriving during the second stateful call."""

    def __init__(self, net):
        super().__init__(net)
        self.calls = 0

    def stream(self, clip, call):
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return super().stream(clip, call)


def test_interrupted_stateful_run_leaves_a_playable_partial_output(tmp_path):
    source = write_video(str(tmp_path / 'in.mp4'), moving_frames(9, SIZE, SIZE))
    output = str(tmp_path / 'out.mp4')
    with pytest.raises(KeyboardInterrupt):
        run_video_sr(source, output, InterruptedStream(make_net()), 3, lookahead=1, progress=False)
    assert not os.path.exists(output) and len(read_video(partial_path(output))) == 3


def test_modes_a_graph_was_not_exported_for_are_refused_before_any_frame(tmp_path, capsys):
    net = make_net()
    windowed, stateful = str(tmp_path / 'w.onnx'), str(tmp_path / 's.onnx')
    export_onnx(net, windowed, 5, SIZE, SIZE)
    export_onnx(net, stateful, 5, SIZE, SIZE, interval=3)
    source = write_folder(str(tmp_path / 'in'), moving_frames(4, SIZE, SIZE))
    main, out = script_main('infer_video'), str(tmp_path / 'out')
    cases = [(['--onnx', windowed], 'the graph is windowed .*--frames 5.*--windowed'),
             (['--onnx', stateful, '--windowed'], 'the graph is stateful .*--interval 3 --lookahead 2'),
             (['--onnx', stateful, '--interval', '2'], 'exported for --interval 3 --lookahead 2, not --interval 2')]
    for model, message in cases:
        with pytest.raises(ValueError, match=message):
            main(['--input', source, '--output', out, *model, '--no-progress'])
    assert not os.path.exists(out) and sorted(os.listdir(tmp_path)) == ['in', 's.onnx', 'w.onnx']


def test_export_script_writes_stateful_graphs_by_default(tmp_path, capsys):
    ckpt = str(tmp_path / 'net.pth')
    save_atomic(network_checkpoint(make_net(), {'type': 'BasicVSRNet', 'num_feat': 8, 'num_block': 1, 'scale': SCALE,
                                                'widths': NARROW}), ckpt)
    export = script_main('export')
    out = str(tmp_path / 'g.onnx')
    assert export(['--checkpoint', ckpt, '--output', out, '--height', '64', '--width', '64']) == 0
    assert 'stateful, interval 5 + lookahead 2' in capsys.readouterr().out
    assert read_graph_spec(out).contract.frames == 7
    with pytest.raises(SystemExit):
        export(['--checkpoint', ckpt, '--output', out, '--frames', '5', '--interval', '3', '--height', '64',
                '--width', '64'])
    assert '--frames makes a windowed graph' in capsys.readouterr().err


def test_tensorrt_profiles_cover_the_state_inputs():
    net = make_net('iconvsr')
    spec = OnnxGraphSpec(5, None, None, 2, 'fp32', 'IconVSRNet', 19, stream_contract(net, 3, 2).to_dict())
    profile = profile_by_input(spec, profile_shapes(5, 2, 100, 200, 50, 70))
    assert profile['lq'] == ((1, 5, 3, 36, 36), (1, 5, 3, 52, 72), (1, 5, 3, 100, 200))  # multiples of 4
    assert profile['feat_forward'][2] == (1, 8, 100, 200) and profile['past_lq'][0] == (1, 4, 3, 36, 36)
