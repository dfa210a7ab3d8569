"""The ``recipe:`` section of a one-YAML compression run: which stages run, on what, and where each one writes.

A recipe file is a BasicSR option file (datasets, network_g, path, val, logger, ...) plus::

    recipe:
      stages: [teacher, prune, qat, export, report]   # any subset, in this order
      teacher: {train: ...}                            # per-stage sections, merged over the shared options
      prune: {pruning: ..., train: ...}
      qat: {quantization: ..., train: ...}
      export: {interval: 5, lookahead: 2, height: 180, width: 320, precisions: [fp32, int8-ort, int8-trt],
               openvino: bf16}
      report: {input_size: [640, 360], frames: 5, repeats: 3}

Each training stage is an ordinary BasicSR experiment ``<name>_<stage>`` whose option file is written to
``experiments/<name>/options/<stage>.yml`` (run it alone with ``train.py``, e.g. under ``torchrun``); it starts
from the previous stage's checkpoint. Everything is checked here, before any stage runs.
"""
import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from vsrcompress.export.onnx_export import INT8_PRECISIONS, MIN_SIZE, PRECISIONS
from vsrcompress.export.openvino_runtime import check_inference_precision
from vsrcompress.option_checks import OptionError, check_int, check_keys, check_options

STAGES = ('teacher', 'prune', 'qat', 'export', 'report')
TRAIN_STAGES = ('teacher', 'prune', 'qat')
MODEL_TYPES = {'teacher': 'RecurrentVSRModel', 'prune': 'PruningVSRModel', 'qat': 'QATVSRModel'}
# keys a training stage's section may set over the shared options; `pruning`/`quantization` only in their stage
_STAGE_KEYS = {'teacher': {'train', 'val', 'logger', 'path', 'datasets'},
               'prune': {'train', 'val', 'logger', 'path', 'datasets', 'pruning'},
               'qat': {'train', 'val', 'logger', 'path', 'datasets', 'quantization'}}
# stateful graphs (interval + lookahead, what infer_video streams by default); windowed_frames: windowed graphs too
EXPORT_DEFAULTS = {'interval': 5, 'lookahead': 2, 'windowed_frames': None, 'height': 180, 'width': 320,
                   'dynamic': False,
                   'precisions': ['fp32', 'int8-ort', 'int8-trt'], 'tensorrt': True, 'min_int8_psnr': None,
                   'openvino': 'f32'}
REPORT_DEFAULTS = {'input_size': [640, 360], 'frames': 5, 'repeats': 3, 'threads': None, 'val_clips': None,
                   'memory': True, 'streaming': True}


@dataclass(frozen=True)
class StageOutput:
    """Where a stage's network is, and which weights of it the next stage reads."""
    path: str
    param_key: str = 'params'


