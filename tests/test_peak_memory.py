"""The peak-memory child process: a real allocation measured, and a child that raises, is killed or hangs reported
as a clear error without hanging the parent."""
import functools
import operator
import os
import time

import pytest

from vsrcompress.bench.peak_memory import forward_peak, peak_memory_unavailable, run_in_children

MIB = 1 << 20

pytestmark = pytest.mark.skipif(peak_memory_unavailable() is not None, reason='needs Linux /proc/self/clear_refs')


def test_allocation_measured_and_failures_reported_without_hanging():
    allocate = functools.partial(functools.partial, os.urandom, 64 * MIB)  # setup() -> run(): 64 MiB touched
    result, error = run_in_children({'allocates': (forward_peak, (allocate,))}, timeout=300)['allocates']
    assert error is None and 60 <= result['forward_peak_mib'] < 200 and result['peak_rss_mib'] > 60
    failed = run_in_children({'raises': (operator.truediv, (1, 0)), 'killed': (os.abort, ())}, timeout=300)
    assert failed['raises'] == (None, 'the measuring process failed: ZeroDivisionError: division by zero')
    assert failed['killed'][0] is None and 'died (exit code -6' in failed['killed'][1]
    started = time.monotonic()
    assert run_in_children({'hangs': (time.sleep, (600,))}, timeout=5) == {
        'hangs': (None, 'the measuring process failed: no answer within 5 s; stopped')}
    assert time.monotonic() - started < 30
