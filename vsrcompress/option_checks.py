"""Every option vsrcompress adds, checked before any work starts: one place for ``train.py``/``test.py`` (through
``compat.run_pipeline``, right after BasicSR has parsed the file and before it makes or archives any folder) and
for ``compress.py`` (the recipe's plan checks each training stage's merged options before the first stage).

A typo in an option file otherwise fails late (after the experiment folder exists, or minutes into a recipe) with
a traceback, or is silently ignored (``train.fix_flwo``). Each problem is one ``OptionError`` naming the key and
what is allowed. The engines' own parsers (pruning, quantization, feature distillation) do the detailed checks of
their sections; this module only calls them. The keys are listed in docs/options.md.
"""
import difflib
import inspect
import os
from collections.abc import Mapping

import yaml

from vsrcompress.feature_distillation import parse_feature_distill
from vsrcompress.pruning.config import parse_pruning_config
from vsrcompress.quantization.config import QuantConfig

OUR_MODELS = ('RecurrentVSRModel', 'DistillVSRModel', 'PruningVSRModel', 'QATVSRModel')
OUR_ARCHS = ('BasicVSRNet', 'IconVSRNet')
OUR_DATASETS = ('FootageRecurrentDataset', 'FootageTestDataset')
# `train:` keys our models (and the BasicSR models they extend) read; anything else would be silently ignored
TRAIN_KEYS = ('total_iter', 'warmup_iter', 'optim_g', 'scheduler', 'ema_decay', 'pixel_opt', 'perceptual_opt',
              'fix_flow', 'flow_lr_mul', 'distill_opt', 'feature_distill_opt')
# keys of a footage dataset: the dataset's own, then what BasicSR's options parser and dataloader add or read
FOOTAGE_DATASET_KEYS = ('type', 'name', 'dataroot_gt', 'dataroot_lq', 'meta_info_file', 'io_backend', 'num_frame',
                        'gt_size', 'interval_list', 'random_reverse', 'use_hflip', 'use_rot')
LOADER_KEYS = ('phase', 'scale', 'batch_size_per_gpu', 'num_worker_per_gpu', 'dataset_enlarge_ratio', 'use_shuffle',
               'prefetch_mode', 'num_prefetch_queue', 'pin_memory', 'persistent_workers')
# basicsr 1.4.2's BaseModel.setup_schedulers: any other train.scheduler.type fails when the model is built
SCHEDULERS = ('MultiStepLR', 'MultiStepRestartLR', 'CosineAnnealingRestartLR')
QAT_MODEL_KEYS = ('ptq_val_clips',)  # read by QATVSRModel, not by the quantization engine
PRUNING_MODEL_KEYS = ('step_interval',)  # read by PruningVSRModel, not by the pruning engine


class OptionError(ValueError):
    """An option of a BasicSR option file is unknown, of the wrong type, out of range, or names a missing file."""


def option_file_error(path: str, err: yaml.YAMLError) -> OptionError:
    """A YAML problem of option file ``path`` as one message with its line and column (and, for a refused
    ``!!python/...`` tag, why: option files are read as plain YAML)."""
    mark = getattr(err, 'problem_mark', None) or getattr(err, 'context_mark', None)
    where = f' (line {mark.line + 1}, column {mark.column + 1})' if mark is not None else ''
    problem = getattr(err, 'problem', None) or str(err).splitlines()[0]
    hint = (' Option files are read as plain YAML: Python tags are refused.' if 'constructor for the tag' in problem
            else '')
    return OptionError(f'-opt {path}: {problem}{where}.{hint}')


def check_options(opt: Mapping, is_train: bool = True, check_files: bool = True) -> None:
    """Raise ``OptionError`` for the first wrong option vsrcompress reads; return quietly when all are usable.

    Args:
        opt: The options (BasicSR's parsed ones, or a recipe stage's merged ones).
        is_train: Check the ``train:`` section (``test.py`` does not read it).
        check_files: Check that dataroots, meta info files and checkpoints given as paths exist.
    """
    try:
        check_registered_types(opt, is_train)
        _check_network(opt, 'network_g', check_files)
        _check_network(opt, 'network_teacher', check_files)
        _check_datasets(opt, check_files)
        if is_train and opt.get('model_type') in OUR_MODELS:
            _check_train(opt.get('train'))
        if opt.get('model_type') == 'PruningVSRModel' or opt.get('pruning') is not None:
            parse_pruning_section(opt.get('pruning'))
        if opt.get('quantization') is not None or opt.get('model_type') == 'QATVSRModel':
            parse_quantization_section(opt.get('quantization'))
        if check_files:
            for key in ('pretrain_network_g', 'pretrain_network_teacher'):
                _check_exists(f'path.{key}', (opt.get('path') or {}).get(key), 'a checkpoint')
    except OptionError:
        raise
    except ValueError as err:  # the engines' parsers: their messages already name the key
        raise OptionError(str(err)) from None


