"""Audio-visual correspondence: the two-tower task for :func:`avscene.train.loop.fit`.

Each clip gives one positive, its picture with its own sound, and negatives:

* the example's own negative audio (:mod:`avscene.data.correspondence_pairs`): from another video,
  or with ``hard_negatives`` from the same video at another time (2.0-5.8 s away at the paper's
  scale, as the shift task's);
* the sound of the batch's other clips, except those of the same video.

Objectives (the head is the model's, :mod:`avscene.models.two_tower`):

* ``l3`` and ``avenet``: binary correspondence, sigmoid cross-entropy with the positives and the
  negatives weighted equally; the batch's negative of clip ``i`` is clip ``i + 1``'s sound (L3's
  50/50 split of matching and mismatched pairs);
* ``infonce``: the softmax over the batch, both ways (picture -> sound over every clip's sound
  plus the example's negative; sound -> picture over every clip's picture).

From shards, whose examples do not say their video, the batch's negatives are not screened, and
an example's own negative (always from its own video there) is used only with ``hard_negatives``.

Metrics: ``loss``, ``acc`` (binary: logit > 0 right; InfoNCE: the right sound ranked first).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from avscene.data.correspondence_pairs import UNKNOWN_VIDEO, CorrespondencePairs, correspondence_sampling
from avscene.data.shards import ShardSet, ShardShiftExamples
from avscene.data.shift_pairs import frames_to_video
from avscene.data.videos import VideoIndex
from avscene.models.two_tower import TwoTowerConfig, TwoTowerNet
from avscene.train.pair_data import held_out_batches, index_training_data, load_train_val


def same_video_mask(videos: torch.Tensor) -> torch.Tensor:
    """(B,) video ids -> (B, B) bool, True where clips ``i != j`` come from one known video (a
    pair that must not serve as a negative)."""
    known = videos != UNKNOWN_VIDEO
    same = (videos[:, None] == videos[None, :]) & known[:, None] & known[None, :]
    return same & ~torch.eye(len(videos), dtype=torch.bool, device=videos.device)


def batch_negative_pairs(videos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch negatives of the binary objectives: clip ``i``'s picture with clip ``i + 1``'s
    sound (cyclically), for the clips whose neighbour is from another video. videos: (B,) ids ->
    (picture rows, sound rows), each (K,) with K <= B."""
    rows = torch.arange(len(videos), device=videos.device)
    cols = torch.roll(rows, -1)
    usable = (cols != rows) & ~same_video_mask(videos)[rows, cols]
    return rows[usable], cols[usable]


