"""scripts/benchmark_qat.py on a tiny FP32 checkpoint and tiny footage: every row, size and step time in the JSON,
the Markdown and PNG written, the INT8 checkpoint reloading to the QAT network; bad input failing before work."""
import json
import os

import cv2
import pytest
import torch

from conftest import NARROW_WIDTHS, script_main
from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet
from vsrcompress.quantization import calibrate, export_int8_checkpoint, quantize_network

ARCH = {'type': 'BasicVSRNet', 'num_feat': 8, 'num_block': 1, 'scale': 4}
TINY = ['--calibrators', 'max', 'percentile', '--skip-parts', '--qat-iters', '2', '--frames', '2',
        '--calib-windows', '2', '--batch-size', '1', '--timing-rounds', '2', '--threads', '1', '--device', 'cpu',
        '--timing-devices', 'cpu']

pytestmark = pytest.mark.usefixtures('one_thread')


def run_script(argv: list[str]) -> int:
    return script_main('benchmark_qat')(argv)


def test_benchmark_writes_every_row_size_and_step_time(tiny_footage, narrow_checkpoint, tmp_path):
    assert run_script(['--checkpoint', narrow_checkpoint, '--footage', tiny_footage, '--out', str(tmp_path),
                       '--name', 'q', *TINY]) == 0
    result = json.loads((tmp_path / 'q.json').read_text())
    rows = {r['name']: r for r in result['quality']}
    assert list(rows) == ['FP32', 'PTQ max', 'PTQ percentile', 'QAT', 'INT8 checkpoint']
    assert all(20 < r['psnr'] < 60 and 0 < r['ssim'] <= 1 for r in rows.values())
    assert abs(rows['PTQ max']['delta_db']) < 0.5  # 8-bit PTQ of a smooth network is close to float
    best = max(('max', 'percentile'), key=lambda c: rows[f'PTQ {c}']['psnr'])
    assert rows['QAT']['calibrator'] == best and rows['QAT']['iters'] == 2
    assert rows['QAT']['psnr'] != rows[f'PTQ {best}']['psnr']  # the two steps changed the network
    assert rows['INT8 checkpoint']['psnr'] == rows['QAT']['psnr']  # the exported file is the QAT network
    assert result['config']['float_convs'] == 0 and result['config']['val_clips'] == 1

    sizes = result['sizes']
    assert sizes['ratio'] == sizes['int8_bytes'] / sizes['fp32_bytes'] < 0.45  # int8 weights; tiny-file overheads
    times = result['step_time']['cpu']
    assert len(times['fp32_ms_all']) == len(times['qat_ms_all']) == 2 and times['fp32_ms'] > 0
    assert times['ratio'] == pytest.approx(times['qat_ms'] / times['fp32_ms'])
    assert times['batch'] == [1, 2, 3, 64, 64]
    targets = result['targets']
    assert len(targets) == 3 and all(t['met'] == (t['value'] <= t['limit']) for t in targets)
    assert result['machine']['load_average_after'] and '--qat-iters 2' in result['command']

    text = (tmp_path / 'q.md').read_text()
    assert '| PTQ percentile | percentile |' in text and '| QAT | ' in text and f"{sizes['int8_bytes']:,}" in text
    image = cv2.imread(str(tmp_path / 'q.png'))
    assert image is not None and image.shape[1] > 1000
    assert not [f for f in os.listdir(tmp_path) if f.startswith('.tmp_')]


def test_bad_input_fails_before_work(tiny_footage, narrow_checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_script(['--checkpoint', narrow_checkpoint, '--footage', tiny_footage, '--calibrators', 'minmax'])
    assert "invalid choice: 'minmax'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_script(['--checkpoint', narrow_checkpoint, '--footage', tiny_footage, '--out', str(tmp_path),
                    '--patch', '80', *TINY])
    assert 'patch: 80 is larger than the smallest LR training frame side' in capsys.readouterr().err

    net = BasicVSRNet(num_feat=8, num_block=1, widths=NARROW_WIDTHS)
    report = quantize_network(net, {})
    calibrate(net, [torch.rand(1, 2, 3, 64, 64)], {})
    int8 = str(tmp_path / 'int8.pth')
    export_int8_checkpoint(net, {}, report, int8, extra={'arch': ARCH})
    with pytest.raises(SystemExit):
        run_script(['--checkpoint', int8, '--footage', tiny_footage, '--out', str(tmp_path), *TINY])
    assert 'is an INT8 checkpoint; the benchmark quantizes an FP32 network' in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'qat.json')
