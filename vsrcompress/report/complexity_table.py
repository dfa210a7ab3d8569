"""The model complexity report on disk: ``<prefix>.json`` (the rows as measured), ``<prefix>.md`` (a Markdown table
with the setup and the reasons for every missing number) and ``<prefix>.png`` (PSNR against MACs and latency where
PSNR is known, otherwise latency against MACs). Each file is written to a temporary name, then renamed.
"""
import json
import math
import os
from collections.abc import Callable, Sequence

from vsrcompress.atomic_files import write_figure, write_text
from vsrcompress.bench.machine import machine_line

BACKEND_LABELS = {'onnxruntime-cpu': 'ONNX Runtime CPU', 'openvino-cpu-f32': 'OpenVINO CPU f32',
                  'openvino-cpu-bf16': 'OpenVINO CPU bf16', 'torch-cpu': 'PyTorch CPU FP32',
                  'torch-cuda': 'PyTorch CUDA FP32'}
_MARKERS = {'onnxruntime-cpu': 'o', 'openvino-cpu-f32': 'D', 'openvino-cpu-bf16': 'd', 'torch-cpu': 's',
            'torch-cuda': '^'}
METHOD = ('Params and MACs per frame: torch-pruning\'s counter at the input size, steady state of a long video '
          '(INT8: the float network it dequantizes to). Latency: the inference backends on uint8 frames, ONNX Runtime '
          'on an exported graph (`fp32`, or `int8-ort` integer kernels for INT8), OpenVINO on the fp32 graph (INT8: '
          'the `int8-trt` graph, integer convolutions) with its float layers in `f32` or `bf16`, all models and '
          'backends '
          'interleaved round-robin; ms per frame = median window time / frames. Peak memory: the rise of the RSS '
          'high-water mark during one forward, in a fresh process per model and backend.')


def _ms(value: float | None) -> str:
    if value is None:
        return '-'
    return f'{value:.2f}' if value < 10 else f'{value:.1f}' if value < 100 else f'{value:.0f}'


