"""What a recipe's training stage was run with, kept beside the checkpoint it made, so that a rerun can tell a stage
it may reuse from one whose options or input changed since.

The record, ``experiments/<name>_<stage>/models/recipe_stage.json``, is plain JSON written atomically once the stage
has finished. It holds the stage's options as written to ``experiments/<name>/options/<stage>.yml`` without what
does not change the trained network (``logger``, ``val``: when and how it logs and validates; ``name``; output and
resume paths), the SHA-256 of every checkpoint the stage started from (its path is not compared: the teacher's
output keeps its path when it is trained again), and the SHA-256 of the checkpoint it made.
"""
import hashlib
import json
import os
from collections.abc import Mapping

from vsrcompress.atomic_files import write_text
from vsrcompress.recipe.plan import RecipePlan

RECORD_NAME = 'recipe_stage.json'
RECORD_FORMAT = 'vsrcompress-recipe-stage/1'
_UNCOMPARED = ('name', 'logger', 'val')
_INPUT_CHECKPOINTS = ('pretrain_network_g', 'pretrain_network_teacher')
_OUTPUT_PATHS = ('resume_state', 'root', 'experiments_root', 'results_root', 'models', 'training_states', 'log',
                 'visualization')
_MISSING = object()


def record_path(plan: RecipePlan, stage: str) -> str:
    """Where the record of ``stage`` lives: beside its output checkpoint."""
    return os.path.join(os.path.dirname(plan.output(stage).path), RECORD_NAME)


def file_digest(path: str) -> str:
    """SHA-256 of a file, read in 1 MiB blocks (full-size checkpoints are tens of MB)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def stage_record(plan: RecipePlan, stage: str) -> dict:
    """The record ``stage`` would get if it ran now: its compared options and the digests of its input checkpoints."""
    opt = plan.wired_stage_options(stage)
    path = opt.get('path') or {}
    inputs = {key: {'path': path[key], 'sha256': file_digest(path[key])}
              for key in _INPUT_CHECKPOINTS if path.get(key) and os.path.isfile(path[key])}
    compared = {key: value for key, value in opt.items() if key not in _UNCOMPARED}
    compared['path'] = {k: v for k, v in path.items() if k not in _OUTPUT_PATHS + _INPUT_CHECKPOINTS}
    return {'format': RECORD_FORMAT, 'stage': stage, 'options': json.loads(json.dumps(compared, default=str)),
            'inputs': inputs}


def write_stage_record(plan: RecipePlan, stage: str, record: dict) -> str:
    """Write ``record`` (from ``stage_record``, taken when the stage started) with the digest of the stage's output."""
    path = record_path(plan, stage)
    write_text(path, json.dumps({**record, 'output_sha256': file_digest(plan.output(stage).path)}, indent=2) + '\n')
    return path


def read_stage_record(path: str) -> tuple[dict | None, str]:
    """The record at ``path`` and ``''``, or ``None`` and why it cannot be used (missing, damaged, foreign)."""
    if not os.path.isfile(path):
        return None, f'it has no record of what it was run with ({path} is missing)'
    try:
        with open(path, encoding='utf-8') as f:
            record = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f'its record {path} is unreadable ({err})'
    if not isinstance(record, dict) or record.get('format') != RECORD_FORMAT:
        return None, f'its record {path} is not a {RECORD_FORMAT} record'
    return record, ''


def record_changes(recorded: Mapping, current: Mapping, output_path: str) -> list[str]:
    """What differs between a finished stage's record and the record it would get now, one entry per difference:
    ``key: old -> new`` for options, the input checkpoints whose content changed, and an output that is not the
    one the record describes."""
    old, new = _flat(recorded.get('options') or {}), _flat(current['options'])
    changes = [f'{key}: {_shown(old.get(key, _MISSING))} -> {_shown(new.get(key, _MISSING))}'
               for key in sorted(old.keys() | new.keys()) if old.get(key, _MISSING) != new.get(key, _MISSING)]
    old_inputs, new_inputs = recorded.get('inputs') or {}, current['inputs']
    for key in sorted(old_inputs.keys() | new_inputs.keys()):
        before, now = old_inputs.get(key) or {}, new_inputs.get(key) or {}
        if before.get('sha256') != now.get('sha256'):
            changes.append(f'path.{key}: {now.get("path") or before.get("path")} holds other weights than the stage '
                           'was trained from')
    if os.path.isfile(output_path) and recorded.get('output_sha256') != file_digest(output_path):
        changes.append(f'{output_path} was replaced since the stage finished')
    return changes


def _flat(options: Mapping, prefix: str = '') -> dict:
    flat = {}
    for key, value in options.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flat(value, f'{prefix}{key}.'))
        else:
            flat[f'{prefix}{key}'] = value
    return flat


def _shown(value: object) -> str:
    return '(not set)' if value is _MISSING else json.dumps(value)
