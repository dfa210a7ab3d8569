"""Custom footage: prepare_footage (video files, frame folders), degradations, demo footage, footage datasets."""
import copy
import json
import os
import random

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.data import build_dataloader, build_dataset
from basicsr.models import build_model
from basicsr.utils.matlab_functions import imresize
from conftest import REPO, as_parsed, moving_frames, script_main, write_folder, write_video

from vsrcompress.footage import DegradationConfig, make_demo_footage, prepare_footage
from vsrcompress.footage import layout


def dataset_opt(root: str, split: str = 'train', lmdb: bool = False, **extra) -> dict:
    suffix = layout.LMDB_SUFFIX if lmdb else ''
    opt = {'name': f'{split}_set', 'type': 'FootageRecurrentDataset' if split == 'train' else 'FootageTestDataset',
           'dataroot_gt': f'{root}/{split}/GT{suffix}', 'dataroot_lq': f'{root}/{split}/LQ{suffix}',
           'meta_info_file': f'{root}/meta_info_{split}.txt', 'io_backend': {'type': 'lmdb' if lmdb else 'disk'},
           'scale': 4, 'phase': split}
    opt.update(extra)
    return opt


def read(path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


# ---------------------------------------------------------------------------------------------- prepare_footage
def test_video_file_gives_clips_meta_info_and_an_lmdb_the_dataset_reads(tmp_path):
    video = write_video(tmp_path / 'cam.mp4', moving_frames(25, 274, 290))  # mod-crop to 272x288
    out = str(tmp_path / 'data')
    record = prepare_footage([video], out, scale=4, clip_length=10, val_ratio=0.5, lmdb=True, progress=False)

    assert record['dropped_frames'] == {video: 5}  # 25 frames = 2 clips of 10 + 5 left over
    assert len(record['splits']['train']) == 1 and len(record['splits']['val']) == 1
    for split in layout.SPLITS:
        clips = layout.read_meta_info(layout.meta_info_path(out, split))
        assert [(c.num_frames, c.gt_shape) for c in clips] == [(10, (272, 288, 3))]
        name = clips[0].name
        assert len(os.listdir(f'{out}/{split}/GT/{name}')) == len(os.listdir(f'{out}/{split}/LQ/{name}')) == 10
        assert read(f'{out}/{split}/GT/{name}/00000009.png').shape == (272, 288, 3)
        assert read(f'{out}/{split}/LQ/{name}/00000009.png').shape == (68, 72, 3)
    assert sorted(record['clips']) == ['cam_000000', 'cam_000010']
    with open(os.path.join(out, layout.RECORD_FILE)) as f:
        assert json.load(f)['clips']['cam_000010']['source'] == {'input': video, 'first_frame': 10, 'last_frame': 19,
                                                                 'stride': 1}

    opts = {'num_frame': 4, 'gt_size': 256, 'interval_list': [1, 2], 'use_hflip': True, 'use_rot': True}
    disk = build_dataset(dataset_opt(out, **opts))
    lmdb = build_dataset(dataset_opt(out, lmdb=True, **opts))
    assert len(disk) == len(lmdb) == 7
    for index in (0, 6):
        random.seed(index)
        a = disk[index]
        random.seed(index)
        b = lmdb[index]
        assert a['key'] == b['key'] and torch.equal(a['lq'], b['lq']) and torch.equal(a['gt'], b['gt'])
        assert a['lq'].shape == (4, 3, 64, 64) and a['gt'].shape == (4, 3, 256, 256)
    val = build_dataset(dataset_opt(out, 'val', lmdb=True))
    assert val[0]['lq'].shape == (10, 3, 68, 72) and val[0]['gt'].shape == (10, 3, 272, 288)


def test_frame_folder_through_the_cli_with_crop_resize_stride_and_val_inputs(tmp_path, capsys):
    folder = write_folder(tmp_path / 'cam_a', moving_frames(12, 200, 300))
    video = write_video(tmp_path / 'cam_b.avi', moving_frames(8, 200, 300))
    out = str(tmp_path / 'data')
    cli = script_main('prepare_footage')
    assert cli(['--input', folder, video, '--output', out, '--scale', '2', '--clip-length', '3',
                '--stride', '2', '--crop', '10', '20', '280', '150', '--resize', '0', '140',
                '--val-inputs', video, '--seed', '3', '--quiet']) == 0
    record = json.loads(open(os.path.join(out, layout.RECORD_FILE)).read())
    captured = capsys.readouterr()
    assert 'wrote' in captured.out and captured.err == ''  # --quiet: no progress bars
    # folder: frames 0,2,...,10 -> 2 clips of 3; video: 0,2,4,6 -> 1 clip + 1 dropped
    assert record['splits'] == {'train': ['cam_a_000000', 'cam_a_000006'], 'val': ['cam_b_000000']}
    assert record['dropped_frames'] == {folder: 0, video: 1}
    # crop 280x150 -> resize to height 140 keeping the aspect (261x140) -> mod-crop x2 -> 260x140
    assert read(f'{out}/train/GT/cam_a_000006/00000002.png').shape == (140, 260, 3)
    assert read(f'{out}/val/LQ/cam_b_000000/00000000.png').shape == (70, 130, 3)
    source = cv2.resize(read(os.path.join(folder, 'frame_10.png'))[20:170, 10:290], (261, 140),
                        interpolation=cv2.INTER_AREA)[:, :260]
    assert np.array_equal(read(f'{out}/train/GT/cam_a_000006/00000002.png'), source)  # frame10 = 3rd of clip 2

    with pytest.raises(SystemExit) as exit_info:
        cli(['--input', folder, '--output', out, '--quiet'])
    assert exit_info.value.code == 2 and 'already exists; pass --overwrite' in capsys.readouterr().err


def test_cli_shows_progress_and_overwrite_replaces_the_old_dataset(tmp_path, capsys):
    old_input = write_folder(tmp_path / 'old_cam', moving_frames(6, 256, 256))
    new_input = write_video(tmp_path / 'new_cam.mkv', moving_frames(4, 256, 256, step=5), fourcc='MJPG')
    out = str(tmp_path / 'data')
    cli = script_main('prepare_footage')
    cli(['--input', old_input, '--output', out, '--clip-length', '3', '--val-ratio', '0', '--quiet'])
    assert sorted(os.listdir(f'{out}/train/GT')) == ['old_cam_000000', 'old_cam_000003']
    capsys.readouterr()

    assert cli(['--input', new_input, '--output', out, '--clip-length', '0', '--val-ratio', '0', '--lmdb',
                '--overwrite']) == 0
    record = json.loads(open(os.path.join(out, layout.RECORD_FILE)).read())
    err = capsys.readouterr().err  # tqdm writes its bars to stderr
    assert 'prepare footage: 100%' in err and '4/4' in err and 'LMDB train/GT' in err

    assert record['inputs'] == [new_input] and sorted(record['clips']) == ['new_cam']
    assert sorted(os.listdir(f'{out}/train/GT')) == sorted(os.listdir(f'{out}/train/LQ')) == ['new_cam']
    assert [(c.name, c.num_frames) for c in layout.read_meta_info(layout.meta_info_path(out, 'train'))] == \
        [('new_cam', 4)]
    with open(os.path.join(out, layout.RECORD_FILE)) as f:
        assert json.load(f)['inputs'] == [new_input]
    cap = cv2.VideoCapture(new_input)
    last = [cap.read()[1] for _ in range(4)][-1]
    cap.release()
    assert np.array_equal(read(f'{out}/train/GT/new_cam/00000003.png'), last)
    assert sorted(os.listdir(tmp_path)) == ['data', 'new_cam.mkv', 'old_cam']  # no .old-/.partial- folder left


def test_max_frames_caps_every_input_and_keeps_the_frames_before_damage(tmp_path):
    folder = write_folder(tmp_path / 'cam', moving_frames(9, 256, 256))
    full = open(write_video(tmp_path / 'full.avi', moving_frames(12, 256, 256)), 'rb').read()
    damaged = tmp_path / 'damaged.avi'
    damaged.write_bytes(full[:len(full) * 6 // 10])
    cap = cv2.VideoCapture(str(damaged))
    decodable = []
    while (frame := cap.read())[0]:
        decodable.append(frame[1])
    cap.release()
    assert 2 <= len(decodable) < 9  # damaged after a few frames; without --max-frames this input fails

    cap_frames = len(decodable)
    record = prepare_footage([folder, str(damaged)], tmp_path / 'data', clip_length=0, val_ratio=0,
                             max_frames=cap_frames, progress=False)
    assert {name: clip['frames'] for name, clip in record['clips'].items()} == {'cam': cap_frames,
                                                                                'damaged': cap_frames}
    assert record['clips']['cam']['source']['last_frame'] == cap_frames - 1
    for name in ('cam', 'damaged'):
        for kind in ('GT', 'LQ'):
            assert len(os.listdir(tmp_path / f'data/train/{kind}/{name}')) == cap_frames
    last = layout.frame_stem(cap_frames - 1) + layout.FRAME_EXT
    assert np.array_equal(read(tmp_path / f'data/train/GT/damaged/{last}'), decodable[-1])

    capped = prepare_footage([folder], tmp_path / 'strided', clip_length=2, val_ratio=0, stride=2, max_frames=3,
                             progress=False)  # frames 0, 2, 4 (not 6, 8): one clip of 2, frame 4 left over
    assert capped['dropped_frames'] == {folder: 1} and list(capped['clips']) == ['cam_000000']
    assert capped['clips']['cam_000000']['source']['last_frame'] == 2


def test_mkv_input_gives_the_right_clips(tmp_path):
    frames = moving_frames(7, 258, 260)
    video = write_video(tmp_path / 'street.mkv', frames, fourcc='mp4v')
    record = prepare_footage([video], tmp_path / 'data', clip_length=3, val_ratio=0, progress=False)
    assert sorted(record['clips']) == ['street_000000', 'street_000003'] and record['dropped_frames'] == {video: 1}
    cap = cv2.VideoCapture(video)
    decoded = [cap.read()[1] for _ in range(7)]
    cap.release()
    gt = read(tmp_path / 'data/train/GT/street_000003/00000002.png')
    assert gt.shape == (256, 260, 3) and np.array_equal(gt, decoded[5][:256, :260])  # mod-crop to x4
    assert cv2.PSNR(decoded[5], frames[5]) > 25  # the decoded frame, not some other one
    assert read(tmp_path / 'data/train/LQ/street_000003/00000002.png').shape == (64, 65, 3)


def test_cli_reports_a_failure_to_write_without_a_traceback_or_leftovers(tmp_path, capsys):
    folder = write_folder(tmp_path / 'cam', moving_frames(4, 256, 256))
    (tmp_path / 'a_file').write_text('not a folder')
    out = tmp_path / 'a_file' / 'sub' / 'data'
    with pytest.raises(SystemExit) as exit_info:
        script_main('prepare_footage')(['--input', folder, '--output', str(out), '--clip-length', '2',
                                             '--val-ratio', '0', '--quiet'])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1
    assert err.startswith(f'prepare_footage: error: --output {out}: cannot create the dataset there') and \
        'Traceback' not in err
    assert sorted(os.listdir(tmp_path)) == ['a_file', 'cam']


def test_degradations_are_seeded_recorded_and_in_range(tmp_path):
    folder = write_folder(tmp_path / 'cam', moving_frames(8, 256, 256))
    deg = DegradationConfig(blur_sigma=(0.5, 1.5), noise_sigma=(1, 5), jpeg_quality=(30, 60))
    runs = {}
    for name, seed in (('a', 7), ('b', 7), ('c', 8)):
        runs[name] = prepare_footage([folder], tmp_path / name, clip_length=4, val_ratio=0, degradation=deg,
                                     seed=seed, progress=False)
    lq = {n: read(tmp_path / n / 'train/LQ/cam_000004/00000001.png') for n in runs}
    assert np.array_equal(lq['a'], lq['b']) and not np.array_equal(lq['a'], lq['c'])
    assert runs['a']['clips'] == runs['b']['clips']
    for clip in runs['a']['clips'].values():
        d = clip['degradation']
        assert 0.5 <= d['blur_sigma'] <= 1.5 and 1 <= d['noise_sigma'] <= 5 and 30 <= d['jpeg_quality'] <= 60
    assert runs['a']['degradation']['jpeg_quality'] == [30, 60]
    gt = read(tmp_path / 'a/train/GT/cam_000004/00000001.png')
    clean = np.clip(np.rint(imresize(gt.astype(np.float32) / 255, 0.25) * 255), 0, 255)
    assert cv2.PSNR(lq['a'], clean.astype(np.uint8)) < 35  # degraded, not just bicubic

    coded = prepare_footage([folder], tmp_path / 'v', clip_length=4, val_ratio=0, progress=False,
                            degradation=DegradationConfig(video_codec='mp4v'))
    assert coded['clips']['cam_000000']['degradation']['video_codec'] == 'mp4v'
    lq_coded = read(tmp_path / 'v/train/LQ/cam_000004/00000001.png')
    assert lq_coded.shape == (64, 64, 3) and 25 < cv2.PSNR(lq_coded, clean.astype(np.uint8)) < 60

    with pytest.raises(ValueError, match='--jpeg-quality: expected 1 <= MIN <= MAX <= 100'):
        DegradationConfig(jpeg_quality=(0, 50))
    with pytest.raises(ValueError, match="--video-codec: 'avc1' is not available; allowed: mp4v"):
        DegradationConfig(video_codec='avc1')


# ------------------------------------------------------------------------------------------------ bad inputs
def test_bad_inputs_fail_clearly_and_leave_nothing_behind(tmp_path):
    frames = moving_frames(12, 256, 256)
    full = open(write_video(tmp_path / 'full.avi', frames), 'rb').read()
    (tmp_path / 'truncated.avi').write_bytes(full[:len(full) * 6 // 10])
    good_mp4 = open(write_video(tmp_path / 'full.mp4', frames), 'rb').read()
    (tmp_path / 'truncated.mp4').write_bytes(good_mp4[:len(good_mp4) // 2])
    (tmp_path / 'notes.mp4').write_text('not a video')
    never_written = cv2.VideoWriter(str(tmp_path / 'no_frames.avi'), cv2.VideoWriter_fourcc(*'MJPG'), 25, (256, 256))
    assert never_written.isOpened()
    never_written.release()  # a valid avi header, no frame: opens, then the first read fails
    os.makedirs(tmp_path / 'empty')
    small = write_folder(tmp_path / 'small', [f[:200, :200] for f in frames[:4]])
    mixed = write_folder(tmp_path / 'mixed', frames[:3])
    cv2.imwrite(str(tmp_path / 'mixed' / 'frame_3.png'), frames[3][:, :240])
    out = tmp_path / 'out'

    cases = [
        (tmp_path / 'truncated.avi', 'truncated.avi: the container reports 12 frames but decoding stopped after'),
        (tmp_path / 'truncated.mp4', 'truncated.mp4: cannot be opened as a video'),
        (tmp_path / 'notes.mp4', 'notes.mp4: cannot be opened as a video'),
        (tmp_path / 'no_frames.avi', 'no_frames.avi: the video has zero decodable frames'),
        (tmp_path / 'empty', 'empty: the folder holds zero frames'),
        (small, r'small: 200x200 frames give GT 200x200 and LQ 50x50 at x4; LQ frames need at least 64 px'),
        (mixed, r'mixed: mixed frame sizes: .*frame_3.png is 240x256 but .*frame_0.png is 256x256'),
        (tmp_path / 'missing.mp4', 'missing.mp4: does not exist'),
    ]
    for path, message in cases:
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            prepare_footage([str(path)], out, clip_length=3, val_ratio=0, progress=False)
        assert not out.exists() and not [p for p in os.listdir(tmp_path) if '.partial-' in p]

    with pytest.raises(ValueError, match='--clip-length 20; lower --clip-length'):
        prepare_footage([str(tmp_path / 'full.avi')], out, clip_length=20, val_ratio=0, progress=False)
    with pytest.raises(ValueError, match='--val-ratio 0.5: 1 clip'):
        prepare_footage([str(tmp_path / 'full.avi')], out, clip_length=10, val_ratio=0.5, progress=False)
    os.makedirs(tmp_path / 'precious')
    (tmp_path / 'precious' / 'thesis.txt').write_text('keep me')
    with pytest.raises(FileExistsError, match='not a footage dataset'):
        prepare_footage([str(tmp_path / 'full.avi')], tmp_path / 'precious', clip_length=4, overwrite=True,
                        progress=False)
    assert (tmp_path / 'precious' / 'thesis.txt').exists()


# ------------------------------------------------------------------------------------------------- datasets
def synthetic_clips(root, lengths: dict[str, int], gt=(256, 256)) -> None:
    """Constant frames whose value encodes clip and frame (10 * clip + frame), written in the footage layout."""
    infos = []
    for c, (name, num) in enumerate(lengths.items()):
        for i in range(num):
            for kind, size in ((layout.GT_DIR, gt), (layout.LQ_DIR, (gt[0] // 4, gt[1] // 4))):
                path = layout.frame_path(layout.split_dir(str(root), 'train', kind), name, i)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                cv2.imwrite(path, np.full((*size, 3), 10 * c + i, np.uint8))
        infos.append(layout.ClipInfo(name, num, (*gt, 3)))
    layout.write_meta_info(layout.meta_info_path(str(root), 'train'), infos)


def test_training_windows_never_cross_clip_boundaries(tmp_path):
    synthetic_clips(tmp_path, {'gate-cam.north': 7, 'x': 10})
    ds = build_dataset(dataset_opt(str(tmp_path), num_frame=4, gt_size=256, interval_list=[1, 2, 3],
                                   random_reverse=True, use_hflip=True, use_rot=True))
    assert len(ds) == (7 - 4 + 1) + (10 - 4 + 1)
    random.seed(0)
    steps_per_clip = {0: set(), 1: set()}
    for _ in range(4):
        for index in range(len(ds)):
            item = ds[index]
            values = [round(v) for v in (item['lq'][:, 0, 0, 0] * 255).tolist()]
            assert values == [round(v) for v in (item['gt'][:, 0, 0, 0] * 255).tolist()]
            clips = {v // 10 for v in values}
            assert len(clips) == 1
            clip = clips.pop()
            assert item['key'].split('/')[0] == ['gate-cam.north', 'x'][clip]
            steps = {b - a for a, b in zip(values, values[1:])}
            assert len(steps) == 1
            steps_per_clip[clip] |= steps
    assert steps_per_clip[0] == {1, 2, -1, -2}  # step 3 needs 10 frames: only clip x has them
    assert steps_per_clip[1] == {1, 2, 3, -1, -2, -3}


def test_gt_crop_downscaled_matches_the_lq_crop(tmp_path):
    folder = write_folder(tmp_path / 'cam', moving_frames(5, 320, 352))
    prepare_footage([folder], tmp_path / 'data', clip_length=5, val_ratio=0, progress=False)
    ds = build_dataset(dataset_opt(str(tmp_path / 'data'), num_frame=3, gt_size=256, use_hflip=True, use_rot=True))
    random.seed(0)
    for index in range(len(ds)):
        item = ds[index]
        for lq, gt in zip(item['lq'], item['gt']):
            down = imresize(gt, 0.25).clamp(0, 1)  # the LQ of this GT crop, up to borders and rounding to uint8
            inner = (slice(None), slice(4, -4), slice(4, -4))
            assert (down[inner] - lq[inner]).abs().max() <= 1.01 / 255
            assert (down[inner] - lq.roll(1, dims=2)[inner]).abs().max() > 10 / 255  # one LQ pixel off is caught


def test_val_dataset_returns_whole_clips_or_windows(tmp_path):
    synthetic_clips(tmp_path, {'a': 7, 'b': 5})
    whole = build_dataset(dataset_opt(str(tmp_path), 'train', type='FootageTestDataset'))
    assert len(whole) == 2 and whole.data_info['folder'] == ['a'] * 7 + ['b'] * 5
    item = whole[0]
    assert item['lq'].shape == (7, 3, 64, 64) and item['gt'].shape == (7, 3, 256, 256)
    assert item['folder'] == 'a' and item['idx'] == '0/7' and item['lq_path'].endswith('LQ/a/00000000.png')
    assert [round(v) for v in (whole[1]['gt'][:, 0, 0, 0] * 255).tolist()] == [10, 11, 12, 13, 14]

    windows = build_dataset(dataset_opt(str(tmp_path), 'train', type='FootageTestDataset', num_frame=3))
    assert [(f, s) for f, _, s, _, _ in windows.items] == [('a/00000000', 0), ('a/00000003', 3), ('a/00000004', 4),
                                                           ('b/00000000', 0), ('b/00000002', 2)]
    assert len(windows.data_info['folder']) == 15 and windows[2]['idx'] == '4/7'
    assert [round(v) for v in (windows[2]['lq'][:, 0, 0, 0] * 255).tolist()] == [4, 5, 6]


def test_bad_datasets_fail_at_construction_naming_the_clip(tmp_path):
    synthetic_clips(tmp_path, {'short': 3, 'long': 6})
    root = str(tmp_path)
    with pytest.raises(ValueError, match='clip short has 3 frames, fewer than the 4'):
        build_dataset(dataset_opt(root, num_frame=4))
    with pytest.raises(FileNotFoundError, match=r'datasets\[train_set\].meta_info_file: .*nowhere.txt does not exist'):
        build_dataset(dataset_opt(root, num_frame=2, meta_info_file=f'{root}/nowhere.txt'))
    with pytest.raises(ValueError, match=r'datasets\[train_set\].meta_info_file: missing'):
        build_dataset(dataset_opt(root, num_frame=2, meta_info_file=None))
    with pytest.raises(ValueError, match=r'gt_size: 320 is larger than the frames of clip short'):
        build_dataset(dataset_opt(root, num_frame=2, gt_size=320))

    cv2.imwrite(layout.frame_path(f'{root}/train/LQ', 'long', 4), np.zeros((64, 60, 3), np.uint8))
    with pytest.raises(ValueError, match=r'clip long: mixed frame sizes: .*00000004.png is 60x64'):
        build_dataset(dataset_opt(root, num_frame=2))
    os.remove(layout.frame_path(f'{root}/train/LQ', 'long', 4))
    with pytest.raises(FileNotFoundError, match=r'clip long: frame .*LQ/long/00000004.png is missing'):
        build_dataset(dataset_opt(root, num_frame=2))

    small = tmp_path / 'small'
    synthetic_clips(small, {'tiny': 4}, gt=(200, 256))
    with pytest.raises(ValueError, match=r'clip tiny: LQ frames are 64x50; at least 64 px'):
        build_dataset(dataset_opt(str(small), num_frame=2))


# ----------------------------------------------------------------------------------------------------- demo
def test_demo_footage_is_deterministic_moving_and_kept_when_unchanged(tmp_path):
    kwargs = dict(train_clips=2, val_clips=1, num_frames=3, gt_height=256, gt_width=256, progress=False)
    make_demo_footage(str(tmp_path / 'a'), seed=1, **kwargs)
    record = make_demo_footage(str(tmp_path / 'b'), seed=1, **kwargs)
    make_demo_footage(str(tmp_path / 'c'), seed=2, **kwargs)
    assert record['splits'] == {'train': ['train_00_astronaut', 'train_01_coffee'], 'val': ['val_02_chelsea']}
    clip = 'train/GT/train_01_coffee'
    frames = {run: [read(tmp_path / run / clip / f'0000000{i}.png') for i in range(3)] for run in 'abc'}
    assert all(np.array_equal(x, y) for x, y in zip(frames['a'], frames['b']))
    assert not np.array_equal(frames['a'][0], frames['c'][0])
    assert np.abs(frames['a'][1].astype(int) - frames['a'][0]).mean() > 2  # the camera and objects move
    assert read(tmp_path / 'a/val/LQ/val_02_chelsea/00000002.png').shape == (64, 64, 3)

    stamp = os.path.getmtime(tmp_path / 'a' / layout.RECORD_FILE)
    make_demo_footage(str(tmp_path / 'a'), seed=1, **kwargs)
    assert os.path.getmtime(tmp_path / 'a' / layout.RECORD_FILE) == stamp
    with pytest.raises(FileExistsError, match='already exists; pass --overwrite'):
        make_demo_footage(str(tmp_path / 'a'), seed=5, **kwargs)


def test_demo_footage_script_returns_its_exit_status(tmp_path, capsys):
    main = script_main('make_demo_footage')
    small = ['--train-clips', '1', '--val-clips', '1', '--frames', '2', '--gt-height', '256', '--gt-width', '256',
             '--quiet']
    assert main(['--output', str(tmp_path / 'demo'), *small]) == 0
    assert f'{tmp_path / "demo"}: 1 train / 1 val clips' in capsys.readouterr().out
    record = json.loads((tmp_path / 'demo' / layout.RECORD_FILE).read_text())
    assert record['splits'] == {'train': ['train_00_astronaut'], 'val': ['val_01_chelsea']}
    with pytest.raises(SystemExit) as exit_info:
        main(['--output', str(tmp_path / 'demo'), *small, '--seed', '5'])
    assert exit_info.value.code == 2 and 'already exists; pass --overwrite' in capsys.readouterr().err


def test_demo_config_trains_and_validates(tiny_footage, tmp_path):
    with open(os.path.join(REPO, 'options/demo/train_basicvsr_demo.yml')) as f:
        opt = yaml.safe_load(f)
    for split in ('train', 'val'):  # the demo options, pointed at the tiny footage
        ds = opt['datasets'][split]
        for key in ('dataroot_gt', 'dataroot_lq', 'meta_info_file'):
            ds[key] = ds[key].replace('datasets/demo', tiny_footage)
    opt['datasets']['train'].update(num_frame=3, num_worker_per_gpu=0, batch_size_per_gpu=1)
    opt['train'].update(total_iter=2, fix_flow=1)
    opt['path'].update(models=str(tmp_path / 'models'), training_states=str(tmp_path / 'states'))
    opt = as_parsed(opt)

    train_set = build_dataset(opt['datasets']['train'])
    loader = build_dataloader(train_set, opt['datasets']['train'], num_gpu=0, dist=False, seed=0)
    val_set = build_dataset(opt['datasets']['val'])
    val_loader = build_dataloader(val_set, opt['datasets']['val'], num_gpu=0, dist=False)
    model = build_model(copy.deepcopy(opt))
    before = copy.deepcopy(model.net_g.state_dict())
    batches = iter(loader)
    for current_iter in (1, 2):
        model.feed_data(next(batches))
        model.optimize_parameters(current_iter)
    assert any(not torch.equal(before[k], v) for k, v in model.net_g.state_dict().items())
    model.validation(val_loader, 2, None, save_img=False)
    psnr = model.metric_results['val_02_chelsea'][:, 0]
    assert psnr.shape == (4,) and torch.isfinite(psnr).all() and (psnr > 5).all()
    assert model.best_metric_results['demo_val']['psnr']['val'] > 5
