"""PruningVSRModel through train.py: stepwise pruning inside training, KD, resume, torchrun, bad options."""
import os

import pytest
import torch
from basicsr.models import build_model
from conftest import as_parsed, pruning_options, read_train_log, run_entry, torchrun

from vsrcompress.archs.basicvsr_net_arch import IconVSRNet
from vsrcompress.checkpoint import load_network, network_checkpoint, save_atomic
from vsrcompress.footage.demo import make_demo_footage


def test_stepwise_pruning_with_distillation_then_resume_keeps_pruned_shapes(tiny_footage, dense16_checkpoint, tmp_path):
    opt = pruning_options(tiny_footage, dense16_checkpoint, 'prune_steps', total_iter=2)
    opt['train']['feature_distill_opt'] = {'layers': ['backward_trunk', 'forward_trunk'], 'loss_weight': 0.5}
    run_entry('train.py', opt, tmp_path)
    exp = tmp_path / 'experiments' / 'prune_steps'
    assert 'Pruning step 1/2 at iter 1' in read_train_log(exp) and 'Pruning step 2/2' not in read_train_log(exp)
    half = torch.load(exp / 'models' / 'net_g_2.pth', weights_only=True)
    assert half['pruning']['steps_done'] == 1 and half['teacher'] == dense16_checkpoint
    assert half['widths']['backward'] == 12  # 16 -> 25 % removed at step 1 of 2, multiple of round_to 4

    opt['train']['total_iter'] = 4
    run_entry('train.py', opt, tmp_path, '--auto_resume')
    log = read_train_log(exp)
    assert 'Resuming training from epoch' in log and 'Pruning step 2/2 at iter 3' in log
    assert 'l_distill' in log and 'l_feat_distill' in log and 'prune/mac_fraction' in log
    final = torch.load(exp / 'models' / 'net_g_4.pth', weights_only=True)
    report = final['pruning']
    assert report['steps_done'] == 2 and len(report['history']) == 2 and report['source'] == dense16_checkpoint
    assert final['widths']['backward'] == 8 and final['widths']['backward_blocks'] == [8]
    assert report['params_after'] < report['params_before'] and report['mac_fraction'] < 1

    net = load_network(str(exp / 'models' / 'net_g_4.pth')).net
    assert net.width_spec() == final['widths']
    assert sum(p.numel() for p in net.parameters()) == report['params_after']


def test_bad_pruning_options_fail_before_training(tiny_footage, dense16_checkpoint):
    opt = pruning_options(tiny_footage, dense16_checkpoint, 'bad', total_iter=2, ratio=1.0)
    as_parsed(opt)
    with pytest.raises(ValueError, match=r'pruning.ratio: .* must be in \[0, 1\); got 1.0'):
        build_model(opt)
    opt['pruning'].update(ratio=0.5, criterion='magnitude')
    with pytest.raises(ValueError, match=r"pruning.criterion: 'magnitude' is unknown; allowed: \['l1', "):
        build_model(opt)
    opt['pruning'].update(criterion='l1', step_interval=-1)
    with pytest.raises(ValueError, match='pruning.step_interval: expected an integer >= 0'):
        build_model(opt)
    opt['pruning'].update(step_interval=2)
    opt['train']['feature_distill_opt'] = {'layers': ['hidden_trunk']}
    with pytest.raises(ValueError, match=r"feature_distill_opt.layers: the student has no module \['hidden_trunk'\]"):
        build_model(opt)
    opt['train']['feature_distill_opt'] = {'layers': ['forward_trunk'], 'mode': 'gram'}
    with pytest.raises(ValueError, match=r"feature_distill_opt.mode: 'gram' is not supported; allowed: \['attention'"):
        build_model(opt)



def test_two_processes_end_with_the_same_pruned_network(tiny_footage, dense16_checkpoint, tmp_path):
    opt = pruning_options(tiny_footage, dense16_checkpoint, 'prune_ddp', total_iter=2, criterion='taylor', steps=1)
    proc = run_entry('train.py', opt, tmp_path, '--launcher', 'pytorch', launcher=torchrun())
    for rank in (0, 1):
        assert f'Distributed: gloo backend, rank {rank} of 2.' in proc.stdout
    exp = tmp_path / 'experiments' / 'prune_ddp'
    log = read_train_log(exp)
    assert 'World size (gpu number): 2' in log and 'Validation tiny_val' in log
    assert 'Pruned weights identical on 2 ranks.' in log
    assert torch.load(exp / 'models' / 'net_g_2.pth', weights_only=True)['widths']['forward'] == 8
    assert os.path.isfile(exp / 'models' / 'net_g_latest.pth')


def test_iconvsr_with_edvr_is_pruned_fine_tuned_and_rebuilt(tmp_path):
    root = str(tmp_path / 'footage')
    make_demo_footage(root, seed=0, train_clips=1, val_clips=1, num_frames=5, gt_height=256, gt_width=256,
                      progress=False)
    widths = {'upsample': [8, 8], 'hr': 8, 'spynet': [[4, 8, 4, 2]] * 6, 'edvr': 16}
    arch = {'type': 'IconVSRNet', 'num_feat': 8, 'num_block': 1, 'widths': widths}
    dense = str(tmp_path / 'iconvsr.pth')
    torch.manual_seed(0)
    save_atomic(network_checkpoint(IconVSRNet(num_feat=8, num_block=1, widths=widths), arch), dense)
    opt = pruning_options(root, dense, 'prune_iconvsr', total_iter=2, ratio={'trunk': 0.5, 'edvr': 0.5}, steps=1)
    del opt['pruning']['parts']
    opt['network_g'] = dict(arch)
    opt['datasets']['train']['num_frame'] = 5
    run_entry('train.py', opt, tmp_path)

    final = torch.load(tmp_path / 'experiments' / 'prune_iconvsr' / 'models' / 'net_g_2.pth', weights_only=True)
    assert final['widths']['edvr'] == 8 and final['widths']['backward'] == 4
    assert final['pruning']['removed_fraction'] == {'edvr': 0.5, 'trunk': 0.5}
    net = load_network(str(tmp_path / 'experiments' / 'prune_iconvsr' / 'models' / 'net_g_2.pth')).net
    assert net.width_spec() == final['widths'] and net.edvr.pcd_align.cas_dcnpack.weight.shape == (8, 8, 3, 3)
    with torch.no_grad():
        assert net(torch.rand(1, 5, 3, 64, 64)).shape == (1, 5, 3, 256, 256)
