"""Procedural speech-like babble from a bank of voices in two voice groups.

A babble is a sequence of syllables at 3-6 Hz grouped into phrases. Each syllable has an
optional consonant (a fricative ``s`` 3.5-8 kHz, ``sh`` 1.8-4.5 kHz or a broadband plosive
burst) followed by a vowel nucleus. The voiced part is a Rosenberg glottal pulse train (its
derivative, i.e. with lip radiation) driven by a pitch contour (per-syllable pitch targets,
phrase declination, fast jitter) plus aspiration noise, filtered by a cascade of three formant
resonators whose frequencies come from the syllable's vowel scaled by the voice's vocal-tract
factor; neighbouring vowels cross-fade over ~25 ms. An amplitude envelope gates everything, so
the signal is exactly zero between syllables, and the same envelope drives a face's mouth.

Voice groups (pitch and formant scale are what make within-group mixtures harder to separate
by sound than across-group ones):

=====  ==================  ===============  ======================
group  name                mean f0 (Hz)     formant scale
=====  ==================  ===============  ======================
0      ``low``             96-140           0.96-1.03 (adult male)
1      ``high``            185-265          1.14-1.24 (female/child)
=====  ==================  ===============  ======================

Only numpy/scipy are needed (no TTS engine).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal as sps
from scipy.ndimage import uniform_filter1d

from avscene.synth.sounds import band_noise

VOICE_GROUPS = ("low", "high")

# Formants (F1, F2, F3 Hz) of adult-male vowels (Peterson & Barney averages).
VOWELS = {
    "a": (730.0, 1090.0, 2440.0),
    "i": (270.0, 2290.0, 3010.0),
    "u": (300.0, 870.0, 2240.0),
    "e": (530.0, 1840.0, 2480.0),
    "o": (570.0, 840.0, 2410.0),
    "ae": (660.0, 1720.0, 2410.0),
}
_FORMANT_BW = (90.0, 110.0, 170.0)  # bandwidths (Hz) of F1..F3


@dataclass(frozen=True)
class Voice:
    """Parameters of one synthetic talker. Frequencies in Hz, pitch excursions in semitones."""

    name: str
    group: int              # index into VOICE_GROUPS
    f0_hz: float            # mean pitch
    pitch_range_st: float   # std of the per-syllable pitch target
    jitter: float           # fast relative f0 perturbation (std)
    formant_scale: float    # vocal-tract factor applied to every vowel formant
    open_quotient: float    # open fraction of the glottal cycle (higher: breathier, darker)
    breathiness: float      # aspiration noise relative to the voiced source
    syllable_rate_hz: float  # mean syllable rate within a phrase (3-6 Hz)


VOICES: tuple[Voice, ...] = (
    Voice("low_a", 0, 98.0, 2.0, 0.010, 0.96, 0.55, 0.05, 4.0),
    Voice("low_b", 0, 110.0, 2.6, 0.012, 1.00, 0.60, 0.10, 4.8),
    Voice("low_c", 0, 124.0, 1.8, 0.008, 0.98, 0.50, 0.04, 3.6),
    Voice("low_d", 0, 138.0, 3.0, 0.015, 1.03, 0.62, 0.12, 5.4),
    Voice("high_a", 1, 186.0, 2.5, 0.010, 1.16, 0.65, 0.12, 4.4),
    Voice("high_b", 1, 210.0, 3.0, 0.012, 1.20, 0.70, 0.15, 5.0),
    Voice("high_c", 1, 236.0, 2.2, 0.009, 1.14, 0.62, 0.10, 3.8),
    Voice("high_d", 1, 262.0, 3.5, 0.014, 1.24, 0.72, 0.18, 5.6),
)


def voices_in_group(group: int) -> tuple[Voice, ...]:
    """The voices of ``group`` (0 = low, 1 = high)."""
    if group not in range(len(VOICE_GROUPS)):
        raise ValueError(f"voice group must be in 0..{len(VOICE_GROUPS) - 1}, got {group}")
    return tuple(v for v in VOICES if v.group == group)


def voice_by_name(name: str) -> Voice:
    """The voice called ``name``."""
    for v in VOICES:
        if v.name == name:
            return v
    raise KeyError(f"no voice {name!r}; have {[v.name for v in VOICES]}")


@dataclass(frozen=True, eq=False)
class Babble:
    """A synthesized babble: ``signal`` (N,) unit RMS, ``envelope`` (N,) in [0, 1] (mouth
    opening: vowel amplitude plus half the consonant amplitude), ``onsets`` syllable onset
    samples (int64), ``voice`` the talker."""

    signal: np.ndarray
    envelope: np.ndarray
    onsets: np.ndarray
    voice: Voice


def syllable_gaps_s(rng: np.random.Generator, voice: Voice, n: int) -> np.ndarray:
    """``n`` onset-to-onset gaps (s): syllables at ~``voice.syllable_rate_hz`` with +-30 %
    jitter, and after every 3-7 syllables a phrase pause of 0.25-0.6 s."""
    gaps = rng.uniform(0.7, 1.3, n) / voice.syllable_rate_hz
    phrase_end = np.cumsum(rng.integers(3, 8, n)) - 1
    phrase_end = phrase_end[phrase_end < n]
    gaps[phrase_end] += rng.uniform(0.25, 0.6, len(phrase_end))
    return gaps


def draw_onsets(rng: np.random.Generator, voice: Voice, n_samples: int, sample_rate: int) -> np.ndarray:
    """Syllable onset samples (int64) covering ``n_samples`` (first onset within 0.3 s)."""
    duration = n_samples / sample_rate
    n = int(duration * voice.syllable_rate_hz * 1.5) + 4
    t = rng.uniform(0.0, 0.3) + np.concatenate([[0.0], np.cumsum(syllable_gaps_s(rng, voice, n))])
    t = t[t < duration - 0.05]
    return np.round(t * sample_rate).astype(np.int64)


def _formant_sos(formants: tuple[float, float, float], scale: float, sample_rate: int) -> np.ndarray:
    """Cascade of unity-DC-gain two-pole resonators (Klatt style), (3, 6) second-order sections."""
    sos = []
    for f, bw in zip(formants, _FORMANT_BW):
        f = min(f * scale, 0.45 * sample_rate)
        r = np.exp(-np.pi * bw / sample_rate)
        a1, a2 = -2 * r * np.cos(2 * np.pi * f / sample_rate), r * r
        sos.append([1 + a1 + a2, 0.0, 0.0, 1.0, a1, a2])
    return np.asarray(sos)


def _glottal_source(f0: np.ndarray, open_quotient: float, sample_rate: int) -> np.ndarray:
    """Derivative of a Rosenberg glottal flow pulse train for the pitch track ``f0`` (N,) Hz."""
    ph = np.cumsum(f0 / sample_rate) % 1.0
    rise, fall = 0.6 * open_quotient, 0.4 * open_quotient
    flow = np.where(ph < rise, 0.5 * (1 - np.cos(np.pi * ph / rise)),
                    np.where(ph < rise + fall, np.cos(0.5 * np.pi * (ph - rise) / fall), 0.0))
    return np.diff(flow, prepend=0.0)


def _consonants(length: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each syllable's consonant (0 none, 1 's', 2 'sh', 3 plosive; only where the syllable of
    ``length`` samples is long enough) and its length in samples (0 for none)."""
    n_syl = len(length)
    cons = rng.choice(4, n_syl, p=[0.35, 0.25, 0.2, 0.2])
    cons_len = np.select([cons == 1, cons == 2, cons == 3],
                         [rng.uniform(0.045, 0.08, n_syl), rng.uniform(0.045, 0.07, n_syl),
                          rng.uniform(0.012, 0.025, n_syl)], 0.0) * sr
    cons[length < cons_len + 0.06 * sr] = 0
    cons_len[cons == 0] = 0.0
    return cons, cons_len.astype(np.int64)


