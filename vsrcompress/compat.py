"""Makes basicsr 1.4.2 usable on today's torch/torchvision, on CPU as well as CUDA.

This is the one place where basicsr itself is patched. Each patch exists because basicsr calls the
broken function through a module-level name that no subclass can reach; everything that can be fixed
by overriding a method lives in our own model classes instead (see ``vsrcompress/models``).
"""
import argparse
import os
import shutil
import sys
import types
from collections import OrderedDict
from collections.abc import Callable
from os import path as osp

import torch
import yaml


def _alias_functional_tensor() -> None:
    """basicsr/data/degradations.py imports ``torchvision.transforms.functional_tensor``, removed in 0.17.

    basicsr's ``__init__`` imports every dataset module, so without this alias no basicsr import works.
    """
    name = 'torchvision.transforms.functional_tensor'
    if name in sys.modules:
        return
    try:
        import torchvision.transforms.functional_tensor  # noqa: F401  (old torchvision: nothing to do)
        return
    except ImportError:
        pass
    from torchvision.transforms import functional
    alias = types.ModuleType(name)
    alias.rgb_to_grayscale = functional.rgb_to_grayscale
    sys.modules[name] = alias


def _option_file_args(argv: list[str] | None) -> argparse.Namespace:
    """``-opt`` and ``--force_yml`` of a train.py/test.py command line (default: this process's), the rest ignored."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('-opt')
    parser.add_argument('--force_yml', nargs='+', default=[])
    return parser.parse_known_args(sys.argv[1:] if argv is None else argv)[0]


def requested_num_gpu(argv: list[str] | None = None) -> int | str:
    """``num_gpu`` of the run started with ``argv`` (default: this process's command line), before parse_options.

    basicsr's ``parse_options`` reads the option file, then calls ``init_dist(launcher)`` without it (and applies
    ``--force_yml`` only afterwards), so ``init_dist`` reads ``num_gpu`` from the same command line: the ``-opt``
    file and any ``--force_yml num_gpu=...``. Without an option file (another caller) it is ``'auto'``.
    """
    args = _option_file_args(argv)
    num_gpu = 'auto'
    if args.opt and osp.isfile(args.opt):
        with open(args.opt) as f:
            num_gpu = (yaml.safe_load(f) or {}).get('num_gpu', 'auto')
    for entry in args.force_yml:
        key, _, value = entry.partition('=')
        if key.strip() == 'num_gpu':
            num_gpu = yaml.safe_load(value)
    return num_gpu


def init_dist(launcher: str, backend: str | None = None, **kwargs) -> None:
    """Start torch.distributed with NCCL when the run trains on GPUs, gloo when it runs on CPU.

    basicsr's version hard-codes NCCL and ``torch.cuda.set_device(rank % num_gpus)``, which divides by zero on a
    CPU-only machine; and a ``num_gpu: 0`` run on a CUDA machine keeps its tensors on CPU, which NCCL cannot carry.
    """
    import torch.distributed as dist
    import torch.multiprocessing as mp
    if launcher != 'pytorch':
        raise ValueError(f"--launcher {launcher!r} is not supported by vsrcompress; use 'pytorch' (torchrun).")
    if mp.get_start_method(allow_none=True) is None:
        mp.set_start_method('spawn')
    use_cuda = torch.cuda.is_available() and requested_num_gpu() != 0  # basicsr's BaseModel: CUDA iff num_gpu != 0
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', os.environ['RANK'])) % torch.cuda.device_count())
    backend = backend or ('nccl' if use_cuda else 'gloo')
    dist.init_process_group(backend=backend, **kwargs)
    # printed like basicsr's own 'Disable distributed.': the logger gets its log file only later
    print(f'Distributed: {backend} backend, rank {dist.get_rank()} of {dist.get_world_size()}.', flush=True)


class _OrderedSafeLoader(yaml.SafeLoader):
    """Plain YAML only (no ``!!python/...`` tags that build objects or run code), mappings as OrderedDict."""


_OrderedSafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                   lambda loader, node: OrderedDict(loader.construct_pairs(node)))


class _OrderedDumper(yaml.SafeDumper):
    """Writes OrderedDicts as plain mappings."""


_OrderedDumper.add_representer(OrderedDict, lambda dumper, data: dumper.represent_dict(data.items()))


def ordered_yaml() -> tuple[type, type]:
    """basicsr's ``ordered_yaml`` with a safe loader: its own uses ``yaml.Loader``, which runs code in option files."""
    return _OrderedSafeLoader, _OrderedDumper


