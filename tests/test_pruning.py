"""The pruning engine on tiny BasicVSR/IconVSR: coupled indices, targets, criteria, MACs, checkpoints, errors."""
import ast
import copy
from pathlib import Path

import pytest
import torch
from torch import nn

import vsrcompress  # noqa: F401  (basicsr registration for the archs; the engine itself does not need it)
from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet, IconVSRNet
from vsrcompress.pruning import (VSRChannelPruner, apply_plan, count_complexity, coupling_groups,
                                 parse_pruning_config, prune_network, rebuild_pruned_network, replay_history,
                                 save_pruned_checkpoint)

SIZE = [64, 64]
NARROW = {'upsample': [8, 8], 'hr': 8, 'spynet': [[8, 8, 8, 8]] * 6}  # keeps the toys fast
BASIC_X4 = dict(num_feat=16, num_block=2, scale=4, widths=NARROW)
BASIC_X2 = dict(num_feat=16, num_block=1, scale=2, widths={**NARROW, 'upsample': [8]})
ICON_X4 = dict(num_feat=16, num_block=1, scale=4, widths={**NARROW, 'edvr': 16})
HALF = {'round_to': 4, 'min_width': 4, 'reference_size': SIZE}


def make(cls: type, kwargs: dict, seed: int = 0) -> nn.Module:
    """A toy network whose every conv matters: He-initialized, so no branch's signal fades out (a freshly
    built BasicVSR scales its residual blocks by 0.1 and its output is almost the bilinear upscale)."""
    torch.manual_seed(seed)
    net = cls(**kwargs).eval()
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity='relu')
            nn.init.uniform_(m.bias, -0.1, 0.1)
    return net


def clip(cls: type, seed: int = 1) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.rand(1, 5 if cls is IconVSRNet else 2, 3, *SIZE)


def run(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net(x)


def kill(conv: nn.Conv2d, rows: list[int]) -> None:
    with torch.no_grad():
        conv.weight[rows] = 0
        conv.bias[rows] = 0


def make_dead(net: nn.Module, plan: dict[str, list[int]]) -> None:
    """Zero, from the architecture alone, every producer of the planned units so they carry nothing.

    A hidden-state channel is dead when the trunk's first conv, every block's conv2 (residual adds) and, for
    IconVSR, the keyframe fusion conv write zeros to it: then it is zero at every frame, including the warped
    state fed back into the trunk. Any other unit is dead when the conv (or r*r upconv rows) producing it is zero.
    """
    for name, units in plan.items():
        if name.startswith('edvr.'):  # every EDVR space is written only by its producers (sums, products)
            group = next(g for g in coupling_groups(net) if g.name == name)
            for piece in group.slices:
                if piece.dim == 'out':
                    kill(net.get_submodule(piece.module), units)
        elif name in ('backward', 'forward'):
            trunk = getattr(net, f'{name}_trunk')
            for conv in [trunk.main[0], *(block.conv2 for block in trunk.main[2])]:
                kill(conv, units)
            if hasattr(net, f'{name}_fusion'):
                kill(getattr(net, f'{name}_fusion'), units)
        elif '_blocks.' in name:
            branch, index = name.split('_blocks.')
            kill(getattr(net, f'{branch}_trunk').main[2][int(index)].conv1, units)
        elif name == 'fusion':
            kill(net.fusion, units)
        elif name.startswith('upsample.'):
            kill(getattr(net, f'upconv{int(name[-1]) + 1}'), [4 * u + k for u in units for k in range(4)])
        elif name == 'hr':
            kill(net.conv_hr, units)
        else:
            _, level, index = name.split('.')
            convs = [m for m in net.spynet.basic_module[int(level)].basic_module if isinstance(m, nn.Conv2d)]
            kill(convs[int(index)], units)


def test_ratio_zero_leaves_network_and_outputs_identical():
    net = make(BasicVSRNet, BASIC_X4)
    x = clip(BasicVSRNet)
    before, spec, state = run(net, x), net.width_spec(), copy.deepcopy(net.state_dict())
    report = prune_network(net, {'ratio': 0.0, **HALF})
    assert torch.equal(run(net, x), before)
    assert net.width_spec() == spec and report['mac_fraction'] == 1.0 and report['history'] == [{}]
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())


