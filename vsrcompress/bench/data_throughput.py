"""Throughput of the footage data path on the demo footage: is data preparation or loading a bottleneck?

Measures (1) prepare_footage in frames/s on the demo GT frames, as a frame folder and as an mp4, clean and with
each degradation, with and without LMDB; (2) the FootageRecurrentDataset loader in samples/s with the workers of
the option files (disk and LMDB; the demo window and the fine-tune window of 15 frames); (3) for comparison,
training samples/s of the demo network on this machine. The load average is recorded: on a shared machine every
number is a lower bound.
"""
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import torch
import yaml

from vsrcompress.bench.machine import load_average, machine_info, machine_line
from vsrcompress.footage import DegradationConfig, layout, make_demo_footage, prepare_footage
from vsrcompress.inference.frame_sink import FrameSink

OPTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'options')


@dataclass
class DataThroughputConfig:
    """What ``run`` measures.

    Attributes:
        frames: Frames per demo clip (>= the fine-tune window's ``num_frame``, 15).
        batches: Loader batches timed per case.
        train_iters: Training steps timed.
        train_clips: Demo training clips made (their GT frames are the prepare_footage input).
        val_clips: Demo validation clips made.
        gt_size: GT (height, width) of the demo frames.
        workers: Loader workers of every case (None: those of the option files).
        command: The command line, for the record.
    """
    frames: int = 20
    batches: int = 20
    train_iters: int = 3
    train_clips: int = 6
    val_clips: int = 2
    gt_size: tuple[int, int] = (256, 384)
    workers: int | None = None
    command: str = ''


def _load_options(name: str) -> dict:
    with open(os.path.join(OPTIONS, name)) as f:
        return yaml.safe_load(f)


def _frames_to_inputs(demo: str, work: str) -> tuple[str, str, int]:
    """The demo's training GT frames as one frame folder and one mp4 (the inputs a user would have)."""
    folder = os.path.join(work, 'frames')
    os.makedirs(folder)
    paths = []
    for clip in layout.read_meta_info(layout.meta_info_path(demo, 'train')):
        paths += [layout.frame_path(layout.split_dir(demo, 'train', layout.GT_DIR), clip.name, i)
                  for i in range(clip.num_frames)]
    first = cv2.imread(paths[0])
    video = FrameSink(os.path.join(work, 'footage.mp4'), 25, first.shape[1], first.shape[0])
    for i, path in enumerate(paths):
        shutil.copy(path, os.path.join(folder, f'{i:06d}.png'))
        video.write(cv2.imread(path))
    return folder, video.finish(), len(paths)


def _time_prepare(out: str, name: str, inputs: list[str], num_frames: int, **kwargs) -> dict:
    start = time.perf_counter()
    prepare_footage(inputs, out, progress=False, overwrite=True, **kwargs)
    seconds = time.perf_counter() - start
    return {'case': name, 'frames': num_frames, 'seconds': round(seconds, 3),
            'frames_per_s': round(num_frames / seconds, 1)}


def _time_loader(dataset_opt: dict, batches: int) -> dict:
    from basicsr.data import build_dataloader, build_dataset
    dataset = build_dataset(dataset_opt)
    loader = build_dataloader(dataset, dataset_opt, num_gpu=0, dist=False, seed=0)
    iterator = iter(loader)
    next(iterator)  # worker start-up is paid once per epoch, not per sample
    count, start = 0, time.perf_counter()
    for _ in range(batches):
        try:
            batch = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            batch = next(iterator)
        count += batch['lq'].shape[0]
    seconds = time.perf_counter() - start
    return {'samples': count, 'seconds': round(seconds, 3), 'samples_per_s': round(count / seconds, 2),
            'workers': dataset_opt['num_worker_per_gpu'], 'batch': dataset_opt['batch_size_per_gpu'],
            'num_frame': dataset_opt['num_frame'], 'gt_size': dataset_opt['gt_size']}


