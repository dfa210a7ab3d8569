"""The one-YAML recipe: every stage end to end on generated footage, a real interruption inside each training
stage resumed with --auto_resume, and bad recipes rejected before anything runs."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import pytest
import torch
import yaml
from conftest import NARROW_WIDTHS, REPO, tiny_train_options

from vsrcompress.quantization import INT8_FORMAT
from vsrcompress.recipe import parse_recipe

DISTILL = {'type': 'CharbonnierLoss', 'loss_weight': 1.0, 'reduction': 'mean'}
LONG = 1000  # iterations a stage would run if it were not interrupted


def tiny_recipe(footage: str, stages: list[str], total_iter: int = 4) -> dict:
    opt = tiny_train_options(footage, name='tiny_recipe', total_iter=total_iter, widths=NARROW_WIDTHS)
    del opt['model_type']
    opt['train']['fix_flow'] = None
    opt['logger']['use_tb_logger'] = False
    opt['recipe'] = {
        'stages': stages,
        'teacher': {},
        'prune': {'pruning': {'ratio': 0.5, 'reference_size': [64, 64], 'round_to': 2, 'min_width': 2, 'steps': 1},
                  'train': {'distill_opt': DISTILL}},
        'qat': {'quantization': {'calib_batches': 2, 'ptq_val_clips': 1}, 'train': {'distill_opt': DISTILL}},
        'export': {'interval': 2, 'lookahead': 1, 'height': 64, 'width': 64},
        'report': {'input_size': [64, 64], 'frames': 3, 'repeats': 1, 'memory': False},
    }
    return opt


def compress(workdir, opt: dict, *args: str) -> subprocess.Popen:
    """Start a copy of the repo's compress.py in ``workdir`` (its own process group, so a kill reaches stages)."""
    shutil.copy(os.path.join(REPO, 'compress.py'), workdir / 'compress.py')
    (workdir / 'recipe.yml').write_text(yaml.safe_dump(opt, sort_keys=False))
    return subprocess.Popen([sys.executable, str(workdir / 'compress.py'), '-opt', str(workdir / 'recipe.yml'),
                             *args], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def kill_when(proc: subprocess.Popen, path, timeout: float = 600) -> None:
    """SIGKILL the whole run as soon as ``path`` exists (a checkpoint in the middle of a stage)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise AssertionError(f'the run ended ({proc.returncode}) before {path} appeared:\n{proc.stdout.read()}')
        assert time.monotonic() < deadline, f'{path} did not appear'
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def finish(proc: subprocess.Popen, timeout: float = 900) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-6000:]
    return out


def test_recipe_runs_every_stage_and_resumes_inside_each(tiny_footage, tmp_path):
    stages = ['teacher', 'prune', 'qat', 'export', 'report']
    opt = tiny_recipe(tiny_footage, stages, total_iter=LONG)
    for stage in ('teacher', 'prune', 'qat'):  # interrupt each training stage after its checkpoint at iteration 2
        proc = compress(tmp_path, opt, *(['--auto_resume'] if stage != 'teacher' else []))
        kill_when(proc, tmp_path / 'experiments' / f'tiny_recipe_{stage}' / 'training_states' / '2.state')
        assert not (tmp_path / 'experiments' / f'tiny_recipe_{stage}' / 'models' / 'net_g_latest.pth').exists()
        opt['recipe'][stage]['train'] = {**opt['recipe'][stage].get('train', {}), 'total_iter': 4}
    out = finish(compress(tmp_path, opt, '--auto_resume'))

    for stage in ('teacher', 'prune', 'qat'):
        exp = tmp_path / 'experiments' / f'tiny_recipe_{stage}'
        logs = ''.join(p.read_text() for p in exp.glob('train_*.log'))
        assert 'Resuming training from epoch' in logs and 'iter: 2.' in logs, stage
        assert (tmp_path / 'experiments' / 'tiny_recipe' / 'options' / f'{stage}.yml').exists()
    dense = torch.load(tmp_path / 'experiments/tiny_recipe_teacher/models/net_g_latest.pth', weights_only=True)
    pruned = torch.load(tmp_path / 'experiments/tiny_recipe_prune/models/net_g_latest.pth', weights_only=True)
    int8 = torch.load(tmp_path / 'experiments/tiny_recipe_qat/models/net_g_int8.pth', weights_only=True)
    assert sum(v.numel() for v in pruned['params'].values()) < sum(v.numel() for v in dense['params'].values())
    assert int8['format'] == INT8_FORMAT and int8['widths'] == pruned['widths']

    folder = tmp_path / 'experiments' / 'tiny_recipe'
    exports = json.loads((folder / 'deploy' / 'export.json').read_text())
    assert [e['precision'] for e in exports] == ['fp32', 'int8-ort', 'int8-trt']
    assert all(os.path.isfile(e['onnx']) and e['checks'] for e in exports)
    assert all(os.path.isfile(e['openvino']['xml']) and e['openvino']['inference_precision'] == 'f32'
               and e['openvino']['checks'] for e in exports)
    report = json.loads((folder / 'report' / 'report.json').read_text())
    assert [r['name'] for r in report['complexity']] == ['dense', 'pruned', 'pruned INT8']
    macs = [r['macs_per_frame'] for r in report['complexity']]
    assert macs[1] < macs[0] and macs[2] == macs[1]
    assert set(report['quality']) == {'bicubic', 'dense', 'pruned', 'pruned INT8'}
    assert all(len(frames['psnr']) == 4 for q in report['quality'].values() for frames in q['per_frame'].values())
    page = (folder / 'report' / 'report.md').read_text()
    assert all(r['latency_ms_per_frame']['openvino-cpu-f32'] > 0 for r in report['complexity'])
    deployed = report['openvino_quality']  # the compressed networks as OpenVINO runs them, vs PyTorch
    assert set(deployed) == {'pruned', 'pruned INT8'} and deployed['pruned INT8']['graph'] == 'int8-trt'
    assert abs(deployed['pruned']['psnr_minus_pytorch']) < 0.01
    assert abs(deployed['pruned INT8']['psnr_minus_pytorch']) < 0.5
    # header + 4 rows, the OpenVINO quality table: header + 2 rows, the streaming table: header + 3 networks x 2
    # modes in PyTorch + the 3 stateful OpenVINO IRs
    assert page.count('\n| ') == 18 and '![per-frame PSNR](per_frame_psnr.png)' in page
    streaming = report['streaming']
    assert [(r['engine'].split()[0], r['mode']) for r in streaming] == [('torch', 'stateful'), ('torch', 'windowed')] * 3 \
        + [('openvino', 'stateful')] * 3
    for row in streaming:  # 4 frames, interval 2: stateful computes the forward branch and tail once per frame
        net = row['network_frames_per_output_frame']
        assert row['frames'] == 4 and row['fps'] > 0 and row['end_to_end_latency']['p95_ms'] > 0
        assert (net['forward_and_tail'] == 1.0) if row['mode'] == 'stateful' else (net['forward_and_tail'] > 1.0)
    assert '## Streaming: delivered frames' in page
    assert '- pruned: the `prune` stage' in page and 'ratio: 0.5' in page and '% of the dense MACs' in page
    assert 'every quantizable convolution is INT8' in page and 'bound by per-layer overhead' in page
    for png in ('per_frame_psnr.png', 'complexity.png'):
        assert cv2.imread(str(folder / 'report' / png)) is not None
    assert 'recipe tiny_recipe finished' in out and 'report/report.md' in out
    # a short progress view on the console, every line of the stages in their console logs
    assert 'recipe: [3/3] qat: iter 4/4, stage ETA' in out and 'recipe training ETA about' in out
    assert 'BasicVSRNet(' not in out and 'Network: ' not in out
    console = (folder / 'logs' / 'qat.console.log').read_text()
    assert 'Network: ' in console and 'iter:       4,' in console

    opt['recipe']['stages'] = ['teacher', 'prune', 'qat']  # a rerun once everything is trained skips each stage
    again = finish(compress(tmp_path, opt, '--auto_resume'))
    assert all(f'stage {s} is done' in again for s in ('teacher', 'prune', 'qat')) and 'recipe: [' not in again


def test_recipe_from_a_dense_checkpoint_without_teacher(tiny_footage, narrow_checkpoint, tmp_path):
    """Stages are skippable: start from a dense checkpoint, QAT only, then export (no pruning, no report)."""
    opt = tiny_recipe(tiny_footage, ['qat', 'export'], total_iter=2)
    opt['name'] = 'qat_only'
    opt['path']['pretrain_network_g'] = narrow_checkpoint
    opt['path']['param_key_g'] = 'params'
    opt['recipe']['export']['precisions'] = ['fp32', 'int8-ort']
    finish(compress(tmp_path, opt))
    exports = json.loads((tmp_path / 'experiments/qat_only/deploy/export.json').read_text())
    assert exports[0]['checkpoint'] == opt['path']['pretrain_network_g'] and exports[1]['precision'] == 'int8-ort'
    assert not (tmp_path / 'experiments' / 'qat_only_prune').exists()


@pytest.mark.parametrize('change, message', [
    (lambda o: o['recipe'].update(stages=['qat', 'prune']), r'out of order; stages run in the order'),
    (lambda o: o['recipe'].update(stages=['prune', 'distill']), r"unknown stage\(s\) \['distill'\]; allowed"),
    (lambda o: o['recipe'].update(stages=[]), r'recipe.stages: expected a non-empty list'),
    (lambda o: o['recipe'].update(quantize={}), r"recipe: unknown key\(s\) \['quantize'\]"),
    (lambda o: o['recipe']['prune'].update(prunning={}), r"recipe.prune: unknown key\(s\) \['prunning'\]"),
    (lambda o: o['recipe']['export'].update(precisions=['int4']), r'recipe.export.precisions: expected a list from'),
    (lambda o: o['recipe']['report'].update(input_size=[640]), r'recipe.report.input_size'),
    (lambda o: o['recipe']['prune']['pruning'].update(criterion='l3'), r"pruning.criterion: 'l3' is unknown"),
    (lambda o: o['recipe'].update(stages=['prune', 'export']), r'stage .prune. needs a dense network'),
    (lambda o: o['recipe'].update(stages=['teacher', 'prune', 'export']), r"\['int8-ort', 'int8-trt'\] need the INT8"),
    (lambda o: o['path'].update(pretrain_network_g='missing.pth'), r'path.pretrain_network_g: missing.pth does not'),
    (lambda o: o.pop('recipe'), r'recipe: missing'),
])
def test_bad_recipe_is_rejected_before_anything_runs(tiny_footage, tmp_path, change, message):
    opt = tiny_recipe(tiny_footage, ['teacher', 'prune', 'qat', 'export', 'report'])
    change(opt)
    with pytest.raises(ValueError, match=message):
        parse_recipe(opt, str(tmp_path))


def test_compress_py_reports_a_bad_recipe_and_writes_nothing(tiny_footage, tmp_path):
    opt = tiny_recipe(tiny_footage, ['export', 'prune'])
    proc = compress(tmp_path, opt)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1 and 'error: recipe.stages' in out and 'out of order' in out
    assert not (tmp_path / 'experiments').exists()


def test_a_failing_stage_shows_the_end_of_its_console(tiny_footage, tmp_path):
    """The console is short, so a stage that fails must show why: the tail of its full console log."""
    broken = tmp_path / 'broken.pth'
    broken.write_bytes(b'not a checkpoint')
    opt = tiny_recipe(tiny_footage, ['teacher'], total_iter=2)
    opt['path']['pretrain_network_g'] = str(broken)
    proc = compress(tmp_path, opt)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, out[-3000:]
    assert 'recipe: the last lines of experiments/tiny_recipe/logs/teacher.console.log' in out
    assert 'broken.pth' in out.split('recipe: the last lines of')[1]  # the child's own error, shown
    assert 'error: recipe: stage teacher failed' in out
    assert 'nothing of this stage was saved' in out and '--auto_resume' not in out.split('stage teacher failed')[1]
