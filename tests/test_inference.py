"""Streaming inference: frame counts and sizes, chunk borders against full-sequence output, padding, backends,
bad input failing before work, and interrupted runs leaving a playable partial output. Tiny networks, CPU."""
import json
import os

import cv2
import numpy as np
import pytest
import torch
from conftest import moving_frames, read_video, script_main, write_folder, write_video

from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet
from vsrcompress.checkpoint import network_checkpoint, save_atomic
from vsrcompress.export import export_onnx, tensorrt_unavailable_reason
from vsrcompress.inference import (ChunkPlanner, TorchBackend, make_backend, mirrored_indices, partial_path,
                                   run_video_sr)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCALE = 2


pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def net() -> BasicVSRNet:
    torch.manual_seed(0)
    return BasicVSRNet(num_feat=8, num_block=1, scale=SCALE, widths={'spynet': [[8, 8, 8, 8]] * 6, 'upsample': [8],
                                                                      'hr': 8}).eval()


def read_folder(path: str) -> np.ndarray:
    return np.stack([cv2.imread(os.path.join(path, f)) for f in sorted(os.listdir(path))]).astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return float('inf') if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.mark.parametrize('count', [2, 3, 7, 10, 23])
def test_chunk_plan_keeps_every_frame_once_in_fixed_windows(count):
    planner, kept, available = ChunkPlanner(interval=5, overlap=2, window_frames=9), [], 0
    while (window := planner.next_window(available, ended=available == count)) is not None or available < count:
        if window is None:
            available += 1
            continue
        assert len(window.indices) == 9 and max(window.indices) < available
        assert set(range(window.keep_start, window.keep_stop)) <= set(window.indices)
        if available >= 9:  # a full window: the kept frames have `overlap` context frames wherever they exist
            assert window.indices[0] <= max(0, window.keep_start - 2)
            assert window.indices[-1] >= min(count, window.keep_stop + 2) - 1
        kept += range(window.keep_start, window.keep_stop)
    assert kept == list(range(count))


def test_mirrored_indices():
    assert mirrored_indices(3, 8) == [0, 1, 2, 1, 0, 1, 2, 1]
    assert mirrored_indices(1, 3) == [0, 0, 0]


def test_video_file_to_video_file(tmp_path, net):
    frames = moving_frames(9, 40, 44)
    source = write_video(str(tmp_path / 'in.mp4'), frames)
    output, report_path = str(tmp_path / 'out.mp4'), str(tmp_path / 'run.json')
    report = run_video_sr(source, output, TorchBackend(net), interval=3, overlap=1, report_path=report_path,
                          progress=False)
    written = read_video(output)
    assert len(written) == 9 and written[0].shape == (40 * SCALE, 44 * SCALE, 3)
    saved = json.load(open(report_path))
    assert saved['complete'] and saved['frames_in'] == saved['frames_out'] == 9
    assert saved['chunk_latency']['count'] == 3 and saved['chunk_latency']['p95_ms'] >= saved['chunk_latency']['p50_ms']
    assert saved['end_to_end_latency']['count'] == 9 and saved['fps'] > 0 and saved['peak_rss_mib'] > 0
    assert saved['frames_per_chunk_call'] == 5 and report['output_size'] == [80, 88]
    assert sorted(os.listdir(tmp_path)) == ['in.mp4', 'out.mp4', 'run.json']  # no temporary files left


def test_overlap_hides_chunk_borders(tmp_path, net):
    source = write_folder(str(tmp_path / 'frames'), moving_frames(12, 40, 44))
    backend = TorchBackend(net)
    outputs = {}
    for interval, overlap in [(12, 0), (3, 0), (3, 2)]:
        out = str(tmp_path / f'sr_{interval}_{overlap}')
        run_video_sr(source, out, backend, interval, overlap, progress=False)
        outputs[overlap if interval == 3 else 'full'] = read_folder(out)
    assert outputs['full'].shape == (12, 80, 88, 3)
    without, with_overlap = psnr(outputs['full'], outputs[0]), psnr(outputs['full'], outputs[2])
    assert with_overlap > without and with_overlap > 60, (without, with_overlap)
    assert np.abs(outputs['full'] - outputs[2]).max() <= 1


@pytest.fixture(scope='module')
def fixed_graph(tmp_path_factory, net) -> str:
    """``net`` exported for windows of 3 frames of 36x40."""
    graph = str(tmp_path_factory.mktemp('graph') / 'net.onnx')
    export_onnx(net, graph, frames=3, height=36, width=40)
    return graph


