"""The recipe's report: dense vs pruned vs INT8 (and bicubic as the floor) on one Markdown page.

Quality is measured on the validation clips with the PyTorch networks (the INT8 row is the fake-quantized
network: what QAT trained, and what the ``int8-ort``/``int8-trt`` graphs were checked against in the export
stage); size, MACs and CPU latency come from ``vsrcompress.report``, timed the way each deploys.
"""
import json
import os
import tempfile

import matplotlib
import yaml

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from basicsr.data import build_dataset  # noqa: E402

from vsrcompress.checkpoint import load_network  # noqa: E402
from vsrcompress.inference import TorchBackend, make_backend, run_video_sr  # noqa: E402
from vsrcompress.export.openvino_module import OpenVINONetwork  # noqa: E402
from vsrcompress.metrics import BicubicUpsampler, clip_quality  # noqa: E402
from vsrcompress.recipe.plan import RecipePlan  # noqa: E402
from vsrcompress.report import ModelEntry, measure_complexity, write_complexity_report  # noqa: E402
from vsrcompress.report.complexity_table import BACKEND_LABELS  # noqa: E402
from vsrcompress.atomic_files import write_figure, write_text  # noqa: E402


def recipe_models(plan: RecipePlan) -> list[tuple[str, str, str]]:
    """(label, checkpoint, param key) of every network the recipe has: dense, pruned, INT8."""
    models = [('dense', plan.dense_input())]
    if 'prune' in plan.stages:
        models.append(('pruned', plan.output('prune')))
    if 'qat' in plan.stages:
        models.append(('pruned INT8' if 'prune' in plan.stages else 'INT8', plan.output('qat')))
    return [(label, out.path, out.param_key) for label, out in models]


def run_report_stage(plan: RecipePlan) -> str:
    """Measure every network of the recipe and write ``experiments/<name>/report/report.md``; return its path."""
    options = plan.report_options()
    folder = os.path.join(plan.folder, 'report')
    os.makedirs(folder, exist_ok=True)
    val_opt = dict(plan.shared['datasets']['val'], phase='val', scale=plan.shared['scale'])
    val_set = build_dataset(val_opt)
    quality = {'bicubic': clip_quality(BicubicUpsampler(plan.shared['scale']), val_set, options['val_clips'])}
    entries = []
    for label, path, param_key in recipe_models(plan):
        loaded = load_network(path, plan.shared.get('network_g'), param_key)
        quality[label] = clip_quality(loaded.net, val_set, options['val_clips'])
        entries.append(ModelEntry(label, checkpoint=path, param_key=param_key, network_opt=plan.shared.get('network_g'),
                                  psnr_db=quality[label]['psnr'], description=os.path.relpath(path, plan.root)))
    deployed = openvino_quality(plan, val_set, quality, options['val_clips'])
    streaming = streaming_rows(plan, folder) if options['streaming'] else []
    width, height = options['input_size']
    rows = measure_complexity(entries, width, height, frames=options['frames'], repeats=options['repeats'],
                              threads=options['threads'], memory=options['memory'])
    write_complexity_report(rows, os.path.join(folder, 'complexity'), command=f'recipe {plan.name}: report stage')
    plot_per_frame_psnr(quality, os.path.join(folder, 'per_frame_psnr.png'))
    page = os.path.join(folder, 'report.md')
    write_text(page, report_markdown(plan, rows, quality, width, height, deployed, streaming))
    write_text(os.path.join(folder, 'report.json'), json.dumps({'complexity': rows, 'quality': quality,
                                                                'openvino_quality': deployed, 'streaming': streaming},
                                                               indent=2, default=str))
    print(f'recipe report: {page}', flush=True)
    return page


