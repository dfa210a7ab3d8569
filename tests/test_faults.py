"""Fault injection: a full disk (a real tmpfs), a truncated video, outputs over inputs, option files that would run
code, a bad option file over a finished experiment, planted and corrupt training states. Each test injects the real
fault and checks the exit code or error, one clear message, nothing half-written at the output, inputs untouched,
and that a rerun or resume works."""
import glob
import hashlib
import json
import os
import pathlib
import re
import runpy
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml

import vsrcompress  # noqa: F401
from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet
from vsrcompress.checkpoint import network_checkpoint, save_atomic
from vsrcompress.compat import _load_training_state
from vsrcompress.video_truncation import TruncatedVideoError

from conftest import REPO, read_train_log, run_entry, tiny_train_options

pytestmark = pytest.mark.usefixtures('one_thread')
SCALE = 2


def script_main(name: str):
    return runpy.run_path(os.path.join(REPO, 'scripts', f'{name}.py'), run_name=f'{name}_under_test')['main']


def digest(path) -> str:
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def write_avi(path, count: int, size: int = 64) -> str:
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 10, (size, size))
    for _ in range(count):
        writer.write(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    writer.release()
    return str(path)


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory) -> str:
    torch.manual_seed(0)
    net = BasicVSRNet(num_feat=8, num_block=1, scale=SCALE, widths={'spynet': [[8, 8, 8, 8]] * 6, 'upsample': [8],
                                                                     'hr': 8})
    path = str(tmp_path_factory.mktemp('faults') / 'net.pth')
    save_atomic(network_checkpoint(net, {'type': 'BasicVSRNet', 'num_feat': 8, 'num_block': 1, 'scale': SCALE}), path)
    return path


@pytest.fixture
def full_disk(tmp_path):
    """A real 32 KiB tmpfs: writes past it fail with ENOSPC as on a full disk."""
    mount = tmp_path / 'small_disk'
    mount.mkdir()
    proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=32k', 'tmpfs', str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f'cannot mount a tmpfs here: {proc.stderr.decode().strip()}')
    yield mount
    subprocess.run(['umount', str(mount)], check=True)


def infer_args(source, output, checkpoint, *extra) -> list[str]:
    return ['--input', str(source), '--output', str(output), '--checkpoint', checkpoint, '--interval', '2',
            '--overlap', '1', '--no-progress', *extra]


# ------------------------------------------------------------------------------------------------ full disk
def test_full_disk_video_output_exits_1_and_publishes_nothing(tmp_path, full_disk, checkpoint):
    source = write_avi(tmp_path / 'in.avi', 12)
    before = digest(source)
    output = full_disk / 'out.avi'
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'infer_video.py'),
                           *infer_args(source, output, checkpoint)], capture_output=True, text=True, timeout=300)
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert len(errors) == 1 and 'out.avi' in errors[0] and 'disk full' in errors[0], proc.stderr[-2000:]
    assert os.listdir(full_disk) == []  # no output, no partial, no temporary
    assert digest(source) == before
    # rerun onto a disk with room: complete, 12 frames
    assert script_main('infer_video')(infer_args(source, tmp_path / 'out.avi', checkpoint)) == 0
    assert int(cv2.VideoCapture(str(tmp_path / 'out.avi')).get(cv2.CAP_PROP_FRAME_COUNT)) == 12


def test_full_disk_frame_folder_and_report(tmp_path, full_disk, checkpoint):
    source = write_avi(tmp_path / 'in.avi', 12)
    main = script_main('infer_video')
    with pytest.raises(OSError, match='cannot write frame .* of .*frames.*disk full'):
        main(infer_args(source, full_disk / 'frames', checkpoint))
    assert os.listdir(full_disk) == []
    # the report on the full disk: the output (on a disk with room) is not published either
    (full_disk / 'filler').write_bytes(b'x' * 32 * 1024)
    with pytest.raises(OSError, match='report: cannot write .*run.json'):
        main(infer_args(source, tmp_path / 'out.avi', checkpoint, '--report', str(full_disk / 'run.json')))
    assert not os.path.exists(tmp_path / 'out.avi') and os.listdir(full_disk) == ['filler']
    assert not glob.glob(str(tmp_path / '.tmp_*'))  # the frames stay beside it, under the partial name
    assert int(cv2.VideoCapture(str(tmp_path / 'out.partial.avi')).get(cv2.CAP_PROP_FRAME_COUNT)) == 12


