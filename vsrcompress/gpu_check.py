"""Say loudly when the machine has an NVIDIA GPU that PyTorch cannot use.

The default torch wheel is built for a recent CUDA runtime; on an older driver ``torch.cuda.is_available()`` is
False and ``num_gpu: auto`` trains on the CPU without an error. ``nvidia-smi`` (shipped with the driver) still
lists the card, so the two disagreeing is the sign of a wheel/driver mismatch.
"""
import shutil
import subprocess

import torch


def nvidia_smi_gpus() -> list[str]:
    """The ``GPU 0: ...`` lines of ``nvidia-smi -L`` (empty without the tool or when it fails)."""
    tool = shutil.which('nvidia-smi')
    if not tool:
        return []
    try:
        proc = subprocess.run([tool, '-L'], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in proc.stdout.splitlines() if line.startswith('GPU ')] if proc.returncode == 0 \
        else []


def unusable_gpu_warning() -> str | None:
    """A warning when nvidia-smi sees a GPU but PyTorch does not, else None."""
    gpus = nvidia_smi_gpus()
    if not gpus or torch.cuda.is_available():
        return None
    return (f'WARNING: nvidia-smi lists {len(gpus)} GPU(s) ({gpus[0]}) but PyTorch {torch.__version__} (CUDA '
            f'{torch.version.cuda}) cannot use them, so num_gpu: auto would train on the CPU. The torch wheel '
            f'probably needs a newer driver: install a wheel for your CUDA version, e.g. TORCH_SPEC="--index-url '
            f'https://download.pytorch.org/whl/cu126 torch==2.14.1 torchvision==0.29.1" bash scripts/install.sh '
            f'(docs/gpu.md).')
