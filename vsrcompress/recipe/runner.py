"""Run a recipe: its training stages as BasicSR experiments (one process each), then export and report.

What happens to stages that already ran (reused, resumed, trained again, or the run refused without
``--auto_resume``/``--restart``) is decided before any stage trains (``rerun.py``); a finished stage leaves a record
of what it was run with beside its checkpoint (``stage_record.py``). Export and report always run again (they are
cheap and read the checkpoints as they are now).
"""
import os
import sys

import yaml

from vsrcompress.child_process import run_child
from vsrcompress.option_checks import option_file_error
from vsrcompress.recipe.plan import TRAIN_STAGES, RecipePlan, parse_recipe
from vsrcompress.recipe.progress import StageProgress
from vsrcompress.recipe.rerun import RESUME, REUSE, plan_rerun, stage_state
from vsrcompress.recipe.stage_record import stage_record, write_stage_record
from vsrcompress.atomic_files import write_text


def load_recipe(opt_path: str, root: str) -> RecipePlan:
    """Read and validate a recipe file; all errors come before any stage runs."""
    if not os.path.isfile(opt_path):
        raise FileNotFoundError(f'-opt: {opt_path} does not exist')
    with open(opt_path) as f:
        try:
            opt = yaml.safe_load(f)
        except yaml.YAMLError as err:
            raise option_file_error(opt_path, err) from None
    if not isinstance(opt, dict):
        raise ValueError(f'-opt: {opt_path} is not a YAML mapping of options')
    return parse_recipe(opt, root)


def write_stage_options(plan: RecipePlan, stage: str) -> str:
    """Write the stage's BasicSR option file to ``experiments/<name>/options/<stage>.yml``; return its path."""
    path = os.path.join(plan.folder, 'options', f'{stage}.yml')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_text(path, f'# written by the recipe {plan.name}: stage {stage}; run alone with python train.py -opt {path}\n'
               + yaml.safe_dump(plan.wired_stage_options(stage), sort_keys=False))
    return path


def run_training_stage(plan: RecipePlan, stage: str, resume: bool) -> None:
    """Train ``stage`` in its own process (``resume``: from its last training state, else from the start, BasicSR
    archiving the old folder), then record what it was run with beside its output."""
    output = plan.output(stage)
    source = plan.stage_input(stage)
    if source and not os.path.isfile(source.path):
        raise FileNotFoundError(f'recipe: stage {stage} starts from {source.path}, which does not exist')
    record = stage_record(plan, stage)  # the inputs as this run consumes them
    options = write_stage_options(plan, stage)
    training = [s for s in plan.stages if s in TRAIN_STAGES]
    position = training.index(stage)
    iters = [int(plan.stage_options(s)['train']['total_iter']) for s in training]
    # beside the stage's option file, not in its experiment folder (BasicSR archives that one when a run starts over)
    console = os.path.join(plan.folder, 'logs', f'{stage}.console.log')
    os.makedirs(os.path.dirname(console), exist_ok=True)
    print(f'recipe: [{position + 1}/{len(training)}] {stage} (experiments/{plan.experiment(stage)}, options '
          f'{options}; full console in {os.path.relpath(console, plan.root)})', flush=True)
    cmd = [sys.executable, '-m', 'vsrcompress.recipe.train_stage', plan.root, '-opt', options]
    if resume:
        cmd.append('--auto_resume')
    progress = StageProgress(stage, position + 1, len(training), iters[position], sum(iters[position + 1:]))
    # dies with this process; Ctrl-C stops it cleanly (vsrcompress/child_process.py)
    code = run_child(cmd, console_log=console, on_line=progress)
    if code != 0 or not os.path.isfile(output.path):
        if code != 130:  # not a Ctrl-C: show why
            print(f'recipe: the last lines of {os.path.relpath(console, plan.root)}:\n' + _tail(console), flush=True)
        saved = stage_state(plan, stage) == 'interrupted'
        before = position > 0
        raise RuntimeError(f'recipe: stage {stage} failed (exit code {code}; its log is in '
                           f'experiments/{plan.experiment(stage)}); fix the cause and rerun'
                           + (' with --auto_resume to continue from its last training state' if saved else
                              ' with --auto_resume to reuse the stages before it' * before
                              + ' (nothing of this stage was saved: it starts over)'))
    write_stage_record(plan, stage, record)


def _tail(path: str, lines: int = 25) -> str:
    with open(path, encoding='utf-8', errors='replace') as f:
        return ''.join(f.readlines()[-lines:])


def run_recipe(opt_path: str, root: str, auto_resume: bool = False, restart: bool = False) -> dict:
    """Run every stage of the recipe file; returns where the results are (also printed).

    Args:
        opt_path: The recipe file.
        root: The folder ``experiments/`` is in.
        auto_resume: Reuse finished stages whose options and inputs are unchanged, resume an interrupted one.
        restart: Train every stage again, also finished ones.

    Raises:
        RerunRefused: Stages already ran and neither ``auto_resume`` nor ``restart`` says what to do with them.
    """
    plan = load_recipe(opt_path, root)
    actions = {a.stage: a for a in plan_rerun(plan, auto_resume, restart)}  # before any work: said up front
    for action in actions.values():
        if action.why:
            print(action.why, flush=True)
    results = {}
    for stage in plan.stages:
        if stage in TRAIN_STAGES:
            if actions[stage].action != REUSE:
                run_training_stage(plan, stage, resume=actions[stage].action == RESUME)
            results[stage] = plan.output(stage).path
        elif stage == 'export':
            from vsrcompress.recipe.export_stage import run_export_stage
            records = run_export_stage(plan)
            results['onnx'] = [r['onnx'] for r in records]
            results['openvino'] = [r['openvino']['xml'] for r in records if r['openvino']]
            results['tensorrt'] = [r['tensorrt']['engine'] for r in records if (r['tensorrt'] or {}).get('built')]
        elif stage == 'report':
            from vsrcompress.recipe.report_stage import run_report_stage
            results['report'] = run_report_stage(plan)
    print(f'recipe {plan.name} finished:')
    for key, value in results.items():
        for item in value if isinstance(value, list) else [value]:
            print(f'  {key:8s} {os.path.relpath(item, root)}')
    return results
