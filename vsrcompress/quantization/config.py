"""The ``quantization:`` option section as one validated, plain-data record.

Every engine function takes either this record or the raw dict from YAML, so a wrong key or value fails
with the option key and the allowed values before any network is touched.
"""
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields

from vsrcompress.network_parts import QUANTIZATION_PARTS

CALIBRATORS = ('max', 'percentile', 'mse', 'entropy')
MIN_BITS, MAX_BITS = 2, 8
MIN_HISTOGRAM_BINS = 256  # mse/entropy search amax from bin 128 on (pytorch-quantization's start_bin)


@dataclass(frozen=True)
class QuantConfig:
    """How a network is quantized; the keys of the YAML ``quantization:`` section.

    Args:
        num_bits: Bits of weights and activations, 2..8. Default: 8.
        calibrator: Activation range method: max, percentile, mse or entropy. Weights always use the per-channel
            max of the weights themselves. Default: max.
        percentile: Percentile of |activation| kept by the percentile calibrator, in (0, 100]. Default: 99.99.
        num_bins: Histogram bins for percentile/mse/entropy, >= 256. Default: 2048.
        calib_batches: How many batches of whole clips calibration reads at most. Default: 8.
        skip: Layer names or regexes (full match on module names) kept in float. Default: none.
        skip_parts: Named parts kept in float, from ``QUANTIZATION_PARTS``. Default: none.
        residual_quant: Quantize the identity input of residual adds (modules named ``skip_quant``), so that
            TensorRT can fuse the INT8 conv with the add. Default: True.
        learn_amax: Let activation ranges be learned during QAT (initialised from calibration). Default: False.
    """

    num_bits: int = 8
    calibrator: str = 'max'
    percentile: float = 99.99
    num_bins: int = 2048
    calib_batches: int = 8
    skip: tuple[str, ...] = ()
    skip_parts: tuple[str, ...] = ()
    residual_quant: bool = True
    learn_amax: bool = False

    def __post_init__(self):
        _check_int('num_bits', self.num_bits, MIN_BITS, MAX_BITS)
        if self.calibrator not in CALIBRATORS:
            raise ValueError(f'quantization.calibrator: unknown method {self.calibrator!r}; '
                             f'allowed: {list(CALIBRATORS)}')
        if isinstance(self.percentile, bool) or not isinstance(self.percentile, (int, float)) \
                or not 0 < self.percentile <= 100:
            raise ValueError(f'quantization.percentile: expected a number in (0, 100], got {self.percentile!r}')
        _check_int('num_bins', self.num_bins, MIN_HISTOGRAM_BINS, None)
        _check_int('calib_batches', self.calib_batches, 1, None)
        object.__setattr__(self, 'skip', _check_strings('skip', self.skip))
        object.__setattr__(self, 'skip_parts', _check_strings('skip_parts', self.skip_parts))
        for pattern in self.skip:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f'quantization.skip: {pattern!r} is not a valid regex: {err}') from err
        unknown = [p for p in self.skip_parts if p not in QUANTIZATION_PARTS]
        if unknown:
            raise ValueError(f'quantization.skip_parts: unknown parts {unknown}; allowed: {sorted(QUANTIZATION_PARTS)}')
        for key in ('residual_quant', 'learn_amax'):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f'quantization.{key}: expected true or false, got {getattr(self, key)!r}')

    @classmethod
    def from_dict(cls, section: Mapping | None, ignore: Iterable[str] = ()) -> 'QuantConfig':
        """Validate a ``quantization:`` section; ``ignore`` names keys read by someone else (e.g. the model)."""
        section = dict(section or {})
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - allowed - set(ignore))
        if unknown:
            raise ValueError(f'quantization: unknown keys {unknown}; allowed: {sorted(allowed)}')
        return cls(**{k: v for k, v in section.items() if k in allowed})

    @classmethod
    def coerce(cls, config: 'QuantConfig | Mapping | None') -> 'QuantConfig':
        """Accept a ready record, a raw section, or None (all defaults)."""
        return config if isinstance(config, QuantConfig) else cls.from_dict(config)

    def as_dict(self) -> dict:
        """Plain data (lists, not tuples) for checkpoints and YAML."""
        out = asdict(self)
        out['skip'] = list(self.skip)
        out['skip_parts'] = list(self.skip_parts)
        return out


def _check_int(key: str, value: object, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        allowed = f'{low}..{high}' if high is not None else f'>= {low}'
        raise ValueError(f'quantization.{key}: expected an integer {allowed}, got {value!r}')


def _check_strings(key: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable) or not all(isinstance(v, str) for v in value):
        raise ValueError(f'quantization.{key}: expected a list of strings, got {value!r}')
    return tuple(value)
