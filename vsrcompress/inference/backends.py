"""Model runners for the streaming pipeline: PyTorch, ONNX Runtime, OpenVINO and TensorRT behind one interface.

A backend takes a window of RGB uint8 frames (T, H, W, 3), already padded to a size it accepts, and returns
the SR frames (T, H*scale, W*scale, 3) as RGB uint8. Conversion to and from float happens on the device
that runs the model. Each constructor checks what it needs (device, provider, package, file) and raises a
clear error before any frame is decoded.
"""
import abc
import math
import os

import numpy as np
import torch
from torch import nn

from vsrcompress.export.onnx_export import INPUT_NAME, MIN_SIZE, OnnxGraphSpec, read_graph_spec
from vsrcompress.export.tensorrt_build import read_engine_spec, require_tensorrt

BACKENDS = ('torch', 'onnxruntime', 'openvino', 'tensorrt')
DEVICES = ('cpu', 'cuda')


def _check_device(device: str) -> None:
    if device not in DEVICES:
        raise ValueError(f'device: {device!r} is not supported; allowed: {list(DEVICES)}')
    if device == 'cuda' and not torch.cuda.is_available():
        raise ValueError('device: cuda was requested but no CUDA GPU is visible to PyTorch.')


def to_uint8(sr: np.ndarray) -> np.ndarray:
    """(1, T, 3, H, W) float in [0, 1] -> (T, H, W, 3) uint8."""
    return (np.clip(sr[0], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)


class Backend(abc.ABC):
    """What the pipeline needs to know about a model: scale, window length, accepted sizes; and ``infer``."""
    name = 'backend'

    def __init__(self, scale: int, window_frames: int | None, min_frames: int, fixed_size: tuple[int, int] | None,
                 max_size: tuple[int, int] | None = None, size_multiple: int = 1):
        self.scale = scale
        self.window_frames = window_frames  # None: any window length
        self.min_frames = min_frames
        self.fixed_size = fixed_size  # (H, W) a fixed-size graph takes; None: any size >= MIN_SIZE
        self.max_size = max_size
        self.size_multiple = size_multiple

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


class TorchBackend(Backend):
    """Run an ``nn.Module`` with PyTorch; FP16 on CUDA through autocast (``grid_sample`` stays FP32)."""
    name = 'torch'

    def __init__(self, net: nn.Module, device: str = 'cpu', fp16: bool = False):
        _check_device(device)
        if fp16 and device != 'cuda':
            raise ValueError('fp16: the torch backend runs FP16 only on CUDA (--device cuda).')
        temporal_padding = getattr(net, 'temporal_padding', None)
        super().__init__(int(net.scale), None, 2 * temporal_padding + 1 if temporal_padding else 2, None)
        self.net = net.eval().to(device)
        self.device, self.fp16 = torch.device(device), fp16

    def infer(self, clip: np.ndarray) -> np.ndarray:
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.float16, enabled=self.fp16):
            lq = torch.from_numpy(clip).to(self.device).permute(0, 3, 1, 2).unsqueeze(0).float().div_(255.0)
            sr = self.net(lq).float().clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
            return sr[0].permute(0, 2, 3, 1).cpu().numpy()

    def uses_torch_cuda(self) -> bool:
        return self.device.type == 'cuda'

    def describe(self) -> dict:
        return {'backend': self.name, 'device': self.device.type, 'precision': 'fp16' if self.fp16 else 'fp32'}


class OnnxRuntimeBackend(Backend):
    """Run a graph written by ``vsrcompress.export`` in ONNX Runtime on the CPU or CUDA provider."""
    name = 'onnxruntime'

    def __init__(self, onnx_path: str, device: str = 'cpu', threads: int = 0):
        import onnxruntime as ort
        if device not in DEVICES:
            raise ValueError(f'device: {device!r} is not supported; allowed: {list(DEVICES)}')
        spec = read_graph_spec(onnx_path)
        provider = 'CUDAExecutionProvider' if device == 'cuda' else 'CPUExecutionProvider'
        if provider not in ort.get_available_providers():
            raise ValueError(f'device: {device} needs ONNX Runtime\'s {provider}, which this onnxruntime does not '
                             f'have (available: {ort.get_available_providers()}); install onnxruntime-gpu.')
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(onnx_path, options, providers=[provider])
        self.spec, self.device = spec, device
        self.dtype = np.float16 if spec.precision == 'fp16' else np.float32
        fixed = None if spec.dynamic else (spec.height, spec.width)
        super().__init__(spec.scale, spec.frames, spec.frames, fixed)

    def infer(self, clip: np.ndarray) -> np.ndarray:
        lq = (clip.transpose(0, 3, 1, 2)[None].astype(np.float32) / 255.0).astype(self.dtype)
        return to_uint8(self.session.run(None, {INPUT_NAME: lq})[0].astype(np.float32))

    def describe(self) -> dict:
        return {'backend': self.name, 'device': self.device, 'precision': self.spec.precision}


