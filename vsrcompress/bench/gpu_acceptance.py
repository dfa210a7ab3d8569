"""One GPU acceptance run: install what is missing from a wheel folder (offline), run the ``cuda`` tests, then time
full-size BasicVSR (64 ch, 30 blocks) dense vs pruned (MAC budget 0.25) in torch FP32 and FP16 at 540x960 LR x4,
and in TensorRT FP16 and INT8 where TensorRT is installed.

Written for a machine with one NVIDIA GPU and no internet; ``docs/gpu.md`` says how to prepare the wheel folder.
Without a usable GPU it measures nothing, writes no results file and returns ``EXIT_NO_GPU``.
"""
import argparse
import copy
import importlib
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import torch

import vsrcompress
from vsrcompress.atomic_files import write_benchmark_result, write_figure
from vsrcompress.bench.machine import load_average, machine_info, machine_line
from vsrcompress.bench.timing import best_and_median, time_interleaved

EXIT_NO_GPU = 3  # no CUDA GPU visible: nothing measured (distinct from 1, a failure, and 2, argparse errors)
# (module, pip requirement) the GPU run needs besides torch. These install without their own requirements: all name
# torch (a second one would be fetched), and basicsr's others (tb-nightly, yapf, addict, future, opencv-python) are
# imported by nothing run here. torchvision must be the release paired with the GPU machine's torch.
NO_DEPS_REQUIREMENTS = (('basicsr', 'basicsr==1.4.2'), ('torch_pruning', 'torch-pruning==1.6.1'),
                        ('torchvision', 'torchvision'))
REQUIREMENTS = (('pytorch_quantization', 'pytorch-quantization==2.1.3'), ('lmdb', 'lmdb'), ('onnx', 'onnx'),
                ('onnxruntime', 'onnxruntime'), ('cv2', 'opencv-python-headless'), ('skimage', 'scikit-image'),
                ('scipy', 'scipy'), ('yaml', 'pyyaml'), ('requests', 'requests'), ('tqdm', 'tqdm'), ('PIL', 'pillow'),
                ('matplotlib', 'matplotlib'), ('tensorboard', 'tensorboard'), ('pytest', 'pytest'))
LQ_SIZE, SCALE, FRAMES = (540, 960), 4, 5
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _normalize(name: str) -> str:
    return re.sub(r'[-_.]+', '_', name).lower()


def missing_requirements(requirements: tuple) -> list[str]:
    """Pip requirements whose module this interpreter cannot import."""
    return [requirement for module, requirement in requirements if importlib.util.find_spec(module) is None]


