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

Speed (``benchmarks/inference.py``). Early fusion makes the fused trunk run once per window and
offset; what does not depend on the offset runs once: the visual stem per window, the audio
branch per track (shared by the windows that hear the same stretch of audio). ``step`` > 1 scans
coarse to fine (:class:`SyncOptions`): with ``step=4`` a 4.2 s paper window at +-2 s scores 31
coarse offsets on 4 windows, then about 11 offsets per window instead of 121. ``scan=False``
scores offset 0 alone. ``precision="bf16"`` autocasts the network.
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
from avscene.infer.background import prefetched
from avscene.infer.spans import SpanReader
from avscene.media import ClipRangeError, probe
from avscene.models import ShiftNet
from avscene.windows import check_precision, inference, model_device, plan_windows, to_channels_last, video_layout


@dataclasses.dataclass(frozen=True)
class SyncOptions:
    """How to scan. ``hop_s`` None: windows one clip apart; ``max_windows`` bounds the work on
    long videos (windows are then spread evenly over the video).

    The scan (see :func:`scan_plan`): ``step`` 1 scores every whole-frame offset in
    ``[-max_offset_s, max_offset_s]`` on every window (the full scan). ``step`` > 1 scans coarse
    to fine: every ``step``-th offset on ``coarse_windows`` windows spread over the video (None:
    all), then every offset within ``step // 2`` of the ``refine`` best coarse peaks on every
    window; the verdict comes from those fine offsets only. ``scan`` False scores offset 0 alone,
    one pass per window: the probability that the video is in sync as it is, no offset.
    ``precision`` ``"bf16"`` autocasts the network; ``channels_last`` lays video out
    channels-last (faster convolutions on some CPUs and GPUs).
    """

    max_offset_s: float = 2.0
    hop_s: float | None = None
    max_windows: int | None = 16
    temperature: float = 1.0
    #: How frames meet the model's square; None: the one its weights expect (its profile's).
    fit: str | None = None
    chunk: int = 32
    step: int = 1
    refine: int = 2
    coarse_windows: int | None = 4
    scan: bool = True
    precision: str = "fp32"
    channels_last: bool = False

    def __post_init__(self) -> None:
        if self.max_offset_s < 0:
            raise ValueError(f"max_offset_s must be >= 0, got {self.max_offset_s}")
        if self.step < 1 or self.refine < 1 or self.chunk < 1:
            raise ValueError(f"step, refine and chunk must be >= 1, got {self.step}, {self.refine}, {self.chunk}")
        if self.coarse_windows is not None and self.coarse_windows < 1:
            raise ValueError(f"coarse_windows must be >= 1 or None, got {self.coarse_windows}")
        check_precision(self.precision)


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
    #: False for ``scan=False``: offset 0 alone was scored, ``offset_frames`` says nothing.
    scanned: bool = True

    @property
    def offset_s(self) -> float:
        return float(self.offset_frames / self.fps)

    def describe(self) -> str:
        """One human sentence with units and sign."""
        if not self.scanned:
            return f"P(aligned as is) {self.aligned_probability:.2f}; {len(self.windows)} window(s); offsets not scanned"
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
            "scanned": self.scanned,
            "windows": [{"start_s": round(w.start_s, 4), "offset_frames": w.offset_frames,
                         "scored_offsets_frames": [int(self.offsets_frames[w.valid].min()),
                                                   int(self.offsets_frames[w.valid].max())],
                         "offset_s": round(float(w.offset_frames / self.fps), 6),
                         "confidence": round(w.confidence, 4)} for w in self.windows],
            "scan": {"offsets_frames": self.offsets_frames.tolist(),
                     "scores": [round(float(s), 4) for s in self.scores]},
        }


def peak_confidence(scores: np.ndarray, temperature: float, offsets: np.ndarray | None = None) -> tuple[int, float]:
    """Index of the best score and the softmax mass within one step of it (within one frame of
    its offset when the scanned ``offsets`` (K,) are given: a coarse-to-fine scan skips some)."""
    z = scores / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    best = int(np.argmax(scores))
    if offsets is not None:
        return best, float(p[np.abs(offsets - offsets[best]) <= 1].sum())
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


