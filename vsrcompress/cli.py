"""Command-line helpers shared by the scripts in ``scripts/`` and the entry points at the repository root."""
import os
import sys
from collections.abc import Sequence
from typing import NoReturn


def same_file(a: str, b: str) -> bool:
    """Whether two paths name one file: the same resolved path (symbolic links, ``..``) or the same inode."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links and bind mounts: one inode under two names
    except OSError:  # one of them does not exist (yet): the paths decide
        return False


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def _named(paths: Sequence[str | None], flags: str | Sequence[str]) -> list[tuple[str, str]]:
    """(flag, path) pairs of the given paths; one flag for all, or one per path."""
    flags = [flags] * len(paths) if isinstance(flags, str) else list(flags)
    if len(flags) != len(paths):
        raise ValueError(f'{len(paths)} paths need as many flags, got {flags}')
    return [(flag, path) for flag, path in zip(flags, paths) if path is not None]


def exit_with_error(message: object, status: int = 2) -> NoReturn:
    """Print one ``error: ...`` line (no usage, no traceback) and exit with ``status``.

    For refusals of well-formed flags (an output over an input, a folder that does not exist): argparse's
    ``parser.error`` would print the whole usage before the one line that matters. Malformed flags keep it.
    """
    print(f'error: {message}', file=sys.stderr)
    raise SystemExit(status)


def refuse_repeated_outputs(outputs: Sequence[str | None], output_flag: str | Sequence[str] = '--output') -> None:
    """Raise ValueError if two outputs are one file, however spelled (``x.mp4`` and ``./x.mp4``, a hard link).

    One of them would silently replace the other. ``None`` entries are skipped.

    Args:
        outputs: Paths the command writes, reports and side files included.
        output_flag: How the outputs are named in the message: one flag, or one per output.
    """
    named = _named(outputs, output_flag)
    for index, (flag, path) in enumerate(named):
        for other_flag, other in named[:index]:
            if same_file(path, other):
                raise ValueError(f'{flag} {path} and {other_flag} {other} are the same file: one would replace the '
                                 'other; give each output its own path.')


def refuse_output_over_inputs(outputs: Sequence[str | None], inputs: Sequence[str | None],
                              output_flag: str | Sequence[str] = '--output',
                              input_flag: str | Sequence[str] = '--input', output_is_folder: bool = False) -> None:
    """Raise ValueError if an output would replace an input or another output, under any name.

    Writing a result over its own input destroys the input (and, with an atomic rename, silently). Symbolic links,
    ``..`` and hard links are resolved; ``None`` entries (optional flags not given) are skipped. Give every file the
    command writes (reports and side files: an IR's ``.bin``, an engine's ``.json``) and reads (a model's files:
    ``model_files.model_files``). With ``output_is_folder`` (a command that replaces a whole folder), an input inside
    an output folder is refused too, and so is an output folder inside an input folder (it would be read as input).

    Args:
        outputs: Paths the command writes.
        inputs: Paths the command reads.
        output_flag: How the outputs are named in the message: one flag, or one per output.
        input_flag: How the inputs are named in the message: one flag, or one per input.
        output_is_folder: The outputs are folders the command may replace as a whole.
    """
    refuse_repeated_outputs(outputs, output_flag)
    named_inputs = _named(inputs, input_flag)
    for flag, output in _named(outputs, output_flag):
        for source_flag, source in named_inputs:
            if output_is_folder and not same_file(output, source) and _inside(source, output):
                raise ValueError(f'{flag} {output} holds the input {source_flag} {source}: writing the folder '
                                 'could replace the input; choose an output folder outside the inputs.')
            if output_is_folder and os.path.isdir(source) and not same_file(output, source) and _inside(output, source):
                raise ValueError(f'{flag} {output} is inside the input {source_flag} {source}: it would be written '
                                 'into the input folder (and read as input by the next run); choose an output '
                                 'folder outside the inputs.')
            if same_file(output, source):
                raise ValueError(f'{flag} {output} is the input {source_flag} {source}: writing it would '
                                 'replace the input; choose another output path.')
