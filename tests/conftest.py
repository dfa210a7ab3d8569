"""Shared test setup: vsrcompress must be imported before anything from basicsr (see vsrcompress/compat.py)."""
import vsrcompress  # noqa: F401

import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='session')
def tiny_footage(tmp_path_factory) -> str:
    """A small demo-footage dataset (2 train clips, 1 val clip, 4 frames, LQ 64x64, x4)."""
    from vsrcompress.footage.demo import make_demo_footage
    root = str(tmp_path_factory.mktemp('footage') / 'demo')
    make_demo_footage(root, seed=0, train_clips=2, val_clips=1, num_frames=4, gt_height=256, gt_width=256,
                      progress=False)
    return root


# a narrow HR tail and SpyNet: tiny BasicVSRNets that train and run fast on CPU
NARROW_WIDTHS = {'upsample': [8, 8], 'hr': 8, 'spynet': [[4, 8, 4, 2]] * 6}


@pytest.fixture(scope='module')
def narrow_checkpoint(tmp_path_factory) -> str:
    """A dense BasicVSRNet checkpoint (8 ch, 1 block, ``NARROW_WIDTHS``, seed 0) for script tests."""
    import torch
    from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet
    from vsrcompress.checkpoint import network_checkpoint, save_atomic
    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp('narrow') / 'narrow.pth')
    arch = {'type': 'BasicVSRNet', 'num_feat': 8, 'num_block': 1, 'scale': 4}
    save_atomic(network_checkpoint(BasicVSRNet(num_feat=8, num_block=1, widths=NARROW_WIDTHS), arch), path)
    return path


def footage_datasets(root: str, num_frame: int = 3, gt_size: int = 256) -> dict:
    """``datasets:`` options for the footage layout at ``root``."""
    return {
        'train': {'name': 'tiny_train', 'type': 'FootageRecurrentDataset', 'dataroot_gt': f'{root}/train/GT',
                  'dataroot_lq': f'{root}/train/LQ', 'meta_info_file': f'{root}/meta_info_train.txt',
                  'io_backend': {'type': 'disk'}, 'num_frame': num_frame, 'gt_size': gt_size, 'use_hflip': True,
                  'use_rot': True, 'num_worker_per_gpu': 0, 'batch_size_per_gpu': 1, 'dataset_enlarge_ratio': 1},
        'val': {'name': 'tiny_val', 'type': 'FootageTestDataset', 'dataroot_gt': f'{root}/val/GT',
                'dataroot_lq': f'{root}/val/LQ', 'meta_info_file': f'{root}/meta_info_val.txt',
                'io_backend': {'type': 'disk'}},
    }


def tiny_train_options(root: str, name: str = 'tiny', total_iter: int = 4, **network) -> dict:
    """A complete train option dict for a tiny BasicVSRNet on the footage at ``root``."""
    return {
        'name': name, 'model_type': 'RecurrentVSRModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': footage_datasets(root),
        'network_g': {'type': 'BasicVSRNet', 'num_feat': 8, 'num_block': 1, **network},
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {'ema_decay': 0.9, 'optim_g': {'type': 'AdamW', 'lr': 1e-3, 'weight_decay': 0.0},
                  'scheduler': {'type': 'CosineAnnealingRestartLR', 'periods': [max(10, total_iter)],
                                'restart_weights': [1], 'eta_min': 1e-5},
                  'total_iter': total_iter, 'warmup_iter': -1, 'fix_flow': 2,
                  'pixel_opt': {'type': 'CharbonnierLoss', 'loss_weight': 1.0, 'reduction': 'mean'}},
        'val': {'val_freq': 2, 'save_img': False,
                'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False}}},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': True},
    }


DENSE16_ARCH = {'type': 'BasicVSRNet', 'num_feat': 16, 'num_block': 1}


@pytest.fixture(scope='session')
def dense16_checkpoint(tmp_path_factory) -> str:
    """A dense BasicVSRNet checkpoint (16 ch, 1 block, seed 0): the input of the pruning and QAT model tests."""
    import torch
    from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet
    from vsrcompress.checkpoint import network_checkpoint, save_atomic
    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp('dense16') / 'dense.pth')
    save_atomic(network_checkpoint(BasicVSRNet(num_feat=16, num_block=1), DENSE16_ARCH), path)
    return path


