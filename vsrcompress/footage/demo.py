"""Embedded demo footage: clips filmed by a virtual camera over scikit-image's sample photographs.

No download: the photographs ship inside scikit-image (a basicsr dependency). Each clip is a camera moving
over one photograph - a pan that accelerates and slows down, a zoom, a slow roll and a small hand-held
jitter - with textured objects (patches of other photographs, soft-edged) moving across the view on their
own paths, so a recurrent model sees real texture, global motion, independent motion and occlusions.
Validation clips use photographs that no training clip shows. Everything is drawn from ``seed``.
"""
import json
import math
import os
from dataclasses import dataclass

import cv2
import numpy as np
from skimage import data as skdata
from tqdm import tqdm

from vsrcompress.footage import layout
from vsrcompress.footage.degradations import ClipDegradation
from vsrcompress.footage.prepare import clip_rng
from vsrcompress.footage.writer import FootageWriter, check_output

TRAIN_SCENES = ('astronaut', 'coffee', 'rocket', 'stereo_motorcycle', 'immunohistochemistry', 'hubble_deep_field')
VAL_SCENES = ('chelsea', 'camera')
OBJECT_TEXTURES = ('brick', 'gravel', 'grass', 'coins', 'colorwheel', 'coffee', 'astronaut', 'rocket')
MAX_ROLL_DEG = 4.0


def load_photo(name: str) -> np.ndarray:
    """A scikit-image sample image as BGR uint8 (grey images are repeated over the three channels)."""
    img = getattr(skdata, name)()
    if isinstance(img, tuple):  # stereo pairs: take the left view
        img = img[0]
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, 2::-1]).astype(np.uint8)  # RGB(A) -> BGR


def camera_path(rng: np.random.Generator, photo_hw: tuple[int, int], view_hw: tuple[int, int],
                num_frames: int) -> list[np.ndarray]:
    """Per-frame 2x3 matrices mapping view pixels to photo pixels: pan, zoom, roll and hand-held jitter."""
    (ph, pw), (vh, vw) = photo_hw, view_hw
    zoom_max = max(0.9, min(1.5, 0.85 * ph / vh, 0.85 * pw / vw))  # photo pixels per view pixel
    zoom_min = max(0.9, 0.7 * zoom_max)
    zoom0, zoom1 = rng.uniform(zoom_min, zoom_max, size=2)
    if rng.random() < 0.3:
        zoom1 = zoom0  # a pure pan
    roll = math.radians(MAX_ROLL_DEG)
    half_w = zoom_max * (vw / 2 * math.cos(roll) + vh / 2 * math.sin(roll))
    half_h = zoom_max * (vh / 2 * math.cos(roll) + vw / 2 * math.sin(roll))
    low = np.array([min(half_w, pw / 2), min(half_h, ph / 2)])
    high = np.array([max(pw - half_w, pw / 2), max(ph - half_h, ph / 2)])
    start = rng.uniform(low, high)
    angle = rng.uniform(0, 2 * math.pi)
    distance = rng.uniform(0.3, 1.0) * 6.0 * zoom_max * (num_frames - 1)  # up to 6 view px per frame
    end = np.clip(start + distance * np.array([math.cos(angle), math.sin(angle)]), low, high)
    eased = rng.random() < 0.5
    roll0, roll_rate = rng.uniform(-2, 2), rng.uniform(-0.3, 0.3)  # degrees, degrees per frame
    shake, shake_roll = np.zeros(2), 0.0
    matrices = []
    for t in range(num_frames):
        p = t / max(num_frames - 1, 1)
        p = 0.5 - 0.5 * math.cos(math.pi * p) if eased else p
        shake = 0.6 * shake + rng.normal(0.0, 0.4, size=2)  # AR(1) hand-held jitter, in view pixels
        shake_roll = 0.6 * shake_roll + rng.normal(0.0, 0.05)
        zoom = zoom0 * (zoom1 / zoom0) ** p
        theta = math.radians(np.clip(roll0 + roll_rate * t + shake_roll, -MAX_ROLL_DEG, MAX_ROLL_DEG))
        rot = zoom * np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
        center = start + (end - start) * p + zoom * shake
        matrices.append(np.hstack([rot, (center - rot @ np.array([vw / 2, vh / 2]))[:, None]]))
    return matrices


@dataclass
class MovingObject:
    """A soft-edged textured patch with its own path across the view."""

    texture: np.ndarray  # (d, d, 3) float32
    alpha: np.ndarray  # (d, d) float32 in [0, 1]
    position: np.ndarray  # view position of its centre at frame 0
    velocity: np.ndarray  # view pixels per frame
    acceleration: np.ndarray
    spin: float  # degrees per frame

    def matrix(self, t: int) -> np.ndarray:
        """2x3 matrix mapping patch pixels to view pixels at frame ``t``."""
        d = self.alpha.shape[0]
        centre = self.position + self.velocity * t + 0.5 * self.acceleration * t * t
        rot = cv2.getRotationMatrix2D((d / 2, d / 2), self.spin * t, 1.0)
        rot[:, 2] += centre - d / 2
        return rot


