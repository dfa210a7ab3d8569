"""INT8 quantization-aware training of a dense or pruned BasicVSR/IconVSR, with distillation from its FP32 self."""
import os

import torch
from basicsr.data import build_dataset
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only
from basicsr.utils.registry import MODEL_REGISTRY

from vsrcompress.checkpoint import arch_options, load_state_strict, select_params
from vsrcompress.models.distill_vsr_model import DistillVSRModel
from vsrcompress.models.recurrent_vsr_model import check_ranks_agree
from vsrcompress.option_checks import parse_quantization_section
from vsrcompress.quantization import (INT8_FORMAT, OUTPUT_RANGE_KEY, activation_quantizers, calibrate,
                                      calibrate_output_ranges, check_calibrated,
                                      clip_psnr, export_int8_checkpoint, load_int8_checkpoint, quantize_network,
                                      quantizer_ranges, quiet_quantizer_logs, set_quantization_enabled)
from vsrcompress.quantization.quantizers import is_quantized


@MODEL_REGISTRY.register()
class QATVSRModel(DistillVSRModel):
    """Quantizes ``path.pretrain_network_g`` (FP32, dense or pruned), calibrates it, then trains it with fake quant.

    Starting from an FP32 checkpoint: quantizers are inserted (``quantization:`` options), activation ranges are
    calibrated on ``calib_batches`` whole training windows, and the PTQ PSNR is measured on the validation clips
    next to the FP32 PSNR before QAT starts. Checkpoints saved during training are fake-quant networks (float
    weights + ``_amax`` buffers, so resume and EMA keep the ranges exactly); at the end ``net_g_int8.pth`` holds
    the deployable INT8 checkpoint. ``test.py`` evaluates either kind (the INT8 one through fake quantization).

    Options: the engine's ``quantization:`` keys (see ``vsrcompress/quantization/config.py``) plus
        ptq_val_clips (int): validation clips on which PTQ and FP32 PSNR are measured before QAT; 0 skips. Default 2.
    """

    def __init__(self, opt: dict):
        self.quant_config, self.ptq_val_clips = parse_quantization_section(opt.get('quantization'))
        if not opt['path'].get('pretrain_network_g'):
            raise ValueError('path.pretrain_network_g: QATVSRModel quantizes a trained FP32 network; '
                             'give its checkpoint.')
        self.quant_report = None
        self.needs_calibration = False
        self.ptq_metrics = {}
        super().__init__(opt)

    # ------------------------------------------------------------------ building and loading
    def _quantize(self, net: torch.nn.Module) -> None:
        """Insert quantizers as the pretrained checkpoint had them (INT8 file) or as the options say."""
        if self._pretrained and self._pretrained[1].get('format') == INT8_FORMAT:
            self.quant_report = load_int8_checkpoint(net, self._pretrained[1], 'path.pretrain_network_g')
        else:
            self.quant_report = quantize_network(net, self.quant_config)

    def model_to_device(self, net: torch.nn.Module) -> torch.nn.Module:
        if not is_quantized(net):  # quantizers replace modules: insert them before any DDP wrapping
            self._quantize(net)
        return super().model_to_device(net)

    def load_network(self, net, load_path, strict=True, param_key='params'):
        bare = self.get_bare_model(net)
        ckpt = self._pretrained[1] if self._pretrained and self._pretrained[0] == load_path else None
        if ckpt is not None and ckpt.get('format') == INT8_FORMAT:
            if is_quantized(bare):
                return  # net_g: loaded while quantizers were inserted
            load_int8_checkpoint(bare, ckpt, 'path.pretrain_network_g')
            return
        if not is_quantized(bare):  # the EMA copy, built as a float network by basicsr
            quantize_network(bare, self.quant_config)
        if ckpt is None:
            return super().load_network(net, load_path, strict, param_key)
        state = select_params(ckpt, load_path, param_key, 'path.pretrain_network_g')
        own = bare.state_dict()
        quant_keys = {k for k in own if '_quantizer.' in k or 'skip_quant.' in k}
        if not quant_keys & set(state):  # an FP32 checkpoint: keep the placeholder ranges, calibrate later
            state = {**{k: own[k] for k in quant_keys}, **state}
            self.needs_calibration = True
        with quiet_quantizer_logs():
            load_state_strict(bare, state, load_path, 'path.pretrain_network_g')

    # ------------------------------------------------------------------ calibration and PTQ report
    def init_training_settings(self):
        super().init_training_settings()  # teacher, EMA (quantized in load_network), losses, optimizers
        if self.needs_calibration:
            self.calibrate_from_training_data()
        check_calibrated(self.get_bare_model(self.net_g))
        if hasattr(self, 'net_g_ema'):
            self.net_g_ema.load_state_dict(self.get_bare_model(self.net_g).state_dict())

    def calibrate_from_training_data(self) -> None:
        """Calibrate on ``calib_batches`` training windows (each rank its own; ranges max-reduced across ranks)."""
        logger = get_root_logger()
        net = self.get_bare_model(self.net_g)
        amax = calibrate(net, self.calibration_windows(), self.quant_config)
        count = min(self.quant_config.calib_batches, len(self._train_set))
        logger.info(f'Calibrated {len(amax)} activation ranges ({self.quant_config.calibrator}) on {count} training '
                    f'windows of {self.opt["datasets"]["train"].get("num_frame")} frames.')
        if self.opt['dist']:
            amax = torch.stack([q.amax.detach().reshape(()) for q in activation_quantizers(net).values()])
            check_ranks_agree(amax, 'activation ranges')
        self.write_calibrated_ranges()
        if self.ptq_val_clips and 'val' in self.opt['datasets']:
            self.ptq_metrics = self.measure_ptq(net, build_dataset(self.opt['datasets']['val']))
            logger.info(f'PTQ before QAT: {self.ptq_metrics}')

    def calibration_windows(self):
        """Up to ``calib_batches`` random training windows, each a batch of one whole window."""
        if not hasattr(self, '_train_set'):
            self._train_set = build_dataset(self.opt['datasets']['train'])
        count = min(self.quant_config.calib_batches, len(self._train_set))
        order = torch.randperm(len(self._train_set))[:count]
        return (self._train_set[i]['lq'].unsqueeze(0).to(self.device) for i in order)

    @torch.no_grad()
    def measure_ptq(self, net: torch.nn.Module, val_set) -> dict:
        """PSNR of the calibrated fake-quant network and of the same network in float, on a few val clips."""
        was_training = net.training
        net.eval()
        scores = {'qat/ptq_psnr': [], 'qat/fp32_psnr': []}
        for i in range(min(self.ptq_val_clips, len(val_set))):
            item = val_set[i]
            lq, gt = item['lq'].unsqueeze(0).to(self.device), item['gt'].unsqueeze(0).to(self.device)
            scores['qat/ptq_psnr'].append(clip_psnr(net(lq), gt))
            set_quantization_enabled(net, False)
            scores['qat/fp32_psnr'].append(clip_psnr(net(lq), gt))
            set_quantization_enabled(net, True)
        net.train(was_training)
        return {k: sum(v) / len(v) for k, v in scores.items()}

    def optimize_parameters(self, current_iter: int) -> None:
        super().optimize_parameters(current_iter)
        self.log_dict.update(self.ptq_metrics)

    # ------------------------------------------------------------------ TensorBoard: range histograms
    @master_only
    def write_calibrated_ranges(self) -> None:
        """Range histograms at step 0 into the run's ``tb_logger/<name>`` folder, when basicsr writes one there.

        basicsr's SummaryWriter is not reachable from the model; a second writer in the same folder adds its own
        event file, which TensorBoard shows as the same run.
        """
        if not (self.opt.get('logger') or {}).get('use_tb_logger') or 'debug' in self.opt['name'] \
                or 'root_path' not in self.opt:  # the conditions of basicsr's init_tb_loggers
            return
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(log_dir=os.path.join(self.opt['root_path'], 'tb_logger', self.opt['name']))
        try:
            self.log_range_histograms(writer, 0)
        finally:
            writer.close()

    def validation(self, dataloader, current_iter, tb_logger, save_img):
        super().validation(dataloader, current_iter, tb_logger, save_img)
        if tb_logger is not None:  # None without TensorBoard and on ranks other than 0
            self.log_range_histograms(tb_logger, current_iter)

    def log_range_histograms(self, writer, step: int) -> None:
        """``qat/activation_amax`` (one value per activation quantizer) and ``qat/weight_amax`` (one value per output
        channel of every quantized conv): outlier ranges, which cost INT8 resolution, stand out."""
        for kind, ranges in quantizer_ranges(self.get_bare_model(self.net_g)).items():
            if ranges:
                writer.add_histogram(f'qat/{kind}_amax', torch.cat([r.reshape(-1) for r in ranges.values()]), step)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_extras(self) -> dict:
        source = self.pretrained_extras.get('quantization', {}).get('source') or self.opt['path']['pretrain_network_g']
        return {**super().checkpoint_extras(),
                'quantization': {'config': self.quant_config.as_dict(), 'report': self.quant_report.as_dict(),
                                 'source': source, **self.ptq_metrics}}

    def save(self, epoch: int, current_iter: int) -> None:
        super().save(epoch, current_iter)
        if current_iter == -1:
            self.save_int8()

    @master_only
    def save_int8(self) -> None:
        """The deployable INT8 checkpoint of the final network (EMA when used) next to the fake-quant ones."""
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.get_bare_model(self.net_g)
        path = os.path.join(self.opt['path']['models'], 'net_g_int8.pth')
        extras = self.checkpoint_extras()
        source = extras.pop('quantization')['source']
        # conv output ranges: the ONNX Runtime CPU INT8 placement needs them (scripts/export.py --precision int8-ort)
        extras[OUTPUT_RANGE_KEY] = calibrate_output_ranges(net, self.calibration_windows(), self.quant_config)
        export_int8_checkpoint(net, self.quant_config, self.quant_report, path, source=source,
                               extra={'arch': arch_options(self.opt['network_g']), **extras})
        get_root_logger().info(f'INT8 checkpoint: {path}')
