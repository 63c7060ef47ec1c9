"""Separation metrics and the Table 2 evaluation (design doc section 8).

Per clip, with the two references ``on`` and ``off`` (mono: the channel mean, as the net's
targets) and the two estimates:

* ``on_off_db``: Table 2's "On/off" error, ``mean |fg - on| + mean |bg - off|`` over the log
  magnitude spectrograms in dB (:func:`avscene.train.separation_losses.on_off_error_db`; the
  better assignment for PIT models). Lower is better.
* ``sdr``, ``sir``, ``sar``: BSS Eval (Vincent et al. 2006; ``bss_eval_sources`` with a
  512-tap distortion filter, as ``mir_eval`` / museval v3) from ``fast-bss-eval`` (the ``eval``
  extra), for the fixed assignment (estimate k <-> reference k; PIT outputs are first put in
  the order their on/off error chose), **averaged over the two sources**; ``sdr_on`` is the
  on-screen source's SDR alone (Table 3's "On-SDR"). Clamped to +-``clamp_db`` (100 dB) so a
  perfect estimate (infinite SDR) cannot make a mean infinite.
* ``si_sdr``, ``si_sdr_on``: scale-invariant SDR (Le Roux et al. 2019, zero-mean), likewise.

Waveforms are compared over the samples the STFT covers, ``[0, (T - 1) * hop + win)`` (44016
of the paper's 44144), for every row alike. The baseline row ``mixture`` ("mixture as
estimate") uses the mixture's waveform and spectrogram as both estimates: at 0 dB SNR its SDR
is about 0 dB, so a model's SDR is its improvement over doing nothing.

:func:`evaluate_separation` runs several models over one dataset of clips (e.g. held-out
synthetic scenes, :class:`avscene.data.separation_examples.SceneMixtures` with
``train=False``) and returns a :class:`SeparationTable`: rows = models, columns = the metrics,
for all clips and broken down by each clip's ``group`` (the scene's voice pairing: ``within``
one voice group, ``across`` groups); :meth:`SeparationTable.write` saves it as JSON (with
per-clip values), CSV and a markdown table.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from avscene.files import write_csv, write_json, write_text
from avscene.models.separation_net import (DEFAULT_PHASE, PHASE_SOURCES, input_spectrogram, synthesize_sources,
                                           target_spectrograms)
from avscene.train.separation_losses import align_sources, on_off_error_db

#: Per-clip metrics, in table order; ``on_off_db`` lower is better, the others higher.
METRICS = ("on_off_db", "sdr", "sir", "sar", "si_sdr", "sdr_on", "si_sdr_on")
#: Name of the baseline row that uses the mixture as both estimates.
MIXTURE = "mixture"
_GROUP_ORDER = ("all", "within", "across")
_LABELS = {"on_off_db": "On/off (dB) ↓", "sdr": "SDR", "sir": "SIR", "sar": "SAR", "si_sdr": "SI-SDR",
           "sdr_on": "On-SDR", "si_sdr_on": "On-SI-SDR"}


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
    sdr, sir, sar = _fast_bss_eval().bss_eval_sources(ref, est, filter_length=filter_length, clamp_db=clamp_db,
                                                      compute_permutation=False)
    return sdr.numpy(), sir.numpy(), sar.numpy()


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


@dataclasses.dataclass(frozen=True)
class SeparationTable:
    """Table 2 of one evaluation: ``summary[model][group][metric]`` = mean over that group's clips
    (``summary[model][group]["n"]`` = clip count); ``clips[model]`` = the per-clip rows;
    ``info``: each model's variant and loss, the phase used, the BSS Eval settings."""

    models: tuple[str, ...]
    groups: tuple[str, ...]
    summary: dict[str, dict[str, dict[str, float]]]
    clips: dict[str, list[dict]]
    info: dict

    def value(self, model: str, metric: str, group: str = "all") -> float:
        return self.summary[model][group][metric]

    def to_dict(self) -> dict:
        return {"metrics": list(METRICS), "groups": list(self.groups), "models": list(self.models),
                "info": self.info, "summary": self.summary, "clips": self.clips}

    def rows(self) -> list[dict]:
        """One flat row per model: ``model``, ``variant``, then ``<group>_<metric>`` and ``<group>_n``."""
        out = []
        for name in self.models:
            row = {"model": name, "variant": self.info["models"][name]["variant"]}
            for g in self.groups:
                row[f"{g}_n"] = int(self.summary[name][g]["n"])
                row.update({f"{g}_{m}": round(self.summary[name][g][m], 4) for m in METRICS})
            out.append(row)
        return out

    def columns(self) -> list[str]:
        return ["model", "variant"] + [f"{g}_{c}" for g in self.groups for c in ("n", *METRICS)]

    def to_markdown(self) -> str:
        """Table 2's shape: all clips (on/off, SDR, SIR, SAR, SI-SDR), then on/off and SDR per group."""
        cols = [("all", m) for m in ("on_off_db", "sdr", "sir", "sar", "si_sdr", "sdr_on")]
        cols += [(g, m) for g in self.groups if g != "all" for m in ("on_off_db", "sdr", "si_sdr")]
        head = ["Method"] + [f"{g.capitalize()} {_LABELS[m]}" for g, m in cols]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for name in self.models:
            label = "mixture as estimate" if name == MIXTURE else name
            values = [self.summary[name][g][m] for g, m in cols]
            cells = [f"{v:.2f}" if math.isfinite(v) else "–" for v in values]
            lines.append("| " + " | ".join([label] + cells) + " |")
        counts = ", ".join(f"{g}: {int(self.summary[self.models[0]][g]['n'])}" for g in self.groups)
        lines.append("")
        lines.append(f"Clips: {counts}. SDR/SIR/SAR/SI-SDR in dB, mean over the on- and off-screen sources "
                     f"(On-SDR: on-screen only); On/off: L1 of log spectrograms in dB, lower is better; "
                     f"phase: {self.info['phase']}.")
        return "\n".join(lines) + "\n"

    def write(self, out_dir: str | os.PathLike, stem: str = "separation_eval") -> dict[str, Path]:
        """``<stem>.json`` (summary + per-clip rows), ``<stem>.csv`` (one row per model) and
        ``<stem>.md`` (the markdown table) in ``out_dir``, atomically."""
        out = Path(out_dir)
        return {
            "json": write_json(out / f"{stem}.json", self.to_dict()),
            "csv": write_csv(out / f"{stem}.csv", self.rows(), self.columns()),
            "md": write_text(out / f"{stem}.md", self.to_markdown()),
        }


