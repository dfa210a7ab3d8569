"""scripts/benchmark_deploy.py on a tiny checkpoint and footage: the four backends timed and compared, streaming,
the interval/overlap sweep, the saved JSON/Markdown/PNG; bad settings refused before work. CPU, seconds."""
import json

import pytest
from conftest import script_main


pytestmark = pytest.mark.usefixtures('one_thread')


def test_tiny_run_writes_latency_streaming_and_sweep(narrow_checkpoint, tiny_footage, tmp_path):
    assert script_main('benchmark_deploy')([
        '--checkpoint', narrow_checkpoint, '--clips', tiny_footage, '--lq-size', '64', '64', '--interval', '2',
        '--overlap', '1', '--rounds', '2', '--stream-frames', '4', '--stream-rounds', '1', '--sweep-frames', '4',
        '--sweep-intervals', '2', '3', '--sweep-overlaps', '0', '1', '--threads', '1', '--out', str(tmp_path),
        '--name', 'tiny']) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ['tiny.json', 'tiny.md', 'tiny.png']
    result = json.loads((tmp_path / 'tiny.json').read_text())
    assert result['config']['network'] == 'BasicVSRNet 8 ch, 1 blocks' and result['config']['window_frames'] == 4
    assert result['config']['weights'] == narrow_checkpoint and result['command'].endswith('--name tiny')
    latency = result['latency']
    assert list(latency) == ['torch fp32', 'onnxruntime fp32', 'onnxruntime int8-ort', 'onnxruntime int8-trt']
    assert latency['torch fp32']['psnr_vs_torch_fp32_db'] == 'inf'  # JSON has no infinity
    assert latency['onnxruntime fp32']['psnr_vs_torch_fp32_db'] > 50  # the same float network
    assert 20 < latency['onnxruntime int8-ort']['psnr_vs_torch_fp32_db'] < 80  # quantized: close, not equal
    for row in latency.values():
        assert len(row['ms_per_frame_all']) == 2 and row['ms_per_frame_best'] <= row['ms_per_frame_median']
        assert 0 < row['psnr_vs_gt_db'] < 60
    assert latency['onnxruntime fp32']['speedup_vs_ort_fp32'] == 1
    assert set(result['streaming']) == {'onnxruntime fp32', 'onnxruntime int8-ort'}
    assert all(row['frames_out'] == 4 and len(row['runs']) == 1 for row in result['streaming'].values())
    sweep = [(row['interval'], row['overlap']) for row in result['sweep']]
    assert sweep == [('full', 0), (2, 0), (2, 1), (3, 0), (3, 1)]
    psnr = {(row['interval'], row['overlap']): row['psnr_vs_full_db'] for row in result['sweep']}
    assert 30 < psnr[(2, 0)] < 120 and 30 < psnr[(3, 0)] < 120  # cut recurrences: close, not equal
    assert psnr[(2, 1)] == 'inf'  # interval 2 + 2 x overlap 1 = the whole 4-frame sequence in one call
    assert set(result['load']) == {'setup', 'latency', 'streaming', 'sweep'}
    assert set(result['load']['latency']['before']) == {'load_1min', 'load_5min', 'load_15min'}
    assert result['machine']['cpu_model'] and result['machine']['load_average_after']
    table = (tmp_path / 'tiny.md').read_text()
    ort_fp32 = latency['onnxruntime fp32']
    assert f"| onnxruntime fp32 | {ort_fp32['ms_per_frame_median']:.0f} |" in table
    assert '## Interval / overlap (torch FP32, 4 frames' in table and '| full | 0 | 4 | inf |' in table
    assert (tmp_path / 'tiny.png').read_bytes()[:4] == b'\x89PNG'


def test_bad_settings_are_refused_before_work(tmp_path, capsys):
    main = script_main('benchmark_deploy')
    for argv, message in ((['--interval', '3', '--overlap', '3'], 'interval >= 2 and 0 <= overlap < interval'),
                          (['--sweep-frames', '10'], 'sweep_frames must exceed the largest interval (15)'),
                          (['--clips', str(tmp_path / 'none')], f'clips: {tmp_path / "none"} does not exist')):
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, '--out', str(tmp_path / 'out')])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