def audio_tracks(audio: np.ndarray, offsets: np.ndarray, audio_origin_frame: int, config) -> np.ndarray:
    """The model-length tracks a window hears at each offset: float32 (K, C, N) from ``audio``
    (M, C), whose sample 0 is at frame ``audio_origin_frame`` relative to the window's first
    frame (negative: before it); silence where the audio has none."""
    n_samples = config.n_samples
    tracks = np.zeros((len(offsets), config.audio_channels, n_samples), np.float32)  # (K, C, N)
    for i, d in enumerate(offsets):
        start = frame_to_sample(int(d) - audio_origin_frame, config.fps, config.sample_rate)
        seg = audio[max(0, start) : max(0, start + n_samples)]  # empty when wholly outside the audio
        tracks[i, :, max(0, -start) : max(0, -start) + len(seg)] = seg.T
    return tracks


def scan_window(model: ShiftNet, frames: np.ndarray, audio: np.ndarray, offsets: np.ndarray,
                audio_origin_frame: int, *, chunk: int = 32, precision: str = "fp32") -> np.ndarray:
    """Logits for one window.

    Args:
        frames: uint8 (n_frames, crop, crop, 3), the window's video.
        audio: float32 (M, C), audio whose sample 0 is at frame ``audio_origin_frame`` relative to
            the window's first frame (negative: it starts before the window); silence where the
            file had none.
        offsets: (K,) offsets in frames.
    Returns: (K,) logits.
    """
    with inference(model, precision):
        return _WindowScorer(model, frames, audio, audio_origin_frame, 0, {}, chunk).scores(offsets)


class _WindowScorer:
    """Scores one window at any offsets, keeping what does not depend on the offset: the visual
    stem's output (computed once) and, shared between windows through ``feature_cache``, the
    audio branch's features of each track, keyed by the track's first frame in the video (two
    windows that hear the same stretch of audio compute its features once). Models without
    ShiftNet's split (``stem``/``audio_features``/``score_features``) are scored through
    ``score_audios``. Call inside :func:`avscene.windows.inference`."""

    def __init__(self, model, frames: np.ndarray, audio: np.ndarray, origin: int, start: int,
                 feature_cache: dict, chunk: int, channels_last: bool = False):
        self.model, self.audio, self.origin, self.start = model, audio, origin, start
        self.cache, self.chunk = feature_cache, chunk
        device = model_device(model)
        video = frames_to_video(torch.from_numpy(np.ascontiguousarray(frames))[None].to(device))  # (1, 3, T, H, W)
        video = video_layout(video, channels_last)
        self.split = all(hasattr(model, name) for name in ("stem", "audio_features", "score_features"))
        # keep the stem's output, not the video (1/12 of its size for the paper preset)
        self.stem = model.stem(video) if self.split else None  # (1, w, T_v, H_v, W_v)
        self.video = None if self.split else video
        self.scored: dict[int, float] = {}  # logits by offset: the fine stage re-asks coarse ones

    def scores(self, offsets: np.ndarray) -> np.ndarray:
        """(K,) float32 logits of the window heard at ``offsets`` (K,) frames."""
        new = np.array([d for d in offsets if int(d) not in self.scored], np.int64)
        if len(new):
            self.scored.update(zip(new.tolist(), self._score(new).tolist()))
        return np.array([self.scored[int(d)] for d in offsets], np.float32)

    def _score(self, offsets: np.ndarray) -> np.ndarray:
        cfg, device = self.model.config, model_device(self.model)
        if not self.split:
            tracks = torch.from_numpy(audio_tracks(self.audio, offsets, self.origin, cfg)).to(device)  # (K, C, N)
            return self.model.score_audios(self.video, tracks, chunk=self.chunk).float().cpu().numpy()
        keys = [self.start + int(d) for d in offsets]  # each track's first frame in the video
        missing = [i for i, key in enumerate(keys) if key not in self.cache]
        if missing:
            tracks = torch.from_numpy(audio_tracks(self.audio, offsets[missing], self.origin, cfg)).to(device)
            for j in range(0, len(missing), self.chunk):
                features = self.model.audio_features(tracks[j : j + self.chunk], self.stem.shape[2])  # (k, C_a, T_v)
                self.cache.update({keys[i]: f for i, f in zip(missing[j : j + self.chunk], features)})
        features = torch.stack([self.cache[key] for key in keys])  # (K, C_a, T_v)
        return self.model.score_features(self.stem, features, chunk=self.chunk).float().cpu().numpy()


