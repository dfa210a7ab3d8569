"""train.py / test.py on CPU: validation, checkpoints, --auto_resume, fix_flow (torchrun: test_pruning_model.py)."""
import copy
import glob

import pytest
import torch
from basicsr.models import build_model
from conftest import as_parsed, footage_datasets, read_train_log, run_entry, tiny_train_options

from vsrcompress.checkpoint import save_atomic
from vsrcompress.models.recurrent_vsr_model import RecurrentVSRModel


def test_train_validates_checkpoints_and_auto_resumes(tiny_footage, tmp_path):
    opt = tiny_train_options(tiny_footage, name='resume_me', total_iter=4)
    run_entry('train.py', opt, tmp_path)
    exp = tmp_path / 'experiments' / 'resume_me'
    log = read_train_log(exp)
    assert 'Validation tiny_val' in log and '# psnr:' in log
    assert (exp / 'models' / 'net_g_4.pth').is_file() and (exp / 'training_states' / '4.state').is_file()
    assert not glob.glob(str(exp / '**' / '.tmp_*'), recursive=True)  # atomic writes leave no temporaries
    ckpt = torch.load(exp / 'models' / 'net_g_4.pth', weights_only=True)
    assert ckpt['arch']['type'] == 'BasicVSRNet' and ckpt['widths']['backward'] == 8
    assert set(ckpt) >= {'params', 'params_ema'}
    state = torch.load(exp / 'training_states' / '4.state', weights_only=True)
    assert state['iter'] == 4

    opt['train']['total_iter'] = 6
    run_entry('train.py', opt, tmp_path, '--auto_resume')
    log = read_train_log(exp)
    assert 'Resuming training from epoch' in log and 'iter: 4.' in log
    assert (exp / 'models' / 'net_g_6.pth').is_file()
    resumed = torch.load(exp / 'models' / 'net_g_6.pth', weights_only=True)['params']
    assert any(not torch.equal(resumed[k], ckpt['params'][k]) for k in resumed)


def test_test_py_reports_psnr_per_clip(tiny_footage, tmp_path):
    net = build_model(_model_opt(tiny_footage)).net_g
    from vsrcompress.checkpoint import network_checkpoint
    weights = tmp_path / 'w.pth'
    save_atomic(network_checkpoint(net, {'type': 'BasicVSRNet', 'num_feat': 8, 'num_block': 1}), weights)
    opt = {'name': 'eval_tiny', 'model_type': 'RecurrentVSRModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 0,
           'datasets': {'test': footage_datasets(tiny_footage)['val']},
           'network_g': {'type': 'BasicVSRNet', 'num_feat': 8, 'num_block': 1},
           'path': {'pretrain_network_g': str(weights), 'strict_load_g': True},
           'val': {'save_img': False, 'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0},
                                                  'ssim': {'type': 'calculate_ssim', 'crop_border': 0}}}}
    run_entry('test.py', opt, tmp_path)
    log = open(glob.glob(str(tmp_path / 'results' / 'eval_tiny' / 'test_*.log'))[0]).read()
    assert '# psnr:' in log and '# ssim:' in log and 'val_02_chelsea' in log


def _model_opt(root, **train) -> dict:
    opt = as_parsed(tiny_train_options(root))
    opt['train'].update(train)
    opt['path'].update({'models': '/nonexistent', 'training_states': '/nonexistent'})
    return opt


class SpyNetLevel0FrozenModel(RecurrentVSRModel):
    """Freezes part of SpyNet for its own reasons before training starts, as a subclass might."""

    def init_training_settings(self):
        self.get_bare_model(self.net_g).spynet.basic_module[0].requires_grad_(False)
        super().init_training_settings()


def test_fix_flow_follows_the_iteration_and_keeps_deliberately_frozen_params(tiny_footage):
    opt = _model_opt(tiny_footage, fix_flow=3)
    model = SpyNetLevel0FrozenModel(copy.deepcopy(opt))
    frozen_on_purpose = model.net_g.spynet.basic_module[0].basic_module[0].weight
    flow_param = model.net_g.spynet.basic_module[1].basic_module[0].weight

    model.set_flow_frozen(1)
    assert not flow_param.requires_grad and next(model.net_g.backward_trunk.parameters()).requires_grad
    model.set_flow_frozen(3)
    assert flow_param.requires_grad and not frozen_on_purpose.requires_grad

    # A run resumed at iteration 2 must start frozen, without ever having seen iteration 1.
    resumed = build_model(copy.deepcopy(opt))
    resumed.set_flow_frozen(2)
    assert not next(resumed.net_g.spynet.parameters()).requires_grad


