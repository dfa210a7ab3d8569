"""The recipe's export stage: ONNX graphs of the compressed networks, each checked in ONNX Runtime, OpenVINO IRs of
the same graphs (float layers in ``recipe.export.openvino``: f32 or bf16), each checked in OpenVINO, and TensorRT
engines where TensorRT and a GPU are present.

Float precisions export the compressed float network (pruned, else dense); INT8 precisions the QAT stage's INT8
checkpoint. The graphs are stateful (``recipe.export.interval`` delivered frames and ``lookahead`` per call, the state
carried: what ``infer_video`` streams by default) and go to ``experiments/<name>/deploy/<name>_<precision>.onnx``;
with ``windowed_frames`` windowed graphs of that many frames are written too, for comparison
(``<name>_<precision>_windowed_t<T>.onnx``). ``export.json`` beside them records every graph.
"""
import json
import os
from dataclasses import asdict

from vsrcompress.checkpoint import load_network
from vsrcompress.export import (INT8_PRECISIONS, build_tensorrt_engine, check_onnx, export_onnx,
                                tensorrt_unavailable_reason)
from vsrcompress.export.openvino_check import check_openvino
from vsrcompress.export.openvino_export import OPENVINO_GRAPH_PRECISIONS, export_openvino
from vsrcompress.recipe.plan import RecipePlan
from vsrcompress.atomic_files import write_text

_TENSORRT_PRECISIONS = ('fp32', 'fp16', 'int8-trt')  # int8-ort graphs are for ONNX Runtime's CPU kernels


def onnx_path(plan: RecipePlan, precision: str, windowed_frames: int | None = None) -> str:
    windowed = '' if windowed_frames is None else f'_windowed_t{windowed_frames}'
    return os.path.join(plan.folder, 'deploy', f'{plan.name}_{precision.replace("-", "_")}{windowed}.onnx')


def run_export_stage(plan: RecipePlan) -> list[dict]:
    """Export and check every precision of ``recipe.export``; returns (and writes) one record per graph."""
    options = plan.export_options()
    height, width = options['height'], options['width']
    kinds = [(options['interval'] + options['lookahead'], options['interval'])]  # (frames, interval)
    if options['windowed_frames']:
        kinds.append((options['windowed_frames'], None))
    trt_reason = tensorrt_unavailable_reason() if options['tensorrt'] else 'recipe.export.tensorrt is false'
    if options['tensorrt'] and trt_reason and any(p in _TENSORRT_PRECISIONS for p in options['precisions']):
        print(f'recipe export: no TensorRT engines: {trt_reason} (recipe.export.tensorrt: false skips them without '
              'this note)', flush=True)
    records = []
    for precision, (frames, interval) in ((p, kind) for p in options['precisions'] for kind in kinds):
        source = plan.output('qat') if precision in INT8_PRECISIONS else plan.float_output()
        loaded = load_network(source.path, plan.shared.get('network_g'), source.param_key)
        path = onnx_path(plan, precision, None if interval else frames)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        spec = export_onnx(loaded.net, path, frames, height, width, dynamic=options['dynamic'], precision=precision,
                           conv_output_range=loaded.conv_output_range, interval=interval)
        extra = {} if options['min_int8_psnr'] is None else {'min_int8_psnr': options['min_int8_psnr']}
        checks = check_onnx(path, loaded.net, height, width, **extra)
        record = {'precision': precision, 'mode': 'stateful' if interval else 'windowed', 'checkpoint': source.path,
                  'onnx': path, 'graph': asdict(spec),
                  'checks': [asdict(c) for c in checks], 'tensorrt': None, 'openvino': None}
        if options['openvino'] and precision in OPENVINO_GRAPH_PRECISIONS:
            xml = os.path.splitext(path)[0] + '.xml'
            export_openvino(path, xml, options['openvino'])
            ov_checks = check_openvino(xml, loaded.net, height, width, **extra)
            record['openvino'] = {'xml': xml, 'inference_precision': options['openvino'],
                                  'checks': [{'inference_precision': c.inference_precision, **asdict(c.match)}
                                             for c in ov_checks]}
            print(f'recipe export: {xml} (OpenVINO IR of the {precision} graph, float layers in '
                  f'{options["openvino"]}); ' + ', '.join(f'{c.inference_precision} {c.match.psnr_db:.1f} dB'
                                                          for c in ov_checks), flush=True)
        if precision in _TENSORRT_PRECISIONS:
            if trt_reason:
                record['tensorrt'] = {'built': False, 'reason': trt_reason}
            else:
                engine = build_tensorrt_engine(path, os.path.splitext(path)[0] + '.engine')
                record['tensorrt'] = {'built': True, 'engine': engine}
        psnr = min(c.psnr_db for c in checks)
        print(f'recipe export: {path} ({precision}); ONNX Runtime vs PyTorch {psnr:.1f} dB', flush=True)
        records.append(record)
    summary = os.path.join(plan.folder, 'deploy', 'export.json')
    write_text(summary, json.dumps(records, indent=2, default=str))
    return records