def wheels_for(requirements: list[str], wheel_dir: str) -> tuple[dict[str, str], list[str]]:
    """Which files of ``wheel_dir`` (wheels or sdists) provide each requirement, and which have none.

    A pinned requirement (``name==version``) needs that version; only names and versions are matched here, pip
    checks the rest (and the requirements of requirements) when it installs.
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


def prepare_wheels(folder: str) -> None:
    """On a machine with internet and the GPU machine's Python and torch: fill ``folder`` with what ``--wheels``
    installs (basicsr 1.4.2 is an sdist: built into a wheel here; torchvision: the release installed here)."""
    pip = [sys.executable, '-m', 'pip']
    torchvision = 'torchvision==' + importlib.metadata.version('torchvision').split('+')[0]
    subprocess.run([*pip, 'wheel', '-w', folder, '--no-deps', '--no-build-isolation', NO_DEPS_REQUIREMENTS[0][1]],
                   check=True)
    subprocess.run([*pip, 'download', '-d', folder, '--no-deps', NO_DEPS_REQUIREMENTS[1][1], torchvision],
                   check=True)
    subprocess.run([*pip, 'download', '-d', folder, *(r for _, r in REQUIREMENTS)], check=True)


def install_offline(no_deps: list[str], with_deps: list[str], wheel_dir: str) -> None:
    """``pip install --no-index --find-links wheel_dir`` (no build isolation: nothing can be fetched).

    Raises:
        RuntimeError: pip failed (its own message is printed above), saying what to try.
    """
    pip = [sys.executable, '-m', 'pip', 'install', '--no-index', '--find-links', wheel_dir, '--no-build-isolation']
    for options, requirements in ((['--no-deps'], no_deps), ([], with_deps)):
        if requirements and subprocess.run([*pip, *options, *requirements]).returncode != 0:
            raise RuntimeError(f'pip could not install {requirements} from {wheel_dir} (its message is above); if '
                               f'this Python is externally managed, run in a venv made with '
                               f'`python3 -m venv --system-site-packages` (it keeps this torch)')
    importlib.invalidate_caches()  # this process imports the new packages afterwards
    importlib.reload(vsrcompress)  # registers with the new basicsr (its compat patches first)


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


def tensorrt_graphs(nets: dict[str, torch.nn.Module], folder: str, calib_clips: list[torch.Tensor]
                    ) -> dict[str, str]:
    """The ONNX graphs the TensorRT rows are built from, by row name: each network as an FP16 graph and, quantized
    and calibrated on ``calib_clips`` (CPU), as an ``int8-trt`` Q/DQ graph. Dynamic graphs (traced small, cheap at
    full width); TensorRT's strongly typed engines run the float layers of the INT8 graph in FP32."""
    from vsrcompress.export import DYNAMIC_TRACE_SIZE, export_onnx
    from vsrcompress.quantization import calibrate, quantize_network
    graphs = {}
    for name, net in nets.items():
        int8 = copy.deepcopy(net).cpu()
        quantize_network(int8, {})
        calibrate(int8, calib_clips, {})
        for precision, graph_net in (('fp16', net), ('int8-trt', int8)):
            path = os.path.join(folder, f"{name.replace(' ', '_')}_{precision}.onnx")
            export_onnx(graph_net, path, FRAMES, DYNAMIC_TRACE_SIZE, DYNAMIC_TRACE_SIZE, dynamic=True,
                        precision=precision)
            graphs[f'{name} tensorrt {precision}'] = path
    return graphs


def _tensorrt_engines(nets: dict[str, torch.nn.Module], folder: str, size: tuple[int, int],
                      log: Callable[[str], None]) -> tuple[dict, dict[str, dict]]:
    """TensorRTBackends of engines tuned for ``size`` (LQ height, width), and what building each took (or why it
    failed)."""
    from vsrcompress.export import build_tensorrt_engine
    from vsrcompress.inference import TensorRTBackend
    calib = [torch.rand(1, FRAMES, 3, 64, 64, generator=torch.Generator().manual_seed(seed)) for seed in (1, 2)]
    backends, builds = {}, {}
    for key, onnx_path in tensorrt_graphs(nets, folder, calib).items():
        started = time.perf_counter()
        try:
            engine_path = build_tensorrt_engine(onnx_path, onnx_path[:-len('.onnx')] + '.engine', *size,
                                                opt_height=size[0], opt_width=size[1])
            backends[key] = TensorRTBackend(engine_path)
        except Exception as err:  # a failed build is a finding of the acceptance run, kept in its table
            builds[key] = {'error': f'{type(err).__name__}: {err}'}
            log(f'{key}: engine build failed: {err}')
            continue
        engine = backends[key].engine
        memory = getattr(engine, 'device_memory_size_v2', None) or engine.device_memory_size  # _v2: TensorRT >= 10.1
        builds[key] = {'build_seconds': time.perf_counter() - started, 'engine_device_memory_mib': memory / 2 ** 20}
        log(f'{key}: engine built in {builds[key]["build_seconds"]:.0f} s')
    return backends, builds


