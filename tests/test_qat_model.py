"""QATVSRModel through train.py/test.py: calibration, PTQ report, range histograms in TensorBoard, QAT, resume, INT8
checkpoint, pruned input."""
import glob

import pytest
import torch
from basicsr.models import build_model
from conftest import DENSE16_ARCH, as_parsed, footage_datasets, qat_options, read_train_log, run_entry, torchrun
from tensorboard.backend.event_processing.event_accumulator import HISTOGRAMS, EventAccumulator

from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet
from vsrcompress.checkpoint import network_checkpoint, save_atomic
from vsrcompress.quantization import INT8_FORMAT, OUTPUT_RANGE_KEY


def amax_of(state: dict) -> dict:
    return {k: v for k, v in state.items() if k.endswith('_amax')}


def check_range_histograms(tb_folder, int8: dict) -> None:
    """QATVSRModel's range histograms in TensorBoard (read back with TensorBoard's own event reader), after
    calibration (step 0) and at validation, hold exactly the ranges the INT8 file stores (frozen buffers)."""
    events = EventAccumulator(str(tb_folder), size_guidance={HISTOGRAMS: 0}).Reload()
    assert {'qat/activation_amax', 'qat/weight_amax'} <= set(events.Tags()['histograms'])
    expected = {'qat/activation_amax': torch.stack(list(int8['activation_amax'].values())).flatten(),
                'qat/weight_amax': torch.cat([a.flatten() for a in int8['weight_amax'].values()])}
    assert len(expected['qat/activation_amax']) == len(int8['int8_weights']) + 2  # conv inputs + 2 residual adds
    for tag, values in expected.items():
        histograms = events.Histograms(tag)
        steps = sorted({h.step for h in histograms})
        # calibration, validation at iteration 2, basicsr's final validation (its loop counter ends past total_iter)
        assert steps[:2] == [0, 2] and len(steps) <= 3
        for h in histograms:
            assert h.histogram_value.num == len(values)
            assert h.histogram_value.min == pytest.approx(float(values.min()))
            assert h.histogram_value.max == pytest.approx(float(values.max()))
            assert h.histogram_value.sum == pytest.approx(float(values.sum()), rel=1e-5)


