"""QATVSRModel's range histograms in TensorBoard: after calibration (step 0) and at validation, read back from the
run's ``tb_logger/<name>`` folder with TensorBoard's own event reader."""
import pytest
import torch
from conftest import run_entry, tiny_train_options
from tensorboard.backend.event_processing.event_accumulator import HISTOGRAMS, EventAccumulator

from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet
from vsrcompress.checkpoint import network_checkpoint, save_atomic

ARCH = {'type': 'BasicVSRNet', 'num_feat': 8, 'num_block': 1}
NARROW = {'upsample': [8, 8], 'hr': 8, 'spynet': [[4, 8, 4, 2]] * 6}


def test_amax_histograms_after_calibration_and_at_validation(tiny_footage, tmp_path):
    torch.manual_seed(0)
    fp32 = str(tmp_path / 'fp32.pth')
    save_atomic(network_checkpoint(BasicVSRNet(num_feat=8, num_block=1, widths=NARROW), ARCH), fp32)
    opt = tiny_train_options(tiny_footage, name='qat_tb', total_iter=2)  # val_freq 2; use_tb_logger: true
    opt['model_type'] = 'QATVSRModel'
    opt['path']['pretrain_network_g'] = fp32
    opt['train'].update(fix_flow=None, distill_opt={'type': 'CharbonnierLoss', 'loss_weight': 1.0})
    opt['quantization'] = {'calibrator': 'max', 'calib_batches': 2, 'ptq_val_clips': 0, 'skip_parts': ['spynet']}
    run_entry('train.py', opt, tmp_path)

    int8 = torch.load(tmp_path / 'experiments' / 'qat_tb' / 'models' / 'net_g_int8.pth', weights_only=True)
    events = EventAccumulator(str(tmp_path / 'tb_logger' / 'qat_tb'), size_guidance={HISTOGRAMS: 0}).Reload()
    assert {'qat/activation_amax', 'qat/weight_amax'} <= set(events.Tags()['histograms'])
    # ranges are frozen buffers (no learn_amax): every histogram holds exactly the ranges the INT8 file stores
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
