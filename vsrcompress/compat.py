"""Makes basicsr 1.4.2 usable on today's torch/torchvision, on CPU as well as CUDA.

This is the one place where basicsr itself is patched. Each patch exists because basicsr calls the
broken function through a module-level name that no subclass can reach; everything that can be fixed
by overriding a method lives in our own model classes instead (see ``vsrcompress/models``).
"""
import argparse
import os
import sys
import types
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


def requested_num_gpu(argv: list[str] | None = None) -> int | str:
    """``num_gpu`` of the run started with ``argv`` (default: this process's command line), before parse_options.

    basicsr's ``parse_options`` reads the option file, then calls ``init_dist(launcher)`` without it (and applies
    ``--force_yml`` only afterwards), so ``init_dist`` reads ``num_gpu`` from the same command line: the ``-opt``
    file and any ``--force_yml num_gpu=...``. Without an option file (another caller) it is ``'auto'``.
    """
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('-opt')
    parser.add_argument('--force_yml', nargs='+', default=[])
    args, _ = parser.parse_known_args(argv)
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


def load_resume_state(opt: dict) -> dict | None:
    """Find and load the training state to resume from, onto CPU memory.

    basicsr's version maps tensors with ``torch.cuda.current_device()`` (fails without CUDA) and looks
    for ``experiments/`` relative to the working directory instead of the experiment root.
    """
    from basicsr.utils import check_resume, scandir
    resume_path = opt['path'].get('resume_state')
    if opt['auto_resume']:
        state_dir = opt['path']['training_states']
        if osp.isdir(state_dir):
            iters = [int(v[:-len('.state')]) for v in scandir(state_dir, suffix='.state') if v[:-6].isdigit()]
            if iters:
                resume_path = osp.join(state_dir, f'{max(iters)}.state')
                opt['path']['resume_state'] = resume_path
    if not resume_path:
        return None
    if not osp.isfile(resume_path):
        raise FileNotFoundError(f'path.resume_state: {resume_path} does not exist.')
    state = torch.load(resume_path, map_location='cpu')
    check_resume(opt, state['iter'])
    return state


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
    basicsr.utils.options.init_dist = init_dist
    basicsr.train.load_resume_state = load_resume_state
    _explain_registry_misses()