@pytest.mark.parametrize('cls, kwargs, ratio', [
    (BasicVSRNet, BASIC_X4, {'trunk': 0.5, 'blocks': 0.5}),
    (BasicVSRNet, BASIC_X4, {'tail': 0.5}),
    (BasicVSRNet, BASIC_X2, {'tail': 0.5}),
    (BasicVSRNet, BASIC_X4, {'spynet': 0.5}),
    (IconVSRNet, ICON_X4, {'trunk': 0.5, 'blocks': 0.5, 'tail': 0.5, 'spynet': 0.5}),
    (IconVSRNet, ICON_X4, {'edvr': 0.5}),
], ids=['basicvsr-trunk', 'basicvsr-x4-pixel-shuffle', 'basicvsr-x2-pixel-shuffle', 'basicvsr-spynet', 'iconvsr',
        'iconvsr-edvr'])
def test_pruning_dead_channels_keeps_outputs(cls, kwargs, ratio):
    # float64: warping by large random flows turns float32 rounding into 1e-5 differences; a wrong index is O(1)
    net = make(cls, kwargs).double()
    x = clip(cls).double()
    pruner = VSRChannelPruner(net, {'ratio': ratio, **HALF})
    plan = pruner.plan_step()
    assert {g.part for g in coupling_groups(net) if g.name in plan} == set(ratio)

    make_dead(net, plan)
    expected = run(net, x)
    shifted = copy.deepcopy(net)  # control: cutting live units instead (indices shifted by one) changes the output
    widths = {g.name: g.width for g in coupling_groups(net)}
    apply_plan(shifted, {name: sorted((u + 1) % widths[name] for u in units) for name, units in plan.items()})
    pruner.apply(plan)
    assert torch.allclose(run(net, x), expected, atol=1e-5, rtol=0)
    assert (run(shifted, x) - expected).abs().max() > 1e-2


def test_taylor_finds_dead_hidden_channels_and_restores_the_network():
    net = make(BasicVSRNet, BASIC_X4)
    dead = [1, 6, 11, 12]
    make_dead(net, {'backward': dead})
    net.spynet.requires_grad_(False)
    x = clip(BasicVSRNet)
    samples = [(x, torch.rand(1, x.shape[1], 3, 256, 256))]
    pruner = VSRChannelPruner(net, {'criterion': 'taylor', 'ratio': {'trunk': 0.25}, **HALF}, samples=samples)
    plan = pruner.step()
    assert plan['backward'] == dead and len(plan['forward']) == 4
    assert not any(p.requires_grad for p in net.spynet.parameters())
    assert all(p.requires_grad for name, p in net.named_parameters() if not name.startswith('spynet'))
    assert all(p.grad is None for p in net.parameters())
    assert net.width_spec()['backward'] == 12


EXPECTED_HALF = {'backward': 8, 'forward': 8, 'upsample': [4, 4], 'hr': 4, 'spynet': [[4, 4, 4, 4]] * 6}


@pytest.mark.parametrize('cls, kwargs, expected', [
    (BasicVSRNet, BASIC_X4, {**EXPECTED_HALF, 'backward_blocks': [8, 8], 'forward_blocks': [8, 8], 'fusion': 8}),
    (BasicVSRNet, BASIC_X2, {**EXPECTED_HALF, 'backward_blocks': [8], 'forward_blocks': [8], 'fusion': 8,
                             'upsample': [4]}),
    (IconVSRNet, ICON_X4, {**EXPECTED_HALF, 'backward_blocks': [8], 'forward_blocks': [8], 'edvr': 8}),
], ids=['basicvsr-x4', 'basicvsr-x2', 'iconvsr-x4'])
def test_pruned_widths_params_macs_match_spec_and_train(cls, kwargs, expected):
    net = make(cls, kwargs)
    report = prune_network(net, {'ratio': 0.5, **HALF})
    assert net.width_spec() == expected == report['widths_after']
    rebuilt = cls(**{**kwargs, 'widths': expected})
    assert report['params_after'] == sum(p.numel() for p in rebuilt.parameters()) < report['params_before']
    assert report['macs_per_frame_after'] == count_complexity(rebuilt, tuple(SIZE))['macs_per_frame']
    assert report['mac_fraction'] < 0.5
    parts = {'blocks': 0.5, 'spynet': 0.5, 'tail': 0.5, 'trunk': 0.5}
    assert report['removed_fraction'] == ({**parts, 'edvr': 0.5} if cls is IconVSRNet else parts)

    net.train()
    out = net(clip(cls))
    assert out.shape == (1, clip(cls).shape[1], 3, 64 * kwargs['scale'], 64 * kwargs['scale'])
    out.abs().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters() if p.requires_grad)


