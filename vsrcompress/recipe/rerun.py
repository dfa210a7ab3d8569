"""What a run of a recipe does with each training stage, decided and said before any stage trains.

A stage is ``finished`` (its output checkpoint exists), ``interrupted`` (training states, no output) or ``new``.
Where stages are finished or interrupted, a run needs an explicit choice, else it is refused (``RerunRefused``):

* ``--auto_resume``: a finished stage whose record (``stage_record.py``) matches the file's options and the inputs on
  disk is reused; one that differs is trained again from the start, saying which keys changed; an interrupted stage
  resumes from its last training state. Once a stage trains, every stage after it is trained again from the start:
  its input is new.
* ``--restart``: every stage is trained again (BasicSR keeps the old folders as ``<folder>_archived_<time>``).
"""
import os
from dataclasses import dataclass

from vsrcompress.recipe.plan import TRAIN_STAGES, RecipePlan
from vsrcompress.recipe.stage_record import read_stage_record, record_changes, record_path, stage_record

REUSE, RESUME, START = 'reuse', 'resume', 'start'


class RerunRefused(RuntimeError):
    """Finished or interrupted stages exist and the run said neither ``--auto_resume`` nor ``--restart``."""


@dataclass(frozen=True)
class StageAction:
    """What the run does with one training stage (``REUSE``, ``RESUME`` or ``START``), and the line that says why
    (empty for a stage that simply starts)."""
    stage: str
    action: str
    why: str = ''


def stage_state(plan: RecipePlan, stage: str) -> str:
    """``finished``, ``interrupted`` or ``new``: what the stage's experiment folder holds."""
    if os.path.isfile(plan.output(stage).path):
        return 'finished'
    states = os.path.join(plan.root, 'experiments', plan.experiment(stage), 'training_states')
    if os.path.isdir(states) and any(name.endswith('.state') for name in os.listdir(states)):
        return 'interrupted'
    return 'new'


def _described(plan: RecipePlan, stage: str, state: str) -> str:
    if state == 'finished':
        return f'{stage} (finished: {os.path.relpath(plan.output(stage).path, plan.root)})'
    return f'{stage} (interrupted: training states in experiments/{plan.experiment(stage)}/training_states)'


def plan_rerun(plan: RecipePlan, auto_resume: bool, restart: bool) -> list[StageAction]:
    """One ``StageAction`` per training stage of ``plan``, in order; ``RerunRefused`` where the choice is missing."""
    if auto_resume and restart:
        raise ValueError('--auto_resume and --restart: choose one (reuse finished stages, or train every stage again)')
    training = [s for s in plan.stages if s in TRAIN_STAGES]
    states = {stage: stage_state(plan, stage) for stage in training}
    existing = [stage for stage in training if states[stage] != 'new']
    if existing and not (auto_resume or restart):
        raise RerunRefused(
            f'recipe {plan.name}: stages already run: '
            + ', '.join(_described(plan, s, states[s]) for s in existing)
            + '. Rerun with --auto_resume to reuse the finished stages whose options and inputs are unchanged (a stage '
            'whose options changed is trained again, with every stage after it) and resume an interrupted one, or '
            'with --restart to train every stage again (the old folders are kept as <folder>_archived_<time>).')
    actions, retrained = [], None
    for stage in training:
        state = states[stage]
        if restart or retrained:
            why = ('--restart' if restart else f'stage {retrained} before it trains') if state != 'new' else ''
            actions.append(StageAction(stage, START, why and f'recipe: stage {stage} ({state}) is trained again from '
                                                             f'the start ({why}); BasicSR keeps its old folder as '
                                                             '<folder>_archived_<time>'))
        elif state == 'finished':
            output = plan.output(stage).path
            recorded, problem = read_stage_record(record_path(plan, stage))
            changes = record_changes(recorded, stage_record(plan, stage), output) if recorded else []
            if recorded and not changes:
                shown = os.path.relpath(output, plan.root)
                actions.append(StageAction(stage, REUSE, f'recipe: stage {stage} is done ({shown}; same options and '
                                                         'inputs); skipping it'))
                continue
            retrained = stage
            reason = problem or 'what it was run with differs from the file now: ' + '; '.join(changes)
            actions.append(StageAction(stage, START, f'recipe: stage {stage} is finished, but {reason}. Training it '
                                                     'again from the start, and every stage after it'))
        elif state == 'interrupted':
            retrained = stage
            actions.append(StageAction(stage, RESUME, f'recipe: stage {stage} was interrupted: resuming it from its '
                                                      'last training state'))
        else:
            retrained = stage
            actions.append(StageAction(stage, START))
    return actions