def _time_training(opt: dict, dataset_opt: dict, iterations: int) -> dict:
    """Samples/s of the demo network's training step (forward, backward, Adam) on random data of the demo shape."""
    from basicsr.archs import build_network
    net = build_network(dict(opt['network_g']))
    optim = torch.optim.Adam(net.parameters(), 1e-4)
    b, t, size = dataset_opt['batch_size_per_gpu'], dataset_opt['num_frame'], dataset_opt['gt_size']
    lq, gt = torch.rand(b, t, 3, size // opt['scale'], size // opt['scale']), torch.rand(b, t, 3, size, size)
    for it in range(iterations + 1):
        if it == 1:
            start = time.perf_counter()  # the first step allocates; not counted
        loss = (net(lq) - gt).abs().mean()
        optim.zero_grad()
        loss.backward()
        optim.step()
    seconds = time.perf_counter() - start
    return {'samples': b * iterations, 'seconds': round(seconds, 3),
            'samples_per_s': round(b * iterations / seconds, 2), 'torch_threads': torch.get_num_threads()}


def markdown(result: dict) -> str:
    """prepare_footage frames/s per case; loader and training samples/s."""
    lines = ['# Footage data throughput', '', f"Command: `{result['command']}`. {machine_line(result['machine'])}", '',
             '| prepare_footage case | frames | s | frames/s |', '|---|---:|---:|---:|']
    lines += [f"| {r['case']} | {r['frames']} | {r['seconds']} | {r['frames_per_s']} |" for r in result['prepare']]
    lines += ['', '| data loader / training | workers | batch | frames x GT crop | samples/s |',
              '|---|---:|---:|---|---:|']
    for name, r in result['loader'].items():
        lines.append(f"| loader: {name} | {r['workers']} | {r['batch']} | {r['num_frame']} x {r['gt_size']} | "
                     f"{r['samples_per_s']} |")
    t = result['training']
    lines.append(f"| training step of the demo network | - | {t['batch']} | {t['num_frame']} x {t['gt_size']} | "
                 f"{t['samples_per_s']} |")
    return '\n'.join(lines) + '\n'


def plot(result: dict, path: str) -> None:
    """prepare_footage frames/s per case; loader and training samples/s (log scale)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from vsrcompress.atomic_files import write_figure

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    prep = result['prepare']
    ax1.barh([r['case'] for r in prep], [r['frames_per_s'] for r in prep])
    ax1.set_xlabel('prepare_footage frames/s')
    names = [f'loader: {n}' for n in result['loader']] + ['training step (demo net)']
    values = [r['samples_per_s'] for r in result['loader'].values()] + [result['training']['samples_per_s']]
    ax2.barh(names, values)
    ax2.set_xscale('log')
    ax2.set_xlabel('samples/s (log)')
    fig.tight_layout()
    write_figure(path, fig, dpi=100)




def check(config: DataThroughputConfig) -> None:
    """Raise ValueError naming the setting if ``config`` cannot run; before any work."""
    if config.frames < 15 or min(config.batches, config.train_iters, config.train_clips) < 1 or \
            (config.workers is not None and config.workers < 0):
        raise ValueError(f'frames >= 15 (the fine-tune window), batches, train_iters, train_clips >= 1 and workers '
                         f'>= 0 required, got frames {config.frames}, batches {config.batches}, train_iters '
                         f'{config.train_iters}, train_clips {config.train_clips}, workers {config.workers}')


def run(config: DataThroughputConfig, log: Callable[[str], None] | None = print) -> dict:
    """Make the demo footage, time prepare_footage, the loaders and training steps; the JSON-ready result."""
    log = log or (lambda line: None)
    check(config)
    demo_opt = _load_options('demo/train_basicvsr_demo.yml')
    finetune_opt = _load_options('finetune_basicvsr_footage.yml')
    result = {'machine': machine_info(torch.get_num_threads()), 'command': config.command, 'prepare': [],
              'loader': {}}
    work = tempfile.mkdtemp(prefix='bench_footage_')
    try:
        demo = os.path.join(work, 'demo')
        start = time.perf_counter()
        record = make_demo_footage(demo, train_clips=config.train_clips, val_clips=config.val_clips,
                                   num_frames=config.frames, gt_height=config.gt_size[0], gt_width=config.gt_size[1],
                                   progress=False)
        seconds = time.perf_counter() - start
        n_demo = sum(clip['frames'] for clip in record['clips'].values())
        result['prepare'].append({'case': 'make_demo_footage (render + write)', 'frames': n_demo,
                                  'seconds': round(seconds, 3), 'frames_per_s': round(n_demo / seconds, 1)})
        folder, video, n = _frames_to_inputs(demo, work)
        common = {'clip_length': config.frames, 'val_ratio': 0.0}
        cases = [('frame folder, clean', [folder], {}),
                 ('mp4, clean', [video], {}),
                 ('frame folder, clean, +LMDB', [folder], {'lmdb': True}),
                 ('frame folder, blur+noise+JPEG', [folder],
                  {'degradation': DegradationConfig(blur_sigma=(0.5, 1.5), noise_sigma=(1, 5), jpeg_quality=(40, 90))}),
                 ('frame folder, mp4v codec', [folder], {'degradation': DegradationConfig(video_codec='mp4v')})]
        lmdb_data = os.path.join(work, 'lmdb_demo')  # the LMDB case's output, kept for the loaders
        for name, inputs, extra in cases:
            out = lmdb_data if extra.get('lmdb') else os.path.join(work, 'prepared')
            result['prepare'].append(_time_prepare(out, name, inputs, n, **common, **extra))
            if out != lmdb_data:
                shutil.rmtree(out)
            log(f'prepare_footage {name}: {result["prepare"][-1]["frames_per_s"]} frames/s')
        train = dict(demo_opt['datasets']['train'], phase='train', scale=demo_opt['scale'])
        roots = {'disk': (f'{demo}/train/GT', f'{demo}/train/LQ', f'{demo}/meta_info_train.txt'),
                 'lmdb': (f'{lmdb_data}/train/GT.lmdb', f'{lmdb_data}/train/LQ.lmdb',
                          f'{lmdb_data}/meta_info_train.txt')}
        finetune = finetune_opt['datasets']['train']
        workers = {} if config.workers is None else {'num_worker_per_gpu': config.workers}
        for backend, (gt, lq, meta) in roots.items():
            base = dict(train, dataroot_gt=gt, dataroot_lq=lq, meta_info_file=meta, io_backend={'type': backend},
                        **workers)
            result['loader'][f'demo options, {backend}'] = _time_loader(base, config.batches)
            window = dict(base, num_frame=finetune['num_frame'], gt_size=finetune['gt_size'],
                          batch_size_per_gpu=finetune['batch_size_per_gpu'],
                          **{'num_worker_per_gpu': finetune['num_worker_per_gpu'], **workers})
            result['loader'][f'fine-tune window, {backend}'] = _time_loader(window, config.batches)
            log(f'loaders on {backend} timed')
        result['training'] = dict(_time_training(demo_opt, train, config.train_iters),
                                  batch=train['batch_size_per_gpu'], num_frame=train['num_frame'],
                                  gt_size=train['gt_size'])
    finally:
        shutil.rmtree(work)
    result['machine']['load_average_after'] = load_average()
    return result
