"""Build a TensorRT engine from an exported ONNX graph, when TensorRT (10.x) and a CUDA GPU are present.

The engine's precision is the graph's: the network is created STRONGLY_TYPED (a flag every TensorRT 10 release
has), so each tensor runs in the type the graph gives it; TensorRT 10.12 deprecated the builder flags that let it
pick FP16/INT8 kernels for an FP32 graph ("weak typing"). So an FP16 engine is built from the ``--fp16`` graph, and
an INT8 engine from a graph with explicit Q/DQ nodes. TensorRT < 10 is refused with a message saying so.

Dynamic graphs get an optimization profile whose maximum is scale-aware (by default the LR size of a 2160x3840
output) and whose ``opt`` shape, the one kernels are tuned for, defaults to that size: tuning at a size no clip has
costs build memory and speed.
"""
import importlib.util
import json
import os
from dataclasses import asdict

import onnx
import torch

from vsrcompress.atomic_files import write_atomic, write_failure, write_text
from vsrcompress.export.artifact_digest import ENGINE_DIGEST_KEY, file_sha256, verify_engine
from vsrcompress.export.onnx_export import INPUT_NAME, MIN_SIZE, OnnxGraphSpec, parse_graph_spec, read_graph_spec
from vsrcompress.model_files import ENGINE_SPEC_SUFFIX
MIN_TENSORRT_MAJOR = 10
DEFAULT_MAX_OUTPUT = (2160, 3840)  # 4K UHD: the largest output a default dynamic profile covers


class TensorRTUnavailableError(RuntimeError):
    """TensorRT cannot be used here (package not installed or older than 10.x, or no CUDA GPU)."""


def tensorrt_unavailable_reason() -> str | None:
    """None when TensorRT can build and run engines here, else why not (for a message, not a traceback)."""
    if importlib.util.find_spec('tensorrt') is None:
        return ('the Python package `tensorrt` is not installed (pip install tensorrt, on a machine with an '
                'NVIDIA GPU and driver)')
    if not torch.cuda.is_available():
        return 'no CUDA GPU is visible to PyTorch (TensorRT engines are built and run on the GPU)'
    import tensorrt
    try:
        check_tensorrt_version(tensorrt.__version__)
    except (TensorRTUnavailableError, ValueError) as err:
        return str(err)
    return None


def check_tensorrt_version(version: str) -> None:
    """Refuse TensorRT releases older than 10 (strongly typed networks and the 10.x Python API are used)."""
    try:
        major = int(str(version).split('.')[0])
    except ValueError:
        raise ValueError(f'TensorRT version {version!r} is not understood; supported: 10.x') from None
    if major < MIN_TENSORRT_MAJOR:
        raise TensorRTUnavailableError(f'TensorRT {version} is not supported: vsrcompress builds engines with '
                                       f'TensorRT 10.x (pip install "tensorrt>=10,<11").')


def profile_shapes(frames: int, scale: int, max_height: int | None = None, max_width: int | None = None,
                   opt_height: int | None = None, opt_width: int | None = None) -> tuple[tuple, tuple, tuple]:
    """(min, opt, max) input shapes of a dynamic graph's optimization profile.

    Args:
        frames: Clip length of the graph.
        scale: Upscaling factor; the default maximum is the LR size of a 2160x3840 output.
        max_height, max_width: Largest LR input (default: 2160 // scale x 3840 // scale).
        opt_height, opt_width: The size kernels are tuned for (default: the maximum).
    """
    max_height = max_height or DEFAULT_MAX_OUTPUT[0] // scale
    max_width = max_width or DEFAULT_MAX_OUTPUT[1] // scale
    opt_height, opt_width = opt_height or max_height, opt_width or max_width
    if min(max_height, max_width) < MIN_SIZE:
        raise ValueError(f'max_height/max_width: must be >= {MIN_SIZE}, got {max_height}x{max_width}')
    if not (MIN_SIZE <= opt_height <= max_height and MIN_SIZE <= opt_width <= max_width):
        raise ValueError(f'opt_height/opt_width: must lie between {MIN_SIZE}x{MIN_SIZE} and the maximum '
                         f'{max_height}x{max_width}, got {opt_height}x{opt_width}')
    return ((1, frames, 3, MIN_SIZE, MIN_SIZE), (1, frames, 3, opt_height, opt_width),
            (1, frames, 3, max_height, max_width))


