"""What action does a video show? (``avscene classify``; accuracy over a labelled set is
:mod:`avscene.evaluate.action`).

A video's prediction is the average of the class probabilities (softmax) of ``n_clips`` clips
spaced uniformly over it (the first starting at frame 0, the last ending at the last frame),
each centre-cropped with its aligned audio, as usual for clip-based action recognition (the
release has no test protocol). Videos no longer than a clip give one clip, looped to length.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterator, Sequence

import numpy as np
import torch

from avscene.constants import frame_to_sample
from avscene.data.action_clips import ActionSampling, read_action_clip, usable_frames
from avscene.data.labelled import LabelledVideo
from avscene.data.shift_pairs import center_crop, frames_to_video
from avscene.media import MediaError, probe
from avscene.windows import inference, model_device, plan_windows

#: Videos up to this long whose clips overlap are decoded once, not once per clip (bounded
#: memory: 15 s of 256 x 256 frames at 30 fps is about 90 MB).
_WHOLE_READ_MAX_S = 15.0


@dataclasses.dataclass(frozen=True)
class ClassifyResult:
    """The prediction for one video: mean class probabilities over its clips."""

    path: str | None
    class_names: tuple[str, ...]
    probabilities: np.ndarray  # (K,) mean of the clips' softmax
    clip_probabilities: np.ndarray  # (n_clips, K)
    clip_starts_s: tuple[float, ...]
    top_k: int = 5

    @property
    def label(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def name(self) -> str:
        return self.class_names[self.label]

    @property
    def probability(self) -> float:
        return float(self.probabilities[self.label])

    def top(self, k: int | None = None) -> list[tuple[int, str, float]]:
        """The ``k`` (default ``top_k``) most probable classes: (label, name, probability)."""
        order = np.argsort(-self.probabilities, kind="stable")[: k or self.top_k]
        return [(int(i), self.class_names[i], float(self.probabilities[i])) for i in order]

    def describe(self) -> str:
        rest = ", ".join(f"{name} {p:.2f}" for _, name, p in self.top()[1:])
        return (f"{self.name} ({self.probability:.2f}); then {rest}; {len(self.clip_starts_s)} clip(s)"
                if rest else f"{self.name} ({self.probability:.2f}); {len(self.clip_starts_s)} clip(s)")

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "label": self.label,
            "name": self.name,
            "probability": round(self.probability, 6),
            "top_k": [{"label": i, "name": n, "probability": round(p, 6)} for i, n, p in self.top()],
            "n_clips": len(self.clip_starts_s),
            "clip_starts_s": [round(t, 4) for t in self.clip_starts_s],
            "clip_labels": [int(i) for i in self.clip_probabilities.argmax(axis=1)],
        }


def clip_starts(total_frames: int, n_frames: int, n_clips: int) -> list[int]:
    """Start frames of ``n_clips`` clips of ``n_frames`` spread uniformly over ``total_frames``
    (the first at 0, the last ending at the end; one clip at 0 when the video is no longer than
    a clip, which is then looped)."""
    if n_clips < 1:
        raise ValueError(f"n_clips must be >= 1, got {n_clips}")
    return plan_windows(max(total_frames, n_frames), n_frames, count=n_clips, align="cover")


def clip_probabilities(model, clips: Iterator[tuple[np.ndarray, np.ndarray]], crop: int, batch_size: int,
                       precision: str = "fp32") -> np.ndarray:
    """Softmax ``(n, K)`` of clips given as (uint8 (T, H, W, 3), float32 (N, C)) pairs, in eval
    mode under ``torch.inference_mode`` (``precision``: see :func:`avscene.windows.inference`)."""
    device, out, frames_b, audio_b = model_device(model), [], [], []

    def flush():
        video = frames_to_video(torch.from_numpy(np.stack(frames_b)).to(device))  # (B, 3, T, crop, crop)
        audio = torch.from_numpy(np.stack(audio_b)).transpose(1, 2).to(device)  # (B, C, N)
        with inference(model, precision):
            out.append(torch.softmax(model(video, audio).float(), dim=1).cpu().numpy())
        frames_b.clear()
        audio_b.clear()

    for frames, audio in clips:
        frames_b.append(np.ascontiguousarray(center_crop(frames, crop)))
        audio_b.append(np.ascontiguousarray(audio, dtype=np.float32))
        if len(frames_b) == batch_size:
            flush()
    if frames_b:
        flush()
    return np.concatenate(out)


def eval_sampling(model) -> ActionSampling:
    """How test clips are cut for ``model``: its clip, rates and crop, without augmentation."""
    return ActionSampling.for_model(model.config.shift, augment=False)


def file_clips(video: LabelledVideo, s: ActionSampling, starts: Sequence[int]):
    """Each clip's (frames, audio); one decode of the whole video when its clips overlap."""
    total = usable_frames(video, s.fps)
    whole = (len(starts) > 1 and s.n_frames <= total <= len(starts) * s.n_frames
             and video.info.duration_s <= _WHOLE_READ_MAX_S)
    if not whole:
        for t0 in starts:
            yield read_action_clip(video, t0, s)
        return
    frames, audio = read_action_clip(video, 0, dataclasses.replace(s, n_frames=total))
    for t0 in starts:
        a0 = frame_to_sample(t0, s.fps, s.sample_rate)
        seg = audio[a0 : a0 + s.n_samples]
        if len(seg) < s.n_samples:  # sample rounding at the very end
            seg = np.concatenate([seg, np.zeros((s.n_samples - len(seg), seg.shape[1]), np.float32)])
        yield frames[t0 : t0 + s.n_frames], seg


