"""The separation network's spectrogram front end (release ``sourcesep.stft``) and a correct inverse.

Forward, as the release (design doc section 5.1)::

    audio (..., N) at 21 kHz
      | frames of 1344 samples (64 ms) every 336 samples (16 ms), no centring, no end padding:
      |   T = 1 + (N - 1344) // 336 frames; frame t covers samples [336 t, 336 t + 1344)
      | periodic Hann window, zero-padded *at the end* to 2048 samples, rfft -> 1025 bins
      | keep bins 0 .. 1023 (0 .. 10.49 kHz); drop bin 1024, the Nyquist bin (10.5 kHz)
      | log magnitude 20 log10(max(|X|, 1e-5)) dB, mapped linearly [-100, 80] dB -> [-1, 1]
      | phase atan2(Im, Re) / pi in [-1, 1]
    log_mag (..., 1024, T), phase (..., 1024, T)

44144 samples (the paper's 2.1 s separation clip) give exactly 128 frames. ``torch.stft`` is not
used for the forward pass because it centres a short window inside ``n_fft`` (a different phase)
and takes ``n_fft`` samples per frame (fewer frames).

Inverse (not the release's): the release ran TF ``inverse_stft`` with the Hann window and no
window-sum normalisation, a gain of 1.5 at 75 % overlap with tapered ends. Here:

* The dropped Nyquist bin is *recovered*, not zeroed: a frame has only 1344 non-zero samples out
  of 2048, so 1024 bins over-determine it. The Nyquist bin adds ``c (-1)^n / 2048`` to the frame,
  and ``c`` is chosen by least squares so that the 704 padding samples are as close to zero as
  possible; for a consistent spectrogram this is exact. (Zeroing it, as the release did, caps
  white noise at ~39 dB SNR.) For a predicted, inconsistent spectrogram it is the least-squares
  choice: the frame closest to having the window's support.
* Frames are windowed again and overlap-added, then divided by the sum of squared windows
  (weighted overlap-add, the least-squares inverse), which inverts the analysis exactly wherever
  that sum is non-zero: every sample of ``[1, (T - 1) * 336 + 1344)`` is recovered. Sample 0 is
  lost (the periodic Hann window is 0 there) and comes back as 0, as do samples past the last
  frame. Near the two ends the window sum tends to 0 (one frame, rising window: 3e-11 at sample
  1), so the division amplifies any inconsistency by up to ~1e5: float32 rounding and the -100 dB
  floor give errors up to ~0.1 on the first and last ~4 samples (white noise round-trips at
  > 75 dB SNR over ``[1, L)``, a pure tone, with most bins at the floor, at > 80 dB over
  ``[8, L - 8)``), and a *predicted* spectrogram would blow up. The divisor is therefore
  floored at ``min(r, 1)`` times its interior value, where ``r`` is the power a frame leaves in
  its zero padding relative to its support: ~1e-14 for an analysed signal (the floor does
  nothing, the round trip stays exact), ~1e-2 .. 1 for a predicted one (the first and last few
  ms are tapered instead of blowing up; at ``r = 1`` this is the release's plain overlap-add,
  with the correct gain).
* dB decoding: a normalised value at the floor (<= -1, i.e. <= -100 dB, "at most 1e-5")
  decodes to silence, so silent bins round-trip to exact zeros; every other value decodes to
  ``10 ** (dB / 20)`` exactly. The top of the range (80 dB = 1e4) is never reached by audio in
  [-1, 1] (at most 56.5 dB here); ``analyze`` clips to it anyway so targets stay in tanh's range.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from avscene.constants import PAPER_SAMPLE_RATE


@dataclass(frozen=True)
class SpectrogramConfig:
    """STFT parameters; defaults are the release's (``sep_params.base``)."""

    #: Audio sample rate (Hz).
    sample_rate: int = PAPER_SAMPLE_RATE
    #: Window length (samples, 64 ms) and hop (samples, 16 ms): 62.5 frames per second.
    win_length: int = 1344
    hop_length: int = 336
    #: FFT size: the windowed frame is zero-padded at the end to this length.
    n_fft: int = 2048
    #: Bins kept: 0 .. n_bins - 1. ``n_fft // 2`` drops the Nyquist bin (the release),
    #: ``n_fft // 2 + 1`` keeps it.
    n_bins: int = 1024
    #: The dB range mapped linearly onto [-1, 1]; db_min is also the floor of the log.
    db_min: float = -100.0
    db_max: float = 80.0

    def __post_init__(self) -> None:
        if not 0 < self.hop_length <= self.win_length < self.n_fft:
            raise ValueError(
                "need 0 < hop_length <= win_length < n_fft (the Nyquist-bin recovery relies on the "
                f"zero padding), got {self.hop_length}, {self.win_length}, {self.n_fft}")
        if self.n_bins not in (self.n_fft // 2, self.n_fft // 2 + 1):
            raise ValueError(f"n_bins must be n_fft // 2 or n_fft // 2 + 1, got {self.n_bins}")
        if not self.db_min < self.db_max:
            raise ValueError(f"need db_min < db_max, got {self.db_min}, {self.db_max}")

    @property
    def amp_floor(self) -> float:
        """Smallest magnitude represented (1e-5 for -100 dB)."""
        return 10.0 ** (self.db_min / 20.0)

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length

    def n_frames(self, n_samples: int) -> int:
        """Frames of a signal of ``n_samples`` (128 for 44144): whole windows only."""
        if n_samples < self.win_length:
            raise ValueError(f"need at least {self.win_length} samples for one STFT frame, got {n_samples}")
        return 1 + (n_samples - self.win_length) // self.hop_length

    def n_samples(self, n_frames: int) -> int:
        """Samples covered by ``n_frames`` frames, ``(T - 1) * hop + win`` (44016 for 128)."""
        return (n_frames - 1) * self.hop_length + self.win_length

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SpectrogramConfig":
        return cls(**d)


PAPER_SPECTROGRAM = SpectrogramConfig()


def _float32(x: Tensor) -> contextlib.AbstractContextManager:
    """Autocast off for ``x``'s device: FFTs and logs want float32."""
    if x.device.type in ("cpu", "cuda", "xpu", "mps"):
        return torch.autocast(x.device.type, enabled=False)
    return contextlib.nullcontext()


def _window(cfg: SpectrogramConfig, like: Tensor) -> Tensor:
    return torch.hann_window(cfg.win_length, periodic=True, dtype=like.dtype, device=like.device)


def stft(audio: Tensor, cfg: SpectrogramConfig = PAPER_SPECTROGRAM) -> Tensor:
    """Complex STFT ``(..., n_bins, T)`` of ``audio`` ``(..., N)`` (float32 math)."""
    with _float32(audio):
        audio = audio.float()
        cfg.n_frames(audio.shape[-1])  # raises for too-short input
        frames = audio.unfold(-1, cfg.win_length, cfg.hop_length)  # (..., T, win)
        spec = torch.fft.rfft(frames * _window(cfg, audio), n=cfg.n_fft)  # (..., T, n_fft/2 + 1)
        return spec[..., : cfg.n_bins].transpose(-1, -2)  # (..., F, T)


def istft(spec: Tensor, cfg: SpectrogramConfig = PAPER_SPECTROGRAM, n_samples: int | None = None) -> Tensor:
    """Inverse of :func:`stft`: waveform ``(..., N)`` from complex ``spec`` ``(..., F, T)``.

    ``F`` is ``n_fft // 2`` (Nyquist bin recovered, see the module docstring) or
    ``n_fft // 2 + 1``. ``N`` defaults to the samples the frames cover, ``(T - 1) * hop + win``;
    a larger ``n_samples`` pads with zeros (nothing is known there), a smaller one truncates.
    """
    n_half = cfg.n_fft // 2
    if spec.shape[-2] not in (n_half, n_half + 1):
        raise ValueError(f"spec must have {n_half} or {n_half + 1} bins on dim -2, got {tuple(spec.shape)}")
    with _float32(spec):
        spec = spec.to(torch.complex64)
        batch_shape, n_frames = spec.shape[:-2], spec.shape[-1]
        win = cfg.win_length
        frames = torch.fft.irfft(spec.transpose(-1, -2), n=cfg.n_fft)  # (..., T, n_fft)
        if spec.shape[-2] == n_half:
            # The Nyquist bin c adds c (-1)^n / n_fft; pick c so the zero padding is ~zero.
            sign = torch.ones(cfg.n_fft, device=frames.device)
            sign[1::2] = -1.0  # (-1)^n
            c = -(frames[..., win:] * sign[win:]).mean(dim=-1, keepdim=True)  # (..., T, 1): c / n_fft
            frames = frames + c * sign  # (..., T, n_fft)
        frames = frames.reshape(-1, n_frames, cfg.n_fft)  # (B', T, n_fft)
        # Inconsistency: power left in the zero padding relative to the window's support
        # (~1e-14 for an analysed signal, ~1e-2..1 for a predicted spectrogram).
        ratio = (frames[..., win:].pow(2).mean(dim=(1, 2))
                 / frames[..., :win].pow(2).mean(dim=(1, 2)).clamp_min(1e-30)).detach()  # (B',)
        window = _window(cfg, frames)
        frames = (frames[..., :win] * window).transpose(1, 2)  # (B', win, T)
        length = cfg.n_samples(n_frames)
        fold = dict(output_size=(1, length), kernel_size=(1, win), stride=(1, cfg.hop_length))
        audio = F.fold(frames, **fold)[:, 0, 0]  # (B', length)
        envelope = F.fold((window**2)[None, :, None].expand(1, win, n_frames), **fold)[0, 0, 0]  # (length,)
        # Weighted overlap-add: divide by the squared-window sum. Near the ends that sum -> 0 and
        # the division amplifies any inconsistency by 1 / window, so it is floored at
        # min(ratio, 1) x its interior value: no effect on analysed signals (exact), a taper over
        # the first/last few ms of predictions.
        floor = ratio.clamp(max=1.0)[:, None] * envelope.max()  # (B', 1)
        covered = envelope > 0
        audio = torch.where(covered, audio / torch.maximum(envelope, floor).clamp_min(1e-30), 0.0)
        audio = audio.reshape(*batch_shape, length)  # (..., length)
    if n_samples is not None:
        audio = audio[..., :n_samples] if n_samples <= length else F.pad(audio, (0, n_samples - length))
    return audio


def release_istft(spec: Tensor, cfg: SpectrogramConfig = PAPER_SPECTROGRAM) -> Tensor:
    """The release's inverse, kept to compare with it: TF ``inverse_stft`` with its default
    synthesis window (periodic Hann) and no window-sum normalisation, i.e. a gain of 1.5 at 75 %
    overlap and tapered ends. ``spec`` complex ``(..., n_fft // 2 + 1, T)`` -> ``(..., (T - 1) * hop
    + win)``. :func:`istft` is the correct inverse that avscene uses."""
    if spec.shape[-2] != cfg.n_fft // 2 + 1:
        raise ValueError(f"spec must have {cfg.n_fft // 2 + 1} bins on dim -2, got {tuple(spec.shape)}")
    with _float32(spec):
        batch_shape, n_frames = spec.shape[:-2], spec.shape[-1]
        frames = torch.fft.irfft(spec.to(torch.complex64).transpose(-1, -2), n=cfg.n_fft)  # (..., T, n_fft)
        frames = frames[..., : cfg.win_length] * _window(cfg, frames)  # (..., T, win)
        frames = frames.reshape(-1, n_frames, cfg.win_length).transpose(1, 2)  # (B', win, T)
        length = cfg.n_samples(n_frames)
        audio = F.fold(frames, output_size=(1, length), kernel_size=(1, cfg.win_length),
                       stride=(1, cfg.hop_length))[:, 0, 0]  # (B', length)
    return audio.reshape(*batch_shape, length)


def db_to_unit(db: Tensor, cfg: SpectrogramConfig = PAPER_SPECTROGRAM) -> Tensor:
    """dB -> [-1, 1] (linear, [db_min, db_max] -> [-1, 1]; not clipped)."""
    return 2.0 * (db - cfg.db_min) / (cfg.db_max - cfg.db_min) - 1.0


def unit_to_db(x: Tensor, cfg: SpectrogramConfig = PAPER_SPECTROGRAM) -> Tensor:
    """[-1, 1] -> dB (inverse of :func:`db_to_unit`)."""
    return (x + 1.0) * (0.5 * (cfg.db_max - cfg.db_min)) + cfg.db_min


def analyze(audio: Tensor, cfg: SpectrogramConfig = PAPER_SPECTROGRAM) -> tuple[Tensor, Tensor]:
    """Network-ready spectrogram of ``audio`` ``(..., N)`` in [-1, 1] (mono: average channels first).

    Returns ``(log_mag, phase)``, both ``(..., n_bins, T)`` float32 in [-1, 1]: the log magnitude
    ``20 log10(max(|X|, 1e-5))`` mapped from [-100, 80] dB (clipped there), and ``phase / pi``.
    """
    spec = stft(audio, cfg)  # (..., F, T) complex
    with _float32(spec):
        db = 20.0 * torch.log10(spec.abs().clamp_min(cfg.amp_floor))  # (..., F, T), >= db_min
        log_mag = db_to_unit(db, cfg).clamp(-1.0, 1.0)
        phase = torch.angle(spec) / math.pi  # (..., F, T)
    return log_mag, phase


def synthesize(
    log_mag: Tensor, phase: Tensor, n_samples: int | None = None, cfg: SpectrogramConfig = PAPER_SPECTROGRAM
) -> Tensor:
    """Waveform ``(..., N)`` from a normalised ``log_mag`` and ``phase`` ``(..., F, T)`` (the format
    of :func:`analyze` and of the separation net's outputs). Values at or below the floor (-1)
    decode to silence, values above the ceiling (1) are clipped to it; see :func:`istft` for the
    Nyquist bin and ``n_samples``."""
    if log_mag.shape != phase.shape:
        raise ValueError(f"log_mag and phase shapes differ: {tuple(log_mag.shape)} vs {tuple(phase.shape)}")
    with _float32(log_mag):
        log_mag, phase = log_mag.float().clamp(max=1.0), phase.float()
        mag = torch.where(log_mag > -1.0, 10.0 ** (unit_to_db(log_mag, cfg) / 20.0), torch.zeros_like(log_mag))
        spec = torch.polar(mag, phase * math.pi)  # (..., F, T) complex
    return istft(spec, cfg, n_samples)
