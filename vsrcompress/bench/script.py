"""What every benchmark script does after parsing its flags: check, run with progress printed, write the result.

A benchmark module (``vsrcompress/bench/<name>.py``) exposes ``check(config)``, ``run(config, log)``,
``markdown(result)`` and ``plot(result, path)``; its script in ``scripts/`` builds the config and calls
``run_benchmark``.
"""
import argparse
import os
import sys
from types import ModuleType

from vsrcompress.atomic_files import write_benchmark_result
from vsrcompress.bench.inputs import InputError


def command_line(script: str, argv: list[str] | None) -> str:
    """``python scripts/<script> <flags>`` as run, for the record (``argv`` None: this process's flags)."""
    return ' '.join(['python', f'scripts/{script}', *(argv if argv is not None else sys.argv[1:])])


def run_benchmark(benchmark: ModuleType, config: object, parser: argparse.ArgumentParser, folder: str,
                  name: str) -> int:
    """Check ``config`` and the output folder (a usage error, exit 2, before any work), run (an ``InputError`` from
    loading is a usage error too), write ``<folder>/<name>.{json,md,png}``; the exit status."""
    try:
        benchmark.check(config)
        os.makedirs(folder, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise ValueError(f'{folder} is not writable')
    except (ValueError, OSError) as err:
        parser.error(str(err))
    try:
        result = benchmark.run(config, log=lambda line: print(line, flush=True))
    except InputError as err:  # a file's content, found while loading: a usage error too, without a traceback
        parser.error(str(err))
    write_benchmark_result(os.path.join(folder, name), result, benchmark.markdown(result), benchmark.plot)
    return 0
