"""Where tensors handed to torch.distributed collectives must live: on a device the process group's backend carries.

NCCL carries only CUDA tensors ("No backend type associated with device type cpu" for a CPU tensor); gloo carries
CPU (and CUDA) tensors. Every collective in vsrcompress moves its tensor to ``collective_device()`` first, so the same
code runs under torchrun with NCCL on GPUs and with gloo on CPU. No basicsr import: engines use it too.
"""
import torch
import torch.distributed as dist


def collective_device(group: dist.ProcessGroup | None = None) -> torch.device:
    """CPU when the group's backend carries CPU tensors (gloo, mpi, ucc), else the current CUDA device (nccl).

    Args:
        group: the process group (default: the default group, which must be initialised).
    """
    backend = str(dist.get_backend(group))
    devices = dist.Backend.backend_capability.get(backend.lower(), ['cpu'])
    if 'cpu' in devices:
        return torch.device('cpu')
    if 'cuda' in devices:
        return torch.device('cuda', torch.cuda.current_device()) if torch.cuda.is_available() else torch.device('cuda')
    raise RuntimeError(f'torch.distributed backend {backend!r} carries {devices} tensors; vsrcompress supports '
                       f'backends that carry cpu or cuda tensors (gloo, nccl).')
