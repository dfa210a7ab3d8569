"""scripts/benchmark_data.py on small demo footage: prepare_footage cases, loaders and a training step timed, the
saved JSON/Markdown/PNG; bad settings refused before work. CPU, seconds."""
import json

import pytest
from conftest import script_main

from vsrcompress.bench.machine import machine_line


pytestmark = pytest.mark.usefixtures('one_thread')


def test_small_run_times_every_case_and_writes_the_table(tmp_path):
    assert script_main('benchmark_data')(['--frames', '15', '--batches', '2', '--train-iters', '1', '--train-clips',
                                          '4', '--gt-size', '256', '256', '--workers', '0',
                                          '--output-dir', str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ['data_throughput.json', 'data_throughput.md',
                                                          'data_throughput.png']
    result = json.loads((tmp_path / 'data_throughput.json').read_text())
    cases = {row['case']: row for row in result['prepare']}
    assert list(cases) == ['make_demo_footage (render + write)', 'frame folder, clean', 'mp4, clean',
                           'frame folder, clean, +LMDB', 'frame folder, blur+noise+JPEG', 'frame folder, mp4v codec']
    assert cases['make_demo_footage (render + write)']['frames'] == (4 + 2) * 15  # 4 train + 2 val clips
    assert all(row['frames'] == 4 * 15 and row['frames_per_s'] > 0 for row in result['prepare'][1:])
    assert list(result['loader']) == ['demo options, disk', 'fine-tune window, disk', 'demo options, lmdb',
                                      'fine-tune window, lmdb']
    demo, finetune = result['loader']['demo options, disk'], result['loader']['fine-tune window, lmdb']
    assert (demo['workers'], demo['batch'], demo['num_frame'], demo['samples']) == (0, 2, 5, 4)
    assert (finetune['workers'], finetune['batch'], finetune['num_frame'], finetune['samples']) == (0, 4, 15, 8)
    assert result['training']['samples'] == 2 and result['training']['samples_per_s'] > 0
    assert result['command'].startswith('python scripts/benchmark_data.py --frames 15')
    table = (tmp_path / 'data_throughput.md').read_text()
    assert result['machine']['load_average_after'] and machine_line(result['machine']) in table
    assert f"| mp4, clean | 60 | {cases['mp4, clean']['seconds']} | {cases['mp4, clean']['frames_per_s']} |" in table
    assert f"| loader: fine-tune window, lmdb | 0 | 4 | 15 x 256 | {finetune['samples_per_s']} |" in table
    assert (tmp_path / 'data_throughput.png').read_bytes()[:4] == b'\x89PNG'


def test_too_short_clips_are_refused_before_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script_main('benchmark_data')(['--frames', '10', '--output-dir', str(tmp_path / 'out')])
    assert exit_info.value.code == 2 and 'frames >= 15 (the fine-tune window)' in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
