"""scripts/benchmark_streaming.py run tiny (8-channel networks, 64x64, a reduced grid): the quality and speed rows,
the targets, the Markdown and the PNG; bad settings refused before any work; the paced source and the call MACs
the benchmark rests on. CPU."""
import json
import os
import time

import cv2
import pytest
from conftest import script_main

from vsrcompress.bench.call_macs import macs_per_delivered_frame
from vsrcompress.bench.clips import moving_clip, write_clip
from vsrcompress.bench.paced_stream import PacedSource
from vsrcompress.bench.streaming import markdown
from vsrcompress.inference.frame_source import open_frame_source
from vsrcompress.report.complexity import OFFICIAL_MODELS, count_model_complexity

pytestmark = pytest.mark.usefixtures('one_thread')
GRID = ['--windowed', '5/2', '--stateful', '1/0', '5/2']
TINY = [*GRID, '--archs', 'basicvsr', '--basicvsr-size', '64', '64', '--frames', '10', '--rounds', '1',
        '--calib-windows', '1', '--threads', '1', '--engines', 'openvino-int8', 'torch-pruned', 'onnxruntime-dense',
        '--tiny']


@pytest.fixture(scope='module')
def footage(tmp_path_factory) -> str:
    """Demo footage whose val clip (12 frames) is longer than a 5/2 window, with 5-frame calibration windows."""
    from vsrcompress.footage.demo import make_demo_footage
    root = str(tmp_path_factory.mktemp('footage') / 'demo')
    make_demo_footage(root, train_clips=1, val_clips=1, num_frames=12, gt_height=256, gt_width=256, progress=False)
    return root


def test_tiny_run_writes_every_row_target_page_and_plot(footage, narrow_checkpoint, tmp_path):
    assert script_main('benchmark_streaming')(['--checkpoint', narrow_checkpoint, '--footage', footage,
                                               '--out', str(tmp_path), '--name', 's', *TINY]) == 0
    result = json.loads((tmp_path / 's.json').read_text())
    quality = {r['label']: r for r in result['quality']['rows']}
    assert list(quality) == ['whole sequence', 'windowed 5/2', 'stateful 1/0', 'stateful 5/2']
    assert result['quality']['clips'][0]['frames'] == 12
    assert all(15 < r['psnr_vs_gt_db'] < 40 for r in quality.values())
    # the lookahead brings the backward branch closer to the whole sequence's than none at all
    assert 40 < quality['stateful 1/0']['psnr_vs_whole_db'] < quality['stateful 5/2']['psnr_vs_whole_db']
    assert quality['stateful 1/0']['latency_frames']['max'] == 0
    assert quality['stateful 5/2']['latency_frames']['max'] == 6  # interval - 1 + lookahead
    assert quality['windowed 5/2']['latency_frames']['max'] == 8  # the first window's first frame
    assert quality['stateful 5/2']['network_frames_per_output_frame'] == {'backward': pytest.approx(16 / 12),
                                                                          'forward_and_tail': 1.0}
    macs = {label: r['macs_per_delivered_frame'] for label, r in quality.items()}
    assert macs['whole sequence'] < macs['stateful 5/2'] < macs['windowed 5/2']

    arch, = result['speed']
    rows = {r['name']: r for r in arch['rows']}
    assert set(rows) == {'openvino-int8 | windowed 5/2', 'openvino-int8 | stateful 1/0',
                         'openvino-int8 | stateful 5/2', 'torch-pruned | windowed 5/2',
                         'torch-pruned | stateful 5/2', 'onnxruntime-dense | windowed 5/2'}
    assert all(r['fps'] > 0 and len(r['fps_runs']) == 1 for r in rows.values())
    ov = rows['openvino-int8 | stateful 5/2']
    assert ov['fps_vs_windowed_5_2'] == pytest.approx(ov['fps'] / rows['openvino-int8 | windowed 5/2']['fps'])
    assert ov['state_mib'] > 0 and rows['openvino-int8 | windowed 5/2']['state_mib'] == 0
    assert ov['macs_per_delivered_frame'] < rows['onnxruntime-dense | windowed 5/2']['macs_per_delivered_frame']
    assert [bool(r['paced']) for r in rows.values()] == [r['engine'] == 'openvino-int8' for r in rows.values()]
    assert ov['paced']['frame_period_ms'] == pytest.approx(arch['frame_period_ms']['openvino-int8'])
    per_frame = arch['per_frame']
    assert per_frame['engine'] == 'openvino-int8' and per_frame['frames_out'] == 10
    assert per_frame['latency_frames']['max'] == 0 and per_frame['step_p50_ms'] > 0

    targets = result['targets']
    assert [t['engine'] for t in targets] == ['openvino-int8', 'torch-pruned', 'openvino-int8', 'openvino-int8']
    assert targets[2]['measured'] == pytest.approx(ov['fps'] / rows['onnxruntime-dense | windowed 5/2']['fps'])
    assert targets[3]['met'] == (per_frame['end_to_end_p95_ms'] <= per_frame['frame_period_ms']
                                 + per_frame['step_p50_ms'])
    assert result['machine']['load_average_after'] and '--tiny' in result['command']

    page = (tmp_path / 's.md').read_text()
    assert page == markdown(result) and result['machine']['cpu_model'] in page and '## Targets' in page
    image = cv2.imread(str(tmp_path / 's.png'))
    assert image is not None and image.shape[1] > 1000
    assert not [f for f in os.listdir(tmp_path) if f.startswith('.tmp_')]


