"""CPU side of scripts/gpu_acceptance.py: which requirements are missing, which wheels satisfy them, no-GPU path."""
import os

import pytest
import torch
from conftest import script_main

from vsrcompress.bench.gpu_acceptance import EXIT_NO_GPU, missing_requirements, wheels_for


def test_missing_requirements_are_the_uninstalled_distributions():
    assert missing_requirements((('torch', 'torch'), ('no-such-dist-vsrc', 'no-such-dist-vsrc==1.0'))) == \
        ['no-such-dist-vsrc==1.0']


def test_wheel_discovery_matches_names_and_pinned_versions(tmp_path):
    for name in ('torch_pruning-1.6.1-py3-none-any.whl', 'basicsr-1.4.2-py3-none-any.whl', 'lmdb-1.4.1.tar.gz',
                 'pytorch_quantization-2.2.1-py3-none-any.whl', 'README.txt'):
        (tmp_path / name).write_text('')
    found, absent = wheels_for(['basicsr==1.4.2', 'torch-pruning', 'lmdb', 'pytorch-quantization==2.1.3', 'onnx'],
                               str(tmp_path))
    assert found == {'basicsr==1.4.2': str(tmp_path / 'basicsr-1.4.2-py3-none-any.whl'),
                     'torch-pruning': str(tmp_path / 'torch_pruning-1.6.1-py3-none-any.whl'),
                     'lmdb': str(tmp_path / 'lmdb-1.4.1.tar.gz')}
    assert absent == ['pytorch-quantization==2.1.3', 'onnx']  # 2.2.1 is not the pinned version
    assert wheels_for(['lmdb'], str(tmp_path / 'missing')) == ({}, ['lmdb'])


@pytest.mark.skipif(torch.cuda.is_available(), reason='a GPU is present: the no-GPU path does not apply')
def test_without_a_gpu_nothing_is_measured_or_written(tmp_path, capsys):
    out = tmp_path / 'bench'
    assert script_main('gpu_acceptance')(['--output-dir', str(out), '--skip-tests']) == EXIT_NO_GPU
    assert 'GPU acceptance not run: no CUDA GPU is visible to PyTorch' in capsys.readouterr().err
    assert not os.path.exists(out)


def fake_nvidia_smi(folder, monkeypatch, output: str) -> None:
    tool = folder / 'nvidia-smi'
    tool.write_text(f'#!/bin/sh\nprintf "{output}"\n')
    tool.chmod(0o755)
    monkeypatch.setenv('PATH', f'{folder}{os.pathsep}{os.environ["PATH"]}')


@pytest.mark.skipif(torch.cuda.is_available(), reason='PyTorch sees a GPU here: there is nothing to warn about')
def test_a_gpu_pytorch_cannot_use_is_warned_about(tmp_path, monkeypatch):
    from vsrcompress.gpu_check import unusable_gpu_warning
    fake_nvidia_smi(tmp_path, monkeypatch, 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1234)\\n')
    message = unusable_gpu_warning()
    assert message.startswith('WARNING: nvidia-smi lists 1 GPU(s) (GPU 0: NVIDIA H100') and 'TORCH_SPEC=' in message
    fake_nvidia_smi(tmp_path, monkeypatch, 'No devices were found\\n')
    assert unusable_gpu_warning() is None


@pytest.mark.skipif(torch.cuda.is_available(), reason='PyTorch sees a GPU here: there is nothing to warn about')
def test_train_and_test_warn_before_falling_back_to_the_cpu(tmp_path, monkeypatch, capsys):
    """train.py/test.py (compat.run_pipeline) print the warning unless the option file asks for the CPU."""
    from vsrcompress.compat import run_pipeline
    fake_nvidia_smi(tmp_path, monkeypatch, 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1234)\\n')
    ran = []
    for num_gpu, warned in (('auto', True), (0, False)):
        opt = tmp_path / f'{num_gpu}.yml'
        opt.write_text(f'name: x\nnum_gpu: {num_gpu}\n')
        assert run_pipeline(ran.append, str(tmp_path), ['-opt', str(opt)]) == 0
        assert ('WARNING: nvidia-smi lists 1 GPU(s)' in capsys.readouterr().err) == warned
    assert ran == [str(tmp_path)] * 2
