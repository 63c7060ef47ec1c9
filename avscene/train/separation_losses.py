"""The training losses of the separation net (``SeparationNetConfig.loss``).

Predictions and targets are ``(B, 2, 2, F, T)`` tensors in the separation net's output format
(see :mod:`avscene.metrics.separation`). Per example and source:

* ``"log"`` (the release, design doc section 5.6)::

    mean |log_mag_pred - log_mag_true| + 0.01 * mean |phase_pred - phase_true|    (means over F, T)

  :func:`avscene.metrics.separation.spectrogram_l1` with the release's phase weight, the same
  distance Table 2's on/off error takes without the phase term. Every time-frequency bin counts
  the same, so most of the loss is spent driving bins that are silent in the target towards
  -100 dB, which BSS SDR barely notices.
* ``"compressed"``: ``mean | |X_pred|^0.3 - |X_true|^0.3 |`` over the magnitudes in linear units
  (power-law compression, as in Wilson et al. 2018, "Exploring tradeoffs in models for
  low-latency speech enhancement"); loud bins weigh more, as they do in SDR, and the phase is not
  a target (the ``mask`` output keeps the mixture's). On the demo's synthetic scenes, 600 steps
  of the ``small-lite`` separator: on-screen SDR +1.0 dB over the mixture with it, +0.1 dB with
  ``"log"`` (benchmarks/results/separation_recipes.json).

Both are summed over the two sources. The permutation-invariant (PIT) version evaluates the
direct (pred on <-> true on / pred off <-> true off) and the crossed assignment and keeps the
smaller per example. :func:`separation_loss` returns per-example values so callers can weight,
log or reduce them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from avscene.audio.stft import PAPER_SPECTROGRAM, SpectrogramConfig, unit_to_db
from avscene.metrics.separation import AssignedError, assigned, spectrogram_l1
from avscene.models.separation_net import LOG_MAG

#: Weight of the phase term of the ``"log"`` loss (the release's ``phase_weight``; ``l1_weight`` is 1).
PHASE_WEIGHT = 0.01
#: Exponent of the ``"compressed"`` loss's magnitudes.
COMPRESSION = 0.3


def separation_loss(pred: Tensor, target: Tensor, *, pit: bool = False, kind: str = "log",
                    cfg: SpectrogramConfig = PAPER_SPECTROGRAM, phase_weight: float = PHASE_WEIGHT) -> AssignedError:
    """The loss ``kind`` (``"log"`` or ``"compressed"``) summed over both sources, per example
    ``(B,)``, with the assignment used (``swapped``).

    ``pit=False``: prediction source k against target source k. ``pit=True``: per example, the
    better of that and the crossed assignment (ties keep the direct one). Computed in float32.
    """
    if kind == "log":
        return spectrogram_l1(pred, target, pit=pit, phase_weight=phase_weight)
    if kind != "compressed":
        raise ValueError(f"unknown separation loss {kind!r}")
    return assigned(lambda p, t: (p - t).abs().mean(dim=(2, 3)), _compressed(pred, cfg), _compressed(target, cfg),
                    pit=pit)


def _compressed(spec: Tensor, cfg: SpectrogramConfig) -> Tensor:
    """``|X|^COMPRESSION`` ``(B, 2, F, T)`` of a ``(B, 2, 2, F, T)`` output or target (linear
    amplitude, full scale 1; clipped at the format's ceiling as synthesis does)."""
    db = unit_to_db(spec[:, :, LOG_MAG].float().clamp(max=1.0), cfg)  # (B, 2, F, T)
    return torch.pow(10.0, db * (COMPRESSION / 20.0))
