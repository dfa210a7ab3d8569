"""Command-line helpers shared by the scripts in ``scripts/`` and the entry points at the repository root."""
import os
from collections.abc import Sequence


def _same_file(a: str, b: str) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links and bind mounts: one inode under two names
    except OSError:  # one of them does not exist (yet): the paths decide
        return False


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def refuse_output_over_inputs(outputs: Sequence[str | None], inputs: Sequence[str | None],
                              output_flag: str = '--output', input_flag: str = '--input',
                              output_is_folder: bool = False) -> None:
    """Raise ValueError if an output would replace an input: the same path, or the same file under another name.

    Writing a result over its own input destroys the input (and, with an atomic rename, silently). Symbolic links,
    ``..`` and hard links are resolved; ``None`` entries (optional flags not given) are skipped. With
    ``output_is_folder`` (a command that replaces a whole folder), an input inside an output folder is refused too.

    Args:
        outputs: Paths the command writes.
        inputs: Paths the command reads.
        output_flag: How the outputs are named in the message (one flag, or one per output).
        input_flag: How the inputs are named in the message.
        output_is_folder: The outputs are folders the command may replace as a whole.
    """
    for output in outputs:
        for source in inputs:
            if output is None or source is None:
                continue
            if output_is_folder and not _same_file(output, source) and _inside(source, output):
                raise ValueError(f'{output_flag} {output} holds the input {input_flag} {source}: writing the folder '
                                 'could replace the input; choose an output folder outside the inputs.')
            if _same_file(output, source):
                raise ValueError(f'{output_flag} {output} is the input {input_flag} {source}: writing it would '
                                 'replace the input; choose another output path.')