def binary_loss(positive: torch.Tensor, negatives: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """Sigmoid cross-entropy, label 1 for the ``positive`` logits (B,), 0 for each tensor of
    ``negatives``; positives and negatives weigh half each. Accuracy of logit > 0 alike."""
    negative = torch.cat([n.float().reshape(-1) for n in negatives])  # (K,)
    positive = positive.float()
    loss = 0.5 * (F.binary_cross_entropy_with_logits(positive, torch.ones_like(positive))
                  + F.binary_cross_entropy_with_logits(negative, torch.zeros_like(negative)))
    acc = 0.5 * ((positive > 0).float().mean() + (negative <= 0).float().mean())
    return loss, {"loss": float(loss.detach()), "acc": float(acc)}


def infonce_loss(logits: torch.Tensor, extra: torch.Tensor | None = None,
                 exclude: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Symmetric InfoNCE. ``logits`` (B, B): picture ``i`` against sound ``j``, the diagonal the
    positives; ``extra`` (B,): one more negative sound per picture; ``exclude`` (B, B) bool: pairs
    that are neither positive nor negative (same video). Accuracy: the picture's own sound first."""
    logits = logits.float()
    if exclude is not None:
        logits = logits.masked_fill(exclude, float("-inf"))
    target = torch.arange(len(logits), device=logits.device)
    to_sound = logits if extra is None else torch.cat([logits, extra.float()[:, None]], dim=1)  # (B, B [+1])
    loss = 0.5 * (F.cross_entropy(to_sound, target) + F.cross_entropy(logits.T, target))
    acc = (to_sound.argmax(dim=1) == target).float().mean()
    return loss, {"loss": float(loss.detach()), "acc": float(acc)}


class PairLoss(nn.Module):
    """The training forward and its loss as one module's ``forward``, so DistributedDataParallel
    sees every parameter a step uses (the heads too): (loss, its value, accuracy)."""

    def __init__(self, net: TwoTowerNet):
        super().__init__()
        self.net = net

    def forward(self, video, audio, negative_audio, videos):
        v, locations = self.net.embed_video(video)  # (B, D), (B, D, t, h, w)
        both = audio if negative_audio is None else torch.cat([audio, negative_audio])
        a = self.net.embed_audio(both)  # (B or 2B, D)
        a_negative = a[len(video):] if negative_audio is not None else None
        loss, metrics = correspondence_loss(self.net, v, locations, a[: len(video)], a_negative, videos)
        return loss, metrics["loss"], metrics["acc"]


def correspondence_loss(net: TwoTowerNet, v, locations, a, a_negative, videos: torch.Tensor):
    """The objective of ``net.config`` on one batch of embeddings (see the module docstring).
    v, a, a_negative: (B, D) (``a_negative`` None: the batch's negatives only); locations:
    (B, D, t, h, w); videos: (B,) ids."""
    cfg = net.config
    exclude = same_video_mask(videos)  # (B, B)
    if cfg.objective == "infonce":
        if cfg.mil:
            cosine = torch.einsum("jd,idthw->ijthw", a, locations).flatten(2).amax(2)  # (B picture, B sound)
        else:
            cosine = v @ a.T  # (B, B)
        extra = net.score(v, a_negative, locations) if a_negative is not None else None
        return infonce_loss(net.logit_from_cosine(cosine), extra, exclude)
    positive = net.score(v, a, locations)  # (B,)
    negatives = [net.score(v, a_negative, locations)] if a_negative is not None else []
    rows, cols = batch_negative_pairs(videos)
    if len(rows):
        negatives.append(net.score(v[rows], a[cols], locations[rows]))
    if not negatives:
        raise ValueError("a micro-batch of one clip without its own negative has nothing to contrast: use a larger "
                         "--micro-batch or --hard-negatives")
    return binary_loss(positive, negatives)


@dataclasses.dataclass
class CorrespondenceTask:
    """Two-tower correspondence training on a folder of videos or on shards (``train_index``),
    validated on held-out videos or shards (``val_index``)."""

    model_cfg: TwoTowerConfig
    train_index: VideoIndex | ShardSet
    val_index: VideoIndex | ShardSet
    hard_negatives: bool = False
    n_val: int = 64
    seed: int = 0
    name: str = "correspondence"

    def __post_init__(self):
        self._val_batches: list[dict] | None = None

    def sampling(self, augment: bool):
        # shards store segments of one video: their negatives are always from the same video
        hard = self.hard_negatives or isinstance(self.train_index, ShardSet)
        return correspondence_sampling(self.model_cfg, hard_negatives=hard, augment=augment)

    def build_model(self) -> TwoTowerNet:
        return TwoTowerNet(self.model_cfg)

    def training_data(self) -> dict:
        return index_training_data(self.train_index)

    def model_config(self) -> dict:
        return self.model_cfg.to_dict()

    def train_module(self, model: TwoTowerNet) -> nn.Module:
        return PairLoss(model)

    def train_dataset(self) -> Dataset:
        if isinstance(self.train_index, ShardSet):
            return ShardShiftExamples(self.train_index, self.sampling(augment=True), seed=self.seed)
        return CorrespondencePairs(self.train_index, self.sampling(augment=True), seed=self.seed)

    def loss(self, model: nn.Module, batch: dict, device: torch.device):
        """``model``: the :class:`PairLoss` of the network (wrapped or not)."""
        video = frames_to_video(batch["frames"].to(device, non_blocking=True))  # (B, 3, T, H, W)
        audio = batch["audio_aligned"].to(device, non_blocking=True)  # (B, C, N)
        negative = batch["audio_shifted"].to(device, non_blocking=True)
        if isinstance(self.train_index, ShardSet) and not self.hard_negatives:
            negative = None  # a shard example's own negative is from its video: the batch's alone serve
        videos = batch.get("video", torch.full((len(audio),), UNKNOWN_VIDEO)).to(device)
        loss, value, acc = model(video, audio, negative, videos)
        return loss, {"loss": value, "acc": acc}

    def val_batches(self, batch_size: int = 16) -> list[dict]:
        """The fixed held-out examples (centre crop, no flip), built once."""
        if self._val_batches is None:
            self._val_batches = held_out_batches(self.val_index, self.sampling(augment=False), CorrespondencePairs,
                                                 n=self.n_val, seed=self.seed + 7919, batch_size=batch_size)
        return self._val_batches

    @torch.no_grad()
    def validate(self, model: TwoTowerNet, device: torch.device) -> dict[str, float]:
        totals = {"loss": 0.0, "acc": 0.0}
        batches = self.val_batches()
        pair_loss = PairLoss(model)
        for batch in batches:
            _, metrics = self.loss(pair_loss, batch, device)
            for k in totals:
                totals[k] += metrics[k] / len(batches)
        return totals


def make_correspondence_task(data: str | Path, model_cfg: TwoTowerConfig, *, val_data: str | Path | None = None,
                             hard_negatives: bool = False, n_val: int = 64, seed: int = 0,
                             progress: bool = False) -> CorrespondenceTask:
    """Index the training (and validation) videos, or open the shards, and build the task;
    unusable files are skipped and reported on the task's ``train_index``. Without ``val_data``
    about 10 % of the videos (or shards) are held out."""
    probe_sampling = correspondence_sampling(model_cfg, hard_negatives=True, augment=False)
    _, train_index, val_index = load_train_val(data, val_data, probe_sampling, progress=progress)
    if isinstance(train_index, ShardSet) and len(train_index) == 0:
        raise ValueError(f"{data}: no training shards left after holding out validation ones; give --val-data")
    if isinstance(train_index, VideoIndex) and len(train_index) < 2:
        raise ValueError(f"{data}: correspondence needs at least 2 usable training videos (negatives come from "
                         f"other videos)\n{train_index.report()}")
    return CorrespondenceTask(model_cfg, train_index, val_index, hard_negatives=hard_negatives, n_val=n_val,
                              seed=seed)