def significant(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits and no exponent (377, 12.3, 0.0812): toy and full-size networks
    differ by four orders of magnitude, and a fixed number of decimals shows two pruned toys as the same 0.1."""
    if value == 0 or not math.isfinite(value):
        return f'{value:g}'
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f'{value:.{decimals}f}'


def _setup_line(setup: dict) -> str:
    return (f"LR input {setup['width']}x{setup['height']} (W x H), windows of {setup['frames']} frames; rounds: "
            f"{setup['warmup']} warm-up, {setup['repeats']} timed; ONNX graphs "
            f"{'with dynamic height and width' if setup['dynamic_graph'] else 'exported at the input size'}. "
            + machine_line(setup['machine']))


def complexity_markdown(rows: Sequence[dict], command: str | None = None) -> str:
    """The rows of ``measure_complexity`` as a Markdown section: setup, one table row per model, notes."""
    backends = list(dict.fromkeys(b for r in rows for b in r['latency_ms_per_frame']))
    memory = list(dict.fromkeys(b for r in rows for b in (*r['peak_memory_mib'], *r['memory_notes'])))
    psnr = any(r['psnr_db'] is not None for r in rows)
    heads = ['model', 'network', 'params (M)', 'GMACs/frame', 'checkpoint (MB)']
    heads += ['ORT graph'] * ('onnxruntime-cpu' in backends)
    heads += [f'{BACKEND_LABELS[b]} ms/frame' for b in backends]
    heads += [f'{BACKEND_LABELS[b]} peak MiB' for b in memory] + ['PSNR (dB)'] * psnr
    lines = ['# Model complexity', '']
    if command:
        lines += [f'Command: `{command}`', '']
    lines += [_setup_line(s) for s in {json.dumps(r['setup'], sort_keys=True): r['setup'] for r in rows}.values()]
    lines += ['', METHOD, '', '| ' + ' | '.join(heads) + ' |', '|' + '---|' * len(heads)]
    for r in rows:
        size = r['checkpoint_bytes']
        cells = [f"`{r['name']}`", r['arch'] + (' INT8' if r['int8'] else ''), significant(r['params'] / 1e6),
                 significant(r['macs_per_frame'] / 1e9), '-' if size is None else significant(size / 1e6)]
        cells += [r['onnx_precision'] or '-'] * ('onnxruntime-cpu' in backends)
        cells += [_ms(r['latency_ms_per_frame'].get(b)) for b in backends]
        cells += [_ms(r['peak_memory_mib'].get(b)) for b in memory]
        cells += ['-' if r['psnr_db'] is None else f"{r['psnr_db']:.2f}"] * psnr
        lines.append('| ' + ' | '.join(cells) + ' |')
    notes = {}
    for r in rows:
        for kind, table in (('latency', r['latency_notes']), ('peak memory', r['memory_notes'])):
            for backend, reason in table.items():
                notes.setdefault((BACKEND_LABELS[backend], kind, reason), []).append(f"`{r['name']}`")
    if not any(r['setup']['memory'] for r in rows):
        notes[('all backends', 'peak memory', 'not measured (memory measurement was switched off)')] = ['all models']
    if notes:
        lines += ['', 'Not measured:', '']
        lines += [f'- {label} {kind} ({", ".join(names)}): {reason}.' for (label, kind, reason), names in notes.items()]
    return '\n'.join(lines) + '\n'


def plot_complexity(rows: Sequence[dict], path: str) -> None:
    """Write ``complexity_figure(rows)`` as a PNG to ``path``."""
    write_figure(path, complexity_figure(rows), dpi=120)


def complexity_figure(rows: Sequence[dict]):
    """PSNR vs GMACs/frame and PSNR vs latency where PSNR is known for some model; else latency vs GMACs/frame.

    Colour is the model in every panel (one legend), marker the backend (a second legend); points carry no text
    labels, which overlapped where models or backends lie close together.
    """
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    colours = {r['name']: f'C{i % 10}' for i, r in enumerate(rows)}
    with_psnr = [r for r in rows if r['psnr_db'] is not None]
    backends = list(dict.fromkeys(b for r in rows for b, v in r['latency_ms_per_frame'].items() if v is not None))
    fig, axes = plt.subplots(1, 2 if with_psnr else 1, figsize=(12 if with_psnr else 7, 4.8), squeeze=False)
    axes = axes[0]
    if with_psnr:
        ax = axes[0]
        for r in with_psnr:
            ax.scatter(r['macs_per_frame'] / 1e9, r['psnr_db'], color=colours[r['name']], label=r['name'])
        ax.legend(fontsize=8, title='model', title_fontsize=8)
        ax.set(xlabel='GMACs per frame', ylabel='PSNR (dB)', title='PSNR vs MACs')
        _latency_scatter(axes[1], with_psnr, backends, colours, lambda r: r['psnr_db'], 'PSNR (dB)',
                         'PSNR vs latency')
    else:
        _latency_scatter(axes[0], rows, backends, colours, lambda r: r['macs_per_frame'] / 1e9, 'GMACs per frame',
                         'MACs vs latency')
    setup = rows[0]['setup']
    fig.suptitle(f"LR {setup['width']}x{setup['height']}, windows of {setup['frames']} frames, "
                 f"threads: {setup['threads']}", fontsize=9)
    fig.tight_layout()
    return fig


def _latency_scatter(ax, rows: Sequence[dict], backends: list[str], colours: dict[str, str],
                     y: Callable[[dict], float], ylabel: str, title: str) -> None:
    from matplotlib.lines import Line2D

    shown_models, shown_backends = [], []
    for backend in backends:
        for r in rows:
            latency = r['latency_ms_per_frame'].get(backend)
            if latency is None:
                continue
            ax.scatter(latency, y(r), marker=_MARKERS[backend], color=colours[r['name']])
            shown_models += [r['name']] * (r['name'] not in shown_models)
            shown_backends += [backend] * (backend not in shown_backends)
    if shown_models:
        models = ax.legend(handles=[Line2D([], [], marker='o', linestyle='', color=colours[n], label=n)
                                    for n in shown_models], fontsize=8, title='model', title_fontsize=8,
                           loc='upper left')
        ax.add_artist(models)
        ax.legend(handles=[Line2D([], [], marker=_MARKERS[b], linestyle='', color='0.4', label=BACKEND_LABELS[b])
                           for b in shown_backends], fontsize=8, title='backend', title_fontsize=8,
                  loc='lower right')
    else:
        ax.text(0.5, 0.5, 'no latency measured', ha='center', va='center', transform=ax.transAxes)
    ax.set(xlabel='latency, ms per frame', ylabel=ylabel, title=title)


def write_complexity_report(rows: Sequence[dict], prefix: str, command: str | None = None) -> dict[str, str]:
    """Write ``<prefix>.json``, ``<prefix>.md`` and ``<prefix>.png`` from ``measure_complexity`` rows.

    Args:
        rows: The rows, one per model.
        prefix: Output path without extension; its folder is created.
        command: The command line that produced the rows, recorded in the JSON and the Markdown.

    Returns:
        ``{'json': path, 'md': path, 'png': path}``.
    """
    if not rows:
        raise ValueError('write_complexity_report: no rows to write')
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    paths = {ext: f'{prefix}.{ext}' for ext in ('json', 'md', 'png')}
    write_text(paths['json'], json.dumps({'command': command, 'models': list(rows)}, indent=2) + '\n')
    write_text(paths['md'], complexity_markdown(rows, command))
    plot_complexity(rows, paths['png'])
    return paths
