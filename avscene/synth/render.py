"""Pixels of the synthetic world: a drifting textured background with sensor noise, anti-aliased
shapes and faces, and the per-object ground-truth masks and boxes.

Conventions: pixel ``(row y, column x)`` covers ``[x, x+1) x [y, y+1)``, its centre is
``(x + 0.5, y + 0.5)``. Objects are drawn in index order (later ones occlude earlier ones).
``masks`` are amodal silhouettes (coverage >= 0.5, occluded parts included); ``boxes`` are
``(x0, y0, x1, y1)`` pixel edges of the tight box around every pixel the object covers at all
(coverage > 0), ``x1``/``y1`` exclusive, so every mask pixel lies inside its box.

Every object is rasterised only inside a square window that follows it (the window always lies
inside the frame because motions keep objects inside), vectorised over all frames at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from avscene.synth.motion import Motion

SHAPES = ("disc", "square", "triangle", "ring")
#: Shapes a silent distractor may take to look like the sounding object (localisation task).
SHAPE_FAMILIES = {"round": ("disc", "ring"), "angular": ("square", "triangle"), "face": ("face",)}

_SQUARE_HALF = 0.85  # half side of a square / radius, so a square's area is close to a disc's
_TRI_ANGLES = -np.pi / 2 + 2 * np.pi * np.arange(3) / 3  # vertex directions, apex up at angle 0
_EYE_COLOUR = np.array([25.0, 20.0, 20.0], np.float32)
_MOUTH_COLOUR = np.array([90.0, 15.0, 30.0], np.float32)
SKIN_TONES = ((236, 188, 150), (224, 172, 105), (198, 134, 66), (141, 85, 36), (255, 219, 172),
              (170, 110, 80))


def shape_family(shape: str) -> str:
    """Family name of ``shape`` (key of :data:`SHAPE_FAMILIES`)."""
    for fam, members in SHAPE_FAMILIES.items():
        if shape in members:
            return fam
    raise ValueError(f"unknown shape {shape!r}")


def circumradius(shape: str, radius: float) -> float:
    """Largest distance (px) from the centre to any point of ``shape`` of size ``radius``."""
    return radius * _SQUARE_HALF * np.sqrt(2.0) if shape == "square" else radius


def support(shape: str, radius: float, angle: np.ndarray, direction: tuple[float, float]) -> np.ndarray:
    """Extent (px) of ``shape`` from its centre along unit ``direction`` at rotation ``angle``
    (array of rad): ``max p . direction`` over the shape; what sets the centre at contact."""
    angle = np.asarray(angle, np.float64)
    d = np.asarray(direction, np.float64)
    if shape == "square":
        h = radius * _SQUARE_HALF
        corners = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], np.float64) * h
        c, s = np.cos(angle)[..., None], np.sin(angle)[..., None]
        px = c * corners[:, 0] - s * corners[:, 1]
        py = s * corners[:, 0] + c * corners[:, 1]
        return (px * d[0] + py * d[1]).max(-1)
    if shape == "triangle":
        a = angle[..., None] + _TRI_ANGLES
        return (radius * (np.cos(a) * d[0] + np.sin(a) * d[1])).max(-1)
    return np.full(angle.shape, float(radius))


def _sdf(shape: str, dx: np.ndarray, dy: np.ndarray, r: np.ndarray, ang: np.ndarray) -> np.ndarray:
    """Signed distance (px, negative inside) of ``shape`` with radius ``r`` and rotation ``ang``
    (both broadcastable to dx), at offsets ``dx, dy`` from its centre."""
    if shape in ("disc", "face"):
        return np.sqrt(dx * dx + dy * dy) - r
    if shape == "ring":
        return np.abs(np.sqrt(dx * dx + dy * dy) - 0.75 * r) - 0.25 * r
    c, s = np.cos(ang), np.sin(ang)
    u, v = c * dx + s * dy, -s * dx + c * dy  # rotate into the shape's frame
    if shape == "square":
        h = _SQUARE_HALF * r
        qx, qy = np.abs(u) - h, np.abs(v) - h
        outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
        return outside + np.minimum(np.maximum(qx, qy), 0)
    if shape == "triangle":
        # Edge normals point away from the vertices: max of the three half-plane distances.
        d = None
        for a in _TRI_ANGLES + np.pi:
            e = u * np.cos(a) + v * np.sin(a) - 0.5 * r
            d = e if d is None else np.maximum(d, e)
        return d
    raise ValueError(f"unknown shape {shape!r}")


def _coverage(sdf: np.ndarray) -> np.ndarray:
    """Anti-aliased pixel coverage in [0, 1] from a signed distance (one-pixel ramp)."""
    return np.clip(0.5 - sdf, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True, eq=False)
class Sprite:
    """An object rasterised in a moving window: ``origin`` (T, 2) int64 window top-left (x, y)
    in the frame; ``silhouette`` (T, S, S) coverage; ``layers`` tuple of (alpha (T, S, S),
    colour (T, 3)) painted in order."""

    origin: np.ndarray
    silhouette: np.ndarray
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]

    @property
    def size(self) -> int:
        return self.silhouette.shape[1]


def draw_sprite(shape: str, radius: float, colour: np.ndarray, motion: Motion, height: int,
                width: int) -> Sprite:
    """Rasterise ``shape`` of ``radius`` px and RGB ``colour`` (0-255) following ``motion``."""
    T = len(motion.centre)
    r_max = circumradius(shape, radius) * float(motion.scale.max())
    S = min(int(np.ceil(2 * r_max)) + 4, height, width)
    ox = np.clip(np.round(motion.centre[:, 0] - S / 2), 0, width - S).astype(np.int64)
    oy = np.clip(np.round(motion.centre[:, 1] - S / 2), 0, height - S).astype(np.int64)
    grid = np.arange(S, dtype=np.float32) + 0.5
    dx = grid[None, None, :] + (ox - motion.centre[:, 0]).astype(np.float32)[:, None, None]  # (T, 1, S)
    dy = grid[None, :, None] + (oy - motion.centre[:, 1]).astype(np.float32)[:, None, None]  # (T, S, 1)
    r = (radius * motion.scale).astype(np.float32)[:, None, None]
    ang = motion.angle.astype(np.float32)[:, None, None]
    body = _coverage(_sdf(shape, dx, dy, r, ang))  # (T, S, S)
    glow = motion.glow.astype(np.float32)[:, None]
    base = np.asarray(colour, np.float32)[None, :]
    body_colour = base + glow * (255.0 - base) * 0.7  # (T, 3): pulses brighten towards white
    layers = [(body, body_colour)]
    if shape == "face":
        eyes = np.maximum(_coverage(np.sqrt((dx - 0.38 * r) ** 2 + (dy + 0.2 * r) ** 2) - 0.13 * r),
                          _coverage(np.sqrt((dx + 0.38 * r) ** 2 + (dy + 0.2 * r) ** 2) - 0.13 * r))
        mouth = np.zeros(T, np.float32) if motion.mouth is None else motion.mouth.astype(np.float32)
        a = 0.4 * r
        b = (0.05 + 0.3 * mouth)[:, None, None] * r
        rn = np.sqrt((dx / a) ** 2 + ((dy - 0.42 * r) / b) ** 2)
        lips = _coverage((rn - 1.0) * np.minimum(a, b))
        T3 = np.ones((T, 1), np.float32)
        layers += [(eyes * body, _EYE_COLOUR * T3), (lips * body, _MOUTH_COLOUR * T3)]
    return Sprite(np.stack([ox, oy], 1), body, tuple(layers))


def _window_index(sprite: Sprite) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcastable (t, y, x) frame indices of every window pixel, each (T, S, S)-compatible."""
    T, S = len(sprite.origin), sprite.size
    t = np.arange(T)[:, None, None]
    y = sprite.origin[:, 1][:, None, None] + np.arange(S)[None, :, None]
    x = sprite.origin[:, 0][:, None, None] + np.arange(S)[None, None, :]
    return t, y, x


