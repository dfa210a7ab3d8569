"""basicsr's VideoRecurrentModel made to run on CPU and GPU, resume-safe, and aware of width specs."""
import os
from collections import Counter

import torch
from basicsr.models.video_recurrent_model import VideoRecurrentModel
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only
from basicsr.utils.registry import MODEL_REGISTRY
from torch import distributed as dist
from torch.nn.parallel import DataParallel, DistributedDataParallel

from vsrcompress.checkpoint import load_checkpoint, load_state_strict, network_checkpoint, save_atomic, select_params
from vsrcompress.collectives import collective_device
from vsrcompress.network_parts import FLOW_PARTS


def check_ranks_agree(values: torch.Tensor, what: str) -> None:
    """Fail when ranks hold different ``values`` (e.g. pruned weights, quantizer ranges): DDP would silently train
    diverging networks."""
    values = values.detach().double().flatten().to(collective_device())
    gathered = [torch.zeros_like(values) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, values)
    if any(g.shape != values.shape or not torch.equal(g, gathered[0]) for g in gathered):
        raise RuntimeError(f'{what} differ across ranks.')
    get_root_logger().info(f'{what.capitalize()} identical on {len(gathered)} ranks.')


OPTIMIZERS = {'Adam': torch.optim.Adam, 'AdamW': torch.optim.AdamW, 'SGD': torch.optim.SGD}


