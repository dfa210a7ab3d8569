"""GPU paths, run where a CUDA GPU is visible (``pytest -m cuda tests/test_cuda.py``); skipped, with the reason,
elsewhere. Tiny models: each test takes seconds on a GPU. ``scripts/gpu_acceptance.py`` runs this file first."""
import glob
import importlib.util
import json

import pytest
import torch
from conftest import pruning_options, qat_options, read_train_log, run_entry, script_main, torchrun, write_video

from vsrcompress.quantization.config import CALIBRATORS

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU visible to PyTorch')]


def on_gpu(opt: dict) -> dict:
    opt['num_gpu'] = 1
    return opt


def final_checkpoint(workdir, name: str) -> str:
    return sorted(glob.glob(str(workdir / 'experiments' / name / 'models' / 'net_g_*.pth')))[-1]


def test_pruning_with_feature_distillation(tiny_footage, dense16_checkpoint, tmp_path):
    opt = pruning_options(tiny_footage, dense16_checkpoint, 'cuda_prune', 4)
    opt['train']['feature_distill_opt'] = {'layers': ['backward_trunk', 'forward_trunk']}
    run_entry('train.py', on_gpu(opt), tmp_path)
    assert torch.load(final_checkpoint(tmp_path, 'cuda_prune'), weights_only=True)['pruning']['steps_done'] == 2


@pytest.mark.parametrize('calibrator', CALIBRATORS)
def test_qat_with_every_calibrator(tiny_footage, dense16_checkpoint, tmp_path, calibrator):
    name = f'cuda_qat_{calibrator}'
    opt = qat_options(tiny_footage, dense16_checkpoint, name, 2, calibrator=calibrator)
    run_entry('train.py', on_gpu(opt), tmp_path)
    assert 'qat/ptq_psnr' in read_train_log(tmp_path / 'experiments' / name)


def test_one_process_torchrun_with_nccl(tiny_footage, dense16_checkpoint, tmp_path):
    opt = on_gpu(pruning_options(tiny_footage, dense16_checkpoint, 'cuda_nccl', 4))
    proc = run_entry('train.py', opt, tmp_path, '--launcher', 'pytorch', launcher=torchrun(1))
    assert 'Distributed: nccl backend' in proc.stdout + proc.stderr
    assert 'identical on 1 ranks' in read_train_log(tmp_path / 'experiments' / 'cuda_nccl')


def test_dense_training_then_infer_video_fp16_and_export(tiny_footage, dense16_checkpoint, tmp_path):
    opt = pruning_options(tiny_footage, dense16_checkpoint, 'cuda_trained', 2)
    opt['model_type'] = 'RecurrentVSRModel'
    del opt['pruning'], opt['train']['distill_opt']
    run_entry('train.py', on_gpu(opt), tmp_path)
    ckpt = final_checkpoint(tmp_path, 'cuda_trained')
    clip = write_video(str(tmp_path / 'in.mp4'), [torch.rand(40, 44, 3).mul(255).byte().numpy() for _ in range(3)])
    infer = script_main('infer_video')
    report = str(tmp_path / 'run.json')
    assert infer(['--input', clip, '--output', str(tmp_path / 'sr.mp4'), '--checkpoint', ckpt, '--device', 'cuda',
                  '--fp16', '--interval', '2', '--lookahead', '1', '--report', report, '--no-progress']) == 0
    assert json.load(open(report))['backend'] == 'torch'
    export = script_main('export')
    assert export(['--checkpoint', ckpt, '--output', str(tmp_path / 'net.onnx'), '--frames', '3', '--height', '40',
                   '--width', '44']) == 0


@pytest.mark.skipif(importlib.util.find_spec('tensorrt') is None, reason='needs TensorRT 10 (pip install tensorrt)')
def test_tensorrt_stateful_engine_streams_like_pytorch(tmp_path):
    from conftest import moving_frames, read_video, write_folder
    from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet
    from vsrcompress.checkpoint import network_checkpoint, save_atomic
    torch.manual_seed(0)
    arch = {'type': 'BasicVSRNet', 'num_feat': 8, 'num_block': 1, 'scale': 2}
    ckpt = str(tmp_path / 'net.pth')
    save_atomic(network_checkpoint(BasicVSRNet(8, 1, 2), arch), ckpt)
    graph = str(tmp_path / 'net.onnx')
    assert script_main('export')(['--checkpoint', ckpt, '--output', graph, '--interval', '3', '--lookahead', '2',
                                  '--dynamic', '--trt', '--trt-max-height', '64', '--trt-max-width', '64']) == 0
    source = write_folder(str(tmp_path / 'in'), moving_frames(11, 64, 64))
    infer = script_main('infer_video')
    assert infer(['--input', source, '--output', str(tmp_path / 'trt.avi'), '--engine', str(tmp_path / 'net.engine'),
                  '--device', 'cuda', '--no-progress']) == 0
    assert infer(['--input', source, '--output', str(tmp_path / 'torch.avi'), '--checkpoint', ckpt, '--interval', '3',
                  '--lookahead', '2', '--no-progress']) == 0
    trt, ref = read_video(str(tmp_path / 'trt.avi')), read_video(str(tmp_path / 'torch.avi'))
    assert len(trt) == len(ref) == 11
    # frames 0-8 from full calls as PyTorch's (the last call is mirrored up to the engine's 5 frames)
    assert max(abs(a.astype(int) - b.astype(int)).max() for a, b in zip(trt[:9], ref[:9])) <= 2
