"""GT -> LQ: MATLAB-compatible bicubic downscaling, optionally with a realistic, seeded degradation.

Real surveillance and streaming footage is blurred, noisy and compressed; a model fine-tuned on clean bicubic
LQ alone learns to sharpen those artefacts. The order follows the physical chain: optical blur on the GT
(before sampling), bicubic downscale, sensor noise on the LQ, then compression of the LQ (JPEG per frame, or a
motion-compensated video codec per clip). Each clip draws its own strengths from the ranges (one camera keeps
one blur, noise level and quality), and the drawn values are recorded with the data.

Video codec: the OpenCV wheels ship FFmpeg without an H.264/H.265 encoder, and OpenCV's FFmpeg writer ignores
quality and bitrate settings. ``mp4v`` (MPEG-4 Part 2: block DCT, motion-compensated P-frames, 4:2:0 chroma)
is the available codec closest to H.264; its quality is fixed by OpenCV, so it has no quality range.
"""
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import cv2
import numpy as np
from basicsr.utils.matlab_functions import imresize

VIDEO_CODECS = ('mp4v',)


def _check_range(key: str, value, low: float, high: float, integer: bool = False):
    """Normalise a number or a (min, max) pair into a validated (min, max) tuple, or None."""
    if value is None:
        return None
    pair = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair):
        raise ValueError(f'{key}: expected a number or MIN MAX, got {value!r}')
    if integer and not all(float(v).is_integer() for v in pair):
        raise ValueError(f'{key}: expected integers, got {value!r}')
    if not low <= pair[0] <= pair[1] <= high:
        raise ValueError(f'{key}: expected {low} <= MIN <= MAX <= {high}, got {value!r}')
    return tuple(int(v) for v in pair) if integer else tuple(float(v) for v in pair)


@dataclass(frozen=True)
class ClipDegradation:
    """The degradation one clip received (recorded per clip in footage.json)."""

    blur_sigma: float = 0.0  # Gaussian blur std in GT pixels, applied before downscaling
    noise_sigma: float = 0.0  # Gaussian noise std on the 0-255 scale, added to LQ
    jpeg_quality: int | None = None  # JPEG quality of every LQ frame
    video_codec: str | None = None  # codec the LQ clip was re-encoded with


@dataclass(frozen=True)
class DegradationConfig:
    """Ranges the per-clip degradations are drawn from; all None means clean bicubic LQ (BI degradation)."""

    blur_sigma: tuple[float, float] | None = None
    noise_sigma: tuple[float, float] | None = None
    jpeg_quality: tuple[int, int] | None = None
    video_codec: str | None = None

    def __post_init__(self):
        object.__setattr__(self, 'blur_sigma', _check_range('--blur-sigma', self.blur_sigma, 0, 10))
        object.__setattr__(self, 'noise_sigma', _check_range('--noise-sigma', self.noise_sigma, 0, 50))
        object.__setattr__(self, 'jpeg_quality', _check_range('--jpeg-quality', self.jpeg_quality, 1, 100, True))
        if self.video_codec is not None and self.video_codec not in VIDEO_CODECS:
            raise ValueError(f'--video-codec: {self.video_codec!r} is not available; '
                             f'allowed: {", ".join(VIDEO_CODECS)}')
        if self.video_codec is not None and self.jpeg_quality is not None:
            raise ValueError('--jpeg-quality and --video-codec: choose one compression for the LQ frames.')

    def as_dict(self) -> dict:
        return asdict(self)

    def sample(self, rng: np.random.Generator) -> ClipDegradation:
        """Draw one clip's degradation; draws happen in a fixed order so a seed reproduces them."""
        blur = rng.uniform(*self.blur_sigma) if self.blur_sigma else 0.0
        noise = rng.uniform(*self.noise_sigma) if self.noise_sigma else 0.0
        quality = int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1)) if self.jpeg_quality else None
        return ClipDegradation(round(float(blur), 4), round(float(noise), 4), quality, self.video_codec)


def to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


class LQClipMaker:
    """Turns the GT frames of one clip into its LQ frames, in order.

    ``add`` returns the LQ frames that are ready (one per GT frame, or none while a video codec collects the
    clip); ``finish`` returns the rest. A video-codec clip is encoded to a temporary file in ``work_dir``.
    """

    def __init__(self, scale: int, degradation: ClipDegradation, rng: np.random.Generator, work_dir: str):
        self.scale = scale
        self.degradation = degradation
        self.rng = rng
        self.work_dir = work_dir
        self._writer = None
        self._video_path = None
        self._lq_size = None
        self._num_encoded = 0

    def add(self, gt: np.ndarray) -> list[np.ndarray]:
        deg = self.degradation
        img = gt.astype(np.float32) / 255.0
        if deg.blur_sigma > 0:
            img = cv2.GaussianBlur(img, (0, 0), sigmaX=deg.blur_sigma, borderType=cv2.BORDER_REFLECT)
        lq = imresize(img, 1.0 / self.scale)  # MATLAB-compatible antialiased bicubic, as basicsr's data scripts
        if deg.noise_sigma > 0:
            lq = lq + self.rng.normal(0.0, deg.noise_sigma / 255.0, size=lq.shape).astype(np.float32)
        lq = to_uint8(lq)
        if deg.jpeg_quality is not None:
            ok, buf = cv2.imencode('.jpg', lq, [cv2.IMWRITE_JPEG_QUALITY, deg.jpeg_quality])
            lq = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        if deg.video_codec is None:
            return [lq]
        self._encode(lq)
        return []

    def _encode(self, lq: np.ndarray) -> None:
        if self._writer is None:
            self._lq_size = lq.shape[:2]
            fd, self._video_path = tempfile.mkstemp(suffix='.mp4', dir=self.work_dir)
            os.close(fd)
            h, w = self._lq_size
            self._writer = cv2.VideoWriter(self._video_path, cv2.VideoWriter_fourcc(*self.degradation.video_codec), 25,
                                           (w + w % 2, h + h % 2))  # 4:2:0 needs even sizes
            if not self._writer.isOpened():
                raise RuntimeError(f'OpenCV could not start a {self.degradation.video_codec} video writer.')
        h, w = lq.shape[:2]
        self._writer.write(cv2.copyMakeBorder(lq, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE))
        self._num_encoded += 1

    def finish(self) -> Iterator[np.ndarray]:
        """The LQ frames still held back by the video codec (nothing without one)."""
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        h, w = self._lq_size
        cap = cv2.VideoCapture(self._video_path)
        decoded = 0
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                decoded += 1
                yield np.ascontiguousarray(frame[:h, :w])
        finally:
            cap.release()
            os.remove(self._video_path)
        if decoded != self._num_encoded:
            raise RuntimeError(f'{self.degradation.video_codec} round trip returned {decoded} of '
                               f'{self._num_encoded} frames.')
