"""OpenVINO on the CPU: an IR from ``scripts/export.py --format openvino`` behind the streaming ``Backend`` interface.

The inference precision (``f32``/``bf16``) is the one recorded in the IR unless the caller overrides it; it goes
into every run report. For several inputs at once (several cameras), one compiled model in throughput mode serves
all of them: each input gets its own asynchronous infer request (``for_another_stream``), and OpenVINO runs the
requests in parallel CPU streams while the callers' threads wait without holding the GIL.
"""
import numpy as np

from vsrcompress.export.onnx_export import INPUT_NAME
from vsrcompress.export.openvino_export import read_openvino_spec
from vsrcompress.export.openvino_runtime import compile_openvino
from vsrcompress.inference.backends import Backend, to_uint8


class OpenVINOBackend(Backend):
    """Run an OpenVINO IR on the CPU, one window per asynchronous request."""
    name = 'openvino'

    def __init__(self, xml_path: str, precision: str | None = None, threads: int = 0, mode: str = 'latency',
                 streams: int | None = None, input_shape: tuple[int, ...] | None = None, _compiled=None):
        spec, recorded = read_openvino_spec(xml_path)
        self.xml_path, self.spec, self.precision, self.mode = xml_path, spec, precision or recorded, mode
        self.compiled = _compiled or compile_openvino(xml_path, self.precision, threads, mode, streams, input_shape)
        self.request = self.compiled.create_infer_request()
        fixed = None if spec.dynamic else (spec.height, spec.width)
        super().__init__(spec.scale, spec.frames, spec.frames, fixed)

    def for_another_stream(self) -> 'OpenVINOBackend':
        """A backend sharing this compiled model with its own infer request, for one more concurrent input."""
        return OpenVINOBackend(self.xml_path, self.precision, mode=self.mode, _compiled=self.compiled)

    def infer(self, clip: np.ndarray) -> np.ndarray:
        lq = np.ascontiguousarray(clip.transpose(0, 3, 1, 2)[None], dtype=np.float32) / np.float32(255.0)
        self.request.start_async({INPUT_NAME: lq})
        self.request.wait()
        return to_uint8(self.request.get_output_tensor(0).data)

    def gpu_peak_mib(self) -> float | None:
        return None

    def describe(self) -> dict:
        return {'backend': self.name, 'device': 'cpu', 'precision': self.spec.precision,
                'inference_precision': self.precision, 'openvino_mode': self.mode,
                'openvino_streams': int(self.compiled.get_property('NUM_STREAMS'))}