def measure(nets: dict[str, torch.nn.Module], clip: torch.Tensor, repeats: int, folder: str,
            log: Callable[[str], None] = print) -> list[dict]:
    """ms/frame, FPS, torch.cuda.max_memory_allocated and PSNR against the network's torch FP32 output of every
    (network, engine, precision) on ``clip``, timed interleaved; TensorRT FP16/INT8 rows where TensorRT is usable.

    Runs on the clip's device: the acceptance run gives full-size networks and a CUDA clip, the tests tiny ones on
    the CPU (no memory column, no TensorRT). Imports the project's engines here, not at the top: they need the
    wheels ``main`` installs first.
    """
    from vsrcompress.export import tensorrt_unavailable_reason
    from vsrcompress.metrics import unit_range_psnr
    device, frames = clip.device, clip.shape[1]
    nets = {name: net.to(device) for name, net in nets.items()}
    runners, peaks, outputs = {}, {}, {}

    def timed(key: str, forward: Callable[[], torch.Tensor]) -> Callable[[], None]:
        def run() -> None:
            if device.type == 'cuda':
                torch.cuda.reset_peak_memory_stats()
            with torch.inference_mode():
                out = forward()
            if device.type == 'cuda':
                torch.cuda.synchronize()
                peaks[key] = max(peaks.get(key, 0), torch.cuda.max_memory_allocated())
            if key not in outputs:  # the warm-up round: not timed
                outputs[key] = out.float()
        return run

    def autocast(net: torch.nn.Module, fp16: bool) -> Callable[[], torch.Tensor]:
        def forward() -> torch.Tensor:
            with torch.autocast(device.type, dtype=torch.float16, enabled=fp16):
                return net(clip)
        return forward
    for name, net in nets.items():
        for precision in ('fp32', 'fp16'):
            key = f'{name} torch {precision}'
            runners[key] = timed(key, autocast(net, precision == 'fp16'))
    trt_reason = tensorrt_unavailable_reason() if device.type == 'cuda' else f'TensorRT needs a CUDA clip, not {device}'
    builds = {}
    if trt_reason is None:
        backends, builds = _tensorrt_engines(nets, folder, tuple(clip.shape[-2:]), log)
        for key, backend in backends.items():
            runners[key] = timed(key, lambda backend=backend, lq=clip.to(backend.dtype): backend.run(lq))
    seconds = time_interleaved(runners, repeats, warmup=1, log=log)
    rows = []
    for key, times in seconds.items():
        stats = best_and_median(times)
        reference = outputs[key.split(' torch ')[0].split(' tensorrt ')[0] + ' torch fp32']
        memory = {'torch_max_memory_allocated_mib': peaks[key] / 2 ** 20} if key in peaks else {}
        rows.append({'variant': key, 'ms_per_frame': 1000 * stats['median'] / frames,
                     'fps': frames / stats['median'], 'best_ms_per_frame': 1000 * stats['best'] / frames, **memory,
                     'psnr_vs_torch_fp32_db': unit_range_psnr(reference, outputs[key]), **builds.pop(key, {})})
    rows += [{'variant': key, 'note': f'not timed: {build["error"]}'} for key, build in builds.items()]
    if trt_reason:
        rows.append({'variant': 'tensorrt', 'note': f'not present: {trt_reason}'})
    return rows


def markdown(report: dict) -> str:
    """The result table, with the card's name."""
    lines = [f"# GPU acceptance: {report['machine']['cuda_device']}", '',
             f"BasicVSR 64 ch / 30 blocks, {FRAMES} frames of {LQ_SIZE[0]}x{LQ_SIZE[1]} LR, x{SCALE}; median of "
             f"{report['repeats']} interleaved rounds. Memory: torch.cuda.max_memory_allocated (torch's allocator, "
             f"not the whole device: for TensorRT only the I/O tensors; the engine's own memory is its column). "
             f"PSNR against the same network's torch FP32 output. TensorRT engines are strongly typed: `fp16` from "
             f"the FP16 graph, `int8-trt` from the Q/DQ graph (calibrated on random clips) with float layers in "
             f"FP32; profile tuned for {LQ_SIZE[0]}x{LQ_SIZE[1]}.", '', machine_line(report['machine']), '',
             '| variant | ms/frame | FPS | torch max allocated MiB | PSNR vs torch FP32 dB | TensorRT engine MiB | '
             'engine build s |', '|---|---|---|---|---|---|---|']
    for row in report['rows']:
        if 'note' in row:
            lines.append(f"| {row['variant']} | {row['note']} | | | | | |")
            continue
        memory, engine, build = (f"{row[k]:.0f}" if k in row else '-' for k in (
            'torch_max_memory_allocated_mib', 'engine_device_memory_mib', 'build_seconds'))
        lines.append(f"| {row['variant']} | {row['ms_per_frame']:.1f} | {row['fps']:.2f} | {memory} | "
                     f"{row['psnr_vs_torch_fp32_db']:.2f} | {engine} | {build} |")
    return '\n'.join(lines) + '\n'