@pytest.mark.parametrize('flags, message', [
    (['--windowed', '5/1'], 'the targets compare windowed'),
    (['--stateful', '0/2', '5/2', '1/0'], 'interval: must be an integer >= 1'),
    (['--windowed', '5/2', '4/4'], 'overlap: must be an integer with 0 <= overlap < interval'),
    (['--frames', '19'], 'frames: the speed clip must be longer than the longest call (19 frames)'),
    (['--engines', 'openvino-int8', '--full-grid', 'torch-pruned'], "full_grid: ['torch-pruned'] not among engines"),
    (['--pace-margin', '1'], 'pace_margin: must be > 1'),
    (['--iconvsr-size', '64', '32'], 'sizes: iconvsr needs an LR (height, width) of at least 64x64'),
    (['--mac-budget', '1.5'], 'mac_budget'),
    (['--windowed', '5-2'], 'expected INTERVAL/N'),
    (['--engines', 'tensorrt'], "invalid choice: 'tensorrt'"),
])
def test_bad_settings_fail_before_work(flags, message, footage, narrow_checkpoint, tmp_path, capsys):
    started = time.perf_counter()
    with pytest.raises(SystemExit) as exit_info:
        script_main('benchmark_streaming')(['--checkpoint', narrow_checkpoint, '--footage', footage,
                                            '--out', str(tmp_path / 'out'), *flags])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert time.perf_counter() - started < 5 and not (tmp_path / 'out').exists()


def test_missing_teacher_fails_before_work(footage, tmp_path, capsys):
    with pytest.raises(SystemExit):
        script_main('benchmark_streaming')(['--checkpoint', str(tmp_path / 'none.pth'), '--footage', footage,
                                            '--out', str(tmp_path / 'out')])
    assert 'does not exist' in capsys.readouterr().err and not (tmp_path / 'out').exists()


def test_paced_source_releases_one_frame_per_period(tmp_path):
    path = write_clip(moving_clip(5, 64, 64), str(tmp_path / 'clip'))
    source = PacedSource(open_frame_source(path), 0.05)
    started = time.perf_counter()
    arrivals = [time.perf_counter() - started for _ in source]
    source.close()
    assert source.fps == pytest.approx(20) and len(arrivals) == 5
    assert all(at >= 0.05 * k - 1e-3 for k, at in enumerate(arrivals)) and arrivals[-1] < 0.2 + 0.15


def test_call_macs_count_the_traced_calls_of_full_size_basicvsr():
    cls, options = OFFICIAL_MODELS['basicvsr']
    net = cls(**options)
    per_frame = count_model_complexity(net, 96, 64)['macs_per_frame']
    assert macs_per_delivered_frame(net, 64, 96, 5, overlap=2) / per_frame == pytest.approx(1.8, abs=0.05)
    # the backward trunk and its flow are about 40 % of the MACs: 1 + 0.4 * lookahead / interval
    assert macs_per_delivered_frame(net, 64, 96, 5, lookahead=2) / per_frame == pytest.approx(1.16, abs=0.04)
    assert macs_per_delivered_frame(net, 64, 96, 1, lookahead=0) / per_frame == pytest.approx(1.0, abs=0.06)
