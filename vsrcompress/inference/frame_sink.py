"""Where SR frames go: a video file (OpenCV VideoWriter) or a folder of PNGs, never half-written as complete.

Frames are written to a temporary name beside the output (``.tmp_<host>-<pid>.<name>``, removed by the next run
in that folder if this one is killed; see ``atomic_files``) and renamed to the output only
when the run completes. A run that stops early (error or Ctrl-C) releases the writer properly, so what was
written is a playable file, and renames it to ``<stem>.partial<ext>`` (``<folder>.partial`` for frames), or to
``<stem>.partial-2<ext>`` (-3, ...) where that name is a file the run reads or writes (an input named like the
partial output, a model file, another output or its partial name: the ``avoid`` paths); if no frame was
written, or a write failed (a full disk), the temporary output is removed and nothing is left. Every write is
checked: PNG frames by ``cv2.imwrite``'s result, a video by re-reading it when it is closed.
"""
import itertools
import os
import shutil
from collections.abc import Sequence

import cv2
import numpy as np

from vsrcompress.atomic_files import owned_prefix, remove_stale_temporaries
from vsrcompress.cli import same_file

VIDEO_FOURCC = {'.mp4': 'mp4v', '.m4v': 'mp4v', '.mov': 'mp4v', '.avi': 'MJPG', '.mkv': 'MJPG'}


def partial_path(path: str, avoid: Sequence[str | None] = ()) -> str:
    """Where an incomplete run leaves its output: ``out.partial.mp4`` for ``out.mp4``, or the first of
    ``out.partial-2.mp4``, ``out.partial-3.mp4``, ... that is none of ``avoid`` (under any spelling or link)."""
    stem, ext = os.path.splitext(path.rstrip(os.sep))
    avoid = [p for p in avoid if p is not None]
    for number in itertools.count(1):
        candidate = f'{stem}.partial{"" if number == 1 else f"-{number}"}{ext}'
        if not any(same_file(candidate, p) for p in avoid):
            return candidate


def check_writable_folder(path: str) -> str:
    """The folder ``path`` would be written into; a ValueError naming the problem if it cannot be."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        what = 'is not a folder' if os.path.exists(folder) else 'does not exist'
        raise ValueError(f'output: cannot write {path}: {folder} {what}.')
    if not os.access(folder, os.W_OK):
        raise ValueError(f'output: cannot write {path}: folder {folder} is not writable.')
    return folder


def _missing_video_frames(path: str, expected: int) -> int | None:
    """None if the written video at ``path`` holds ``expected`` frames, else the frames it really holds.

    The container's count alone is not enough: AVI rewrites it in the header at close even when the frame data
    after it could not be written. Seeking to and decoding the last frame is cheap and fails on a short file;
    only then are the decodable frames counted, for the message.
    """
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            return 0
        if int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) in (expected, 0, -1):
            capture.set(cv2.CAP_PROP_POS_FRAMES, expected - 1)
            if capture.read()[0] and not capture.read()[0]:
                return None
        capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        count = 0
        while capture.grab():
            count += 1
        return count if count != expected else None
    finally:
        capture.release()


class FrameSink:
    """Write BGR uint8 frames of one size; ``finish()`` publishes the output, ``abort()`` keeps a partial one.

    ``avoid``: the other files the run reads or writes (inputs, model files, other outputs, the report); the partial
    name is chosen so that it replaces none of them, nor another output's partial name.
    """

    def __init__(self, path: str, fps: float, width: int, height: int, fourcc: str | None = None,
                 avoid: Sequence[str | None] = ()):
        self.path = path.rstrip(os.sep)
        others = [p for p in avoid if p is not None and not same_file(p, self.path)]
        self.avoid = [self.path, *others, *(partial_path(p) for p in others)]  # what the partial name must not be
        self.size = (width, height)
        self.frames_written = 0
        self.partial: str | None = None  # set by abort() when a partial output was kept
        folder = check_writable_folder(self.path)
        remove_stale_temporaries(folder, '.tmp_')  # left by a killed run
        self.tmp = os.path.join(folder, owned_prefix('.tmp_') + os.path.basename(self.path))
        ext = os.path.splitext(self.path)[1].lower()
        self.is_video = bool(ext)
        if os.path.exists(self.path) and os.path.isdir(self.path) == self.is_video:
            want = 'a video file' if self.is_video else 'a frame folder'
            raise ValueError(f'output: {path} exists and is not {want}; remove it or choose another name.')
        self._writer = None
        self._sealed = False
        self._broken = False  # seal() found frames missing: nothing of it is kept
        if self.is_video:
            fourcc = fourcc or VIDEO_FOURCC.get(ext)
            if fourcc is None:
                raise ValueError(f'output: unknown video extension {ext!r} for {path}; use one of '
                                 f'{sorted(VIDEO_FOURCC)}, give --fourcc, or a path without extension for frames.')
            self._writer = cv2.VideoWriter(self.tmp, cv2.VideoWriter_fourcc(*fourcc), fps, self.size)
            if not self._writer.isOpened():
                self._remove_tmp()
                raise ValueError(f'output: OpenCV cannot write {ext} video with fourcc {fourcc!r} to {path}.')
        else:
            if os.path.isdir(self.path) and os.listdir(self.path):
                raise ValueError(f'output: frame folder {path} exists and is not empty.')
            self._remove_tmp()
            os.makedirs(self.tmp)

    def write(self, frame: np.ndarray) -> None:
        if frame.shape[1::-1] != self.size:
            raise ValueError(f'output: frame of {frame.shape[1]}x{frame.shape[0]} for a {self.size[0]}x{self.size[1]} '
                             'output.')
        if self._writer is not None:
            self._writer.write(frame)
        elif not cv2.imwrite(os.path.join(self.tmp, f'{self.frames_written:08d}.png'), frame):
            self._broken = True
            raise OSError(f'output: cannot write frame {self.frames_written} of {self.path} (disk full or not '
                          'writable?).')
        self.frames_written += 1

    def _release(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def _remove_tmp(self) -> None:
        if os.path.isdir(self.tmp):
            shutil.rmtree(self.tmp)
        elif os.path.exists(self.tmp):
            os.remove(self.tmp)

    def _publish(self, target: str) -> None:
        if os.path.isdir(target):
            os.rmdir(target)  # an empty folder (checked at open)
        os.replace(self.tmp, target)

    def seal(self) -> None:
        """Close the writer and check the file holds every frame written: an OSError names what is missing.

        OpenCV's ``VideoWriter.write`` reports nothing (a full disk only prints warnings), so the finished file is
        re-read (see ``_missing_video_frames``).
        """
        if self._sealed:
            return
        self._release()
        if self.is_video and self.frames_written:
            found = _missing_video_frames(self.tmp, self.frames_written)
            if found is not None:
                self._broken = True
                raise OSError(f'output: {self.frames_written} frames were written to {self.path} but the file holds '
                              f'{found} (disk full or write error?).')
        self._sealed = True

    def finish(self) -> str:
        """Finalize, check and move the output into place; returns its path."""
        self.seal()
        self._publish(self.path)
        return self.path

    def abort(self) -> str | None:
        """Finalize what was written as ``partial_path(path, avoid)`` (playable), or remove it if empty or damaged by
        a failed write; returns it."""
        self._release()
        if self.frames_written == 0 or self._broken:
            self._remove_tmp()
            return None
        target = partial_path(self.path, self.avoid)
        if os.path.isdir(target):
            shutil.rmtree(target)
        self._publish(target)
        self.partial = target
        return target
