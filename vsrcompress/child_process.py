"""A child process that lives and stops with its parent: ``compress.py`` runs each training stage this way.

Killing the parent (SIGKILL, SIGTERM, a closed terminal) would otherwise leave the stage training as an orphan,
writing checkpoints that a rerun then races with. On Linux the child asks the kernel to kill it when its parent
dies (``prctl(PR_SET_PDEATHSIG)``). Ctrl-C (SIGINT) stops both cleanly: the child runs in its own process group, so
a terminal's Ctrl-C reaches only the parent, which forwards one SIGINT, waits for the child to stop, then raises
``KeyboardInterrupt`` itself; the stage's last checkpoint and training state stay for ``--auto_resume``.
"""
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _own_group_dying_with(parent: int) -> None:
    """Runs in the child between fork and exec: its own process group (a terminal's Ctrl-C reaches the parent
    only), and on Linux SIGKILL when the parent exits, even by SIGKILL."""
    os.setpgid(0, 0)
    if not sys.platform.startswith('linux'):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent still forwards Ctrl-C
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


INTERRUPT_TIMEOUT_S = 60  # what a stage gets to stop after a forwarded Ctrl-C before it is killed


def _copy_lines(stream, log_path: str, on_line: Callable[[str], None]) -> None:
    """Every line of the child's console into ``log_path``, and to ``on_line``; runs until the child closes it."""
    with open(log_path, 'a', encoding='utf-8', errors='replace') as log:
        for line in stream:
            log.write(line)
            log.flush()
            on_line(line.rstrip('\n'))


def run_child(cmd: Sequence[str], console_log: str, on_line: Callable[[str], None]) -> int:
    """Run ``cmd`` to its end and return its exit code; the child never outlives this process.

    Args:
        cmd: The command line.
        console_log: Append the child's stdout and stderr to this file (a reader thread keeps draining it, also
            while the child stops after Ctrl-C).
        on_line: Called with every line, e.g. to print a short progress view.

    Raises:
        KeyboardInterrupt: After Ctrl-C, once the child has stopped.
    """
    parent = os.getpid()
    proc = subprocess.Popen(list(cmd), preexec_fn=lambda: _own_group_dying_with(parent), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors='replace')
    reader = threading.Thread(target=_copy_lines, args=(proc.stdout, console_log, on_line), daemon=True)
    reader.start()
    try:
        return proc.wait()
    except BaseException:  # Ctrl-C (or any error here): stop the child first, then report
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=INTERRUPT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        raise
    finally:
        reader.join(timeout=10)
