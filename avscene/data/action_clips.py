"""Examples for action recognition: a labelled clip with its (slightly jittered) audio.

A training example is ``n_frames`` consecutive frames of one video at the model's frame rate,
the audio of the same window moved by a random whole number of frames in ``[-j, j]`` (the
release's ``augment_audio``: +-3 frames, about 0.1 s), a random crop of the stored frame and a
whole-clip horizontal flip that swaps the stereo channels with it. Without augmentation
(validation) the window is still drawn at random but the crop is centred, with no flip and no
audio jitter. A video shorter than a clip is looped.

Examples are pure functions of ``(seed, example_id)``: ids are read in epochs of one pass over
the videos in a random order (``default_rng((seed, epoch))``); the window, crop, flip and jitter
come from ``default_rng((seed, example_id))``. So training reads the same examples whatever the
number of processes or workers, and a resumed run continues exactly.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import torch
from torch.utils.data import Dataset

from avscene.constants import frame_to_sample, frames_in, seconds_to_frames
from avscene.data.clips import ClipSampling
from avscene.data.labelled import LabelledIndex, LabelledVideo
from avscene.data.shift_pairs import draw_augmentation
from avscene.media import MediaError, read_clip

#: The paper's action clips (s) and the release's audio jitter (frames at 29.97 fps).
PAPER_ACTION_CLIP_S = 2.56
PAPER_AUDIO_JITTER_FRAMES = 3
#: Reads that fail (a file corrupt in the middle) are retried on other videos this many times.
_MAX_READ_TRIES = 8


@dataclasses.dataclass(frozen=True)
class ActionSampling(ClipSampling):
    """How action clips are cut (the shared fields: :class:`ClipSampling`).

    ``audio_jitter_frames`` None: the release's 3 frames scaled by ``n_frames / 76`` (the
    paper's 2.56 s clip), at least 1, so short clips of the CPU presets get short jitters.
    ``use_audio`` False (vision-only models) skips decoding audio; the audio is then zeros.
    """

    audio_jitter_frames: int | None = None
    use_audio: bool = True
    fit: str = "crop"

    @classmethod
    def for_model(cls, shift_cfg, *, augment: bool, audio_jitter_frames: int | None = None) -> "ActionSampling":
        """Clips for a network of config ``shift_cfg`` (a ShiftNetConfig): its clip length,
        rates, crop and sound switch."""
        return cls(**cls.fields_for(shift_cfg), augment=augment, audio_jitter_frames=audio_jitter_frames,
                   use_audio=shift_cfg.use_sound)

    @property
    def jitter_frames(self) -> int:
        """Largest audio shift (frames) of training clips; 0 without augmentation."""
        if not self.augment:
            return 0
        if self.audio_jitter_frames is not None:
            return int(self.audio_jitter_frames)
        paper_frames = seconds_to_frames(PAPER_ACTION_CLIP_S, self.fps)
        return max(1, round(PAPER_AUDIO_JITTER_FRAMES * self.n_frames / paper_frames))


def usable_frames(video: LabelledVideo, fps: Fraction) -> int:
    """Whole frames of ``video`` at ``fps``, one spare for rounding (as the shift examples)."""
    return max(1, frames_in(video.info.duration_s, fps) - 1)


def read_action_clip(video: LabelledVideo, start_frame: int, sampling: ActionSampling, *,
                     audio_shift_frames: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``[start_frame, start_frame + n)`` (uint8 (n, full, full, 3)) of ``video`` and the
    audio from frame ``start_frame + audio_shift_frames`` (float32 (n_samples, C)), in one read.

    The audio shift is clamped so the audio stays inside the video; silence for videos without
    audio (or ``use_audio=False``); a video shorter than a clip is read whole and looped.
    """
    s = sampling
    n, n_samples = s.n_frames, s.n_samples
    total = usable_frames(video, s.fps)
    with_audio = s.use_audio and video.info.has_audio
    if total < n:
        return _read_looped(video, total, with_audio, s)
    start_frame = min(max(0, start_frame), total - n)
    d = min(max(audio_shift_frames, -start_frame), total - n - start_frame)
    first = start_frame + min(0, d)
    span = n + abs(d) + 1  # one spare frame covers sample rounding
    clip = read_clip(video.path, float(first / s.fps), float(span / s.fps) + 1e-6, fps=s.fps, size=s.full_size,
                     fit=s.fit, sample_rate=s.sample_rate, channels=s.channels, audio=with_audio, threads=1)
    frames = clip.frames[start_frame - first : start_frame - first + n]
    if len(frames) < n:
        raise MediaError(video.path, f"window at frame {start_frame} has too few frames")
    if not with_audio:
        return frames, np.zeros((n_samples, s.channels), np.float32)
    a0 = frame_to_sample(start_frame + d - first, s.fps, s.sample_rate)
    audio = clip.audio[a0 : a0 + n_samples]
    if len(audio) < n_samples:
        raise MediaError(video.path, f"window at frame {start_frame} has too little audio")
    return frames, audio


