"""Run an OpenVINO IR on the same clips as PyTorch, in FP32 and (where the CPU has it) BF16, and measure both;
``export_checked_openvino`` exports, converts and checks in one call (the export script and the recipe use it).

The check holds the IR to what its precision promises: an FP32 graph in ``f32`` must match PyTorch within
``atol``; an INT8 graph must reach ``min_int8_psnr`` against the fake-quantized network in the precision the IR
records. BF16 is measured, not bounded by ``atol``: its PSNR against FP32 PyTorch is the cost a user pays for
its speed, and the check reports it next to the FP32 result so the choice is made with the number in view.
"""
import os
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from vsrcompress.atomic_files import make_temporary, write_failure
from vsrcompress.export.artifact_digest import file_checksums
from vsrcompress.export.onnx_check import (DEFAULT_FP32_ATOL, DEFAULT_INT8_MIN_PSNR, OnnxMatch, OnnxMismatchError,
                                           check_error_growth, compare_runner_with_torch, spec_check_sizes)
from vsrcompress.export.onnx_export import INT8_PRECISIONS, export_onnx
from vsrcompress.export.openvino_export import export_openvino, read_openvino_spec
from vsrcompress.export.openvino_runtime import (bf16_supported, check_inference_precision, compile_openvino,
                                                 runtime_kernel_summary)

# An FP32/INT8 graph whose float layers run in BF16 must still be this close to its PyTorch reference: BF16 on a
# tiny random BasicVSR measured 55-65 dB here; 35 dB is far below that and far above a broken graph (< 20 dB).
DEFAULT_BF16_MIN_PSNR = 35.0


@dataclass(frozen=True)
class OpenVINOMatch:
    """One IR in one inference precision against PyTorch, on one clip size."""
    inference_precision: str
    match: OnnxMatch


def check_openvino(xml_path: str, net: nn.Module, height: int, width: int, atol: float = DEFAULT_FP32_ATOL,
                   min_int8_psnr: float = DEFAULT_INT8_MIN_PSNR, min_bf16_psnr: float = DEFAULT_BF16_MIN_PSNR,
                   clips: Sequence[torch.Tensor] | None = None, threads: int = 0) -> list[OpenVINOMatch]:
    """Compare the IR with ``net`` in ``f32`` and, where supported, ``bf16``; raise ``OnnxMismatchError`` on failure.

    Args:
        xml_path: An IR written by ``export_openvino``.
        net: The network it was exported from (INT8 graphs: the fake-quantized network).
        height: Clip height (the graph's for fixed-size graphs).
        width: Clip width.
        atol: FP32 graph in ``f32``: max abs error allowed.
        min_int8_psnr: INT8 graph (in the IR's recorded precision): PSNR required against the fake-quantized net.
        min_bf16_psnr: Any graph in ``bf16``: PSNR required (a sanity bound; the measured value is reported).
        clips: Inputs to use instead of random clips (INT8: the calibration footage).
        threads: CPU threads (0: all).
    """
    spec, recorded = read_openvino_spec(xml_path)
    precisions = ['f32'] + (['bf16'] if recorded == 'bf16' or bf16_supported() else [])
    results = []
    for precision in precisions:
        compiled = compile_openvino(xml_path, precision, threads)
        request = compiled.create_infer_request()

        def run(feeds: dict) -> list[np.ndarray]:
            results = request.infer(feeds)
            return [np.array(results[output]) for output in compiled.outputs]
        matches = compare_runner_with_torch(run, spec, net, spec_check_sizes(spec, height, width), xml_path,
                                            clips=clips)
        check_error_growth(matches, f'{xml_path} ({precision})')
        results += [OpenVINOMatch(precision, m) for m in matches]
    failures = []
    for result in results:
        m, precision = result.match, result.inference_precision
        where = f'{m.height}x{m.width} in {precision}'
        if spec.precision in INT8_PRECISIONS and precision == recorded and not m.psnr_db >= min_int8_psnr:
            failures.append(f'{where}: PSNR {m.psnr_db:.1f} dB against the fake-quantized network '
                            f'(< {min_int8_psnr:g})')
        elif spec.precision == 'fp32' and precision == 'f32' and not m.max_abs_error <= atol:
            failures.append(f'{where}: max abs error {m.max_abs_error:.3g} (> {atol:g})')
        elif precision == 'bf16' and not m.psnr_db >= min_bf16_psnr:
            failures.append(f'{where}: PSNR {m.psnr_db:.1f} dB (< {min_bf16_psnr:g})')
    if failures:
        raise OnnxMismatchError(f'{xml_path}: the {spec.precision} IR in OpenVINO does not match PyTorch: '
                                + '; '.join(failures))
    return results


def export_checked_openvino(net: nn.Module, xml_path: str, frames: int, height: int, width: int,
                            inference_precision: str, precision: str = 'fp32', dynamic: bool = False,
                            conv_output_range: Mapping[str, torch.Tensor] | None = None,
                            float_output_layers: Collection[str] = (), check: bool = True,
                            clips: Sequence[torch.Tensor] | None = None, atol: float = DEFAULT_FP32_ATOL,
                            min_int8_psnr: float = DEFAULT_INT8_MIN_PSNR, interval: int | None = None) -> dict:
    """Export ``net`` as an ONNX graph of ``precision``, convert it to an IR at ``xml_path``, check it in OpenVINO.

    The intermediate ONNX graph is a temporary file. A failed check moves the IR to ``<xml_path>.mismatch.xml``
    (and ``.bin``) and raises ``OnnxMismatchError``, so no unchecked IR is left under ``xml_path``. ``interval``:
    a stateful graph keeping that many of its ``frames`` (see ``export_onnx``).

    Returns:
        A JSON-ready record: graph spec, inference precision, the plugin's kernels (convolutions by runtime
        precision), the checks (one per inference precision and clip size) and ``sha256`` of the ``.xml`` and ``.bin``.
    """
    check_inference_precision(inference_precision)
    folder = os.path.dirname(os.path.abspath(xml_path))
    onnx_tmp = make_temporary(folder if os.path.isdir(folder) else tempfile.gettempdir(), suffix='.onnx')
    try:
        export_onnx(net, onnx_tmp, frames, height, width, dynamic=dynamic, precision=precision,
                    conv_output_range=conv_output_range, float_output_layers=float_output_layers, interval=interval)
        spec = export_openvino(onnx_tmp, xml_path, inference_precision)
    except OSError as err:  # a full disk: name the IR, not the hidden intermediate graph
        raise write_failure(xml_path, err.__cause__ or err) from err
    finally:
        os.remove(onnx_tmp)
    record = {'openvino': xml_path, 'graph': asdict(spec), 'inference_precision': inference_precision,
              'kernels': runtime_kernel_summary(compile_openvino(xml_path, inference_precision)), 'checks': []}
    if check:
        try:
            matches = check_openvino(xml_path, net, height, width, atol, min_int8_psnr, clips=clips)
        except OnnxMismatchError:
            for ext in ('.xml', '.bin'):
                os.replace(xml_path[:-4] + ext, xml_path[:-4] + '.mismatch' + ext)
            raise
        record['checks'] = [{'inference_precision': m.inference_precision, **asdict(m.match)} for m in matches]
    record['sha256'] = file_checksums([xml_path, xml_path[:-4] + '.bin'])
    return record