class TensorRTBackend(Backend):
    """Run a serialized TensorRT engine (built by ``build_tensorrt_engine``) with PyTorch CUDA tensors as I/O."""
    name = 'tensorrt'

    def __init__(self, engine_path: str, max_size: tuple[int, int] | None = None):
        trt = require_tensorrt()
        spec: OnnxGraphSpec = read_engine_spec(engine_path)
        with open(engine_path, 'rb') as f:
            self.engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(f.read())
        if self.engine is None:
            raise ValueError(f'engine: TensorRT cannot deserialize {engine_path} (built by another TensorRT version '
                             'or for another GPU?); rebuild it with scripts/export.py --trt.')
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.output_name = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        self.dtype = torch.float16 if spec.precision == 'fp16' else torch.float32
        self.spec, self.stream = spec, torch.cuda.Stream()
        fixed = None if spec.dynamic else (spec.height, spec.width)
        if spec.dynamic and max_size is None:
            _, _, _, max_h, max_w = self.engine.get_tensor_profile_shape(INPUT_NAME, 0)[2]
            max_size = (max_h, max_w)
        super().__init__(spec.scale, spec.frames, spec.frames, fixed, max_size)

    def run(self, lq: torch.Tensor) -> torch.Tensor:
        """Enqueue the engine on the current CUDA stream: (1, T, 3, H, W) CUDA tensor in [0, 1] of ``self.dtype``
        -> the SR tensor (valid once the stream has run)."""
        sr = torch.empty((*lq.shape[:3], lq.shape[3] * self.scale, lq.shape[4] * self.scale), dtype=self.dtype,
                         device='cuda')
        self.context.set_input_shape(INPUT_NAME, tuple(lq.shape))
        self.context.set_tensor_address(INPUT_NAME, lq.data_ptr())
        self.context.set_tensor_address(self.output_name, sr.data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise RuntimeError('TensorRT failed to run the engine.')
        return sr

    def infer(self, clip: np.ndarray) -> np.ndarray:
        with torch.cuda.stream(self.stream):
            lq = torch.from_numpy(clip).cuda(non_blocking=True).permute(0, 3, 1, 2).unsqueeze(0)
            sr = self.run(lq.to(self.dtype).div_(255.0).contiguous())
            out = sr.float().clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)[0].permute(0, 2, 3, 1).cpu()
        self.stream.synchronize()
        return out.numpy()

    def uses_torch_cuda(self) -> bool:
        return True

    def describe(self) -> dict:
        return {'backend': self.name, 'device': 'cuda', 'precision': self.spec.precision}


def make_backend(backend: str, device: str = 'cpu', net: nn.Module | None = None, onnx_path: str | None = None,
                 engine_path: str | None = None, fp16: bool = False, openvino_path: str | None = None,
                 inference_precision: str | None = None, openvino_mode: str = 'latency') -> Backend:
    """Build the named backend; ``net`` for torch, ``onnx_path`` for onnxruntime, ``engine_path`` for tensorrt,
    ``openvino_path`` (an IR ``.xml``) for openvino, run in ``inference_precision`` (default: the IR's)."""
    if backend not in BACKENDS:
        raise ValueError(f'backend: {backend!r} is not supported; allowed: {list(BACKENDS)}')
    needed = {'torch': ('net (--checkpoint)', net), 'onnxruntime': ('onnx_path (--onnx)', onnx_path),
              'tensorrt': ('engine_path (--engine)', engine_path),
              'openvino': ('openvino_path (--openvino)', openvino_path)}[backend]
    if backend == 'tensorrt':
        require_tensorrt()  # "not installed" before "file missing": the first fix the user needs
    if needed[1] is None:
        raise ValueError(f'backend: {backend} needs {needed[0]}.')
    if backend == 'torch':
        return TorchBackend(net, device, fp16)
    if backend == 'onnxruntime':
        if fp16:
            raise ValueError('fp16: for onnxruntime, export an FP16 graph (scripts/export.py --fp16) instead.')
        if not os.path.isfile(onnx_path):
            raise FileNotFoundError(f'onnx: {onnx_path} does not exist.')
        return OnnxRuntimeBackend(onnx_path, device)
    if backend == 'openvino':
        from vsrcompress.inference.openvino_backend import OpenVINOBackend
        if device != 'cpu' or fp16:
            raise ValueError('device: the openvino backend runs on the CPU in f32 or bf16 (--inference-precision); '
                             '--device cuda and --fp16 do not apply.')
        return OpenVINOBackend(openvino_path, inference_precision, mode=openvino_mode)
    if device != 'cuda':
        raise ValueError('device: the tensorrt backend runs on cuda only (--device cuda).')
    return TensorRTBackend(engine_path)