def moving_objects(rng: np.random.Generator, textures: dict[str, np.ndarray], view_hw: tuple[int, int],
                   num_frames: int) -> list[MovingObject]:
    vh, vw = view_hw
    objects = []
    for _ in range(int(rng.integers(1, 4))):
        source = textures[OBJECT_TEXTURES[int(rng.integers(len(OBJECT_TEXTURES)))]]
        d = int(rng.integers(40, min(97, source.shape[0], source.shape[1], vh, vw)))
        y, x = int(rng.integers(source.shape[0] - d + 1)), int(rng.integers(source.shape[1] - d + 1))
        texture = source[y:y + d, x:x + d].astype(np.float32)
        if rng.random() < 0.5:
            texture = np.clip(texture * rng.uniform(0.6, 1.3, size=3), 0, 255)  # tint (also colours grey ones)
        alpha = np.zeros((d, d), np.float32)
        axes = (int(d / 2 - 3), int((d / 2 - 3) * rng.uniform(0.55, 1.0)))
        cv2.ellipse(alpha, (d // 2, d // 2), axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1, cv2.LINE_AA)
        alpha = cv2.GaussianBlur(alpha, (0, 0), 1.5)
        speed, heading = rng.uniform(1.0, 5.0), rng.uniform(0, 2 * math.pi)
        velocity = speed * np.array([math.cos(heading), math.sin(heading)])
        position = np.array([rng.uniform(0, vw), rng.uniform(0, vh)]) - velocity * (num_frames - 1) / 2
        objects.append(MovingObject(texture, alpha, position, velocity, rng.normal(0.0, 0.1, size=2),
                                    float(rng.uniform(-3, 3))))
    return objects


def render_clip(photo: np.ndarray, cameras: list[np.ndarray], objects: list[MovingObject],
                view_hw: tuple[int, int]) -> list[np.ndarray]:
    """Frames (BGR uint8) of the camera over the photograph with the objects composited on top."""
    vh, vw = view_hw
    frames = []
    for t, cam in enumerate(cameras):
        frame = cv2.warpAffine(photo, cam, (vw, vh), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT_101).astype(np.float32)
        for obj in objects:
            m = obj.matrix(t)
            tex = cv2.warpAffine(obj.texture, m, (vw, vh), flags=cv2.INTER_CUBIC)
            alpha = cv2.warpAffine(obj.alpha, m, (vw, vh), flags=cv2.INTER_LINEAR)[:, :, None]
            frame = frame * (1.0 - alpha) + tex * alpha
        frames.append(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
    return frames


def make_demo_footage(output: str = 'datasets/demo', seed: int = 0, train_clips: int = 6, val_clips: int = 2,
                      num_frames: int = 12, gt_height: int = 256, gt_width: int = 384, scale: int = 4,
                      lmdb: bool = False, overwrite: bool = False, progress: bool = True) -> dict:
    """Write the demo footage dataset; a dataset already made with the same settings is kept as it is.

    Args:
        output: Dataset folder (layout in ``layout.py``).
        seed: Seed of every camera path, object and texture choice.
        train_clips: Clips in the train split (cycling over the training photographs).
        val_clips: Clips in the val split (photographs not used for training).
        num_frames: Frames per clip.
        gt_height: GT frame height; a multiple of ``scale``, LQ >= 64 px.
        gt_width: GT frame width; a multiple of ``scale``, LQ >= 64 px.
        scale: GT / LQ size ratio, 2 or 4.
        lmdb: Also write LMDBs.
        overwrite: Replace an existing footage dataset made with other settings.
        progress: Show progress bars.

    Returns:
        The footage.json record.
    """
    if scale not in (2, 4):
        raise ValueError(f'--scale: {scale!r} is not supported; allowed: 2, 4')
    for key, size in (('--gt-height', gt_height), ('--gt-width', gt_width)):
        if size % scale or size // scale < layout.MIN_LQ_SIZE:
            raise ValueError(f'{key}: {size} must be a multiple of --scale {scale} with LQ >= '
                             f'{layout.MIN_LQ_SIZE} px, i.e. >= {layout.MIN_LQ_SIZE * scale}.')
    if train_clips < 1 or val_clips < 0 or num_frames < 2:
        raise ValueError(f'--train-clips >= 1, --val-clips >= 0 and --frames >= 2 are needed, got {train_clips}, '
                         f'{val_clips}, {num_frames}.')
    settings = {'seed': seed, 'train_clips': train_clips, 'val_clips': val_clips, 'num_frames': num_frames,
                'gt_size': [gt_height, gt_width], 'scale': scale, 'lmdb': lmdb}
    existing = _existing_record(output)
    if existing is not None and existing.get('demo_settings') == settings:
        print(f'{output} already holds the demo footage made with these settings; kept as it is.')
        return existing

    check_output(output, overwrite)
    textures = {name: load_photo(name) for name in OBJECT_TEXTURES}
    plan = ([('train', TRAIN_SCENES[i % len(TRAIN_SCENES)]) for i in range(train_clips)]
            + [('val', VAL_SCENES[i % len(VAL_SCENES)]) for i in range(val_clips)])
    view_hw, splits = (gt_height, gt_width), {}
    with FootageWriter(output, scale, overwrite=overwrite, make_lmdb=lmdb, progress=progress) as writer:
        for index, (split, scene) in enumerate(tqdm(plan, desc='demo footage', unit='clip', disable=not progress)):
            rng = clip_rng(seed, index)
            photo = load_photo(scene)
            frames = render_clip(photo, camera_path(rng, photo.shape[:2], view_hw, num_frames),
                                 moving_objects(rng, textures, view_hw, num_frames), view_hw)
            name = f'{split}_{index:02d}_{scene}'
            clip = writer.start_clip(name, ClipDegradation(), rng)
            for frame in frames:
                clip.add(frame)
            writer.add_clip(clip.close(), ClipDegradation(), {'photo': f'skimage.data.{scene}'})
            splits[name] = split
        record = {'created_by': 'vsrcompress.footage.make_demo_footage', 'seed': seed, 'demo_settings': settings}
        return writer.commit(splits, record)


def _existing_record(output: str) -> dict | None:
    path = os.path.join(output, layout.RECORD_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        return json.load(f)
