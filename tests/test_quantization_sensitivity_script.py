"""scripts/quantization_sensitivity.py on a tiny checkpoint and tiny footage: part and layer units, the measured
suggestion, the files written; bad input failing before work."""
import json
import os

import cv2
import pytest
from conftest import script_main


TINY = ['--calib-windows', '2', '--calib-frames', '2', '--frames', '2', '--threads', '1', '--num-bits', '4']

pytestmark = pytest.mark.usefixtures('one_thread')


def run_script(argv: list[str]) -> int:
    return script_main('quantization_sensitivity')(argv)


def test_part_sensitivity_measures_each_part_and_a_skip_list_within_budget(tiny_footage, narrow_checkpoint, tmp_path):
    assert run_script(['--checkpoint', narrow_checkpoint, '--footage', tiny_footage, '--out', str(tmp_path),
                       '--name', 'parts', '--budget-db', '0.01', *TINY]) == 0
    result = json.loads((tmp_path / 'parts.json').read_text())
    report = result['report']
    assert {s['name'] for s in report['layers']} == set(result['members']) == {
        'spynet', 'first_conv', 'last_conv', 'upsample', 'fusion', 'other'}
    assert result['members']['first_conv'] == ['backward_trunk.main.0', 'forward_trunk.main.0']
    assert report['psnr_quantized'] < report['psnr_float']  # 4 bits cost something
    gains = [s['gain_as_float'] for s in report['layers']]
    assert gains == sorted(gains, reverse=True) and report['suggested_skip']
    assert report['psnr_float'] - report['psnr_with_suggested_skip'] <= 0.01
    assert result['config']['frames'] == 2 and result['config']['val_clips'] and result['config']['analysis_s'] > 0
    text = (tmp_path / 'parts.md').read_text()
    assert '| first_conv | 2 |' in text and 'Suggested float units for a 0.01 dB budget' in text
    image = cv2.imread(str(tmp_path / 'parts.png'))
    assert image is not None and image.shape[1] >= 700
    assert not [f for f in os.listdir(tmp_path) if f.startswith('.tmp_')]


def test_layer_sensitivity_with_spynet_float(tiny_footage, narrow_checkpoint, tmp_path):
    assert run_script(['--checkpoint', narrow_checkpoint, '--footage', tiny_footage, '--out', str(tmp_path),
                       '--name', 'layers', '--units', 'layers', '--skip-parts', 'spynet', *TINY]) == 0
    result = json.loads((tmp_path / 'layers.json').read_text())
    names = [s['name'] for s in result['report']['layers']]
    assert 'conv_last' in names and 'forward_trunk.main.2.0.skip_quant' in names
    assert not any(n.startswith('spynet') for n in names) and result['members'] == {}


def test_bad_input_fails_before_work(tiny_footage, narrow_checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_script(['--checkpoint', str(tmp_path / 'none.pth'), '--footage', tiny_footage])
    assert 'none.pth does not exist' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_script(['--checkpoint', narrow_checkpoint, '--footage', tiny_footage, '--num-bits', '9'])
    assert 'quantization.num_bits' in capsys.readouterr().err
