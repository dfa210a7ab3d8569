"""Peak working memory of one forward, measured in a fresh child process that may fail without hanging the parent.

A fresh process (multiprocessing ``spawn``) counts neither the parent's loading nor other models' allocator caches.
The child builds what it runs, resets its RSS high-water mark (Linux ``/proc/self/clear_refs``, which plain
``ru_maxrss`` cannot do), runs once and reports the high-water mark and its rise over the RSS before the run. A child
that raises, is killed (out of memory) or runs past the timeout is reported as an error with the reason; the parent
never waits forever.
"""
import multiprocessing
import os
import time
from collections.abc import Callable, Mapping

_CLEAR_REFS = '/proc/self/clear_refs'


def peak_memory_unavailable() -> str | None:
    """Why the high-water mark cannot be reset on this system, or None where it can."""
    if not os.access(_CLEAR_REFS, os.W_OK):
        return 'needs Linux /proc/self/clear_refs to reset the RSS high-water mark'
    return None


def _status_mib(key: str) -> float:
    with open('/proc/self/status') as status:
        return next(int(line.split()[1]) for line in status if line.startswith(key + ':')) / 1024


def forward_peak(setup: Callable[..., Callable[[], object]], *args: object) -> dict[str, float]:
    """In this process: ``run = setup(*args)``, reset the high-water mark, ``run()`` once, report its memory.

    Returns:
        ``peak_rss_mib`` (the high-water mark during ``run``) and ``forward_peak_mib`` (its rise over the RSS
        before ``run``: the working memory of the forward).
    """
    run = setup(*args)
    with open(_CLEAR_REFS, 'w') as refs:
        refs.write('5')  # Linux >= 4.0: the high-water mark VmHWM := the current VmRSS
    before = _status_mib('VmRSS')
    run()
    peak = _status_mib('VmHWM')
    return {'peak_rss_mib': peak, 'forward_peak_mib': peak - before}


def _child(conn, target: Callable[..., dict], args: tuple) -> None:
    try:
        conn.send({'result': target(*args)})
    except Exception as err:  # reported to the parent, which records it as the reason
        conn.send({'error': f'{type(err).__name__}: {err}'})
    finally:
        conn.close()


def run_in_children(jobs: Mapping[str, tuple[Callable[..., dict], tuple]], timeout: float = 3600
                    ) -> dict[str, tuple[dict | None, str | None]]:
    """Run each ``target(*args)`` in its own fresh process, all at once; ``{name: (result, None) or (None, why)}``.

    Each child measures only its own process, so children may overlap in time. Targets and arguments must pickle
    (module-level functions), and the caller's main module must be safe to import (``if __name__ == '__main__'``).

    Args:
        jobs: Name -> (target returning a picklable dict, its arguments).
        timeout: Seconds the children get, together; one still running then is killed and reported.
    """
    context = multiprocessing.get_context('spawn')
    children = {}
    for name, (target, args) in jobs.items():
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(sender, target, args), daemon=True)
        child.start()
        sender.close()
        children[name] = (child, receiver)
    deadline = time.monotonic() + timeout
    results = {}
    for name, (child, receiver) in children.items():
        message = None
        try:
            if receiver.poll(max(0.0, deadline - time.monotonic())):
                message = receiver.recv()
            else:
                message = {'error': f'no answer within {timeout:g} s; stopped'}
        except EOFError:  # the child died without a word: killed, most likely for memory
            pass
        child.join(timeout=0 if message is not None and 'error' in message else 30)
        if child.is_alive():  # past the timeout, or not exiting after its answer
            child.kill()
            child.join()
        receiver.close()
        message = message or {'error': f'it died (exit code {child.exitcode}; out of memory?)'}
        results[name] = ((None, f'the measuring process failed: {message["error"]}') if 'error' in message
                         else (message['result'], None))
    return results
