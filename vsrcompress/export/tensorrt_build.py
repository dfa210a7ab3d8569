"""Build a TensorRT engine from an exported ONNX graph, when TensorRT and a CUDA GPU are present.

The engine's precision is the graph's: TensorRT 10.12 deprecated and 11.x removed the builder flags that let
TensorRT pick FP16/INT8 kernels for an FP32 graph ("weak typing"); a strongly typed network runs each tensor in
the type the graph gives it. So an FP16 engine is built from the ``--fp16`` graph, and an INT8 engine will be
built from a graph with explicit Q/DQ nodes. On TensorRT < 10.12 (no STRONGLY_TYPED flag) an FP16 graph also
sets ``BuilderFlag.FP16``, which is what those versions need to keep FP16 layers in FP16.
"""
import importlib.util
import json
import os
from dataclasses import asdict

import onnx
import torch

from vsrcompress.atomic_files import write_atomic, write_text
from vsrcompress.export.onnx_export import INPUT_NAME, OnnxGraphSpec, read_graph_spec

ENGINE_SPEC_SUFFIX = '.json'  # the graph contract next to the engine, which carries no ONNX metadata


class TensorRTUnavailableError(RuntimeError):
    """TensorRT cannot be used here (package not installed, or no CUDA GPU)."""


def tensorrt_unavailable_reason() -> str | None:
    """None when TensorRT can build and run engines here, else why not (for a message, not a traceback)."""
    if importlib.util.find_spec('tensorrt') is None:
        return ('the Python package `tensorrt` is not installed (pip install tensorrt, on a machine with an '
                'NVIDIA GPU and driver)')
    if not torch.cuda.is_available():
        return 'no CUDA GPU is visible to PyTorch (TensorRT engines are built and run on the GPU)'
    return None


def require_tensorrt():
    """Import and return the ``tensorrt`` module, or raise ``TensorRTUnavailableError`` saying why not."""
    reason = tensorrt_unavailable_reason()
    if reason:
        raise TensorRTUnavailableError(f'TensorRT is not available: {reason}.')
    import tensorrt
    return tensorrt


def build_tensorrt_engine(onnx_path: str, engine_path: str, max_height: int = 1088, max_width: int = 1920,
                          workspace_gib: float = 4.0) -> str:
    """Parse the ONNX graph, build a serialized engine and write it atomically to ``engine_path``.

    The graph's ``OnnxGraphSpec`` is written beside it as ``engine_path + '.json'`` for the inference backend.

    Args:
        onnx_path: A graph written by ``export_onnx`` (its metadata gives frames, size and precision).
        engine_path: Output ``.engine``/``.plan`` file.
        max_height: For dynamic graphs: largest input height of the optimization profile (min is 33).
        max_width: For dynamic graphs: largest input width of the optimization profile.
        workspace_gib: Builder workspace memory limit.
    """
    spec = read_graph_spec(onnx_path)
    trt = require_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    strongly_typed = hasattr(trt.NetworkDefinitionCreationFlag, 'STRONGLY_TYPED')
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx.load(onnx_path).SerializeToString()):
        errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f'TensorRT could not parse {onnx_path}: {errors}')

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if spec.precision == 'fp16' and not strongly_typed:
        config.set_flag(trt.BuilderFlag.FP16)
    if spec.dynamic:
        if max_height < 33 or max_width < 33:
            raise ValueError(f'max_height/max_width: must be >= 33, got {max_height}x{max_width}')
        profile = builder.create_optimization_profile()
        lo, hi = (1, spec.frames, 3, 33, 33), (1, spec.frames, 3, max_height, max_width)
        profile.set_shape(INPUT_NAME, lo, hi, hi)
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f'TensorRT failed to build an engine from {onnx_path} (see the TensorRT log above).')

    def write(tmp: str) -> None:
        with open(tmp, 'wb') as f:
            f.write(serialized)
    write_atomic(engine_path, write)
    write_text(engine_path + ENGINE_SPEC_SUFFIX, json.dumps(asdict(spec), indent=2))
    return engine_path


def read_engine_spec(engine_path: str) -> OnnxGraphSpec:
    """The graph contract written beside an engine by ``build_tensorrt_engine``."""
    for path in (engine_path, engine_path + ENGINE_SPEC_SUFFIX):
        if not os.path.isfile(path):
            raise FileNotFoundError(f'engine: {path} does not exist (build engines with scripts/export.py --trt).')
    with open(engine_path + ENGINE_SPEC_SUFFIX) as f:
        return OnnxGraphSpec(**json.load(f))