def _vowel_envelope(onsets: np.ndarray, length: np.ndarray, cons_len: np.ndarray, idx: np.ndarray, sr: int,
                    rng: np.random.Generator) -> np.ndarray:
    """The vowels' amplitude envelope at the samples ``idx``: from each onset (delayed into the
    consonant), 12 ms attack, 40-60 ms release, ending ``length`` samples after the onset."""
    n_syl = len(onsets)
    att = int(0.012 * sr)
    v0 = onsets + (0.6 * cons_len).astype(np.int64)
    v_end = onsets + length
    rel = np.minimum(rng.uniform(0.04, 0.06, n_syl) * sr, (v_end - v0 - att) * 0.5).astype(np.int64)
    amp = rng.uniform(0.6, 1.0, n_syl)
    x = np.stack([v0, v0 + att, v_end - rel, v_end], 1).ravel().astype(np.float64)
    y = np.stack([0 * amp, amp, 0.8 * amp, 0 * amp], 1).ravel()
    return np.interp(idx, x, y, left=0.0, right=0.0)


def _consonant_envelopes(onsets: np.ndarray, cons: np.ndarray, cons_len: np.ndarray, idx: np.ndarray, sr: int,
                         rng: np.random.Generator) -> list[np.ndarray]:
    """Envelopes of the 's', 'sh' and plosive consonants at the samples ``idx``: 2 ms attack then
    linear decay over the consonant."""
    cons_envs = []
    for c in (1, 2, 3):
        sel = cons == c
        s, ln = onsets[sel].astype(np.float64), cons_len[sel].astype(np.float64)
        a = rng.uniform(0.5, 0.9, int(sel.sum()))
        xc = np.stack([s, s + 0.002 * sr, s + ln], 1).ravel()
        yc = np.stack([0 * a, a, 0 * a], 1).ravel()
        cons_envs.append(np.interp(idx, xc, yc, left=0.0, right=0.0) if sel.any() else np.zeros(len(idx)))
    return cons_envs