def _load_training_state(path: str) -> dict:
    """A ``.state`` file as plain data: ``weights_only=True`` explicitly, so no environment setting
    (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``) turns loading into running a planted pickle. BasicSR's states (epoch,
    iter, optimizer and scheduler state dicts; Counter milestones included) load as they are."""
    from vsrcompress.checkpoint import torch_load_failure
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001  (truncated zip, foreign pickle, refused global: all unusable)
        raise ValueError(f'{path}: not a usable training state ({torch_load_failure(err)}).') from err
    if not isinstance(state, dict) or not {'iter', 'epoch', 'optimizers', 'schedulers'} <= set(state):
        raise ValueError(f'{path}: not a training state (no iter/epoch/optimizers/schedulers).')
    return state


def load_resume_state(opt: dict) -> dict | None:
    """Find and load the training state to resume from, onto CPU memory, as plain data.

    basicsr's version maps tensors with ``torch.cuda.current_device()`` (fails without CUDA), looks for
    ``experiments/`` relative to the working directory instead of the experiment root, and unpickles with torch's
    default. ``--auto_resume`` skips a newest state that cannot be loaded (killed mid-write, damaged, refused)
    with a warning naming it, and resumes from the newest intact one.
    """
    from basicsr.utils import check_resume, scandir
    resume_path = opt['path'].get('resume_state')
    state = None
    if opt['auto_resume']:
        state_dir = opt['path']['training_states']
        if osp.isdir(state_dir):
            iters = [int(v[:-len('.state')]) for v in scandir(state_dir, suffix='.state') if v[:-6].isdigit()]
            for it in sorted(iters, reverse=True):
                candidate = osp.join(state_dir, f'{it}.state')
                try:
                    state = _load_training_state(candidate)
                except ValueError as err:
                    print(f'warning: --auto_resume skips {candidate}: {err}', file=sys.stderr, flush=True)
                    continue
                resume_path = opt['path']['resume_state'] = candidate
                break
    if not resume_path:
        return None
    if state is None:
        if not osp.isfile(resume_path):
            raise FileNotFoundError(f'path.resume_state: {resume_path} does not exist.')
        try:
            state = _load_training_state(resume_path)
        except ValueError as err:
            raise ValueError(f'path.resume_state: {err}') from err
    check_resume(opt, state['iter'])
    return state


# folders this run archived (renamed to <name>_archived_<time>) that go back if it fails before training starts
_archived: list[tuple[str, str]] = []


def mkdir_and_rename(path: str) -> None:
    """basicsr's ``mkdir_and_rename``, remembering the archive so that a run failing on its options undoes it."""
    from basicsr.utils.misc import get_time_str
    if osp.exists(path):
        new_name = f'{path}_archived_{get_time_str()}'
        print(f'Path already exists. Rename it to {new_name}', flush=True)
        os.rename(path, new_name)
        _archived.append((path, new_name))
    os.makedirs(path, exist_ok=True)


def _committing(build_model: Callable) -> Callable:
    """``build_model`` that makes this run's archiving final once the model is built: every option is checked."""
    if getattr(build_model, 'commits_archive', False):
        return build_model

    def build_and_commit(opt):
        model = build_model(opt)
        _archived.clear()
        return model
    build_and_commit.commits_archive = True
    return build_and_commit


def _restore_archived() -> None:
    while _archived:
        path, archived = _archived.pop()
        if osp.isdir(path):
            shutil.rmtree(path)  # made by this run before it failed: a log and the copied option file
        os.rename(archived, path)
        print(f'restored {path} (this run stopped before training started)', file=sys.stderr, flush=True)