def profile_by_input(spec: OnnxGraphSpec, shapes: tuple[tuple, tuple, tuple]) -> dict[str, tuple[tuple, ...]]:
    """The (min, opt, max) shapes of every dynamic input, from ``profile_shapes``' frames shapes: a stateful graph's
    state inputs follow the frames' size (IconVSR: rounded up to multiples of 4, as its frames are padded)."""
    contract = spec.contract
    if contract is None:
        return {INPUT_NAME: shapes}
    m = contract.size_multiple
    sizes = [(-(-s[3] // m) * m, -(-s[4] // m) * m) for s in shapes]
    lq = tuple((*s[:3], h, w) for s, (h, w) in zip(shapes, sizes))
    states = [contract.zero_state(1, 1) for _ in sizes]  # only the leading dims are read
    return {INPUT_NAME: lq, **{name: tuple((*state[name].shape[:-2], h, w) for state, (h, w) in zip(states, sizes))
                               for name in states[0]}}


def require_tensorrt():
    """Import and return the ``tensorrt`` module, or raise ``TensorRTUnavailableError`` saying why not."""
    reason = tensorrt_unavailable_reason()
    if reason:
        raise TensorRTUnavailableError(f'TensorRT is not available: {reason}.')
    import tensorrt
    return tensorrt


def build_tensorrt_engine(onnx_path: str, engine_path: str, max_height: int | None = None,
                          max_width: int | None = None, workspace_gib: float = 4.0, opt_height: int | None = None,
                          opt_width: int | None = None) -> str:
    """Parse the ONNX graph, build a serialized engine and write it atomically to ``engine_path``.

    The graph's ``OnnxGraphSpec`` is written beside it as ``engine_path + '.json'`` for the inference backend.

    Args:
        onnx_path: A graph written by ``export_onnx`` (its metadata gives frames, size and precision).
        engine_path: Output ``.engine``/``.plan`` file.
        max_height, max_width: For dynamic graphs: largest LR input of the optimization profile (min is 33;
            default: the LR size of a 2160x3840 output at the graph's scale).
        workspace_gib: Builder workspace memory limit.
        opt_height, opt_width: For dynamic graphs: the input size kernels are tuned for (default: the maximum).
    """
    spec = read_graph_spec(onnx_path)
    shapes = profile_shapes(spec.frames, spec.scale, max_height, max_width, opt_height, opt_width) \
        if spec.dynamic else None  # a bad size fails before TensorRT is loaded
    trt = require_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx.load(onnx_path).SerializeToString()):
        errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f'TensorRT could not parse {onnx_path}: {errors}')

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if shapes:
        profile = builder.create_optimization_profile()
        for name, input_shapes in profile_by_input(spec, shapes).items():
            profile.set_shape(name, *input_shapes)
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f'TensorRT failed to build an engine from {onnx_path} (see the TensorRT log above).')

    def write(tmp: str) -> None:
        with open(tmp, 'wb') as f:
            f.write(serialized)
    try:
        write_atomic(engine_path, write)
        write_engine_spec(engine_path, spec)
    except OSError as err:
        raise write_failure(engine_path, err) from err
    return engine_path


def write_engine_spec(engine_path: str, spec: OnnxGraphSpec) -> None:
    """Write the graph contract and the engine's sha256 (``ENGINE_DIGEST_KEY``) beside the written engine."""
    record = {**asdict(spec), ENGINE_DIGEST_KEY: file_sha256(engine_path)}
    write_text(engine_path + ENGINE_SPEC_SUFFIX, json.dumps(record, indent=2))


def read_engine_spec(engine_path: str) -> OnnxGraphSpec:
    """The graph contract written beside an engine by ``build_tensorrt_engine``, after verifying the engine's
    checksum (``artifact_digest.verify_engine``)."""
    record_path = engine_path + ENGINE_SPEC_SUFFIX
    for path in (engine_path, record_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f'engine: {path} does not exist (build engines with scripts/export.py --trt).')
    with open(record_path) as f:
        text = f.read()
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f'engine: {record_path} is not valid JSON ({err}); rebuild the engine with scripts/export.py '
                         '--trt.') from None
    if not isinstance(record, dict):
        raise ValueError(f'engine: {record_path} is not a JSON object; rebuild the engine with scripts/export.py '
                         '--trt.')
    verify_engine(engine_path, record.pop(ENGINE_DIGEST_KEY, None), record_path)
    return parse_graph_spec(record, f'engine: {record_path}')