def openvino_quality(plan: RecipePlan, val_set, quality: dict, max_clips: int | None) -> dict:
    """PSNR/SSIM of the compressed networks as OpenVINO runs them (``recipe.export.openvino`` precision; INT8 in
    the ``int8-trt`` placement), next to their PyTorch quality (INT8: fake-quantized); {} without OpenVINO export."""
    precision = plan.export_options()['openvino']
    if not precision:
        return {}
    deployed = {}
    for label, path, param_key in recipe_models(plan)[1:]:
        loaded = load_network(path, plan.shared.get('network_g'), param_key)
        engine = OpenVINONetwork(loaded.net, precision, 'int8-trt' if loaded.int8 else 'fp32')
        q = clip_quality(engine, val_set, max_clips)
        deployed[label] = {'inference_precision': precision, 'graph': 'int8-trt' if loaded.int8 else 'fp32',
                           'psnr': q['psnr'], 'ssim': q['ssim'],
                           'psnr_minus_pytorch': q['psnr'] - quality[label]['psnr']}
    return deployed


def streaming_rows(plan: RecipePlan, folder: str) -> list[dict]:
    """Delivered FPS and latency of the recipe's networks streaming the first validation clip through infer_video's
    pipeline (decode -> model -> encode): stateful at ``recipe.export``'s interval/lookahead, next to the windowed
    mode at the same interval with an overlap of the lookahead; PyTorch for every network, and the OpenVINO IRs the
    export stage wrote."""
    export = plan.export_options()
    interval, lookahead = export['interval'], export['lookahead']
    lq_root = plan.shared['datasets']['val']['dataroot_lq']
    lq_root = lq_root if os.path.isabs(lq_root) else os.path.join(plan.root, lq_root)
    source = os.path.join(lq_root, sorted(d for d in os.listdir(lq_root) if os.path.isdir(os.path.join(lq_root, d)))[0])
    runs = []
    for label, path, param_key in recipe_models(plan):
        net = load_network(path, plan.shared.get('network_g'), param_key).net
        engine = 'torch (fake-quantized)' if 'INT8' in label else 'torch fp32'
        runs += [(label, engine, TorchBackend(net), {'lookahead': lookahead}),
                 (label, engine, TorchBackend(net), {'overlap': lookahead})]
    records_path = os.path.join(plan.folder, 'deploy', 'export.json')
    records = json.load(open(records_path)) if 'export' in plan.stages and os.path.isfile(records_path) else []
    for record in records:
        if record.get('openvino'):
            mode = {'lookahead': lookahead} if record['mode'] == 'stateful' else {'overlap': lookahead}
            runs.append((f'{record["precision"]} {record["mode"]} graph', f'openvino {record["openvino"]["inference_precision"]}',
                         make_backend('openvino', openvino_path=record['openvino']['xml']), mode))
    rows = []
    with tempfile.TemporaryDirectory(prefix='.streaming_', dir=folder) as work:
        for k, (label, engine, backend, mode) in enumerate(runs):
            if 'overlap' in mode and not backend.windowed:
                continue
            report = run_video_sr(source, os.path.join(work, f'run{k}'), backend, interval, progress=False, **mode)
            rows.append({'model': label, 'engine': engine, 'mode': report['mode'], 'interval': interval,
                         'lookahead': mode.get('lookahead'), 'overlap': mode.get('overlap'),
                         'network_frames_per_output_frame': report['network_frames_per_output_frame'],
                         'fps': report['fps'], 'end_to_end_latency': report['end_to_end_latency'],
                         'latency_frames': report['latency_frames'], 'state_mib': report['state_mib'],
                         'frames': report['frames_out']})
    return rows