def sprite_mask_and_boxes(sprite: Sprite, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Amodal mask (T, H, W) bool (coverage >= 0.5) and boxes (T, 4) float32 (x0, y0, x1, y1)
    pixel edges around all covered pixels (coverage > 0); an empty frame gets a zero box."""
    T = len(sprite.origin)
    mask = np.zeros((T, height, width), bool)
    t, y, x = _window_index(sprite)
    mask[t, y, x] = sprite.silhouette >= 0.5
    cov = sprite.silhouette > 0
    cols, rows = cov.any(1), cov.any(2)  # (T, S)
    S = sprite.size
    x0 = np.argmax(cols, 1)
    x1 = S - np.argmax(cols[:, ::-1], 1)
    y0 = np.argmax(rows, 1)
    y1 = S - np.argmax(rows[:, ::-1], 1)
    boxes = np.stack([x0 + sprite.origin[:, 0], y0 + sprite.origin[:, 1],
                      x1 + sprite.origin[:, 0], y1 + sprite.origin[:, 1]], 1).astype(np.float32)
    boxes[~cols.any(1)] = 0.0
    return mask, boxes


def render_background(rng: np.random.Generator, frame_times_s: np.ndarray, height: int, width: int,
                      difficulty: float) -> tuple[np.ndarray, np.ndarray]:
    """Background (T, H, W, 3) float32 in 0-255 for frames at ``frame_times_s`` (T,) and its
    mean colour (3,).

    A colour texture of smoothed random noise at three scales (contrast grows with
    ``difficulty``) that drifts slowly (integer crop of a larger texture along a smooth path)
    under a slight global illumination flicker, so "something moves" even where no object is.
    """
    pad = max(6, min(height, width) // 8)
    H, W = height + 2 * pad, width + 2 * pad
    base = rng.uniform(40.0, 200.0, 3)

    def field() -> np.ndarray:
        f = sum(w * gaussian_filter(rng.standard_normal((H, W)), s, mode="wrap")
                for w, s in zip(rng.dirichlet([2, 2, 2]), (1.0, 3.0, 8.0)))
        return (f - f.mean()) / (f.std() + 1e-9)

    lum, chroma = field(), field()
    d_chroma = rng.normal(0, 1, 3)
    d_chroma /= np.linalg.norm(d_chroma)
    contrast = 12.0 + 40.0 * difficulty
    tex = (base + contrast * lum[..., None] * rng.uniform(0.8, 1.2, 3)
           + 0.5 * contrast * chroma[..., None] * d_chroma).astype(np.float32)

    t = np.asarray(frame_times_s, np.float64)
    drift = np.empty((len(t), 2), np.int64)
    for ax in range(2):
        f, ph = rng.uniform(0.03, 0.12), rng.uniform(0, 2 * np.pi)
        drift[:, ax] = np.round(pad + (pad - 1) * np.sin(2 * np.pi * f * t + ph))
    frames = np.stack([tex[oy : oy + height, ox : ox + width] for ox, oy in drift])  # (T, H, W, 3)
    flicker = 1.0 + 0.03 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t + rng.uniform(0, 6.3))
    frames *= flicker.astype(np.float32)[:, None, None, None]
    return frames, tex.reshape(-1, 3).mean(0)


def composite(background: np.ndarray, sprites: list[Sprite], rng: np.random.Generator,
              noise_sigma: float) -> np.ndarray:
    """Paint ``sprites`` in order over a copy of ``background`` (T, H, W, 3) float32, add
    Gaussian sensor noise of std ``noise_sigma`` (0-255 units) and quantise: uint8 (T, H, W, 3)."""
    frames = background.copy()
    for sp in sprites:
        t, y, x = _window_index(sp)
        patch = frames[t, y, x]  # (T, S, S, 3)
        for alpha, colour in sp.layers:
            a = alpha[..., None]
            patch = patch * (1 - a) + colour[:, None, None, :] * a
        frames[t, y, x] = patch
    if noise_sigma > 0:
        frames += rng.standard_normal(frames.shape, dtype=np.float32) * np.float32(noise_sigma)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)
