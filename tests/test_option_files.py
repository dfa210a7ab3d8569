"""Every shipped option file names registered parts, the footage layout, and valid compression sections."""
import copy
import glob
import os

import pytest
import yaml
from basicsr.archs import build_network
from basicsr.utils.registry import DATASET_REGISTRY, MODEL_REGISTRY

from vsrcompress.footage import layout
from vsrcompress.pruning import parse_pruning_config
from vsrcompress.quantization import QuantConfig
from vsrcompress.option_checks import check_options
from vsrcompress.recipe import parse_recipe
from vsrcompress.recipe.plan import TRAIN_STAGES

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPTION_FILES = sorted(os.path.relpath(p, os.path.join(REPO, 'options'))
                      for p in glob.glob(os.path.join(REPO, 'options', '**', '*.yml'), recursive=True))


def test_there_are_option_files_for_every_stage():
    assert {'demo/train_basicvsr_demo.yml', 'finetune_basicvsr_footage.yml', 'finetune_iconvsr_footage.yml',
            'test_footage.yml', 'basicvsr_prune.yml', 'iconvsr_prune.yml', 'basicvsr_qat.yml',
            'iconvsr_qat.yml', 'basicvsr_prune_qat.yml', 'iconvsr_prune_qat.yml',
            'demo/basicvsr_prune_qat_demo.yml'} <= set(OPTION_FILES)


def training_options(name: str, workdir) -> list[dict]:
    """The BasicSR options a file runs: itself, or for a recipe those of each of its training stages."""
    with open(os.path.join(REPO, 'options', name)) as f:
        opt = yaml.safe_load(f)
    if 'recipe' not in opt:
        return [opt]
    dense = (opt.get('path') or {}).get('pretrain_network_g')
    if dense:  # recipes check that their start exists; the official weights are not downloaded here
        os.makedirs(os.path.dirname(dense), exist_ok=True)
        open(dense, 'wb').close()
    for ds in opt['datasets'].values():  # recipes check that their footage exists; a placeholder layout here
        os.makedirs(ds['dataroot_gt'], exist_ok=True)
        os.makedirs(ds['dataroot_lq'], exist_ok=True)
        open(ds['meta_info_file'], 'a').close()
    plan = parse_recipe(opt, str(workdir))
    assert plan.stages[-2:] == ['export', 'report']
    return [plan.wired_stage_options(s) for s in plan.stages if s in TRAIN_STAGES]


@pytest.mark.parametrize('name', OPTION_FILES)
def test_option_file_is_consistent(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for opt in training_options(name, tmp_path):
        check_training_options(opt)


def check_training_options(opt: dict) -> None:
    assert opt['model_type'] in MODEL_REGISTRY
    check_options(opt, is_train='train' in opt, check_files=False)  # every key known, every value of its type
    for phase, ds in opt['datasets'].items():
        assert ds['type'] in DATASET_REGISTRY
        split = 'train' if phase == 'train' else 'val'
        root = ds['meta_info_file'].rsplit('/', 1)[0]
        assert ds['meta_info_file'] == layout.meta_info_path(root, split)
        suffix = layout.LMDB_SUFFIX if ds['io_backend']['type'] == 'lmdb' else ''
        assert ds['dataroot_gt'] == layout.split_dir(root, split, layout.GT_DIR) + suffix
        assert ds['dataroot_lq'] == layout.split_dir(root, split, layout.LQ_DIR) + suffix
    net = build_network(copy.deepcopy(opt['network_g']))
    assert net.scale == opt['scale']
    if 'pruning' in opt:
        section = {k: v for k, v in opt['pruning'].items() if k != 'step_interval'}
        assert parse_pruning_config(section).steps >= 1
    if 'quantization' in opt:
        assert QuantConfig.from_dict(opt['quantization'], ignore=['ptq_val_clips']).num_bits == 8
    if opt['model_type'] in ('PruningVSRModel', 'QATVSRModel'):
        assert opt['path']['pretrain_network_g'] and opt['train']['distill_opt']['loss_weight'] > 0
