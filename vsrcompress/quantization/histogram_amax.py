"""Activation ranges from a histogram of |x|: the MSE and entropy (KL) searches, runnable on CPU.

pytorch-quantization 2.1.3 has both, but its MSE search calls ``.cuda()`` (fails without a GPU) and its entropy
search loops in Python over every bin pair (about 4 s per quantizer at 2048 bins, measured here). These versions
compute the same quantities on whatever device holds the histogram; ``tests/test_quantization.py`` checks the
entropy result against the library's own function.
"""
import numpy as np
import torch
from scipy.special import rel_entr

START_BIN = 128  # pytorch-quantization's default: candidate ranges start at bin 128
EPSILON = 1.0 / (1 << 24)  # below this amax pytorch-quantization quantizes everything to zero
CHUNK = 256  # candidate ranges evaluated together by the MSE search


def mse_errors(hist: torch.Tensor, edges: torch.Tensor, num_bits: int,
               start_bin: int = START_BIN) -> tuple[torch.Tensor, torch.Tensor]:
    """Bin centres and, for each candidate amax ``centers[start_bin:]``, the histogram-weighted squared error.

    Everything is computed on the histogram's device: pytorch-quantization's ``HistogramCalibrator`` keeps the
    histogram on the input's device (CUDA in training) but makes its first bin edges with ``torch.linspace`` on
    CPU, so the edges are moved to the histogram.
    """
    counts = torch.as_tensor(hist).float().flatten()
    edges = torch.as_tensor(edges).to(device=counts.device, dtype=torch.float32).flatten()
    centers = (edges[1:] + edges[:-1]) / 2
    size = min(len(counts), len(centers))  # the library's growing histogram may hold one edge too many
    counts, centers = counts[:size], centers[:size]
    if size <= start_bin:
        raise ValueError(f'mse calibration needs more than {start_bin} histogram bins, got {size}')
    bound = 2.0 ** (num_bits - 1) - 1
    errors = []
    for candidates in centers[start_bin:].unsqueeze(1).split(CHUNK):  # (chunk, bins) at a time bounds the memory
        scale = torch.where(candidates > EPSILON, bound / candidates, torch.zeros_like(candidates))
        quantized = torch.clamp((centers * scale).round(), -bound, bound) / torch.where(scale > 0, scale, 1.0)
        errors.append(((quantized - centers) ** 2 * counts).mean(dim=1))
    return centers, torch.cat(errors)


def mse_amax(hist: torch.Tensor, edges: torch.Tensor, num_bits: int, start_bin: int = START_BIN) -> torch.Tensor:
    """The bin centre that, used as amax, minimises the histogram-weighted squared fake-quantization error."""
    centers, errors = mse_errors(hist, edges, num_bits, start_bin)
    return centers[start_bin + int(torch.argmin(errors))].detach().clone()


def entropy_amax(hist: torch.Tensor, edges: torch.Tensor, num_bits: int, start_bin: int = START_BIN) -> torch.Tensor:
    """The bin edge whose clipped, 2**(num_bits-1)-level version of the histogram has the least KL divergence.

    Same algorithm as TensorRT's entropy calibration and pytorch-quantization's ``_compute_amax_entropy``
    (including its last-minimum tie break), vectorised per candidate.
    """
    bins = np.asarray(torch.as_tensor(hist).int().cpu().numpy(), dtype=np.int64).copy()
    edges = torch.as_tensor(edges).cpu().numpy()
    if len(bins) < start_bin:
        raise ValueError(f'entropy calibration needs at least {start_bin} histogram bins, got {len(bins)}')
    bins[0] = bins[1]  # the zero bin is dominated by exact zeros (ReLU, padding); the library does the same
    levels = 1 << (num_bits - 1)
    tail = np.concatenate([np.cumsum(bins[::-1])[::-1], [0]])  # tail[i] = sum(bins[i:])
    divergences = []
    for i in range(start_bin, len(bins) + 1):
        head = bins[:i]
        level = np.digitize(np.arange(i), np.linspace(0, i, num=levels + 1)) - 1
        nonzero = head != 0
        sums = np.bincount(level[nonzero], weights=head[nonzero], minlength=levels)
        members = np.bincount(level[nonzero], minlength=levels)
        mean = np.divide(sums, members, out=np.zeros(levels), where=members > 0)
        expanded = np.where(nonzero, mean[level], 0.0)
        reference = head.astype(np.float64)
        reference[-1] += tail[i]
        # scipy.stats.entropy(reference, expanded) spelled out: it costs 10x more in per-call overhead
        divergences.append(np.sum(rel_entr(reference / np.sum(reference), expanded / np.sum(expanded))))
    divergences = np.array(divergences)
    last_argmin = len(divergences) - 1 - int(np.argmin(divergences[::-1]))
    return torch.tensor(float(edges[last_argmin + start_bin]), dtype=torch.float32)
