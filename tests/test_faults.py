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
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch
import yaml

from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet
from vsrcompress.checkpoint import network_checkpoint, save_atomic
from vsrcompress.compat import _load_training_state
from vsrcompress.video_truncation import TruncatedVideoError

from conftest import REPO, read_train_log, run_entry, script_main, tiny_train_options, write_video

pytestmark = pytest.mark.usefixtures('one_thread')
SCALE = 2


def digest(path) -> str:
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def write_avi(path, count: int, size: int = 64) -> str:
    rng = np.random.default_rng(0)
    return write_video(path, [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(count)], 'MJPG', 10)


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
            '--lookahead', '1', '--no-progress', *extra]


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


def test_full_disk_frame_folder_exits_1_with_one_error_line(tmp_path, full_disk, checkpoint):
    source = write_avi(tmp_path / 'in.avi', 12)
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'infer_video.py'),
                           *infer_args(source, full_disk / 'frames', checkpoint)], capture_output=True, text=True,
                          timeout=300)
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr[-2000:]
    assert 'cannot write frame' in errors[0] and 'frames' in errors[0] and 'disk full' in errors[0]
    assert os.listdir(full_disk) == []


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
                               str(tmp_path / 'missing' / 'r.json'), '--frames', '3', '--height', '64',
                               '--width', '64'])
    assert exit_info.value.code == 2 and 'missing does not exist' in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'net.onnx')


# ------------------------------------------------------------------------------------------------ orphans
def _children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``, from /proc."""
    found = []
    for entry in os.listdir('/proc'):
        try:
            stat = open(f'/proc/{entry}/stat').read()
        except (OSError, ValueError):
            continue
        fields = stat.rsplit(')', 1)[-1].split()  # after "pid (comm)": state, ppid, ...
        if entry.isdigit() and int(fields[1]) == pid and fields[0] != 'Z':
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        return open(f'/proc/{pid}/stat').read().rsplit(')', 1)[-1].split()[0] != 'Z'
    except OSError:
        return False


def _stage_child_when(proc: subprocess.Popen, path, timeout: float = 300) -> int:
    """The stage process of a running compress.py, once ``path`` (a training state) exists."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert proc.poll() is None, f'compress.py ended ({proc.returncode}) before {path}:\n{proc.stdout.read()}'
        assert time.monotonic() < deadline, f'{path} did not appear'
        time.sleep(0.05)
    children = _children(proc.pid)
    assert len(children) == 1, children
    return children[0]


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='dying with the parent uses Linux prctl')
def test_compress_stage_dies_with_its_parent_and_ctrl_c_stops_both_resumably(tiny_footage, tmp_path):
    from test_recipe import compress, tiny_recipe
    opt = tiny_recipe(tiny_footage, ['teacher'], total_iter=1000)
    opt['val']['val_freq'] = 10 ** 6  # validation is not what this test is about
    states = tmp_path / 'experiments' / 'tiny_recipe_teacher' / 'training_states'

    # SIGKILL of compress.py alone (not its process group): the stage process goes with it
    proc = compress(tmp_path, opt)
    child = _stage_child_when(proc, states / '2.state')
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    try:
        assert _gone_within(child, 5), 'the stage process outlived compress.py'
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)

    # Ctrl-C (SIGINT to compress.py): both stop, nonzero exit, one message, no traceback
    proc = compress(tmp_path, opt, '--auto_resume')
    child = _stage_child_when(proc, states / '4.state')
    os.kill(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-3000:]
    assert 'error: interrupted' in out and '--auto_resume' in out and 'Traceback' not in out, out[-3000:]
    assert not _alive(child)
    resumable = max(int(p.stem) for p in states.glob('*.state'))
    assert resumable >= 4

    # rerun with --auto_resume: continues from the newest state and finishes
    opt['recipe']['teacher']['train'] = {'total_iter': resumable + 1}
    proc = compress(tmp_path, opt, '--auto_resume')
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    assert 'recipe: [1/1] teacher' in out  # the short progress view of a one-stage recipe
    assert f'iter: {resumable}.' in read_train_log(tmp_path / 'experiments' / 'tiny_recipe_teacher')
    assert (tmp_path / 'experiments' / 'tiny_recipe_teacher' / 'models' / 'net_g_latest.pth').is_file()


# ------------------------------------------------------------------------------------------------ leftovers
def _dead_pid() -> int:
    """The id of a process that has ended (and been reaped): what a killed run's temporaries name."""
    proc = subprocess.Popen(['true'])
    proc.wait()
    return proc.pid


def test_a_rerun_removes_what_a_killed_infer_video_left(tmp_path, checkpoint):
    source = write_avi(tmp_path / 'in.avi', 150, size=96)
    out = tmp_path / 'out'
    out.mkdir()
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, 'scripts', 'infer_video.py'),
                             *infer_args(source, out / 'frames', checkpoint)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not glob.glob(str(out / '.tmp_*')):  # SIGKILL as soon as it writes frames
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-2000:]
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    stale = glob.glob(str(out / '.tmp_*'))
    assert len(stale) == 1 and not os.path.exists(out / 'frames')  # what SIGKILL leaves: a hidden temporary
    # the next run into that folder (here: another output name) removes it: its owner is gone
    assert script_main('infer_video')(infer_args(source, out / 'sr.avi', checkpoint)) == 0
    assert os.listdir(out) == ['sr.avi']
    assert int(cv2.VideoCapture(str(out / 'sr.avi')).get(cv2.CAP_PROP_FRAME_COUNT)) == 150


def test_a_rerun_removes_stale_temporaries_of_checkpoints_and_footage(tmp_path, checkpoint):
    from vsrcompress.atomic_files import owned_prefix
    models = tmp_path / 'models'
    models.mkdir()
    dead, live = _dead_pid(), os.getppid()
    (models / f'{owned_prefix(".tmp_", dead)}a1b2.pth').write_bytes(b'half a checkpoint')  # killed mid-save
    (models / f'{owned_prefix(".tmp_", live)}c3d4.pth').write_bytes(b'being written')  # a run still saving
    (models / '.tmp_not_ours.pth').write_bytes(b'someone else')
    state = torch.load(checkpoint, weights_only=True)
    save_atomic(state, str(models / 'net_g_4.pth'))
    assert sorted(os.listdir(models)) == sorted(['net_g_4.pth', f'{owned_prefix(".tmp_", live)}c3d4.pth',
                                                 '.tmp_not_ours.pth'])
    assert torch.load(models / 'net_g_4.pth', weights_only=True)['params'].keys() == state['params'].keys()

    # prepare_footage: the partial dataset folder of a killed run goes when the same output is made again
    source = write_avi(tmp_path / 'in.avi', 6, size=128)
    stale = tmp_path / f'{owned_prefix(".footage.partial-", dead)}x9y8'
    (stale / '_clips').mkdir(parents=True)
    (stale / '_clips' / 'frame.png').write_bytes(b'x')
    script_main('prepare_footage')(['--input', source, '--output', str(tmp_path / 'footage'), '--scale', '2',
                                    '--clip-length', '3', '--val-ratio', '0', '--quiet'])
    assert not stale.exists() and (tmp_path / 'footage' / 'footage.json').is_file()
    assert not glob.glob(str(tmp_path / '.footage.partial-*'))


