"""scripts/benchmark_pruning_quality.py on a tiny dense checkpoint and tiny footage: every row and curve point in the
JSON, the Markdown and PNG written, every fine-tune starting from the same pruned network; bad input failing before
work."""
import json
import math
import os

import cv2
import pytest
import torch
from conftest import script_main

from vsrcompress.bench.pruning_quality import BatchSampler
from vsrcompress.data.footage_dataset import FootageRecurrentDataset
from vsrcompress.export import footage_options

TINY = ['--iters', '2', '--eval-every', '1', '--threads', '1']

pytestmark = pytest.mark.usefixtures('one_thread')


def main(argv: list[str]) -> int:
    return script_main('benchmark_pruning_quality')(argv)


def test_benchmark_writes_every_row_curve_and_target(tiny_footage, narrow_checkpoint, tmp_path):
    argv = ['--checkpoint', narrow_checkpoint, '--footage', tiny_footage, '--out', str(tmp_path), '--name', 'pq',
            '--feature-distill-weight', '1', *TINY]
    assert main(argv) == 0
    result = json.loads((tmp_path / 'pq.json').read_text())
    rows = {r['name']: r for r in result['quality']}
    assert list(rows) == ['teacher', 'bicubic', 'pruned', 'plain', 'kd', 'kd_feat']
    assert all(math.isfinite(r['psnr']) and 10 < r['psnr'] < 60 and 0 < r['ssim'] <= 1 for r in rows.values())
    assert rows['pruned']['params'] < rows['teacher']['params']
    assert 0 < rows['pruned']['macs_per_frame'] < rows['teacher']['macs_per_frame']
    assert rows['pruned']['widths']['backward'] == 4 and rows['teacher']['widths']['backward'] == 8
    assert rows['plain']['params'] == rows['kd']['params'] == rows['kd_feat']['params'] == rows['pruned']['params']
    assert rows['plain']['iters'] == rows['kd']['iters'] == rows['kd_feat']['iters'] == 2
    assert rows['kd']['loss_first'] > 0 and rows['kd']['train_s'] > 0
    assert rows['teacher']['delta_db'] == 0 and rows['kd']['delta_db'] == rows['kd']['psnr'] - rows['teacher']['psnr']

    curve = result['curve']
    assert [point['iter'] for point in curve] == [0, 1, 2]
    assert curve[0]['plain'] == curve[0]['kd'] == curve[0]['kd_feat'] == rows['pruned']['psnr']  # one pruned copy
    assert curve[-1]['plain'] == rows['plain']['psnr'] and curve[-1]['kd'] == rows['kd']['psnr']
    assert rows['plain']['psnr'] != rows['pruned']['psnr']  # the steps changed the network
    assert rows['kd']['psnr'] != rows['plain']['psnr']  # the teacher's loss changed the updates
    assert rows['kd_feat']['psnr'] != rows['kd']['psnr']  # and the hidden-state loss changed them again
    assert rows['kd_feat']['loss_first'] > rows['kd']['loss_first']  # the same first batch, one more loss term
    targets = result['targets']
    assert [t['comparison'] for t in targets] == ['<=', '>']
    assert targets[0]['met'] == (targets[0]['value'] <= 0.3) and targets[1]['met'] == (targets[1]['value'] > 0)
    assert targets[1]['value'] == pytest.approx(rows['kd']['psnr'] - rows['plain']['psnr'])
    assert result['config']['pruning']['round_to'] == 4 and result['config']['val_clips'] == 1
    assert result['machine']['load_average_after'] and '--iters 2' in result['command']

    text = (tmp_path / 'pq.md').read_text()
    assert '| pruned + KD fine-tune |' in text and '| pruned + KD + hidden-state fine-tune |' in text
    assert 'KD + hidden states (dB)' in text and '| 2 |' in text and 'KD better than plain' in text
    image = cv2.imread(str(tmp_path / 'pq.png'))
    assert image is not None and image.shape[1] > 600
    assert not [f for f in os.listdir(tmp_path) if f.startswith('.tmp_')]


def test_same_seed_gives_the_same_batches(tiny_footage):
    dataset = FootageRecurrentDataset({**footage_options(tiny_footage, 'train', 4), 'num_frame': 3,
                                       'gt_size': 256, 'use_hflip': True, 'use_rot': True})
    sampler = BatchSampler(dataset, 2, 3)
    first, second = sampler.next(), sampler.next()
    again = BatchSampler(dataset, 2, 3).next()
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], second[0])
    assert first[0].shape == (2, 3, 3, 64, 64) and first[1].shape == (2, 3, 3, 256, 256)


@pytest.mark.parametrize('extra, message', [
    (['--ratio', '1'], 'ratio: the fraction of channels removed must be in (0, 1), got 1.0'),
    (['--ratio', '0'], 'ratio: the fraction of channels removed must be in (0, 1)'),
    (['--iters', '0'], 'iters: must be >= 1'),
    (['--frames', '1'], 'frames: must be >= 2'),
    (['--criterion', 'random'], "invalid choice: 'random'"),
    (['--reference-size', '16', '16'], 'pruning.reference_size'),
    (['--gt-size', '512', *TINY], 'gt_size: 512 is larger than the frames'),
])
def test_bad_options_fail_before_work(tiny_footage, narrow_checkpoint, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit):
        main(['--checkpoint', narrow_checkpoint, '--footage', tiny_footage, '--out', str(tmp_path), *extra])
    assert message in capsys.readouterr().err
    assert not os.listdir(tmp_path)
