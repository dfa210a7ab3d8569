"""Hidden-state distillation engine: what it records, what its losses measure, and across widths."""
import pytest
import torch

from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet
from vsrcompress.feature_distillation import (feature_distill_loss, parse_feature_distill, recorded_outputs,
                                              spatial_attention)

TRUNKS = ['backward_trunk', 'forward_trunk']
NARROW = {'backward': 8, 'forward': 8, 'backward_blocks': [8], 'forward_blocks': [8], 'fusion': 8}


def record(net: torch.nn.Module, clip: torch.Tensor) -> dict:
    with recorded_outputs(net, TRUNKS) as feats:
        net(clip)
    return feats


def test_records_every_time_step_and_removes_its_hooks():
    torch.manual_seed(0)
    net = BasicVSRNet(num_feat=16, num_block=1).eval()
    clip = torch.rand(1, 3, 3, 64, 64)
    with torch.no_grad():
        feats = record(net, clip)
        assert [len(feats[n]) for n in TRUNKS] == [3, 3]  # one hidden state per frame and direction
        assert feats['forward_trunk'][0].shape == (1, 16, 64, 64)
        assert all(not m._forward_hooks for m in net.modules())
        assert feature_distill_loss(feats, record(net, clip), 'attention').item() == 0  # same net, same input
        assert feature_distill_loss(feats, record(net, clip), 'features').item() == 0


def test_attention_loss_compares_a_pruned_student_with_its_teacher_and_trains_it():
    torch.manual_seed(0)
    teacher = BasicVSRNet(num_feat=16, num_block=1).eval()
    student = BasicVSRNet(num_feat=16, num_block=1, widths=NARROW)
    clip = torch.rand(1, 2, 3, 64, 64)
    with torch.no_grad():
        target = record(teacher, clip)
    loss = feature_distill_loss(record(student, clip), target, 'attention')
    assert 0 < loss.item() <= 2  # distance between unit vectors
    loss.backward()
    assert student.forward_trunk.main[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='mode: features needs equal shapes.*use mode attention'):
        feature_distill_loss(record(student, clip), target, 'features')


def test_spatial_attention_is_width_free_and_follows_where_the_energy_is():
    feat = torch.zeros(1, 4, 8, 8)
    feat[:, :, 2, 3] = 1.0
    wide = torch.cat([feat, feat], dim=1)
    assert torch.allclose(spatial_attention(feat), spatial_attention(wide))
    assert spatial_attention(feat)[0].argmax().item() == 2 * 8 + 3


def test_bad_options_name_the_key():
    assert parse_feature_distill({'layers': ['forward_trunk']}) == {'layers': ['forward_trunk'], 'mode': 'attention',
                                                                    'loss_weight': 1.0}
    with pytest.raises(ValueError, match=r"feature_distill_opt: unknown keys \['weight'\]"):
        parse_feature_distill({'layers': ['forward_trunk'], 'weight': 1})
    with pytest.raises(ValueError, match='feature_distill_opt.layers: expected a non-empty list'):
        parse_feature_distill({'layers': 'forward_trunk'})
    with pytest.raises(ValueError, match='feature_distill_opt.loss_weight: expected a number > 0'):
        parse_feature_distill({'layers': ['forward_trunk'], 'loss_weight': 0})