# ------------------------------------------------------------------------------------------------ arguments
@pytest.mark.parametrize('value', ['0', '-3'])
def test_prepare_footage_max_frames_out_of_range(tmp_path, capsys, value):
    source = write_avi(tmp_path / 'in.avi', 6, size=128)
    with pytest.raises(SystemExit) as exit_info:
        script_main('prepare_footage')(['--input', source, '--output', str(tmp_path / 'ds'), '--max-frames', value])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and 'error: --max-frames' in err[0] and value in err[0]
    assert sorted(os.listdir(tmp_path)) == ['in.avi']


# ------------------------------------------------------------------------------------------------ option values
def _set(path: str, value):
    """A change to an option dict: set the dotted ``path`` to ``value``."""
    def change(opt: dict) -> None:
        *parents, last = path.split('.')
        node = opt
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return change


OPTION_FAULTS = [  # (change, the start of the one error line after "error: -opt FILE: ")
    (_set('train.total_iter', 'six'), "train.total_iter: expected an integer >= 1, got 'six'"),
    (_set('train.fix_flow', 'ten'), "train.fix_flow: expected an integer >= 0 or ~ (never frozen), got 'ten'"),
    (_set('train.fix_flwo', 2), "train: unknown key(s) ['fix_flwo']; allowed: ["),
    (_set('datasets.train.dataroot_lq', '/no/such/LQ'), 'datasets.train.dataroot_lq: /no/such/LQ does not exist'),
    (_set('datasets.val.meta_info_file', '/no/meta.txt'), 'datasets.val.meta_info_file: /no/meta.txt does not exist'),
    (_set('datasets.train.gt_sise', 64), "datasets.train: unknown key(s) ['gt_sise']; allowed: ["),
    (_set('network_g.num_feet', 8), "network_g: unknown key(s) ['num_feet']; allowed: ["),
    (_set('path.pretrain_network_g', '/no/net.pth'), 'path.pretrain_network_g: /no/net.pth does not exist'),
    (lambda o: o.update(model_type='PruningVSRModel', pruning={'ratoi': 0.5}), "pruning: unknown key(s) ['ratoi']"),
    (lambda o: o.update(model_type='QATVSRModel', quantization={'num_bist': 8}), "quantization: unknown keys ['num_b"),
    (_set('train.feature_distill_opt', {'layer': ['x']}), "train.feature_distill_opt: unknown keys ['layer']"),
]


@pytest.mark.parametrize('change, message', OPTION_FAULTS, ids=[m.split(':')[0] + str(i)
                                                                for i, (_, m) in enumerate(OPTION_FAULTS)])
def test_train_py_option_faults_are_one_error_before_any_work(tiny_footage, tmp_path, monkeypatch, capsys, change,
                                                              message):
    opt = tiny_train_options(tiny_footage, name='exp')
    change(opt)
    finished = tmp_path / 'experiments' / 'exp' / 'models'
    finished.mkdir(parents=True)
    (finished / 'net_g_latest.pth').write_bytes(b'a finished run')
    opt_path = tmp_path / 'exp.yml'
    opt_path.write_text(yaml.safe_dump(opt, sort_keys=False))
    assert _entry('train.py', opt_path, monkeypatch, tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f'error: -opt {opt_path}: {message}'), err
    assert os.listdir(tmp_path / 'experiments') == ['exp'] and os.listdir(finished) == ['net_g_latest.pth']
    assert not (tmp_path / 'tb_logger').exists()


