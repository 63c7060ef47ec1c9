"""The training loss of the separation net (design doc section 5.6).

Predictions and targets are ``(B, 2, 2, F, T)`` tensors in the separation net's output format
(see :mod:`avscene.metrics.separation`). Per example and source, the loss is

    mean |log_mag_pred - log_mag_true| + 0.01 * mean |phase_pred - phase_true|    (means over F, T)

summed over the two sources: :func:`avscene.metrics.separation.spectrogram_l1` with the
release's phase weight, the same distance Table 2's on/off error takes without the phase term.
The permutation-invariant (PIT) version evaluates it for both assignments (pred on <-> true on /
pred off <-> true off, and crossed) and keeps the smaller one per example. The release averages
per-example values over the batch; :func:`separation_loss` returns the per-example values so
callers can weight, log or reduce them.
"""

from __future__ import annotations

from torch import Tensor

from avscene.metrics.separation import AssignedError, spectrogram_l1

#: Weight of the phase term (the release's ``phase_weight``; ``l1_weight`` is 1).
PHASE_WEIGHT = 0.01


def separation_loss(pred: Tensor, target: Tensor, *, pit: bool = False,
                    phase_weight: float = PHASE_WEIGHT) -> AssignedError:
    """L1 on log magnitudes + ``phase_weight`` x L1 on phases, summed over both sources, per
    example ``(B,)``, with the assignment used (``swapped``).

    ``pit=False``: prediction source k against target source k. ``pit=True``: per example, the
    better of that and the crossed assignment (ties keep the direct one). Computed in float32.
    """
    return spectrogram_l1(pred, target, pit=pit, phase_weight=phase_weight)
