"""Action recognition: fine-tuning (or linear probing) the shift network for :func:`avscene.train.loop.fit`.

As the paper's UCF-101 experiment and the release's ``videocls.py``: the shift network's trunk with a
global-pool + linear head, softmax cross-entropy, optionally vision-only (audio features zeroed)
or initialised from scratch; 2.56 s clips (76 frames at 29.97 fps), random crop, flip (with the
stereo channels swapped, which the release forgot) and a small audio jitter (+-3 frames).
Presets whose clip is shorter than 2.56 s keep their own clip length (``small``: 32 frames,
``tiny``: 8). Validation is top-1 (and top-5 with more than 5 classes) on single held-out clips;
the clip-averaged video accuracy of the paper is :func:`avscene.evaluate.action.evaluate`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import default_collate

from avscene.checkpoints import read_shift_checkpoint
from avscene.constants import seconds_to_frames
from avscene.data.action_clips import PAPER_ACTION_CLIP_S, ActionClips, ActionSampling
from avscene.data.labelled import LabelledIndex, index_labelled
from avscene.data.videos import training_data
from avscene.data.shift_pairs import frames_to_video
from avscene.data.splits import split_labelled
from avscene.models import ActionNet, ActionNetConfig, ShiftNetConfig
from avscene.models.action_net import check_compatible


def action_clip_frames(shift_cfg: ShiftNetConfig, clip_s: float | None = None) -> int:
    """Frames per action clip: ``clip_s`` at the model's rate; by default the paper's 2.56 s, or
    the model's own ``n_frames`` when that is shorter (the small presets)."""
    if clip_s is not None:
        frames = seconds_to_frames(clip_s, shift_cfg.fps)
        if frames < 1:
            raise ValueError(f"clip_s={clip_s} holds no frame at {float(shift_cfg.fps):.3f} fps")
        return frames
    return min(shift_cfg.n_frames, seconds_to_frames(PAPER_ACTION_CLIP_S, shift_cfg.fps))


def action_model_config(shift_cfg: ShiftNetConfig, class_names, *, use_sound: bool = True,
                        freeze_backbone: bool = False, clip_s: float | None = None, dropout: float = 0.0,
                        bn_scale: bool = True, backbone_init: str | None = None) -> ActionNetConfig:
    """The :class:`ActionNetConfig` of a shift architecture: action clip length, sound on/off,
    batch-norm scales (gamma, on in the release's UCF config; new ones start at 1)."""
    shift = dataclasses.replace(shift_cfg, n_frames=action_clip_frames(shift_cfg, clip_s), use_sound=use_sound,
                                bn_affine_scale=bn_scale or shift_cfg.bn_affine_scale)
    names = tuple(class_names)
    return ActionNetConfig(shift, len(names), dropout=dropout, freeze_backbone=freeze_backbone,
                           class_names=names, backbone_init=backbone_init)


def action_sampling(cfg: ActionNetConfig, *, augment: bool, audio_jitter_frames: int | None = None) -> ActionSampling:
    """How clips for the model ``cfg`` are cut: its clip length, rates and crop."""
    return ActionSampling.for_model(cfg.shift, augment=augment, audio_jitter_frames=audio_jitter_frames)


def load_shift_backbone(model: ActionNet, path: str | os.PathLike) -> ActionNet:
    """Initialise ``model``'s trunk from the shift checkpoint at ``path``; returns ``model``."""
    cfg, state = read_shift_checkpoint(path)
    model.load_shift_weights(state, cfg, source=str(path))
    return model


def action_loss(logits: torch.Tensor, labels: torch.Tensor, *, label_smoothing: float = 0.0
                ) -> tuple[torch.Tensor, dict[str, float]]:
    """Softmax cross-entropy (mean over the batch); top-1 accuracy, and top-5 with > 5 classes."""
    logits = logits.float()
    loss = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    metrics = {"loss": float(loss.detach()), "acc": float((logits.argmax(1) == labels).float().mean())}
    if logits.shape[1] > 5:
        top5 = logits.topk(5, dim=1).indices  # (B, 5)
        metrics["top5"] = float((top5 == labels[:, None]).any(1).float().mean())
    return loss, metrics


