"""scripts/benchmark_pruning.py on tiny networks: every variant timed and counted, per-part ratios, checkpoints that
rebuild, torch-pruning's counter agreeing with the engine, a bad ratio refused before work."""
import json

import pytest
import torch
from conftest import script_main

from vsrcompress.bench.machine import machine_line
from vsrcompress.bench.pruning_speed import PruningSpeedConfig, ratio_target, run
from vsrcompress.checkpoint import load_network

TINY = ['--num-feat', '32', '--num-block', '1', '--lq-size', '64', '64', '--mac-size', '64', '64', '--frames', '5',
        '--repeats', '1', '--warmup', '0', '--threads', '1', '--formats', 'contiguous', '--no-memory']


def test_every_variant_is_timed_counted_and_saved(tmp_path):
    assert script_main('benchmark_pruning')(['--archs', 'basicvsr', 'iconvsr', '--ratios', '0.5', '0.5,edvr=0.75',
                                             '--mac-budget', '0.2', '--out', str(tmp_path), '--name', 'speed',
                                             '--save-checkpoints', str(tmp_path / 'ckpt'), *TINY]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {'speed.json', 'speed.md', 'speed.png', 'ckpt'}
    saved = json.loads((tmp_path / 'speed.json').read_text())
    results = {r['arch']: r for r in saved['results']}
    machine = saved['meta']['machine']
    assert machine['threads'] == 1 and machine['load_average_after']
    assert ', model ' in machine['cpu_model']  # family and model numbers: generations apart under one brand name
    assert machine_line(machine) in (tmp_path / 'speed.md').read_text()
    for arch, result in results.items():
        rows = {r['variant']: r for r in result['rows']}
        assert list(rows) == ['dense', 'ratio 0.5', 'ratio 0.5 edvr 0.75', 'MACs <= 0.2']
        assert rows['dense']['mac_fraction'] == 1 and rows['dense']['speedup']['contiguous'] == 1
        assert rows['MACs <= 0.2']['mac_fraction'] <= 0.2 < rows['ratio 0.5']['mac_fraction'] < 1
        assert all(r['median_ms_per_frame']['contiguous'] > 0 for r in rows.values())
        check = result['tp_counter_check']['MACs <= 0.2']
        assert abs(check['counted'] - check['reported']) <= 1e-6 * check['counted']
        for label, slug in (('dense', 'dense'), ('ratio 0.5 edvr 0.75', 'ratio0.5edvr0.75'), ('MACs <= 0.2', 'mac0.2')):
            path = tmp_path / 'ckpt' / f'{arch}_{slug}.pth'
            assert torch.load(path, weights_only=True)['widths'] == rows[label]['widths']
            net = load_network(str(path)).net
            assert sum(p.numel() for p in net.parameters()) == rows[label]['params']
    icon = {r['variant']: r['widths'] for r in results['iconvsr']['rows']}
    assert icon['ratio 0.5']['edvr'] == 16 and icon['ratio 0.5 edvr 0.75']['edvr'] == 8
    assert icon['ratio 0.5']['backward'] == icon['ratio 0.5 edvr 0.75']['backward'] == 16
    assert '| ratio 0.5 edvr 0.75 | 16/16, EDVR 8 |' in (tmp_path / 'speed.md').read_text()


def test_peak_memory_of_each_variant_from_a_child():
    config = PruningSpeedConfig(archs=('basicvsr',), num_feat=16, num_block=1, lq_size=(64, 64), mac_size=(64, 64),
                                frames=2, repeats=1, warmup=0, threads=1, ratios=[ratio_target('0.5')], mac_budget=0,
                                formats=('contiguous',), memory_timeout=300)
    rows = run(config, log=None)['results'][0]['rows']
    assert [r['variant'] for r in rows] == ['dense', 'ratio 0.5']
    for row in rows:
        assert 0 < row['forward_peak_mib'] < row['peak_rss_mib'], row


def test_bad_ratio_is_refused_before_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script_main('benchmark_pruning')(['--ratios', '0.5,head=0.3', '--out', str(tmp_path)])
    assert exit_info.value.code == 2
    assert "argument --ratios: '0.5,head=0.3': ratios must be in (0, 1), parts in" in capsys.readouterr().err
    with pytest.raises(ValueError, match="formats: \\['nhwc'\\]"):
        run(PruningSpeedConfig(formats=('nhwc',)), log=None)
    assert not list(tmp_path.iterdir())
