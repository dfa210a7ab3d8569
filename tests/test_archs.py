"""BasicVSRNet/IconVSRNet: registration, official-checkpoint parity, x2, width specs, clear errors."""
import pytest
import torch
from basicsr.archs import build_network
from basicsr.archs.basicvsr_arch import BasicVSR, IconVSR
from basicsr.models import build_model
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY

from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet, IconVSRNet, SpyNetFlow
from vsrcompress.checkpoint import load_network, save_atomic


def test_import_registers_our_names_next_to_basicsr_ones():
    assert ARCH_REGISTRY.get('BasicVSRNet') is BasicVSRNet
    assert ARCH_REGISTRY.get('IconVSRNet') is IconVSRNet
    assert 'RecurrentVSRModel' in MODEL_REGISTRY
    # basicsr's own classes are still the ones under their names
    assert ARCH_REGISTRY.get('BasicVSR') is BasicVSR and ARCH_REGISTRY.get('IconVSR') is IconVSR
    assert 'VideoRecurrentModel' in MODEL_REGISTRY and 'REDSRecurrentDataset' in DATASET_REGISTRY


@pytest.mark.parametrize('ours_cls, ref_cls, frames', [(BasicVSRNet, BasicVSR, 3), (IconVSRNet, IconVSR, 5)])
def test_official_checkpoint_loads_strictly_with_identical_output(tmp_path, ours_cls, ref_cls, frames):
    torch.manual_seed(0)
    ref = ref_cls(num_feat=16, num_block=2).eval()
    path = tmp_path / 'official.pth'
    torch.save({'params': ref.state_dict()}, path)  # the official files' layout
    ours = load_network(str(path), {'type': ours_cls.__name__, 'num_feat': 16, 'num_block': 2}).net
    x = torch.rand(1, frames, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), ref(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize('height, width', [(64, 64), (70, 90), (33, 100)])
def test_spynet_flow_equals_basicsr_spynet_at_any_size(height, width):
    from basicsr.archs.spynet_arch import SpyNet
    torch.manual_seed(0)
    ref = SpyNet().eval()
    for p in ref.parameters():
        p.data.mul_(3)  # large flows, so a wrong rescale or resize would show
    ours = SpyNetFlow([[32, 64, 32, 16]] * 6).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    a, b = torch.rand(1, 3, height, width), torch.rand(1, 3, height, width)
    with torch.no_grad():
        expected = ref(a, b)
        assert expected.abs().max() > 1
        torch.testing.assert_close(ours(a, b), expected, atol=1e-6, rtol=0)


def test_spynet_and_edvr_weights_load_from_official_files(tmp_path):
    torch.manual_seed(0)
    ref = IconVSR(num_feat=16, num_block=1)
    spynet = {k: v for k, v in ref.spynet.state_dict().items() if k not in ('mean', 'std')}  # as the official file
    torch.save({'params': spynet}, tmp_path / 'spynet.pth')
    torch.save({'params': ref.edvr.state_dict()}, tmp_path / 'edvr.pth')
    ours = IconVSRNet(num_feat=16, num_block=1, spynet_path=str(tmp_path / 'spynet.pth'),
                      edvr_path=str(tmp_path / 'edvr.pth'))
    for name, tensor in ref.state_dict().items():
        if name.startswith(('spynet.', 'edvr.')):
            assert torch.equal(ours.state_dict()[name], tensor), name


def test_spynet_file_with_wrong_shapes_names_option_file_and_mismatch(tmp_path):
    narrow = SpyNetFlow([[8, 16, 8, 4]] * 6)
    path = tmp_path / 'spynet_narrow.pth'
    torch.save({'params': {k: v for k, v in narrow.state_dict().items() if k not in ('mean', 'std')}}, path)
    with pytest.raises(ValueError) as err:
        BasicVSRNet(num_feat=8, num_block=1, spynet_path=str(path))
    text = str(err.value)
    assert f'network_g.spynet_path: {path} does not match SpyNetFlow' in text
    assert 'basic_module.0.basic_module.0.weight: checkpoint (8, 8, 7, 7) vs network (32, 8, 7, 7)' in text


def test_corrupt_spynet_file_names_option_and_file(tmp_path):
    path = tmp_path / 'spynet_corrupt.pth'
    path.write_bytes(b'<html>Google Drive quota exceeded</html>')
    with pytest.raises(ValueError) as err:
        BasicVSRNet(num_feat=8, num_block=1, spynet_path=str(path))
    assert f'network_g.spynet_path: {path} is not a loadable plain-data checkpoint' in str(err.value)


def test_wrong_edvr_file_names_option_file_and_mismatch(tmp_path):
    spynet = SpyNetFlow([[32, 64, 32, 16]] * 6)
    path = tmp_path / 'spynet_given_as_edvr.pth'  # the two official files swapped by mistake
    torch.save({'params': {k: v for k, v in spynet.state_dict().items() if k not in ('mean', 'std')}}, path)
    with pytest.raises(ValueError) as err:
        IconVSRNet(num_feat=8, num_block=1, edvr_path=str(path))
    text = str(err.value)
    assert f'network_g.edvr_path: {path} does not match EDVRFeatureExtractor' in text
    assert 'missing keys' in text and 'conv_first.weight' in text
    assert 'unexpected keys' in text and 'basic_module.0.basic_module.0.weight' in text


@pytest.mark.parametrize('cls, frames', [(BasicVSRNet, 2), (IconVSRNet, 5)])
def test_x2_head_trains_and_runs(cls, frames):
    torch.manual_seed(0)
    net = cls(num_feat=8, num_block=1, scale=2)
    assert not hasattr(net, 'upconv2')
    x = torch.rand(1, frames, 3, 64, 72)
    gt = torch.rand(1, frames, 3, 128, 144)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    losses = []
    for _ in range(2):
        out = net(x)
        loss = (out - gt).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert out.shape == gt.shape
    assert losses[-1] < losses[0]


def test_width_spec_rebuilds_a_slimmer_network_that_loads_strictly():
    widths = {'backward': 8, 'backward_blocks': [4, 6], 'forward': 12, 'forward_blocks': [8, 8], 'fusion': 8,
              'upsample': [8, 16], 'hr': 16, 'spynet': [[8, 16, 8, 8]] * 6}
    net = BasicVSRNet(num_feat=16, num_block=2, widths=widths)
    assert net.width_spec() == widths
    rebuilt = build_network({'type': 'BasicVSRNet', 'num_feat': 16, 'num_block': 2, 'widths': net.width_spec()})
    rebuilt.load_state_dict(net.state_dict(), strict=True)
    x = torch.rand(1, 2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), net(x))
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in BasicVSRNet(16, 2).parameters())


