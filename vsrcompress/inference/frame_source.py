"""Frames from a video file, a folder of images, a camera index or a stream URL, checked before any work.

``open_frame_source`` opens the input and decodes its first frame, so a missing, corrupt or empty input, or a
URL that does not open, fails with a clear error before a model is run. Frames are BGR uint8 as OpenCV gives.
"""
import os
import re
from collections.abc import Callable, Iterator

import cv2
import numpy as np

from vsrcompress.video_truncation import check_fully_decoded

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
DEFAULT_FPS = 25.0
STREAM_TIMEOUT_MS = 10000


class FrameSource:
    """An opened input whose first frame has been decoded; iterate for all frames (the first included)."""

    def __init__(self, name: str, first: np.ndarray, rest: Iterator[np.ndarray], fps: float,
                 frame_count: int | None, release: Callable[[], None] | None = None):
        self.name = name
        self.height, self.width = first.shape[:2]
        self.fps = fps
        self.frame_count = frame_count  # None for cameras and streams
        self._first, self._rest, self._release = first, rest, release

    def __iter__(self) -> Iterator[np.ndarray]:
        first, self._first = self._first, None
        if first is None:
            raise RuntimeError(f'input: {self.name} can be iterated once.')
        yield first
        for frame in self._rest:
            if frame.shape[:2] != (self.height, self.width):
                raise ValueError(f'input: {self.name}: frame size changed from {self.width}x{self.height} to '
                                 f'{frame.shape[1]}x{frame.shape[0]}.')
            yield frame

    def close(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', name)]


def _open_folder(folder: str, fps: float | None) -> FrameSource:
    files = sorted((f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS)), key=_natural_key)
    if not files:
        raise ValueError(f'input: folder {folder} holds no images ({", ".join(IMAGE_EXTENSIONS)}).')
    paths = [os.path.join(folder, f) for f in files]

    def read(path: str) -> np.ndarray:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f'input: cannot decode image {path}.')
        return image

    return FrameSource(folder, read(paths[0]), (read(p) for p in paths[1:]), fps or DEFAULT_FPS, len(paths))


def _open_capture(spec: str, fps: float | None, allow_truncated: bool) -> FrameSource:
    is_camera, is_url = spec.isdigit(), '://' in spec
    if is_camera:
        capture = cv2.VideoCapture(int(spec))
    elif is_url:
        capture = cv2.VideoCapture(spec, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
                                                          cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS])
    else:
        if not os.path.isfile(spec):
            raise FileNotFoundError(f'input: {spec} does not exist (give a video file, a folder of images, '
                                    'a camera index or a stream URL).')
        capture = cv2.VideoCapture(spec)
    kind = 'camera' if is_camera else 'stream URL' if is_url else 'video file'
    if not capture.isOpened():
        capture.release()
        raise ValueError(f'input: cannot open {kind} {spec} with OpenCV'
                         + (' (corrupt or unsupported container/codec).' if kind == 'video file' else '.'))
    ok, first = capture.read()
    if not ok or first is None:
        capture.release()
        raise ValueError(f'input: {kind} {spec} opened but yielded no frame (empty or corrupt).')

    def frames() -> Iterator[np.ndarray]:
        decoded = 1  # the first frame, read above
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            decoded += 1
            yield frame
        if kind == 'video file' and not allow_truncated:
            check_fully_decoded(spec, count, decoded, 'Use --allow-truncated to keep the frames before the damage.')

    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if kind == 'video file' else 0
    native_fps = capture.get(cv2.CAP_PROP_FPS)
    native_fps = native_fps if native_fps and np.isfinite(native_fps) and native_fps > 0 else DEFAULT_FPS
    return FrameSource(spec, first, frames(), fps or native_fps, count if count > 0 else None, capture.release)


def open_frame_source(spec: str, fps: float | None = None, allow_truncated: bool = False) -> FrameSource:
    """Open ``spec``: a folder of images, a camera index (``0``), a stream URL (``rtsp://...``) or a video file.

    Args:
        spec: What to read.
        fps: Frame rate to report/write; default: the video's own, or 25 for folders and unknown rates.
        allow_truncated: A video file whose decoding stops before its container's frame count ends normally
            instead of raising ``TruncatedVideoError`` when its frames run out.
    """
    if os.path.isdir(spec):
        return _open_folder(spec, fps)
    return _open_capture(spec, fps, allow_truncated)
