"""Which sound comes from what is on screen? (``avscene separate``)

A trained separation net splits a video's sound into the part whose source is visible
(on-screen) and the rest (off-screen). Inputs of any length are processed in overlapping
windows:

* **Window** = one model clip: ``n_frames`` frames and ``n_samples`` samples at the model's rates
  (2.1 s for the ``paper`` preset, 1.07 s for ``small``), starting at frame ``f`` and sample
  ``frame_to_sample(f)``. Its output covers the STFT's ``L = (T - 1) * hop + win`` samples
  (44016 of 44144 for ``paper``).
* **Hop** = ``hop_frames`` (default half a clip, the release's ``clip_dur / 2``), so every sample
  is in two windows; one more window is added at the end so the last one reaches the end of
  the track. Past the end of the track, audio is zero-padded and the last frame repeated.
* **Level**: each window's audio is scaled by one gain (all channels, so the stereo balance is
  kept) to RMS ``input_rms`` (0.1414, the level of the training mixtures; the release's
  ``input_rms``), and its outputs are scaled back by the same gain, so the output keeps the
  input's level and loud and quiet passages are treated alike.
* **Cross-fade**: window outputs are summed with triangular weights ``min(t + 1, L - t)`` and
  divided by the sum of weights (:class:`avscene.windows.OverlapAdd`); the first and last samples of the track
  come from one window only. For PIT models (whose two outputs have no fixed order) each
  window's pair is put in the order that agrees best with what is already stitched.

The whole track stays on the CPU; windows go to the model's device ``batch_size`` at a time,
and :func:`separate_file` decodes frames one batch span at a time (bounded memory). Frames are
the whole picture fitted to the model's square (``fit``: ``"crop"`` covers and centre-crops, as
``avscene sync``), so a speaker near the edge is not cut off; training saw random 224/256 crops
of that framing, objects ~12 % larger (the release's inference squashed to 256 and kept the
centre 224, the training scale).

Outputs are **mono** (the net predicts one magnitude and phase per source, from the channel
mean), computed at the model's rate (21 kHz), then resampled to the input's rate (polyphase,
:func:`avscene.audio.resample.resample_audio`) and cut to its exact length;
:func:`write_separation` writes
``<name>_on.wav``, ``<name>_off.wav``, ``<name>_on.mp4`` / ``<name>_off.mp4`` (the original
video stream, copied, with the separated sound) and ``<name>_spectrogram.png``.

``mask``: ``"left"``, ``"right"`` (halves of the frame) or ``(x0, y0, x1, y1)`` (pixels of the
input's frames, right/bottom edges exclusive) is painted grey (128) in the frames the model
sees, as the release's ``--mask``: what is there can no longer be seen, so its sound should
move to the off-screen output. The region is mapped through the resize and crop of ``fit``;
every model pixel that touches it is painted.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from avscene.audio.resample import resample_audio
from avscene.constants import frame_to_sample, frames_in, profile_fit
from avscene.data.mixtures import MixtureConfig
from avscene.data.shift_pairs import frames_to_video
from avscene.media import ClipRangeError, NoStreamError, probe, read_clip
from avscene.media.geometry import FitGeometry
from avscene.models import SeparationNet
from avscene.models.separation_net import DEFAULT_PHASE, PHASE_SOURCES, synthesize_sources
from avscene.windows import (OverlapAdd, check_precision, inference, model_device, plan_windows, to_channels_last,
                             video_layout)

#: Level windows are brought to before separation (RMS over all channels): the expected RMS of
#: a training mixture of two sources at RMS 0.1 (the release's ``input_rms``).
DEFAULT_INPUT_RMS = MixtureConfig().mixture_rms
#: Grey used by the mask (the release's 128).
MASK_GREY = 128

Box = tuple[float, float, float, float]


@dataclasses.dataclass(frozen=True)
class SeparateOptions:
    """How to separate. ``mask``: ``"left"``, ``"right"``, ``(x0, y0, x1, y1)`` or None.
    ``hop_frames`` None: half a clip. ``phase``: ``"mixture"`` (the predicted magnitudes with
    the mixture's phase, the default: see :data:`~avscene.models.separation_net.PHASE_SOURCES`)
    or ``"pred"`` (the predicted phase, the release's default). ``input_rms`` None: no levelling.
    ``fit``: how :func:`separate_file` fits frames to the model's square input; None: the one the
    model's weights expect (its shift net's profile). ``precision`` ``"bf16"``: the network under
    bf16 autocast (the spectrogram and its inverse stay float32); ``channels_last``: video in
    ``channels_last_3d`` order (see :func:`avscene.windows.inference`)."""

    mask: str | Box | None = None
    hop_frames: int | None = None
    batch_size: int = 8
    phase: str = DEFAULT_PHASE
    input_rms: float | None = DEFAULT_INPUT_RMS
    fit: str | None = None
    precision: str = "fp32"
    channels_last: bool = False

    def __post_init__(self):
        if self.phase not in PHASE_SOURCES:
            raise ValueError(f"phase must be one of {PHASE_SOURCES}, got {self.phase!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.hop_frames is not None and self.hop_frames < 1:
            raise ValueError(f"hop_frames must be >= 1, got {self.hop_frames}")
        check_precision(self.precision)
        if self.mask is not None and not isinstance(self.mask, str):
            object.__setattr__(self, "mask", tuple(float(v) for v in self.mask))


@dataclasses.dataclass(frozen=True)
class SeparationResult:
    """The two sounds of one input, mono float32 ``(N,)`` at ``sample_rate``, the input's rate
    and length (``mixture`` is the input itself, ``(N, C)``). ``ordered`` is False for PIT
    models: then ``on`` and ``off`` are two sources in no particular order."""

    path: str | None
    sample_rate: int
    mixture: np.ndarray
    on: np.ndarray
    off: np.ndarray
    window_starts_s: tuple[float, ...]
    hop_frames: int
    mask_box: tuple[int, int, int, int] | None
    ordered: bool = True

    @property
    def duration_s(self) -> float:
        return len(self.on) / self.sample_rate

    def describe(self) -> str:
        def db(x: np.ndarray) -> str:
            rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
            return f"{20 * math.log10(rms):.1f} dBFS" if rms > 0 else "silent"
        order = "" if self.ordered else " (PIT model: the two outputs are in no particular order)"
        return (f"{self.duration_s:.2f} s at {self.sample_rate} Hz in {len(self.window_starts_s)} window(s); "
                f"on-screen {db(self.on)}, off-screen {db(self.off)}{order}")

    def to_dict(self) -> dict:
        return {"path": self.path, "sample_rate": self.sample_rate, "duration_s": round(self.duration_s, 6),
                "windows": len(self.window_starts_s), "hop_frames": self.hop_frames,
                "mask_box": list(self.mask_box) if self.mask_box else None, "ordered": self.ordered}


# -- masks ----------------------------------------------------------------------------------------


def parse_mask(text: str | None) -> str | Box | None:
    """``"left"`` / ``"right"`` (also ``l`` / ``r``) or ``"X0,Y0,X1,Y1"`` (pixels) -> a mask option."""
    if text is None:
        return None
    t = text.strip().lower()
    if t in ("left", "l", "right", "r"):
        return "left" if t.startswith("l") else "right"
    parts = t.split(",")
    try:
        box = tuple(float(p) for p in parts)
    except ValueError:
        box = ()
    if len(box) != 4:
        raise ValueError(f"mask must be 'left', 'right' or X0,Y0,X1,Y1 in pixels, got {text!r}")
    return box  # type: ignore[return-value]


def mask_region(mask: str | Box, width: int, height: int) -> Box:
    """The masked region ``(x0, y0, x1, y1)`` in pixels of a ``width`` x ``height`` frame."""
    if mask == "left":
        return (0.0, 0.0, width / 2, float(height))
    if mask == "right":
        return (width / 2, 0.0, float(width), float(height))
    x0, y0, x1, y1 = mask
    x0, x1 = max(0.0, x0), min(float(width), x1)
    y0, y1 = max(0.0, y0), min(float(height), y1)
    if not (x0 < x1 and y0 < y1):
        raise ValueError(f"mask {mask} holds no pixel of the {width}x{height} frame (x0 < x1, y0 < y1 needed)")
    return (x0, y0, x1, y1)


def model_box(region: Box, src_hw: tuple[int, int], out_size: int, fit: str) -> tuple[int, int, int, int]:
    """``region`` in source pixels -> the box ``(x0, y0, x1, y1)`` of model-frame pixels that touch
    it, after the media layer's resize and crop/pad (``fit``) to ``out_size`` x ``out_size``."""
    src_h, src_w = src_hw
    geometry = FitGeometry.of(src_hw, out_size, fit)
    (scaled_h, scaled_w), (top, left) = geometry.scaled_hw, geometry.offset
    off_x, off_y = -left, -top
    sx, sy = scaled_w / src_w, scaled_h / src_h
    x0, y0, x1, y1 = region
    box = (math.floor(x0 * sx + off_x + 1e-9), math.floor(y0 * sy + off_y + 1e-9),
           math.ceil(x1 * sx + off_x - 1e-9), math.ceil(y1 * sy + off_y - 1e-9))
    return (min(max(box[0], 0), out_size), min(max(box[1], 0), out_size),
            min(max(box[2], 0), out_size), min(max(box[3], 0), out_size))


def grey_out(frames: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """A copy of ``frames`` (..., H, W, 3) with ``box`` = (x0, y0, x1, y1) painted grey."""
    if box is None:
        return frames
    x0, y0, x1, y1 = box
    out = np.array(frames, copy=True)
    out[..., y0:y1, x0:x1, :] = MASK_GREY
    return out


# -- windows --------------------------------------------------------------------------------------


def output_length(model: SeparationNet) -> int:
    """Samples one window's output covers: ``(T - 1) * hop + win`` of the STFT."""
    cfg = model.config
    return cfg.spectrogram.n_samples(cfg.spec_frames)


def last_window_start(n_samples: int, model: SeparationNet) -> int:
    """The first frame from which a window's output reaches the end of ``n_samples`` samples
    (at the model's rate): where the last window of a track starts (0 when one window covers it)."""
    cfg = model.config
    fps, rate = cfg.shift.fps, cfg.shift.sample_rate
    need = n_samples - output_length(model)  # the last window must start at or after this sample
    if need <= 0:
        return 0
    last = math.ceil(need * fps / rate)
    while frame_to_sample(last, fps, rate) < need:
        last += 1
    while last > 0 and frame_to_sample(last - 1, fps, rate) >= need:
        last -= 1
    return last


#: ``inputs(starts)`` -> (frames uint8 (B, n_frames, H, W, 3) or None, audio float32 (B, n_samples, C),
#: number of real (not padded) samples per window (B,)).
WindowInputs = Callable[[Sequence[int]], tuple[np.ndarray | None, np.ndarray, np.ndarray]]


def _separate_windows(model: SeparationNet, n_samples: int, inputs: WindowInputs, options: SeparateOptions
                      ) -> tuple[np.ndarray, np.ndarray, list[int], int]:
    """Run every window and cross-fade: returns on, off float32 (n_samples,) at the model's rate,
    the window starts (frames) and the hop (frames)."""
    cfg = model.config
    fps, rate = cfg.shift.fps, cfg.shift.sample_rate
    hop = options.hop_frames or max(1, cfg.n_frames // 2)
    length = output_length(model)
    if frame_to_sample(hop, fps, rate) > length:
        raise ValueError(f"hop_frames={hop} leaves gaps between windows: a window's output covers "
                         f"{length} samples, less than {hop} frames")
    # windows of n_frames every hop from 0, the last one starting where its output reaches the end
    starts = plan_windows(last_window_start(n_samples, model) + cfg.n_frames, cfg.n_frames, hop, align="start")
    blend = OverlapAdd((2, n_samples), axis=-1)
    if options.channels_last:
        to_channels_last(model)
    for b0 in range(0, len(starts), options.batch_size):
        batch = starts[b0 : b0 + options.batch_size]
        with inference(model):  # float32 here; the network alone is autocast (_separate_batch)
            waves = _separate_batch(model, *inputs(batch), options)  # (B, 2, L)
        for wave, f in zip(waves, batch):
            a = frame_to_sample(f, fps, rate)
            end = min(a + length, n_samples)
            seg = wave[:, : end - a]  # (2, end - a)
            if cfg.pit_loss:
                seg = _agree(seg, *blend.stitched(slice(a, end)))
            blend.add(slice(a, end), seg, np.arange(end - a), length)
    out, _ = blend.result()  # (2, n_samples); every sample is covered (the plan guarantees it)
    return out[0].astype(np.float32), out[1].astype(np.float32), starts, hop


def _separate_batch(model: SeparationNet, frames: np.ndarray | None, audio: np.ndarray, n_real: np.ndarray,
                    options: SeparateOptions) -> np.ndarray:
    """Both sources of a batch of windows (see :data:`WindowInputs`), float64 (B, 2, L) at the
    input's level: each window is brought to ``options.input_rms`` and its outputs scaled back."""
    cfg = model.config
    device = model_device(model)
    gains = np.ones(len(audio))
    if options.input_rms is not None:
        for i, n in enumerate(n_real):
            rms = float(np.sqrt(np.mean(np.square(audio[i, :n], dtype=np.float64)))) if n else 0.0
            gains[i] = options.input_rms / max(rms, 1e-4)
    mix = torch.from_numpy(np.ascontiguousarray((audio * gains[:, None, None]).transpose(0, 2, 1),
                                                dtype=np.float32)).to(device)  # (B, C, N)
    video = None
    if cfg.uses_video:
        video = frames_to_video(torch.from_numpy(np.ascontiguousarray(frames)).to(device))  # (B, 3, T, H, W)
        video = video_layout(video, options.channels_last)
    with inference(model, options.precision):
        pred = model(video, mix).float()  # (B, 2, 2, F, T)
    waves = synthesize_sources(pred, output_length(model), cfg.spectrogram,
                               mixture=mix if options.phase == "mixture" else None)
    waves = waves.double().cpu().numpy()  # (B, 2, L)
    waves /= gains[:, None, None]
    return waves


def _agree(seg: np.ndarray, acc: np.ndarray, wsum: np.ndarray) -> np.ndarray:
    """``seg`` (2, L) or its two rows swapped, whichever correlates better with the stitched
    output over the samples it overlaps (PIT outputs have no fixed order)."""
    done = wsum > 0
    if not done.any():
        return seg
    cur = acc[:, done] / wsum[done]
    s = seg[:, done]
    direct = float((cur * s).sum())
    crossed = float((cur * s[::-1]).sum())
    return seg[::-1] if crossed > direct else seg


# -- arrays and files -----------------------------------------------------------------------------


def separate_arrays(model: SeparationNet, frames: np.ndarray | None, audio: np.ndarray,
                    options: SeparateOptions = SeparateOptions()) -> SeparationResult:
    """Separate in-memory media at the model's rates: ``frames`` uint8 (T, crop, crop, 3) at
    ``model.config.shift.fps`` (None for audio-only models), ``audio`` float32 (N, C) at its
    sample rate with its channels, aligned at sample 0. ``options.mask`` is in pixels of
    ``frames``. The result is at the model's rate, ``N`` samples long."""
    cfg = model.config
    audio = np.asarray(audio, np.float32)
    if audio.ndim != 2 or audio.shape[1] != cfg.shift.audio_channels:
        raise ValueError(f"audio must be (N, {cfg.shift.audio_channels}), got {audio.shape}")
    box = None
    if cfg.uses_video:
        if frames is None or frames.ndim != 4 or frames.shape[1:] != (cfg.shift.crop_size, cfg.shift.crop_size, 3):
            raise ValueError(f"frames must be uint8 (T, {cfg.shift.crop_size}, {cfg.shift.crop_size}, 3), got "
                             f"{None if frames is None else frames.shape}")
        if options.mask is not None:
            side = cfg.shift.crop_size
            box = model_box(mask_region(options.mask, side, side), (side, side), side, "squash")
            frames = grey_out(frames, box)
    def frames_of(f0: int, f1: int) -> tuple[np.ndarray, int]:
        first = min(f0, len(frames) - 1)
        return frames[first : max(f1, first + 1)], first

    on, off, starts, hop = _separate_windows(model, len(audio),
                                             lambda starts: _window_inputs(cfg, starts, audio, frames_of), options)
    fps = cfg.shift.fps
    return SeparationResult(path=None, sample_rate=cfg.shift.sample_rate, mixture=audio, on=on, off=off,
                            window_starts_s=tuple(float(f / fps) for f in starts), hop_frames=hop, mask_box=box,
                            ordered=not cfg.pit_loss)


def _window_inputs(cfg, starts: Sequence[int], audio: np.ndarray,
                   frames_of: Callable[[int, int], tuple[np.ndarray, int]]):
    """Stack the windows at ``starts``: audio (zero-padded past the end of ``audio``) and, for
    models that see video, frames from ``frames_of(f0, f1)``, which returns frames covering
    ``[f0, f1)`` as far as the video goes and the index of its first frame; frames past the end
    repeat the last one."""
    n, n_samples = cfg.n_frames, cfg.n_samples
    fps, rate = cfg.shift.fps, cfg.shift.sample_rate
    batch_audio = np.zeros((len(starts), n_samples, audio.shape[1]), np.float32)
    n_real = np.zeros(len(starts), np.int64)
    for i, f in enumerate(starts):
        a = frame_to_sample(f, fps, rate)
        seg = audio[a : a + n_samples]
        batch_audio[i, : len(seg)] = seg
        n_real[i] = len(seg)
    batch_frames = None
    if cfg.uses_video:
        span, first = frames_of(starts[0], starts[-1] + n)
        idx = np.stack([np.clip(np.arange(f, f + n) - first, 0, len(span) - 1) for f in starts])  # (B, n)
        batch_frames = span[idx]  # (B, n, H, W, 3)
    return batch_frames, batch_audio, n_real


def separate_file(model: SeparationNet, path: str | os.PathLike, options: SeparateOptions = SeparateOptions()
                  ) -> SeparationResult:
    """Separate a media file's sound into on- and off-screen parts (see the module docstring).

    The result is at the file's sample rate and exactly as long as its audio track; ``mixture``
    is that track with its own channels. Raises :class:`NoStreamError` for a file without audio
    (or without video, for a model that sees video)."""
    cfg = model.config
    fps, rate, side = cfg.shift.fps, cfg.shift.sample_rate, cfg.shift.crop_size
    fit = profile_fit(cfg.shift.profile, options.fit)
    info = probe(path)
    if not info.has_audio:
        raise NoStreamError(path, "has no audio stream: there is no sound to separate")
    if cfg.uses_video and not info.has_video:
        raise NoStreamError(path, f"has no video stream, which the {cfg.variant!r} model needs")
    original = read_clip(path, video=False)  # (N_in, C_in) at the file's own rate
    audio = read_clip(path, video=False, sample_rate=rate, channels=cfg.shift.audio_channels).audio  # (N, C)
    box = None
    if cfg.uses_video and options.mask is not None:
        box = model_box(mask_region(options.mask, info.width, info.height), (info.height, info.width), side, fit)
    total_frames = max(1, frames_in(info.duration_s, fps))
    last_frame: list[np.ndarray] = []

    def frames_of(f0: int, f1: int) -> tuple[np.ndarray, int]:
        f1 = min(f1, total_frames)
        frames = None
        if f0 < f1:
            try:
                frames = read_clip(path, float(f0 / fps), float((f1 - f0) / fps) + 1e-6, fps=fps, size=side,
                                   fit=fit, audio=False).frames
            except ClipRangeError:  # the video ends before the audio: read what there is
                try:
                    frames = read_clip(path, float(f0 / fps), None, fps=fps, size=side, fit=fit,
                                       audio=False).frames
                except ClipRangeError:
                    frames = None
        if frames is None or len(frames) == 0:
            if not last_frame:
                raise ClipRangeError(path, f"no video frame at or after {float(f0 / fps):.2f} s")
            frames = last_frame[0][None]
        frames = grey_out(frames, box)
        last_frame[:] = [frames[-1]]
        return frames, f0

    on, off, starts, hop = _separate_windows(model, len(audio),
                                             lambda starts: _window_inputs(cfg, starts, audio, frames_of), options)
    n_in = original.n_samples
    on = resample_audio(on, rate, original.sample_rate, n_out=n_in)
    off = resample_audio(off, rate, original.sample_rate, n_out=n_in)
    return SeparationResult(path=os.fspath(path), sample_rate=original.sample_rate, mixture=original.audio,
                            on=on, off=off, window_starts_s=tuple(float(f / fps) for f in starts), hop_frames=hop,
                            mask_box=box, ordered=not cfg.pit_loss)


#: The files :func:`write_separation` may make for an input: ``<name><suffix>``.
SEPARATION_OUTPUTS = ("_on.wav", "_off.wav", "_on.mp4", "_off.mp4", "_spectrogram.png", "_separation.json")


def write_separation(result: SeparationResult, out_dir: str | os.PathLike, *, name: str | None = None,
                     video: str | os.PathLike | None = None, plot: bool = True,
                     network: dict | None = None) -> dict[str, Path]:
    """Write ``<name>_on.wav``, ``<name>_off.wav`` and, when ``video`` (default: the result's
    input) has a video stream, ``<name>_on.mp4`` / ``<name>_off.mp4`` (that video stream copied,
    with the separated sound), plus ``<name>_spectrogram.png`` (mixture / on / off) if ``plot``,
    and ``<name>_separation.json`` (the result's summary, the files, and ``network``: which network
    made them and what it knows). Every file is written atomically. Returns the paths by kind."""
    from avscene.files import write_json
    from avscene.media import write_wav
    from avscene.media.writer import replace_audio

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = name or (Path(result.path).stem if result.path else "separated")
    paths: dict[str, Path] = {}
    for kind, audio in (("on", result.on), ("off", result.off)):
        paths[f"{kind}_wav"] = write_wav(out / f"{name}_{kind}.wav", audio, result.sample_rate)
    src = video if video is not None else result.path
    if src is not None and probe(src).has_video:
        for kind, audio in (("on", result.on), ("off", result.off)):
            paths[f"{kind}_mp4"] = replace_audio(src, out / f"{name}_{kind}.mp4", audio, result.sample_rate)
    if plot:
        from avscene.report.plots import plot_separation

        labels = ("mixture", "on-screen", "off-screen") if result.ordered else ("mixture", "source 1", "source 2")
        paths["spectrogram"] = plot_separation(result.mixture, result.on, result.off, result.sample_rate,
                                               out / f"{name}_spectrogram.png", title=name, labels=labels)
    paths["json"] = write_json(out / f"{name}_separation.json",
                               {**result.to_dict(), **(network or {}), "audio": _audio_record(result, src, paths),
                                "files": {k: p.name for k, p in paths.items()}})
    return paths


def _audio_record(result: SeparationResult, src: str | os.PathLike | None, paths: dict[str, Path]) -> dict:
    """What the outputs did with the input's sound: its channels and layout, the mono estimates
    made from its downmix, and the rates of the wav and mp4 files (and why they differ)."""
    from avscene.media.writer import aac_rate, audio_layout

    rate, channels = result.sample_rate, int(result.mixture.shape[1]) if result.mixture.ndim == 2 else 1
    record = {"input": {"channels": channels, "layout": audio_layout(src) if src is not None else None,
                        "sample_rate": rate},
              "estimates": {"channels": 1, "how": f"the network hears the input's {channels} channel(s) downmixed by "
                                                  "their layout (libswresample) and estimates one mono on-screen and "
                                                  "one mono off-screen track; the wav and mp4 files hold them mono"},
              "wav_sample_rate": rate}
    if "on_mp4" in paths:
        record["mp4_sample_rate"] = aac_rate(rate)
        if aac_rate(rate) != rate:
            record["mp4_note"] = (f"AAC has no {rate} Hz mode: the mp4's sound is stored at {aac_rate(rate)} Hz; "
                                  f"the wav keeps the input's {rate} Hz")
    return record