def plot(report: dict, path: str) -> None:
    """FPS of every timed row, one bar each."""
    from matplotlib import pyplot as plt
    rows = [row for row in report['rows'] if 'fps' in row]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    ax.barh([row['variant'] for row in rows], [row['fps'] for row in rows], color='tab:blue')
    ax.invert_yaxis()
    ax.set_xlabel(f'frames per second ({LQ_SIZE[1]}x{LQ_SIZE[0]} -> x{SCALE})')
    ax.set_title(f"BasicVSR on {report['machine']['cuda_device']}")
    fig.tight_layout()
    write_figure(path, fig)


def main(argv: list[str] | None = None) -> int:
    """Returns 0 on success, EXIT_NO_GPU without a GPU, 1 when wheels are missing or do not install, the cuda
    tests fail or a TensorRT engine fails to build (the table is written, with the error in that row)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])  # the first paragraph, whole
    parser.add_argument('--wheels', help='folder of wheels prepared with --prepare-wheels, installed offline')
    parser.add_argument('--prepare-wheels', metavar='FOLDER',
                        help='on an internet machine with the same Python and torch: fill FOLDER, then stop')
    parser.add_argument('--output-dir', default='results/benchmarks', help='where gpu.json and gpu.md go')
    parser.add_argument('--repeats', type=int, default=3, help='timed interleaved rounds')
    parser.add_argument('--skip-tests', action='store_true', help='measure only (no pytest -m cuda run)')
    args = parser.parse_args(argv)
    if args.prepare_wheels:
        prepare_wheels(args.prepare_wheels)
        print(f'wheels for the GPU machine are in {args.prepare_wheels}; there: '
              f'python scripts/gpu_acceptance.py --wheels {args.prepare_wheels}')
        return 0
    no_deps, with_deps = missing_requirements(NO_DEPS_REQUIREMENTS), missing_requirements(REQUIREMENTS)
    if no_deps or with_deps:
        _, absent = wheels_for(no_deps + with_deps, args.wheels or '')
        if absent:
            print(f'missing and not in --wheels {args.wheels!r}: {absent}; prepare the folder with '
                  f'--prepare-wheels as docs/gpu.md says', file=sys.stderr)
            return 1
        try:
            install_offline(no_deps, with_deps, args.wheels)
        except RuntimeError as err:
            print(err, file=sys.stderr)
            return 1
    reason = gpu_unavailable_reason()
    if reason:
        print(f'GPU acceptance not run: {reason}. Nothing was measured; no results written.', file=sys.stderr)
        return EXIT_NO_GPU
    started = time.perf_counter()
    if not args.skip_tests:
        path = os.pathsep.join(p for p in (REPO, os.environ.get('PYTHONPATH')) if p)  # vsrcompress needs no install
        tests = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-m', 'cuda', 'tests/test_cuda.py'], cwd=REPO,
                               env={**os.environ, 'PYTHONPATH': path})
        if tests.returncode != 0:
            print('the cuda tests failed; nothing measured', file=sys.stderr)
            return 1
    machine = machine_info()
    with tempfile.TemporaryDirectory() as folder:
        rows = measure(_variants(), torch.rand(1, FRAMES, 3, *LQ_SIZE, device='cuda'), args.repeats, folder)
    report = {'machine': machine, 'repeats': args.repeats, 'rows': rows, 'seconds': time.perf_counter() - started}
    machine['load_average_after'] = load_average()
    os.makedirs(args.output_dir, exist_ok=True)
    write_benchmark_result(os.path.join(args.output_dir, 'gpu'), report, markdown(report), plot)
    failed = [row['variant'] for row in rows if row.get('note', '').startswith('not timed')]
    if failed:
        print(f'TensorRT engines failed to build: {failed} (see the table)', file=sys.stderr)
    return 1 if failed else 0
