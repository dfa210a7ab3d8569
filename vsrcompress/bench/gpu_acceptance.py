"""One GPU acceptance run: install what is missing from a wheel folder (offline), run the ``cuda`` tests, then time
full-size BasicVSR (64 ch, 30 blocks) dense vs pruned (MAC budget 0.25) in torch FP32 and FP16 at 540x960 LR x4.

Written for a machine with one NVIDIA GPU and no internet; ``docs/gpu.md`` says how to prepare the wheel folder.
Without a usable GPU it measures nothing, writes no results file and returns ``EXIT_NO_GPU``.
"""
import argparse
import copy
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable

import torch

from vsrcompress.bench.machine import machine_info
from vsrcompress.bench.timing import best_and_median, time_interleaved

EXIT_NO_GPU = 3  # no CUDA GPU visible: nothing measured (distinct from 1, a failure, and 2, argparse errors)
# (distribution, pip requirement) the GPU run needs besides torch; basicsr 1.4.2 is an sdist: wheel it beforehand
REQUIREMENTS = (('basicsr', 'basicsr==1.4.2'), ('torch-pruning', 'torch-pruning'),
                ('pytorch-quantization', 'pytorch-quantization==2.1.3'), ('lmdb', 'lmdb'), ('onnx', 'onnx'),
                ('onnxruntime', 'onnxruntime'), ('pytest', 'pytest'))
LQ_SIZE, SCALE, FRAMES = (540, 960), 4, 5


def _normalize(name: str) -> str:
    return re.sub(r'[-_.]+', '_', name).lower()


def missing_requirements(requirements: tuple = REQUIREMENTS) -> list[str]:
    """Pip requirements whose distribution is not installed in this interpreter."""
    missing = []
    for dist, requirement in requirements:
        try:
            importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            missing.append(requirement)
    return missing


def wheels_for(requirements: list[str], wheel_dir: str) -> tuple[dict[str, str], list[str]]:
    """Which files of ``wheel_dir`` (wheels or sdists) provide each requirement, and which have none.

    A pinned requirement (``name==version``) needs that version; only names and versions are matched here, pip
    checks the rest when it installs.
    """
    available = {}  # (normalized name, version) -> path
    for file in sorted(os.listdir(wheel_dir)) if os.path.isdir(wheel_dir) else []:
        stem = re.sub(r'(\.tar\.gz|\.zip|\.whl)$', '', file)
        if stem != file and '-' in stem:
            name, version = stem.split('-')[:2]
            available.setdefault((_normalize(name), version), os.path.join(wheel_dir, file))
    found, absent = {}, []
    for requirement in requirements:
        name, _, version = requirement.partition('==')
        paths = [path for (n, v), path in available.items() if n == _normalize(name) and v == (version or v)]
        if paths:
            found[requirement] = paths[0]
        else:
            absent.append(requirement)
    return found, absent


def install_offline(requirements: list[str], wheel_dir: str) -> None:
    """``pip install --no-index --find-links wheel_dir`` (no build isolation: basicsr builds against torch)."""
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-index', '--find-links', wheel_dir,
                    '--no-build-isolation', *requirements], check=True)


def gpu_unavailable_reason() -> str | None:
    """None when PyTorch sees a CUDA GPU, else why the acceptance run cannot measure anything."""
    if not torch.cuda.is_available():
        from vsrcompress.gpu_check import unusable_gpu_warning
        return unusable_gpu_warning() or (
            f'no CUDA GPU is visible to PyTorch {torch.__version__} (CUDA build: {torch.version.cuda}); check '
            f'nvidia-smi and that the torch wheel matches the driver (TORCH_SPEC in scripts/install.sh)')
    return None


def _variants() -> dict[str, torch.nn.Module]:
    from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet
    from vsrcompress.pruning import prune_network
    torch.manual_seed(0)
    dense = BasicVSRNet(num_feat=64, num_block=30).eval()
    pruned = copy.deepcopy(dense)
    prune_network(pruned, {'criterion': 'l1', 'round_to': 8, 'min_width': 8, 'mac_budget': 0.25,
                           'reference_size': list(LQ_SIZE)})
    return {'dense': dense, 'pruned mac0.25': pruned}


