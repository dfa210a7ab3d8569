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
