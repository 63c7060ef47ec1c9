"""Examples for the self-supervised shift task: one clip, its aligned audio and a shifted audio.

As in the release, each clip gives one positive and one negative: the video frames
``[f1, f1 + n_frames)``, the audio starting at frame ``f1`` (aligned) and the audio starting at
frame ``f2`` of the *same* video (shifted by ``f2 - f1`` frames, 2.0-5.8 s at the paper's scale,
either direction). The clip and its aligned audio come from one read, the shifted audio from a
second, audio-only read of the same file, so frames are converted only for the clip itself.
With ``negatives="random-pair"`` the negative audio comes from another video instead (Table 1's
ablation).

Every example is a pure function of ``(seed, example_id)``: the video, the window, the crop and
the flip are drawn from ``np.random.default_rng((seed, example_id))``. Training therefore reads
the same examples whatever the number of processes or workers, and a resumed run continues with
exactly the examples it would have seen.

A set small enough to hold decoded (:data:`HOLD_BYTES`, e.g. the demo's 120 synthetic scenes in
about 0.5 GB) is decoded once, whole, per process (:class:`HeldVideos`), and its windows are cut
from memory: seeking and decoding a window cost more than the small network's training step
(30 ms of one core per example against 50 ms of two for the ``small`` preset).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from avscene.constants import PAPER_CLIP_SECONDS, PAPER_SHIFT_RANGE_S, frame_to_sample
from avscene.data.clips import ClipSampling
from avscene.data.videos import VideoIndex
from avscene.media import MediaError, read_clip

Negatives = Literal["shift", "random-pair"]

#: Reads that fail (a file corrupt in the middle) are retried on other videos this many times.
_MAX_READ_TRIES = 8

#: Bytes of decoded frames and audio a dataset may hold per process (:class:`HeldVideos`).
HOLD_BYTES = 1 << 30


@dataclasses.dataclass(frozen=True)
class ShiftSampling(ClipSampling):
    """How shift examples are cut from videos (the shared fields: :class:`ClipSampling`).

    ``shift_range_s`` defaults to the paper's 2.0-5.8 s scaled by ``clip_s / 4.2`` so that short
    clips of the CPU presets get proportionally short shifts.
    """

    shift_range_s: tuple[float, float] | None = None
    negatives: Negatives = "shift"

    def __post_init__(self):
        super().__post_init__()
        if self.negatives not in ("shift", "random-pair"):
            raise ValueError(f"negatives must be 'shift' or 'random-pair', got {self.negatives!r}")

    @property
    def shift_frames(self) -> tuple[int, int]:
        """Smallest and largest shift, in frames."""
        lo, hi = self.shift_range_s or tuple(s * self.clip_s / PAPER_CLIP_SECONDS for s in PAPER_SHIFT_RANGE_S)
        return max(1, round(lo * self.fps)), max(1, round(hi * self.fps))

    @property
    def min_video_s(self) -> float:
        """Shortest usable video: one clip plus the smallest shift (and a frame to spare)."""
        frames = self.n_frames + 1 + (self.shift_frames[0] if self.negatives == "shift" else 0)
        return float(frames / self.fps)


def center_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, H, W, 3) -> (T, size, size, 3), centred."""
    top, left = (frames.shape[1] - size) // 2, (frames.shape[2] - size) // 2
    return frames[:, top : top + size, left : left + size]


