"""Speed of pruned BasicVSR/IconVSR: dense vs width-removal ratios vs a MAC budget, measured in one run.

For each architecture the dense network (random weights: speed does not depend on their values) and its pruned
variants (every part pruned: trunk, blocks, tail, SpyNet, IconVSR's EDVR; L1, uniform, round_to 8) are timed
interleaved (``vsrcompress.bench.timing``) with the same torch thread count, in each memory format asked for (NCHW
``contiguous`` and ``channels_last``, which spares oneDNN a layout reorder around every conv; speed-ups compare
within one format). MACs per frame are counted at the reference LR size whatever size is timed; the dense and the
last variant are also recounted with torch-pruning's counter as a check. Peak memory is measured in a fresh child
process per variant (``vsrcompress.bench.peak_memory``).
"""
import copy
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from vsrcompress.archs.basicvsr_net_arch import BasicVSRNet, IconVSRNet
from vsrcompress.bench.machine import load_average, machine_info, machine_line
from vsrcompress.bench.peak_memory import forward_peak, peak_memory_unavailable, run_in_children
from vsrcompress.bench.timing import time_interleaved
from vsrcompress.checkpoint import network_checkpoint, save_atomic
from vsrcompress.pruning import PRUNING_PARTS, count_complexity, prune_network

ARCHS = {'basicvsr': BasicVSRNet, 'iconvsr': IconVSRNet}
FORMATS = {'contiguous': torch.contiguous_format, 'channels_last': torch.channels_last}


@dataclass
class PruningSpeedConfig:
    """What ``run`` measures.

    Attributes:
        archs: Keys of ``ARCHS``.
        num_feat: Channels of the dense networks.
        num_block: Residual blocks per trunk.
        scale: 2 or 4.
        lq_size: LR (height, width) of the timed clip.
        mac_size: LR (height, width) at which MACs per frame are counted and the MAC budget applies.
        frames: Frames per timed clip (None: 2 for BasicVSR, 11 for IconVSR: keyframes 0, 5, 10).
        repeats: Timed interleaved rounds over all variants.
        warmup: Untimed rounds first.
        threads: torch intra-op threads.
        ratios: Width-removal variants: (label, {part: ratio}).
        mac_budget: MAC-budget variant (0: left out).
        formats: Memory formats to time (keys of ``FORMATS``).
        memory: Measure each variant's peak memory in a child process.
        memory_timeout: Seconds each memory child gets.
        save_checkpoints: Folder for every variant as a checkpoint (None: none written).
        quick: Recorded only (the caller chose the smaller sizes).
    """
    archs: tuple[str, ...] = ('basicvsr', 'iconvsr')
    num_feat: int = 64
    num_block: int = 30
    scale: int = 4
    lq_size: tuple[int, int] = (180, 320)
    mac_size: tuple[int, int] = (180, 320)
    frames: int | None = None
    repeats: int = 3
    warmup: int = 1
    threads: int = field(default_factory=torch.get_num_threads)
    ratios: list[tuple[str, dict]] = field(default_factory=lambda: [ratio_target(r) for r in ('0.25', '0.5', '0.75')])
    mac_budget: float = 0.25
    formats: tuple[str, ...] = tuple(FORMATS)
    memory: bool = True
    memory_timeout: float = 3600
    save_checkpoints: str | None = None
    quick: bool = False


def ratio_target(text: str) -> tuple[str, dict]:
    """``'0.5'`` or ``'0.5,edvr=0.75'`` -> (label, per-part ratios), every ratio in (0, 1); ValueError otherwise."""
    try:
        first, *overrides = text.split(',')
        ratios = {part: float(first) for part in PRUNING_PARTS}
        ratios.update({part: float(value) for part, value in (item.split('=') for item in overrides)})
    except ValueError:
        raise ValueError(f'{text!r}: expected R or R,PART=R,... (parts: {list(PRUNING_PARTS)})') from None
    if set(ratios) - set(PRUNING_PARTS) or not all(0 < r < 1 for r in ratios.values()):
        raise ValueError(f'{text!r}: ratios must be in (0, 1), parts in {list(PRUNING_PARTS)}')
    return ' '.join(['ratio', first, *overrides]).replace('=', ' '), ratios


