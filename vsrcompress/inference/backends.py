"""Model runners for the streaming pipeline: PyTorch, ONNX Runtime, OpenVINO and TensorRT behind one interface.

A backend takes RGB uint8 frames (T, H, W, 3), already padded to a size it accepts, and returns the SR frames
(H*scale, W*scale, 3) as RGB uint8, in one of two modes:

- stateful (``stream``): a ``StreamCall`` of kept frames plus lookahead; the backend carries the forward state from
  call to call (PyTorch: ``stream_step``; graphs exported with ``--interval``: the state as graph inputs and
  outputs, fed back call after call) and returns the kept frames only;
- windowed (``infer``): a window of T frames from zero state (graphs exported with ``--frames``), all T returned.

Conversion to and from float happens on the device that runs the model. Each constructor checks what it needs
(device, provider, package, file) and raises a clear error before any frame is decoded. ``for_another_stream`` gives
a backend for one more concurrent input: the same model, its own state.
"""
import os

import numpy as np
import torch
from torch import nn

from vsrcompress.export.onnx_export import INPUT_NAME, OnnxGraphSpec, read_graph_spec
from vsrcompress.export.tensorrt_build import read_engine_spec, require_tensorrt
from vsrcompress.inference.backend_base import Backend, graph_backend_init, require_mode, to_uint8
from vsrcompress.inference.openvino_backend import OpenVINOBackend
from vsrcompress.inference.stream_plan import StreamCall
from vsrcompress.streaming.state import STATE_NAMES, STATE_OUTPUT_SUFFIX
from vsrcompress.streaming.step import stream_step

BACKENDS = ('torch', 'onnxruntime', 'openvino', 'tensorrt')
DEVICES = ('cpu', 'cuda')


