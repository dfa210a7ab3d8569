"""Every file vsrcompress writes for a user goes through here: written to a temporary name beside its target, then
renamed, so a reader (or a crash) never sees half a checkpoint, graph, engine, report or plot; and with the user's
umask, not the private 0600 that ``mkstemp`` gives."""
import json
import os
import tempfile
from collections.abc import Callable


def write_atomic(path: str, write: Callable[[str], None]) -> None:
    """``write(tmp)`` into a temporary file next to ``path``, then rename it to ``path``."""
    fd, tmp = tempfile.mkstemp(prefix='.tmp_', suffix=os.path.splitext(path)[1],
                               dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
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