def measure(repeats: int, log: Callable[[str], None] = print) -> list[dict]:
    """ms/frame, FPS and torch.cuda.max_memory_allocated of every (network, precision), timed interleaved."""
    clip = torch.rand(1, FRAMES, 3, *LQ_SIZE, device='cuda')
    nets = {name: net.cuda() for name, net in _variants().items()}
    runners, peaks = {}, {}

    def runner(key: str, net: torch.nn.Module, fp16: bool) -> Callable[[], None]:
        def run() -> None:
            torch.cuda.reset_peak_memory_stats()
            with torch.inference_mode(), torch.autocast('cuda', dtype=torch.float16, enabled=fp16):
                net(clip)
            torch.cuda.synchronize()
            peaks[key] = max(peaks.get(key, 0), torch.cuda.max_memory_allocated())
        return run
    for name, net in nets.items():
        for precision in ('fp32', 'fp16'):
            runners[f'{name} torch {precision}'] = runner(f'{name} torch {precision}', net, precision == 'fp16')
    seconds = time_interleaved(runners, repeats, warmup=1, log=log)
    rows = []
    for key, times in seconds.items():
        stats = best_and_median(times)
        rows.append({'variant': key, 'ms_per_frame': 1000 * stats['median'] / FRAMES,
                     'fps': FRAMES / stats['median'], 'best_ms_per_frame': 1000 * stats['best'] / FRAMES,
                     'torch_max_memory_allocated_mib': peaks[key] / 2 ** 20})
    try:
        import tensorrt
        rows.append({'variant': f'tensorrt {tensorrt.__version__}', 'note': 'present; engine timing is not part of '
                     'this script yet (build with scripts/export.py --trt)'})
    except ImportError:
        rows.append({'variant': 'tensorrt', 'note': 'not present (the Python package tensorrt does not import)'})
    return rows


def markdown(report: dict) -> str:
    """The result table, with the card's name."""
    lines = [f"# GPU acceptance: {report['machine']['cuda_device']}", '',
             f"BasicVSR 64 ch / 30 blocks, {FRAMES} frames of {LQ_SIZE[0]}x{LQ_SIZE[1]} LR, x{SCALE}; median of "
             f"{report['repeats']} interleaved rounds. Memory: torch.cuda.max_memory_allocated (torch's allocator, "
             f"not the whole device).", '',
             '| variant | ms/frame | FPS | torch max allocated MiB |', '|---|---|---|---|']
    for row in report['rows']:
        if 'note' in row:
            lines.append(f"| {row['variant']} | {row['note']} | | |")
        else:
            lines.append(f"| {row['variant']} | {row['ms_per_frame']:.1f} | {row['fps']:.2f} | "
                         f"{row['torch_max_memory_allocated_mib']:.0f} |")
    return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> int:
    """Returns 0 on success, EXIT_NO_GPU without a GPU, 1 when wheels are missing or the cuda tests fail."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--wheels', help='folder of wheels/sdists prepared on an internet machine (docs/gpu.md)')
    parser.add_argument('--output-dir', default='results/benchmarks', help='where gpu.json and gpu.md go')
    parser.add_argument('--repeats', type=int, default=3, help='timed interleaved rounds')
    parser.add_argument('--skip-tests', action='store_true', help='measure only (no pytest -m cuda run)')
    args = parser.parse_args(argv)
    missing = missing_requirements()
    if missing:
        found, absent = wheels_for(missing, args.wheels or '')
        if absent:
            print(f'missing and not in --wheels {args.wheels!r}: {absent}; prepare them as docs/gpu.md says',
                  file=sys.stderr)
            return 1
        install_offline(list(found), args.wheels)
    reason = gpu_unavailable_reason()
    if reason:
        print(f'GPU acceptance not run: {reason}. Nothing was measured; no results written.', file=sys.stderr)
        return EXIT_NO_GPU
    started = time.perf_counter()
    if not args.skip_tests:
        tests = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-m', 'cuda', 'tests/test_cuda.py'])
        if tests.returncode != 0:
            print('the cuda tests failed; nothing measured', file=sys.stderr)
            return 1
    report = {'machine': machine_info(), 'repeats': args.repeats, 'rows': measure(args.repeats)}
    report['seconds'] = time.perf_counter() - started
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, 'gpu.json'), 'w') as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(args.output_dir, 'gpu.md'), 'w') as f:
        f.write(markdown(report))
    print(markdown(report))
    return 0
