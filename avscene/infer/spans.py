"""Windows of a media file decoded a long span at a time (``sync`` and ``localize``).

Windows that overlap or lie close together (a scan's margins, a CAM's half-window hops, the
evenly spread windows of ``max_windows``) would each cost a seek, a decode from the previous
keyframe and the frames they share again. :class:`SpanReader` decodes a span of consecutive
model frames once and serves every window inside it from memory; the span's size is bounded
(``SPAN_BYTES`` of frames, at least one request), so memory does not grow with the video.
"""

from __future__ import annotations

import os

import numpy as np

from avscene.constants import frame_to_sample
from avscene.media import read_clip

#: About how many bytes of model-size frames one span holds.
SPAN_BYTES = 64 << 20


class SpanReader:
    """Frames ``[first, last)`` of a file at ``fps`` and the audio between their instants, read
    through spans. Requests should ascend (a request outside the current span reads a new one,
    starting at the request).

    ``total_frames``: frames at ``fps`` in the file (spans never reach past it); ``frame_bytes``:
    bytes of one output frame (sets the span length); ``read``: the other ``read_clip`` arguments
    (``size``, ``fit``, ``channels``, ...).
    """

    def __init__(self, path: str | os.PathLike, total_frames: int, fps, sample_rate: int, frame_bytes: int,
                 **read) -> None:
        self.path, self.total, self.fps, self.rate, self.read = path, total_frames, fps, sample_rate, read
        self.span = max(1, SPAN_BYTES // max(1, frame_bytes))
        self.start, self.frames, self.audio = 0, None, None

    def __call__(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (last - first, H, W, 3) frames and float32 (N, C) audio from frame ``first``'s
        instant to frame ``last``'s."""
        if self.frames is None or not (self.start <= first and last <= self.start + len(self.frames)):
            length = min(max(self.span, last - first), self.total - first)
            # 1 us past the frame's instant, so float rounding never selects the frame before it
            clip = read_clip(self.path, float(first / self.fps) + 1e-6, float(length / self.fps) + 1e-6, fps=self.fps,
                             sample_rate=self.rate, **self.read)
            self.start, self.frames, self.audio = first, clip.frames, clip.audio
        a0, a1 = (frame_to_sample(f, self.fps, self.rate) - frame_to_sample(self.start, self.fps, self.rate)
                  for f in (first, last))
        return self.frames[first - self.start : last - self.start], self.audio[a0:a1]