def _check_device(device: str) -> None:
    if device not in DEVICES:
        raise ValueError(f'device: {device!r} is not supported; allowed: {list(DEVICES)}')
    if device == 'cuda' and not torch.cuda.is_available():
        raise ValueError('device: cuda was requested but no CUDA GPU is visible to PyTorch.')


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
        self.state = None

    def _run(self, clip: np.ndarray, forward) -> np.ndarray:
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.float16, enabled=self.fp16):
            lq = torch.from_numpy(clip).to(self.device).permute(0, 3, 1, 2).unsqueeze(0).float().div_(255.0)
            sr = forward(lq).float().clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
            return sr[0].permute(0, 2, 3, 1).cpu().numpy()

    def infer(self, clip: np.ndarray) -> np.ndarray:
        return self._run(clip, self.net)

    def stream(self, clip: np.ndarray, call: StreamCall) -> np.ndarray:
        def step(lq: torch.Tensor) -> torch.Tensor:
            out = stream_step(self.net, lq, call.keep, self.state, call.ended)
            self.state = out.state
            return out.sr
        return self._run(clip[:call.real], step)

    def reset_stream(self) -> None:
        self.state = None

    def state_bytes(self) -> int:
        return 0 if self.state is None else self.state.nbytes()

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
        self.state = None  # a stream starts from zeros (``stream`` before any ``reset_stream`` too)
        graph_backend_init(self, spec)

    def _lq(self, clip: np.ndarray) -> np.ndarray:
        return (clip.transpose(0, 3, 1, 2)[None].astype(np.float32) / 255.0).astype(self.dtype)

    def infer(self, clip: np.ndarray) -> np.ndarray:
        require_mode(self, stateful=False)
        return to_uint8(self.session.run(None, {INPUT_NAME: self._lq(clip)})[0].astype(np.float32))

    def stream(self, clip: np.ndarray, call: StreamCall) -> np.ndarray:
        require_mode(self, stateful=True)
        if self.state is None:
            self.state = self.contract.zero_state(clip.shape[1], clip.shape[2], self.dtype)
        feeds = {INPUT_NAME: self._lq(clip), **self.state,
                 **self.contract.keyframe_feeds(call.first, call.real, call.ended)}
        sr, *state = self.session.run(None, feeds)
        self.state = dict(zip(STATE_NAMES, state))
        return to_uint8(sr[:, :call.keep].astype(np.float32))

    def reset_stream(self) -> None:
        self.state = None

    def state_bytes(self) -> int:
        return sum(a.nbytes for a in (self.state or {}).values())

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
        self.output_names = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.dtype = torch.float16 if spec.precision == 'fp16' else torch.float32
        self.spec, self.cuda_stream = spec, torch.cuda.Stream()
        self.state = None
        if spec.dynamic and max_size is None:
            _, _, _, max_h, max_w = self.engine.get_tensor_profile_shape(INPUT_NAME, 0)[2]
            max_size = (max_h, max_w)
        graph_backend_init(self, spec, max_size)

    def run_named(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Enqueue the engine on the current CUDA stream: CUDA input tensors by name (float ones in ``self.dtype``)
        -> its outputs by name (valid once the stream has run)."""
        for name, tensor in inputs.items():
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        outputs = {}
        for name in self.output_names:
            outputs[name] = torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=self.dtype, device='cuda')
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise RuntimeError('TensorRT failed to run the engine.')
        return outputs

    def run(self, lq: torch.Tensor) -> torch.Tensor:
        """A windowed engine's SR of (1, T, 3, H, W) CUDA frames in [0, 1] of ``self.dtype`` (see ``run_named``)."""
        return self.run_named({INPUT_NAME: lq})[self.output_names[0]]

    def _lq(self, clip: np.ndarray) -> torch.Tensor:
        lq = torch.from_numpy(clip).cuda(non_blocking=True).permute(0, 3, 1, 2).unsqueeze(0)
        return lq.to(self.dtype).div_(255.0).contiguous()

    @staticmethod
    def _to_uint8(sr: torch.Tensor) -> np.ndarray:
        return sr.float().clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)[0].permute(0, 2, 3, 1).cpu()

    def infer(self, clip: np.ndarray) -> np.ndarray:
        require_mode(self, stateful=False)
        with torch.cuda.stream(self.cuda_stream):
            out = self._to_uint8(self.run(self._lq(clip)))
        self.cuda_stream.synchronize()
        return out.numpy()

    def stream(self, clip: np.ndarray, call: StreamCall) -> np.ndarray:
        require_mode(self, stateful=True)
        with torch.cuda.stream(self.cuda_stream):
            if self.state is None:
                self.state = {name: torch.from_numpy(a).cuda().to(self.dtype) for name, a in
                              self.contract.zero_state(clip.shape[1], clip.shape[2]).items()}
            keyframes = {name: torch.from_numpy(a).cuda() for name, a in
                         self.contract.keyframe_feeds(call.first, call.real, call.ended).items()}
            outputs = self.run_named({INPUT_NAME: self._lq(clip), **self.state, **keyframes})
            self.state = {name: outputs[name + STATE_OUTPUT_SUFFIX] for name in STATE_NAMES}
            out = self._to_uint8(outputs[self.output_names[0]][:, :call.keep])
        self.cuda_stream.synchronize()
        return out.numpy()

    def reset_stream(self) -> None:
        self.state = None

    def state_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.state or {}).values())

    def for_another_stream(self) -> 'TensorRTBackend':
        other = super().for_another_stream()
        other.context, other.cuda_stream = self.engine.create_execution_context(), torch.cuda.Stream()
        return other

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
        if device != 'cpu' or fp16:
            raise ValueError('device: the openvino backend runs on the CPU in f32 or bf16 (--inference-precision); '
                             '--device cuda and --fp16 do not apply.')
        return OpenVINOBackend(openvino_path, inference_precision, mode=openvino_mode)
    if device != 'cuda':
        raise ValueError('device: the tensorrt backend runs on cuda only (--device cuda).')
    return TensorRTBackend(engine_path)