def parse_pruning_section(section: Mapping | None) -> tuple:
    """``PruningVSRModel``'s ``pruning:`` section: (the engine's ``PruningConfig``, ``step_interval``)."""
    if not section:
        raise OptionError('pruning: PruningVSRModel needs a pruning section (at least ratio or mac_budget).')
    if not isinstance(section, Mapping):
        raise OptionError(f'pruning: expected a mapping of options, got {section!r}')
    section = dict(section)
    step_interval = section.pop(PRUNING_MODEL_KEYS[0], 0)
    check_int('pruning.step_interval', step_interval, 0)
    return parse_pruning_config(section), step_interval


def parse_quantization_section(section: Mapping | None) -> tuple:
    """``QATVSRModel``'s ``quantization:`` section: (the engine's ``QuantConfig``, ``ptq_val_clips``)."""
    if section is not None and not isinstance(section, Mapping):
        raise OptionError(f'quantization: expected a mapping of options, got {section!r}')
    section = dict(section or {})
    ptq_val_clips = section.get('ptq_val_clips', 2)
    check_int('quantization.ptq_val_clips', ptq_val_clips, 0)
    return QuantConfig.from_dict(section, ignore=QAT_MODEL_KEYS), ptq_val_clips


def check_registered_types(opt: Mapping, is_train: bool = True) -> None:
    """Raise ``OptionError`` for a missing ``type`` or one basicsr's registries do not hold (naming the close
    matches): BasicSR would find it only after making the experiment folders, with a long traceback.

    Checked: ``model_type``, ``network_g.type``, ``network_teacher.type``, ``datasets.<phase>.type``, the losses of
    ``train`` (``pixel_opt``, ``perceptual_opt``, ``distill_opt``) and ``val.metrics.<name>.type``.
    """
    from basicsr.utils import registry
    _check_type('model_type', opt.get('model_type'), registry.MODEL_REGISTRY)
    for key in ('network_g', 'network_teacher'):
        net = opt.get(key)
        if net is None and key == 'network_teacher':
            continue
        if not isinstance(net, Mapping):
            raise OptionError(f'{key}: expected a mapping with the arch `type` and its arguments, got {net!r}')
        _check_type(f'{key}.type', net.get('type'), registry.ARCH_REGISTRY)
    datasets = opt.get('datasets')
    for phase, dataset in (datasets.items() if isinstance(datasets, Mapping) else ()):
        if isinstance(dataset, Mapping):
            _check_type(f'datasets.{phase}.type', dataset.get('type'), registry.DATASET_REGISTRY)
    train = opt.get('train')
    for key in ('pixel_opt', 'perceptual_opt', 'distill_opt') if is_train and isinstance(train, Mapping) else ():
        loss = train.get(key)
        if isinstance(loss, Mapping) and isinstance(loss.get('type'), str):  # else _check_train names the problem
            _check_type(f'train.{key}.type', loss['type'], registry.LOSS_REGISTRY)
    metrics = opt['val'].get('metrics') if isinstance(opt.get('val'), Mapping) else None
    for name, metric in (metrics.items() if isinstance(metrics, Mapping) else ()):
        if isinstance(metric, Mapping):
            _check_type(f'val.metrics.{name}.type', metric.get('type'), registry.METRIC_REGISTRY)


def _check_type(key: str, name: object, registry) -> None:
    suffix = '_basicsr'  # basicsr registers a few names with it; its registry finds them without it
    names = sorted({n[:-len(suffix)] if n.endswith(suffix) else n for n in registry.keys()})
    if isinstance(name, str) and (name in registry or name + suffix in registry):
        return
    if name is None:
        raise OptionError(f'{key}: missing; the {registry._name} to build, registered: {", ".join(names)}')
    by_lower = {n.lower(): n for n in names}
    close = [by_lower[n] for n in difflib.get_close_matches(str(name).lower(), by_lower, n=3, cutoff=0.6)]
    hint = f'; did you mean {" or ".join(repr(n) for n in close)}?' if close else ''
    raise OptionError(f'{key}: unknown {registry._name} type {name!r}{hint}; registered: {", ".join(names)}')


def _check_scheduler(scheduler: Mapping, total_iter: int) -> None:
    kind = scheduler.get('type')
    if kind not in SCHEDULERS:
        raise OptionError(f'train.scheduler.type: {kind!r} is not supported by basicsr 1.4.2; allowed: '
                          f'{list(SCHEDULERS)}')
    if kind != 'CosineAnnealingRestartLR':
        return
    periods = scheduler.get('periods')
    if (not isinstance(periods, list) or not periods
            or any(isinstance(p, bool) or not isinstance(p, int) or p < 1 for p in periods)):
        raise OptionError(f'train.scheduler.periods: expected a list of iteration counts (integers >= 1), got '
                          f'{periods!r}')
    weights = scheduler.get('restart_weights', [1])
    if not isinstance(weights, list) or len(weights) != len(periods):
        raise OptionError(f'train.scheduler.restart_weights: expected one weight per period ({len(periods)} '
                          f'periods), got {weights!r}')
    if sum(periods) < total_iter:
        raise OptionError(f'train.scheduler.periods: {periods} add up to {sum(periods)} iterations, fewer than '
                          f'train.total_iter ({total_iter}); CosineAnnealingRestartLR has no learning rate after its '
                          f'last period: make the periods add up to at least {total_iter}')