@dataclass
class RecipePlan:
    """A validated recipe: the stages to run and the BasicSR options of each training stage."""
    name: str
    root: str
    stages: list[str]
    shared: dict
    sections: dict = field(default_factory=dict)

    @property
    def folder(self) -> str:
        """``experiments/<name>``: stage option files, ONNX graphs and the report."""
        return os.path.join(self.root, 'experiments', self.name)

    def experiment(self, stage: str) -> str:
        return f'{self.name}_{stage}'

    def dense_input(self) -> StageOutput | None:
        """The dense network the recipe starts from: the teacher stage's, or ``path.pretrain_network_g``."""
        return self.output('teacher') if 'teacher' in self.stages else self.given_dense()

    def given_dense(self) -> StageOutput | None:
        """``path.pretrain_network_g`` of the recipe file (the teacher stage fine-tunes it, or trains from scratch)."""
        path = self.shared.get('path') or {}
        return StageOutput(path['pretrain_network_g'], path.get('param_key_g', 'params')) \
            if path.get('pretrain_network_g') else None

    def output(self, stage: str) -> StageOutput:
        """The checkpoint a training stage leaves: ``net_g_latest.pth`` (QAT: the INT8 ``net_g_int8.pth``)."""
        models = os.path.join(self.root, 'experiments', self.experiment(stage), 'models')
        if stage == 'qat':
            return StageOutput(os.path.join(models, 'net_g_int8.pth'))
        ema = (self.stage_options(stage)['train'].get('ema_decay') or 0) > 0
        return StageOutput(os.path.join(models, 'net_g_latest.pth'), 'params_ema' if ema else 'params')

    def float_output(self) -> StageOutput | None:
        """The compressed float network: pruned if the recipe prunes, else the dense one."""
        return self.output('prune') if 'prune' in self.stages else self.dense_input()

    def stage_input(self, stage: str) -> StageOutput | None:
        """What a training stage starts from: the previous training stage's output, else the dense input."""
        if stage == 'teacher':
            return self.given_dense()
        before = [s for s in TRAIN_STAGES[:TRAIN_STAGES.index(stage)] if s in self.stages]
        return self.output(before[-1]) if before else self.dense_input()

    def stage_options(self, stage: str) -> dict:
        """BasicSR options of a training stage: the shared ones with the stage's section merged over them."""
        opt = _merged(self.shared, self.sections.get(stage) or {})
        opt['name'] = self.experiment(stage)
        opt['model_type'] = MODEL_TYPES[stage]
        return opt

    def wired_stage_options(self, stage: str) -> dict:
        """``stage_options`` with the input checkpoint (and the dense teacher for pruning) filled in."""
        opt = self.stage_options(stage)
        source = self.stage_input(stage)
        path = opt.setdefault('path', {})
        path['pretrain_network_g'] = source.path if source else None
        path['param_key_g'] = source.param_key if source else 'params'
        path['resume_state'] = None
        if stage == 'prune' and opt['train'].get('distill_opt') and not path.get('pretrain_network_teacher'):
            path['pretrain_network_teacher'] = source.path
        return opt

    def export_options(self) -> dict:
        return {**EXPORT_DEFAULTS, **(self.sections.get('export') or {})}

    def report_options(self) -> dict:
        return {**REPORT_DEFAULTS, **(self.sections.get('report') or {})}