@MODEL_REGISTRY.register()
class RecurrentVSRModel(VideoRecurrentModel):
    """Trains and validates BasicVSRNet/IconVSRNet (or basicsr's own video nets).

    Differences from basicsr's VideoRecurrentModel:

    * CPU: metrics live on the model's device; DDP without ``device_ids`` on CPU (gloo); validation inputs are
      copied, not aliased.
    * ``train.fix_flow: N`` keeps SpyNet/EDVR frozen for iterations < N, decided from the iteration number each
      step (so a resumed run is right) and never unfreezing parameters that were frozen for another reason.
    * ``train.optim_g.type``: Adam, AdamW or SGD.
    * Checkpoints are written atomically and carry ``arch`` and ``widths``; a pretrained checkpoint with a
      width spec (a pruned network) rebuilds that architecture, so resume and fine-tune keep pruned shapes.
    * EMA averages parameters (basicsr) and copies buffers from the live network (quantizer ranges are buffers:
      the EMA network uses the current ranges, not an average of past ones).
    """

    def __init__(self, opt: dict):
        self._pretrained = None
        self.pretrained_extras = {}  # plain-data entries of the pretrained checkpoint besides its weights
        load_path = opt['path'].get('pretrain_network_g')
        if load_path:
            ckpt = load_checkpoint(load_path, 'path.pretrain_network_g')
            self._pretrained = (load_path, ckpt)
            self.pretrained_extras = {k: v for k, v in ckpt.items() if not k.startswith('params')}
            if ckpt.get('widths'):  # the weights have these shapes, also where network_g.widths is the dense spec
                opt['network_g']['widths'] = ckpt['widths']
        super().__init__(opt)
        self._pretrained = None  # the weights are in the network now; do not hold a second copy

    # ------------------------------------------------------------------ devices and distribution
    def model_to_device(self, net: torch.nn.Module) -> torch.nn.Module:
        net = net.to(self.device)
        if self.opt['dist']:
            find_unused = self.opt.get('find_unused_parameters', False) or bool(self.opt['train'].get('fix_flow'))
            device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
            net = DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=find_unused)
        elif self.opt['num_gpu'] > 1:
            net = DataParallel(net)
        return net

    def feed_data(self, data: dict) -> None:
        # copy=True: validation squeezes the dataset's tensors in place after feeding them; on CPU ``.to`` would
        # hand back those very tensors and the network would get a clip without its batch dimension.
        self.lq = data['lq'].to(self.device, copy=True)
        if 'gt' in data:
            self.gt = data['gt'].to(self.device, copy=True)

    def dist_validation(self, dataloader, current_iter, tb_logger, save_img):
        metrics = self.opt['val'].get('metrics')
        if metrics and not hasattr(self, 'metric_results'):  # basicsr would allocate these on 'cuda'
            frames_per_folder = Counter(dataloader.dataset.data_info['folder'])
            self.metric_results = {
                folder: torch.zeros(num, len(metrics), dtype=torch.float32, device=self.device)
                for folder, num in frames_per_folder.items()
            }
        super().dist_validation(dataloader, current_iter, tb_logger, save_img)

    # ------------------------------------------------------------------ training
    def get_optimizer(self, optim_type: str, params, lr: float, **kwargs) -> torch.optim.Optimizer:
        if optim_type not in OPTIMIZERS:
            raise ValueError(f'train.optim_g.type: {optim_type!r} is not supported; allowed: {sorted(OPTIMIZERS)}')
        return OPTIMIZERS[optim_type](params, lr, **kwargs)

    def init_training_settings(self):
        net = self.get_bare_model(self.net_g)
        # Only parameters trainable now take part in fix_flow; anything frozen on purpose stays frozen.
        self._flow_params = [p for n, p in net.named_parameters()
                             if p.requires_grad and any(part in n for part in FLOW_PARTS)]
        self._flow_frozen = None
        super().init_training_settings()

    def set_flow_frozen(self, current_iter: int) -> None:
        """Freeze SpyNet/EDVR while ``current_iter < train.fix_flow``; called every iteration."""
        fix_iter = self.fix_flow_iter or 0
        frozen = current_iter < fix_iter
        if frozen != self._flow_frozen:
            get_root_logger().info(f'{"Freeze" if frozen else "Train"} flow network and feature extractor '
                                   f'at iter {current_iter} (train.fix_flow: {fix_iter}).')
            for param in self._flow_params:
                param.requires_grad_(not frozen)
            self._flow_frozen = frozen

    def optimize_parameters(self, current_iter: int) -> None:
        self.set_flow_frozen(current_iter)
        super(VideoRecurrentModel, self).optimize_parameters(current_iter)  # skip basicsr's one-time switch

    def model_ema(self, decay: float = 0.999) -> None:
        super().model_ema(decay)
        ema_buffers = dict(self.net_g_ema.named_buffers())
        for name, buf in self.get_bare_model(self.net_g).named_buffers():
            ema_buffers[name].data.copy_(buf.data)

    # ------------------------------------------------------------------ checkpoints
    def load_network(self, net, load_path, strict=True, param_key='params'):
        if self._pretrained and self._pretrained[0] == load_path:
            ckpt = self._pretrained[1]
        else:
            ckpt = load_checkpoint(load_path, 'path.pretrain_network_g')
        state = select_params(ckpt, load_path, param_key, 'path.pretrain_network_g')
        net = self.get_bare_model(net)
        if strict:
            load_state_strict(net, state, load_path, 'path.pretrain_network_g')
        else:
            own = net.state_dict()
            kept = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
            skipped = sorted(set(state) - set(kept)) + sorted(set(own) - set(state))
            get_root_logger().warning(f'Non-strict load of {load_path}: {len(kept)} tensors loaded, '
                                      f'{len(skipped)} skipped (missing or shape-mismatched): {skipped[:10]}')
            net.load_state_dict(kept, strict=False)
        get_root_logger().info(f'Loaded {type(net).__name__} from {load_path} [{param_key}].')

    def checkpoint_extras(self) -> dict:
        """Plain-data entries saved next to the weights; subclasses add their stage's provenance."""
        return {}

    @master_only
    def save_network(self, net, net_label, current_iter, param_key='params'):
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        ckpt = network_checkpoint(self.get_bare_model(nets[0]), self.opt['network_g'], **self.checkpoint_extras())
        ckpt.pop('params')
        for net_, key in zip(nets, keys):
            ckpt[key] = {k: v.detach().cpu() for k, v in self.get_bare_model(net_).state_dict().items()}
        name = 'latest' if current_iter == -1 else current_iter
        save_atomic(ckpt, os.path.join(self.opt['path']['models'], f'{net_label}_{name}.pth'))

    @master_only
    def save_training_state(self, epoch, current_iter):
        if current_iter == -1:
            return
        state = {'epoch': epoch, 'iter': current_iter,
                 'optimizers': [o.state_dict() for o in self.optimizers],
                 'schedulers': [s.state_dict() for s in self.schedulers]}
        save_atomic(state, os.path.join(self.opt['path']['training_states'], f'{current_iter}.state'))
