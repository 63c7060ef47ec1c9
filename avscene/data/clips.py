"""What every task's clip sampling shares: the model's clip length and rates, the crop and the
larger stored frame it is cut from, and the augmentation switches.

:class:`ClipSampling` is the base of the shift, action and separation samplings
(:mod:`avscene.data.shift_pairs`, :mod:`avscene.data.action_clips`,
:mod:`avscene.data.separation_examples`), which add what only their task needs.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Any

from avscene.constants import PAPER_CROP_SIZE, PAPER_FULL_SIZE, as_fps, frame_to_sample


def full_size_for(crop_size: int) -> int:
    """Side of the stored frame a ``crop_size`` crop is cut from: the paper's 256 for 224."""
    return round(crop_size * PAPER_FULL_SIZE / PAPER_CROP_SIZE)


@dataclasses.dataclass(frozen=True)
class ClipSampling:
    """``n_frames`` frames at ``fps`` with ``frame_to_sample(n_frames)`` samples at
    ``sample_rate`` x ``channels``; frames resized to ``full_size`` and cropped to ``crop_size``
    (random crop and whole-clip flip when ``augment``, the stereo channels swapped with the flip
    when ``flip_swaps_stereo``; centre crop otherwise)."""

    n_frames: int
    fps: Fraction
    sample_rate: int
    crop_size: int
    full_size: int
    channels: int = 2
    augment: bool = True
    flip_swaps_stereo: bool = True

    def __post_init__(self):
        object.__setattr__(self, "fps", as_fps(self.fps))
        if self.full_size < self.crop_size:
            raise ValueError(f"full_size {self.full_size} < crop_size {self.crop_size}")
        if self.n_frames < 1:
            raise ValueError(f"n_frames must be >= 1, got {self.n_frames}")

    @staticmethod
    def fields_for(shift_cfg) -> dict[str, Any]:
        """The shared fields for a network of config ``shift_cfg`` (a ShiftNetConfig): its clip
        length, rates, crop (stored at :func:`full_size_for` it) and audio channels."""
        return dict(n_frames=shift_cfg.n_frames, fps=shift_cfg.fps, sample_rate=shift_cfg.sample_rate,
                    crop_size=shift_cfg.crop_size, full_size=full_size_for(shift_cfg.crop_size),
                    channels=shift_cfg.audio_channels)

    @property
    def clip_s(self) -> float:
        """Length of a clip (s)."""
        return float(self.n_frames / self.fps)

    @property
    def n_samples(self) -> int:
        """Samples per clip, ``frame_to_sample(n_frames)``."""
        return frame_to_sample(self.n_frames, self.fps, self.sample_rate)
