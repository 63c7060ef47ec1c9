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

    def __reduce__(self):
        # Rebuilt from (path, reason), not from the formatted message, so that an error raised in
        # a decode worker (avscene.media.isolate) arrives in the parent as the same error.
        return (type(self), (self.path, self.reason), self.__dict__)


class NoStreamError(MediaError):
    """The file has no stream of a kind that is needed (no audio, or no video)."""


class ClipRangeError(MediaError):
    """The requested time window does not fit inside the file."""


class DecoderCrashError(MediaError):
    """The decoder (FFmpeg through PyAV) ended its worker process with a signal or an exit
    code while reading the file (:mod:`avscene.media.isolate`)."""


class DecoderStallError(MediaError):
    """The decoder made no progress on the file for the worker's stall timeout and was stopped
    (:mod:`avscene.media.isolate`)."""