def check(config: PruningSpeedConfig) -> None:
    """Raise ValueError naming the setting if ``config`` cannot run; before any work."""
    unknown = [a for a in config.archs if a not in ARCHS] + [f for f in config.formats if f not in FORMATS]
    if unknown or not config.archs or not config.formats:
        raise ValueError(f'archs/formats: {unknown or "none given"}; allowed: {sorted(ARCHS)}, {sorted(FORMATS)}')
    if config.repeats < 1 or config.threads < 1 or not 0 <= config.mac_budget <= 1:
        raise ValueError(f'repeats and threads must be >= 1 and mac_budget in [0, 1], got {config.repeats}, '
                         f'{config.threads}, {config.mac_budget}')
    if not config.ratios and not config.mac_budget:
        raise ValueError('ratios and mac_budget: give at least one pruned variant (a ratio or a budget > 0)')


def _arch_kwargs(config: PruningSpeedConfig) -> dict:
    return {'num_feat': config.num_feat, 'num_block': config.num_block, 'scale': config.scale}


def _build_variants(name: str, config: PruningSpeedConfig, log: Callable[[str], None]) -> list[dict]:
    """The dense network and its pruned copies, each with its pruning report."""
    torch.manual_seed(0)
    dense = ARCHS[name](**_arch_kwargs(config)).eval()
    common = {'criterion': 'l1', 'round_to': 8, 'min_width': 8, 'reference_size': list(config.mac_size)}
    targets = [(label, {'ratio': ratios}) for label, ratios in config.ratios]
    if config.mac_budget:
        targets.append((f'MACs <= {config.mac_budget:g}', {'mac_budget': config.mac_budget}))
    variants = []
    for label, target in targets:
        net = copy.deepcopy(dense)
        started = time.perf_counter()
        report = prune_network(net, {**common, **target})
        spec = net.width_spec()
        log(f'{name} {label}: pruned in {time.perf_counter() - started:.1f} s; hidden {spec["backward"]}/'
            f'{spec["forward"]}, upsample {spec["upsample"]}, hr {spec["hr"]}, '
            f'{100 * report["mac_fraction"]:.1f} % MACs')
        variants.append({'label': label, 'net': net, 'report': report})
    base = variants[0]['report']
    dense_report = {'widths_after': dense.width_spec(), 'params_after': base['params_before'],
                    'macs_per_frame_after': base['macs_per_frame_before'], 'mac_fraction': 1.0}
    return [{'label': 'dense', 'net': dense, 'report': dense_report}, *variants]


def _save_variants(name: str, variants: list[dict], config: PruningSpeedConfig, log: Callable[[str], None]) -> None:
    """Each variant as a deployable checkpoint: ``dense``, ``ratio0.5``, ``ratio0.5edvr0.75``, ``mac0.25``."""
    os.makedirs(config.save_checkpoints, exist_ok=True)
    arch = {'type': ARCHS[name].__name__, **_arch_kwargs(config)}
    for variant in variants:
        report = variant['report']
        slug = ('dense' if variant['label'] == 'dense' else variant['label'].replace(' ', '')
                if report['config'].get('ratio') else f"mac{report['config']['mac_budget']:g}")
        path = os.path.join(config.save_checkpoints, f'{name}_{slug}.pth')
        save_atomic(network_checkpoint(variant['net'], arch), path)
        log(f'  wrote {path}')


def _time_variants(variants: list[dict], clip: torch.Tensor, config: PruningSpeedConfig,
                   log: Callable[[str], None]) -> None:
    """Seconds per clip of each (variant, format), interleaved; median kept."""
    def forward(net: torch.nn.Module) -> None:
        with torch.inference_mode():
            net(clip)  # 5-D clip; channels_last weights make every conv output channels_last

    runners = {}
    for fmt in config.formats:  # one copy per format: no conversion inside the timed calls
        for v in variants:
            net = v['net'] if fmt == 'contiguous' else copy.deepcopy(v['net']).to(memory_format=FORMATS[fmt])
            runners[f'{v["label"]} | {fmt}'] = lambda net=net: forward(net)
    seconds = time_interleaved(runners, config.repeats, config.warmup, log)
    for variant in variants:
        variant['seconds'] = {fmt: seconds[f'{variant["label"]} | {fmt}'] for fmt in config.formats}
        variant['median_s'] = {fmt: statistics.median(s) for fmt, s in variant['seconds'].items()}


