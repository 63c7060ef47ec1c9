"""The one exception family of the media layer.

Every failure to read or write media becomes a :class:`MediaError` that names the file and says
what is wrong in words a user can act on; the CLI prints it as one line and exits non-zero.
"""

from __future__ import annotations

import os


class MediaError(ValueError):
    """A media file could not be used: ``str(err)`` is ``"<path>: <reason>"``."""

    def __init__(self, path: str | os.PathLike | None, reason: str):
        self.path = None if path is None else os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path is not None else reason)


class NoStreamError(MediaError):
    """The file has no stream of a kind that is needed (no audio, or no video)."""


class ClipRangeError(MediaError):
    """The requested time window does not fit inside the file."""
