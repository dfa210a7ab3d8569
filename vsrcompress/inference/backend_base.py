"""The interface every streaming backend implements, and what the exported-graph backends share.

Below ``backends`` (PyTorch, ONNX Runtime, TensorRT, ``make_backend``) and ``openvino_backend``, so neither imports
the other's module to get it. See ``backends`` for the two modes (stateful ``stream``, windowed ``infer``).
"""
import abc
import copy
import math

import numpy as np
import torch

from vsrcompress.export.onnx_export import MIN_SIZE, OnnxGraphSpec
from vsrcompress.export.stateful_graph import StreamContract
from vsrcompress.inference.stream_plan import StreamCall


def to_uint8(sr: np.ndarray) -> np.ndarray:
    """(1, T, 3, H, W) float in [0, 1] -> (T, H, W, 3) uint8."""
    return (np.clip(sr[0], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)


class Backend(abc.ABC):
    """What the pipeline needs to know about a model: scale, modes, window length, accepted sizes; ``stream`` and
    ``infer``.

    ``contract`` is a stateful graph's (its interval and lookahead are fixed); None for PyTorch, which streams with
    any, and for windowed graphs, which do not stream statefully (``stateful`` False).
    """
    name = 'backend'
    stateful = True  # runs stateful calls (``stream``)
    windowed = True  # runs windows (``infer``)

    def __init__(self, scale: int, window_frames: int | None, min_frames: int, fixed_size: tuple[int, int] | None,
                 max_size: tuple[int, int] | None = None, size_multiple: int = 1,
                 contract: StreamContract | None = None):
        self.scale = scale
        self.window_frames = window_frames  # None: any window length
        self.min_frames = min_frames
        self.fixed_size = fixed_size  # (H, W) a fixed-size graph takes; None: any size >= MIN_SIZE
        self.max_size = max_size
        self.size_multiple = size_multiple
        self.contract = contract

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """The (H, W) frames of ``height`` x ``width`` are padded to, or a ValueError if they do not fit."""
        if self.fixed_size is not None:
            fixed_h, fixed_w = self.fixed_size
            if height > fixed_h or width > fixed_w:
                raise ValueError(f'input: frames of {width}x{height} do not fit the {self.name} model, exported for '
                                 f'{fixed_w}x{fixed_h}; export with --dynamic or a size at least as large.')
            return fixed_h, fixed_w
        m = self.size_multiple
        size = tuple(max(MIN_SIZE, math.ceil(v / m) * m) for v in (height, width))
        if self.max_size is not None and (size[0] > self.max_size[0] or size[1] > self.max_size[1]):
            raise ValueError(f'input: frames of {width}x{height} exceed the {self.name} engine profile maximum '
                             f'{self.max_size[1]}x{self.max_size[0]}.')
        return size

    @abc.abstractmethod
    def infer(self, clip: np.ndarray) -> np.ndarray:
        """SR of one window: RGB uint8 (T, H, W, 3) -> RGB uint8 (T, H * scale, W * scale, 3)."""

    @abc.abstractmethod
    def stream(self, clip: np.ndarray, call: StreamCall) -> np.ndarray:
        """SR of one stateful call's kept frames: RGB uint8 (len(call.indices), H, W, 3) -> (call.keep, H * scale,
        W * scale, 3), continuing the stream's state (``reset_stream`` starts a new stream)."""

    @abc.abstractmethod
    def reset_stream(self) -> None:
        """Forget the carried state: the next ``stream`` call starts a stream (from zeros)."""

    @abc.abstractmethod
    def state_bytes(self) -> int:
        """Memory the carried state takes now (0 before the first call)."""

    def for_another_stream(self) -> 'Backend':
        """A backend for one more concurrent input: this one's model, a state of its own."""
        other = copy.copy(self)
        other.reset_stream()
        return other

    def uses_torch_cuda(self) -> bool:
        """Whether this backend allocates through PyTorch on CUDA (torch on cuda, TensorRT's I/O buffers): only then
        is torch's CUDA state touched, so CPU and ONNX Runtime runs open no torch CUDA context."""
        return False

    def gpu_peak_mib(self) -> float | None:
        """Peak of PyTorch's CUDA allocator (``torch.cuda.max_memory_allocated``: I/O buffers, and the model for the
        torch backend), not the device's whole use (TensorRT's engine memory, ONNX Runtime's arena are outside it);
        None where the backend does not allocate through PyTorch on CUDA."""
        return torch.cuda.max_memory_allocated() / 2 ** 20 if self.uses_torch_cuda() else None

    def describe(self) -> dict:
        """Backend, device and precision, for the run report."""
        return {'backend': self.name}


def graph_backend_init(backend: Backend, spec: OnnxGraphSpec, max_size: tuple[int, int] | None = None) -> None:
    """``Backend.__init__`` for an exported graph: stateful graphs stream with their contract, windowed ones take
    windows of exactly ``spec.frames``."""
    contract = spec.contract
    fixed = None if spec.dynamic else (spec.height, spec.width)
    window = None if contract else spec.frames
    Backend.__init__(backend, spec.scale, window, spec.frames, fixed, max_size,
                     contract.size_multiple if contract else 1, contract)
    backend.stateful, backend.windowed = contract is not None, contract is None


def require_mode(backend: Backend, stateful: bool) -> None:
    """A clear error when a graph is run in the mode it was not exported for."""
    if stateful and not backend.stateful:
        raise ValueError(f'{backend.name}: the graph is windowed (exported with --frames {backend.window_frames}): run '
                         'it with --windowed --overlap O, or export a stateful graph (scripts/export.py --interval I '
                         '--lookahead L).')
    if not stateful and not backend.windowed:
        raise ValueError(f'{backend.name}: the graph is stateful (exported with --interval {backend.contract.interval} '
                         f'--lookahead {backend.contract.lookahead}): run it without --windowed, or export a windowed '
                         'graph (scripts/export.py --frames T).')
