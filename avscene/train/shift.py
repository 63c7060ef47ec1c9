"""Self-supervised sync pretraining: the shift task for :func:`avscene.train.loop.fit`.

Each clip contributes one positive (aligned audio) and one negative (shifted audio). As in the
release, a random label per clip decides which of the two goes through the first pass; the
visual stem runs once, the fused trunk twice, batch-norm statistics are per pass, and the loss
is the sigmoid cross-entropy over all 2B logits (label 1 = aligned).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import default_collate

from avscene.data.shift_pairs import ShiftPairs, ShiftSampling, frames_to_video
from avscene.data.videos import VideoIndex, index_videos
from avscene.models import ShiftNet, ShiftNetConfig
from avscene.synth import SceneConfig, write_dataset

#: Synthetic worlds for sync pretraining (``avscene train shift --data synthetic``).
#: ``pulses`` is the CPU-scale default: objects that grow and brighten with each tone or hiss
#: burst, made salient (``SceneConfig.salience``), 1-2 objects with silent ones among them,
#: off-screen sources, background clutter. Measured on this project's 2-core CPU, the ``small``
#: preset learns it in a few hundred steps, while on the ``full`` world (five motion kinds at
#: default salience) it stayed at chance for 600 steps: its cues (a bounce's contact, a
#: mouth's opening, a roll's push) take a few pixels at 64 x 64 and need far more training.
SYNTHETIC_SYNC_WORLDS = {
    "pulses": dict(motions=("pulse",), salience=1.0, n_objects=(1, 2)),
    "full": {},
}


def write_synthetic_sync_data(root: str | Path, n: int, seed: int, model_cfg: ShiftNetConfig, *,
                              world: str = "pulses", progress: bool = True) -> tuple[Path, Path]:
    """Generate (once; finished sets are reused) ``n`` training scenes of a synthetic sync world
    under ``root/train`` and ``max(8, n // 8)`` held-out ones (other seeds) under ``root/val``."""
    if world not in SYNTHETIC_SYNC_WORLDS:
        raise ValueError(f"unknown synthetic world {world!r}; choose from {sorted(SYNTHETIC_SYNC_WORLDS)}")
    root = Path(root)
    config = SceneConfig(task="sync", fps=model_cfg.fps, sample_rate=model_cfg.sample_rate,
                         **SYNTHETIC_SYNC_WORLDS[world])
    sets = {"train": (n, seed), "val": (max(8, n // 8), seed + 10_000)}
    for name, (count, set_seed) in sets.items():
        if not (root / name / "manifest.json").exists():
            write_dataset(root / name, count, set_seed, task="sync", config=config, progress=progress)
    return root / "train", root / "val"


def split_index(index: VideoIndex, val_fraction: float = 0.1) -> tuple[VideoIndex, VideoIndex]:
    """Hold out ~``val_fraction`` of the videos, chosen by a stable hash of the file name (so the
    split does not change when files are added). With fewer than 2 videos both sides share them."""
    if len(index) < 2:
        return index, index
    def held_out(info) -> bool:
        digest = hashlib.sha1(Path(info.path).name.encode()).digest()
        return int.from_bytes(digest[:4], "big") / 2**32 < val_fraction
    val = tuple(v for v in index.videos if held_out(v)) or index.videos[-1:]
    train = tuple(v for v in index.videos if v not in val)
    return VideoIndex(train, index.skipped), VideoIndex(val, ())


def shift_sampling(model_cfg: ShiftNetConfig, *, negatives: str, shift_range_s, augment: bool) -> ShiftSampling:
    """How examples for ``model_cfg`` are cut: its clip length, rates and crop."""
    return ShiftSampling(**ShiftSampling.fields_for(model_cfg), shift_range_s=shift_range_s, negatives=negatives,
                         augment=augment)


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
    """Shift pretraining on a folder of videos (``train_index``), validated on ``val_index``."""

    model_cfg: ShiftNetConfig
    train_index: VideoIndex
    val_index: VideoIndex
    negatives: str = "shift"
    shift_range_s: tuple[float, float] | None = None
    n_val: int = 64
    seed: int = 0
    name: str = "shift"
    find_unused_parameters: bool = False

    def __post_init__(self):
        self._val_batches: list[dict] | None = None
        self.find_unused_parameters = not self.model_cfg.use_sound

    def sampling(self, augment: bool) -> ShiftSampling:
        return shift_sampling(self.model_cfg, negatives=self.negatives, shift_range_s=self.shift_range_s,
                              augment=augment)

    def build_model(self) -> ShiftNet:
        return ShiftNet(self.model_cfg)

    def model_config(self) -> dict:
        return self.model_cfg.to_dict()

    def train_module(self, model: ShiftNet) -> nn.Module:
        return PairForward(model)

    def train_dataset(self) -> ShiftPairs:
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
            pairs = ShiftPairs(self.val_index, self.sampling(augment=False), seed=self.seed + 7919)
            examples = [pairs[i] for i in range(self.n_val)]
            self._val_batches = [default_collate(examples[i : i + batch_size])
                                 for i in range(0, len(examples), batch_size)]
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
                    progress: bool = False) -> ShiftTask:
    """Index the training (and validation) videos and build the task; unusable files are skipped
    and reported on the task's ``train_index``."""
    probe_sampling = shift_sampling(model_cfg, negatives=negatives, shift_range_s=shift_range_s, augment=False)
    index = index_videos(data, min_duration_s=probe_sampling.min_video_s, progress=progress)
    if val_data is not None:
        train_index = index
        val_index = index_videos(val_data, min_duration_s=probe_sampling.min_video_s, progress=progress)
    else:
        train_index, val_index = split_index(index)
    if len(train_index) == 0:
        raise ValueError(f"{data}: no usable training videos\n{index.report()}")
    return ShiftTask(model_cfg, train_index, val_index, negatives=negatives, shift_range_s=shift_range_s,
                     n_val=n_val, seed=seed)