def frames_to_video(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float (B, 3, T, H, W) in [-1, 1] (the release's x * 2/255 - 1)."""
    return frames.permute(0, 4, 1, 2, 3).float().mul_(2.0 / 255.0).sub_(1.0)


class HeldVideos:
    """Whole videos decoded once at ``sampling``'s rate, frame size and channels, from which
    windows are cut, when the whole ``index`` fits in ``max_bytes`` (``enabled``); each video is
    decoded on its first use, in the process that uses it. A video whose whole decode fails is
    left to window reads."""

    def __init__(self, sampling: ClipSampling, index: VideoIndex, max_bytes: int = HOLD_BYTES):
        s = sampling
        bytes_per_s = float(s.fps) * s.full_size**2 * 3 + s.sample_rate * s.channels * 4
        self.enabled = sum(v.duration_s for v in index.videos) * bytes_per_s <= max_bytes
        self.sampling = s
        self.videos: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}

    def window(self, path: str, start_frame: int, n_frames: int) -> tuple[np.ndarray, np.ndarray] | None:
        """uint8 (n_frames, S, S, 3) frames from ``start_frame`` and float32 (N, C) audio from its
        instant to that of frame ``start_frame + n_frames``; None when the video is not held."""
        if not self.enabled:
            return None
        if path not in self.videos:
            self.videos[path] = self._decode(path)
        if self.videos[path] is None:
            return None
        frames, audio = self.videos[path]
        s = self.sampling
        a0, a1 = (frame_to_sample(f, s.fps, s.sample_rate) for f in (start_frame, start_frame + n_frames))
        return frames[start_frame : start_frame + n_frames], audio[a0:a1]

    def _decode(self, path: str) -> tuple[np.ndarray, np.ndarray] | None:
        s = self.sampling
        try:
            clip = read_clip(path, fps=s.fps, size=s.full_size, fit="crop", sample_rate=s.sample_rate,
                             channels=s.channels, threads=1)
        except MediaError:
            return None
        return clip.frames, clip.audio


class ShiftPairs(Dataset):
    """Map-style dataset: ``pairs[example_id]`` -> dict of

    * ``frames``: uint8 (T, crop, crop, 3)
    * ``audio_aligned``, ``audio_shifted``: float32 (C, N), N = ``sampling.n_samples``
    * ``shift_frames``: int, the negative's shift (0 for a random pair)
    """

    def __init__(self, index: VideoIndex, sampling: ShiftSampling, *, seed: int = 0):
        if len(index) == 0:
            raise ValueError("no usable videos for shift training")
        if sampling.negatives == "random-pair" and len(index) < 2:
            raise ValueError("random-pair negatives need at least 2 videos")
        self.index, self.sampling, self.seed = index, sampling, seed
        self.held = HeldVideos(sampling, index)

    def __len__(self) -> int:
        return 2**62  # an endless stream: ids are drawn by the training loop

    def __getitem__(self, example_id: int) -> dict:
        rng = np.random.default_rng((self.seed, int(example_id)))
        for _ in range(_MAX_READ_TRIES):
            try:
                return self._example(rng)
            except MediaError:
                continue  # a file that probed fine but fails mid-way: draw another
        raise RuntimeError(f"example {example_id}: {_MAX_READ_TRIES} reads failed in a row; is the data corrupt?")

    def _read(self, info, start_frame: int, n_frames: int, *, video: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Frames (T, S, S, 3) (empty without ``video``) and audio (N, C) of a window."""
        s = self.sampling
        held = self.held.window(info.path, start_frame, n_frames)
        if held is not None:
            frames, audio = held
        else:
            clip = read_clip(info.path, float(start_frame / s.fps), float(n_frames / s.fps) + 1e-6,
                             fps=s.fps if video else None, size=s.full_size, fit="crop", sample_rate=s.sample_rate,
                             channels=s.channels, video=video, threads=1)
            frames, audio = clip.frames, clip.audio
        if len(audio) < s.n_samples or (video and len(frames) < s.n_frames):
            raise MediaError(info.path, f"window at frame {start_frame} is short")
        return frames, audio

    def _example(self, rng: np.random.Generator) -> dict:
        s = self.sampling
        which = int(rng.integers(len(self.index)))
        info = self.index.videos[which]
        total = math.floor(info.duration_s * s.fps) - 1  # whole frames, one spare for rounding
        n, n_samples = s.n_frames, s.n_samples
        if s.negatives == "shift":
            f1, shift = draw_shift(s, total, rng)
            # Two reads of one file: frames are converted only for the clip itself, the shifted
            # audio is read without decoding video (its frames would cost 2x the conversions).
            frames, aligned = self._read(info, f1, n + 1)  # one spare frame covers sample rounding
            frames, aligned = frames[:n], aligned[:n_samples]
            shifted = self._read(info, f1 + shift, n + 1, video=False)[1][:n_samples]
        else:
            shift = 0
            first = int(rng.integers(0, total - n + 1))
            frames, aligned = self._read(info, first, n + 1)
            frames, aligned = frames[:n], aligned[:n_samples]
            other = self.index.videos[(which + 1 + int(rng.integers(len(self.index) - 1))) % len(self.index)]
            other_total = math.floor(other.duration_s * s.fps) - 1
            other_first = int(rng.integers(0, max(1, other_total - n + 1)))
            shifted = self._read(other, other_first, n + 1, video=False)[1][:n_samples]
        frames, aligned, shifted = self._augment(frames, aligned, shifted, rng)
        return {
            "frames": torch.from_numpy(np.ascontiguousarray(frames)),
            "audio_aligned": torch.from_numpy(np.ascontiguousarray(aligned.T)),
            "audio_shifted": torch.from_numpy(np.ascontiguousarray(shifted.T)),
            "shift_frames": shift,
        }

    def _augment(self, frames, aligned, shifted, rng):
        return augment_shift_example(self.sampling, frames, aligned, shifted, rng)


def draw_shift(sampling: ShiftSampling, total: int, rng: np.random.Generator) -> tuple[int, int]:
    """Draw where a shift example sits in a video of ``total`` usable frames: ``(f1, shift)``.

    The clip is frames ``[f1, f1 + n_frames)``; the negative's audio starts at frame
    ``f1 + shift``. ``|shift|`` is within ``sampling.shift_frames`` (its top capped by what fits),
    either sign with equal odds, and both windows lie inside ``[0, total)``. Shared by
    :class:`ShiftPairs` (whole videos) and the shard reader (stored segments) so both draw
    examples the same way.
    """
    n = sampling.n_frames
    lo, hi = sampling.shift_frames
    hi = min(hi, total - n)
    if hi < lo:
        raise ValueError(f"{total} frames hold no shift example: need at least {n + lo} "
                         f"({n} for the clip + {lo} for the smallest shift)")
    shift = int(rng.integers(lo, hi + 1)) * (1 if rng.random() < 0.5 else -1)
    span = n + abs(shift)
    first = int(rng.integers(0, total - span + 1))
    f1 = first if shift > 0 else first - shift
    return f1, shift


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Where a clip is cropped and whether it is mirrored: frames ``[top, top + size)`` x
    ``[left, left + size)``, flipped left-right if ``flip``, the stereo channels swapped if
    ``swap_stereo``."""

    top: int
    left: int
    size: int
    flip: bool = False
    swap_stereo: bool = False

    def crop(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) -> (T, size, size, 3): cropped, and mirrored if ``flip``."""
        frames = frames[:, self.top : self.top + self.size, self.left : self.left + self.size]
        return frames[:, :, ::-1] if self.flip else frames


def draw_augmentation(sampling: ClipSampling, frame_hw: tuple[int, int], channels: int,
                      rng: np.random.Generator) -> Augmentation:
    """A random crop and a whole-clip horizontal flip (stereo swapped with it), or the centre
    crop when ``sampling.augment`` is off (no draw then). Drawn apart from the pixels so a
    reader can crop and mirror while it decodes."""
    s, (h, w) = sampling, frame_hw
    if not s.augment:
        return Augmentation((h - s.crop_size) // 2, (w - s.crop_size) // 2, s.crop_size)
    top, left = int(rng.integers(0, h - s.crop_size + 1)), int(rng.integers(0, w - s.crop_size + 1))
    flip = bool(rng.random() < 0.5)
    # the release forgot the stereo swap (§10.12)
    return Augmentation(top, left, s.crop_size, flip, flip and s.flip_swaps_stereo and channels == 2)


def augment_shift_example(sampling: ShiftSampling, frames: np.ndarray, aligned: np.ndarray, shifted: np.ndarray,
                          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply :func:`draw_augmentation`: frames (T, full, full, 3) -> (T, crop, crop, 3); aligned,
    shifted (N, C) kept or with their channels swapped."""
    a = draw_augmentation(sampling, frames.shape[1:3], aligned.shape[1], rng)
    frames = a.crop(frames)
    if a.swap_stereo:
        aligned, shifted = aligned[:, ::-1], shifted[:, ::-1]
    return frames, aligned, shifted