def _merged(base: Mapping, over: Mapping) -> dict:
    """Deep merge: mappings merge key by key, anything else in ``over`` replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_recipe(opt: Mapping, root: str) -> RecipePlan:
    """Validate a recipe option dict (see the module docstring); every error names the key and what is allowed."""
    if 'recipe' not in opt or not isinstance(opt['recipe'], Mapping):
        raise ValueError('recipe: missing; a recipe file needs a `recipe:` section with `stages: [...]` '
                         f'(from {list(STAGES)})')
    recipe = dict(opt['recipe'])
    unknown = sorted(set(recipe) - {'stages', *STAGES})
    if unknown:
        raise ValueError(f'recipe: unknown key(s) {unknown}; allowed: stages, {", ".join(STAGES)}')
    stages = recipe.get('stages')
    if not isinstance(stages, list) or not stages:
        raise ValueError(f'recipe.stages: expected a non-empty list of stages from {list(STAGES)}, got {stages!r}')
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise ValueError(f'recipe.stages: unknown stage(s) {bad}; allowed: {list(STAGES)}')
    if len(set(stages)) != len(stages):
        raise ValueError(f'recipe.stages: a stage is listed twice in {stages}')
    if stages != sorted(stages, key=STAGES.index):
        raise ValueError(f'recipe.stages: {stages} is out of order; stages run in the order {list(STAGES)}')
    name = opt.get('name')
    if not isinstance(name, str) or not name or os.sep in name:
        raise ValueError(f'name: expected an experiment name without "{os.sep}", got {name!r}')
    shared = {k: copy.deepcopy(v) for k, v in opt.items() if k not in ('recipe', 'model_type')}
    sections = {s: recipe.get(s) or {} for s in STAGES}
    for stage, section in sections.items():
        if not isinstance(section, Mapping):
            raise ValueError(f'recipe.{stage}: expected a mapping of options, got {section!r}')
    plan = RecipePlan(name=name, root=root, stages=list(stages), shared=shared, sections=sections)
    _check_inputs(plan)
    for key in ('pruning', 'quantization'):
        if key in plan.shared:
            raise ValueError(f'{key}: belongs in recipe.{"prune" if key == "pruning" else "qat"}, not at the top '
                             'level of a recipe')
    for stage in (s for s in stages if s in TRAIN_STAGES):
        _check_training_stage(plan, stage)
    if 'export' in stages:
        _check_export(plan)
    if 'report' in stages:
        _check_report(plan)
    return plan


def _check_inputs(plan: RecipePlan) -> None:
    given = plan.given_dense()
    if given and not os.path.isfile(given.path):
        raise ValueError(f'path.pretrain_network_g: {given.path} does not exist (the dense network the recipe '
                         'starts from; python scripts/download_pretrained.py fetches the official ones)')
    needs_dense = [s for s in plan.stages if s != 'teacher']
    if needs_dense and plan.dense_input() is None:
        raise ValueError(f'recipe: stage {needs_dense[0]!r} needs a dense network: set path.pretrain_network_g or '
                         'add the `teacher` stage, which trains one')
    if 'datasets' not in plan.shared or 'val' not in (plan.shared.get('datasets') or {}):
        if 'report' in plan.stages or any(s in TRAIN_STAGES for s in plan.stages):
            raise ValueError('datasets.val: missing; the training stages validate on it and the report measures '
                             'PSNR/SSIM on it')


def _check_training_stage(plan: RecipePlan, stage: str) -> None:
    section = plan.sections[stage]
    check_keys(f'recipe.{stage}', section, _STAGE_KEYS[stage])
    opt = plan.stage_options(stage)
    if 'train' not in (opt.get('datasets') or {}):
        raise ValueError(f'recipe.{stage}: needs datasets.train (shared or in recipe.{stage}.datasets)')
    if stage == 'prune' and 'pruning' not in section:
        raise ValueError('recipe.prune.pruning: missing; give the pruning target (ratio or mac_budget)')
    try:  # the same checks as train.py runs (types, unknown keys, dataroots), before the first stage
        check_options(opt, is_train=True)
    except OptionError as err:
        raise ValueError(f'recipe stage {stage} (shared options merged with recipe.{stage}): {err}') from None


def _check_export(plan: RecipePlan) -> None:
    check_keys('recipe.export', plan.sections['export'], EXPORT_DEFAULTS)
    options = plan.export_options()
    precisions = options['precisions']
    if not isinstance(precisions, list) or not precisions or any(p not in PRECISIONS for p in precisions):
        raise ValueError(f'recipe.export.precisions: expected a list from {list(PRECISIONS)}, got {precisions!r}')
    int8 = [p for p in precisions if p in INT8_PRECISIONS]
    if int8 and 'qat' not in plan.stages:
        raise ValueError(f'recipe.export.precisions: {int8} need the INT8 network of the `qat` stage, which is not '
                         f'in recipe.stages {plan.stages}')
    for key, low in (('interval', 1), ('lookahead', 0), ('height', MIN_SIZE), ('width', MIN_SIZE)):
        check_int(f'recipe.export.{key}', options[key], low)
    if options['windowed_frames'] is not None:
        check_int('recipe.export.windowed_frames', options['windowed_frames'], 2)
    if options['openvino'] is not None:
        try:
            check_inference_precision(options['openvino'])
        except ValueError as err:
            raise ValueError(f'recipe.export.openvino: {err} (null: no OpenVINO IRs)') from None


def _check_report(plan: RecipePlan) -> None:
    check_keys('recipe.report', plan.sections['report'], REPORT_DEFAULTS)
    options = plan.report_options()
    size = options['input_size']
    if (not isinstance(size, list) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= MIN_SIZE for v in size)):
        raise ValueError(f'recipe.report.input_size: expected [width, height], both >= {MIN_SIZE}, got {size!r}')
    for key, low in (('frames', 2), ('repeats', 1)):
        check_int(f'recipe.report.{key}', options[key], low)
    for key in ('memory', 'streaming'):
        if not isinstance(options[key], bool):
            raise ValueError(f'recipe.report.{key}: expected true or false, got {options[key]!r}')
