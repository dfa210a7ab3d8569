"""benchmark_cpu_backends on tiny networks: every engine and precision timed and compared, the several-inputs part,
the targets, the Markdown and the plot; bad configurations refused before any work. CPU."""
import json
import os

import pytest
from conftest import script_main

from vsrcompress.bench.cpu_backends import REFERENCE, CpuBackendsConfig, markdown, run
from vsrcompress.export.openvino_runtime import bf16_supported

pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def footage(tmp_path_factory) -> str:
    """Demo footage with clips long enough for 5-frame windows."""
    from vsrcompress.footage.demo import make_demo_footage
    root = str(tmp_path_factory.mktemp('footage') / 'demo')
    make_demo_footage(root, train_clips=1, val_clips=1, num_frames=6, gt_height=256, gt_width=256, progress=False)
    return root


def test_tiny_run_measures_every_engine_and_writes_the_result(footage, tmp_path):
    main = script_main('benchmark_cpu_backends')
    assert main(['--archs', 'basicvsr', '--height', '64', '--width', '64', '--repeats', '1', '--warmup', '0',
                 '--threads', '1', '--streams', '2', '--stream-frames', '6', '--clips', footage, '--tiny',
                 '--output-dir', str(tmp_path)]) == 0
    result = json.load(open(tmp_path / 'cpu_backends.json'))
    rows = {r['name']: r for r in result['archs'][0]['rows']}
    precisions = ['f32'] + ['bf16'] * bf16_supported()
    expected = {REFERENCE, 'dense | torch fp32', 'pruned | torch fp32', 'pruned | onnxruntime fp32',
                'pruned int8 | onnxruntime int8-ort'}
    expected |= {f'{v} | openvino {p}' for v in ('dense', 'pruned') for p in precisions}
    expected |= {f'pruned int8 | openvino {g}+{p}' for g in ('int8-trt', 'int8-ort') for p in precisions}
    assert set(rows) == expected
    assert rows[REFERENCE]['speedup_vs_dense_ort_fp32'] == 1.0
    assert rows['pruned | openvino f32']['psnr_vs_reference_db'] > 80  # same network, same math
    assert rows['pruned int8 | openvino int8-trt+f32']['psnr_vs_reference_db'] > 35  # vs the fake-quantized net
    assert rows['pruned | onnxruntime fp32']['macs_per_frame'] < 0.3 * rows[REFERENCE]['macs_per_frame']
    layers = rows['pruned int8 | openvino int8-trt+f32']['openvino_time_by_layer_type']
    assert 'Convolution' in {x['layer_type'] for x in layers} and rows[REFERENCE]['openvino_time_by_layer_type'] is None
    streams = result['streams']
    assert streams['frames_per_input'] == [6, 6] and streams['all_at_once']['aggregate_fps'] > 0
    assert {t['target'].split(' ')[0] for t in result['targets']} == {'pruned', '2'}
    page = (tmp_path / 'cpu_backends.md').read_text()
    assert page == markdown(result) and result['machine']['cpu_model'] in page and 'Several inputs at once' in page
    assert 'OpenVINO time by layer type' in page
    assert os.path.getsize(tmp_path / 'cpu_backends.png') > 0


def test_bad_configurations_fail_before_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # the script: a usage error, exit 2, nothing written
        script_main('benchmark_cpu_backends')(['--archs', 'edvr', '--output-dir', str(tmp_path / 'out')])
    assert exit_info.value.code == 2 and 'archs' in capsys.readouterr().err and not (tmp_path / 'out').exists()
    with pytest.raises(ValueError, match='archs'):
        run(CpuBackendsConfig(archs=('basicvsrpp',)), log=None)
    with pytest.raises(ValueError, match='mac_budget'):
        run(CpuBackendsConfig(mac_budget=1.5), log=None)
    with pytest.raises(ValueError, match='clips'):
        run(CpuBackendsConfig(clips=str(tmp_path / 'missing')), log=None)