def _read_looped(video: LabelledVideo, total: int, with_audio: bool, s: ActionSampling):
    clip = read_clip(video.path, 0.0, float(total / s.fps) + 1e-6, fps=s.fps, size=s.full_size, fit=s.fit,
                     sample_rate=s.sample_rate, channels=s.channels, audio=with_audio, threads=1)
    have = clip.n_frames
    frames = clip.frames[np.arange(s.n_frames) % have]
    if not with_audio:
        return frames, np.zeros((s.n_samples, s.channels), np.float32)
    period = clip.audio[: frame_to_sample(have, s.fps, s.sample_rate)]
    reps = -(-s.n_samples // max(1, len(period)))
    return frames, np.tile(period, (reps, 1))[: s.n_samples]


class ActionClips(Dataset):
    """Map-style dataset: ``clips[example_id]`` -> dict of

    * ``frames``: uint8 (T, crop, crop, 3)
    * ``audio``: float32 (C, N), N = ``sampling.n_samples``
    * ``label``: int64 class id
    * ``audio_shift_frames``: int, the jitter applied (0 when not augmenting)
    """

    def __init__(self, index: LabelledIndex, sampling: ActionSampling, *, seed: int = 0):
        if len(index) == 0:
            raise ValueError("no usable labelled videos")
        self.index, self.sampling, self.seed = index, sampling, seed

    def __len__(self) -> int:
        return 2**62  # an endless stream: ids are drawn by the training loop

    def video_of(self, example_id: int) -> int:
        """Which video example ``example_id`` reads: epochs of one random permutation each."""
        n = len(self.index)
        epoch, pos = divmod(int(example_id), n)
        return int(np.random.default_rng((self.seed, 1, epoch)).permutation(n)[pos])

    def __getitem__(self, example_id: int) -> dict:
        rng = np.random.default_rng((self.seed, int(example_id)))
        which = self.video_of(example_id)
        for _ in range(_MAX_READ_TRIES):
            try:
                return self._example(self.index.videos[which], rng)
            except MediaError:
                which = int(rng.integers(len(self.index)))  # fails mid-file: draw another video
        raise RuntimeError(f"example {example_id}: {_MAX_READ_TRIES} reads failed in a row; is the data corrupt?")

    def _example(self, video: LabelledVideo, rng: np.random.Generator) -> dict:
        s = self.sampling
        total = usable_frames(video, s.fps)
        start = int(rng.integers(0, max(0, total - s.n_frames) + 1))
        j = s.jitter_frames
        shift = int(rng.integers(-j, j + 1)) if j else 0
        frames, audio = read_action_clip(video, start, s, audio_shift_frames=shift)
        frames, audio = self._augment(frames, audio, rng)
        return {
            "frames": torch.from_numpy(np.ascontiguousarray(frames)),
            "audio": torch.from_numpy(np.ascontiguousarray(audio.T)),
            "label": torch.tensor(video.label, dtype=torch.long),
            "audio_shift_frames": shift,
        }

    def _augment(self, frames: np.ndarray, audio: np.ndarray, rng: np.random.Generator):
        """Random crop and whole-clip horizontal flip (stereo swapped with it), or centre crop."""
        a = draw_augmentation(self.sampling, frames.shape[1:3], audio.shape[1], rng)
        return a.crop(frames), (audio[:, ::-1] if a.swap_stereo else audio)