def test_checkpoint_round_trip_and_history_replay(tmp_path):
    net = make(BasicVSRNet, BASIC_X4)
    dense = copy.deepcopy(net)
    report = prune_network(net, {'ratio': {'trunk': 0.5, 'tail': 0.25}, 'steps': 2, **HALF})
    path = tmp_path / 'pruned.pth'
    save_pruned_checkpoint(str(path), net, {'type': 'BasicVSRNet', 'num_feat': 16, 'num_block': 2, 'scale': 4},
                           report, source='dense.pth')
    loaded = torch.load(path, weights_only=True)
    assert loaded['pruning']['source'] == 'dense.pth' and loaded['widths'] == net.width_spec()
    assert loaded['pruning']['macs_per_frame_after'] < loaded['pruning']['macs_per_frame_before']
    rebuilt = rebuild_pruned_network(BasicVSRNet, loaded).eval()
    x = clip(BasicVSRNet)
    assert torch.equal(run(rebuilt, x), run(net, x))

    replay_history(dense, loaded['pruning']['history'])
    assert dense.width_spec() == net.width_spec()
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in dense.state_dict().items())
    with pytest.raises(ValueError, match='holds a BasicVSRNet, not a IconVSRNet'):
        rebuild_pruned_network(IconVSRNet, loaded)


def test_mac_budget_is_met_with_rounded_widths():
    net = make(BasicVSRNet, BASIC_X4)
    report = prune_network(net, {'mac_budget': 0.3, **HALF})
    assert 0.2 < report['mac_fraction'] <= 0.3
    assert count_complexity(net, tuple(SIZE))['macs_per_frame'] <= 0.3 * report['macs_per_frame_before']
    assert all(g.width % 4 == 0 for g in coupling_groups(net))


def test_iterative_steps_reach_the_target_in_stages():
    net = make(BasicVSRNet, BASIC_X4)
    pruner = VSRChannelPruner(net, {'ratio': {'trunk': 0.5}, 'steps': 2, **HALF})
    pruner.step()
    assert net.width_spec()['backward'] == 12 and not pruner.finished
    pruner.step()
    assert net.width_spec()['forward'] == 8 and pruner.finished and pruner.report()['steps_done'] == 2
    with pytest.raises(RuntimeError, match='all 2 steps are done'):
        pruner.step()


def test_global_ranking_takes_more_from_weak_groups():
    net = make(BasicVSRNet, BASIC_X4)
    with torch.no_grad():  # 12 of 16 inner channels of one block nearly unused (scores are normalized per group)
        weak = net.backward_trunk.main[2][0]
        weak.conv1.weight[4:] *= 0.01
        weak.conv2.weight[:, 4:] *= 0.01
    prune_network(net, {'ratio': {'blocks': 0.5}, 'ranking': 'global', **HALF})
    spec = net.width_spec()
    kept = spec['backward_blocks'] + spec['forward_blocks']
    assert spec['backward_blocks'][0] == 4 and 32 <= sum(kept) <= 32 + 9 and kept != [8, 8, 8, 8]

    lamp = make(BasicVSRNet, BASIC_X4)
    prune_network(lamp, {'ratio': {'blocks': 0.5}, 'ranking': 'global', 'criterion': 'lamp', **HALF})
    assert 32 <= sum(lamp.width_spec()['backward_blocks'] + lamp.width_spec()['forward_blocks']) <= 32 + 9


@pytest.mark.parametrize('options, message', [
    ({'ratio': 1.0}, r'pruning.ratio: .* must be in \[0, 1\); got 1.0'),
    ({'ratio': -0.1}, r'pruning.ratio: .* got -0.1'),
    ({'ratio': {'trunk': 1.5}}, r'pruning.ratio.trunk: .* got 1.5'),
    ({'ratio': {'head': 0.5}}, r"pruning.ratio: unknown part\(s\) \['head'\]; allowed: \['trunk', 'blocks', "),
    ({'ratio': 0.5, 'parts': ['trunk', 'pcd']}, r"pruning.parts: unknown part\(s\) \['pcd'\]"),
    ({'ratio': 0.5, 'criterion': 'magnitude'}, r"pruning.criterion: 'magnitude' is unknown; allowed: \['l1', "),
    ({'ratio': 0.5, 'ranking': 'local'}, r"pruning.ranking: 'local' is unknown"),
    ({'ratios': 0.5}, r"pruning: unknown key\(s\) \['ratios'\]"),
    ({'ratio': 0.5, 'mac_budget': 0.3}, 'exactly one target'),
    ({}, 'exactly one target'),
    ({'mac_budget': 0}, r'pruning.mac_budget: .* \(0, 1\]; got 0'),
    ({'ratio': 0.5, 'reference_size': [16, 16]}, 'pruning.reference_size'),
    ({'ratio': 0.5, 'round_to': 0}, 'pruning.round_to: expected an integer >= 1'),
    ({'ratio': 0.5, 'ignore': ['(']}, 'pruning.ignore: .* not a valid regular expression'),
])
def test_bad_options_are_rejected_with_the_key(options, message):
    with pytest.raises(ValueError, match=message):
        parse_pruning_config(options)


