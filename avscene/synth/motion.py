"""Trajectories of the visual objects and the irregular event schedules that drive them.

Positions are continuous pixel coordinates (x right, y down; pixel ``j`` covers ``[j, j+1)``),
one value per frame, evaluated at each frame's start instant. A "visual event" happens exactly
at an integer frame: the frame where a bouncing object touches its floor, where a pulse starts,
where a shaking bout starts, where a roll is pushed or where a syllable starts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avscene.synth.timebase import Timebase

#: Unit vectors of the four "gravity" directions a bouncing/rolling object can fall towards.
GRAVITY_DIRECTIONS = {"down": (0.0, 1.0), "up": (0.0, -1.0), "left": (-1.0, 0.0), "right": (1.0, 0.0)}


@dataclass(frozen=True, eq=False)
class Motion:
    """Per-frame pose of one object.

    ``centre`` (T, 2) px; ``angle`` (T,) rad; ``scale`` (T,) size factor; ``glow`` (T,) in
    [0, 1] (blend of the colour towards white); ``mouth`` (T,) in [0, 1] for faces else None;
    ``event_frames`` the visual events (sorted frame indices inside the clip).
    """

    centre: np.ndarray
    angle: np.ndarray
    scale: np.ndarray
    glow: np.ndarray
    mouth: np.ndarray | None
    event_frames: tuple[int, ...]


def draw_event_frames(rng: np.random.Generator, start: int, stop: int, min_gap: int,
                      mean_extra: float, max_gap: int | None = None) -> np.ndarray:
    """Irregular event frames in ``[start, stop)``: the first in ``[start, start + min_gap)``
    (and before ``stop``, so there is at least one),
    then gaps of ``min_gap`` plus a geometric number of frames with mean ``mean_extra`` (capped
    at ``max_gap``). The random extra makes the sequence aperiodic, so that an audio offset is
    identifiable; ``min_gap`` keeps events resolvable. Returns int64 (n,)."""
    if stop <= start:
        return np.zeros(0, np.int64)
    n = (stop - start) // max(min_gap, 1) + 2
    extra = rng.geometric(1.0 / (1.0 + mean_extra), n) - 1
    gaps = min_gap + extra
    if max_gap is not None:
        gaps = np.minimum(gaps, max_gap)
    first = start + rng.integers(0, max(1, min(min_gap, stop - start)))  # >= 1 event in range
    frames = first + np.concatenate([[0], np.cumsum(gaps[:-1])])
    return frames[frames < stop].astype(np.int64)


def smooth_path(rng: np.random.Generator, tb: Timebase, lo: np.ndarray, hi: np.ndarray,
                wander: float = 1.0) -> np.ndarray:
    """Slow smooth wandering inside the box ``[lo, hi]`` (2,), (T, 2): per axis two sinusoids of
    0.05-0.25 Hz with random phases; ``wander`` in [0, 1] scales the excursion."""
    t = tb.frame_times_s
    out = np.empty((tb.n_frames, 2))
    for ax in range(2):
        f = rng.uniform(0.05, 0.25, 2)
        ph = rng.uniform(0, 2 * np.pi, 2)
        w = rng.uniform(0.5, 1.0)
        u = (w * np.sin(2 * np.pi * f[0] * t + ph[0]) + (1 - w) * np.sin(2 * np.pi * f[1] * t + ph[1]))
        mid, half = 0.5 * (lo[ax] + hi[ax]), 0.5 * max(hi[ax] - lo[ax], 0.0)
        centre0 = mid + rng.uniform(-0.5, 0.5) * half * (1 - wander)
        out[:, ax] = centre0 + u * half * wander * rng.uniform(0.5, 1.0)
    return np.clip(out, lo, hi)


def bounce_axis(tb: Timebase, contacts: np.ndarray, floor: float, away: float,
                heights: np.ndarray) -> np.ndarray:
    """Coordinate along the gravity axis (T,) of an object bouncing off a floor: at each of the
    ``contacts`` (sorted frames, extending before and after the clip) its centre is at ``floor``;
    between contacts ``i`` and ``i + 1`` it follows a parabola of apex ``heights[i]`` px in the
    direction ``away`` (+1 or -1)."""
    k = np.arange(tb.n_frames)
    i = np.clip(np.searchsorted(contacts, k, side="right") - 1, 0, len(contacts) - 2)
    k0, k1 = contacts[i], contacts[i + 1]
    s = (k - k0) / (k1 - k0)
    return floor + away * heights[i] * 4 * s * (1 - s)


def decaying_pushes(tb: Timebase, pushes: np.ndarray, distances: np.ndarray, rate: np.ndarray,
                    x0: float, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position and speed at ``times_s`` of an object pushed at frames ``pushes``: after push
    ``i`` it travels towards ``distances[i]`` (signed px) with speed decaying at ``rate[i]``
    (1/s), i.e. ``x = x_i + d_i (1 - exp(-rate_i (t - t_i)))``; at rest before the first push.
    Returns (position, speed px/s), each shaped like ``times_s``."""
    t_push = pushes / float(tb.fps)
    starts = np.empty(len(pushes))
    x = x0
    for j in range(len(pushes)):  # a handful of pushes: the loop is over events, not samples
        starts[j] = x
        if j + 1 < len(pushes):
            x = x + distances[j] * (1 - np.exp(-rate[j] * (t_push[j + 1] - t_push[j])))
    i = np.searchsorted(t_push, times_s, side="right") - 1
    before = i < 0
    i = np.maximum(i, 0)
    dt = np.maximum(times_s - t_push[i], 0.0)
    pos = starts[i] + distances[i] * (1 - np.exp(-rate[i] * dt))
    speed = np.abs(distances[i]) * rate[i] * np.exp(-rate[i] * dt)
    pos = np.where(before, x0, pos)
    speed = np.where(before, 0.0, speed)
    return pos, speed
