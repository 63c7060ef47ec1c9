"""Separation metrics (design doc section 8): the on/off error of Table 2, BSS Eval, SI-SDR.

Per clip, with the two references ``on`` and ``off`` (mono: the channel mean, as the net's
targets) and the two estimates:

* ``on_off_db``: Table 2's "On/off" error, ``mean |fg - on| + mean |bg - off|`` over the log
  magnitude spectrograms in dB (:func:`on_off_error_db`; the better assignment for PIT models).
  Lower is better.
* ``sdr``, ``sir``, ``sar``: BSS Eval (Vincent et al. 2006; ``bss_eval_sources`` with a
  512-tap distortion filter, as ``mir_eval`` / museval v3) from ``fast-bss-eval`` (the ``eval``
  extra), for the fixed assignment (estimate k <-> reference k; PIT outputs are first put in
  the order their on/off error chose), **averaged over the two sources**; ``sdr_on`` is the
  on-screen source's SDR alone (Table 3's "On-SDR"). Clamped to +-``clamp_db`` (100 dB) so a
  perfect estimate (infinite SDR) cannot make a mean infinite.
* ``si_sdr``, ``si_sdr_on``: scale-invariant SDR (Le Roux et al. 2019, zero-mean), likewise.

Waveforms are compared over the samples the STFT covers, ``[0, (T - 1) * hop + win)`` (44016
of the paper's 44144). :func:`score_batch` computes all of them for one batch, from the net's
output or, for the "mixture as estimate" baseline, from the mixture itself (at 0 dB SNR its SDR
is about 0 dB, so a model's SDR is its improvement over doing nothing). The evaluation that runs
models over a dataset and writes Table 2 is :mod:`avscene.evaluate.separation`.

Spectrogram predictions and targets are ``(B, 2, 2, F, T)`` tensors in the separation net's
output format: source axis 1 (on-screen, off-screen), component axis 2 (log magnitude
normalised from [-100, 80] dB to [-1, 1], phase / pi). :func:`spectrogram_l1` is the distance
both the on/off error and the training loss (:mod:`avscene.train.separation_losses`) are made
of: per example and source ``mean |log_mag_pred - log_mag_true| + phase_weight * mean
|phase_pred - phase_true|`` (means over F, T), summed over the two sources; with ``pit`` the
better of the direct and the crossed assignment per example.

One difference from the release: its targets kept 1025 bins and compared the Nyquist bin with a
prediction padded at -100 dB, a constant the net cannot change; here all 1024 bins are the net's.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import Tensor

from avscene.audio.stft import PAPER_SPECTROGRAM, SpectrogramConfig
from avscene.models.separation_net import (DEFAULT_PHASE, PHASE_SOURCES, input_spectrogram, synthesize_sources,
                                           target_spectrograms)

#: Per-clip metrics, in table order; ``on_off_db`` lower is better, the others higher.
METRICS = ("on_off_db", "sdr", "sir", "sar", "si_sdr", "sdr_on", "si_sdr_on")

# Components on axis 2.
_LOG_MAG, _PHASE = 0, 1


class AssignedError(NamedTuple):
    """Per-example value ``(B,)`` and, per example, whether the crossed assignment was used
    (``(B,)`` bool; all False for the fixed on/off assignment)."""

    per_example: Tensor
    swapped: Tensor


def _check(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape or pred.dim() != 5 or pred.shape[1:3] != (2, 2):
        raise ValueError("pred and target must both be (B, 2 sources, 2 [log_mag, phase], F, T), got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")


def _source_terms(pred: Tensor, target: Tensor, phase_weight: float) -> Tensor:
    """``(B, 2)``: distance of each predicted source to the same-index target source."""
    l1 = (pred - target).abs().mean(dim=(3, 4))  # (B, 2 sources, 2 components)
    return l1[:, :, _LOG_MAG] + phase_weight * l1[:, :, _PHASE]  # (B, 2)


def spectrogram_l1(pred: Tensor, target: Tensor, *, pit: bool = False, phase_weight: float) -> AssignedError:
    """L1 on log magnitudes + ``phase_weight`` x L1 on phases (normalised units), summed over
    both sources, per example.

    ``pit=False``: prediction source k against target source k. ``pit=True``: per example, the
    better of that and the crossed assignment (ties keep the direct one). Computed in float32.
    """
    _check(pred, target)
    return assigned(lambda p, t: _source_terms(p, t, phase_weight), pred.float(), target.float(), pit=pit)


def assigned(source_terms: Callable[[Tensor, Tensor], Tensor], pred: Tensor, target: Tensor, *,
             pit: bool) -> AssignedError:
    """``source_terms(pred, target) -> (B, 2)`` (each predicted source against the same-index
    target source, ``(B, 2, ...)`` inputs) summed over the sources, per example: the direct
    assignment, or with ``pit`` the better of it and the crossed one (ties keep the direct one)."""
    direct = source_terms(pred, target).sum(dim=1)  # (B,)
    if not pit:
        return AssignedError(direct, torch.zeros_like(direct, dtype=torch.bool))
    crossed = source_terms(pred, target.flip(1)).sum(dim=1)  # (B,)
    swapped = crossed < direct
    return AssignedError(torch.where(swapped, crossed, direct), swapped)


def align_sources(pred: Tensor, swapped: Tensor) -> Tensor:
    """``pred`` ``(B, 2, ...)`` with its two sources exchanged where ``swapped``, so that source k
    of the result goes with target source k (for PIT outputs before SDR or listening)."""
    mask = swapped.view(-1, *([1] * (pred.dim() - 1)))
    return torch.where(mask, pred.flip(1), pred)


def on_off_error_db(pred: Tensor, target: Tensor, *, pit: bool = False,
                    cfg: SpectrogramConfig = PAPER_SPECTROGRAM) -> AssignedError:
    """Table 2's on/off error per example, in dB (the release's ``find_best_iter`` read as the
    paper's "On/off" column): ``mean |fg - on| + mean |bg - off|`` over the log magnitudes
    (phases ignored; one normalised unit is 90 dB for the paper's [-100, 80] dB); ``pit=True``
    takes the better assignment per example."""
    mag_only = spectrogram_l1(pred, target, pit=pit, phase_weight=0.0)
    db_per_unit = (cfg.db_max - cfg.db_min) / 2.0
    return AssignedError(mag_only.per_example * db_per_unit, mag_only.swapped)


def _fast_bss_eval():
    try:
        import fast_bss_eval
    except ImportError:
        raise ImportError("BSS Eval metrics need fast-bss-eval: pip install 'avscene[eval]'") from None
    return fast_bss_eval


def bss_eval(reference, estimate, *, filter_length: int = 512, clamp_db: float | None = 100.0
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BSS Eval SDR, SIR, SAR (dB) of ``estimate`` k against ``reference`` k (no permutation
    search), both ``(..., n_sources, N)`` arrays or tensors; returns three ``(..., n_sources)``
    float64 arrays. Computed in float64 through fast-bss-eval's torch backend (its NumPy
    backend fails under NumPy 2: ``np.linalg.solve`` changed its broadcasting)."""
    ref = torch.as_tensor(np.asarray(reference) if not isinstance(reference, Tensor) else reference).double().cpu()
    est = torch.as_tensor(np.asarray(estimate) if not isinstance(estimate, Tensor) else estimate).double().cpu()
    if ref.shape != est.shape or ref.dim() < 2:
        raise ValueError(f"reference and estimate must both be (..., n_sources, N), got {tuple(ref.shape)} "
                         f"and {tuple(est.shape)}")
    def run():
        return _fast_bss_eval().bss_eval_sources(ref, est, filter_length=filter_length, clamp_db=clamp_db,
                                                 compute_permutation=False)

    try:
        sdr, sir, sar = run()
    except RuntimeError as error:
        # torch 2.13's MKL build: after any torch.set_num_threads(n >= 2) call, a batched float64
        # solve of filter_length-sized systems fails ("Pivots given to lu_solve ..."); one thread
        # solves them correctly.
        if "lu_solve" not in str(error):
            raise
        with _one_thread():
            sdr, sir, sar = run()
    return sdr.numpy(), sir.numpy(), sar.numpy()


@contextlib.contextmanager
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def si_sdr(reference, estimate, *, clamp_db: float | None = 100.0, eps: float = 1e-12) -> Tensor:
    """Scale-invariant SDR (dB) along the last axis, zero-mean (Le Roux et al. 2019), float64."""
    ref = torch.as_tensor(reference).double()
    est = torch.as_tensor(estimate).double()
    ref = ref - ref.mean(-1, keepdim=True)
    est = est - est.mean(-1, keepdim=True)
    alpha = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps)
    target = alpha * ref
    out = 10 * torch.log10((target.pow(2).sum(-1) + eps) / ((est - target).pow(2).sum(-1) + eps))
    return out.clamp(-clamp_db, clamp_db) if clamp_db is not None else out


