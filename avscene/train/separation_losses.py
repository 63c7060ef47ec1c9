"""Losses and the on/off error of the separation net (design doc sections 5.6 and 8).

Predictions and targets are ``(B, 2, 2, F, T)`` tensors in the separation net's output format:
source axis 1 (on-screen, off-screen), component axis 2 (log magnitude normalised from
[-100, 80] dB to [-1, 1], phase / pi). Per example and source, the loss is

    mean |log_mag_pred - log_mag_true| + 0.01 * mean |phase_pred - phase_true|    (means over F, T)

summed over the two sources. The permutation-invariant (PIT) version evaluates it for both
assignments (pred on <-> true on / pred off <-> true off, and crossed) and keeps the smaller one
per example. The release averages per-example values over the batch; these functions return
the per-example values so callers can weight, log or reduce them.

The on/off error (Table 2's "On/off" column, our reading of the release's ``find_best_iter``) is
the same L1 on the log magnitudes only, in dB: ``mean |fg - on| + mean |bg - off|``, with the
better assignment for PIT models. It lives here because it shares the assignment logic.

One difference from the release: its targets kept 1025 bins and compared the Nyquist bin with a
prediction padded at -100 dB, a constant the net cannot change; here all 1024 bins are the net's.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from avscene.audio.stft import PAPER_SPECTROGRAM, SpectrogramConfig

#: Weight of the phase term (the release's ``phase_weight``; ``l1_weight`` is 1).
PHASE_WEIGHT = 0.01

# Components on axis 2.
_LOG_MAG, _PHASE = 0, 1


class SeparationLoss(NamedTuple):
    """Per-example loss ``(B,)`` and, per example, whether the crossed assignment was used
    (``(B,)`` bool; all False for the fixed on/off assignment)."""

    per_example: Tensor
    swapped: Tensor


def _check(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape or pred.dim() != 5 or pred.shape[1:3] != (2, 2):
        raise ValueError("pred and target must both be (B, 2 sources, 2 [log_mag, phase], F, T), got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")


def _source_terms(pred: Tensor, target: Tensor, phase_weight: float) -> Tensor:
    """``(B, 2)``: loss of each predicted source against the same-index target source."""
    l1 = (pred - target).abs().mean(dim=(3, 4))  # (B, 2 sources, 2 components)
    return l1[:, :, _LOG_MAG] + phase_weight * l1[:, :, _PHASE]  # (B, 2)


def separation_loss(pred: Tensor, target: Tensor, *, pit: bool = False,
                    phase_weight: float = PHASE_WEIGHT) -> SeparationLoss:
    """L1 on log magnitudes + ``phase_weight`` x L1 on phases, summed over both sources.

    ``pit=False``: prediction source k against target source k. ``pit=True``: per example, the
    better of that and the crossed assignment (ties keep the direct one). Computed in float32.
    """
    _check(pred, target)
    pred, target = pred.float(), target.float()
    direct = _source_terms(pred, target, phase_weight).sum(dim=1)  # (B,)
    if not pit:
        return SeparationLoss(direct, torch.zeros_like(direct, dtype=torch.bool))
    crossed = _source_terms(pred, target.flip(1), phase_weight).sum(dim=1)  # (B,)
    swapped = crossed < direct
    return SeparationLoss(torch.where(swapped, crossed, direct), swapped)


def align_sources(pred: Tensor, swapped: Tensor) -> Tensor:
    """``pred`` ``(B, 2, ...)`` with its two sources exchanged where ``swapped``, so that source k
    of the result goes with target source k (for PIT outputs before SDR or listening)."""
    mask = swapped.view(-1, *([1] * (pred.dim() - 1)))
    return torch.where(mask, pred.flip(1), pred)


def on_off_error_db(pred: Tensor, target: Tensor, *, pit: bool = False,
                    cfg: SpectrogramConfig = PAPER_SPECTROGRAM) -> SeparationLoss:
    """Table 2's on/off error per example, in dB: ``mean |fg - on| + mean |bg - off|`` over the
    log magnitudes (phases ignored; one normalised unit is 90 dB for the paper's [-100, 80] dB);
    ``pit=True`` takes the better assignment per example."""
    mag_only = separation_loss(pred, target, pit=pit, phase_weight=0.0)
    db_per_unit = (cfg.db_max - cfg.db_min) / 2.0
    return SeparationLoss(mag_only.per_example * db_per_unit, mag_only.swapped)
