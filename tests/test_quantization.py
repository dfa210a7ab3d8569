"""INT8 quantization engine on tiny BasicVSR/IconVSR networks (CPU, synthetic clips)."""
import collections
import copy
import math
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.multiprocessing as mp
from pytorch_quantization import calib
from pytorch_quantization.calib.histogram import _compute_amax_entropy
from pytorch_quantization.nn import QuantConv2d, TensorQuantizer
from pytorch_quantization.tensor_quant import fake_tensor_quant
from torch import nn
from torch.nn import functional as F

from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet, IconVSRNet
from vsrcompress.checkpoint import save_atomic
from vsrcompress.quantization import (QuantConfig, activation_quantizers, calibrate, check_calibrated, clip_psnr,
                                      effective_amax, export_int8_checkpoint, layer_quantizers, load_int8_checkpoint,
                                      part_units, qdq_export_mode, quant_convs, quantize_network, residual_quantizers,
                                      sensitivity_analysis, set_quantization_enabled)
from vsrcompress.quantization.histogram_amax import entropy_amax, mse_amax

TINY_WIDTHS = {'upsample': [16], 'hr': 16, 'spynet': [[8, 8, 8, 8]] * 6}


pytestmark = pytest.mark.usefixtures('one_thread')


def make_clip(frames: int = 3, size: int = 64, seed: int = 0) -> torch.Tensor:
    """A smooth, horizontally moving colour pattern (1, frames, 3, size, size) in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing='ij')
    freq = torch.rand(3, 3, 2, generator=gen) * 6 + 1
    phase = torch.rand(3, 3, generator=gen) * 2 * math.pi
    clip = []
    for t in range(frames):
        x = xs + 0.04 * t
        clip.append(torch.stack([0.5 + sum(0.15 * torch.sin(2 * math.pi * (freq[c, k, 0] * x + freq[c, k, 1] * ys)
                                                             + phase[c, k]) for k in range(3)) for c in range(3)]))
    return torch.stack(clip)[None].clamp(0, 1)


def tiny_basicvsr(seed: int = 0, **kwargs) -> BasicVSRNet:
    torch.manual_seed(seed)
    opts = {'num_feat': 16, 'num_block': 2, 'scale': 2, 'widths': TINY_WIDTHS, **kwargs}
    return BasicVSRNet(**opts).eval()


def residual_sqnr(float_out: torch.Tensor, quant_out: torch.Tensor, lq: torch.Tensor, scale: int) -> float:
    """SNR (dB) of what the network adds to the bilinear upscale; the full output is dominated by that upscale."""
    base = F.interpolate(lq.flatten(0, 1), scale_factor=scale, mode='bilinear', align_corners=False)
    signal = float_out - base.view_as(float_out)
    noise = quant_out - float_out
    return 10 * math.log10(signal.pow(2).mean().item() / noise.pow(2).mean().item())


def quantized_output(bits: int, calibrator: str = 'max') -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    net = tiny_basicvsr()
    lq = make_clip(seed=2)
    with torch.no_grad():
        reference = net(lq)
    cfg = {'num_bits': bits, 'calibrator': calibrator}
    quantize_network(net, cfg)
    calibrate(net, [make_clip(seed=1)], cfg)  # calibration and evaluation clips differ
    with torch.no_grad():
        return reference, net(lq), lq


def test_8bit_is_close_to_float_and_4bit_clearly_worse():
    reference, out8, lq = quantized_output(8)
    _, out4, _ = quantized_output(4)
    psnr8, psnr4 = clip_psnr(out8, reference.clamp(0, 1)), clip_psnr(out4, reference.clamp(0, 1))
    sqnr8, sqnr4 = residual_sqnr(reference, out8, lq, 2), residual_sqnr(reference, out4, lq, 2)
    # Measured here: 8 bit 72.4 dB PSNR / 48.6 dB residual SNR, 4 bit 48.2 / 24.4 (every layer quantized).
    assert psnr8 > 60 and sqnr8 > 40
    assert psnr8 - psnr4 > 15 and sqnr8 - sqnr4 > 15


@pytest.mark.parametrize('calibrator', ['max', 'percentile', 'mse', 'entropy'])
def test_every_calibrator_sets_finite_ranges_no_larger_than_max(calibrator):
    clip = make_clip(seed=1)
    cfg = {'calibrator': calibrator, 'num_bins': 256, 'skip_parts': ['spynet']}
    net = tiny_basicvsr()
    quantize_network(net, cfg)
    max_amax = calibrate(copy.deepcopy(net), [clip], {**cfg, 'calibrator': 'max'})
    amax = calibrate(net, [clip], cfg)
    assert set(amax) == set(max_amax)
    for name, value in amax.items():
        assert 0 < value <= max_amax[name] * 1.01, name  # histogram edges may sit a fraction of a bin above max
    check_calibrated(net)
    with torch.no_grad():
        assert torch.isfinite(net(clip)).all()


def test_entropy_search_matches_pytorch_quantization():
    collector = calib.HistogramCalibrator(8, None, False, num_bins=512)
    gen = torch.Generator().manual_seed(0)
    collector.collect(torch.randn(20000, generator=gen))
    collector.collect(torch.randn(20000, generator=gen) * 1.7)  # grows the histogram, as later time steps do
    hist, edges = collector._calib_hist, collector._calib_bin_edges
    expected = _compute_amax_entropy(hist.int().numpy(), edges.numpy(), 8, False)
    assert float(entropy_amax(hist, edges, 8)) == float(expected)


def test_mse_search_is_near_the_brute_force_optimum():
    gen = torch.Generator().manual_seed(0)
    uniform = torch.rand(2, 100000, generator=gen)
    data = torch.log(uniform[0] / uniform[1])  # Laplace: long tails, so clipping pays off at 4 bits
    collector = calib.HistogramCalibrator(4, None, False, num_bins=2048)
    collector.collect(data)
    amax = mse_amax(collector._calib_hist, collector._calib_bin_edges, 4)

    def error(a):
        return (fake_tensor_quant(data, torch.tensor(float(a)), 4, False, False) - data).pow(2).mean().item()

    best = min(error(a) for a in torch.linspace(0.5, float(data.abs().max()), 400))
    assert float(amax) < 0.7 * float(data.abs().max())
    assert error(amax) <= best * 1.05


def test_calibration_covers_every_time_step():
    clip = make_clip(frames=3, seed=1)
    cfg = {'skip_parts': ['spynet']}  # a one-frame clip has no frame pairs for SpyNet
    net = tiny_basicvsr()
    quantize_network(net, cfg)
    first_only = copy.deepcopy(net)

    per_call = collections.defaultdict(list)  # independent record of every call's max |x|, on the float network
    handles = [q.register_forward_pre_hook(lambda m, a, n=name: per_call[n].append(a[0].abs().max().item()))
               for name, q in activation_quantizers(net).items()]
    whole = calibrate(net, [clip], cfg)
    for handle in handles:
        handle.remove()
    for name, value in whole.items():
        assert len(per_call[name]) >= 3  # one quantizer serves every time step
        assert value == pytest.approx(max(per_call[name]), rel=1e-6), name

    first = calibrate(first_only, [clip[:, :1]], cfg)
    # The forward trunk's first step is the same computation in both runs, so the whole clip can only widen it.
    forward_layers = [n for n in whole if n.startswith('forward_trunk')]
    assert forward_layers
    assert all(whole[n] >= first[n] for n in forward_layers)
    assert any(whole[n] > first[n] * 1.01 for n in whole)


def test_skip_by_part_and_regex_keeps_layers_float():
    net = tiny_basicvsr()
    report = quantize_network(net, {'skip_parts': ['spynet', 'last_conv'], 'skip': [r'forward_trunk\.main\.2\.1\..*']})
    modules = dict(net.named_modules())
    assert type(modules['conv_last']) is nn.Conv2d
    assert type(modules['forward_trunk.main.2.1.conv1']) is nn.Conv2d
    assert isinstance(modules['forward_trunk.main.2.1.skip_quant'], nn.Identity)
    assert not any(isinstance(m, QuantConv2d) for n, m in modules.items() if n.startswith('spynet.'))
    assert isinstance(modules['forward_trunk.main.2.0.skip_quant'], TensorQuantizer)
    assert isinstance(modules['upconv1'], QuantConv2d)
    assert report.skipped['conv_last'] == 'skip_parts: last_conv'
    assert report.skipped['forward_trunk.main.2.1.conv2'].startswith('skip:')
    assert sorted(report.residual) == sorted(residual_quantizers(net))
    assert sorted(report.quantized) == sorted(quant_convs(net))


def test_insertion_keeps_parameters_and_ranges_stay_frozen_during_qat():
    net = tiny_basicvsr()
    weight = net.upconv1.weight
    cfg = {'skip_parts': ['spynet'], 'learn_amax': True, 'calibrator': 'percentile', 'percentile': 99.0}
    quantize_network(net, cfg)
    assert net.upconv1.weight is weight  # optimizers built before insertion keep working
    calibrate(net, [make_clip(seed=1)], cfg)
    buffers_before = {k: v.clone() for k, v in net.state_dict().items() if k.endswith('_amax')}
    assert not any(name.endswith('_amax') for name, _ in net.named_parameters())
    clip_params = [p for n, p in net.named_parameters() if '.clip.' in n]
    assert clip_params and all(p.requires_grad for p in clip_params)
    learned_before = [p.detach().clone() for p in clip_params]

    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    clip = make_clip(seed=3)
    loss = F.l1_loss(net(clip), F.interpolate(clip.flatten(0, 1), scale_factor=2).view(1, 3, 3, 128, 128))
    loss.backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0  # straight-through gradients reach weights
    optimizer.step()
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in buffers_before.items())
    assert any(not torch.equal(a, p) for a, p in zip(learned_before, clip_params))


@pytest.mark.parametrize('learn_amax', [False, True])
def test_int8_checkpoint_round_trip_is_exact(tmp_path, learn_amax):
    cfg = {'learn_amax': learn_amax, 'calibrator': 'percentile', 'percentile': 99.0, 'num_bins': 512}
    net = tiny_basicvsr()
    report = quantize_network(net, cfg)
    calibrate(net, [make_clip(seed=1)], cfg)
    if learn_amax:  # one QAT step so the learned ranges differ from the calibrated ones
        optimizer = torch.optim.SGD([p for n, p in net.named_parameters() if '.clip.' in n], lr=0.1)
        net(make_clip(seed=3)).mean().backward()
        optimizer.step()
    clip = make_clip(seed=2)
    with torch.no_grad():
        before = net(clip)
    path = str(tmp_path / 'int8.pth')
    export_int8_checkpoint(net, cfg, report, path, source='demo_fp32.pth', extra={'arch': {'type': 'BasicVSRNet'}})

    ckpt = torch.load(path, weights_only=True)
    assert ckpt['quantization']['source'] == 'demo_fp32.pth' and ckpt['arch'] == {'type': 'BasicVSRNet'}
    assert ckpt['quantization']['calibrator'] == 'percentile' and ckpt['quantization']['num_bits'] == 8
    assert all(q.dtype == torch.int8 for q in ckpt['int8_weights'].values())
    name = 'forward_trunk.main.0'
    assert torch.allclose(ckpt['int8_weights'][name].float() * ckpt['weight_scale'][name].view(-1, 1, 1, 1),
                          net.get_submodule(name).weight, atol=float(ckpt['weight_scale'][name].max()))

    reloaded = tiny_basicvsr(seed=5)  # different float weights: everything must come from the checkpoint
    load_int8_checkpoint(reloaded, path)
    original_q = layer_quantizers(net)
    assert list(layer_quantizers(reloaded)) == list(original_q)
    for layer, quantizers in layer_quantizers(reloaded).items():
        for q, q0 in zip(quantizers, original_q[layer]):
            assert torch.equal(effective_amax(q), effective_amax(q0)), layer
    with torch.no_grad():
        assert torch.equal(reloaded(clip), before)


def test_quantized_state_dict_loads_strictly_into_a_fresh_quantized_network():
    cfg = {'skip_parts': ['spynet'], 'calibrator': 'mse', 'num_bins': 256}
    net = tiny_basicvsr()
    quantize_network(net, cfg)
    calibrate(net, [make_clip(seed=1)], cfg)
    fresh = tiny_basicvsr(seed=5)  # what resume and an EMA copy do: same insertion, then a strict load
    quantize_network(fresh, cfg)
    fresh.load_state_dict(net.state_dict(), strict=True)
    assert all(torch.equal(q.amax, activation_quantizers(net)[n].amax) for n, q in activation_quantizers(fresh).items())
    clip = make_clip(seed=2)
    with torch.no_grad():
        assert torch.equal(fresh(clip), net(clip))


def test_any_conv_network_round_trips_through_the_int8_checkpoint(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 3, 3, padding=1, bias=False))
    images = torch.rand(2, 3, 32, 32)
    report = quantize_network(net, {'num_bits': 6})
    assert report.quantized == ['0', '2'] and report.residual == []
    calibrate(net, [images], {'num_bits': 6})
    path = str(tmp_path / 'int8.pth')
    export_int8_checkpoint(net, {'num_bits': 6}, report, path)
    assert 'widths' not in torch.load(path, weights_only=True)
    fresh = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 3, 3, padding=1, bias=False))
    load_int8_checkpoint(fresh, path)
    with torch.no_grad():
        assert torch.equal(fresh(images), net(images))


def test_int8_checkpoint_is_at_most_26_percent_of_fp32(tmp_path):
    torch.manual_seed(0)
    net = BasicVSRNet(num_feat=48, num_block=1, scale=2).eval()  # weights dominate, as in the real model
    fp32_path, int8_path = str(tmp_path / 'fp32.pth'), str(tmp_path / 'int8.pth')
    save_atomic({'params': net.state_dict()}, fp32_path)
    report = quantize_network(net, {})
    calibrate(net, [make_clip(frames=2, seed=1)], {})
    export_int8_checkpoint(net, {}, report, int8_path)
    ratio = os.path.getsize(int8_path) / os.path.getsize(fp32_path)
    assert ratio <= 0.26, ratio  # measured: 0.255


def test_pruned_width_network_goes_through_insertion_and_calibration():
    widths = {'backward': 12, 'backward_blocks': [8, 6], 'forward': 10, 'forward_blocks': [4, 8], 'fusion': 12,
              'upsample': [8], 'hr': 8, 'spynet': [[8, 8, 8, 8]] * 6}
    net = tiny_basicvsr(widths=widths)
    clip = make_clip(seed=2)
    with torch.no_grad():
        reference = net(clip)
    report = quantize_network(net, {})
    assert net.width_spec()['forward_blocks'] == [4, 8]
    assert len(report.quantized) == sum(isinstance(m, QuantConv2d) for m in net.modules()) > 0
    calibrate(net, [make_clip(seed=1)], {})
    with torch.no_grad():
        assert clip_psnr(net(clip), reference.clamp(0, 1)) > 60


def test_iconvsr_quantizes_with_edvr_kept_float():
    torch.manual_seed(0)
    net = IconVSRNet(num_feat=8, num_block=1, scale=2, widths={'upsample': [8], 'hr': 8}).eval()
    clip = make_clip(frames=5, seed=1)
    with torch.no_grad():
        reference = net(clip)
    report = quantize_network(net, {'skip_parts': ['edvr', 'spynet']})
    assert 'backward_fusion' in report.quantized and 'forward_fusion' in report.quantized
    assert all(not n.startswith('edvr.') for n in report.quantized)
    assert any(n.startswith('edvr.') for n in report.skipped)
    calibrate(net, [clip], {})
    with torch.no_grad():
        assert clip_psnr(net(clip), reference.clamp(0, 1)) > 60


def test_sensitivity_report_is_sorted_and_suggestion_meets_budget():
    cfg = {'num_bits': 4, 'skip_parts': ['spynet']}  # 4 bit makes per-layer costs clearly measurable
    net = tiny_basicvsr(num_block=1)
    lq = make_clip(frames=2, seed=4)
    with torch.no_grad():  # ground truth the float network matches well (about 46 dB), as for a trained teacher
        gt = (net(lq) + 0.005 * torch.randn(1, 2, 3, 128, 128, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    quantize_network(net, cfg)
    calibrate(net, [make_clip(frames=2, seed=1)], cfg)
    with torch.no_grad():
        quantized = net(lq)
        set_quantization_enabled(net, False)
        full_drop = clip_psnr(net(lq), gt) - clip_psnr(quantized, gt)
        set_quantization_enabled(net, True)
    assert full_drop > 0.1

    budget = full_drop / 3
    report = sensitivity_analysis(net, [lq], [gt], psnr_budget_db=budget)
    assert report.psnr_float - report.psnr_quantized == pytest.approx(full_drop)
    names = [s.name for s in report.layers]
    assert sorted(names) == sorted(layer_quantizers(net))
    gains = [s.gain_as_float for s in report.layers]
    assert gains == sorted(gains, reverse=True)
    assert all(s.drop_alone == pytest.approx(report.psnr_float - s.psnr_alone) for s in report.layers)
    assert report.suggested_skip == names[:len(report.suggested_skip)]  # most sensitive first
    assert 0 < len(report.suggested_skip) < len(names)
    assert report.psnr_float - report.psnr_with_suggested_skip <= budget
    with torch.no_grad():
        assert torch.equal(net(lq), quantized)  # left fully quantized


def test_part_level_sensitivity_switches_whole_parts():
    cfg = {'num_bits': 4}
    net = tiny_basicvsr(num_block=1)
    lq = make_clip(frames=2, seed=4)
    with torch.no_grad():
        gt = net(lq).clamp(0, 1)
    quantize_network(net, cfg)
    calibrate(net, [make_clip(frames=2, seed=1)], cfg)
    units = part_units(net)
    assert set(units) == {'spynet', 'first_conv', 'last_conv', 'upsample', 'fusion', 'other'}
    assert units['last_conv'] == ['conv_last'] and 'forward_trunk.main.2.0.conv1' in units['other']
    assert sorted(layer for layers in units.values() for layer in layers) == sorted(layer_quantizers(net))
    report = sensitivity_analysis(net, [lq], [gt], psnr_budget_db=0.0, units=units)
    assert sorted(s.name for s in report.layers) == sorted(units)
    assert report.suggested_skip == [s.name for s in report.layers][:len(report.suggested_skip)]
    assert report.psnr_with_suggested_skip == pytest.approx(report.psnr_float)  # everything float again: no loss
    with pytest.raises(ValueError, match=r"units must name quantized layers of the network; unknown or empty: "
                                         r"\['conv_first'\]"):
        sensitivity_analysis(net, [lq], [gt], units={'first': ['conv_first']})


def _count_quantized_calls(net: nn.Module, clip: torch.Tensor) -> tuple[int, int, int]:
    calls = collections.Counter()
    residual = {id(m) for m in residual_quantizers(net).values()}
    hooks = [m.register_forward_hook(lambda mod, a, o: calls.update([type(mod)])) for m in net.modules()
             if isinstance(m, (QuantConv2d, nn.Conv2d)) or id(m) in residual]
    with torch.no_grad():
        net(clip)
    for hook in hooks:
        hook.remove()
    return calls[QuantConv2d], calls[nn.Conv2d], calls[TensorQuantizer]


@pytest.mark.filterwarnings('ignore::torch.jit.TracerWarning')
def test_onnx_export_has_qdq_for_every_quantized_conv(tmp_path):
    widths = {'upsample': [8], 'hr': 8, 'spynet': [[8, 8, 8, 8]] * 6}
    net = tiny_basicvsr(num_feat=8, num_block=1, widths=widths)
    clip = make_clip(frames=2, seed=1)
    quantize_network(net, {'skip_parts': ['spynet']})
    calibrate(net, [clip], {})
    quant_calls, float_calls, residual_calls = _count_quantized_calls(net, clip)
    path = str(tmp_path / 'qat.onnx')
    with qdq_export_mode():
        torch.onnx.export(net, (clip,), path, dynamo=False, opset_version=17, input_names=['lq'],
                          output_names=['out'])
        with torch.no_grad():
            expected = net(clip).numpy()

    graph = onnx.load(path).graph
    produced_by = {out: node for node in graph.node for out in node.output}

    def from_dq(name):
        return name in produced_by and produced_by[name].op_type == 'DequantizeLinear'

    convs = [n for n in graph.node if n.op_type == 'Conv']
    qdq_convs = [n for n in convs if from_dq(n.input[0]) and from_dq(n.input[1])]
    assert len(qdq_convs) == quant_calls > 0  # every call of every quantized conv: Q/DQ on input and weight
    assert len(convs) - len(qdq_convs) == float_calls  # SpyNet stays float
    adds_with_dq = [n for n in graph.node if n.op_type == 'Add' and any(from_dq(i) for i in n.input)]
    assert len(adds_with_dq) == residual_calls > 0
    ops = collections.Counter(n.op_type for n in graph.node)
    weight_dq = {n.input[1] for n in qdq_convs}
    assert ops['QuantizeLinear'] == ops['DequantizeLinear'] == quant_calls + len(weight_dq) + residual_calls
    assert len(weight_dq) == len(quant_convs(net))

    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    out = session.run(None, {'lq': clip.numpy()})[0]
    assert np.abs(out - expected).max() < 1e-2


def _calibrate_on_rank(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=world)
    try:
        net = tiny_basicvsr(num_block=1)
        quantize_network(net, {'skip_parts': ['spynet']})
        amax = calibrate(net, [make_clip(frames=2, seed=10 + rank) * (0.5 + rank)], {})
        torch.save(amax, os.path.join(out_dir, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


def test_amax_is_max_reduced_across_two_gloo_ranks(tmp_path):
    # fork: the children inherit the imported modules (spawned ones spent 20 s each importing basicsr here)
    mp.start_processes(_calibrate_on_rank, args=(2, str(tmp_path / 'rendezvous'), str(tmp_path)), nprocs=2,
                       join=True, start_method='fork')
    synced = [torch.load(tmp_path / f'rank{r}.pth', weights_only=True) for r in range(2)]
    assert synced[0] == synced[1]
    local = []
    for rank in range(2):  # the same calibration, one process each, no reduction
        net = tiny_basicvsr(num_block=1)
        quantize_network(net, {'skip_parts': ['spynet']})
        local.append(calibrate(net, [make_clip(frames=2, seed=10 + rank) * (0.5 + rank)], {}))
    for name, value in synced[0].items():
        assert value == pytest.approx(max(local[0][name], local[1][name]), rel=1e-6)
    assert any(local[0][n] != local[1][n] for n in local[0])


# ---- bad input ----

@pytest.mark.parametrize('section, message', [
    ({'calibrator': 'minmax'}, "quantization.calibrator: unknown method 'minmax'; allowed: ['max', 'percentile'"),
    ({'num_bits': 1}, 'quantization.num_bits: expected an integer 2..8, got 1'),
    ({'num_bits': 9}, 'quantization.num_bits: expected an integer 2..8, got 9'),
    ({'num_bits': True}, 'quantization.num_bits'),
    ({'skip_parts': ['dcn']}, "quantization.skip_parts: unknown parts ['dcn']; allowed: ['edvr', 'first_conv'"),
    ({'skip': 'spynet'}, 'quantization.skip: expected a list of strings'),
    ({'skip': ['(']}, "quantization.skip: '(' is not a valid regex"),
    ({'percentile': 0}, 'quantization.percentile'),
    ({'num_bins': 64}, 'quantization.num_bins: expected an integer >= 256'),
    ({'calib_batches': 0}, 'quantization.calib_batches: expected an integer >= 1'),
    ({'learn_amax': 'yes'}, 'quantization.learn_amax: expected true or false'),
    ({'bits': 8}, "quantization: unknown keys ['bits']; allowed: ["),
])
def test_bad_options_name_the_key_and_allowed_values(section, message):
    with pytest.raises(ValueError) as err:
        quantize_network(tiny_basicvsr(), section)
    assert message in str(err.value)


def test_config_ignores_keys_owned_by_the_model():
    cfg = QuantConfig.from_dict({'num_bits': 6, 'kd_weight': 1.0}, ignore=['kd_weight'])
    assert cfg.num_bits == 6 and 'kd_weight' not in cfg.as_dict()


def test_skip_pattern_matching_nothing_warns_with_layer_names():
    net = tiny_basicvsr()
    with pytest.warns(UserWarning, match=r"quantization\.skip: 'convlast' matches no layer.*conv_last"):
        report = quantize_network(net, {'skip': ['convlast']})
    assert 'conv_last' in report.quantized
    with pytest.warns(UserWarning, match=r'quantization\.skip_parts: edvr matches no layer'):
        quantize_network(tiny_basicvsr(), {'skip_parts': ['edvr']})


def test_calibration_with_zero_batches_fails():
    net = tiny_basicvsr()
    quantize_network(net, {})
    with pytest.raises(ValueError, match='calibration got zero batches'):
        calibrate(net, [], {})
    with pytest.raises(ValueError, match='no calibrated range'):
        check_calibrated(net)


def test_nan_activations_during_calibration_name_the_layer():
    net = tiny_basicvsr()
    quantize_network(net, {'skip_parts': ['spynet']})
    clip = make_clip(seed=1)
    clip[0, 1, 0, 10, 10] = float('nan')
    with pytest.raises(FloatingPointError, match=r'calibration batch 0: NaN or inf at the input of quantizer '
                                                 r'backward_trunk\.main\.0\._input_quantizer'):
        calibrate(net, [clip], {})


def test_calibration_rejects_batches_that_are_not_tensors():
    net = tiny_basicvsr()
    quantize_network(net, {})
    with pytest.raises(TypeError, match=r'calibration batch 0: expected a tensor .* got dict'):
        calibrate(net, [{'lq': make_clip()}], {})


def test_misuse_of_quantize_and_load_is_reported(tmp_path):
    with pytest.raises(ValueError, match='has no activation quantizers; call quantize_network first'):
        calibrate(tiny_basicvsr(), [make_clip()], {})
    net = tiny_basicvsr()
    report = quantize_network(net, {})
    with pytest.raises(ValueError, match='already carries quantizers'):
        quantize_network(net, {})
    fp32_path = str(tmp_path / 'fp32.pth')
    save_atomic({'params': tiny_basicvsr().state_dict()}, fp32_path)
    with pytest.raises(ValueError, match=r'int8_checkpoint: .*fp32.pth is not a vsrcompress INT8 checkpoint'):
        load_int8_checkpoint(tiny_basicvsr(), fp32_path)
    int8_path = str(tmp_path / 'int8.pth')
    calibrate(net, [make_clip()], {})
    export_int8_checkpoint(net, {}, report, int8_path)
    with pytest.raises(ValueError, match=r'quantizes layers that BasicVSRNet lacks .*forward_trunk\.main\.2\.1'):
        load_int8_checkpoint(tiny_basicvsr(num_block=1), int8_path)  # checkpoint has 2 blocks per trunk
    with pytest.raises(ValueError, match='int8_checkpoint: BasicVSRNet already carries quantizers'):
        load_int8_checkpoint(net, int8_path)
    with pytest.raises(ValueError, match='sensitivity_analysis: need as many targets as clips'):
        sensitivity_analysis(net, [make_clip()], [])


def test_quantized_network_reports_the_same_width_spec():
    """An INT8 checkpoint stores width_spec(); QuantConv2d layers must still count as convs there."""
    net = BasicVSRNet(num_feat=8, num_block=1, widths={'spynet': [[8, 16, 8, 4]] * 6})
    dense_spec = net.width_spec()
    quantize_network(net, {})
    assert net.width_spec() == dense_spec