@torch.no_grad()
def score_batch(pred: Tensor | None, batch: dict, cfg, *, pit: bool = False, phase: str = DEFAULT_PHASE,
                filter_length: int = 512, clamp_db: float | None = 100.0) -> list[dict]:
    """Per-clip metrics (:data:`METRICS`) of one batch. ``pred``: the net's output
    ``(B, 2, 2, F, T)``, or None for the mixture-as-estimate baseline; ``batch``: ``mixture``,
    ``on``, ``off`` ``(B, C, N)`` (plus ``group``, ``source``, ``start_frame``, ``snr_db``);
    ``cfg``: the :class:`~avscene.models.SeparationNetConfig` (spectrogram, clip length)."""
    spec_cfg = cfg.spectrogram
    mixture, on, off = (batch[k].float().cpu() for k in ("mixture", "on", "off"))
    target = target_spectrograms(on, off, spec_cfg)  # (B, 2, 2, F, T)
    covered = spec_cfg.n_samples(target.shape[-1])
    if pred is None:
        mix_spec = input_spectrogram(mixture, spec_cfg)  # (B, 2, F, T)
        error = on_off_error_db(torch.stack([mix_spec, mix_spec], 1), target, cfg=spec_cfg)
        mono = mixture.mean(1)
        est = torch.stack([mono, mono], 1)  # (B, 2, N)
    else:
        pred = pred.float().cpu()
        error = on_off_error_db(pred, target, pit=pit, cfg=spec_cfg)
        pred = align_sources(pred, error.swapped)
        if phase not in PHASE_SOURCES:
            raise ValueError(f"phase must be one of {PHASE_SOURCES}, got {phase!r}")
        est = synthesize_sources(pred, mixture.shape[-1], spec_cfg,
                                 mixture=mixture if phase == "mixture" else None)  # (B, 2, N)
    ref = torch.stack([on.mean(1), off.mean(1)], 1)[..., :covered]  # (B, 2, L)
    est = est[..., :covered]
    sdr, sir, sar = bss_eval(ref, est, filter_length=filter_length, clamp_db=clamp_db)  # (B, 2) each
    si = si_sdr(ref, est, clamp_db=clamp_db).numpy()  # (B, 2)
    rows = []
    for i in range(len(mixture)):
        rows.append({
            "group": _item(batch, "group", i, ""), "source": _item(batch, "source", i, ""),
            "start_frame": int(_item(batch, "start_frame", i, -1)),
            "snr_db": float(_item(batch, "snr_db", i, math.nan)),
            "on_off_db": float(error.per_example[i]), "swapped": bool(error.swapped[i]),
            "sdr": float(sdr[i].mean()), "sir": float(sir[i].mean()), "sar": float(sar[i].mean()),
            "si_sdr": float(si[i].mean()), "sdr_on": float(sdr[i, 0]), "si_sdr_on": float(si[i, 0]),
        })
    return rows


def _item(batch: dict, key: str, i: int, default):
    if key not in batch:
        return default
    value = batch[key][i]
    return value.item() if isinstance(value, Tensor) else value