def _result(model, probs: np.ndarray, starts: Sequence[int], path, top_k: int) -> ClassifyResult:
    fps = model.config.shift.fps
    return ClassifyResult(path=path, class_names=model.config.names(), probabilities=probs.mean(axis=0),
                          clip_probabilities=probs, clip_starts_s=tuple(float(t / fps) for t in starts),
                          top_k=min(top_k, model.config.n_classes))


def classify_file(model, path: str | os.PathLike, *, n_clips: int = 10, top_k: int = 5,
                  batch_size: int = 8, precision: str = "fp32") -> ClassifyResult:
    """Classify the media file at ``path`` with an :class:`~avscene.models.ActionNet` (eval mode
    is set here) by averaging ``n_clips`` uniformly spaced clips. Raises MediaError if the file
    has no video (no audio is fine: it is heard as silence)."""
    model.eval()
    info = probe(path)
    if not info.has_video:
        raise MediaError(path, "has no video stream")
    video = LabelledVideo(info, -1)
    s = eval_sampling(model)
    starts = clip_starts(usable_frames(video, s.fps), s.n_frames, n_clips)
    probs = clip_probabilities(model, file_clips(video, s, starts), s.crop_size, batch_size, precision)
    return _result(model, probs, starts, os.fspath(path), top_k)


def classify_arrays(model, frames: np.ndarray, audio: np.ndarray | None = None, *, n_clips: int = 10,
                    top_k: int = 5, batch_size: int = 8, precision: str = "fp32") -> ClassifyResult:
    """Classify in-memory media already at the model's rates: ``frames`` uint8 (T, H, W, 3) at
    ``model.config.shift.fps`` with H, W >= the crop (centre-cropped), ``audio`` float32 (N, C)
    at its sample rate aligned with frame 0 (None: silence). A short video is looped."""
    model.eval()
    s = eval_sampling(model)
    n, n_samples = s.n_frames, s.n_samples
    total = len(frames)
    if audio is None:
        audio = np.zeros((frame_to_sample(total, s.fps, s.sample_rate), s.channels), np.float32)
    if total < n:  # loop to one clip
        frames = frames[np.arange(n) % total]
        audio = np.tile(audio, (-(-n_samples // max(1, len(audio))), 1))
        total = n
    starts = clip_starts(total, n, n_clips)

    def clips():
        for t0 in starts:
            a0 = frame_to_sample(t0, s.fps, s.sample_rate)
            seg = np.zeros((n_samples, audio.shape[1]), np.float32)
            part = audio[a0 : a0 + n_samples]
            seg[: len(part)] = part
            yield frames[t0 : t0 + n], seg

    probs = clip_probabilities(model, clips(), s.crop_size, batch_size, precision)
    return _result(model, probs, starts, None, top_k)