@dataclasses.dataclass
class ActionTask:
    """Action training on ``train_index``, validated on ``val_index`` (same classes as the model).

    ``init``: a shift checkpoint for the trunk (None: scratch). ``label_smoothing``: off, as the
    paper (the release has 0.05 implemented but unused).
    """

    model_cfg: ActionNetConfig
    train_index: LabelledIndex
    val_index: LabelledIndex
    init: str | None = None
    n_val: int = 64
    seed: int = 0
    audio_jitter_frames: int | None = None
    label_smoothing: float = 0.0
    name: str = "action"
    find_unused_parameters: bool = False

    def __post_init__(self):
        self._val_batches: list[dict] | None = None
        # vision-only: the audio branch takes no part in the loss
        self.find_unused_parameters = not self.model_cfg.use_sound and not self.model_cfg.freeze_backbone
        for which, index in (("training", self.train_index), ("validation", self.val_index)):
            if index.n_classes != self.model_cfg.n_classes:
                raise ValueError(f"{which} set has {index.n_classes} classes, the model {self.model_cfg.n_classes}")

    def sampling(self, augment: bool) -> ActionSampling:
        return action_sampling(self.model_cfg, augment=augment, audio_jitter_frames=self.audio_jitter_frames)

    def build_model(self) -> ActionNet:
        model = ActionNet.from_config(self.model_cfg)
        if self.init is not None:
            load_shift_backbone(model, self.init)
        return model

    def training_data(self) -> dict:
        """What this network learns from, for its model card: the labelled videos."""
        data = training_data([v.info for v in self.train_index.videos])
        classes = f"{len(self.train_index.classes)} classes"
        return {**data, "source": self.train_index.source or data["source"], "classes": list(self.train_index.classes),
                "text": data["text"].replace(" videos (", f" videos of {classes} (", 1)}

    def model_config(self) -> dict:
        return self.model_cfg.to_dict()

    def train_dataset(self) -> ActionClips:
        return ActionClips(self.train_index, self.sampling(augment=True), seed=self.seed)

    def loss(self, model: torch.nn.Module, batch: dict, device: torch.device):
        video = frames_to_video(batch["frames"].to(device, non_blocking=True))  # (B, 3, T, H, W)
        audio = batch["audio"].to(device, non_blocking=True)  # (B, C, N)
        labels = batch["label"].to(device, non_blocking=True)  # (B,)
        return action_loss(model(video, audio), labels, label_smoothing=self.label_smoothing)

    def val_batches(self, batch_size: int = 16) -> list[dict]:
        """The fixed held-out clips (centre crop, no flip, no jitter), built once."""
        if self._val_batches is None:
            clips = ActionClips(self.val_index, self.sampling(augment=False), seed=self.seed + 7919)
            examples = [clips[i] for i in range(self.n_val)]
            self._val_batches = [default_collate(examples[i : i + batch_size])
                                 for i in range(0, len(examples), batch_size)]
        return self._val_batches

    @torch.no_grad()
    def validate(self, model: ActionNet, device: torch.device) -> dict[str, float]:
        totals: dict[str, float] = {}
        batches = self.val_batches()
        n = sum(len(b["label"]) for b in batches)
        for batch in batches:
            logits = model(frames_to_video(batch["frames"].to(device)), batch["audio"].to(device))
            _, metrics = action_loss(logits, batch["label"].to(device))
            for k, v in metrics.items():  # weighted by batch size: the last batch may be short
                totals[k] = totals.get(k, 0.0) + v * len(batch["label"]) / n
        return totals


def make_action_task(data: str | Path, model_cfg: ShiftNetConfig | None = None, *,
                     init: str | Path | None = None, val_data: str | Path | None = None, layout: str = "auto",
                     split: int = 1, splits_dir: str | Path | None = None, use_sound: bool = True,
                     freeze_backbone: bool = False, clip_s: float | None = None, dropout: float = 0.0,
                     bn_scale: bool = True, n_val: int = 64, seed: int = 0,
                     audio_jitter_frames: int | None = None, label_smoothing: float = 0.0,
                     on_missing: str = "error", progress: bool = False) -> ActionTask:
    """Index the labelled training (and validation) videos and build the task.

    Args:
        data: a UCF-101 folder, class-per-folder folder, ``path,label`` CSV or synthetic action
            set (see :func:`avscene.data.labelled.index_labelled`).
        model_cfg: the trunk's architecture (a preset); default: the ``init`` checkpoint's.
        init: a shift checkpoint to start the trunk from (None: scratch).
        val_data: held-out videos; default: UCF-101's test list of ``split``, otherwise ~10% of
            each class of ``data`` (stable hash of the path).
        use_sound: False = the paper's vision-only model. freeze_backbone: linear probe.
        clip_s: clip length (s); default 2.56 s, or the preset's clip when shorter.
    Unusable videos are skipped and reported on ``task.train_index`` / ``task.val_index``.
    """
    ckpt_cfg = None
    if init is not None:
        ckpt_cfg, _ = read_shift_checkpoint(init)
        if model_cfg is None:
            model_cfg = ckpt_cfg
        else:
            check_compatible(model_cfg, ckpt_cfg, source=str(init))
        bn_scale = bn_scale or ckpt_cfg.bn_affine_scale
    if model_cfg is None:
        raise ValueError("give a model preset (model_cfg) or a shift checkpoint to initialise from (init)")
    min_s = float(2 / model_cfg.fps)
    common = dict(layout=layout, split=split, splits_dir=splits_dir, on_missing=on_missing, progress=progress,
                  min_duration_s=min_s)
    train_index = index_labelled(data, subset="train", **common)
    if len(train_index) == 0:
        raise ValueError(f"{data}: no usable training videos\n{train_index.report()}")
    if val_data is not None:
        val_index = index_labelled(val_data, subset="test", classes=train_index.classes, **common)
    elif train_index.layout == "ucf101":
        val_index = index_labelled(data, subset="test", **common)
    else:
        train_index, val_index = split_labelled(train_index)
    if len(val_index) == 0:
        raise ValueError(f"{val_data or data}: no usable validation videos\n{val_index.report()}")
    cfg = action_model_config(model_cfg, train_index.classes, use_sound=use_sound, freeze_backbone=freeze_backbone,
                              clip_s=clip_s, dropout=dropout, bn_scale=bn_scale,
                              backbone_init=None if init is None else str(init))
    return ActionTask(cfg, train_index, val_index, init=None if init is None else str(init), n_val=n_val,
                      seed=seed, audio_jitter_frames=audio_jitter_frames, label_smoothing=label_smoothing)
