"""Footage inputs: a video file (any container/codec OpenCV's FFmpeg can decode) or a folder of frame images.

``open_source`` probes an input cheaply (container header, image headers) so that unreadable files, empty
inputs and mixed frame sizes are reported before any frame is processed; ``FrameSource.frames`` then
streams BGR uint8 frames and reports truncation when decoding stops before the container's frame count.
"""
import itertools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from vsrcompress.video_truncation import check_fully_decoded

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


@dataclass(frozen=True)
class FrameSource:
    """A probed input: where it is, what it holds, and how many frames it claims."""

    path: str
    kind: str  # 'video' or 'frames'
    width: int
    height: int
    num_frames: int  # frames the container reports (video) or image files (folder)
    frame_files: tuple[str, ...] = field(default=(), repr=False)

    def frames(self, stride: int = 1, max_frames: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(source_frame_index, bgr_uint8_frame)`` for every ``stride``-th frame, at most ``max_frames``."""
        if stride < 1:
            raise ValueError(f'--stride: must be >= 1, got {stride}')
        reader = (self._video_frames if self.kind == 'video' else self._folder_frames)(stride)
        try:
            # islice stops before decoding frame max_frames + 1, so a file damaged right after the frames asked
            # for still gives them (--max-frames keeps the frames before the damage)
            for index, frame in itertools.islice(reader, max_frames):
                if frame.shape[:2] != (self.height, self.width):
                    raise ValueError(f'{self.path}: frame {index} is {frame.shape[1]}x{frame.shape[0]}, the others '
                                     f'are {self.width}x{self.height}; one input must keep one frame size.')
                yield index, frame
        finally:
            reader.close()  # release the video now, not when the generator is collected

    def _folder_frames(self, stride: int) -> Iterator[tuple[int, np.ndarray]]:
        for index in range(0, len(self.frame_files), stride):
            file = self.frame_files[index]
            frame = cv2.imread(file, cv2.IMREAD_COLOR)
            if frame is None:
                raise ValueError(f'{file}: cannot be decoded as an image (damaged file?).')
            yield index, frame

    def _video_frames(self, stride: int) -> Iterator[tuple[int, np.ndarray]]:
        cap = cv2.VideoCapture(self.path)
        try:
            if not cap.isOpened():
                raise ValueError(f'{self.path}: cannot be opened as a video any more.')
            index = 0
            while True:
                if index % stride == 0:
                    ok, frame = cap.read()
                    if ok:
                        yield index, frame
                else:
                    ok = cap.grab()  # skip without converting the frame
                if not ok:
                    break
                index += 1
        finally:
            cap.release()
        check_fully_decoded(self.path, self.num_frames, index,
                            'Use --max-frames to keep only the frames before the damage.')


def natural_key(text: str) -> list:
    """Sort key that puts frame2.png before frame10.png."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r'(\d+)', text)]


def open_source(path: str) -> FrameSource:
    """Probe a video file or a frame folder; raise a clear error naming the input when it cannot be used."""
    if not os.path.exists(path):
        raise FileNotFoundError(f'--input {path}: does not exist.')
    if os.path.isdir(path):
        return _probe_folder(path)
    if path.lower().endswith(IMAGE_EXTENSIONS):
        raise ValueError(f'--input {path}: is a single image; pass the folder that holds the frames of a clip.')
    return _probe_video(path)


def _probe_folder(path: str) -> FrameSource:
    files = sorted((f for f in os.listdir(path) if f.lower().endswith(IMAGE_EXTENSIONS)), key=natural_key)
    if not files:
        raise ValueError(f'--input {path}: the folder holds zero frames (no {", ".join(IMAGE_EXTENSIONS)} files).')
    files = [os.path.join(path, f) for f in files]
    size = None
    for file in files:  # header reads only: cheap enough to check every frame before processing
        try:
            with Image.open(file) as img:
                file_size = img.size
        except Exception as err:  # PIL raises several types for damaged or non-image files
            raise ValueError(f'{file}: cannot be read as an image: {err}') from err
        if size is None:
            size, first = file_size, file
        elif file_size != size:
            raise ValueError(f'--input {path}: mixed frame sizes: {file} is {file_size[0]}x{file_size[1]} but '
                             f'{first} is {size[0]}x{size[1]}; one clip must keep one frame size.')
    return FrameSource(path, 'frames', size[0], size[1], len(files), tuple(files))


def _probe_video(path: str) -> FrameSource:
    cap = cv2.VideoCapture(path)
    try:
        if not cap.isOpened():
            raise ValueError(f'--input {path}: cannot be opened as a video (unreadable, truncated, or a codec '
                             'OpenCV cannot decode).')
        ok, frame = cap.read()
        if not ok:
            raise ValueError(f'--input {path}: the video has zero decodable frames.')
        reported = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    height, width = frame.shape[:2]
    return FrameSource(path, 'video', width, height, max(reported, 1))