def test_odd_sizes_are_padded_for_a_fixed_graph_and_cropped_back(tmp_path, net, fixed_graph):
    frames = moving_frames(3, 33, 37)
    source = write_folder(str(tmp_path / 'frames'), frames)
    backend = make_backend('onnxruntime', onnx_path=fixed_graph)
    report = run_video_sr(source, str(tmp_path / 'sr'), backend, interval=3, overlap=0, progress=False)
    assert report['padded_size'] == [36, 40] and report['output_size'] == [66, 74]
    got = read_folder(str(tmp_path / 'sr'))
    assert got.shape == (3, 66, 74, 3)
    # the same computation by hand: replicate-pad to the graph size, run the 3 frames at once, crop
    rgb = [cv2.copyMakeBorder(cv2.cvtColor(f, cv2.COLOR_BGR2RGB), 0, 3, 0, 3, cv2.BORDER_REPLICATE) for f in frames]
    with torch.no_grad():
        sr = net(torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2)[None].float() / 255)
    expected = (sr[0].clamp(0, 1) * 255).round().permute(0, 2, 3, 1).numpy()[:, :66, :74, ::-1]
    assert np.abs(got - expected).max() <= 1


def test_frames_smaller_than_spynet_needs_are_padded(tmp_path, net):
    source = write_video(str(tmp_path / 'small.mp4'), moving_frames(4, 24, 30))
    report = run_video_sr(source, str(tmp_path / 'small_sr.avi'), TorchBackend(net), 2, 0, progress=False)
    assert report['padded_size'] == [33, 33]
    written = read_video(str(tmp_path / 'small_sr.avi'))
    assert len(written) == 4 and written[0].shape == (48, 60, 3)


def test_onnxruntime_backend_matches_torch_backend(tmp_path, net):
    source = write_video(str(tmp_path / 'in.mp4'), moving_frames(6, 40, 44))
    graph = str(tmp_path / 'dyn.onnx')
    export_onnx(net, graph, frames=4, height=40, width=44, dynamic=True)
    run_video_sr(source, str(tmp_path / 'ort'), make_backend('onnxruntime', onnx_path=graph), 2, 1, progress=False)
    run_video_sr(source, str(tmp_path / 'torch'), TorchBackend(net), 2, 1, progress=False)
    ort_frames, torch_frames = read_folder(str(tmp_path / 'ort')), read_folder(str(tmp_path / 'torch'))
    assert ort_frames.shape == (6, 80, 88, 3) and np.abs(ort_frames - torch_frames).max() <= 1


class InterruptedBackend(TorchBackend):
    """The real torch backend, with Ctrl-C arriving during the second model call."""

    def __init__(self, net):
        super().__init__(net)
        self.calls = 0

    def infer(self, clip):
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return super().infer(clip)


def test_interrupted_run_leaves_a_playable_partial_output(tmp_path, net):
    source = write_video(str(tmp_path / 'in.mp4'), moving_frames(9, 40, 44))
    output, report_path = str(tmp_path / 'out.mp4'), str(tmp_path / 'run.json')
    with pytest.raises(KeyboardInterrupt):
        run_video_sr(source, output, InterruptedBackend(net), 3, 1, report_path=report_path, progress=False)
    assert not os.path.exists(output)
    partial = read_video(partial_path(output))
    assert len(partial) == 3 and partial[0].shape == (80, 88, 3)
    saved = json.load(open(report_path))
    assert saved['complete'] is False and saved['partial_output'] == partial_path(output)


def test_decode_error_mid_stream_propagates(tmp_path, net):
    frames = moving_frames(8, 40, 44)
    folder = write_folder(str(tmp_path / 'frames'), frames)
    with open(os.path.join(folder, 'frame_6.png'), 'wb') as f:
        f.write(b'not a png')
    with pytest.raises(ValueError, match='cannot decode image .*frame_6.png'):
        run_video_sr(folder, str(tmp_path / 'out.mp4'), TorchBackend(net), 2, 0, progress=False)
    assert not os.path.exists(tmp_path / 'out.mp4')
    assert len(read_video(partial_path(str(tmp_path / 'out.mp4')))) <= 6


@pytest.fixture
def clip_path(tmp_path) -> str:
    return write_video(str(tmp_path / 'in.mp4'), moving_frames(3, 40, 44))


