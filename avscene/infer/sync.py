"""Is a video's sound in sync, and by how much is it off? (``avscene sync``)

For a window of ``n_frames`` video frames the trained shift network scores the audio shifted by
every whole frame ``d`` in ``[-D, D]``: the audio heard with frame ``t`` is the audio at frame
``t + d``. The scan's peak is the offset.

Sign convention: a **positive offset means the audio lags the video** (a sound is heard
``offset_s`` seconds after the frame that shows its cause); to fix it, advance the audio by
``offset_s``. Negative: the audio leads.

Videos are scanned in windows over their whole length (each its own scan, so drift over time is
visible). A window scores offset ``d`` only where its shifted audio lies wholly inside the video
(near the ends, large offsets would hear the file's edge: silence the network never saw in
training); the video's score for ``d`` is the mean logit over the windows that score it. Scoring
every window, not only those with room for the largest offset on both sides, recovers the offset
of 0.962 of the 104 benchmark clips within one frame, against 0.952 (same scans). A
video too short for any window to reach an offset scores it on the zero-padded audio. The
confidence is the softmax probability mass of the scan within one frame of its peak, at a
temperature calibrated on held-out data (``benchmarks/offset.py``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from fractions import Fraction

import numpy as np
import torch

from avscene.constants import frame_to_sample, frames_in, profile_fit
from avscene.data.shift_pairs import frames_to_video
from avscene.media import ClipRangeError, probe, read_clip
from avscene.models import ShiftNet
from avscene.windows import model_device, plan_windows


@dataclasses.dataclass(frozen=True)
class SyncOptions:
    """How to scan. ``hop_s`` None: windows one clip apart; ``max_windows`` bounds the work on
    long videos (windows are then spread evenly over the video)."""

    max_offset_s: float = 2.0
    hop_s: float | None = None
    max_windows: int | None = 16
    temperature: float = 1.0
    #: How frames meet the model's square; None: the one its weights expect (its profile's).
    fit: str | None = None
    chunk: int = 32


@dataclasses.dataclass(frozen=True)
class WindowScan:
    """The scan of one window starting at ``start_s``; ``scores`` are logits per offset, those
    with ``valid`` False heard audio from beyond the video's ends. The window's own verdict
    (``offset_frames``) is the best valid offset: a window near an end cannot see every offset."""

    start_s: float
    scores: np.ndarray  # (K,)
    valid: np.ndarray  # (K,) bool
    offset_frames: int
    confidence: float


@dataclasses.dataclass(frozen=True)
class SyncResult:
    """The verdict for one video. ``offset_s > 0``: the audio lags the video."""

    path: str | None
    fps: Fraction
    offsets_frames: np.ndarray  # (K,) the scanned offsets
    scores: np.ndarray  # (K,) mean logits over windows
    aligned_probability: float
    offset_frames: int
    confidence: float
    windows: tuple[WindowScan, ...]

    @property
    def offset_s(self) -> float:
        return float(self.offset_frames / self.fps)

    def describe(self) -> str:
        """One human sentence with units and sign."""
        frames = abs(self.offset_frames)
        if frames == 0:
            where = "in sync"
        else:
            verb = "lags" if self.offset_frames > 0 else "leads"
            where = f"audio {verb} video by {abs(self.offset_s):.3f} s ({frames} frames at {float(self.fps):.3f} fps)"
        return (f"{where}; confidence {self.confidence:.2f}; P(aligned as is) {self.aligned_probability:.2f}"
                f"; {len(self.windows)} window(s)")

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "offset_s": round(self.offset_s, 6),
            "offset_frames": self.offset_frames,
            "fps": f"{self.fps.numerator}/{self.fps.denominator}",
            "sign": "positive = audio lags video (advance the audio to fix)",
            "confidence": round(self.confidence, 4),
            "aligned_probability": round(self.aligned_probability, 4),
            "windows": [{"start_s": round(w.start_s, 4), "offset_frames": w.offset_frames,
                         "scored_offsets_frames": [int(self.offsets_frames[w.valid].min()),
                                                   int(self.offsets_frames[w.valid].max())],
                         "offset_s": round(float(w.offset_frames / self.fps), 6),
                         "confidence": round(w.confidence, 4)} for w in self.windows],
            "scan": {"offsets_frames": self.offsets_frames.tolist(),
                     "scores": [round(float(s), 4) for s in self.scores]},
        }


def peak_confidence(scores: np.ndarray, temperature: float) -> tuple[int, float]:
    """Index of the best score and the softmax mass within one step of it."""
    z = scores / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    best = int(np.argmax(scores))
    return best, float(p[max(0, best - 1) : best + 2].sum())


#: Where older runs kept the fitted scan temperature: a file beside the checkpoint.
CALIBRATION_NAME = "sync_calibration.json"


def write_calibration(checkpoint: str | os.PathLike, temperature: float, *, fitted_on: str = "") -> str:
    """Store the fitted scan temperature in ``checkpoint`` itself (rewritten atomically), where
    :func:`read_calibration` and :func:`avscene.checkpoints.load_network` find it."""
    from avscene.checkpoints import load_checkpoint, save_checkpoint

    payload = load_checkpoint(checkpoint)
    payload["calibration"] = {"temperature": float(temperature),
                              "fitted_on": fitted_on or "held-out clips with known offsets (likelihood of the true offsets)"}
    return str(save_checkpoint(checkpoint, payload))


def read_calibration(checkpoint: str | os.PathLike, calibration: dict | None = None) -> float | None:
    """The scan temperature of ``checkpoint``: its ``calibration`` (as stored in the checkpoint,
    see :func:`write_calibration`), else the file older runs wrote beside it, else None."""
    import json

    if calibration and "temperature" in calibration:
        return float(calibration["temperature"])
    path = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), CALIBRATION_NAME)
    if not os.path.exists(path):
        return None
    data = json.loads(open(path).read())
    if data.get("checkpoint") != os.path.basename(checkpoint):
        return None
    return float(data["temperature"])


@torch.no_grad()
def scan_window(model: ShiftNet, frames: np.ndarray, audio: np.ndarray, offsets: np.ndarray,
                audio_origin_frame: int, *, chunk: int = 32) -> np.ndarray:
    """Logits for one window.

    Args:
        frames: uint8 (n_frames, crop, crop, 3), the window's video.
        audio: float32 (M, C), audio whose sample 0 is at frame ``audio_origin_frame`` relative to
            the window's first frame (negative: it starts before the window); silence where the
            file had none.
        offsets: (K,) offsets in frames.
    Returns: (K,) logits.
    """
    cfg = model.config
    device = model_device(model)
    n_samples = cfg.n_samples
    tracks = np.zeros((len(offsets), cfg.audio_channels, n_samples), np.float32)  # (K, C, N)
    for i, d in enumerate(offsets):
        start = frame_to_sample(int(d) - audio_origin_frame, cfg.fps, cfg.sample_rate)
        seg = audio[max(0, start) : max(0, start + n_samples)]  # empty when wholly outside the audio
        tracks[i, :, max(0, -start) : max(0, -start) + len(seg)] = seg.T
    video = frames_to_video(torch.from_numpy(np.ascontiguousarray(frames))[None].to(device))  # (1, 3, T, H, W)
    logits = model.score_audios(video, torch.from_numpy(tracks).to(device), chunk=chunk)  # (K,)
    return logits.float().cpu().numpy()


def _combine(windows: list[WindowScan], offsets: np.ndarray, fps: Fraction, path, temperature: float) -> SyncResult:
    logits = np.stack([w.scores for w in windows])  # (W, K)
    valid = np.stack([w.valid for w in windows])  # (W, K)
    counts = valid.sum(0)  # (K,)
    scores = np.where(counts > 0, (logits * valid).sum(0) / np.maximum(counts, 1), logits.mean(0))  # (K,)
    best, confidence = peak_confidence(scores, temperature)
    zero = int(np.flatnonzero(offsets == 0)[0])
    aligned = float(np.mean([1 / (1 + math.exp(-float(w.scores[zero]))) for w in windows]))
    return SyncResult(path=path, fps=fps, offsets_frames=offsets, scores=scores, aligned_probability=aligned,
                      offset_frames=int(offsets[best]), confidence=confidence, windows=tuple(windows))


def _scan_windows(model: ShiftNet, total_frames: int, window_at, options: SyncOptions, path) -> SyncResult:
    """Plan windows over ``total_frames``, scan each, combine. ``window_at(t0, margin)`` returns
    ``(frames, audio, audio_origin_frame)`` for the window starting at frame ``t0``."""
    model.eval()
    cfg = model.config
    fps, n = cfg.fps, cfg.n_frames
    max_d = round(options.max_offset_s * fps)
    offsets = np.arange(-max_d, max_d + 1)  # (K,)
    hop = round(options.hop_s * fps) if options.hop_s else n
    windows = []
    for t0 in plan_windows(total_frames, n, hop, max_windows=options.max_windows, align="center"):
        frames, audio, origin = window_at(t0, max_d)
        scores = scan_window(model, frames, audio, offsets, origin, chunk=options.chunk)  # (K,)
        valid = (t0 + offsets >= 0) & (t0 + offsets + n <= total_frames)  # (K,) audio inside the video
        if not valid.any():
            valid[:] = True
        masked = np.where(valid, scores, -np.inf)
        best, conf = peak_confidence(masked, options.temperature)
        windows.append(WindowScan(float(t0 / fps), scores, valid, int(offsets[best]), conf))
    return _combine(windows, offsets, fps, path, options.temperature)


def sync_file(model: ShiftNet, path: str | os.PathLike, options: SyncOptions = SyncOptions()) -> SyncResult:
    """Scan a media file window by window (bounded memory: one window's frames at a time)."""
    cfg = model.config
    fps, n = cfg.fps, cfg.n_frames
    info = probe(path, need_video=True, need_audio=True)
    total = frames_in(info.duration_s, fps)
    if total < n:
        raise ClipRangeError(path, f"too short for the model: {info.duration_s:.2f} s, needs {float(n / fps):.2f} s")

    def window_at(t0: int, margin: int):
        span_start, span_end = max(0, t0 - margin), min(total, t0 + n + margin + 1)
        clip = read_clip(path, float(span_start / fps), float((span_end - span_start) / fps) + 1e-6, fps=fps,
                         size=cfg.crop_size, fit=profile_fit(cfg.profile, options.fit), sample_rate=cfg.sample_rate,
                         channels=cfg.audio_channels)
        return clip.frames[t0 - span_start : t0 - span_start + n], clip.audio, span_start - t0

    return _scan_windows(model, total, window_at, options, os.fspath(path))


def sync_clip(model: ShiftNet, frames: np.ndarray, audio: np.ndarray,
              options: SyncOptions = SyncOptions()) -> SyncResult:
    """Scan in-memory media already at the model's rates: ``frames`` uint8 (T, crop, crop, 3) at
    ``model.config.fps`` and ``audio`` float32 (N, C) at its sample rate, aligned at sample 0."""
    n = model.config.n_frames
    return _scan_windows(model, len(frames), lambda t0, _: (frames[t0 : t0 + n], audio, -t0), options, None)
