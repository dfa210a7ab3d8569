"""Multi-process calibration: every rank must end up holding the same quantizer ranges.

Each rank calibrates on its own shard of clips, so ranges differ per rank; the max over ranks is the range that
covers every shard (and the one a single process calibrating on all shards with the max calibrator would find).
"""
import torch.distributed as dist
from pytorch_quantization.nn import TensorQuantizer
from torch import nn

from vsrcompress.collectives import collective_device


def sync_amax_across_ranks(net: nn.Module) -> int:
    """All-reduce (max) every quantizer's ``_amax`` buffer when torch.distributed is initialised.

    Returns:
        How many buffers were reduced (0 in a single process).
    """
    if not (dist.is_available() and dist.is_initialized()):
        return 0
    buffers = [m.amax for m in net.modules() if isinstance(m, TensorQuantizer) and m.amax is not None]
    device = collective_device()
    for amax in buffers:  # each buffer lives on the model's device, which need not be one the backend carries
        reduced = amax.detach().to(device)
        dist.all_reduce(reduced, op=dist.ReduceOp.MAX)
        amax.copy_(reduced.to(amax.device))
    return len(buffers)
