"""Structured pruning of a dense BasicVSR/IconVSR, then fine-tuning with distillation from the dense teacher."""
import copy

import torch
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY
from torch import distributed as dist

from vsrcompress.checkpoint import load_state_strict
from vsrcompress.models.distill_vsr_model import DistillVSRModel
from vsrcompress.models.recurrent_vsr_model import check_ranks_agree
from vsrcompress.option_checks import parse_pruning_section
from vsrcompress.pruning import VSRChannelPruner, apply_plan


@MODEL_REGISTRY.register()
class PruningVSRModel(DistillVSRModel):
    """Prunes ``path.pretrain_network_g`` with the ``pruning:`` options, then fine-tunes (``DistillVSRModel``).

    Pruning happens inside training, so Taylor scores see real batches and iterative pruning fine-tunes between
    steps: step k (1-based) runs at iteration ``1 + (k - 1) * pruning.step_interval``. Every saved checkpoint
    carries the pruned width spec and the pruner's report (history of plans, config, params and MACs before and
    after, source checkpoint); ``--auto_resume`` rebuilds the dense source, replays the history and loads the
    fine-tuned weights, so a resumed run keeps the pruned shapes and the remaining steps. Across processes rank 0
    plans each step and broadcasts it; every rank then checks that it holds the same widths and weights.

    Options: the engine's ``pruning:`` keys (see ``vsrcompress/pruning/config.py``) plus
        step_interval (int): fine-tuning iterations between two pruning steps; 0 prunes all steps at once.
    """

    def __init__(self, opt: dict):
        self.pruning_config, self.step_interval = parse_pruning_section(opt.get('pruning'))
        if opt['is_train']:
            self._train_opts = copy.deepcopy({k: opt['train'][k] for k in ('optim_g', 'scheduler')})
        super().__init__(opt)

    def init_training_settings(self):
        record = self.pretrained_extras.get('pruning') or {}
        self.pruning_source = record.get('source') or self.opt['path'].get('pretrain_network_g')
        net = self.get_bare_model(self.net_g)
        if record.get('history'):  # resumed: the pruner starts from the dense source and replays its plans
            dense = self.load_network_copy(self.pruning_source, 'pruning.source').train()
            self.pruner = VSRChannelPruner(dense, self.pruning_config, loss_fn=self._taylor_loss)
            for plan in record['history']:
                self.pruner.apply(plan)
            load_state_strict(dense, net.state_dict(), 'the resumed checkpoint')
            self.net_g = self.model_to_device(dense)
        else:
            self.pruner = VSRChannelPruner(net, self.pruning_config, loss_fn=self._taylor_loss)
        super().init_training_settings()
        self._log_complexity()

    def _taylor_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.cri_pix(output, target) if self.cri_pix else torch.nn.functional.l1_loss(output, target)

    def optimize_parameters(self, current_iter: int) -> None:
        while not self.pruner.finished and current_iter > len(self.pruner.history) * self.step_interval:
            self.prune_step(current_iter)
        super().optimize_parameters(current_iter)
        self.log_dict.update(self._complexity)

    def prune_step(self, current_iter: int) -> None:
        """Plan on rank 0, apply the same plan everywhere (student and EMA), rebuild DDP and optimizers."""
        net = self.get_bare_model(self.net_g)
        self.pruner.samples = [(self.lq, self.gt)]  # Taylor scores the current batch
        plan = self.pruner.plan_step() if self.opt['rank'] == 0 else None
        if self.opt['dist']:
            box = [plan]
            dist.broadcast_object_list(box, src=0)
            plan = box[0]
        self.pruner.apply(plan)
        if hasattr(self, 'net_g_ema'):
            apply_plan(self.net_g_ema, plan)
        self.opt['network_g']['widths'] = net.width_spec()
        if self.opt['dist']:
            check_ranks_agree(torch.stack([p.detach().double().sum() for p in net.parameters()]), 'pruned weights')
        self.net_g = self.model_to_device(net)
        self._rebuild_optimizers(current_iter)
        self._log_complexity()
        get_root_logger().info(f'Pruning step {len(self.pruner.history)}/{self.pruning_config.steps} at iter '
                               f'{current_iter}: {self._complexity}; widths {net.width_spec()}')

    def _rebuild_optimizers(self, current_iter: int) -> None:
        """Pruned layers hold new parameter tensors: fresh optimizers, schedulers advanced to the iteration."""
        self.opt['train'].update(copy.deepcopy(self._train_opts))
        self.optimizers, self.schedulers = [], []
        self.setup_optimizers()
        self.setup_schedulers()
        for scheduler in self.schedulers:
            for _ in range(current_iter - 1):
                scheduler.step()

    def _log_complexity(self) -> None:
        report = self.pruner.report()
        spec = report['widths_after'] or {}
        self._complexity = {'prune/gmacs_per_frame': report['macs_per_frame_after'] / 1e9,
                            'prune/mac_fraction': report['mac_fraction'],
                            'prune/params_m': report['params_after'] / 1e6,
                            **{f'prune/width_{k}': v for k, v in spec.items() if isinstance(v, int)}}

    def checkpoint_extras(self) -> dict:
        return {**super().checkpoint_extras(), 'pruning': {**self.pruner.report(), 'source': self.pruning_source}}