def _check_train(train: object) -> None:
    if not isinstance(train, Mapping):
        raise OptionError(f'train: expected a mapping with at least total_iter, optim_g and scheduler, got {train!r}')
    check_keys('train', train, TRAIN_KEYS)
    if 'total_iter' not in train:
        raise OptionError('train.total_iter: missing; the number of training iterations (an integer >= 1)')
    total = train['total_iter']
    if isinstance(total, float) and total.is_integer():  # 3.0e+5 is a float in YAML; basicsr takes int() of it
        total = int(total)
    check_int('train.total_iter', total, 1)
    check_int('train.warmup_iter', train.get('warmup_iter', -1), -1)
    if train.get('fix_flow') is not None:
        check_int('train.fix_flow', train['fix_flow'], 0, 'or ~ (never frozen)')
    _check_number('train.flow_lr_mul', train.get('flow_lr_mul', 1), '> 0', lambda v: v > 0)
    _check_number('train.ema_decay', train.get('ema_decay', 0), 'in [0, 1)', lambda v: 0 <= v < 1)
    for key in ('optim_g', 'scheduler', 'pixel_opt', 'perceptual_opt', 'distill_opt'):
        value = train.get(key)
        if value is not None and not (isinstance(value, Mapping) and isinstance(value.get('type'), str)):
            raise OptionError(f'train.{key}: expected a mapping with a `type` (and its arguments), got {value!r}')
    from vsrcompress.models.recurrent_vsr_model import OPTIMIZERS
    optim = train.get('optim_g')
    if optim is not None and optim['type'] not in OPTIMIZERS:
        raise OptionError(f"train.optim_g.type: {optim['type']!r} is not supported; allowed: {sorted(OPTIMIZERS)}")
    if train.get('scheduler') is not None:
        _check_scheduler(train['scheduler'], total)
    if train.get('feature_distill_opt') is not None:
        parse_feature_distill(train['feature_distill_opt'])


def _check_network(opt: Mapping, key: str, check_files: bool) -> None:
    net = opt.get(key)
    if net is None or not isinstance(net, Mapping) or net.get('type') not in OUR_ARCHS:
        return  # basicsr's registry names an unknown type (compat._explain_registry_misses)
    from vsrcompress.archs import basicvsr_net_arch
    arch = getattr(basicvsr_net_arch, net['type'])
    allowed = [name for name in inspect.signature(arch.__init__).parameters if name != 'self']
    check_keys(key, net, ['type', *allowed])
    for name in ('num_feat', 'num_block'):
        if name in net:
            check_int(f'{key}.{name}', net[name], 1)
    if check_files:
        for name in ('spynet_path', 'edvr_path'):
            _check_exists(f'{key}.{name}', net.get(name), 'a weights file')


def _check_datasets(opt: Mapping, check_files: bool) -> None:
    datasets = opt.get('datasets') or {}
    if not isinstance(datasets, Mapping):
        raise OptionError(f'datasets: expected a mapping of phases (train, val, test_1, ...), got {datasets!r}')
    for phase, dataset in datasets.items():
        if not isinstance(dataset, Mapping):
            raise OptionError(f'datasets.{phase}: expected a mapping of dataset options, got {dataset!r}')
        if dataset.get('type') in OUR_DATASETS:
            check_keys(f'datasets.{phase}', dataset, FOOTAGE_DATASET_KEYS + LOADER_KEYS)
        if check_files:
            for key in ('dataroot_gt', 'dataroot_lq', 'meta_info_file'):
                _check_exists(f'datasets.{phase}.{key}', dataset.get(key),
                              'a file' if key == 'meta_info_file' else 'a folder or .lmdb')


def check_keys(section: str, options: Mapping, allowed) -> None:
    """Raise OptionError naming the unknown keys of ``section`` and the allowed ones."""
    unknown = sorted(str(k) for k in set(options) - set(allowed))
    if unknown:
        raise OptionError(f'{section}: unknown key(s) {unknown}; allowed: {sorted(allowed)}')


def check_int(key: str, value: object, low: int, also: str = '') -> None:
    """Raise OptionError unless ``value`` is an integer (not a bool) >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise OptionError(f'{key}: expected an integer >= {low}{" " + also if also else ""}, got {value!r}')


def _check_number(key: str, value: object, allowed: str, ok) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(value):
        raise OptionError(f'{key}: expected a number {allowed}, got {value!r}')


def _check_exists(key: str, path: object, what: str) -> None:
    if path is None:
        return
    if not isinstance(path, str) or not path:
        raise OptionError(f'{key}: expected the path of {what}, got {path!r}')
    if not os.path.exists(os.path.expanduser(path)):
        raise OptionError(f'{key}: {path} does not exist (expected {what}).')