def pruning_options(root: str, dense: str, name: str, total_iter: int, **pruning) -> dict:
    """PruningVSRModel options: prune ``dense`` to half width in 2 steps while training, output distillation."""
    opt = tiny_train_options(root, name=name, total_iter=total_iter, num_feat=16)
    opt['model_type'] = 'PruningVSRModel'
    opt['path']['pretrain_network_g'] = dense
    opt['train']['distill_opt'] = {'type': 'CharbonnierLoss', 'loss_weight': 1.0}
    opt['train']['ema_decay'] = 0
    opt['pruning'] = {'criterion': 'l1', 'ratio': 0.5, 'parts': ['trunk', 'blocks', 'tail'], 'round_to': 4,
                      'min_width': 4, 'steps': 2, 'step_interval': 2, **pruning}
    return opt


def qat_options(root: str, fp32: str, name: str, total_iter: int, **quantization) -> dict:
    """QATVSRModel options: calibrate ``fp32`` (max, SpyNet in float), then QAT with output distillation."""
    opt = tiny_train_options(root, name=name, total_iter=total_iter, num_feat=16)
    opt['model_type'] = 'QATVSRModel'
    opt['path']['pretrain_network_g'] = fp32
    opt['train'].update(fix_flow=None, distill_opt={'type': 'CharbonnierLoss', 'loss_weight': 1.0})
    opt['quantization'] = {'num_bits': 8, 'calibrator': 'max', 'calib_batches': 2, 'ptq_val_clips': 1,
                           'skip_parts': ['spynet'], **quantization}
    return opt


def run_entry(script: str, opt: dict, workdir, *args: str, launcher: list[str] | None = None,
              timeout: int = 600) -> subprocess.CompletedProcess:
    """Run a copy of the repo's ``train.py``/``test.py`` in ``workdir`` (so experiments/ lands there)."""
    shutil.copy(os.path.join(REPO, script), workdir / script)
    opt_path = workdir / f'{opt["name"]}.yml'
    opt_path.write_text(yaml.safe_dump(opt, sort_keys=False))
    cmd = [*(launcher or [sys.executable]), str(workdir / script), '-opt', str(opt_path), *args]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f'{" ".join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n'
                             f'{proc.stderr[-5000:]}')
    return proc


def script_main(name: str):
    """``main`` of ``scripts/<name>.py``, imported as a module (its ``__main__`` block not run), to call in-process."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f'script_{name}', os.path.join(REPO, 'scripts', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def as_parsed(opt: dict, is_train: bool = True) -> dict:
    """What basicsr's parse_options adds to an option dict, for calling ``build_model`` directly."""
    opt.update({'is_train': is_train, 'dist': False, 'rank': 0, 'world_size': 1, 'auto_resume': False})
    for phase, dataset in opt.get('datasets', {}).items():
        dataset.update(phase=phase.split('_')[0], scale=opt['scale'])
    return opt


def read_train_log(exp_dir) -> str:
    """All ``train_*.log`` files of an experiment folder, oldest first."""
    import glob
    return '\n'.join(open(p).read() for p in sorted(glob.glob(os.path.join(str(exp_dir), 'train_*.log'))))


def torchrun(nproc: int = 2) -> list[str]:
    """A ``torchrun`` launcher on a free local port, for ``run_entry(..., launcher=torchrun())``."""
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    return [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}', f'--master_port={port}']


@pytest.fixture(scope='module')
def one_thread():
    """One intra-op thread for a module: on a shared 2-core machine two threads fighting for a core made small
    convs up to 25x slower (opt in with ``pytestmark = pytest.mark.usefixtures('one_thread')``)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def moving_frames(count: int, height: int, width: int, step: int = 3) -> list[np.ndarray]:
    """A camera panning over a real photograph (BGR uint8): texture for codecs and real motion between frames."""
    from skimage import data as skdata
    photo = cv2.resize(skdata.astronaut()[:, :, ::-1], (width + count * step, height + count * step),
                       interpolation=cv2.INTER_AREA)
    return [np.ascontiguousarray(photo[i * step:i * step + height, i * step:i * step + width]) for i in range(count)]


def write_video(path, frames: list[np.ndarray], fourcc: str = 'mp4v', fps: float = 25.0) -> str:
    """``frames`` as a video file with OpenCV (``fourcc`` decides the codec)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, frames[0].shape[1::-1])
    assert writer.isOpened(), f'OpenCV cannot write {fourcc} to {path}'
    for frame in frames:
        writer.write(frame)
    writer.release()
    return str(path)


def write_folder(path, frames: list[np.ndarray]) -> str:
    """``frames`` as numbered PNGs (``frame_10`` after ``frame_9`` only in natural order)."""
    os.makedirs(path)
    for i, frame in enumerate(frames):
        assert cv2.imwrite(os.path.join(path, f'frame_{i}.png'), frame)
    return str(path)


def read_video(path: str) -> list[np.ndarray]:
    """Every frame OpenCV decodes from ``path``."""
    capture, frames = cv2.VideoCapture(path), []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames
