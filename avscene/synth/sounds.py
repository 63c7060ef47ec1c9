"""Event sounds of the synthetic world, stereo panning and background noise.

* impacts: modal synthesis (a few exponentially damped inharmonic partials plus a contact click)
  with three materials: ``'clink'`` (small/hard, 1.4-3.2 kHz), ``'knock'`` (wood-like,
  300-800 Hz) and ``'thud'`` (soft/heavy, 55-160 Hz, low-passed click);
* bursts: a harmonic ``'tone'`` or a band-pass ``'hiss'`` gated by an attack-hold-release
  envelope that the visual pulse of the same object reuses;
* ``'rattle'``: a train of short band-pass clicks during a shaking bout;
* ``'rumble'``: low-passed noise whose loudness follows a rolling object's speed.

Every sound starts at its onset sample with energy in the first millisecond (a click or a
few-ms attack), so the onset of a sound placed at ``frame_to_sample(k)`` is detectable to within
a couple of ms. All functions are pure; randomness comes from the ``rng`` argument. Signals are
float64 mono (N,) unless stated; amplitudes are arbitrary (the scene normalises levels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

IMPACT_MATERIALS = ("clink", "knock", "thud")
BURST_KINDS = ("tone", "hiss")

# (base frequency range Hz, partial ratios, longest decay range s, click low-pass Hz or None)
_MATERIALS = {
    "clink": ((1400.0, 3200.0), (1.0, 2.76, 5.40, 8.93), (0.06, 0.18), None),
    "knock": ((300.0, 800.0), (1.0, 1.58, 2.47, 3.61), (0.025, 0.07), 4000.0),
    "thud": ((55.0, 160.0), (1.0, 1.59, 2.14, 2.65), (0.04, 0.11), 900.0),
}


@dataclass(frozen=True)
class ImpactTimbre:
    """Modal parameters of one sounding object: every impact of the object shares them, with a
    small per-event jitter, like a real object hit repeatedly."""

    material: str
    freqs_hz: tuple[float, ...]
    decays_s: tuple[float, ...]
    amps: tuple[float, ...]
    click_gain: float
    click_lowpass_hz: float | None


def draw_impact_timbre(rng: np.random.Generator, material: str, sample_rate: int) -> ImpactTimbre:
    """Random modal parameters of ``material`` (one of :data:`IMPACT_MATERIALS`); partials above
    0.45 * ``sample_rate`` are dropped."""
    if material not in _MATERIALS:
        raise ValueError(f"unknown impact material {material!r}; expected one of {IMPACT_MATERIALS}")
    (lo, hi), ratios, (dlo, dhi), lowpass = _MATERIALS[material]
    base = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    jitter = rng.uniform(0.97, 1.03, len(ratios))
    freqs = [base * r * j for r, j in zip(ratios, jitter)]
    decay = rng.uniform(dlo, dhi)
    keep = [i for i, f in enumerate(freqs) if f < 0.45 * sample_rate]
    return ImpactTimbre(
        material=material,
        freqs_hz=tuple(float(freqs[i]) for i in keep),
        decays_s=tuple(float(decay / (1.0 + 0.6 * i)) for i in keep),  # higher partials die faster
        amps=tuple(float(rng.uniform(0.4, 1.0) / np.sqrt(1 + i)) for i in keep),
        click_gain=float(rng.uniform(0.3, 0.7)),
        click_lowpass_hz=lowpass,
    )


def impact_sound(timbre: ImpactTimbre, sample_rate: int, rng: np.random.Generator,
                 strength: float = 1.0) -> np.ndarray:
    """One impact (L,) starting at sample 0; ``strength`` (>= 0) scales it (impact speed)."""
    length = int(np.ceil(min(0.45, 6.0 * max(timbre.decays_s)) * sample_rate))
    t = np.arange(length) / sample_rate
    out = np.zeros(length)
    for f, d, a in zip(timbre.freqs_hz, timbre.decays_s, timbre.amps):
        f = f * rng.uniform(0.985, 1.015)
        out += a * np.exp(-t / d) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    # The contact click puts energy in the very first samples, so the onset is sharp.
    n_click = max(8, int(0.006 * sample_rate))
    click = rng.standard_normal(n_click) * np.exp(-np.arange(n_click) / (0.0012 * sample_rate))
    if timbre.click_lowpass_hz is not None:
        b, a_ = sps.butter(2, timbre.click_lowpass_hz / (sample_rate / 2))
        click = sps.lfilter(b, a_, click)
        click[0] = max(click[0], 0.5)  # keep energy in the first sample after smoothing
    click *= timbre.click_gain / (np.abs(click).max() + 1e-12)
    out[:n_click] += click
    return strength * out / (np.abs(out).max() + 1e-12)


def place(length: int, onsets: np.ndarray, sounds: list[np.ndarray]) -> np.ndarray:
    """Sum ``sounds[i]`` starting at sample ``onsets[i]`` into a zero track of ``length`` samples
    (sounds are cut at the end of the track; onsets outside it are skipped). Returns (length,)."""
    track = np.zeros(length)
    for s, snd in zip(np.asarray(onsets, np.int64), sounds):
        if 0 <= s < length:
            n = min(len(snd), length - s)
            track[s : s + n] += snd[:n]
    return track


def burst_envelope(n_samples: int, onsets: np.ndarray, hold: np.ndarray, sample_rate: int,
                   attack_s: float = 0.003, release_s: float = 0.06,
                   peaks: np.ndarray | None = None) -> np.ndarray:
    """Attack-hold-release envelope track (N,) in [0, 1]: burst ``i`` rises linearly from
    ``onsets[i]`` for ``attack_s``, holds ``hold[i]`` samples and falls for ``release_s``.
    Bursts must not overlap (the caller leaves gaps)."""
    att = max(1, int(round(attack_s * sample_rate)))
    rel = max(1, int(round(release_s * sample_rate)))
    onsets = np.asarray(onsets, np.float64)
    peaks = np.ones(len(onsets)) if peaks is None else np.asarray(peaks, np.float64)
    x = np.stack([onsets, onsets + att, onsets + att + hold, onsets + att + hold + rel], 1).ravel()
    y = np.stack([np.zeros_like(peaks), peaks, peaks, np.zeros_like(peaks)], 1).ravel()
    if len(x) == 0:
        return np.zeros(n_samples)
    return np.interp(np.arange(n_samples), x, y, left=0.0, right=0.0)


def tone_track(n_samples: int, onsets: np.ndarray, sample_rate: int, rng: np.random.Generator,
               base_hz: float, n_harmonics: int = 4) -> np.ndarray:
    """Continuous harmonic tone (N,) whose pitch is re-drawn (within +-1.5 semitones of
    ``base_hz``) at every onset; gate it with :func:`burst_envelope`."""
    seg_f0 = base_hz * 2 ** (rng.uniform(-1.5, 1.5, len(onsets) + 1) / 12)
    idx = np.searchsorted(np.asarray(onsets), np.arange(n_samples), side="right")
    phase = 2 * np.pi * np.cumsum(seg_f0[idx]) / sample_rate
    out = np.zeros(n_samples)
    for h in range(1, n_harmonics + 1):
        if h * seg_f0.max() < 0.45 * sample_rate:
            out += np.sin(h * phase) / h**1.3
    return out


def band_noise(n_samples: int, sample_rate: int, rng: np.random.Generator, lo_hz: float,
               hi_hz: float, order: int = 2) -> np.ndarray:
    """White noise band-passed to [lo_hz, hi_hz] (N,), unit RMS."""
    nyq = sample_rate / 2
    hi_hz = min(hi_hz, 0.95 * nyq)
    sos = sps.butter(order, [lo_hz / nyq, hi_hz / nyq], btype="band", output="sos")
    x = sps.sosfilt(sos, rng.standard_normal(n_samples))
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def lowpass_noise(n_samples: int, sample_rate: int, rng: np.random.Generator, cutoff_hz: float,
                  order: int = 2) -> np.ndarray:
    """White noise low-passed at ``cutoff_hz`` (N,), unit RMS."""
    sos = sps.butter(order, cutoff_hz / (sample_rate / 2), output="sos")
    x = sps.sosfilt(sos, rng.standard_normal(n_samples))
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def rattle_track(n_samples: int, bouts: list[tuple[int, int]], sample_rate: int,
                 rng: np.random.Generator, shake_hz: list[float], band_hz: tuple[float, float]) -> np.ndarray:
    """Rattle (N,): during each bout ``(start, length)`` (samples) a train of short band-pass
    clicks 12-35 ms apart, the first exactly at ``start``, louder at the extremes of the shake
    (``shake_hz[i]`` Hz) and fading over the last 30 % of the bout."""
    impulses = np.zeros(n_samples)
    for (start, length), f in zip(bouts, shake_hz):
        gaps = rng.uniform(0.012, 0.035, int(length / (0.012 * sample_rate)) + 2) * sample_rate
        pos = start + np.concatenate([[0.0], np.cumsum(gaps)])
        pos = pos[pos < start + length].astype(np.int64)
        pos = pos[pos < n_samples]
        u = (pos - start) / max(length, 1)
        taper = np.clip((1.0 - u) / 0.3, 0.0, 1.0)
        shake = 0.4 + 0.6 * np.abs(np.cos(2 * np.pi * f * (pos - start) / sample_rate))
        np.add.at(impulses, pos, rng.uniform(0.6, 1.0, len(pos)) * taper * shake)
    n_kernel = int(0.012 * sample_rate)
    kernel = band_noise(n_kernel + 64, sample_rate, rng, *band_hz)[64:]  # skip filter warm-up
    kernel *= np.exp(-np.arange(n_kernel) / (0.002 * sample_rate))
    kernel[0] = np.sign(kernel[0] or 1.0) * np.abs(kernel).max()  # energy in the first sample
    return sps.oaconvolve(impulses, kernel)[:n_samples]


def pan_gains(position: np.ndarray) -> np.ndarray:
    """Constant-power pan: ``position`` in [0, 1] (0 = hard left, 1 = hard right), scalar or
    (N,), to channel gains (..., 2) with ``gL**2 + gR**2 == 1``."""
    theta = np.clip(np.asarray(position, np.float64), 0.0, 1.0) * (np.pi / 2)
    return np.stack([np.cos(theta), np.sin(theta)], -1)


def pan(mono: np.ndarray, position: np.ndarray | float) -> np.ndarray:
    """Pan ``mono`` (N,) to stereo (N, 2) at ``position`` (scalar or (N,), see :func:`pan_gains`)."""
    gains = pan_gains(position)
    return mono[:, None] * (gains if gains.ndim == 2 else gains[None, :])


def pink_noise(n_samples: int, rng: np.random.Generator, channels: int = 2,
               correlation: float = 0.5) -> np.ndarray:
    """Stereo 1/f noise (N, channels), unit RMS per channel, with inter-channel correlation
    ``correlation`` (a diffuse room tone, not a point source)."""
    common = rng.standard_normal(n_samples)
    white = np.sqrt(correlation) * common[:, None] + np.sqrt(1 - correlation) * rng.standard_normal(
        (n_samples, channels))
    spec = np.fft.rfft(white, axis=0)
    f = np.arange(spec.shape[0], dtype=np.float64)
    f[0] = 1.0
    spec /= np.sqrt(f)[:, None]
    spec[0] = 0.0  # no DC
    out = np.fft.irfft(spec, n=n_samples, axis=0)
    return out / (np.sqrt(np.mean(out**2, axis=0, keepdims=True)) + 1e-12)


def rms(x: np.ndarray) -> float:
    """Root mean square of all values of ``x``."""
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