def scan_plan(max_offset: int, step: int) -> tuple[np.ndarray, int]:
    """The coarse offsets (every ``step``-th whole frame in ``[-max_offset, max_offset]``, 0 and
    both ends included) and the radius refined around a coarse peak (``step // 2``: every offset
    is then within the radius of a coarse one)."""
    if step <= 1:
        return np.arange(-max_offset, max_offset + 1), 0
    half = np.arange(0, max_offset + 1, step)
    coarse = np.unique(np.concatenate([-half, half, [-max_offset, max_offset]]))
    return coarse, step // 2


def _masked_mean(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(K,) mean of (W, K) ``scores`` over the windows where ``valid``; over all where none is."""
    counts = valid.sum(0)  # (K,)
    return np.where(counts > 0, (scores * valid).sum(0) / np.maximum(counts, 1), scores.mean(0))


def _fine_offsets(coarse: np.ndarray, scores: np.ndarray, radius: int, n_peaks: int, max_offset: int) -> np.ndarray:
    """Every offset within ``radius`` of the ``n_peaks`` best local maxima of the coarse scan."""
    padded = np.concatenate([[-np.inf], scores, [-np.inf]])
    peaks = np.flatnonzero((scores >= padded[:-2]) & (scores >= padded[2:]))  # local maxima
    best = peaks[np.argsort(-scores[peaks], kind="stable")[:n_peaks]]
    fine = np.unique(np.concatenate([np.arange(c - radius, c + radius + 1) for c in coarse[best]]))
    return fine[np.abs(fine) <= max_offset]


def _combine(windows: list[WindowScan], offsets: np.ndarray, fps: Fraction, path, temperature: float,
             scanned: bool = True) -> SyncResult:
    logits = np.stack([w.scores for w in windows])  # (W, K)
    scores = _masked_mean(logits, np.stack([w.valid for w in windows]))  # (K,)
    best, confidence = peak_confidence(scores, temperature, offsets)
    zero = int(np.flatnonzero(offsets == 0)[0])
    aligned = float(np.mean([1 / (1 + math.exp(-float(w.scores[zero]))) for w in windows]))
    return SyncResult(path=path, fps=fps, offsets_frames=offsets, scores=scores, aligned_probability=aligned,
                      offset_frames=int(offsets[best]), confidence=confidence, windows=tuple(windows),
                      scanned=scanned)


def _scan_windows(model: ShiftNet, total_frames: int, window_at, options: SyncOptions, path) -> SyncResult:
    """Plan windows over ``total_frames``, scan them (coarse to fine when ``options.step`` > 1),
    combine. ``window_at(t0, margin)`` returns ``(frames, audio, audio_origin_frame)`` for the
    window starting at frame ``t0``."""
    cfg = model.config
    fps, n = cfg.fps, cfg.n_frames
    max_d = round(options.max_offset_s * fps) if options.scan else 0
    hop = round(options.hop_s * fps) if options.hop_s else n
    starts = plan_windows(total_frames, n, hop, max_windows=options.max_windows, align="center")
    if options.channels_last:
        to_channels_last(model)
    coarse, radius = scan_plan(max_d, options.step if options.scan else 1)
    cache: dict = {}  # audio features by the first frame of their track, shared by the windows

    def scorer(t0: int, inputs=None) -> _WindowScorer:
        for key in [key for key in cache if key < t0 - max_d]:  # windows ascend: no later one hears these
            del cache[key]
        if inputs is None:
            inputs = window_at(t0, max_d)
        return _WindowScorer(model, *inputs, t0, cache, options.chunk, options.channels_last)

    with inference(model, options.precision):
        if not radius:  # one window at a time, the next one decoded meanwhile: memory holds two
            offsets = coarse
            windows = [_window_scan(scorer(t0, inputs).scores(offsets), t0, offsets, n, total_frames, fps, options)
                       for t0, inputs in prefetched(lambda t0: window_at(t0, max_d), starts)]
        else:  # up to HELD_WINDOWS windows keep their stem output between the stages; more are read again
            held = len(starts) <= HELD_WINDOWS
            scorers = [scorer(t0) for t0 in starts] if held else None
            count = min(len(starts), options.coarse_windows or len(starts))
            picked = [scorers[i] if held else scorer(starts[i]) for i in plan_windows(len(starts), 1, count=count)]
            offsets = _fine_offsets_of(picked, coarse, radius, n, total_frames, max_d, options)
            windows = [_window_scan(s.scores(offsets), s.start, offsets, n, total_frames, fps, options)
                       for s in (scorers if held else map(scorer, starts))]
    return _combine(windows, offsets, fps, path, options.temperature, scanned=options.scan)


#: Windows whose visual stem outputs a coarse-to-fine scan keeps between its stages (paper
#: preset: 6.4 MB each in fp32); a plan with more windows decodes them again for the fine stage.
HELD_WINDOWS = 32


def _fine_offsets_of(picked: list[_WindowScorer], coarse: np.ndarray, radius: int, n: int, total_frames: int,
                     max_d: int, options: SyncOptions) -> np.ndarray:
    """The fine offsets: the coarse offsets scored on the ``picked`` windows, averaged, and every
    offset within ``radius`` of the ``refine`` best peaks, plus 0 (the aligned probability needs it)."""
    scores = np.stack([s.scores(coarse) for s in picked])  # (W_c, K_c)
    valid = np.stack([_valid(s.start, coarse, n, total_frames) for s in picked])  # (W_c, K_c)
    fine = _fine_offsets(coarse, _masked_mean(scores, valid), radius, options.refine, max_d)
    return np.union1d(fine, [0])


def _valid(t0: int, offsets: np.ndarray, n: int, total_frames: int) -> np.ndarray:
    """(K,) bool: the window at ``t0`` hears audio inside the video at each offset (all True when
    it is inside at none, e.g. a video shorter than window plus offsets)."""
    valid = (t0 + offsets >= 0) & (t0 + offsets + n <= total_frames)  # (K,)
    return valid if valid.any() else np.ones_like(valid)


def _window_scan(scores: np.ndarray, t0: int, offsets: np.ndarray, n: int, total_frames: int, fps: Fraction,
                 options: SyncOptions) -> WindowScan:
    valid = _valid(t0, offsets, n, total_frames)
    best, conf = peak_confidence(np.where(valid, scores, -np.inf), options.temperature, offsets)
    return WindowScan(float(t0 / fps), scores, valid, int(offsets[best]), conf)


def sync_file(model: ShiftNet, path: str | os.PathLike, options: SyncOptions = SyncOptions()) -> SyncResult:
    """Scan a media file window by window (bounded memory: one window's frames at a time)."""
    cfg = model.config
    fps, n = cfg.fps, cfg.n_frames
    info = probe(path, need_video=True, need_audio=True)
    total = frames_in(info.duration_s, fps)
    if total < n:
        raise ClipRangeError(path, f"too short for the model: {info.duration_s:.2f} s, needs {float(n / fps):.2f} s")

    span = SpanReader(path, total, fps, cfg.sample_rate, cfg.crop_size ** 2 * 3, size=cfg.crop_size,
                      fit=profile_fit(cfg.profile, options.fit), channels=cfg.audio_channels)

    def window_at(t0: int, margin: int):  # nearby windows come from one decode
        span_start, span_end = max(0, t0 - margin), min(total, t0 + n + margin + 1)
        frames, audio = span(span_start, span_end)
        return frames[t0 - span_start : t0 - span_start + n], audio, span_start - t0

    return _scan_windows(model, total, window_at, options, os.fspath(path))


def sync_clip(model: ShiftNet, frames: np.ndarray, audio: np.ndarray,
              options: SyncOptions = SyncOptions()) -> SyncResult:
    """Scan in-memory media already at the model's rates: ``frames`` uint8 (T, crop, crop, 3) at
    ``model.config.fps`` and ``audio`` float32 (N, C) at its sample rate, aligned at sample 0."""
    n = model.config.n_frames
    return _scan_windows(model, len(frames), lambda t0, _: (frames[t0 : t0 + n], audio, -t0), options, None)
