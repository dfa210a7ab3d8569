"""Every file vsrcompress writes for a user goes through here: written to a temporary name beside its target, then
renamed, so a reader (or a crash) never sees half a checkpoint, graph, engine, report or plot; and with the user's
umask, not the private 0600 that ``mkstemp`` gives.

A killed run (SIGKILL, power loss) cannot remove its hidden temporaries, so each one carries its owner in its name
(``<kind><host>-<pid>.<rest>``, e.g. ``.tmp_gpu01-4711.x3k9.pth``); whoever makes a temporary of the same kind in
the same folder first removes those whose process on this host is gone. Temporaries of live processes, of other
hosts (a shared disk) and files named otherwise are never touched.
"""
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable

_HOST = re.sub(r'[^A-Za-z0-9_-]', '_', socket.gethostname()) or 'host'


def owned_prefix(kind: str, pid: int | None = None) -> str:
    """The start of a temporary's name of ``kind`` (``.tmp_``, ``.out.partial-``) owned by ``pid`` on this host."""
    return f'{kind}{_HOST}-{os.getpid() if pid is None else pid}.'


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(folder: str, kind: str) -> None:
    """Remove temporaries of ``kind`` in ``folder`` whose owning process (on this host) no longer runs.

    A process id reused by an unrelated process keeps its temporaries until that one ends too (never too early).
    """
    pattern = re.compile(re.escape(kind) + re.escape(_HOST) + r'-(\d+)\.')
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry)
        if match is None or int(match.group(1)) == os.getpid() or _process_alive(int(match.group(1))):
            continue
        path = os.path.join(folder, entry)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        except FileNotFoundError:  # another rerun removed it first
            continue


def make_temporary(folder: str, kind: str = '.tmp_', suffix: str = '', directory: bool = False) -> str:
    """A new empty temporary file (or folder) in ``folder``, named as ours; stale ones of ``kind`` go first."""
    remove_stale_temporaries(folder, kind)
    if directory:
        return tempfile.mkdtemp(prefix=owned_prefix(kind), suffix=suffix, dir=folder)
    fd, tmp = tempfile.mkstemp(prefix=owned_prefix(kind), suffix=suffix, dir=folder)
    os.close(fd)
    return tmp


def write_atomic(path: str, write: Callable[[str], None]) -> None:
    """``write(tmp)`` into a temporary file next to ``path``, then rename it to ``path``."""
    tmp = make_temporary(os.path.dirname(os.path.abspath(path)), suffix=os.path.splitext(path)[1])
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private (0600); a report should read as any file
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    def write(tmp: str) -> None:
        with open(tmp, 'w') as f:
            f.write(text)
    write_atomic(path, write)


def write_figure(path: str, fig, dpi: int = 110) -> None:
    """Save a matplotlib figure as PNG atomically, then close it (pyplot keeps open figures alive)."""
    from matplotlib import pyplot as plt

    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format='png'))
    plt.close(fig)


def write_benchmark_result(base: str, result: dict, markdown: str, plot: Callable[[dict, str], None]) -> None:
    """Write ``<base>.json``, ``<base>.md`` and ``<base>.png`` (``plot(result, path)``), print the table."""
    write_text(base + '.json', json.dumps(result, indent=2) + '\n')
    write_text(base + '.md', markdown)
    plot(result, base + '.png')
    print('\n' + markdown)
    print(f'wrote {base}.json, {base}.md, {base}.png')


def write_failure(path: str, err: BaseException, what: str = 'output') -> OSError:
    """The one-line OSError for a write of ``path`` that failed with ``err`` (a full disk, a read-only folder).

    Exporters raise it (``from err``) so a command prints which file could not be written and why, not a traceback
    from deep inside torch, onnx or OpenVINO.
    """
    reason = getattr(err, 'strerror', None) or (str(err).splitlines() or [type(err).__name__])[0]
    return OSError(f'{what}: cannot write {path} (disk full or not writable?): {reason}')
