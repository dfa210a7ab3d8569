"""Interleaved timing: every compared callable runs once per round, the order reversed every other round.

On a shared machine a burst of load then slows all of them alike, so ratios from one run stay meaningful even
when absolute times move; the best round of each (the least disturbed) is kept next to the median.
"""
import statistics
import time
from collections.abc import Callable, Mapping


def time_interleaved(runners: Mapping[str, Callable[[], object]], repeats: int, warmup: int = 1,
                     log: Callable[[str], None] | None = None) -> dict[str, list[float]]:
    """Seconds per call of each runner over ``repeats`` timed rounds, after ``warmup`` untimed ones.

    Args:
        runners: Name -> a callable doing one unit of work (e.g. one window through one engine).
        repeats: Timed rounds (>= 1).
        warmup: Untimed rounds first (first-call costs: graph compilation, allocator growth, page faults).
        log: Progress lines, one per call (None: quiet).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f'repeats must be >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}')
    names = list(runners)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for rnd in range(warmup + repeats):
        for name in names if rnd % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            runners[name]()
            elapsed = time.perf_counter() - start
            if rnd >= warmup:
                seconds[name].append(elapsed)
            if log:
                log(f'round {rnd + 1}/{warmup + repeats}{" (warm-up)" if rnd < warmup else ""} {name}: '
                    f'{elapsed:.3f} s')
    return seconds


def best_and_median(seconds: list[float]) -> dict[str, float]:
    """``{'best': min, 'median': median}`` of a list of timings (seconds)."""
    return {'best': min(seconds), 'median': statistics.median(seconds)}
