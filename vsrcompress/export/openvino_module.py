"""A network run by OpenVINO but called like the PyTorch module, so quality code measures the deployed engine.

Graphs fix the number of frames (the recurrence is unrolled), so each new clip shape is exported and converted once
(graph ``precision`` from the network, float layers in ``inference_precision``) and cached for the next clip of that
shape. Quality measured through it is the quality of what deploys on OpenVINO, not of the PyTorch network.
"""
import os
import tempfile
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from vsrcompress.export.onnx_export import export_onnx
from vsrcompress.export.openvino_export import export_openvino
from vsrcompress.export.openvino_runtime import compile_openvino


class OpenVINONetwork(nn.Module):
    """``forward(lq)`` on (1, T, 3, H, W) clips in [0, 1] through OpenVINO on the CPU."""

    def __init__(self, net: nn.Module, inference_precision: str, precision: str = 'fp32',
                 conv_output_range: Mapping[str, torch.Tensor] | None = None, threads: int = 0):
        super().__init__()
        self._net = [net]  # a list: not a submodule, so this wrapper has no parameters of its own
        self.inference_precision, self.precision, self.threads = inference_precision, precision, threads
        self.conv_output_range = conv_output_range
        self._requests: dict[tuple[int, ...], object] = {}

    def _request(self, shape: tuple[int, ...]):
        if shape not in self._requests:
            with tempfile.TemporaryDirectory(prefix='openvino_module_') as folder:
                onnx_path = os.path.join(folder, 'net.onnx')
                export_onnx(self._net[0], onnx_path, shape[1], shape[3], shape[4], precision=self.precision,
                            conv_output_range=self.conv_output_range)
                export_openvino(onnx_path, os.path.join(folder, 'net.xml'), self.inference_precision)
                compiled = compile_openvino(os.path.join(folder, 'net.xml'), self.inference_precision, self.threads)
            self._requests[shape] = compiled.create_infer_request()
        return self._requests[shape]

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        request = self._request(tuple(lq.shape))
        return torch.from_numpy(np.array(request.infer([lq.cpu().numpy().astype(np.float32)])[0]))