@pytest.mark.parametrize('options', [{'ratio': {'trunk': 0.5, 'tail': 0.25}, 'criterion': 'lamp', 'steps': 3},
                                     {'mac_budget': 0.3, 'parts': ['trunk', 'tail'], 'ignore': ['hr']}])
def test_config_to_dict_reads_back_to_the_same_config(options):
    config = parse_pruning_config(options)
    assert parse_pruning_config(config.to_dict()) == config


def test_impossible_budget_unknown_network_and_taylor_without_data_fail_before_work():
    net = make(BasicVSRNet, BASIC_X4)
    state = copy.deepcopy(net.state_dict())
    with pytest.raises(ValueError, match=r'pruning.mac_budget: 0.05 is below 0\.\d+, the fraction .* at its minimum'):
        VSRChannelPruner(net, {'mac_budget': 0.05, 'parts': ['trunk'], **HALF})
    with pytest.raises(TypeError, match="has no 'backward_trunk'"):
        VSRChannelPruner(nn.Conv2d(3, 3, 3), {'ratio': 0.5})
    pruner = VSRChannelPruner(net, {'ratio': 0.5, 'criterion': 'taylor', **HALF})
    with pytest.raises(ValueError, match='taylor .* needs sample clips'):
        pruner.step()
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items()) and pruner.history == []


def test_ignore_keeps_matched_groups_and_warns_on_dead_patterns():
    net = make(BasicVSRNet, BASIC_X4)
    with pytest.warns(UserWarning, match=r"pruning.ignore: 'conv_last' matches no channel group .* \['backward'"):
        pruner = VSRChannelPruner(net, {'ratio': 0.5, 'ignore': [r'spynet\..*', 'upconv2', 'conv_last'], **HALF})
    pruner.step()
    spec = net.width_spec()
    assert spec['spynet'] == NARROW['spynet'] and spec['upsample'] == [4, 8] and spec['backward'] == 8


def test_engine_does_not_import_basicsr():
    for path in (Path(vsrcompress.__file__).parent / 'pruning').glob('*.py'):
        tree = ast.parse(path.read_text())
        names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        names += [node.module or '' for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        assert not [n for n in names if n.split('.')[0] == 'basicsr'], path.name


def test_edvr_keeps_one_width_and_every_channel_in_its_deformable_group():
    net = make(IconVSRNet, ICON_X4)
    x = clip(IconVSRNet)
    pruner = VSRChannelPruner(net, {'ratio': {'edvr': 0.5}, 'ranking': 'global', **HALF})
    plan = pruner.plan_step()
    groups = {g.name: g for g in coupling_groups(net) if g.part == 'edvr'}
    assert set(plan) == set(groups) and {len(units) for units in plan.values()} == {8}  # global ranks EDVR uniformly
    deformable = [g for g in groups.values() if g.segments == 8]
    assert sorted(g.name for g in deformable) == ['edvr.feat.l1', 'edvr.l1', 'edvr.l2', 'edvr.l3']
    for group in deformable:  # 16 channels in 8 deformable groups of 2: one goes from each
        assert sorted(u // 2 for u in plan[group.name]) == list(range(8))
    pruner.apply(plan)
    assert net.width_spec()['edvr'] == 8 and net.edvr.pcd_align.cas_dcnpack.weight.shape == (8, 8, 3, 3)
    rebuilt = IconVSRNet(**{**ICON_X4, 'widths': net.width_spec()}).eval()
    rebuilt.load_state_dict(net.state_dict(), strict=True)
    assert torch.equal(run(rebuilt, x), run(net, x))

    with pytest.raises(ValueError, match=r"pruning.ignore: the edvr groups share one width .*\['edvr.l1'"):
        VSRChannelPruner(make(IconVSRNet, ICON_X4), {'ratio': 0.5, 'ignore': [r'edvr\.l\d'], **HALF})