def _checking(parse_options: Callable) -> Callable:
    """basicsr's ``parse_options`` followed by ``option_checks.check_options``: every option vsrcompress reads is
    checked before the pipeline makes, archives or loads anything."""
    if getattr(parse_options, 'checks_options', False):
        return parse_options

    def parse_and_check(root_path, is_train=True):
        from vsrcompress.option_checks import check_options
        opt, args = parse_options(root_path, is_train=is_train)
        check_options(opt, is_train=is_train)
        return opt, args
    parse_and_check.checks_options = True
    return parse_and_check


def _warn_if_gpu_unusable(argv: list[str] | None) -> None:
    """``num_gpu: auto`` on a machine whose GPU PyTorch cannot use would train on the CPU without a word."""
    try:
        wants_gpu = requested_num_gpu(argv) != 0
    except AttributeError:  # not a mapping: option_checks names the problem when the pipeline parses the file
        return
    if wants_gpu:
        from vsrcompress.gpu_check import unusable_gpu_warning
        warning = unusable_gpu_warning()
        if warning:
            print(warning, file=sys.stderr, flush=True)


def run_pipeline(pipeline: Callable[[str], object], root_path: str, argv: list[str] | None = None) -> int:
    """Run basicsr's ``train_pipeline``/``test_pipeline``; option-file problems give one ``error:`` line, exit 2.

    A missing file, bad YAML, or an option ``option_checks`` refuses (unknown key, wrong type, missing dataroot) is
    found before the pipeline makes or archives any folder.

    A run that fails before its model is built (a bad dataset or network option, a missing file) puts back the
    experiment/results folders it archived, so a typo never moves a finished run away.
    """
    from vsrcompress.option_checks import OptionError, option_file_error
    opt_path = _option_file_args(argv).opt
    if opt_path is not None and not osp.isfile(opt_path):
        print(f'error: -opt {opt_path}: no such option file.', file=sys.stderr)
        return 2
    try:
        _warn_if_gpu_unusable(argv)
        pipeline(root_path)
    except yaml.YAMLError as err:
        print(f'error: {option_file_error(opt_path, err)}', file=sys.stderr)
        return 2
    except OptionError as err:
        print(f'error: -opt {opt_path}: {err}', file=sys.stderr)
        return 2
    except BaseException:
        _restore_archived()
        raise
    return 0


def _explain_registry_misses() -> None:
    """Make an unknown ``type`` name an error that names the option key and the allowed values."""
    from basicsr.utils.registry import Registry
    option_keys = {'arch': 'network_g.type', 'model': 'model_type', 'dataset': 'datasets.<phase>.type',
                   'loss': 'train.<loss>_opt.type', 'metric': 'val.metrics.<name>.type'}

    def get(self, name, suffix='basicsr'):
        obj = self._obj_map.get(name, self._obj_map.get(f'{name}_{suffix}'))
        if obj is None:
            raise KeyError(f"{option_keys.get(self._name, self._name)}: unknown {self._name} type {name!r}; "
                           f"registered: {', '.join(sorted(self._obj_map))}")
        return obj

    Registry.get = get


def install() -> None:
    """Apply every patch once; safe to call repeatedly."""
    _alias_functional_tensor()
    import basicsr.train
    import basicsr.utils.options
    import basicsr.test
    import basicsr.utils.misc
    basicsr.utils.options.init_dist = init_dist
    basicsr.utils.options.ordered_yaml = ordered_yaml
    basicsr.train.load_resume_state = load_resume_state
    basicsr.utils.misc.mkdir_and_rename = mkdir_and_rename  # make_exp_dirs calls it through this name
    basicsr.train.mkdir_and_rename = mkdir_and_rename
    basicsr.train.build_model = _committing(basicsr.train.build_model)
    basicsr.test.build_model = _committing(basicsr.test.build_model)
    basicsr.train.parse_options = _checking(basicsr.train.parse_options)
    basicsr.test.parse_options = _checking(basicsr.test.parse_options)
    _explain_registry_misses()
