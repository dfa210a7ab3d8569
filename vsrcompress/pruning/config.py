"""The pruning options (the ``pruning:`` YAML section), checked completely before any work starts.

Keys (all optional except one target, ``ratio`` or ``mac_budget``)::

    criterion: l1            # l1 | l2 (magnitude) | taylor (needs sample clips) | lamp
    ranking: uniform         # uniform: every group of a part loses the same fraction
                             # global: one importance threshold across all groups of a part
    ratio: 0.5               # fraction of channels removed; a number for every part in `parts`,
                             # or per part: {trunk: 0.5, blocks: 0.5, tail: 0.25, spynet: 0.25}
    mac_budget: 0.25         # instead of ratio: MACs per frame <= this fraction of the network's MACs;
                             # one ratio for all `parts` is searched to meet it
    parts: [trunk, blocks, tail, spynet, edvr]   # parts pruned with a numeric ratio or a MAC budget
                             # (edvr: IconVSR's EDVR, all its groups to one width, ranked uniformly)
    reference_size: [180, 320]             # LR height, width at which MACs are counted
    round_to: 8              # kept widths are multiples of this (units: upsample keeps whole shuffle groups)
    min_width: 8             # no group keeps fewer units (rounded up to round_to)
    ignore: []               # regexes (full match) on group names or producing module names: left dense
    steps: 1                 # iterative pruning: the target is reached in this many steps
"""
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from vsrcompress.network_parts import PRUNING_PARTS
from vsrcompress.pruning.importance import CRITERIA

RANKINGS = ('uniform', 'global')
ALLOWED_KEYS = ('criterion', 'ranking', 'ratio', 'mac_budget', 'parts', 'reference_size', 'round_to', 'min_width',
                'ignore', 'steps')


@dataclass(frozen=True)
class PruningConfig:
    """Validated pruning options; ``ratios`` maps each pruned part to its final ratio (empty with a budget)."""
    criterion: str = 'l1'
    ranking: str = 'uniform'
    ratios: dict[str, float] = field(default_factory=dict)
    mac_budget: float | None = None
    parts: tuple[str, ...] = PRUNING_PARTS
    reference_size: tuple[int, int] = (180, 320)
    round_to: int = 8
    min_width: int = 8
    ignore: tuple[str, ...] = ()
    steps: int = 1

    def to_dict(self) -> dict:
        """Plain-data options (for checkpoints and logs) that ``parse_pruning_config`` reads back to this config."""
        data = {'criterion': self.criterion, 'ranking': self.ranking, 'reference_size': list(self.reference_size),
                'round_to': self.round_to, 'min_width': self.min_width, 'ignore': list(self.ignore),
                'steps': self.steps}
        if self.ratios:
            data['ratio'] = dict(self.ratios)
        else:
            data.update(mac_budget=self.mac_budget, parts=list(self.parts))
        return data


def _int(options: Mapping, key: str, default: int, minimum: int) -> int:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f'pruning.{key}: expected an integer >= {minimum}, got {value!r}')
    return value


def _ratio(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f'pruning.{key}: a pruning ratio is the fraction of channels removed and must be in '
                         f'[0, 1); got {value!r}')
    return float(value)


def _parts(value: object, key: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f'pruning.{key}: expected a non-empty list of parts from {list(PRUNING_PARTS)}, got {value!r}')
    unknown = [p for p in value if p not in PRUNING_PARTS]
    if unknown:
        raise ValueError(f'pruning.{key}: unknown part(s) {unknown}; allowed: {list(PRUNING_PARTS)}')
    return tuple(dict.fromkeys(value))


def parse_pruning_config(options: Mapping) -> PruningConfig:
    """Check every key of a ``pruning:`` section and return the validated config; errors name the key."""
    if not isinstance(options, Mapping):
        raise ValueError(f'pruning: expected a mapping of options, got {type(options).__name__}')
    unknown = sorted(set(options) - set(ALLOWED_KEYS))
    if unknown:
        raise ValueError(f'pruning: unknown key(s) {unknown}; allowed: {list(ALLOWED_KEYS)}')
    criterion = options.get('criterion', 'l1')
    if criterion not in CRITERIA:
        raise ValueError(f'pruning.criterion: {criterion!r} is unknown; allowed: {list(CRITERIA)}')
    ranking = options.get('ranking', 'uniform')
    if ranking not in RANKINGS:
        raise ValueError(f'pruning.ranking: {ranking!r} is unknown; allowed: {list(RANKINGS)}')

    has_ratio, has_budget = options.get('ratio') is not None, options.get('mac_budget') is not None
    if has_ratio == has_budget:
        raise ValueError('pruning: give exactly one target, `ratio` (per part or one number) or `mac_budget`.')
    parts = _parts(options['parts'], 'parts') if 'parts' in options else PRUNING_PARTS
    ratios, budget = {}, None
    if has_ratio and isinstance(options['ratio'], Mapping):
        if 'parts' in options:
            raise ValueError('pruning.parts: not used with a per-part `ratio` mapping (its keys are the parts).')
        parts = _parts(list(options['ratio']), 'ratio')
        ratios = {p: _ratio(options['ratio'][p], f'ratio.{p}') for p in parts}
    elif has_ratio:
        ratios = {p: _ratio(options['ratio'], 'ratio') for p in parts}
    else:
        budget = options['mac_budget']
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget <= 1:
            raise ValueError(f'pruning.mac_budget: the fraction of dense MACs to keep must be in (0, 1]; '
                             f'got {budget!r}')
        budget = float(budget)

    size = options.get('reference_size', (180, 320))
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 32 for v in size)):
        raise ValueError(f'pruning.reference_size: expected [height, width] of an LR frame, both > 32 '
                         f'(SpyNet needs more), got {size!r}')
    ignore = options.get('ignore') or []
    if not isinstance(ignore, (list, tuple)) or not all(isinstance(p, str) for p in ignore):
        raise ValueError(f'pruning.ignore: expected a list of regular expressions, got {ignore!r}')
    for pattern in ignore:
        try:
            re.compile(pattern)
        except re.error as err:
            raise ValueError(f'pruning.ignore: {pattern!r} is not a valid regular expression: {err}') from err
    return PruningConfig(criterion=criterion, ranking=ranking, ratios=ratios, mac_budget=budget, parts=parts,
                         reference_size=(size[0], size[1]), round_to=_int(options, 'round_to', 8, 1),
                         min_width=_int(options, 'min_width', 8, 1), ignore=tuple(ignore),
                         steps=_int(options, 'steps', 1, 1))
