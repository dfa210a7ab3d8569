"""One rule for damaged video files, shared by footage preparation and streaming inference.

A video file's container states how many frames it holds; when decoding ends before that count, the file is
truncated or damaged, and a result built from the decodable frames alone would silently be short. Cameras and
streams state no count, so the rule applies to files only.
"""


class TruncatedVideoError(ValueError):
    """Decoding a video file stopped before the frame count its container reports."""


def check_fully_decoded(path: str, reported: int | None, decoded: int, remedy: str) -> None:
    """Raise ``TruncatedVideoError`` naming ``path`` and both counts when ``decoded < reported``.

    Args:
        path: The video file, named in the message.
        reported: Frames the container reports; ``None`` or <= 0 when it reports none (nothing to check).
        decoded: Frames decoding gave before it stopped.
        remedy: What the user can do about it (the flag that accepts or limits the frames), appended.
    """
    if reported and reported > 0 and decoded < reported:
        raise TruncatedVideoError(f'{path}: the container reports {reported} frames but decoding stopped after '
                                  f'{decoded}: the file is truncated or damaged. {remedy}')
