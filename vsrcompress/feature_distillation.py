"""Hidden-state distillation: match a student's intermediate outputs (every time step) to a frozen teacher's.

A pruned student has narrower hidden states than its teacher, so its features cannot be compared channel by
channel. ``attention`` mode compares spatial attention maps instead (the channel mean of the squared features,
L2-normalised per sample; Zagoruyko & Komodakis, 2017), which exist at any width and carry where the network
puts its energy: edges and moving texture. ``features`` mode compares the features themselves (mean squared
error) and needs equal widths: a quantized student against its float teacher.
"""
import contextlib
from collections.abc import Iterator, Mapping

import torch
from torch import nn
from torch.nn import functional as F

from vsrcompress.network_parts import HIDDEN_STATE_LAYERS

FEATURE_DISTILL_MODES = ('attention', 'features')
FEATURE_DISTILL_KEYS = ('layers', 'mode', 'loss_weight')


def parse_feature_distill(section: Mapping, option_key: str = 'train.feature_distill_opt') -> dict:
    """Validated ``{layers, mode, loss_weight}`` (defaults: mode attention, loss_weight 1)."""
    if not isinstance(section, Mapping):
        raise ValueError(f'{option_key}: expected a mapping, got {section!r}')
    unknown = sorted(set(section) - set(FEATURE_DISTILL_KEYS))
    if unknown:
        raise ValueError(f'{option_key}: unknown keys {unknown}; allowed: {list(FEATURE_DISTILL_KEYS)}')
    layers = section.get('layers')
    if not isinstance(layers, list) or not layers or not all(isinstance(n, str) and n for n in layers):
        raise ValueError(f'{option_key}.layers: expected a non-empty list of module names (e.g. '
                         f'{list(HIDDEN_STATE_LAYERS)}, the hidden states), got {layers!r}')
    mode = section.get('mode', 'attention')
    if mode not in FEATURE_DISTILL_MODES:
        raise ValueError(f'{option_key}.mode: {mode!r} is not supported; allowed: {list(FEATURE_DISTILL_MODES)}')
    weight = section.get('loss_weight', 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
        raise ValueError(f'{option_key}.loss_weight: expected a number > 0, got {weight!r}')
    return {'layers': list(layers), 'mode': mode, 'loss_weight': float(weight)}


def check_layers(net: nn.Module, layers: list[str], what: str, option_key: str = 'train.feature_distill_opt') -> None:
    """Fail before training when a layer name is not a module of ``net``."""
    names = dict(net.named_modules())
    missing = [n for n in layers if n not in names]
    if missing:
        top = [n for n in names if n and '.' not in n]
        raise ValueError(f'{option_key}.layers: the {what} has no module {missing}; its top-level modules: {top}')


def refuse_data_parallel(net: nn.Module, option_key: str = 'train.feature_distill_opt') -> None:
    """Fail before training when the student runs under ``nn.DataParallel``.

    DataParallel's replicas share the original modules' forward hooks, so every GPU's features would land in one
    list (wrong length, mixed devices). basicsr wraps the net in DataParallel when ``num_gpu > 1`` without a
    launcher; DistributedDataParallel (one process per GPU, started by torchrun) records each rank's own features.
    """
    if isinstance(net, nn.DataParallel):
        raise ValueError(f'{option_key} does not work with torch.nn.DataParallel (num_gpu > 1 without a launcher): '
                         f'its replicas share the recording hooks. Start one process per GPU instead: torchrun '
                         f'--nproc_per_node=<GPUs> ... --launcher pytorch, or set num_gpu: 1.')


@contextlib.contextmanager
def recorded_outputs(net: nn.Module, layers: list[str]) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Collect each named module's output at every call (one per time step of the recurrence) while inside."""
    modules = dict(net.named_modules())
    outputs: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    handles = [modules[name].register_forward_hook(lambda _m, _i, out, name=name: outputs[name].append(out))
               for name in layers]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def spatial_attention(feat: torch.Tensor) -> torch.Tensor:
    """(b, c, h, w) -> (b, h*w): channel mean of the squared features, unit L2 norm per sample."""
    return F.normalize(feat.pow(2).mean(dim=1).flatten(1), dim=1)


def feature_distill_loss(student: Mapping[str, list[torch.Tensor]], teacher: Mapping[str, list[torch.Tensor]],
                         mode: str) -> torch.Tensor:
    """Mean over layers and time steps of the attention-map distance or the feature MSE."""
    terms = []
    for name, student_feats in student.items():
        teacher_feats = teacher[name]
        if len(student_feats) != len(teacher_feats) or not student_feats:
            raise RuntimeError(f'feature distillation: {name} ran {len(student_feats)} times in the student and '
                               f'{len(teacher_feats)} in the teacher; both must run it at every time step')
        for s, t in zip(student_feats, teacher_feats):
            if mode == 'attention':
                terms.append((spatial_attention(s) - spatial_attention(t)).norm(dim=1).mean())
            elif s.shape != t.shape:
                raise ValueError(f'train.feature_distill_opt.mode: features needs equal shapes, but {name} gives '
                                 f'{tuple(s.shape)} in the student and {tuple(t.shape)} in the teacher (a pruned '
                                 f'student): use mode attention')
            else:
                terms.append(F.mse_loss(s, t))
    return torch.stack(terms).mean()