def plot_per_frame_psnr(quality: dict, path: str) -> None:
    """PSNR along the clip (mean over clips at each frame index): where the recurrence drifts, it shows here."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, result in quality.items():
        curves = [np.asarray(v['psnr']) for v in result['per_frame'].values()]
        length = min(len(c) for c in curves)
        ax.plot(np.arange(length), np.mean([c[:length] for c in curves], axis=0), marker='.', label=label)
    ax.set_xlabel('frame')
    ax.set_ylabel('PSNR (dB), mean over validation clips')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    write_figure(path, fig, dpi=120)


def report_markdown(plan: RecipePlan, rows: list[dict], quality: dict, width: int, height: int,
                    deployed: dict | None = None, streaming: list[dict] | None = None) -> str:
    clips = len(quality['bicubic']['per_frame'])
    lines = [f'# Compression report: {plan.name}', '',
             f'Stages: {", ".join(plan.stages)}. Quality on {clips} validation clip(s) of '
             f'`{plan.shared["datasets"]["val"].get("dataroot_lq")}` (PSNR/SSIM on RGB, BasicSR metrics); '
             f'complexity at {width}x{height} LR input (x{plan.shared["scale"]}).', '',
             '| model | params (M) | GMACs/frame | checkpoint (MB) | ONNX Runtime CPU ms/frame (graph) | peak MiB | '
             'OpenVINO CPU f32 ms/frame | OpenVINO CPU bf16 ms/frame | PyTorch CPU ms/frame | PSNR (dB) | SSIM |',
             '|---|---|---|---|---|---|---|---|---|---|---|',
             f'| bicubic | - | - | - | - | - | - | - | - | {quality["bicubic"]["psnr"]:.2f} | '
             f'{quality["bicubic"]["ssim"]:.4f} |']
    for row in rows:
        q, latency = quality[row['name']], row['latency_ms_per_frame']
        lines.append(f'| {row["name"]} | {row["params"] / 1e6:.3f} | {row["macs_per_frame"] / 1e9:.3f} | '
                     f'{_mb(row["checkpoint_bytes"])} | {_ms(latency.get("onnxruntime-cpu"))} '
                     f'({row["onnx_precision"]}) | {_ms(row["peak_memory_mib"].get("onnxruntime-cpu"))} | '
                     f'{_ms(latency.get("openvino-cpu-f32"))} | {_ms(latency.get("openvino-cpu-bf16"))} | '
                     f'{_ms(latency.get("torch-cpu"))} | {q["psnr"]:.2f} | {q["ssim"]:.4f} |')
    if deployed:
        lines += ['', '## Quality as deployed on OpenVINO', '',
                  'The same validation clips through the OpenVINO IR (whole clips, float layers in the precision of '
                  '`recipe.export.openvino`), against the PyTorch network (INT8: the fake-quantized network QAT '
                  'trained).', '', '| model | graph | OpenVINO precision | PSNR (dB) | vs PyTorch (dB) | SSIM |',
                  '|---|---|---|---|---|---|']
        lines += [f'| {label} | {d["graph"]} | {d["inference_precision"]} | {d["psnr"]:.3f} | '
                  f'{d["psnr_minus_pytorch"]:+.3f} | {d["ssim"]:.4f} |' for label, d in deployed.items()]
    if streaming:
        lines += ['', *_streaming_markdown(streaming)]
    lines += ['', *_what_the_rows_are(plan, rows), '',
              'Latency: one window of frames, models interleaved round-robin; OpenVINO runs the fp32 graph, or '
              'for INT8 the int8-trt graph (integer convolutions), with its float layers in f32 or bf16. Peak MiB: '
              'the working memory of one forward in ONNX Runtime on the CPU, measured in a separate process. '
              'Details and notes in [complexity.md](complexity.md).', '', '![complexity](complexity.png)', '',
              '## PSNR along the clip',
              '', '![per-frame PSNR](per_frame_psnr.png)', '']
    return '\n'.join(lines)


def _streaming_markdown(rows: list[dict]) -> list[str]:
    lines = ['## Streaming: delivered frames', '',
             f'The first validation clip ({rows[0]["frames"]} frames) through infer_video\'s pipeline (decode -> model '
             '-> encode, one thread each). Stateful: the forward state carried from call to call, `lookahead` frames '
             'for the backward branch; windowed: every call from zero state with `overlap` frames each side computed '
             'and thrown away. Network frames per delivered frame: backward branch / forward branch and tail.', '',
             '| model | engine | mode | interval | lookahead / overlap | network frames per delivered frame | '
             'delivered FPS | end-to-end latency p50 / p95 (ms) | frames waited p95 | state (MiB) |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        net, e2e = r['network_frames_per_output_frame'], r['end_to_end_latency']
        extra = r['lookahead'] if r['mode'] == 'stateful' else r['overlap']
        lines.append(f'| {r["model"]} | {r["engine"]} | {r["mode"]} | {r["interval"]} | {extra} | '
                     f'{net["backward"]:.2f} / {net["forward_and_tail"]:.2f} | {r["fps"]:.1f} | '
                     f'{e2e["p50_ms"]:.0f} / {e2e["p95_ms"]:.0f} | {r["latency_frames"]["p95"]:.0f} | '
                     f'{r["state_mib"]:.2f} |')
    return lines


def _flow(section: dict) -> str:
    return yaml.safe_dump(section, default_flow_style=True, width=10 ** 6).strip() if section else '{} (defaults)'


def _what_the_rows_are(plan: RecipePlan, rows: list[dict]) -> list[str]:
    """What "pruned" and "INT8" mean in this recipe, so the report reads without the docs."""
    lines = ['What the rows are:', '']
    macs = {row['name']: row['macs_per_frame'] for row in rows}
    if 'prune' in plan.stages:
        section = plan.stage_options('prune').get('pruning') or {}
        share = f'; {100 * macs["pruned"] / macs["dense"]:.0f} % of the dense MACs' if macs.get('dense') else ''
        tuned = 'with distillation from the dense network' if plan.stage_options('prune')['train'].get('distill_opt') \
            else 'on the footage alone (no distillation)'
        lines.append(f'- pruned: the `prune` stage, structured channel pruning with `pruning: {_flow(section)}`, then '
                     f'fine-tuned {tuned}{share}.')
    if 'qat' in plan.stages:
        section = plan.stage_options('qat').get('quantization') or {}
        skipped = section.get('skip_parts') or []
        kept = (f'{", ".join(skipped)} stay{"s" if len(skipped) == 1 else ""} float (not INT8)' if skipped
                else 'every quantizable convolution is INT8')
        lines.append(f'- INT8: the `qat` stage, INT8 quantization-aware training with '
                     f'`quantization: {_flow(section)}`; '
                     f'{kept}. Its PSNR is the fake-quantized network\'s (what QAT trained).')
    dense = macs.get('dense') or max(macs.values(), default=0)
    if dense and dense < 5e9:
        lines.append(f'- At {dense / 1e9:.2f} GMACs per frame this network is far smaller than full-size BasicVSR '
                     '(about 380 at 320x180): its latency is bound by per-layer overhead, not arithmetic, so what '
                     f'pruning and INT8 gain here{_int8_speedups(rows)} says little about full size. Full-size speed: '
                     'the CPU engine benchmark in the docs (docs/results.md).')
    return lines


def _int8_speedups(rows: list[dict]) -> str:
    """`` (INT8 speed-up over pruned FP32 as measured: <backend> 1.52x, ...)``: the table's numbers, no claim."""
    by_name = {row['name']: row for row in rows}
    int8, float_row = by_name.get('pruned INT8') or by_name.get('INT8'), by_name.get('pruned') or by_name.get('dense')
    if not (int8 and float_row):
        return ''
    ratios = [f'{BACKEND_LABELS[b]} {ms / int8["latency_ms_per_frame"][b]:.2f}x'
              for b, ms in float_row['latency_ms_per_frame'].items() if ms and int8['latency_ms_per_frame'].get(b)]
    return f' (INT8 speed-up over {float_row["name"]} FP32 as measured: {", ".join(ratios)})' if ratios else ''


def _mb(value) -> str:
    return '-' if value is None else f'{value / 2 ** 20:.2f}'


def _ms(value) -> str:
    return '-' if value is None else f'{value:.1f}'