def test_test_py_checks_its_datasets_and_yaml_position(tiny_footage, tmp_path, monkeypatch, capsys):
    opt = tiny_train_options(tiny_footage, name='eval')
    opt = {k: v for k, v in opt.items() if k not in ('train', 'logger')}
    opt['datasets'] = {'test_1': {**opt['datasets']['val'], 'dataroot_gt': str(tmp_path / 'missing_gt')}}
    opt_path = tmp_path / 'eval.yml'
    opt_path.write_text(yaml.safe_dump(opt, sort_keys=False))
    assert _entry('test.py', opt_path, monkeypatch, tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f'datasets.test_1.dataroot_gt: {tmp_path / "missing_gt"} does not exist' in err[0]
    assert not (tmp_path / 'results').exists()
    opt_path.write_text('name: eval\nnum_gpu: 0: 1\nscale: 4\n')
    assert _entry('test.py', opt_path, monkeypatch, tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f'error: -opt {opt_path}: mapping values are not allowed here (line 2, column 11).']


@pytest.mark.parametrize('change, message', [
    (_set('train.total_iter', 'two'), "recipe stage teacher .*: train.total_iter: expected an integer >= 1, got 'two'"),
    (lambda o: o['recipe']['prune'].update(train={'fix_flow': 'ten'}), "recipe stage prune .*: train.fix_flow: "),
    (_set('datasets.val.dataroot_lq', '/no/LQ'), 'datasets.val.dataroot_lq: /no/LQ does not exist'),
])
def test_compress_py_checks_numbers_and_dataroots_before_the_first_stage(tiny_footage, tmp_path, change, message):
    from test_recipe import tiny_recipe
    from vsrcompress.recipe import load_recipe, parse_recipe
    opt = tiny_recipe(tiny_footage, ['teacher', 'prune', 'export'])
    opt['recipe']['export']['precisions'] = ['fp32']
    change(opt)
    with pytest.raises(ValueError, match=message):
        parse_recipe(opt, str(tmp_path))
    (tmp_path / 'bad.yml').write_text('name: x\nrecipe: {stages: [teacher\n')
    with pytest.raises(ValueError, match=r'bad.yml: .*\(line 3, column 1\)'):
        load_recipe(str(tmp_path / 'bad.yml'), str(tmp_path))
    assert not (tmp_path / 'experiments').exists()


# ------------------------------------------------------------------------------------------------ paths that alias
# issue 26 items 1, 2, 3, 10, 12 and the minor "newcomer friction" items on help texts and refusals
def _one_error_line(capsys) -> str:
    """The single stderr line of a refused run (no argparse usage before it)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: '), err
    return err[0]


def _png_folder(folder, count: int, size: int = 64) -> str:
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(count):
        cv2.imwrite(str(folder / f'{i:04d}.png'), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return str(folder)


def test_a_partial_output_never_replaces_an_input(tmp_path, checkpoint, capsys):
    main = script_main('infer_video')
    # a truncated video named like the partial output of --output cam.avi
    full = open(write_avi(tmp_path / 'full.avi', 40), 'rb').read()
    source = tmp_path / 'cam.partial.avi'
    source.write_bytes(full[:len(full) * 4 // 10])
    before = digest(source)
    with pytest.raises(TruncatedVideoError):
        main(infer_args(source, tmp_path / 'cam.avi', checkpoint))
    assert digest(source) == before and not os.path.exists(tmp_path / 'cam.avi')
    kept = tmp_path / 'cam.partial-2.avi'
    assert f'frames kept in {kept}' in capsys.readouterr().err
    assert int(cv2.VideoCapture(str(kept)).get(cv2.CAP_PROP_FRAME_COUNT)) > 0
    # a frame folder named like the partial output of --output shots, with an undecodable last frame
    shots = _png_folder(tmp_path / 'shots.partial', 30)
    (tmp_path / 'shots.partial' / '9999.png').write_bytes(b'not a png')
    listing = {name: digest(os.path.join(shots, name)) for name in os.listdir(shots)}
    with pytest.raises(ValueError, match='cannot decode image .*9999.png'):
        main(infer_args(shots, tmp_path / 'shots', checkpoint))
    assert {name: digest(os.path.join(shots, name)) for name in os.listdir(shots)} == listing
    assert not os.path.exists(tmp_path / 'shots') and os.listdir(tmp_path / 'shots.partial-2')
    assert f'frames kept in {tmp_path / "shots.partial-2"}' in capsys.readouterr().err


def test_a_partial_output_avoids_model_files_and_other_outputs():
    from vsrcompress.inference.frame_sink import partial_path
    assert partial_path('/v/cam.avi') == '/v/cam.partial.avi'
    assert partial_path('/v/cam.avi', ['/v/./cam.partial.avi', '/v/cam.partial-2.avi']) == '/v/cam.partial-3.avi'
    assert partial_path('/v/shots/', ['/v/shots.partial']) == '/v/shots.partial-2'


def _external_data_onnx(path) -> str:
    """A tiny ONNX graph whose weights live in an external data file beside it (``<stem>.weights``)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    weights = numpy_helper.from_array(np.ones(4, np.float32), 'w')
    graph = helper.make_graph([helper.make_node('Add', ['x', 'w'], ['y'])], 'g',
                              [helper.make_tensor_value_info('x', TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info('y', TensorProto.FLOAT, [4])], [weights])
    onnx.save(helper.make_model(graph), str(path), save_as_external_data=True,
              location=os.path.basename(os.path.splitext(path)[0]) + '.weights', size_threshold=0)
    return str(path)


def test_no_output_over_an_output_or_a_model_file(tmp_path, checkpoint, capsys):
    from vsrcompress.model_files import model_files
    source = write_avi(tmp_path / 'in.avi', 4)
    onnx_path = _external_data_onnx(tmp_path / 'g.onnx')
    assert model_files(onnx_path) == [onnx_path, str(tmp_path / 'g.weights')]
    (tmp_path / 'm.xml').write_text('<net/>')
    (tmp_path / 'm.bin').write_bytes(b'weights')
    kept = {name: digest(tmp_path / name) for name in ('g.onnx', 'g.weights', 'm.xml', 'm.bin')}
    out = str(tmp_path / 'out.avi')
    infer_cases = [  # (model flags, --report, what the message names)
        (['--openvino', str(tmp_path / 'm.xml')], str(tmp_path / 'm.bin'), 'm.bin'),
        (['--onnx', onnx_path], str(tmp_path / 'g.weights'), 'g.weights'),
        (['--engine', str(tmp_path / 'e.engine')], str(tmp_path / 'e.engine.json'), 'e.engine.json'),
    ]
    for model, report, named in infer_cases:
        with pytest.raises(SystemExit) as exit_info:
            script_main('infer_video')(['--input', source, '--output', out, *model, '--report', report])
        assert exit_info.value.code == 2, model
        line = _one_error_line(capsys)
        assert f'--report {report}' in line and named in line and 'replace' in line, line
    size = ['--frames', '3', '--height', '64', '--width', '64']
    export_cases = [
        (['--output', str(tmp_path / 'x.onnx'), '--report', str(tmp_path / 'x.onnx')], 'x.onnx'),
        (['--output', str(tmp_path / 'x.onnx'), '--report', os.path.join(str(tmp_path), '.', 'x.onnx')], 'x.onnx'),
        (['--format', 'openvino', '--inference-precision', 'f32', '--output', str(tmp_path / 'v.xml'), '--report',
          str(tmp_path / 'v.bin')], 'v.bin'),
        (['--trt', '--output', str(tmp_path / 't.onnx'), '--report', str(tmp_path / 't.engine.json')],
         't.engine.json'),
    ]
    for flags, named in export_cases:
        with pytest.raises(SystemExit) as exit_info:
            script_main('export')(['--checkpoint', checkpoint, *flags, *size])
        assert exit_info.value.code == 2, flags
        line = _one_error_line(capsys)
        assert '--report' in line and named in line and 'same file' in line, line
    assert sorted(os.listdir(tmp_path)) == sorted(['in.avi', *kept])
    assert {name: digest(tmp_path / name) for name in kept} == kept


def test_two_outputs_spelled_differently_are_refused(tmp_path, checkpoint, capsys):
    from vsrcompress.checkpoint import load_network
    from vsrcompress.inference import make_backend
    from vsrcompress.inference.multi_stream import run_many_video_sr
    a, b = write_avi(tmp_path / 'a.avi', 4), write_avi(tmp_path / 'b.avi', 4)
    write_avi(tmp_path / 'old.avi', 4)
    os.link(tmp_path / 'old.avi', tmp_path / 'old_link.avi')
    cases = [
        (['--input', a, b, '--output', str(tmp_path / 'x.avi'), os.path.join(str(tmp_path), '.', 'x.avi')], 'x.avi'),
        (['--input', a, b, '--output', str(tmp_path / 'old.avi'), str(tmp_path / 'old_link.avi')], 'old_link.avi'),
        (['--input', a, '--output', str(tmp_path / 'y.avi'), '--report', str(tmp_path / 'sub' / '..' / 'y.avi')],
         'y.avi'),
    ]
    for argv, named in cases:
        with pytest.raises(SystemExit) as exit_info:
            script_main('infer_video')([*argv, '--checkpoint', checkpoint, '--no-progress'])
        assert exit_info.value.code == 2, argv
        line = _one_error_line(capsys)
        assert 'same file' in line and named in line, line
    backend = make_backend('torch', 'cpu', net=load_network(checkpoint).net)
    with pytest.raises(ValueError, match='same file'):
        run_many_video_sr([a, b], [str(tmp_path / 'x.avi'), str(tmp_path / 'sub' / '..' / 'x.avi')], backend)
    assert sorted(os.listdir(tmp_path)) == ['a.avi', 'b.avi', 'old.avi', 'old_link.avi']


def test_several_inputs_check_the_report_first_and_publish_nothing_without_it(tmp_path, full_disk, checkpoint):
    a, b = write_avi(tmp_path / 'a.avi', 6), write_avi(tmp_path / 'b.avi', 6)
    outputs = [str(tmp_path / 'sr_a.avi'), str(tmp_path / 'sr_b.avi')]
    main = script_main('infer_video')
    argv = infer_args(a, outputs[0], checkpoint)  # then a second input and output after the first ones
    argv.insert(argv.index(a) + 1, b)
    argv.insert(argv.index(outputs[0]) + 1, outputs[1])
    with pytest.raises(ValueError, match=r'missing does not exist'):
        main([*argv, '--report', str(tmp_path / 'missing' / 'r.json')])
    assert sorted(os.listdir(tmp_path)) == ['a.avi', 'b.avi', 'small_disk']  # checked before any frame
    # the report cannot be written (a full disk): no output is published; both are kept as partial files
    (full_disk / 'filler').write_bytes(b'x' * 32 * 1024)
    with pytest.raises(OSError, match='report: cannot write .*cams.json'):
        main([*argv, '--report', str(full_disk / 'cams.json')])
    assert not any(os.path.exists(p) for p in outputs) and os.listdir(full_disk) == ['filler']
    for name in ('sr_a.partial.avi', 'sr_b.partial.avi'):
        assert int(cv2.VideoCapture(str(tmp_path / name)).get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    assert not glob.glob(str(tmp_path / '.tmp_*'))


def test_prepare_footage_refuses_an_output_inside_an_input_folder(tmp_path, capsys):
    from vsrcompress.footage import prepare_footage
    frames = _png_folder(tmp_path / 'frames', 6, size=128)
    listing = sorted(os.listdir(frames))
    for output in (os.path.join(frames, 'dataset'), os.path.join(frames, 'sub', '..', 'deeper', 'dataset')):
        with pytest.raises(SystemExit) as exit_info:
            script_main('prepare_footage')(['--input', frames, '--output', output, '--scale', '2',
                                            '--clip-length', '3', '--val-ratio', '0', '--quiet'])
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 2 and len(err) == 1 and 'error: --output' in err[0], err
        assert 'inside the input --input' in err[0] and frames in err[0], err
    with pytest.raises(ValueError, match='inside the input'):
        prepare_footage([frames], os.path.join(frames, 'dataset'), scale=2, clip_length=3, val_ratio=0,
                        progress=False)
    assert sorted(os.listdir(frames)) == listing


def test_help_texts_are_whole_and_refused_outputs_are_one_line(tmp_path, checkpoint, capsys):
    def help_of(script: str) -> str:
        with pytest.raises(SystemExit) as exit_info:
            script_main(script)(['--help'])
        assert exit_info.value.code == 0
        return capsys.readouterr().out

    assert 'or official BasicSR checkpoint' in ' '.join(help_of('export').split())
    assert 'and in TensorRT FP16 and INT8 where TensorRT is installed' in ' '.join(help_of('gpu_acceptance').split())
    assert re.search(r'--output datasets/footage \\\n +--scale 4 ', help_of('prepare_footage'))
    source = write_avi(tmp_path / 'in.avi', 4)
    (tmp_path / 'm.json').write_text('{}')
    refused = [
        ('infer_video', infer_args(source, source, checkpoint)),
        ('export', ['--checkpoint', checkpoint, '--output', checkpoint, '--frames', '3', '--height', '64',
                    '--width', '64']),
        ('export', ['--checkpoint', checkpoint, '--output', str(tmp_path / 'x.onnx'), '--report',
                    str(tmp_path / 'missing' / 'r.json'), '--frames', '3', '--height', '64', '--width', '64']),
        ('model_complexity', ['--models', str(tmp_path / 'm.json'), '--output', str(tmp_path / 'm')]),
    ]
    for script, argv in refused:
        with pytest.raises(SystemExit) as exit_info:
            script_main(script)(argv)
        assert exit_info.value.code == 2, (script, argv)
        assert 'usage:' not in _one_error_line(capsys), script
    with pytest.raises(SystemExit) as exit_info:  # a malformed flag keeps argparse's usage message
        script_main('export')(['--checkpoint', checkpoint, '--output', str(tmp_path / 'x.onnx'), '--frames', 'x'])
    assert exit_info.value.code == 2 and capsys.readouterr().err.startswith('usage:')


# ------------------------------------------------------------------------------------------------ stale recipe stages
# issue 26 items 4 (stale stages), 6 (type names), 7 (reruns), 11 (scheduler periods) and the minor items on the
# recipe's summary, its TensorRT note, validation shown twice, the report's INT8 sentence and complexity.md/.png
TYPE_FAULTS = [  # (change, the start of the one error line after "error: -opt FILE: ")
    (_set('network_g.type', 'BasicVSRnet'), "network_g.type: unknown arch type 'BasicVSRnet'; did you mean "
                                            "'BasicVSRNet'"),
    (_set('model_type', 'RecurentVSRModel'), "model_type: unknown model type 'RecurentVSRModel'; did you mean "
                                             "'RecurrentVSRModel'"),
    (_set('datasets.train.type', 'FootageRecurentDataset'), "datasets.train.type: unknown dataset type "
                                                            "'FootageRecurentDataset'; did you mean"),
    (lambda o: o['network_g'].pop('type'), 'network_g.type: missing; the arch to build, registered: '),
    (lambda o: o['datasets']['val'].pop('type'), 'datasets.val.type: missing; the dataset to build, registered: '),
    (_set('train.pixel_opt.type', 'CharbonierLoss'), "train.pixel_opt.type: unknown loss type 'CharbonierLoss'; "
                                                     "did you mean 'CharbonnierLoss'"),
    (_set('val.metrics.psnr.type', 'calculate_psnrr'), "val.metrics.psnr.type: unknown metric type "
                                                       "'calculate_psnrr'; did you mean 'calculate_psnr'"),
    (_set('train.optim_g.type', 'Adamw'), "train.optim_g.type: 'Adamw' is not supported; allowed: ['Adam', "),
    (_set('train.scheduler.type', 'CosineAnnealingLR'), "train.scheduler.type: 'CosineAnnealingLR' is not supported"),
    (_set('train.scheduler.periods', [2]), 'train.scheduler.periods: [2] add up to 2 iterations, fewer than '
                                           'train.total_iter (4)'),
]


@pytest.mark.parametrize('change, message', TYPE_FAULTS, ids=[m.split(':')[0] + str(i)
                                                              for i, (_, m) in enumerate(TYPE_FAULTS)])
def test_type_names_and_scheduler_periods_are_one_error_before_any_folder(tiny_footage, tmp_path, monkeypatch,
                                                                          capsys, change, message):
    opt = tiny_train_options(tiny_footage, name='exp')
    change(opt)
    opt_path = tmp_path / 'exp.yml'
    opt_path.write_text(yaml.safe_dump(opt, sort_keys=False))
    assert _entry('train.py', opt_path, monkeypatch, tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f'error: -opt {opt_path}: {message}'), err
    assert not (tmp_path / 'experiments').exists() and not (tmp_path / 'tb_logger').exists()


def test_compress_py_refuses_an_unknown_arch_before_the_first_stage(tiny_footage, tmp_path):
    from test_recipe import compress, tiny_recipe
    opt = tiny_recipe(tiny_footage, ['teacher', 'prune'])
    opt['network_g']['type'] = 'BasicVSRnet'
    proc = compress(tmp_path, opt)
    out, _ = proc.communicate(timeout=120)
    lines = out.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, out[-3000:]
    assert "network_g.type: unknown arch type 'BasicVSRnet'; did you mean 'BasicVSRNet'" in lines[0]
    assert '--auto_resume' not in out and not (tmp_path / 'experiments').exists()


def _fake_finished_stages(plan, stages, run: int = 1) -> None:
    """Each stage's output and record as finished run number ``run`` leaves them (bytes, not trained weights)."""
    from vsrcompress.recipe.stage_record import stage_record, write_stage_record
    for stage in stages:
        out = pathlib.Path(plan.output(stage).path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(f'weights of {stage}, run {run}'.encode())
        write_stage_record(plan, stage, stage_record(plan, stage))


def test_a_rerun_reuses_only_stages_whose_options_and_inputs_are_unchanged(tiny_footage, tmp_path):
    from test_recipe import tiny_recipe
    from vsrcompress.recipe import parse_recipe
    from vsrcompress.recipe.rerun import RESUME, REUSE, START, RerunRefused, plan_rerun
    opt = tiny_recipe(tiny_footage, ['teacher', 'prune', 'qat', 'export'])
    plan = parse_recipe(opt, str(tmp_path))
    _fake_finished_stages(plan, ['teacher', 'prune', 'qat'])
    record = json.loads((tmp_path / 'experiments/tiny_recipe_prune/models/recipe_stage.json').read_text())
    assert record['options']['pruning']['ratio'] == 0.5 and 'logger' not in record['options']
    assert record['inputs']['pretrain_network_g']['sha256'] == digest(plan.output('teacher').path)

    def actions(change=None, **flags) -> list:
        changed = json.loads(json.dumps(opt))
        if change:
            change(changed)
        return plan_rerun(parse_recipe(changed, str(tmp_path)), flags.get('auto_resume', True),
                          flags.get('restart', False))

    assert [a.action for a in actions()] == [REUSE] * 3
    assert [a.action for a in actions(lambda o: o['logger'].update(print_freq=5))] == [REUSE] * 3  # not compared
    ratio = actions(lambda o: o['recipe']['prune']['pruning'].update(ratio=0.25))
    assert [a.action for a in ratio] == [REUSE, START, START]
    assert 'pruning.ratio: 0.5 -> 0.25' in ratio[1].why and 'every stage after it' in ratio[1].why
    assert 'stage prune before it trains' in ratio[2].why
    width = actions(_set('network_g.num_feat', 16))
    assert [a.action for a in width] == [START] * 3 and 'network_g.num_feat: 8 -> 16' in width[0].why
    assert [a.action for a in actions(restart=True, auto_resume=False)] == [START] * 3

    with pytest.raises(RerunRefused, match=r'teacher \(finished: experiments/tiny_recipe_teacher/models/'
                                           r'net_g_latest.pth\).*--auto_resume.*--restart'):
        actions(auto_resume=False)
    with pytest.raises(ValueError, match='choose one'):
        actions(restart=True)

    (tmp_path / 'experiments/tiny_recipe_teacher/models/net_g_latest.pth').write_bytes(b'trained elsewhere')
    replaced = actions()
    assert [a.action for a in replaced] == [START] * 3 and 'was replaced since the stage finished' in replaced[0].why
    _fake_finished_stages(plan, ['teacher'], run=2)  # the teacher retrained: prune's input is other weights now
    moved = actions()
    assert [a.action for a in moved] == [REUSE, START, START]
    assert 'path.pretrain_network_g: ' in moved[1].why and 'holds other weights' in moved[1].why
    _fake_finished_stages(plan, ['prune', 'qat'], run=2)
    (tmp_path / 'experiments/tiny_recipe_qat/models/recipe_stage.json').write_text('{"format": "x"')
    assert [a.action for a in actions()] == [REUSE, REUSE, START]
    (tmp_path / 'experiments/tiny_recipe_qat/models/net_g_int8.pth').unlink()
    (tmp_path / 'experiments/tiny_recipe_qat/training_states').mkdir()
    (tmp_path / 'experiments/tiny_recipe_qat/training_states/2.state').write_bytes(b'x')
    assert [a.action for a in actions()] == [REUSE, REUSE, RESUME]


def test_compress_py_refuses_to_retrain_finished_stages_unless_told(tiny_footage, tmp_path):
    from test_recipe import compress, tiny_recipe
    opt = tiny_recipe(tiny_footage, ['teacher', 'prune'])
    teacher = tmp_path / 'experiments/tiny_recipe_teacher/models/net_g_latest.pth'
    teacher.parent.mkdir(parents=True)
    teacher.write_bytes(b'weights of teacher, run 1')  # a finished stage: its output exists
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob('*'))
    proc = compress(tmp_path, opt)
    out, _ = proc.communicate(timeout=120)
    lines = out.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith('error: recipe tiny_recipe: '), out
    assert 'teacher (finished: experiments/tiny_recipe_teacher/models/net_g_latest.pth)' in lines[0]
    assert '--auto_resume' in lines[0] and '--restart' in lines[0]
    after = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob('*'))
    assert after == sorted(before + ['compress.py', 'recipe.yml'])  # nothing archived, trained or logged
    assert teacher.read_bytes() == b'weights of teacher, run 1'


def test_a_changed_pruning_ratio_retrains_prune_and_keeps_the_teacher(tiny_footage, tmp_path):
    """End to end: a finished two-stage recipe, the ratio changed, --auto_resume: the teacher is reused, prune is
    trained again at the new ratio (the old one archived), and each validation is shown once."""
    from test_recipe import compress, finish, tiny_recipe
    opt = tiny_recipe(tiny_footage, ['teacher', 'prune'], total_iter=2)
    out = finish(compress(tmp_path, opt))
    for stage, position in (('teacher', 1), ('prune', 2)):  # validated at iteration 2, and again after the loop
        assert out.count(f'recipe: [{position}/2] {stage}: validation') == 1, out
    models = tmp_path / 'experiments'
    teacher = digest(models / 'tiny_recipe_teacher/models/net_g_latest.pth')
    old_widths = torch.load(models / 'tiny_recipe_prune/models/net_g_latest.pth', weights_only=True)['widths']

    opt['recipe']['prune']['pruning']['ratio'] = 0.25
    again = finish(compress(tmp_path, opt, '--auto_resume'))
    assert 'recipe: stage teacher is done' in again and 'recipe: [1/2]' not in again
    assert 'stage prune is finished, but' in again and 'pruning.ratio: 0.5 -> 0.25' in again
    assert again.index('pruning.ratio') < again.index('recipe: [2/2] prune (')  # said before training
    new_widths = torch.load(models / 'tiny_recipe_prune/models/net_g_latest.pth', weights_only=True)['widths']
    assert new_widths != old_widths and digest(models / 'tiny_recipe_teacher/models/net_g_latest.pth') == teacher
    assert len(glob.glob(str(models / 'tiny_recipe_prune_archived_*'))) == 1
    record = json.loads((models / 'tiny_recipe_prune/models/recipe_stage.json').read_text())
    assert record['options']['pruning']['ratio'] == 0.25

    third = finish(compress(tmp_path, opt, '--auto_resume'))
    assert 'stage teacher is done' in third and 'stage prune is done' in third and 'recipe: [' not in third


def test_recipe_summary_lists_openvino_irs_and_says_why_tensorrt_was_skipped(tiny_footage, narrow_checkpoint,
                                                                              tmp_path, capsys):
    from test_recipe import tiny_recipe
    from vsrcompress.export import tensorrt_unavailable_reason
    from vsrcompress.recipe import run_recipe
    opt = tiny_recipe(tiny_footage, ['export'])
    opt['path']['pretrain_network_g'] = narrow_checkpoint
    opt['recipe']['export']['precisions'] = ['fp32']
    (tmp_path / 'recipe.yml').write_text(yaml.safe_dump(opt, sort_keys=False))
    results = run_recipe(str(tmp_path / 'recipe.yml'), str(tmp_path))
    out = capsys.readouterr().out
    summary = out.split('recipe tiny_recipe finished:')[1]
    assert results['openvino'] == [str(tmp_path / 'experiments/tiny_recipe/deploy/tiny_recipe_fp32.xml')]
    assert 'openvino experiments/tiny_recipe/deploy/tiny_recipe_fp32.xml' in summary
    assert 'onnx     experiments/tiny_recipe/deploy/tiny_recipe_fp32.onnx' in summary
    reason = tensorrt_unavailable_reason()
    if reason:  # the machine has no TensorRT: the skip is said, with the reason and how to silence it
        assert f'recipe export: no TensorRT engines: {reason}' in out and 'recipe.export.tensorrt: false' in out


def test_report_states_the_measured_int8_speed_not_a_claim(tiny_footage, tmp_path):
    from test_recipe import tiny_recipe
    from vsrcompress.recipe import parse_recipe
    from vsrcompress.recipe.report_stage import _what_the_rows_are
    plan = parse_recipe(tiny_recipe(tiny_footage, ['teacher', 'prune', 'qat', 'report']), str(tmp_path))
    rows = [{'name': name, 'macs_per_frame': macs, 'latency_ms_per_frame': latency} for name, macs, latency in (
        ('dense', 8e7, {'onnxruntime-cpu': 4.0, 'openvino-cpu-f32': 3.0}),
        ('pruned', 2e7, {'onnxruntime-cpu': 2.0, 'openvino-cpu-f32': 1.5}),
        ('pruned INT8', 2e7, {'onnxruntime-cpu': 2.5, 'openvino-cpu-f32': 1.0}))]
    text = '\n'.join(_what_the_rows_are(plan, rows))
    assert 'no faster' not in text and 'bound by per-layer overhead' in text
    assert 'INT8 speed-up over pruned FP32 as measured: ONNX Runtime CPU 0.80x, OpenVINO CPU f32 1.50x' in text


def test_complexity_table_keeps_small_networks_apart_and_colour_means_the_model():
    from conftest import NARROW_WIDTHS
    from vsrcompress.report import ModelEntry, complexity_markdown, measure_complexity
    from vsrcompress.report.complexity_table import complexity_figure
    torch.manual_seed(0)
    entries = [ModelEntry('wide', net=BasicVSRNet(num_feat=8, num_block=1, widths=NARROW_WIDTHS), psnr_db=30.0),
               ModelEntry('narrow', net=BasicVSRNet(num_feat=4, num_block=1, widths=NARROW_WIDTHS), psnr_db=29.0)]
    rows = measure_complexity(entries, 64, 64, frames=2, repeats=1, warmup=0, threads=1,
                              backends=['torch-cpu', 'onnxruntime-cpu'], memory=False, log=None)
    gmacs = [r['macs_per_frame'] / 1e9 for r in rows]
    assert gmacs[0] != gmacs[1] and f'{gmacs[0]:.1f}' == f'{gmacs[1]:.1f}'  # one decimal cannot tell them apart
    cells = {line.split(' | ')[0]: line.split(' | ')[3] for line in complexity_markdown(rows).splitlines()
             if line.startswith('| `')}
    assert cells['| `wide`'] != cells['| `narrow`'] and float(cells['| `wide`']) == pytest.approx(gmacs[0], rel=0.01)

    from matplotlib import pyplot as plt
    fig = complexity_figure(rows)
    try:
        left, right = fig.axes
        colour = {tuple(c.get_facecolor()[0]): c.get_offsets()[0][1] for c in left.collections}  # colour -> PSNR
        assert len(colour) == 2
        assert len(right.collections) == 4  # 2 models x 2 backends
        for points in right.collections:  # each point has its model's colour from the left panel
            assert colour[tuple(points.get_facecolor()[0])] == points.get_offsets()[0][1]
        assert not left.texts and not right.texts  # no per-point labels to overlap
        assert len(right.get_legend().get_texts()) == 2  # the backend legend (markers); the model one is an artist
    finally:
        plt.close(fig)


# ------------------------------------------------------------------------------------------------ damaged models
# issue 26 items 5 (checksums of exported models), 8 (tampered, newer or inconsistent metadata), 9 (export on a full
# disk)
_STREAM = ['--interval', '2', '--lookahead', '1', '--height', '64', '--width', '64']  # a tiny stateful graph


def _with_model(args: list[str], flag: str) -> list[str]:
    """``infer_args`` with its model flag (``--checkpoint``) replaced by ``flag`` (``--onnx``, ``--openvino``)."""
    return [flag if arg == '--checkpoint' else arg for arg in args]


def _tiny_graph(checkpoint: str, path) -> str:
    assert script_main('export')(['--checkpoint', checkpoint, '--output', str(path), *_STREAM, '--no-check']) == 0
    return str(path)


def _frames_out(video) -> int:
    return int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT))


