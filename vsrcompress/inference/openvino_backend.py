"""OpenVINO on the CPU: an IR from ``scripts/export.py --format openvino`` behind the streaming ``Backend`` interface.

The inference precision (``f32``/``bf16``) is the one recorded in the IR unless the caller overrides it; it goes
into every run report. For several inputs at once (several cameras), one compiled model in throughput mode serves
all of them: each input gets its own asynchronous infer request (``for_another_stream``), and OpenVINO runs the
requests in parallel CPU streams while the callers' threads wait without holding the GIL.

A stateful IR gets each call's state outputs back as the next call's inputs, one state per backend (per input).
OpenVINO's own variables (``MakeStateful``) would keep the state inside the request, but the CPU plugin of 2026.4
fails to compile them on INT8 IRs (its low-precision pass ``AssignAndReadValueTransformation`` throws "index '0' out
of range" on the dequantized state output, both placements), and INT8 is what deploys.
"""
import numpy as np

from vsrcompress.export.onnx_export import INPUT_NAME
from vsrcompress.export.openvino_export import read_openvino_spec
from vsrcompress.export.openvino_runtime import compile_openvino
from vsrcompress.inference.backend_base import Backend, graph_backend_init, require_mode, to_uint8
from vsrcompress.inference.stream_plan import StreamCall
from vsrcompress.streaming.state import STATE_NAMES


class OpenVINOBackend(Backend):
    """Run an OpenVINO IR on the CPU, one window per asynchronous request."""
    name = 'openvino'

    def __init__(self, xml_path: str, precision: str | None = None, threads: int = 0, mode: str = 'latency',
                 streams: int | None = None, input_shape: tuple[int, ...] | None = None, _compiled=None):
        spec, recorded = read_openvino_spec(xml_path)
        self.xml_path, self.spec, self.precision, self.mode = xml_path, spec, precision or recorded, mode
        graph_backend_init(self, spec)
        if self.contract and input_shape is not None:  # every input of a stateful graph, for the frames' size
            state = self.contract.zero_state(*input_shape[-2:])
            input_shape = {INPUT_NAME: input_shape, **{name: a.shape for name, a in state.items()}}
        self.compiled = _compiled or compile_openvino(xml_path, self.precision, threads, mode, streams, input_shape)
        self.request = self.compiled.create_infer_request()
        self.state = None

    def for_another_stream(self) -> 'OpenVINOBackend':
        """A backend sharing this compiled model with its own infer request (and state), for one more input."""
        return OpenVINOBackend(self.xml_path, self.precision, mode=self.mode, _compiled=self.compiled)

    @staticmethod
    def _lq(clip: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(clip.transpose(0, 3, 1, 2)[None], dtype=np.float32) / np.float32(255.0)

    def infer(self, clip: np.ndarray) -> np.ndarray:
        require_mode(self, stateful=False)
        self.request.start_async({INPUT_NAME: self._lq(clip)})
        self.request.wait()
        return to_uint8(self.request.get_output_tensor(0).data)

    def stream(self, clip: np.ndarray, call: StreamCall) -> np.ndarray:
        require_mode(self, stateful=True)
        if self.state is None:
            self.state = self.contract.zero_state(clip.shape[1], clip.shape[2])
        self.request.start_async({INPUT_NAME: self._lq(clip), **self.state,
                                  **self.contract.keyframe_feeds(call.first, call.real, call.ended)})
        self.request.wait()
        # copies: the request overwrites its output tensors on the next call, which reads these
        self.state = {name: self.request.get_output_tensor(1 + k).data.copy() for k, name in enumerate(STATE_NAMES)}
        return to_uint8(self.request.get_output_tensor(0).data[:, :call.keep])

    def reset_stream(self) -> None:
        self.state = None

    def state_bytes(self) -> int:
        return sum(a.nbytes for a in (self.state or {}).values())

    def gpu_peak_mib(self) -> float | None:
        return None

    def describe(self) -> dict:
        return {'backend': self.name, 'device': 'cpu', 'precision': self.spec.precision,
                'inference_precision': self.precision, 'openvino_mode': self.mode,
                'openvino_streams': int(self.compiled.get_property('NUM_STREAMS'))}
