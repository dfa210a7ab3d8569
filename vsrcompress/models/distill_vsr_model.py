"""Fine-tuning with knowledge distillation from a frozen teacher: the base of the pruning and QAT models."""
import contextlib
from collections import OrderedDict

import torch
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from vsrcompress.checkpoint import load_checkpoint, load_state_strict, select_params
from vsrcompress.feature_distillation import (check_layers, feature_distill_loss, parse_feature_distill,
                                              recorded_outputs, refuse_data_parallel)
from vsrcompress.models.recurrent_vsr_model import RecurrentVSRModel


@MODEL_REGISTRY.register()
class DistillVSRModel(RecurrentVSRModel):
    """RecurrentVSRModel plus output and hidden-state distillation losses against a frozen teacher.

    Options:
        train.distill_opt: a basicsr loss (e.g. ``{type: CharbonnierLoss, loss_weight: 1.0}``) between the
            student's and the teacher's outputs.
        train.feature_distill_opt: ``{layers, mode, loss_weight}`` of ``vsrcompress.feature_distillation``: the
            outputs of the named modules (e.g. the trunks: the hidden states) matched at every time step.
            Without either option no teacher is built.
        path.pretrain_network_teacher: the teacher's weights; default: ``path.pretrain_network_g`` of the first
            run (a resumed run reads it back from its checkpoint, where it is stored as ``teacher``).
        network_teacher: the teacher's arch options; default: ``network_g`` without ``widths`` (dense).

    ``train.pixel_opt`` (loss against ground truth) stays required, as in basicsr; set its ``loss_weight: 0``
    to distil only.
    """

    def init_training_settings(self):
        self.net_teacher = None
        self.teacher_path = None
        self.cri_distill = None
        feature_opt = self.opt['train'].get('feature_distill_opt')
        self.feature_distill = parse_feature_distill(feature_opt) if feature_opt else None
        if self.opt['train'].get('distill_opt') or self.feature_distill:
            self.teacher_path = (self.opt['path'].get('pretrain_network_teacher')
                                 or self.pretrained_extras.get('teacher') or self.opt['path'].get('pretrain_network_g'))
            if not self.teacher_path:
                raise ValueError('train.distill_opt/feature_distill_opt need a teacher: set '
                                 'path.pretrain_network_teacher (or path.pretrain_network_g, the dense weights the '
                                 'student starts from).')
            self.net_teacher = self.build_teacher(self.teacher_path)
            if self.opt['train'].get('distill_opt'):
                self.cri_distill = build_loss(self.opt['train']['distill_opt']).to(self.device)
            if self.feature_distill:
                refuse_data_parallel(self.net_g)
                check_layers(self.get_bare_model(self.net_g), self.feature_distill['layers'], 'student')
                check_layers(self.net_teacher, self.feature_distill['layers'], 'teacher')
        super().init_training_settings()

    def build_teacher(self, path: str) -> torch.nn.Module:
        """The frozen teacher from ``path`` (EMA weights when the checkpoint has them)."""
        teacher = self.load_network_copy(path, 'path.pretrain_network_teacher', self.opt.get('network_teacher'))
        return teacher.eval().requires_grad_(False)

    def load_network_copy(self, path: str, option_key: str, net_opt: dict | None = None) -> torch.nn.Module:
        """A new network from a checkpoint, strictly loaded: arch from ``net_opt`` (default ``network_g``), widths
        from the checkpoint (dense when it has none), ``params_ema`` when present."""
        ckpt = load_checkpoint(path, option_key)
        net_opt = dict(net_opt or self.opt['network_g'])
        net_opt.pop('widths', None)
        if ckpt.get('widths'):
            net_opt['widths'] = ckpt['widths']
        net = build_network(net_opt)
        param_key = 'params_ema' if 'params_ema' in ckpt else 'params'
        load_state_strict(net, select_params(ckpt, path, param_key, option_key), path, option_key)
        get_root_logger().info(f'{option_key}: {type(net).__name__} from {path} [{param_key}].')
        return net.to(self.device)

    def _recorded(self, net: torch.nn.Module) -> contextlib.AbstractContextManager:
        """Records the hidden states named by feature_distill_opt during one forward (nothing without it)."""
        if not self.feature_distill:
            return contextlib.nullcontext({})
        return recorded_outputs(net, self.feature_distill['layers'])

    def checkpoint_extras(self) -> dict:
        return {'teacher': self.teacher_path} if self.teacher_path else {}

    def optimize_parameters(self, current_iter: int) -> None:
        self.set_flow_frozen(current_iter)
        self.optimizer_g.zero_grad()
        with self._recorded(self.get_bare_model(self.net_g)) as student_feats:
            self.output = self.net_g(self.lq)
        losses = OrderedDict()
        if self.cri_pix:
            losses['l_pix'] = self.cri_pix(self.output, self.gt)
        if self.cri_perceptual:
            l_percep, l_style = self.cri_perceptual(self.output.flatten(0, 1), self.gt.flatten(0, 1))
            losses.update({k: v for k, v in (('l_percep', l_percep), ('l_style', l_style)) if v is not None})
        if self.net_teacher is not None:
            with torch.no_grad(), self._recorded(self.net_teacher) as teacher_feats:
                target = self.net_teacher(self.lq)
            if self.cri_distill:
                losses['l_distill'] = self.cri_distill(self.output, target)
            if self.feature_distill:
                losses['l_feat_distill'] = self.feature_distill['loss_weight'] * feature_distill_loss(
                    student_feats, teacher_feats, self.feature_distill['mode'])
        sum(losses.values()).backward()
        self.optimizer_g.step()
        self.log_dict = self.reduce_loss_dict(losses)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)