def _summarise(rows: list[dict], groups: tuple[str, ...]) -> dict[str, dict[str, float]]:
    out = {}
    for g in groups:
        chosen = [r for r in rows if g == "all" or r["group"] == g]
        stats = {m: float(np.mean([r[m] for r in chosen])) if chosen else math.nan for m in METRICS}
        stats["n"] = len(chosen)
        out[g] = stats
    return out


def evaluate_separation(models: Mapping[str, nn.Module | str | os.PathLike], dataset: Dataset, *,
                        batch_size: int = 8, device: str | torch.device | None = None, include_mixture: bool = True,
                        phase: str = DEFAULT_PHASE, filter_length: int = 512, clamp_db: float | None = 100.0,
                        num_workers: int = 0, progress: bool = False) -> SeparationTable:
    """Evaluate separation ``models`` (name -> :class:`~avscene.models.SeparationNet` or a
    checkpoint path) on every clip of ``dataset`` (finite; examples as
    :mod:`avscene.data.separation_examples`, all models must take its clip) and return the table
    (see the module docstring). ``include_mixture`` adds the ``mixture`` baseline row. Models
    run in eval mode on ``device`` (default: the first model's)."""
    from tqdm import tqdm

    from avscene.checkpoints import load_model
    from avscene.data.shift_pairs import frames_to_video

    if len(dataset) > 2**40:
        raise ValueError("dataset is endless (a training set); evaluate on a held-out set (train=False / length=)")
    nets: dict[str, nn.Module] = {}
    for name, m in models.items():
        if name == MIXTURE:
            raise ValueError(f"model name {MIXTURE!r} is reserved for the mixture baseline")
        nets[name] = load_model(m, device or "cpu") if isinstance(m, (str, os.PathLike)) else m
    if not nets and not include_mixture:
        raise ValueError("nothing to evaluate: no models and include_mixture=False")
    if device is None:
        device = next(next(iter(nets.values())).parameters()).device if nets else torch.device("cpu")
    device = torch.device(device)
    cfgs = {name: net.config for name, net in nets.items()}
    ref_cfg = next(iter(cfgs.values()), None)
    for net in nets.values():
        net.to(device).eval()
    clips: dict[str, list[dict]] = {name: [] for name in ([*nets, MIXTURE] if include_mixture else nets)}
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    for batch in tqdm(loader, desc="evaluate separation", unit="batch", disable=not progress):
        mixture = batch["mixture"]
        for name, net in nets.items():
            cfg = cfgs[name]
            if tuple(mixture.shape[1:]) != cfg.audio_shape:
                raise ValueError(f"model {name!r} takes audio {cfg.audio_shape}, the dataset gives "
                                 f"{tuple(mixture.shape[1:])}: evaluate models of one clip length together")
            video = None
            if cfg.uses_video:
                frames = batch["frames"]
                if tuple(frames.shape[1:]) != (cfg.n_frames, cfg.shift.crop_size, cfg.shift.crop_size, 3):
                    raise ValueError(f"model {name!r} takes {cfg.n_frames} frames of {cfg.shift.crop_size} px, the "
                                     f"dataset gives {tuple(frames.shape[1:])}")
                video = frames_to_video(frames.to(device))
            with torch.no_grad():
                pred = net(video, mixture.to(device))
            clips[name] += score_batch(pred, batch, cfg, pit=cfg.pit_loss, phase=phase,
                                       filter_length=filter_length, clamp_db=clamp_db)
        if include_mixture:
            cfg = ref_cfg if ref_cfg is not None else _default_cfg()
            clips[MIXTURE] += score_batch(None, batch, cfg, filter_length=filter_length, clamp_db=clamp_db)
    present = {r["group"] for rows in clips.values() for r in rows if r["group"]}
    groups = ("all",) + tuple(g for g in _GROUP_ORDER[1:] if g in present) + tuple(
        sorted(present - set(_GROUP_ORDER)))
    summary = {name: _summarise(rows, groups) for name, rows in clips.items()}
    info = {
        "models": {name: {"variant": cfgs[name].variant, "pit": cfgs[name].pit_loss} for name in nets},
        "phase": phase, "filter_length": filter_length, "clamp_db": clamp_db,
        "n_clips": len(next(iter(clips.values()))), "n_skipped": int(getattr(dataset, "n_skipped", 0)),
    }
    if include_mixture:
        info["models"][MIXTURE] = {"variant": "mixture as estimate", "pit": False}
    return SeparationTable(tuple(clips), groups, summary, clips, info)


def _default_cfg():
    """A config with the paper's spectrogram, for the mixture baseline alone (no model given)."""
    from types import SimpleNamespace

    from avscene.audio.stft import PAPER_SPECTROGRAM

    return SimpleNamespace(spectrogram=PAPER_SPECTROGRAM)
