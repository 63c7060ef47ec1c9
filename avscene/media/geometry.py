"""Where a frame lands on a model's input: the four ``fit`` modes and their exact rounding.

``"crop"`` keeps the aspect ratio and scales to cover the output, then cuts the centre;
``"pad"`` keeps the aspect ratio and scales to fit inside black borders; ``"squash"``
stretches to the output; ``"squash-crop"`` (the release's sync and separation input) stretches
to 8/7 of the output (256 for 224), then cuts the centre. :func:`avscene.media.read_clip`
resizes frames with this geometry, and the maps and masks of :mod:`avscene.infer` are carried
between frame and model pixels with it.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from avscene.constants import PAPER_CROP_SIZE, PAPER_FULL_SIZE

#: How frames meet a model's square input.
FITS = ("crop", "pad", "squash", "squash-crop")
Fit = Literal["crop", "pad", "squash", "squash-crop"]


def squash_crop_side(side: int) -> int:
    """Side (px) a ``squash-crop`` fit stretches to before cropping ``side``: 256 for 224."""
    return round(side * PAPER_FULL_SIZE / PAPER_CROP_SIZE)


@dataclasses.dataclass(frozen=True)
class FitGeometry:
    """Where an (H, W) frame lands on the model's (h, w) input grid for a ``fit``: the frame is
    scaled to ``scaled_hw`` and model pixel ``(v, u)`` is scaled pixel ``(v + top, u + left)``
    with ``(top, left) = offset`` (negative for ``pad``: the picture sits inside black borders).
    All sizes in pixels, (height, width)."""

    frame_hw: tuple[int, int]
    model_hw: tuple[int, int]
    fit: str
    scaled_hw: tuple[int, int]
    offset: tuple[int, int]

    @classmethod
    def of(cls, frame_hw: tuple[int, int], size: int | tuple[int, int], fit: str = "crop") -> "FitGeometry":
        """The geometry of an (H, W) = ``frame_hw`` frame fitted to ``size`` (a side, or (h, w))."""
        if fit not in FITS:
            raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
        src_h, src_w = int(frame_hw[0]), int(frame_hw[1])
        out_h, out_w = (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
        if fit == "squash" or (src_h, src_w) == (out_h, out_w):
            return cls((src_h, src_w), (out_h, out_w), fit, (out_h, out_w), (0, 0))
        if fit == "squash-crop":
            scaled_h, scaled_w = squash_crop_side(out_h), squash_crop_side(out_w)
            return cls((src_h, src_w), (out_h, out_w), fit, (scaled_h, scaled_w),
                       ((scaled_h - out_h) // 2, (scaled_w - out_w) // 2))
        scale = (max if fit == "crop" else min)(out_h / src_h, out_w / src_w)
        scaled_h, scaled_w = max(1, round(src_h * scale)), max(1, round(src_w * scale))
        if fit == "crop":  # never let rounding leave the cover short of the output
            scaled_h, scaled_w = max(scaled_h, out_h), max(scaled_w, out_w)
            offset = ((scaled_h - out_h) // 2, (scaled_w - out_w) // 2)
        else:
            scaled_h, scaled_w = min(scaled_h, out_h), min(scaled_w, out_w)
            offset = (-((out_h - scaled_h) // 2), -((out_w - scaled_w) // 2))
        return cls((src_h, src_w), (out_h, out_w), fit, (scaled_h, scaled_w), offset)

    def to_model(self, y, x):
        """Frame pixel coordinates (y, x) -> model pixel coordinates (v, u); pixel centres."""
        (h, w), (sh, sw), (top, left) = self.frame_hw, self.scaled_hw, self.offset
        y, x = np.asarray(y, np.float64), np.asarray(x, np.float64)
        return (y + 0.5) * sh / h - 0.5 - top, (x + 0.5) * sw / w - 0.5 - left

    def to_frame(self, v, u):
        """Model pixel coordinates (v, u) -> frame pixel coordinates (y, x); pixel centres."""
        (h, w), (sh, sw), (top, left) = self.frame_hw, self.scaled_hw, self.offset
        v, u = np.asarray(v, np.float64), np.asarray(u, np.float64)
        return (v + top + 0.5) * h / sh - 0.5, (u + left + 0.5) * w / sw - 0.5

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
