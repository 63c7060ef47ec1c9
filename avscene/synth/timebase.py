"""The shared clock of a synthetic scene: frames at an exact ``Fraction`` rate, samples at an
integer rate, and the table that maps one to the other.

Every frame -> sample conversion in :mod:`avscene.synth` goes through :class:`Timebase`, which
calls :func:`avscene.constants.frame_to_sample`; nothing truncates with ``int()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from avscene.constants import as_fps, frame_to_sample, seconds_to_frames, seconds_to_samples


@dataclass(frozen=True, eq=False)
class Timebase:
    """Frame and sample grid of one scene.

    ``frame_starts[k]`` is the sample at the same instant as the start of frame ``k`` for
    ``k = 0 .. n_frames`` (so ``frame_starts[n_frames] == n_samples``); frame ``k`` spans samples
    ``frame_starts[k] : frame_starts[k + 1]``.
    """

    fps: Fraction
    sample_rate: int
    n_frames: int
    n_samples: int
    frame_starts: np.ndarray  # (n_frames + 1,) int64

    @classmethod
    def create(cls, duration_s: float, fps: float | Fraction, sample_rate: int) -> "Timebase":
        """Grid for a clip of ``duration_s`` seconds: ``seconds_to_frames`` frames and the
        matching ``frame_to_sample(n_frames)`` samples."""
        fps = as_fps(fps)
        sample_rate = int(sample_rate)
        n_frames = seconds_to_frames(duration_s, fps)
        if n_frames < 2:
            raise ValueError(f"a scene needs at least 2 frames, got {n_frames} for {duration_s} s")
        starts = np.array([frame_to_sample(k, fps, sample_rate) for k in range(n_frames + 1)], np.int64)
        return cls(fps, sample_rate, n_frames, int(starts[-1]), starts)

    def sample_of(self, frame: int) -> int:
        """Sample at the start of ``frame`` (any integer, also outside the clip)."""
        if 0 <= frame <= self.n_frames:
            return int(self.frame_starts[frame])
        return frame_to_sample(frame, self.fps, self.sample_rate)

    def frames(self, seconds: float) -> int:
        """Whole frames in ``seconds`` (truncated, as :func:`seconds_to_frames`)."""
        return seconds_to_frames(seconds, self.fps)

    def samples(self, seconds: float) -> int:
        """Samples in ``seconds`` (rounded, as :func:`seconds_to_samples`)."""
        return seconds_to_samples(seconds, self.sample_rate)

    @property
    def frame_period_s(self) -> float:
        """Duration of one frame (s)."""
        return float(1 / self.fps)

    @property
    def frame_times_s(self) -> np.ndarray:
        """Start time of every frame (s), (n_frames,) float64."""
        return np.arange(self.n_frames) / float(self.fps)

    @property
    def sample_times_s(self) -> np.ndarray:
        """Time of every sample (s), (n_samples,) float64."""
        return np.arange(self.n_samples) / self.sample_rate

    def per_frame(self, signal: np.ndarray, how: str = "mean") -> np.ndarray:
        """Reduce a sample-rate ``signal`` (N,) to one value per frame over each frame's span:
        ``how`` is ``'mean'`` or ``'max'``. Returns (n_frames,) float32."""
        starts = self.frame_starts[:-1]
        if how == "max":
            return np.maximum.reduceat(signal, starts).astype(np.float32)
        if how == "mean":
            sums = np.add.reduceat(signal.astype(np.float64), starts)
            return (sums / np.diff(self.frame_starts)).astype(np.float32)
        raise ValueError(f"how must be 'mean' or 'max', got {how!r}")

    def to_samples(self, per_frame_values: np.ndarray) -> np.ndarray:
        """Linearly interpolate a per-frame quantity (n_frames,) (value at each frame's start) to
        every sample, (n_samples,) float64."""
        return np.interp(np.arange(self.n_samples), self.frame_starts[:-1], per_frame_values)