def babble(voice: Voice, n_samples: int, sample_rate: int, rng: np.random.Generator,
           onsets: np.ndarray | None = None) -> Babble:
    """Synthesize ``n_samples`` of babble by ``voice``.

    ``onsets`` (sorted sample indices) fixes when syllables start (the scene passes onsets on
    frame boundaries so a face's mouth opens on the frame its syllable starts); by default they
    are drawn with :func:`draw_onsets`. Each syllable's sound starts exactly at its onset and
    ends at least 30 ms before the next one.
    """
    sr = sample_rate
    if onsets is None:
        onsets = draw_onsets(rng, voice, n_samples, sr)
    onsets = np.asarray(onsets, np.int64)
    onsets = onsets[(onsets >= 0) & (onsets < n_samples - int(0.06 * sr))]
    n_syl = len(onsets)
    if n_syl == 0:
        z = np.zeros(n_samples)
        return Babble(z, z.copy(), onsets, voice)
    nxt = np.append(onsets[1:], n_samples)
    avail = nxt - onsets - int(0.03 * sr)  # keep >= 30 ms of silence before the next syllable
    length = np.minimum(rng.uniform(0.12, 0.26, n_syl) * sr, avail).astype(np.int64)
    length = np.maximum(length, int(0.05 * sr))

    cons, cons_len = _consonants(length, sr, rng)
    idx = np.arange(n_samples)
    vowel_env = _vowel_envelope(onsets, length, cons_len, idx, sr, rng)
    cons_envs = _consonant_envelopes(onsets, cons, cons_len, idx, sr, rng)

    # Pitch: per-syllable targets + declination over the utterance + fast jitter.
    centres = (onsets + length // 2).astype(np.float64)
    targets = rng.normal(0.0, voice.pitch_range_st, n_syl) - 1.5 * centres / n_samples
    semis = np.interp(idx, centres, targets)
    jit = uniform_filter1d(rng.standard_normal(n_samples), int(0.005 * sr)) * voice.jitter * 8
    f0 = voice.f0_hz * 2 ** (semis / 12) * (1 + jit)
    source = _glottal_source(f0, voice.open_quotient, sr)
    source /= np.sqrt(np.mean(source**2)) + 1e-12
    source += voice.breathiness * band_noise(n_samples, sr, rng, 300.0, 6000.0)

    # Vowel formants: filter with every vowel in use, cross-fade by a smoothed one-hot.
    names = list(VOWELS)
    vowel = rng.integers(0, len(names), n_syl)
    seg = np.searchsorted(onsets, idx, side="right") - 1
    seg_vowel = vowel[np.maximum(seg, 0)]
    voiced = np.zeros(n_samples)
    for v in np.unique(vowel):
        w = uniform_filter1d((seg_vowel == v).astype(np.float64), int(0.025 * sr))
        voiced += w * sps.sosfilt(_formant_sos(VOWELS[names[v]], voice.formant_scale, sr), source)
    voiced /= np.sqrt(np.mean((voiced * vowel_env) ** 2)) + 1e-12

    noise_s = band_noise(n_samples, sr, rng, 3500.0 * voice.formant_scale, 8000.0)
    noise_sh = band_noise(n_samples, sr, rng, 1800.0 * voice.formant_scale, 4500.0)
    noise_p = band_noise(n_samples, sr, rng, 400.0, 7000.0)
    consonant = 0.35 * (cons_envs[0] * noise_s + cons_envs[1] * noise_sh + cons_envs[2] * noise_p)
    out = vowel_env * voiced + consonant
    out /= np.sqrt(np.mean(out**2)) + 1e-12
    envelope = np.clip(vowel_env + 0.5 * sum(cons_envs), 0.0, 1.0)
    return Babble(out, envelope, onsets, voice)