def _variant_forward(arch: str, kwargs: dict, widths: dict, state: dict, clip_shape: tuple, threads: int
                     ) -> Callable[[], object]:
    """In the measuring child: the variant rebuilt and its clip made, one forward left to run."""
    torch.set_num_threads(threads)
    net = ARCHS[arch](**kwargs, widths=widths).eval()
    net.load_state_dict(state)
    clip = torch.rand(*clip_shape)

    def run() -> None:
        with torch.inference_mode():
            net(clip)
    return run


def _measure_memory(arch: str, variants: list[dict], clip_shape: tuple, config: PruningSpeedConfig,
                    log: Callable[[str], None]) -> None:
    """Peak RSS of one forward per variant, one fresh child at a time; the reason where a child fails."""
    reason = peak_memory_unavailable()
    for variant in variants:
        if reason is None:
            job = (forward_peak, (_variant_forward, arch, _arch_kwargs(config), variant['net'].width_spec(),
                                  variant['net'].state_dict(), clip_shape, config.threads))
            result, why = run_in_children({'forward': job}, config.memory_timeout)['forward']
        else:
            result, why = None, reason
        variant.update(result or {'peak_rss_mib': None, 'forward_peak_mib': None, 'memory_note': why})
        if why:
            log(f'{arch} {variant["label"]}: peak memory unavailable: {why}')


def _summarize(arch: str, variants: list[dict], frames: int, checks: dict) -> dict:
    dense_s = variants[0]['median_s']
    rows = []
    for v in variants:
        report = v['report']
        rows.append({
            'variant': v['label'], 'widths': report['widths_after'], 'params': report['params_after'],
            'macs_per_frame': report['macs_per_frame_after'], 'mac_fraction': report['mac_fraction'],
            'seconds_per_clip': v['seconds'],
            'median_ms_per_frame': {f: 1000 * s / frames for f, s in v['median_s'].items()},
            'speedup': {f: dense_s[f] / s for f, s in v['median_s'].items()},
            'peak_rss_mib': v.get('peak_rss_mib'), 'forward_peak_mib': v.get('forward_peak_mib')})
        if v.get('memory_note'):
            rows[-1]['memory_note'] = v['memory_note']
    return {'arch': arch, 'frames': frames, 'rows': rows, 'tp_counter_check': checks}


def run(config: PruningSpeedConfig, log: Callable[[str], None] | None = print) -> dict:
    """Build, prune, time, count and measure every variant (see the module docstring); the JSON-ready result."""
    log = log or (lambda line: None)
    check(config)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    meta = {'machine': machine_info(config.threads), 'threads': config.threads,
            'lq_size': list(config.lq_size), 'mac_size': list(config.mac_size), 'scale': config.scale,
            'repeats': config.repeats, 'warmup': config.warmup, 'num_feat': config.num_feat,
            'num_block': config.num_block, 'quick': config.quick, 'formats': list(config.formats)}
    results = []
    try:
        for arch in config.archs:
            frames = config.frames or (2 if arch == 'basicvsr' else 11)
            variants = _build_variants(arch, config, log)
            if config.save_checkpoints:
                _save_variants(arch, variants, config, log)
            checks = {}
            for variant in (variants[0], variants[-1]):
                counted = count_complexity(variant['net'], tuple(config.mac_size))['macs_per_frame']
                checks[variant['label']] = {'counted': counted, 'reported': variant['report']['macs_per_frame_after']}
            clip = torch.rand(1, frames, 3, *config.lq_size)
            log(f'{arch}: timing {len(variants)} variants on {frames}x{config.lq_size[0]}x{config.lq_size[1]}')
            _time_variants(variants, clip, config, log)
            if config.memory:
                _measure_memory(arch, variants, tuple(clip.shape), config, log)
            results.append(_summarize(arch, variants, frames, checks))
            for row in results[-1]['rows']:
                log(f'  {row["variant"]:>14}: {row["macs_per_frame"] / 1e9:7.1f} GMACs/frame '
                    f'({100 * row["mac_fraction"]:5.1f} %), '
                    + ', '.join(f'{f} {row["median_ms_per_frame"][f]:.0f} ms/frame {row["speedup"][f]:.2f}x'
                                for f in config.formats))
    finally:
        torch.set_num_threads(old_threads)
    meta['machine']['load_average_after'] = load_average()
    return {'meta': meta, 'results': results}


