"""Mixtures for on/off-screen separation: a clip's own sound (on-screen) plus another clip's sound
(off-screen) at a chosen signal-to-noise ratio. Arrays in, arrays out; no files.

Waveforms are float ``(C, N)`` arrays (the datasets' layout; any ``(..., N)`` works, "channel" =
every row along the last axis). Levels, for an on/off SNR of ``s`` dB:

1. each source is RMS-normalised (per channel, as the release's ``normalize_rms``, or over all
   channels with ``per_channel=False``, which keeps the stereo balance);
2. the sources are scaled so that ``power(on) / power(off) = 10^(s/10)`` and
   ``power(on) + power(off) = 2 rms^2``. At 0 dB both sit at ``rms`` = 0.1, exactly the release;
   at any SNR the mixture's expected RMS stays ``sqrt(2) rms`` = 0.1414, the level inference
   normalises real mixtures to (the release's ``input_rms``).
3. ``mixture = on + off``, computed in float32 from the float32 sources that are returned, so
   it sums exactly. Nothing is clipped: a mixture may exceed [-1, 1] (clipping would break the
   sum; the STFT does not care).

The SNR (uniform in ``snr_db_range``; the release used 0 dB only) and the choice of the
off-screen clip (:func:`off_screen_index`, replacing the release's in-batch pairing of clip i
with clip i + B/2) are pure functions of ``(seed, example_id)``, each from its own random stream,
so adding one draw never shifts the other or the dataset's own ``default_rng((seed, example_id))``.

A silent channel (RMS below ``eps`` = 1e-4) is only scaled by ``rms / eps`` and cannot reach the
requested level; the dataset should skip such clips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Stream tags that keep these draws independent of the dataset's own generator.
_SNR_STREAM = 0x534E52  # "SNR"
_PARTNER_STREAM = 0x4F4646  # "OFF"


@dataclass(frozen=True)
class MixtureConfig:
    """How the two sources are levelled; defaults are the release's (0 dB, RMS 0.1 per channel)."""

    #: RMS of each source at 0 dB SNR (and sqrt(2) x the mixture's expected RMS at any SNR).
    rms: float = 0.1
    #: On-screen vs off-screen SNR (dB), drawn uniformly from [lo, hi] per example.
    snr_db_range: tuple[float, float] = (0.0, 0.0)
    #: Normalise each channel separately (release) or all channels together (keeps stereo balance).
    per_channel: bool = True
    #: RMS floor of the normalisation (the release's 1e-4).
    eps: float = 1e-4

    def __post_init__(self) -> None:
        lo, hi = (float(v) for v in self.snr_db_range)
        object.__setattr__(self, "snr_db_range", (lo, hi))
        if not lo <= hi:
            raise ValueError(f"snr_db_range must be (lo, hi) with lo <= hi, got {self.snr_db_range}")
        if self.rms <= 0 or self.eps <= 0:
            raise ValueError(f"rms and eps must be positive, got {self.rms}, {self.eps}")

    @property
    def mixture_rms(self) -> float:
        """Expected RMS of a mixture of independent sources (0.1414 for the defaults)."""
        return self.rms * math.sqrt(2.0)


@dataclass(frozen=True)
class Mixture:
    """One training mixture: float32 waveforms of the same shape, ``mixture == on + off`` exactly."""

    mixture: np.ndarray
    on: np.ndarray
    off: np.ndarray
    #: The SNR used (dB, on vs off).
    snr_db: float


def rms_normalize(audio: np.ndarray, rms: float = 0.1, *, per_channel: bool = True,
                  eps: float = 1e-4) -> np.ndarray:
    """``audio`` ``(..., N)`` scaled to RMS ``rms`` (per row along the last axis, or overall),
    as float64; the measured RMS is floored at ``eps`` so silence stays (near) silent."""
    x = np.asarray(audio, dtype=np.float64)
    if per_channel:
        level = np.sqrt(np.mean(x**2, axis=-1, keepdims=True))  # (..., 1)
    else:
        level = np.sqrt(np.mean(x**2))
    return x * (rms / np.maximum(level, eps))


def source_levels(snr_db: float, rms: float = 0.1) -> tuple[float, float]:
    """RMS of the on- and off-screen sources for ``snr_db``, with powers summing to ``2 rms^2``."""
    ratio = 10.0 ** (snr_db / 10.0)  # power(on) / power(off)
    total = 2.0 * rms**2
    return math.sqrt(total * ratio / (1.0 + ratio)), math.sqrt(total / (1.0 + ratio))


def mix(on: np.ndarray, off: np.ndarray, snr_db: float, config: MixtureConfig = MixtureConfig()) -> Mixture:
    """Level ``on`` and ``off`` (same shape ``(..., N)``) for ``snr_db`` and add them."""
    on, off = np.asarray(on), np.asarray(off)
    if on.shape != off.shape:
        raise ValueError(f"on- and off-screen audio must have the same shape, got {on.shape} and {off.shape}")
    if not (np.isfinite(on).all() and np.isfinite(off).all()):
        raise ValueError("audio contains NaN or inf")
    rms_on, rms_off = source_levels(snr_db, config.rms)
    norm = dict(per_channel=config.per_channel, eps=config.eps)
    on32 = rms_normalize(on, rms_on, **norm).astype(np.float32)
    off32 = rms_normalize(off, rms_off, **norm).astype(np.float32)
    return Mixture(mixture=on32 + off32, on=on32, off=off32, snr_db=float(snr_db))


def draw_snr_db(seed: int, example_id: int, config: MixtureConfig = MixtureConfig()) -> float:
    """The SNR of example ``example_id``: uniform in ``config.snr_db_range``, deterministic."""
    lo, hi = config.snr_db_range
    if lo == hi:
        return lo
    rng = np.random.default_rng((int(seed), int(example_id), _SNR_STREAM))
    return float(rng.uniform(lo, hi))


def off_screen_index(seed: int, example_id: int, own_index: int, n_clips: int) -> int:
    """Index of the clip whose sound is off-screen for example ``example_id`` whose own clip is
    ``own_index``: uniform over the other ``n_clips - 1`` clips, deterministic."""
    if n_clips < 2:
        raise ValueError(f"an off-screen sound needs another clip; got {n_clips} clip(s)")
    if not 0 <= own_index < n_clips:
        raise ValueError(f"own_index {own_index} is not in [0, {n_clips})")
    rng = np.random.default_rng((int(seed), int(example_id), _PARTNER_STREAM))
    k = int(rng.integers(n_clips - 1))
    return k + (k >= own_index)


def make_mixture(on: np.ndarray, off: np.ndarray, *, seed: int, example_id: int,
                 config: MixtureConfig = MixtureConfig()) -> Mixture:
    """:func:`mix` at the SNR :func:`draw_snr_db` gives ``(seed, example_id)``."""
    return mix(on, off, draw_snr_db(seed, example_id, config), config)
