"""The Table 2 evaluation of separation models (design doc section 8).

:func:`evaluate_separation` runs several models over one dataset of clips (e.g. held-out
synthetic scenes, :class:`avscene.data.separation_examples.SceneMixtures` with
``train=False``) and scores every clip with :func:`avscene.metrics.separation.score_batch`
(the metrics and their definitions are there). It returns a :class:`SeparationTable`: rows =
models, columns = the metrics, for all clips and broken down by each clip's ``group`` (the
scene's voice pairing: ``within`` one voice group, ``across`` groups), plus the baseline row
``mixture`` ("mixture as estimate", the mixture's waveform and spectrogram as both estimates);
:meth:`SeparationTable.write` saves it as JSON (with per-clip values), CSV and a markdown table.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Mapping

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from avscene.audio.stft import PAPER_SPECTROGRAM
from avscene.checkpoints import load_model
from avscene.data.shift_pairs import frames_to_video
from avscene.files import write_csv, write_json, write_text
from avscene.metrics.separation import METRICS, score_batch
from avscene.models.separation_net import DEFAULT_PHASE

#: Name of the baseline row that uses the mixture as both estimates.
MIXTURE = "mixture"
_GROUP_ORDER = ("all", "within", "across")
_LABELS = {"on_off_db": "On/off (dB) ↓", "sdr": "SDR", "sir": "SIR", "sar": "SAR", "si_sdr": "SI-SDR",
           "sdr_on": "On-SDR", "si_sdr_on": "On-SI-SDR"}


@dataclasses.dataclass(frozen=True)
class SeparationTable:
    """Table 2 of one evaluation: ``summary[model][group][metric]`` = mean over that group's clips
    (``summary[model][group]["n"]`` = clip count); ``clips[model]`` = the per-clip rows;
    ``info``: each model's variant and loss, the phase used, the BSS Eval settings, and (from the
    command line) ``networks``: each row's network and what it was trained on."""

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
        for name, network in self.info.get("networks", {}).items():
            lines.append(f"- {name}: {network['name']} [{network['sha256']}], trained on {network['trained_on']}")
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


def _load_nets(models: Mapping[str, nn.Module | str | os.PathLike], device) -> dict[str, nn.Module]:
    """``models`` with checkpoint paths loaded (onto ``device``, default CPU); the baseline's name
    is refused."""
    nets: dict[str, nn.Module] = {}
    for name, m in models.items():
        if name == MIXTURE:
            raise ValueError(f"model name {MIXTURE!r} is reserved for the mixture baseline")
        nets[name] = load_model(m, device or "cpu") if isinstance(m, (str, os.PathLike)) else m
    return nets


def _model_inputs(name: str, cfg, batch: dict, device: torch.device) -> tuple[torch.Tensor | None, torch.Tensor]:
    """The video ``(B, 3, T, H, W)`` (None for audio-only models) and mixture ``(B, C, N)`` of
    ``batch`` for the model ``name`` of config ``cfg``; a clear error if its clip differs."""
    mixture = batch["mixture"]
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
    return video, mixture.to(device)


def _groups(clips: dict[str, list[dict]]) -> tuple[str, ...]:
    """``all``, then the clip groups present: ``within`` and ``across`` first, others sorted."""
    present = {r["group"] for rows in clips.values() for r in rows if r["group"]}
    return ("all",) + tuple(g for g in _GROUP_ORDER[1:] if g in present) + tuple(
        sorted(present - set(_GROUP_ORDER)))


def evaluate_separation(models: Mapping[str, nn.Module | str | os.PathLike], dataset: Dataset, *,
                        batch_size: int = 8, device: str | torch.device | None = None, include_mixture: bool = True,
                        phase: str = DEFAULT_PHASE, filter_length: int = 512, clamp_db: float | None = 100.0,
                        num_workers: int = 0, progress: bool = False) -> SeparationTable:
    """Evaluate separation ``models`` (name -> :class:`~avscene.models.SeparationNet` or a
    checkpoint path) on every clip of ``dataset`` (finite; examples as
    :mod:`avscene.data.separation_examples`, all models must take its clip) and return the table
    (see the module docstring). ``include_mixture`` adds the ``mixture`` baseline row. Models
    run in eval mode on ``device`` (default: the first model's)."""
    if len(dataset) > 2**40:
        raise ValueError("dataset is endless (a training set); evaluate on a held-out set (train=False / length=)")
    nets = _load_nets(models, device)
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
        for name, net in nets.items():
            cfg = cfgs[name]
            video, mixture = _model_inputs(name, cfg, batch, device)
            with torch.no_grad():
                pred = net(video, mixture)
            clips[name] += score_batch(pred, batch, cfg, pit=cfg.pit_loss, phase=phase,
                                       filter_length=filter_length, clamp_db=clamp_db)
        if include_mixture:
            cfg = ref_cfg if ref_cfg is not None else _default_cfg()
            clips[MIXTURE] += score_batch(None, batch, cfg, filter_length=filter_length, clamp_db=clamp_db)
    groups = _groups(clips)
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
    return SimpleNamespace(spectrogram=PAPER_SPECTROGRAM)