def test_qat_calibrates_trains_resumes_and_writes_int8(tiny_footage, dense16_checkpoint, tmp_path):
    opt = qat_options(tiny_footage, dense16_checkpoint, 'qat_tiny', total_iter=2)
    run_entry('train.py', opt, tmp_path)
    exp = tmp_path / 'experiments' / 'qat_tiny'
    log = read_train_log(exp)
    assert 'Calibrated' in log and 'PTQ before QAT' in log and 'qat/ptq_psnr' in log
    first = torch.load(exp / 'models' / 'net_g_2.pth', weights_only=True)
    ranges = amax_of(first['params'])
    assert ranges and all(torch.isfinite(v).all() for v in ranges.values())
    assert amax_of(first['params_ema']).keys() == ranges.keys()
    assert first['quantization']['source'] == dense16_checkpoint and first['teacher'] == dense16_checkpoint
    check_range_histograms(tmp_path / 'tb_logger' / 'qat_tiny',
                           torch.load(exp / 'models' / 'net_g_int8.pth', weights_only=True))

    opt['train']['total_iter'] = 4
    run_entry('train.py', opt, tmp_path, '--auto_resume')
    log = read_train_log(exp)
    assert 'Resuming training from epoch' in log and log.count('Calibrated') == 1  # resume does not recalibrate
    final = torch.load(exp / 'models' / 'net_g_4.pth', weights_only=True)
    for key, value in ranges.items():  # ranges are frozen buffers: exactly kept through resume
        if '_input_quantizer' in key or 'skip_quant' in key:
            assert torch.equal(final['params'][key], value), key
    assert any(not torch.equal(final['params'][k], first['params'][k]) for k in first['params'] if 'weight' in k)

    int8 = torch.load(exp / 'models' / 'net_g_int8.pth', weights_only=True)
    assert int8['format'] == INT8_FORMAT and int8['arch']['type'] == 'BasicVSRNet'
    assert all(q.dtype == torch.int8 for q in int8['int8_weights'].values())
    assert not any(name.startswith('spynet') for name in int8['int8_weights'])  # skip_parts: [spynet]
    ranges = int8[OUTPUT_RANGE_KEY]  # conv output ranges for the ONNX Runtime INT8 placement
    assert set(ranges) == set(int8['int8_weights']) and all(r[0] <= 0 <= r[1] for r in ranges.values())
    assert int8['widths'] == first['widths']

    test_opt = {'name': 'eval_int8', 'model_type': 'QATVSRModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 0,
                'datasets': {'test': footage_datasets(tiny_footage)['val']}, 'network_g': dict(DENSE16_ARCH),
                'path': {'pretrain_network_g': str(exp / 'models' / 'net_g_int8.pth'), 'strict_load_g': True},
                'quantization': {},
                'val': {'save_img': False, 'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0}}}}
    run_entry('test.py', test_opt, tmp_path)
    test_log = open(glob.glob(str(tmp_path / 'results' / 'eval_int8' / 'test_*.log'))[0]).read()
    assert '# psnr:' in test_log


def test_pruned_fp32_checkpoint_goes_through_qat(tiny_footage, tmp_path):
    slim = BasicVSRNet(num_feat=16, num_block=1, widths={'backward': 8, 'forward': 8, 'backward_blocks': [8],
                                                         'forward_blocks': [8], 'fusion': 8, 'upsample': [8, 16]})
    path = str(tmp_path / 'pruned.pth')
    save_atomic(network_checkpoint(slim, DENSE16_ARCH), path)
    opt = qat_options(tiny_footage, path, 'qat_pruned', total_iter=2)
    opt['train']['feature_distill_opt'] = {'layers': ['backward_trunk', 'forward_trunk'], 'mode': 'features'}
    model = build_model(as_parsed(opt))
    assert model.net_g.width_spec() == slim.width_spec()
    assert model.net_teacher.width_spec() == slim.width_spec()  # the teacher is the FP32 pruned network itself
    model.feed_data({'lq': torch.rand(1, 3, 3, 64, 64), 'gt': torch.rand(1, 3, 3, 256, 256)})
    model.optimize_parameters(1)
    assert model.log_dict['l_distill'] > 0 and 'qat/ptq_psnr' in model.log_dict
    assert model.log_dict['l_feat_distill'] > 0  # fake-quant hidden states differ from the float teacher's


def test_bad_quantization_options_fail_before_work(tiny_footage, dense16_checkpoint):
    opt = qat_options(tiny_footage, dense16_checkpoint, 'bad', total_iter=2, calibrator='minmax')
    as_parsed(opt)
    with pytest.raises(ValueError, match=r"quantization.calibrator: unknown method 'minmax'; allowed: \['max'"):
        build_model(opt)
    opt['quantization'].update(calibrator='max', num_bits=9)
    with pytest.raises(ValueError, match='quantization.num_bits'):
        build_model(opt)
    opt['quantization'].update(num_bits=8)
    opt['path']['pretrain_network_g'] = None
    with pytest.raises(ValueError, match='path.pretrain_network_g: QATVSRModel quantizes a trained FP32 network'):
        build_model(opt)



def test_two_processes_hold_the_same_ranges(tiny_footage, dense16_checkpoint, tmp_path):
    opt = qat_options(tiny_footage, dense16_checkpoint, 'qat_ddp', total_iter=1)
    opt['logger']['save_checkpoint_freq'] = 1
    launcher = torchrun()
    run_entry('train.py', opt, tmp_path, '--launcher', 'pytorch', launcher=launcher)
    log = read_train_log(tmp_path / 'experiments' / 'qat_ddp')
    assert 'Activation ranges identical on 2 ranks.' in log
