#!/usr/bin/env python
"""Throughput of the footage data path on the demo footage: is data preparation or loading a bottleneck?

    python scripts/benchmark_data.py            # results/benchmarks/data_throughput.{json,md,png}

Measures (1) prepare_footage in frames/s on the demo GT frames, as a frame folder and as an mp4, clean and with
each degradation, with and without LMDB; (2) the FootageRecurrentDataset loader in samples/s with the workers
of the option files (disk and LMDB; the demo window and the fine-tune window of 15 frames); (3) for comparison,
training samples/s of the demo network on this machine. The load average is recorded: on a shared machine
every number is a lower bound.
"""
import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a clean checkout

import cv2  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from vsrcompress.footage import DegradationConfig, make_demo_footage, prepare_footage  # noqa: E402
from vsrcompress.footage import layout  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_options(name: str) -> dict:
    with open(os.path.join(REPO, 'options', name)) as f:
        return yaml.safe_load(f)


def frames_to_inputs(demo: str, work: str) -> tuple[str, str, int]:
    """The demo's training GT frames as one frame folder and one mp4 (the inputs a user would have)."""
    folder = os.path.join(work, 'frames')
    os.makedirs(folder)
    paths = []
    for clip in layout.read_meta_info(layout.meta_info_path(demo, 'train')):
        paths += [layout.frame_path(layout.split_dir(demo, 'train', layout.GT_DIR), clip.name, i)
                  for i in range(clip.num_frames)]
    first = cv2.imread(paths[0])
    video = os.path.join(work, 'footage.mp4')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'mp4v'), 25, (first.shape[1], first.shape[0]))
    for i, path in enumerate(paths):
        shutil.copy(path, os.path.join(folder, f'{i:06d}.png'))
        writer.write(cv2.imread(path))
    writer.release()
    return folder, video, len(paths)


def time_prepare(work: str, name: str, inputs: list[str], num_frames: int, **kwargs) -> dict:
    out = os.path.join(work, 'prepared')
    start = time.perf_counter()
    prepare_footage(inputs, out, progress=False, overwrite=True, **kwargs)
    seconds = time.perf_counter() - start
    shutil.rmtree(out)
    return {'case': name, 'frames': num_frames, 'seconds': round(seconds, 3),
            'frames_per_s': round(num_frames / seconds, 1)}


def time_loader(dataset_opt: dict, batches: int, num_gpu: int = 0) -> dict:
    from basicsr.data import build_dataloader, build_dataset
    dataset = build_dataset(dataset_opt)
    loader = build_dataloader(dataset, dataset_opt, num_gpu=num_gpu, dist=False, seed=0)
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


def time_training(opt: dict, dataset_opt: dict, iterations: int) -> dict:
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
    lines = [f"# Footage data throughput ({result['machine']})", '',
             f"Load average at start: {result['load_average']} on {result['cpu_count']} CPUs. Command: "
             f"`{result['command']}`", '', '| prepare_footage case | frames | s | frames/s |', '|---|---:|---:|---:|']
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
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
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
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--output-dir', default=os.path.join(REPO, 'results', 'benchmarks'))
    parser.add_argument('--frames', type=int, default=20, help='frames per demo clip (>= 15 for the fine-tune window)')
    parser.add_argument('--batches', type=int, default=20, help='loader batches timed per case (default: 20)')
    parser.add_argument('--train-iters', type=int, default=3, help='training steps timed (default: 3)')
    args = parser.parse_args(argv)

    demo_opt, finetune_opt = load_options('demo/train_basicvsr_demo.yml'), load_options('finetune_basicvsr_footage.yml')
    result = {'machine': f'{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch '
                         f'{torch.__version__}', 'cpu_count': os.cpu_count(),
              'load_average': [round(v, 2) for v in os.getloadavg()], 'command': ' '.join(['python'] + sys.argv),
              'prepare': [], 'loader': {}}
    work = tempfile.mkdtemp(prefix='bench_footage_')
    try:
        demo = os.path.join(work, 'demo')
        start = time.perf_counter()
        record = make_demo_footage(demo, num_frames=args.frames, progress=False)
        seconds = time.perf_counter() - start
        n_demo = sum(clip['frames'] for clip in record['clips'].values())
        result['prepare'].append({'case': 'make_demo_footage (render + write)', 'frames': n_demo,
                                  'seconds': round(seconds, 3), 'frames_per_s': round(n_demo / seconds, 1)})
        folder, video, n = frames_to_inputs(demo, work)
        common = {'clip_length': args.frames, 'val_ratio': 0.0}
        cases = [('frame folder, clean', [folder], {}),
                 ('mp4, clean', [video], {}),
                 ('frame folder, clean, +LMDB', [folder], {'lmdb': True}),
                 ('frame folder, blur+noise+JPEG', [folder],
                  {'degradation': DegradationConfig(blur_sigma=(0.5, 1.5), noise_sigma=(1, 5), jpeg_quality=(40, 90))}),
                 ('frame folder, mp4v codec', [folder], {'degradation': DegradationConfig(video_codec='mp4v')})]
        for name, inputs, extra in cases:
            result['prepare'].append(time_prepare(work, name, inputs, n, **common, **extra))

        lmdb_data = os.path.join(work, 'lmdb_demo')
        prepare_footage([folder], lmdb_data, clip_length=args.frames, val_ratio=0.0, lmdb=True, progress=False)
        train = dict(demo_opt['datasets']['train'], phase='train', scale=demo_opt['scale'])
        roots = {'disk': (f'{demo}/train/GT', f'{demo}/train/LQ', f'{demo}/meta_info_train.txt'),
                 'lmdb': (f'{lmdb_data}/train/GT.lmdb', f'{lmdb_data}/train/LQ.lmdb',
                          f'{lmdb_data}/meta_info_train.txt')}
        finetune = finetune_opt['datasets']['train']
        for backend, (gt, lq, meta) in roots.items():
            base = dict(train, dataroot_gt=gt, dataroot_lq=lq, meta_info_file=meta, io_backend={'type': backend})
            result['loader'][f'demo options, {backend}'] = time_loader(base, args.batches)
            window = dict(base, num_frame=finetune['num_frame'], gt_size=finetune['gt_size'],
                          batch_size_per_gpu=finetune['batch_size_per_gpu'],
                          num_worker_per_gpu=finetune['num_worker_per_gpu'])
            result['loader'][f'fine-tune window, {backend}'] = time_loader(window, args.batches)
        result['training'] = dict(time_training(demo_opt, train, args.train_iters), batch=train['batch_size_per_gpu'],
                                  num_frame=train['num_frame'], gt_size=train['gt_size'])
    finally:
        shutil.rmtree(work)

    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, 'data_throughput.json'), 'w') as f:
        json.dump(result, f, indent=2)
    text = markdown(result)
    with open(os.path.join(args.output_dir, 'data_throughput.md'), 'w') as f:
        f.write(text)
    plot(result, os.path.join(args.output_dir, 'data_throughput.png'))
    print(text)
    return result


if __name__ == '__main__':
    main()