def test_load_network_says_what_the_file_holds(tmp_path):
    """One loader: a pruned vsrcompress file and an official dense one, each described (kind, arch, widths)."""
    from vsrcompress.checkpoint import network_checkpoint
    pruned = IconVSRNet(num_feat=8, num_block=1, widths={'backward': 4, 'forward': 6, 'hr': 8, 'upsample': [4, 8]})
    save_atomic(network_checkpoint(pruned, {'type': 'IconVSRNet', 'num_feat': 8, 'num_block': 1}), tmp_path / 'p.pth')
    assert torch.load(tmp_path / 'p.pth', weights_only=True)['widths']['forward'] == 6  # plain data, its own spec
    loaded = load_network(str(tmp_path / 'p.pth'))
    assert (loaded.kind, loaded.int8, loaded.arch['type']) == ('pruned', False, 'IconVSRNet')
    assert loaded.widths == pruned.width_spec() == loaded.net.width_spec()
    torch.save({'params': BasicVSRNet(num_feat=8, num_block=1).state_dict()}, tmp_path / 'd.pth')
    dense = load_network(str(tmp_path / 'd.pth'), {'type': 'BasicVSRNet', 'num_feat': 8, 'num_block': 1})
    assert (dense.kind, dense.widths, dense.quant_config) == ('dense', None, None)
    with pytest.raises(ValueError, match=r'd\.pth is a checkpoint without an "arch" entry; give the network_g'):
        load_network(str(tmp_path / 'd.pth'))


@pytest.mark.parametrize('kwargs, message', [
    ({'scale': 3}, "network_g.scale: 3 is not supported; allowed: [2, 4]"),
    ({'widths': {'trunk': 8}}, "network_g.widths: unknown keys ['trunk']"),
    ({'widths': {'backward_blocks': [8]}}, 'network_g.widths.backward_blocks: expected a list of 2 entries'),
    ({'widths': {'hr': 0}}, 'network_g.widths.hr: widths must be positive integers'),
    ({'spynet_path': '/nonexistent/spynet.pth'}, 'network_g.spynet_path: /nonexistent/spynet.pth does not exist'),
])
def test_bad_arch_options_name_the_key(kwargs, message):
    with pytest.raises((ValueError, FileNotFoundError)) as err:
        BasicVSRNet(num_feat=8, num_block=2, **kwargs)
    assert message in str(err.value)


def test_unknown_type_names_option_key_and_choices():
    with pytest.raises(KeyError) as err:
        build_network({'type': 'BasicVSRNett'})
    assert 'network_g.type' in str(err.value) and 'BasicVSRNet' in str(err.value)
    with pytest.raises(KeyError) as err:
        build_model({'model_type': 'NoSuchModel'})
    assert 'model_type' in str(err.value) and 'RecurrentVSRModel' in str(err.value)


def test_checkpoint_that_does_not_match_the_arch_lists_the_mismatch(tmp_path):
    net = BasicVSRNet(num_feat=16, num_block=2)
    torch.save({'params': net.state_dict()}, tmp_path / 'w.pth')
    with pytest.raises(ValueError) as err:
        load_network(str(tmp_path / 'w.pth'), {'type': 'BasicVSRNet', 'num_feat': 8, 'num_block': 1}).net
    text = str(err.value)
    assert 'w.pth does not match BasicVSRNet' in text
    assert 'unexpected keys' in text and 'backward_trunk.main.2.1.conv1.weight' in text
    assert 'shape mismatch' in text
    assert 'backward_trunk.main.0.weight: checkpoint (16, 19, 3, 3) vs network (8, 11, 3, 3)' in text


def test_truncated_checkpoint_is_reported_with_its_path(tmp_path):
    path = tmp_path / 'broken.pth'
    save_atomic({'params': BasicVSRNet(8, 1).state_dict()}, path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match='broken.pth is not a loadable plain-data checkpoint'):
        load_network(str(path), {'type': 'BasicVSRNet', 'num_feat': 8, 'num_block': 1}).net
