"""CPU side of scripts/gpu_acceptance.py: which requirements are missing, which wheels satisfy them, the graphs
TensorRT engines are built from, the measured rows (tiny networks on the CPU), the table, the no-GPU path."""
import os

import onnx
import pytest
import torch
from conftest import NARROW_WIDTHS, script_main

from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet
from vsrcompress.bench.gpu_acceptance import (EXIT_NO_GPU, FRAMES, NO_DEPS_REQUIREMENTS, REQUIREMENTS, install_offline,
                                              markdown, measure, missing_requirements, plot, tensorrt_graphs,
                                              wheels_for)
from vsrcompress.bench.machine import machine_info, machine_line
from vsrcompress.export import read_graph_spec
from vsrcompress.export.onnx_check import compare_with_torch
from vsrcompress.quantization.quantizers import is_quantized


def test_missing_requirements_are_the_modules_that_do_not_import():
    assert missing_requirements((('torch', 'torch'), ('no_such_module_vsrc', 'no-such-dist-vsrc==1.0'))) == \
        ['no-such-dist-vsrc==1.0']
    assert missing_requirements(NO_DEPS_REQUIREMENTS + REQUIREMENTS) == []  # this machine has everything


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


def test_a_failed_offline_install_says_which_requirements_and_folder(tmp_path):
    with pytest.raises(RuntimeError, match=r"pip could not install \['no-such-dist-vsrc==1.0'\] from .*wheels.*venv"):
        install_offline([], ['no-such-dist-vsrc==1.0'], str(tmp_path / 'wheels'))


def test_tensorrt_rows_are_built_from_an_fp16_graph_and_a_calibrated_qdq_graph(tmp_path):
    torch.manual_seed(0)
    net = BasicVSRNet(num_feat=8, num_block=1, widths=NARROW_WIDTHS).eval()
    calib = [torch.rand(1, FRAMES, 3, 64, 64, generator=torch.Generator().manual_seed(1))]
    graphs = tensorrt_graphs({'pruned mac0.25': net}, str(tmp_path), calib)
    assert set(graphs) == {'pruned mac0.25 tensorrt fp16', 'pruned mac0.25 tensorrt int8-trt'}
    for key, path in graphs.items():
        spec = read_graph_spec(path)
        assert (spec.precision, spec.frames, spec.dynamic) == (key.split()[-1], FRAMES, True)
    ops = {name: [node.op_type for node in onnx.load(path).graph.node] for name, path in graphs.items()}
    assert 'QuantizeLinear' not in ops['pruned mac0.25 tensorrt fp16']
    assert ops['pruned mac0.25 tensorrt int8-trt'].count('QuantizeLinear') > 0
    fp16 = compare_with_torch(graphs['pruned mac0.25 tensorrt fp16'], net, [(64, 96)])[0]
    int8 = compare_with_torch(graphs['pruned mac0.25 tensorrt int8-trt'], net, [(64, 96)], clips=calib)[0]
    assert fp16.psnr_db > 60 and int8.psnr_db > 40  # both against the float network (its bilinear base dominates)
    assert not is_quantized(net)  # a copy was quantized


def test_measured_rows_time_each_network_in_fp32_and_fp16_against_its_fp32_output(tmp_path):
    """The acceptance run's timing and row path on tiny networks: a row per (network, precision) with its own speed
    and PSNR against the same network in FP32, no memory column off CUDA, and a row saying TensorRT was not run."""
    torch.manual_seed(0)
    nets = {'dense': BasicVSRNet(num_feat=8, num_block=1, widths=NARROW_WIDTHS).eval(),
            'pruned': BasicVSRNet(num_feat=8, num_block=1, widths=NARROW_WIDTHS).eval()}
    clip = torch.rand(1, 3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    lines = []
    rows = measure(nets, clip, 2, str(tmp_path), lines.append)
    assert [row['variant'] for row in rows] == ['dense torch fp32', 'dense torch fp16', 'pruned torch fp32',
                                                'pruned torch fp16', 'tensorrt']
    assert len(lines) == 3 * 4 and lines[0].startswith('round 1/3 (warm-up) dense torch fp32')
    for row in rows[:4]:
        assert row['best_ms_per_frame'] <= row['ms_per_frame'] and row['fps'] == pytest.approx(
            1000 / row['ms_per_frame'])
        assert 'torch_max_memory_allocated_mib' not in row
    assert rows[0]['psnr_vs_torch_fp32_db'] == float('inf')
    assert 35 < rows[1]['psnr_vs_torch_fp32_db'] < 120  # FP16 rounding, against the same network's FP32 output
    assert rows[-1] == {'variant': 'tensorrt', 'note': 'not present: TensorRT needs a CUDA clip, not cpu'}
    table = markdown({'machine': dict(machine_info(), cuda_device='none (CPU test)'), 'repeats': 2, 'rows': rows})
    assert '| dense torch fp32 | ' in table and '| inf | - | - |' in table


def test_the_table_names_the_card_and_says_what_was_not_timed(tmp_path):
    timed = {'ms_per_frame': 20.0, 'fps': 50.0, 'best_ms_per_frame': 19.0, 'torch_max_memory_allocated_mib': 900.0,
             'psnr_vs_torch_fp32_db': 48.25}
    machine = dict(machine_info(), cuda_device='NVIDIA H200')
    report = {'machine': machine, 'repeats': 3, 'rows': [
        {'variant': 'dense torch fp16', **timed},
        {'variant': 'dense tensorrt int8-trt', **timed, 'build_seconds': 61.0, 'engine_device_memory_mib': 700.0},
        {'variant': 'pruned mac0.25 tensorrt fp16', 'note': 'not timed: RuntimeError: TensorRT could not parse'},
        {'variant': 'tensorrt', 'note': 'not present: the Python package `tensorrt` is not installed'}]}
    table = markdown(report)
    assert table.startswith('# GPU acceptance: NVIDIA H200') and machine_line(machine) in table
    assert '| dense torch fp16 | 20.0 | 50.00 | 900 | 48.25 | - | - |' in table
    assert '| dense tensorrt int8-trt | 20.0 | 50.00 | 900 | 48.25 | 700 | 61 |' in table
    assert '| tensorrt | not present: the Python package `tensorrt` is not installed |' in table
    plot(report, str(tmp_path / 'gpu.png'))
    assert (tmp_path / 'gpu.png').read_bytes().startswith(b'\x89PNG')


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
