"""The files one model path stands for: an OpenVINO IR's ``.bin`` beside its ``.xml``, an ONNX graph's external data
files, a TensorRT engine's ``.json`` graph contract.

A command that reads or writes a model reads or writes all of them, so the output-over-input rule (``cli.py``) and
anything that checks or copies a model must take every one, not just the path given on the command line.
"""
import os

ENGINE_SPEC_SUFFIX = '.json'  # the graph contract next to a TensorRT engine, which carries no ONNX metadata


def openvino_weights(xml_path: str) -> str:
    """The ``.bin`` weights file of the IR ``xml_path``."""
    return os.path.splitext(xml_path)[0] + '.bin'


def engine_spec(engine_path: str) -> str:
    """The ``.json`` graph contract written beside the TensorRT engine ``engine_path``."""
    return engine_path + ENGINE_SPEC_SUFFIX


def onnx_external_data(onnx_path: str) -> list[str]:
    """The external data files the ONNX graph ``onnx_path`` references (its initializers' locations), in order.

    A file that cannot be read as ONNX references none: the loader that opens it says what is wrong.
    """
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    try:
        model = onnx.load(onnx_path, load_external_data=False)
    except Exception:  # noqa: BLE001  (missing, truncated or foreign: reported by the backend that loads it)
        return []
    folder = os.path.dirname(os.path.abspath(onnx_path))
    locations = dict.fromkeys(ExternalDataInfo(t).location for t in model.graph.initializer if uses_external_data(t))
    return [os.path.join(folder, location) for location in locations]


def model_files(path: str | None) -> list[str]:
    """Every file the model at ``path`` consists of, ``path`` first; by its extension (``.xml``, ``.onnx``,
    ``.engine``); a checkpoint is one file. Empty for ``None`` (a model flag not given)."""
    if path is None:
        return []
    ext = os.path.splitext(path)[1].lower()
    if ext == '.xml':
        return [path, openvino_weights(path)]
    if ext == '.onnx':
        return [path, *onnx_external_data(path)]
    if ext == '.engine':
        return [path, engine_spec(path)]
    return [path]
