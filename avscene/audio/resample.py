"""Resampling arrays already in memory (decoding resamples through the media layer instead)."""

from __future__ import annotations

import math

import numpy as np


def resample_audio(audio: np.ndarray, from_rate: int, to_rate: int, *, n_out: int | None = None,
                   axis: int = -1) -> np.ndarray:
    """``audio`` from ``from_rate`` to ``to_rate`` Hz along ``axis`` as float32: polyphase
    filtering at the exact ratio (scipy ``resample_poly``, Kaiser window), so sample 0 stays at
    time 0. ``n_out`` fixes the output length (cut or zero-padded at the end); by default it is
    ``ceil(N * to_rate / from_rate)``."""
    audio = np.asarray(audio, np.float32)
    if from_rate != to_rate:
        from scipy.signal import resample_poly

        g = math.gcd(int(from_rate), int(to_rate))
        audio = resample_poly(audio, int(to_rate) // g, int(from_rate) // g, axis=axis).astype(np.float32)
    if n_out is not None:
        have = audio.shape[axis]
        if have >= n_out:
            audio = np.take(audio, np.arange(n_out), axis=axis)
        else:
            pad = [(0, 0)] * audio.ndim
            pad[axis] = (0, n_out - have)
            audio = np.pad(audio, pad)
    return audio