def _flip_byte(path, at: int) -> None:
    """Change one byte of ``path`` in place: same size, other content (what bit rot or a bad copy does)."""
    data = bytearray(open(path, 'rb').read())
    data[at] ^= 0x40
    open(path, 'wb').write(bytes(data))


def _graph_written_before_checksums(source: str, target, **spec_changes) -> str:
    """``source`` as a graph exported before checksums were recorded, its metadata JSON changed by ``spec_changes``
    (an old graph whose metadata someone edited, or that a newer vsrcompress wrote)."""
    import onnx
    model = onnx.load(source)
    props = [(p.key, p.value) for p in model.metadata_props if p.key != 'vsrcompress.sha256']
    del model.metadata_props[:]
    for key, value in props:
        entry = model.metadata_props.add()
        entry.key = key
        entry.value = json.dumps({**json.loads(value), **spec_changes}) if key == 'vsrcompress.graph' else value
    onnx.save(model, str(target))
    return str(target)


def _ir_written_before_checksums(xml_path) -> None:
    """Remove the checksum entries from an IR's runtime info, as IRs exported before them look."""
    text = open(xml_path).read()
    open(xml_path, 'w').write(re.sub(r'\n\s*<(weights_sha256|info name="xml_sha256") value="[0-9a-f]+" />', '', text))


