"""Self-supervised sync pretraining: the shift task for :func:`avscene.train.loop.fit`.

Each clip contributes one positive (aligned audio) and one negative (shifted audio). As in the
release, a random label per clip decides which of the two goes through the first pass; the
visual stem runs once, the fused trunk twice, batch-norm statistics are per pass, and the loss
is the sigmoid cross-entropy over all 2B logits (label 1 = aligned).

Training data is a folder of videos (examples cut by
:class:`~avscene.data.shift_pairs.ShiftPairs`, each a function of its id) or, at scale,
WebDataset shards written by ``avscene prepare`` (:mod:`avscene.data.shards`): a shard folder, a
``.tar`` path or brace pattern, or a URL (``https://``, ``pipe:``, ``gs://``...). From shards,
each process and DataLoader worker reads its own share of the shards
(:class:`~avscene.data.shards.ShardSegments`: one example per segment and epoch, reshuffled
every epoch, a function of ``(seed, epoch)`` for a given number of processes and workers); see
:class:`~avscene.data.shards.ShardShiftExamples` for how that meets the training loop.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from avscene.checkpoints import shift_weights_for
from avscene.data.shards import ShardSet, ShardShiftExamples
from avscene.data.shift_pairs import ShiftPairs, ShiftSampling, frames_to_video
from avscene.data.videos import VideoIndex
from avscene.models import ShiftNet, ShiftNetConfig
from avscene.train.pair_data import held_out_batches, index_training_data, load_train_val


def shift_sampling(model_cfg: ShiftNetConfig, *, negatives: str, shift_range_s, augment: bool) -> ShiftSampling:
    """How examples for ``model_cfg`` are cut: its clip length, rates and crop."""
    return ShiftSampling(**ShiftSampling.fields_for(model_cfg), shift_range_s=shift_range_s, negatives=negatives,
                         augment=augment)


def shard_settings(model_cfg: ShiftNetConfig, *, shift_range_s=None) -> dict:
    """The :func:`~avscene.data.shards.prepare_shards` settings whose shards train ``model_cfg``:
    frames stored at its ``full_size`` (256 px for the paper's 224 crops), its frame rate,
    sample rate and channels; full segments of one clip + the largest shift + a spare frame, the
    shortest kept one clip + the smallest shift + a spare frame (10.0 s and 6.2 s for ``paper``,
    the shard module's defaults)."""
    s = shift_sampling(model_cfg, negatives="shift", shift_range_s=shift_range_s, augment=False)
    lo, hi = s.shift_frames
    return dict(size=s.full_size, fps=s.fps, sample_rate=s.sample_rate, channels=s.channels,
                clip_s=float((s.n_frames + hi + 1) / s.fps), min_clip_s=float((s.n_frames + lo + 1) / s.fps))


class PairForward(nn.Module):
    """The training forward (aligned and shifted audio through one shared visual stem) as a
    module's ``forward``, so DistributedDataParallel sees it."""

    def __init__(self, net: ShiftNet):
        super().__init__()
        self.net = net

    def forward(self, video, audio_a, audio_b):
        return self.net.forward_pair(video, audio_a, audio_b)


def shift_loss(logits_aligned: torch.Tensor, logits_shifted: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Sigmoid cross-entropy, label 1 = aligned, mean over both; accuracy of logit > 0."""
    logits = torch.cat([logits_aligned, logits_shifted]).float()  # (2B,)
    labels = torch.cat([torch.ones_like(logits_aligned), torch.zeros_like(logits_shifted)]).float()
    loss = F.binary_cross_entropy_with_logits(logits, labels)
    acc = ((logits > 0).float() == labels).float().mean()
    return loss, {"loss": float(loss.detach()), "acc": float(acc)}


@dataclasses.dataclass
class ShiftTask:
    """Shift pretraining on a folder of videos or on shards (``train_index``), validated on
    held-out videos or shards (``val_index``)."""

    model_cfg: ShiftNetConfig
    train_index: VideoIndex | ShardSet
    val_index: VideoIndex | ShardSet
    negatives: str = "shift"
    shift_range_s: tuple[float, float] | None = None
    n_val: int = 64
    seed: int = 0
    name: str = "shift"
    find_unused_parameters: bool = False
    #: A shift checkpoint to start from (fine-tuning, e.g. into the ``cam`` / ``fine_cam`` layouts,
    #: whose parameters are the same); None = random init. A resumed run ignores it.
    init: str | os.PathLike | None = None

    def __post_init__(self):
        self._val_batches: list[dict] | None = None
        self.find_unused_parameters = not self.model_cfg.use_sound

    def sampling(self, augment: bool) -> ShiftSampling:
        return shift_sampling(self.model_cfg, negatives=self.negatives, shift_range_s=self.shift_range_s,
                              augment=augment)

    def build_model(self) -> ShiftNet:
        net = ShiftNet(self.model_cfg)
        if self.init is not None:  # same widths; the layout (cam, fine_cam, clip, crop) may differ
            net.load_state_dict(shift_weights_for(self.init, net.config))
        return net

    def training_data(self) -> dict:
        """What this network learns from, for its model card."""
        return index_training_data(self.train_index)

    def model_config(self) -> dict:
        return self.model_cfg.to_dict()

    def train_module(self, model: ShiftNet) -> nn.Module:
        return PairForward(model)

    def train_dataset(self) -> Dataset:
        if isinstance(self.train_index, ShardSet):
            return ShardShiftExamples(self.train_index, self.sampling(augment=True), seed=self.seed)
        return ShiftPairs(self.train_index, self.sampling(augment=True), seed=self.seed)

    def loss(self, model: nn.Module, batch: dict, device: torch.device):
        video = frames_to_video(batch["frames"].to(device, non_blocking=True))  # (B, 3, T, H, W)
        aligned = batch["audio_aligned"].to(device, non_blocking=True)  # (B, C, N)
        shifted = batch["audio_shifted"].to(device, non_blocking=True)
        # which audio takes the first pass is random per clip, so neither pass's batch-norm
        # statistics can tell aligned from shifted
        first_is_aligned = torch.rand(video.shape[0]) < 0.5  # (B,)
        mask = first_is_aligned.to(device).view(-1, 1, 1)
        first = torch.where(mask, aligned, shifted)
        second = torch.where(mask, shifted, aligned)
        logits_first, logits_second = model(video, first, second)  # (B,), (B,)
        m = first_is_aligned.to(device)
        logits_aligned = torch.where(m, logits_first, logits_second)
        logits_shifted = torch.where(m, logits_second, logits_first)
        return shift_loss(logits_aligned, logits_shifted)

    def val_batches(self, batch_size: int = 16) -> list[dict]:
        """The fixed held-out examples (centre crop, no flip), built once."""
        if self._val_batches is None:
            self._val_batches = held_out_batches(self.val_index, self.sampling(augment=False), ShiftPairs,
                                                 n=self.n_val, seed=self.seed + 7919, batch_size=batch_size)
        return self._val_batches

    @torch.no_grad()
    def validate(self, model: ShiftNet, device: torch.device) -> dict[str, float]:
        totals = {"loss": 0.0, "acc": 0.0}
        batches = self.val_batches()
        for batch in batches:
            video = frames_to_video(batch["frames"].to(device))
            logits_aligned = model(video, batch["audio_aligned"].to(device))
            logits_shifted = model(video, batch["audio_shifted"].to(device))
            _, metrics = shift_loss(logits_aligned, logits_shifted)
            for k in totals:
                totals[k] += metrics[k] / len(batches)
        return totals


def make_shift_task(data: str | Path, model_cfg: ShiftNetConfig, *, val_data: str | Path | None = None,
                    negatives: str = "shift", shift_range_s=None, n_val: int = 64, seed: int = 0,
                    progress: bool = False, num_workers: int | None = None,
                    init: str | os.PathLike | None = None) -> ShiftTask:
    """Index the training (and validation) videos, or open the shards (see
    :func:`~avscene.data.shards.is_shard_data`),
    and build the task; unusable files are skipped and reported on the task's ``train_index``.
    Without ``val_data`` about 10 % of the videos (or shards) are held out. With ``num_workers``
    (DataLoader workers per process), training shards too few for every reader are refused now
    rather than when a reader runs dry. ``init``: a shift checkpoint to start from
    (:func:`avscene.checkpoints.shift_weights_for` checks that it fits)."""
    probe_sampling = shift_sampling(model_cfg, negatives=negatives, shift_range_s=shift_range_s, augment=False)
    index, train_index, val_index = load_train_val(data, val_data, probe_sampling, progress=progress)
    if len(train_index) == 0:
        raise ValueError(f"{data}: no usable training videos\n{index.report()}")
    if isinstance(train_index, ShardSet) and num_workers is not None:
        world = int(os.environ.get("WORLD_SIZE", "1"))  # torchrun's; the process group starts later
        if len(train_index) < world * max(1, num_workers):
            raise ValueError(f"{data}: {len(train_index)} training shards for {world} processes x "
                             f"{max(1, num_workers)} data workers: every reader needs its own shard; prepare more, "
                             "smaller shards (--clips-per-shard) or use fewer --workers")
    return ShiftTask(model_cfg, train_index, val_index, negatives=negatives, shift_range_s=shift_range_s, init=init,
                     n_val=n_val, seed=seed)
