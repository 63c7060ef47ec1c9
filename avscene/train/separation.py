"""On/off-screen separation training: the separation task for :func:`avscene.train.loop.fit`.

As the release's ``sourcesep``: the U-Net hears the mixture's spectrogram, the shift net inside
sees the clip and hears the stereo mixture, and the loss is the L1 between the predicted and
the true (on, off) spectrograms (the release's log magnitude + 0.01 x phase, or compressed
magnitudes: ``SeparationNetConfig.loss``, :mod:`separation_losses`), permutation-invariant for
the PIT variants (``full-pit``, ``audio-only``). The shift net starts
from a shift checkpoint (``init``) unless the variant is ``scratch`` or ``audio-only``, and is
fine-tuned jointly.

Examples come from a folder of videos (the paper's recipe: a clip's own sound on-screen,
another video's sound off-screen) or from a synthetic separation set with ground-truth stems;
see :mod:`avscene.data.separation_examples`. Validation, on fixed held-out examples, reports
the loss, Table 2's on/off error in dB and the SI-SDR of the waveforms (predicted phase).

Departures from the release: weight decay (``TrainConfig.weight_decay``) covers the shift net's
weights too (the release's L2 only the U-Net's); optimiser and schedule come from the
:class:`~avscene.train.loop.TrainConfig` (the CLI defaults to the release's Adam, lr 1e-4,
gradient clip 10).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

from avscene.checkpoints import shift_weights_for
from avscene.data.mixtures import MixtureConfig
from avscene.data.separation_examples import SeparationSampling, VideoMixtures, is_scene_set, separation_dataset
from avscene.data.shift_pairs import frames_to_video
from avscene.data.splits import split_index, split_scenes
from avscene.data.videos import index_videos
from avscene.metrics.separation import align_sources, on_off_error_db, si_sdr
from avscene.models import SeparationNet, SeparationNetConfig
from avscene.models.separation_net import SHIFT_INIT_KEY, synthesize_sources, target_spectrograms
from avscene.synth import load_manifest
from avscene.train.separation_losses import separation_loss


def model_video(model_cfg: SeparationNetConfig, frames: torch.Tensor, device: torch.device) -> torch.Tensor | None:
    """The net's video input from a batch's uint8 frames (None for the audio-only variant)."""
    if not model_cfg.uses_video:
        return None
    return frames_to_video(frames.to(device, non_blocking=True))  # (B, 3, T, H, W)


@dataclasses.dataclass
class SeparationTask:
    """Separation training on ``train_data``, validated on ``val_data`` (both example datasets
    of :mod:`avscene.data.separation_examples`; ``val_data`` of finite length)."""

    model_cfg: SeparationNetConfig
    train_data: Dataset
    val_data: Dataset | None = None
    init: str | None = None
    n_val: int = 32
    name: str = "separation"
    find_unused_parameters: bool = False

    def __post_init__(self):
        self._val_batches: list[dict] | None = None
        if self.init is not None and not self.model_cfg.init_from_shift:
            warnings.warn(f"variant {self.model_cfg.variant!r} starts from scratch; the shift checkpoint "
                          f"{self.init} is not used", stacklevel=2)
            self.init = None

    def build_model(self) -> SeparationNet:
        model = SeparationNet(self.model_cfg)
        if self.init is not None:
            load_shift_init(model, self.init)
        return model

    def training_data(self) -> dict:
        """What this network learns from, for its model card."""
        return self.train_data.training_data()

    def model_config(self) -> dict:
        return {**self.model_cfg.to_dict(), SHIFT_INIT_KEY: self.init}

    def train_dataset(self) -> Dataset:
        return self.train_data

    def loss(self, model: nn.Module, batch: dict, device: torch.device):
        cfg = self.model_cfg
        video = model_video(cfg, batch["frames"], device)
        mixture = batch["mixture"].to(device, non_blocking=True)  # (B, C, N)
        pred = model(video, mixture)  # (B, 2, 2, F, T)
        target = target_spectrograms(batch["on"].to(device, non_blocking=True),
                                     batch["off"].to(device, non_blocking=True), cfg.spectrogram)
        loss = separation_loss(pred, target, pit=cfg.pit_loss, kind=cfg.loss, cfg=cfg.spectrogram)
        error = on_off_error_db(pred.detach(), target, pit=cfg.pit_loss, cfg=cfg.spectrogram)
        mean = loss.per_example.mean()
        return mean, {"loss": float(mean.detach()), "on_off_db": float(error.per_example.mean())}

    def val_batches(self, batch_size: int = 8) -> list[dict]:
        """The fixed held-out examples (first ``n_val`` of ``val_data``), built once."""
        if self._val_batches is None:
            if self.val_data is None:
                self._val_batches = []
            else:
                n = min(self.n_val, len(self.val_data))
                examples = [self.val_data[i] for i in range(n)]
                self._val_batches = [default_collate(examples[i : i + batch_size])
                                     for i in range(0, len(examples), batch_size)]
        return self._val_batches

    @torch.no_grad()
    def validate(self, model: SeparationNet, device: torch.device) -> dict[str, float]:
        cfg = self.model_cfg
        totals: dict[str, float] = {}
        batches = self.val_batches()
        n = sum(len(b["mixture"]) for b in batches)
        for batch in batches:
            mixture, on, off = (batch[k].to(device) for k in ("mixture", "on", "off"))
            pred = model(model_video(cfg, batch["frames"], device), mixture)
            target = target_spectrograms(on, off, cfg.spectrogram)
            loss = separation_loss(pred, target, pit=cfg.pit_loss, kind=cfg.loss, cfg=cfg.spectrogram)
            error = on_off_error_db(pred, target, pit=cfg.pit_loss, cfg=cfg.spectrogram)
            waves = synthesize_sources(align_sources(pred, error.swapped), cfg.n_samples, cfg.spectrogram)
            covered = cfg.spectrogram.n_samples(cfg.spec_frames)
            refs = torch.stack([on.mean(1), off.mean(1)], dim=1)  # (B, 2, N) mono
            sdr = si_sdr(refs[..., :covered], waves[..., :covered]).mean(1)  # (B,)
            for k, v in (("loss", loss.per_example), ("on_off_db", error.per_example), ("si_sdr", sdr)):
                totals[k] = totals.get(k, 0.0) + float(v.sum()) / n
        return totals


def load_shift_init(model: SeparationNet, path: str | os.PathLike) -> list[str]:
    """Initialise ``model``'s shift net from the shift checkpoint at ``path`` (``avscene train
    shift``); the architectures must match (BN scales the checkpoint lacks start at 1). Returns
    the names left at their init."""
    return model.load_shift_weights(shift_weights_for(path, model.config.shift))


def make_separation_task(data: str | Path, cfg: SeparationNetConfig, *, init: str | Path | None = None,
                         val_data: str | Path | None = None, snr_db: tuple[float, float] = (0.0, 0.0),
                         per_channel: bool = True, n_val: int = 32, seed: int = 0,
                         progress: bool = False) -> SeparationTask:
    """Build the separation task.

    Args:
        data: a folder of videos (on-the-fly mixtures of two videos) or a synthetic separation
            set (``avscene synth --task separation``; ground-truth stems).
        cfg: the model (a preset with its ``variant``: full, full-pit, mono, single-frame,
            no-early-fusion, scratch, audio-only).
        init: a shift checkpoint for the shift net; ignored (with a warning) for ``scratch`` and
            ``audio-only``. Without it every variant starts from scratch.
        val_data: held-out videos or scenes; default ~10% of ``data`` chosen by a stable hash of
            the file or scene name (a folder with fewer than 2 held-out videos, too few for a
            mixture, validates on mixtures of all its videos: pass ``val_data`` to keep them apart).
        snr_db: on/off SNR range (dB) of training mixtures, drawn per example (release: 0 dB).
        per_channel: RMS-normalise each channel separately (release) or all together.
        n_val: held-out examples for validation.
    """
    mixture = MixtureConfig(snr_db_range=tuple(snr_db), per_channel=per_channel)
    val_seed = seed + 7919
    if val_data is None and is_scene_set(data):
        stems = [e["stem"] for e in load_manifest(data)["scenes"]]
        train_ids, val_ids = split_scenes(stems)
        train = separation_dataset(data, cfg, train=True, mixture=mixture, seed=seed, scenes=train_ids)
        val = separation_dataset(data, cfg, train=False, mixture=mixture, seed=val_seed, scenes=val_ids)
    elif val_data is None:
        sampling = SeparationSampling.for_model(cfg, augment=True, mixture=mixture)
        index = index_videos(data, min_duration_s=float((sampling.n_frames + 2) / sampling.fps), progress=progress)
        train_index, val_index = split_index(index)
        if len(train_index) < 2:
            raise ValueError(f"{data}: separation needs at least 2 usable training videos\n{index.report()}")
        if len(val_index) < 2:  # an off-screen sound needs a second held-out video
            val_index = index
        train = VideoMixtures(train_index, sampling, seed=seed)
        val = VideoMixtures(val_index, dataclasses.replace(sampling, augment=False), seed=val_seed, length=n_val)
    else:
        train = separation_dataset(data, cfg, train=True, mixture=mixture, seed=seed, progress=progress)
        val = separation_dataset(val_data, cfg, train=False, mixture=mixture, seed=val_seed, length=n_val,
                                 progress=progress)
    return SeparationTask(cfg, train, val, init=None if init is None else str(init), n_val=n_val)