@pytest.mark.parametrize('case, message', [
    ('missing', r'input: .*nothing.mp4 does not exist'),
    ('corrupt', r'input: cannot open video file .*corrupt.mp4|yielded no frame'),
    ('empty_file', r'input: cannot open video file .*empty.mp4|yielded no frame'),
    ('empty_folder', r'input: folder .* holds no images'),
    ('url', r'input: cannot open stream URL http://127.0.0.1:9/live'),
    ('output_folder_missing', r'output: cannot write .* does not exist'),
    ('output_parent_is_file', r'output: cannot write .* is not a folder'),
    ('output_extension', r"output: unknown video extension '.xyz'"),
    ('output_is_folder', r'output: .*out.mp4 exists and is not a video file'),
    ('interval', r'interval: must be an integer >= 2'),
    ('overlap', r'overlap: must be an integer with 0 <= overlap < interval'),
])
def test_bad_input_fails_before_work(tmp_path, net, clip_path, case, message):
    source, output, interval, overlap = clip_path, str(tmp_path / 'out.mp4'), 2, 0
    if case == 'missing':
        source = str(tmp_path / 'nothing.mp4')
    elif case == 'corrupt':
        source = str(tmp_path / 'corrupt.mp4')
        open(source, 'wb').write(os.urandom(4096))
    elif case == 'empty_file':
        source = str(tmp_path / 'empty.mp4')
        open(source, 'wb').close()
    elif case == 'empty_folder':
        source = str(tmp_path / 'no_frames')
        os.makedirs(source)
    elif case == 'url':
        source = 'http://127.0.0.1:9/live'  # discard port: nothing listens
    elif case == 'output_folder_missing':
        output = str(tmp_path / 'missing' / 'out.mp4')
    elif case == 'output_parent_is_file':
        output = os.path.join(clip_path, 'out.mp4')
    elif case == 'output_extension':
        output = str(tmp_path / 'out.xyz')
    elif case == 'output_is_folder':
        os.makedirs(output)
    elif case == 'interval':
        interval = 1
    elif case == 'overlap':
        interval, overlap = 3, 3
    backend = InterruptedBackend(net)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        run_video_sr(source, output, backend, interval, overlap, progress=False)
    assert backend.calls == 0 and sorted(os.listdir(tmp_path)) == before


def test_fixed_window_graph_rejects_other_chunking_and_larger_frames(tmp_path, fixed_graph, clip_path):
    backend = make_backend('onnxruntime', onnx_path=fixed_graph)
    with pytest.raises(ValueError, match=r'exactly 3 frames.*--interval 3 --overlap 0'):
        run_video_sr(clip_path, str(tmp_path / 'a.mp4'), backend, 3, 1, progress=False)
    with pytest.raises(ValueError, match=r'frames of 44x40 do not fit .* exported for 40x36'):
        run_video_sr(clip_path, str(tmp_path / 'b.mp4'), backend, 3, 0, progress=False)
    assert not os.path.exists(tmp_path / 'a.mp4') and not os.path.exists(tmp_path / 'b.mp4')


@pytest.mark.skipif(tensorrt_unavailable_reason() is None, reason='TensorRT is usable here')
def test_backends_that_are_not_installed_fail_clearly(tmp_path):
    with pytest.raises(RuntimeError, match='TensorRT is not available'):
        make_backend('tensorrt', 'cuda', engine_path=str(tmp_path / 'x.engine'))
    with pytest.raises(ValueError, match=r"backend: 'tflite' is not supported; allowed"):
        make_backend('tflite')
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='device: cuda was requested but no CUDA GPU'):
            make_backend('torch', 'cuda', net=torch.nn.Conv2d(1, 1, 1))


def test_infer_video_script(tmp_path, net, clip_path, capsys):
    ckpt = str(tmp_path / 'net.pth')
    save_atomic(network_checkpoint(net, {'type': 'BasicVSRNet', 'num_feat': 8, 'num_block': 1, 'scale': SCALE}), ckpt)
    main = script_main('infer_video')
    report = str(tmp_path / 'run.json')
    assert main(['--input', clip_path, '--output', str(tmp_path / 'sr.mp4'), '--checkpoint', ckpt, '--interval', '2',
                 '--lookahead', '1', '--report', report, '--no-progress']) == 0
    out = capsys.readouterr().out
    assert 'fps' in out and 'stateful (interval 2, lookahead 1)' in out
    saved = json.load(open(report))
    assert len(read_video(str(tmp_path / 'sr.mp4'))) == 3 and saved['backend'] == 'torch'
    assert saved['mode'] == 'stateful' and saved['lookahead'] == 1 and 'overlap' not in saved
    with pytest.raises(ValueError, match='overlap: must be an integer'):
        main(['--input', clip_path, '--output', str(tmp_path / 'x.mp4'), '--checkpoint', ckpt, '--interval', '2',
              '--windowed', '--overlap', '2'])
    with pytest.raises(ValueError, match='lookahead: must be an integer >= 0'):
        main(['--input', clip_path, '--output', str(tmp_path / 'x.mp4'), '--checkpoint', ckpt, '--lookahead', '-1'])
    for argv, message in ((['--overlap', '1'], '--overlap applies to --windowed mode'),
                          (['--windowed', '--lookahead', '1'], '--lookahead applies to stateful streaming')):
        with pytest.raises(SystemExit):
            main(['--input', clip_path, '--output', str(tmp_path / 'x.mp4'), '--checkpoint', ckpt, *argv])
        assert message in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'x.mp4')