def test_optimizer_choice_and_unknown_optimizer(tiny_footage):
    for name, cls in (('Adam', torch.optim.Adam), ('AdamW', torch.optim.AdamW)):
        model = build_model(_model_opt(tiny_footage, optim_g={'type': name, 'lr': 1e-3, 'weight_decay': 0.01}))
        assert type(model.optimizer_g) is cls, name  # `is`: AdamW subclasses Adam in today's torch
        assert model.optimizer_g.param_groups[0]['weight_decay'] == 0.01
    with pytest.raises(ValueError, match=r"train.optim_g.type: 'Adagrad' is not supported; allowed: \['Adam', "):
        build_model(_model_opt(tiny_footage, optim_g={'type': 'Adagrad', 'lr': 1e-3}))


def test_ema_tracks_buffers_too(tiny_footage):
    model = build_model(_model_opt(tiny_footage))
    model.net_g.spynet.mean.fill_(0.25)
    model.model_ema(0.9)
    assert torch.equal(model.net_g_ema.spynet.mean, model.net_g.spynet.mean)


def test_missing_pretrained_file_names_the_option(tiny_footage):
    opt = _model_opt(tiny_footage)
    opt['path']['pretrain_network_g'] = '/nowhere/net_g.pth'
    with pytest.raises(FileNotFoundError, match='path.pretrain_network_g: /nowhere/net_g.pth does not exist'):
        build_model(opt)


def test_pretrained_checkpoint_of_other_widths_names_the_option_file_and_mismatch(tiny_footage, tmp_path):
    from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet
    path = tmp_path / 'wide.pth'
    save_atomic({'params': BasicVSRNet(num_feat=16, num_block=1).state_dict()}, path)  # official layout: no widths
    opt = _model_opt(tiny_footage)
    opt['path']['pretrain_network_g'] = str(path)
    with pytest.raises(ValueError) as err:
        build_model(opt)
    text = str(err.value)
    assert f'path.pretrain_network_g: {path} does not match BasicVSRNet' in text
    assert 'backward_trunk.main.0.weight: checkpoint (16, 19, 3, 3) vs network (8, 11, 3, 3)' in text


def test_unknown_dataset_type_names_the_option_and_the_choices():
    from basicsr.data import build_dataset
    opt = as_parsed(tiny_train_options('/nonexistent'))
    opt['datasets']['train']['type'] = 'FootageRecurrentDatset'
    with pytest.raises(KeyError) as err:
        build_dataset(opt['datasets']['train'])
    text = str(err.value)
    assert "datasets.<phase>.type: unknown dataset type 'FootageRecurrentDatset'" in text
    assert 'FootageRecurrentDataset' in text and 'REDSRecurrentDataset' in text


def test_pretrained_checkpoint_with_widths_rebuilds_the_slim_arch(tiny_footage, tmp_path):
    from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet
    from vsrcompress.checkpoint import network_checkpoint
    slim = BasicVSRNet(num_feat=8, num_block=1, widths={'backward': 4, 'forward': 6, 'upsample': [8, 16], 'hr': 8})
    save_atomic(network_checkpoint(slim, {'type': 'BasicVSRNet', 'num_feat': 8, 'num_block': 1}), tmp_path / 's.pth')
    opt = _model_opt(tiny_footage)
    opt['path']['pretrain_network_g'] = str(tmp_path / 's.pth')
    model = build_model(copy.deepcopy(opt))
    assert model.net_g.width_spec() == slim.width_spec()
    assert model.net_g_ema.width_spec() == slim.width_spec()


def test_num_gpu_for_the_distributed_backend_comes_from_the_command_line(tmp_path):
    from vsrcompress.compat import requested_num_gpu
    opt_file = tmp_path / 'cpu.yml'
    opt_file.write_text('name: cpu\nnum_gpu: 0\n')
    assert requested_num_gpu(['-opt', str(opt_file), '--launcher', 'pytorch']) == 0
    assert requested_num_gpu(['-opt', str(opt_file), '--force_yml', 'name=x', 'num_gpu=2']) == 2
    assert requested_num_gpu(['--launcher', 'pytorch']) == 'auto'