@pytest.mark.filterwarnings('ignore:.*carries no checksum')
def test_damaged_models_are_refused_before_the_first_frame(tmp_path, checkpoint):
    source = write_avi(tmp_path / 'in.avi', 4)
    out = tmp_path / 'out.avi'
    export = script_main('export')
    onnx_path, xml_path, bin_path = tmp_path / 'g.onnx', tmp_path / 'v.xml', tmp_path / 'v.bin'
    assert export(['--checkpoint', checkpoint, '--output', str(onnx_path), '--report', str(tmp_path / 'g.json'),
                   *_STREAM, '--no-check']) == 0
    assert export(['--checkpoint', checkpoint, '--output', str(xml_path), '--format', 'openvino',
                   '--inference-precision', 'f32', '--report', str(tmp_path / 'v.json'), *_STREAM, '--no-check']) == 0
    # an IR whose .bin has the right size and other bytes: one error line, exit 2, no output
    intact_bin = open(bin_path, 'rb').read()
    _flip_byte(bin_path, len(intact_bin) // 2)
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'infer_video.py'),
                           *_with_model(infer_args(source, out, str(xml_path)), '--openvino')],
                          capture_output=True, text=True, timeout=300)
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert proc.returncode == 2 and len(errors) == 1 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert f'the weights {bin_path} of {xml_path} are damaged' in errors[0] and 're-export' in errors[0]
    assert not out.exists()
    open(bin_path, 'wb').write(intact_bin)

    # both reports hold the sha256 of every file written; the intact models load without a warning
    assert json.load(open(tmp_path / 'g.json'))['sha256'] == {str(onnx_path): digest(onnx_path)}
    assert json.load(open(tmp_path / 'v.json'))['sha256'] == {str(xml_path): digest(xml_path),
                                                              str(bin_path): digest(bin_path)}
    import warnings
    import onnx
    from vsrcompress.export.artifact_digest import UnverifiedArtifactWarning
    from vsrcompress.inference.backends import OnnxRuntimeBackend
    from vsrcompress.inference.openvino_backend import OpenVINOBackend
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter('always')
        OnnxRuntimeBackend(str(onnx_path))
        OpenVINOBackend(str(xml_path))
    assert not [w for w in seen if issubclass(w.category, UnverifiedArtifactWarning)]

    main = script_main('infer_video')
    # an IR whose .xml was edited (its recorded inference precision)
    intact_xml = open(xml_path, 'rb').read()
    open(xml_path, 'wb').write(intact_xml.replace(b'<inference_precision value="f32" />',
                                                  b'<inference_precision value="bf16" />'))
    with pytest.raises(ValueError, match=f'{re.escape(str(xml_path))} is damaged or was changed after export.*'
                                         're-export'):
        main(_with_model(infer_args(source, out, str(xml_path)), '--openvino'))
    open(xml_path, 'wb').write(intact_xml)
    # an ONNX graph with one weight byte changed, and one whose metadata was edited (checksum kept)
    weights = max((t.raw_data for t in onnx.load(str(onnx_path)).graph.initializer), key=len)
    damaged = tmp_path / 'damaged.onnx'
    damaged.write_bytes(open(onnx_path, 'rb').read())
    _flip_byte(damaged, damaged.read_bytes().find(weights) + len(weights) // 2)
    edited = onnx.load(str(onnx_path))
    spec = next(p for p in edited.metadata_props if p.key == 'vsrcompress.graph')
    assert spec.value.count('"frames": 3') == 1
    spec.value = spec.value.replace('"frames": 3', '"frames": 5')
    onnx.save(edited, str(tmp_path / 'edited.onnx'))
    for graph in (damaged, tmp_path / 'edited.onnx'):
        with pytest.raises(ValueError, match=f'{re.escape(str(graph))} is damaged or was changed after export.*'
                                             're-export it with scripts/export.py'):
            main(_with_model(infer_args(source, out, str(graph)), '--onnx'))
    assert not out.exists()

    # a TensorRT engine: its side .json records the engine's sha256 (the real writer, on stand-in engine bytes)
    from vsrcompress.export.onnx_export import read_graph_spec
    from vsrcompress.export.tensorrt_build import read_engine_spec, write_engine_spec
    engine = tmp_path / 'g.engine'
    engine.write_bytes(np.random.default_rng(0).bytes(4096))
    write_engine_spec(str(engine), read_graph_spec(str(onnx_path)))
    assert json.load(open(f'{engine}.json'))['engine_sha256'] == digest(engine)
    assert read_engine_spec(str(engine)) == read_graph_spec(str(onnx_path))
    _flip_byte(engine, 100)
    with pytest.raises(ValueError, match=f'{re.escape(str(engine))} is damaged or was changed after it was built.*'
                                         'rebuild it with scripts/export.py --trt'):
        read_engine_spec(str(engine))

    # models written before checksums were recorded: a warning saying so, and they run
    old = _graph_written_before_checksums(str(onnx_path), tmp_path / 'old.onnx')
    with pytest.warns(UnverifiedArtifactWarning, match='old.onnx carries no checksum .* re-export'):
        assert main(_with_model(infer_args(source, out, old), '--onnx')) == 0
    assert _frames_out(out) == 4
    _ir_written_before_checksums(xml_path)
    with pytest.warns(UnverifiedArtifactWarning, match='v.xml carries no checksum'):
        assert main(_with_model(infer_args(source, tmp_path / 'out_ir.avi', str(xml_path)), '--openvino')) == 0
    assert _frames_out(tmp_path / 'out_ir.avi') == 4
    record = json.load(open(f'{engine}.json'))
    del record['engine_sha256']
    open(f'{engine}.json', 'w').write(json.dumps(record))
    with pytest.warns(UnverifiedArtifactWarning, match='records no checksum of .*g.engine'):
        read_engine_spec(str(engine))


@pytest.mark.filterwarnings('ignore:.*carries no checksum')
def test_tampered_newer_or_inconsistent_graph_metadata_is_one_clear_error(tmp_path, checkpoint):
    import onnx
    source = write_avi(tmp_path / 'in.avi', 4)
    out = tmp_path / 'out.avi'
    graph = _tiny_graph(checkpoint, tmp_path / 'g.onnx')
    newer = _graph_written_before_checksums(graph, tmp_path / 'newer.onnx', lookahead_frames=1)
    frames = _graph_written_before_checksums(graph, tmp_path / 'frames.onnx', frames=5)
    external = tmp_path / 'ext.onnx'  # the weights moved to an external data file: the checksum still holds
    onnx.save(onnx.load(graph), str(external), save_as_external_data=True, location='ext.onnx.data',
              size_threshold=0)
    main = script_main('infer_video')
    assert main(_with_model(infer_args(source, tmp_path / 'ext.avi', str(external)), '--onnx')) == 0
    assert _frames_out(tmp_path / 'ext.avi') == 4
    os.remove(tmp_path / 'ext.onnx.data')
    cases = [(newer, r"newer.onnx: its graph metadata has key\(s\) \['lookahead_frames'\] this vsrcompress does not "
                     r"know \(written by a newer vsrcompress, or edited\)"),
             (frames, r"frames.onnx: its input 'lq' has shape \(1, 3, 3, 64, 64\) but its metadata says "
                      r"\(1, 5, 3, 64, 64\)"),
             (str(external), r"ext.onnx keeps its weights in external data file\(s\) \['ext.onnx.data'\], which do "
                             r"not exist")]
    for path, message in cases:
        with pytest.raises(ValueError, match=message):
            main(_with_model(infer_args(source, out, path), '--onnx'))
        assert not out.exists()

    # the same in an IR's runtime info, and in a TensorRT engine's .json
    from vsrcompress.export.onnx_export import read_graph_spec
    from vsrcompress.export.openvino_export import export_openvino
    from vsrcompress.export.tensorrt_build import read_engine_spec, write_engine_spec
    from vsrcompress.inference.openvino_backend import OpenVINOBackend
    xml_path = tmp_path / 'v.xml'
    export_openvino(graph, str(xml_path), 'f32')
    _ir_written_before_checksums(xml_path)
    text = open(xml_path).read()
    assert text.count('<graph value="{&quot;frames&quot;') == 1
    open(xml_path, 'w').write(text.replace('<graph value="{&quot;frames&quot;',
                                           '<graph value="{&quot;lookahead_frames&quot;: 1, &quot;frames&quot;'))
    with pytest.raises(ValueError, match=r"v.xml: its graph metadata has key\(s\) \['lookahead_frames'\]"):
        OpenVINOBackend(str(xml_path))
    engine = tmp_path / 'g.engine'
    engine.write_bytes(b'engine bytes')
    write_engine_spec(str(engine), read_graph_spec(graph))
    record = json.load(open(f'{engine}.json'))
    open(f'{engine}.json', 'w').write(json.dumps({**record, 'frames': 'three'}))
    with pytest.raises(ValueError, match=r"g.engine.json: its graph metadata has frames='three', expected"):
        read_engine_spec(str(engine))


def test_export_on_a_full_disk_is_one_error_line_and_leaves_nothing(tmp_path, full_disk, checkpoint):
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'export.py'), '--checkpoint', checkpoint,
                           '--output', str(full_disk / 'g.onnx'), *_STREAM, '--no-check'],
                          capture_output=True, text=True, timeout=300)
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert proc.returncode == 1 and len(errors) == 1 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert f'cannot write {full_disk / "g.onnx"} (disk full' in errors[0], errors
    assert os.listdir(full_disk) == []
    export = script_main('export')
    openvino = ['--format', 'openvino', '--inference-precision', 'f32', '--no-check']
    with pytest.raises(OSError, match=re.escape(f'output: cannot write {full_disk / "v.xml"} (disk full')):
        export(['--checkpoint', checkpoint, '--output', str(full_disk / 'v.xml'), *_STREAM, *openvino])
    assert os.listdir(full_disk) == []
    from vsrcompress.export.openvino_export import export_openvino
    with pytest.raises(OSError, match=re.escape(f'output: cannot write {full_disk / "w.xml"} (disk full')):
        export_openvino(_tiny_graph(checkpoint, tmp_path / 'g.onnx'), str(full_disk / 'w.xml'), 'f32')
    assert os.listdir(full_disk) == []
    # the report on the full disk: the graph it describes (on a disk with room) is not left behind either
    (full_disk / 'filler').write_bytes(b'x' * 32 * 1024)
    with pytest.raises(OSError, match=f'report: cannot write {re.escape(str(full_disk / "r.json"))} .*removed what '
                                      f'this export wrote \\({re.escape(str(tmp_path / "h.onnx"))}\\)'):
        export(['--checkpoint', checkpoint, '--output', str(tmp_path / 'h.onnx'), '--report',
                str(full_disk / 'r.json'), *_STREAM, '--no-check'])
    assert os.listdir(full_disk) == ['filler'] and not os.path.exists(tmp_path / 'h.onnx')
    assert not glob.glob(str(tmp_path / '.tmp_*'))
    # with room: the same export completes
    assert export(['--checkpoint', checkpoint, '--output', str(tmp_path / 'h.onnx'), '--report',
                   str(tmp_path / 'r.json'), *_STREAM, '--no-check']) == 0
    assert json.load(open(tmp_path / 'r.json'))['sha256'] == {str(tmp_path / 'h.onnx'): digest(tmp_path / 'h.onnx')}