def markdown(result: dict) -> str:
    """One table per arch: widths, params, MACs, ms per frame and speed-up per format, peak memory."""
    results, meta = result['results'], result['meta']
    lines = ['# Pruning speed benchmark', '',
             f'{machine_line(meta["machine"])} Timed clip '
             f'{meta["lq_size"][0]}x{meta["lq_size"][1]} LR, x{meta["scale"]}, {meta["repeats"]} timed repeats '
             f'(median, interleaved); MACs per frame at {meta["mac_size"][0]}x{meta["mac_size"][1]} LR. '
             f'Networks: {meta["num_feat"]} ch, {meta["num_block"]} blocks. Pruned: trunk, blocks, tail, SpyNet, '
             'EDVR (IconVSR) (L1, uniform, round_to 8).', '']
    formats = meta['formats']
    for arch in results:
        timing_heads = ''.join(f' ms/frame {f} | speed-up {f} |' for f in formats)
        lines += [f'## {arch["arch"]} ({arch["frames"]} frames per clip)', '',
                  '| variant | hidden (b/f) | tail (up, hr) | params (M) | GMACs/frame | MACs vs dense |'
                  + timing_heads + ' peak RSS (MiB) | forward peak (MiB) |',
                  '|---' * (8 + 2 * len(formats)) + '|']
        for r in arch['rows']:
            w = r['widths']
            mem = [f'{r[k]:.0f}' if r[k] is not None else '-' for k in ('peak_rss_mib', 'forward_peak_mib')]
            timing = ''.join(f' {r["median_ms_per_frame"][f]:.0f} | {r["speedup"][f]:.2f}x |' for f in formats)
            edvr = f', EDVR {w["edvr"]}' if 'edvr' in w else ''
            lines.append(f'| {r["variant"]} | {w["backward"]}/{w["forward"]}{edvr} | {w["upsample"]}, {w["hr"]} | '
                         f'{r["params"] / 1e6:.2f} | {r["macs_per_frame"] / 1e9:.1f} | '
                         f'{100 * r["mac_fraction"]:.1f} % |{timing} {mem[0]} | {mem[1]} |')
        notes = [f'{r["variant"]}: {r["memory_note"]}' for r in arch['rows'] if r.get('memory_note')]
        if notes:
            lines += ['', 'Peak memory unavailable: ' + '; '.join(notes)]
        check = arch['tp_counter_check']
        lines += ['', 'torch-pruning counter (meta device) vs engine report, GMACs/frame: '
                  + ', '.join(f'{k}: {v["counted"] / 1e9:.2f} vs {v["reported"] / 1e9:.2f}' for k, v in check.items()),
                  '']
    return '\n'.join(lines)


def plot(result: dict, path: str) -> None:
    """Latency against MAC fraction per (arch, format), and the speed-up of every variant against the 3x target."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    from vsrcompress.atomic_files import write_figure

    results, formats = result['results'], result['meta']['formats']
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    series = [(arch, fmt) for arch in results for fmt in formats]
    for arch, fmt in series:
        rows = sorted(arch['rows'], key=lambda r: r['mac_fraction'])
        axes[0].plot([100 * r['mac_fraction'] for r in rows], [r['median_ms_per_frame'][fmt] for r in rows], 'o-',
                     label=f'{arch["arch"]} {fmt}')
        for r in rows:
            axes[0].annotate(r['variant'], (100 * r['mac_fraction'], r['median_ms_per_frame'][fmt]), fontsize=7)
    axes[0].set_xlabel('MACs per frame, % of dense')
    axes[0].set_ylabel('CPU latency, ms per frame')
    axes[0].legend(fontsize=8)
    width = 0.8 / len(series)
    for i, (arch, fmt) in enumerate(series):
        rows = arch['rows']
        axes[1].bar([k + i * width for k in range(len(rows))], [r['speedup'][fmt] for r in rows], width,
                    label=f'{arch["arch"]} {fmt}')
        axes[1].set_xticks([k + width * (len(series) - 1) / 2 for k in range(len(rows))],
                           [r['variant'] for r in rows], rotation=20, fontsize=8)
    axes[1].axhline(3.0, color='gray', linestyle='--', linewidth=1, label='3x target')
    axes[1].set_ylabel('speed-up over dense (same run)')
    axes[1].legend()
    fig.tight_layout()
    write_figure(path, fig, dpi=120)
