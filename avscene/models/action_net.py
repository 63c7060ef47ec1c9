"""Action recognition on the shift network's trunk (the paper's UCF-101 experiment, release ``videocls.py``).

::

    video (B, 3, T, H, W), audio (B, C, N)
      | ShiftNet trunk (stem, audio branch, early fusion, stages 3-5; its sync head dropped)
      | last conv map                       (B, w5, T', H', W')
      | dropout (off by default, as the release)
      | head: 1x1x1 conv w5 -> K with bias  (B, K, T', H', W')  = per-class activation maps
      | mean over (T', H', W')              (B, K)              = class logits

The head is "project, then pool", which equals global average pooling followed by a linear
layer (the release's ``lb/logits``) because both are linear; the unpooled maps localise classes.

* ``use_sound=False`` is the paper's vision-only model: the tiled audio features are zeros (the
  audio branch is skipped and gets no gradient; the architecture is unchanged).
* ``freeze_backbone=True`` is a linear probe: the trunk has no gradients and stays in eval mode
  (moving batch-norm statistics, deterministic pooling) even while the head trains.
* The trunk starts from scratch (He init) or from a shift network's weights
  (:meth:`load_shift_weights`; reading the checkpoint file is the caller's job).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avscene.models.shift_net import ShiftNet, ShiftNetConfig, _autocast_off

#: ShiftNetConfig fields that decide parameter shapes: they must match a checkpoint to load it.
_SHAPE_FIELDS = ("audio_channels", "stem_width", "trunk_widths", "merge_width", "audio_widths",
                 "audio_fused_width", "audio_input")


@dataclasses.dataclass(frozen=True)
class ActionNetConfig:
    """Everything needed to rebuild an :class:`ActionNet` (stored in checkpoints via ``to_dict``).

    ``shift.use_sound`` is the vision-only switch (mirrored by the ``use_sound`` property);
    ``class_names`` (index = label) travel with the model so predictions can be named.
    """

    shift: ShiftNetConfig
    n_classes: int
    dropout: float = 0.0
    freeze_backbone: bool = False
    class_names: tuple[str, ...] | None = None
    #: Where the trunk's first weights came from (a shift checkpoint's path), None = scratch.
    backbone_init: str | None = None

    def __post_init__(self):
        if self.n_classes < 2:
            raise ValueError(f"an action classifier needs at least 2 classes, got {self.n_classes}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
            if len(self.class_names) != self.n_classes:
                raise ValueError(f"{len(self.class_names)} class names for {self.n_classes} classes")

    @property
    def use_sound(self) -> bool:
        return self.shift.use_sound

    def names(self) -> tuple[str, ...]:
        """Class names, or ``"0"``, ``"1"``, ... when none were given."""
        return self.class_names or tuple(str(i) for i in range(self.n_classes))

    def to_dict(self) -> dict[str, Any]:
        return {"shift": self.shift.to_dict(), "n_classes": self.n_classes, "dropout": self.dropout,
                "freeze_backbone": self.freeze_backbone,
                "class_names": None if self.class_names is None else list(self.class_names),
                "backbone_init": self.backbone_init}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ActionNetConfig":
        d = dict(d)
        d["shift"] = ShiftNetConfig.from_dict(d["shift"])
        if d.get("class_names") is not None:
            d["class_names"] = tuple(d["class_names"])
        return cls(**d)


class ActionNet(nn.Module):
    """Shift-network trunk + per-class head: ``forward(video, audio) -> (B, n_classes)`` logits."""

    def __init__(self, shift_cfg: ShiftNetConfig, n_classes: int, use_sound: bool = True, *,
                 dropout: float = 0.0, freeze_backbone: bool = False,
                 class_names: tuple[str, ...] | None = None, backbone_init: str | None = None) -> None:
        super().__init__()
        if shift_cfg.use_sound != use_sound:
            shift_cfg = dataclasses.replace(shift_cfg, use_sound=use_sound)
        self.config = ActionNetConfig(shift_cfg, n_classes, dropout=dropout, freeze_backbone=freeze_backbone,
                                      class_names=class_names, backbone_init=backbone_init)
        self.backbone = ShiftNet(shift_cfg)
        del self.backbone.head  # the sync logit is not part of this model
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.head = nn.Conv3d(shift_cfg.trunk_widths[2], n_classes, 1, bias=True)
        nn.init.normal_(self.head.weight, std=0.01)  # small: first predictions near uniform
        nn.init.zeros_(self.head.bias)
        if freeze_backbone:
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    @classmethod
    def from_config(cls, config: ActionNetConfig) -> "ActionNet":
        return cls(config.shift, config.n_classes, config.use_sound, dropout=config.dropout,
                   freeze_backbone=config.freeze_backbone, class_names=config.class_names,
                   backbone_init=config.backbone_init)

    @property
    def frozen(self) -> bool:
        return self.config.freeze_backbone

    def train(self, mode: bool = True) -> "ActionNet":
        super().train(mode)
        if self.frozen:
            self.backbone.eval()  # a linear probe never updates the trunk's statistics
        return self

    def load_shift_weights(self, state: dict[str, Tensor], config: ShiftNetConfig | None = None,
                           *, source: str = "shift checkpoint") -> None:
        """Initialise the trunk from a shift network's ``state_dict`` (its sync head is dropped).

        Batch-norm scales (gamma) absent from the shift net (which has none) start at 1, as the
        release's UCF config did; any other missing or extra tensor is an error (a shift net with
        gammas needs ``bn_affine_scale=True`` here too).
        """
        if config is not None:
            check_compatible(self.config.shift, config, source=source)
        state = {k: v for k, v in state.items() if not k.startswith("head.")}
        result = self.backbone.load_state_dict(state, strict=False)
        norms = {n for n, m in self.backbone.named_modules() if hasattr(m, "running_mean")}
        missing = [k for k in result.missing_keys if not (k.endswith(".weight") and k[: -len(".weight")] in norms)]
        unexpected = list(result.unexpected_keys)
        if missing or unexpected:
            raise ValueError(f"{source}: weights do not fit the action trunk; missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")

    # -- forward -----------------------------------------------------------------------------

    def _trunk(self, video: Tensor, audio: Tensor) -> Tensor:
        if self.frozen:
            with torch.no_grad():
                return self.backbone.features(video, audio)["scale2"]  # (B, w5, T', H', W')
        return self.backbone.features(video, audio)["scale2"]  # (B, w5, T', H', W')

    def cam(self, video: Tensor, audio: Tensor) -> Tensor:
        """Per-class activation maps ``(B, K, T', H', W')`` (float32); their mean is the logits."""
        last_conv = self.dropout(self._trunk(video, audio))  # (B, w5, T', H', W')
        with _autocast_off(last_conv):  # the head in float32: tiny, and its logits feed a loss
            return self.head(last_conv.float())  # (B, K, T', H', W')

    def forward(self, video: Tensor, audio: Tensor) -> Tensor:
        """Class logits ``(B, K)`` for ``video`` (B, 3, T, H, W) in [-1, 1] and ``audio`` (B, C, N)
        in [-1, 1]; with ``use_sound=False`` the audio is ignored (pass zeros)."""
        return self.cam(video, audio).mean(dim=(2, 3, 4))  # (B, K)

    def predict_proba(self, video: Tensor, audio: Tensor) -> Tensor:
        """Softmax class probabilities ``(B, K)``."""
        return F.softmax(self.forward(video, audio), dim=1)


def check_compatible(action_shift: ShiftNetConfig, checkpoint_shift: ShiftNetConfig, *, source: str) -> None:
    """Raise a ValueError naming the fields if a shift checkpoint's weights cannot fit the trunk."""
    diff = [f"{f}: model {getattr(action_shift, f)!r} vs checkpoint {getattr(checkpoint_shift, f)!r}"
            for f in _SHAPE_FIELDS if getattr(action_shift, f) != getattr(checkpoint_shift, f)]
    if diff:
        raise ValueError(f"{source}: shift network of another architecture: " + "; ".join(diff))