# ------------------------------------------------------------------------------------------------ damaged input
def test_truncated_input_is_an_error_unless_allowed(tmp_path, checkpoint):
    full = open(write_avi(tmp_path / 'full.avi', 40), 'rb').read()
    source = tmp_path / 'damaged.avi'
    source.write_bytes(full[:len(full) * 4 // 10])
    capture = cv2.VideoCapture(str(source))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 40  # the container still says 40
    capture.release()
    main = script_main('infer_video')
    with pytest.raises(TruncatedVideoError, match=r'damaged.avi: the container reports 40 frames but decoding '
                                                  r'stopped after \d+.*--allow-truncated'):
        main(infer_args(source, tmp_path / 'out.avi', checkpoint))
    assert not os.path.exists(tmp_path / 'out.avi')
    report = tmp_path / 'run.json'
    assert main(infer_args(source, tmp_path / 'out.avi', checkpoint, '--allow-truncated', '--report', str(report))) == 0
    saved = json.load(open(report))
    assert saved['input_frame_count'] == 40 and 0 < saved['frames_in'] == saved['frames_out'] < 40
    assert saved['complete'] is True


# ------------------------------------------------------------------------------------------------ output over input
def test_every_script_refuses_an_output_that_is_an_input(tmp_path, checkpoint, capsys):
    source = write_avi(tmp_path / 'in.avi', 4)
    os.link(source, tmp_path / 'hardlink.avi')
    before, ckpt_before = digest(source), digest(checkpoint)
    cases = [
        ('infer_video', infer_args(source, source, checkpoint)),
        ('infer_video', infer_args(source, tmp_path / 'hardlink.avi', checkpoint)),
        ('infer_video', infer_args(source, tmp_path / 'out.avi', checkpoint, '--report', checkpoint)),
        ('infer_video', ['--input', source, str(tmp_path / 'b.avi'), '--output', str(tmp_path / 'a.avi'),
                         str(tmp_path / '.' / 'in.avi'), '--checkpoint', checkpoint]),
        ('export', ['--checkpoint', checkpoint, '--output', checkpoint, '--frames', '3', '--height', '64',
                    '--width', '64']),
        ('export', ['--checkpoint', checkpoint, '--output', str(tmp_path / 'x.onnx'), '--report', checkpoint,
                    '--frames', '3', '--height', '64', '--width', '64']),
        ('prepare_footage', ['--input', source, '--output', str(tmp_path), '--overwrite']),
        ('model_complexity', ['--models', str(tmp_path / 'm.json'), '--output', str(tmp_path / 'm')]),
    ]
    (tmp_path / 'm.json').write_text('{}')
    for script, argv in cases:
        with pytest.raises(SystemExit) as exit_info:
            script_main(script)(argv)
        assert exit_info.value.code == 2, (script, argv)
        err = capsys.readouterr().err
        assert ('is the input' in err or 'holds the input' in err) and 'replace the input' in err, (script, err)
    assert digest(source) == before and digest(checkpoint) == ckpt_before
    assert (tmp_path / 'm.json').read_text() == '{}'


# ------------------------------------------------------------------------------------------------ option files
def _entry(script: str, opt_path, monkeypatch, root) -> int:
    from vsrcompress.compat import run_pipeline
    from basicsr.test import test_pipeline
    from basicsr.train import train_pipeline
    monkeypatch.setattr(sys, 'argv', [script, '-opt', str(opt_path)])
    return run_pipeline(train_pipeline if script == 'train.py' else test_pipeline, str(root))


@pytest.mark.parametrize('script', ['train.py', 'test.py'])
def test_option_files_never_run_code(tmp_path, monkeypatch, capsys, script):
    marker = tmp_path / 'marker'
    opt = tmp_path / 'evil.yml'
    opt.write_text(f"name: evil\nmodel_type: !!python/object/apply:os.system ['touch {marker}']\nnum_gpu: 0\n")
    assert _entry(script, opt, monkeypatch, tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: -opt ') and 'python/object/apply:os.system' in err[0]
    assert 'line 2, column 13' in err[0] and 'plain YAML' in err[0]
    assert not marker.exists() and not (tmp_path / 'experiments').exists() and not (tmp_path / 'results').exists()

    opt.write_text('name: broken\ndatasets:\n  train: [1, 2\n')
    assert _entry(script, opt, monkeypatch, tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'evil.yml' in err[0] and 'line 4' in err[0]
    assert _entry(script, tmp_path / 'missing.yml', monkeypatch, tmp_path) == 2
    assert capsys.readouterr().err.strip() == f'error: -opt {tmp_path / "missing.yml"}: no such option file.'


def test_safe_loader_keeps_basicsr_ordered_mappings():
    from collections import OrderedDict
    from basicsr.utils.options import ordered_yaml
    opt = yaml.load('b: 1\na: {y: 2, x: [1, 2.5e-4, null]}\n', Loader=ordered_yaml()[0])
    assert isinstance(opt, OrderedDict) and list(opt) == ['b', 'a'] and isinstance(opt['a'], OrderedDict)
    assert list(opt['a']) == ['y', 'x'] and opt['a']['x'] == [1, 2.5e-4, None]


class _TouchOnLoad:
    """Unpickling this touches ``path``: a stand-in for a planted state that runs code."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.path),)


def test_bad_options_keep_the_experiment_and_resume_skips_planted_states(tiny_footage, tmp_path):
    opt = tiny_train_options(tiny_footage, name='keep_me', total_iter=2)
    del opt['val'], opt['datasets']['val']  # validation is not what this test is about: faster
    run_entry('train.py', opt, tmp_path)
    exp = tmp_path / 'experiments' / 'keep_me'
    assert (exp / 'models' / 'net_g_2.pth').is_file() and (exp / 'training_states' / '2.state').is_file()
    finished = sorted(os.listdir(exp / 'models'))

    # a typo in the option file: the run fails, the finished experiment stays where it was
    bad = {**opt, 'network_g': {**opt['network_g'], 'type': 'BasicVSRNett'}}
    with pytest.raises(AssertionError, match='network_g.type: unknown arch type'):
        run_entry('train.py', bad, tmp_path)
    assert sorted(os.listdir(exp / 'models')) == finished
    assert not glob.glob(str(tmp_path / 'experiments' / '*_archived_*'))
    assert not glob.glob(str(tmp_path / 'tb_logger' / '*_archived_*'))

    # a planted newest state that would run code, even with torch's escape hatch set: skipped, resume from 2
    marker = tmp_path / 'marker'
    torch.save({'iter': 4, 'epoch': 0, 'optimizers': [], 'schedulers': [], 'x': _TouchOnLoad(str(marker))},
               exp / 'training_states' / '4.state')
    torch.load(exp / 'training_states' / '4.state', weights_only=False)  # the plant works where it is unpickled
    assert marker.exists()
    marker.unlink()
    with pytest.raises(ValueError, match=r'4.state: not a usable training state \(it holds Python objects'):
        _load_training_state(str(exp / 'training_states' / '4.state'))
    (exp / 'training_states' / '3.state').write_bytes(open(exp / 'training_states' / '2.state', 'rb').read()[:200])
    opt['train']['total_iter'] = 4
    os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '1'
    try:
        proc = run_entry('train.py', opt, tmp_path, '--auto_resume')
    finally:
        del os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD']
    assert not marker.exists()
    assert f'warning: --auto_resume skips {exp / "training_states" / "4.state"}' in proc.stderr
    assert f'warning: --auto_resume skips {exp / "training_states" / "3.state"}' in proc.stderr
    assert re.search(r'Resuming training from epoch: \d+, iter: 2\.', read_train_log(exp))
    assert (exp / 'models' / 'net_g_4.pth').is_file()
    assert torch.load(exp / 'training_states' / '4.state', weights_only=True)['iter'] == 4  # replaced by a real one


# ------------------------------------------------------------------------------------------------ clear errors
def test_damaged_and_foreign_model_files_get_a_user_message(tmp_path, checkpoint, capsys):
    source = write_avi(tmp_path / 'in.avi', 4)
    (tmp_path / 'random.onnx').write_bytes(np.random.default_rng(0).bytes(3000))
    (tmp_path / 'truncated.pth').write_bytes(open(checkpoint, 'rb').read()[:2000])
    marker = tmp_path / 'marker'
    torch.save({'params': _TouchOnLoad(str(marker))}, tmp_path / 'planted.pth')
    main = script_main('infer_video')
    cases = [(['--onnx', str(tmp_path / 'random.onnx')], r'random.onnx is not an ONNX graph'),
             (['--checkpoint', str(tmp_path / 'truncated.pth')], r'truncated.pth .*: truncated, damaged or not a'),
             (['--checkpoint', str(tmp_path / 'random.onnx')], r'random.onnx .*: truncated, damaged or not a'),
             (['--checkpoint', str(tmp_path / 'planted.pth')], r'planted.pth .*: it holds Python objects')]
    for model, message in cases:
        with pytest.raises(ValueError, match=message) as err:
            main(['--input', source, '--output', str(tmp_path / 'out.avi'), *model, '--no-progress'])
        assert 'weights_only' not in str(err.value) and '[Errno' not in str(err.value)
    assert not marker.exists() and not os.path.exists(tmp_path / 'out.avi')
    # export's --report folder is checked before minutes of exporting
    with pytest.raises(SystemExit) as exit_info:
        script_main('export')(['--checkpoint', checkpoint, '--output', str(tmp_path / 'net.onnx'), '--report',
                               str(tmp_path / 'missing' / 'r.json'), '--frames', '3', '--height', '64', '--width', '64'])
    assert exit_info.value.code == 2 and 'missing does not exist' in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'net.onnx')
