"""What a measurement ran on: CPU model and its matrix/vector flags, threads, library versions, load average.

Speed ratios between engines depend on the CPU's instruction sets (AVX-512 VNNI for INT8, AVX512-BF16 or AMX for
BF16), so every benchmark records them next to its numbers.
"""
import importlib.metadata
import os
import platform
import time

# The flags (as /proc/cpuinfo names them) that decide which kernels ONNX Runtime, OpenVINO and PyTorch can use.
CPU_FEATURE_FLAGS = ('avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'avx512_fp16', 'avx_vnni', 'amx_tile',
                     'amx_bf16', 'amx_int8', 'amx_fp16')
_VERSIONED = ('torch', 'onnxruntime', 'openvino', 'onnx', 'torch-pruning', 'pytorch-quantization')


def _cpuinfo_field(name: str) -> str | None:
    try:
        with open('/proc/cpuinfo') as info:
            for line in info:
                key, sep, value = line.partition(':')
                if sep and key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU's model name with its family and model numbers (``/proc/cpuinfo``), or what ``platform`` knows where
    that file is missing. The numbers tell generations apart where a virtual machine names only the brand ("AMD
    EPYC" is family 25 for Zen 3/4 and 26 for Zen 5, which runs AVX-512 at full width)."""
    name, family, model = (_cpuinfo_field(field) for field in ('model name', 'cpu family', 'model'))
    if name is None:
        return platform.processor() or platform.machine()
    return f'{name} (family {family}, model {model})' if family and model else name


def cpu_flags() -> list[str]:
    """The ``CPU_FEATURE_FLAGS`` this CPU has, in that order (empty where ``/proc/cpuinfo`` is missing)."""
    flags = set((_cpuinfo_field('flags') or '').split())
    return [flag for flag in CPU_FEATURE_FLAGS if flag in flags]


def load_average() -> list[float]:
    """The 1/5/15-minute load average, rounded: how busy the machine was around a measurement."""
    return [round(v, 2) for v in os.getloadavg()]


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info(threads: int | None = None) -> dict:
    """Date, host, CPU model and feature flags, CPU count, ``threads`` used, GPU, versions, load average now."""
    import torch

    return {'when': time.strftime('%Y-%m-%d %H:%M:%S %Z'), 'host': platform.node(), 'platform': platform.platform(),
            'cpu_model': cpu_model(), 'cpu_flags': cpu_flags(), 'cpus': os.cpu_count(), 'threads': threads,
            'cuda_device': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            'python': platform.python_version(), 'versions': {p: _version(p) for p in _VERSIONED},
            'load_average_before': load_average()}


def machine_line(machine: dict) -> str:
    """One Markdown sentence naming what a result ran on (``machine_info`` plus ``load_average_after``, if set)."""
    versions = ', '.join(f'{k} {v}' for k, v in machine['versions'].items() if v)
    gpu = f"; GPU {machine['cuda_device']}" if machine.get('cuda_device') else ''
    loads = [('before', machine['load_average_before']), ('after', machine.get('load_average_after'))]
    load = ', '.join(f"{'/'.join(map(str, v))} {k}" for k, v in loads if v)
    return (f"Machine: {machine['cpu_model']}, {machine['cpus']} CPUs, {machine['threads']} threads, flags "
            f"{', '.join(machine['cpu_flags']) or 'none listed'}{gpu}; {versions}; load average (1/5/15 min) {load} "
            f"({machine['when']}, host {machine['host']}).")
