"""The full-size networks the CPU speed benchmarks time: dense, pruned to a MAC budget, and pruned INT8.

One home for ``cpu_backends`` and ``streaming``, so both time the same networks: the official configuration with
random weights (speed does not depend on their values; seed 0), a copy pruned by the L1 criterion to a MAC budget,
and that copy INT8-quantized, calibrated on footage windows, with the conv output ranges ``int8-ort`` needs.
"""
import copy
import os
import tempfile
import time
from collections.abc import Callable

import torch

from vsrcompress.export import read_footage_windows
from vsrcompress.pruning import prune_network
from vsrcompress.quantization import calibrate, quantize_network
from vsrcompress.quantization.output_ranges import calibrate_output_ranges
from vsrcompress.report.complexity import OFFICIAL_MODELS


def calibration_clips(clips: str | None, frames: int, count: int) -> list[torch.Tensor]:
    """``count`` LQ windows of ``frames`` frames from the train split of ``clips`` (None: the demo footage, made in a
    temporary folder), for INT8 calibration."""
    from vsrcompress.footage.demo import make_demo_footage

    with tempfile.TemporaryDirectory(prefix='bench_calibration_') as footage:
        root = clips
        if root is None:
            root = os.path.join(footage, 'demo')
            make_demo_footage(root, progress=False)
        return [w['lq'] for w in read_footage_windows(root, frames, 4, 'train', count)]


def build_variants(arch: str, network: dict, mac_budget: float, reference_size: tuple[int, int],
                   calib: list[torch.Tensor], log: Callable[[str], None]) -> dict:
    """``{'dense', 'pruned', 'pruned int8': (network, conv output ranges), 'widths', 'mac_fraction'}`` of ``arch``.

    Args:
        arch: A key of ``OFFICIAL_MODELS``.
        network: Options over the official configuration (tests: ``{'num_feat': 8, 'num_block': 1}``).
        mac_budget: MACs per frame of the pruned network as a fraction of dense.
        reference_size: LR (height, width) the MAC budget is counted at.
        calib: Calibration clips (``calibration_clips``).
        log: Progress lines.
    """
    cls, options = OFFICIAL_MODELS[arch]
    torch.manual_seed(0)
    dense = cls(**{**options, **network}).eval()
    pruned = copy.deepcopy(dense)
    started = time.perf_counter()
    pruning = prune_network(pruned, {'criterion': 'l1', 'round_to': 8, 'min_width': 8, 'mac_budget': mac_budget,
                                     'reference_size': list(reference_size)})
    log(f'{arch}: pruned to {100 * pruning["mac_fraction"]:.1f} % MACs in {time.perf_counter() - started:.0f} s')
    int8 = copy.deepcopy(pruned)
    quantize_network(int8, {})
    calibrate(int8, calib, {})
    ranges = calibrate_output_ranges(int8, calib, {})
    log(f'{arch}: INT8 calibrated on {len(calib)} footage windows')
    return {'dense': dense, 'pruned': pruned, 'pruned int8': (int8, ranges), 'widths': pruned.width_spec(),
            'mac_fraction': pruning['mac_fraction']}
