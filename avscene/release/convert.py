"""Turn one of the release's TensorFlow checkpoints into an avscene model, exactly.

The architecture comes from the kind of network (``shift``, ``cam``, ``sep``, ``unet-pit``: the
release's ``shift_v1``, ``cam_v1``, ``sep_params.full`` and ``sep_params.unet_pit``) and its
widths from the checkpoint's own shapes, so reduced-width test graphs convert as well as the real
ones. Every variable is either used (:mod:`avscene.release.variables`) or ignored for a stated
reason; an unknown, missing or mis-shaped one is a :class:`ReleaseImportError` naming it.

Imported shift nets compute the release's graph: TF ``SAME`` padding, the release's fixed test-time
fractional pooling, BN eps 1e-3 (1e-5 in the U-Net) and decay 0.9997, and the ``release``
preprocessing profile (:data:`avscene.constants.PROFILES`).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
import torch

from avscene.models.separation_net import SeparationNet, SeparationNetConfig
from avscene.models.shift_net import ShiftNet, ShiftNetConfig
from avscene.release.tf_checkpoint import TFCheckpoint
from avscene.release.variables import Entry, ignored_reason, shift_net_entries, unet_entries

#: The release's networks by kind: the avscene task they become and the clip they were trained on.
KINDS = {
    "shift": {"task": "shift", "n_frames": 125, "cam": False},
    "cam": {"task": "shift", "n_frames": 125, "cam": True},
    "sep": {"task": "separation", "n_frames": 63, "variant": "full"},
    "unet-pit": {"task": "separation", "n_frames": 63, "variant": "audio-only"},
}
#: The release's BN decay 0.9997, as a PyTorch momentum.
RELEASE_BN_MOMENTUM = 3e-4


class ReleaseImportError(ValueError):
    """A checkpoint that is not the release network it is imported as."""


@dataclasses.dataclass
class Conversion:
    """An imported network and the account of every variable of its checkpoint."""

    kind: str
    model: torch.nn.Module
    used: list[str]
    ignored: dict[str, str]
    steps: int | None

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def _out(shapes: Mapping[str, tuple[int, ...]], name: str) -> int:
    if name not in shapes:
        raise ReleaseImportError(f"no variable {name!r}: not a network of the release's shift-net family")
    return int(shapes[name][-1])


def shift_config(shapes: Mapping[str, tuple[int, ...]], *, n_frames: int, cam: bool) -> ShiftNetConfig:
    """The :class:`ShiftNetConfig` of the release's shift net whose variables have ``shapes``."""
    return ShiftNetConfig(
        n_frames=n_frames,
        audio_channels=int(shapes["sf/conv1_1/weights"][2]) if "sf/conv1_1/weights" in shapes else 2,
        stem_width=_out(shapes, "im/conv1/weights"),
        trunk_widths=tuple(_out(shapes, f"im/conv{s}_1_1/weights") for s in (3, 4, 5)),
        merge_width=_out(shapes, "im/merge1/weights"),
        audio_widths=tuple(_out(shapes, f"sf/conv{s}_1{'' if s == 1 else '_1'}/weights") for s in (1, 2, 3, 4)),
        audio_fused_width=_out(shapes, "sf/conv5_1/weights"),
        cam=cam,
        bn_momentum=RELEASE_BN_MOMENTUM,
        bn_eps=1e-3,
        bn_affine_scale="im/conv1/BatchNorm/gamma" in shapes,
        padding="tf-same",
        fractional_pool="tf-release",
        profile="release",
    )


def build_model(kind: str, shapes: Mapping[str, tuple[int, ...]]) -> tuple[torch.nn.Module, list[Entry]]:
    """The avscene model of ``kind`` sized by the checkpoint's ``shapes``, and its variable map."""
    spec = KINDS[kind]
    if spec["task"] == "shift":
        cfg = shift_config(shapes, n_frames=spec["n_frames"], cam=spec["cam"])
        return ShiftNet(cfg), shift_net_entries(scale=cfg.bn_affine_scale)
    if "gen/conv1/weights" not in shapes:
        raise ReleaseImportError("no variable 'gen/conv1/weights': not a separation network of the release")
    uses_video = spec["variant"] != "audio-only"
    shift = (shift_config(shapes, n_frames=spec["n_frames"], cam=False) if uses_video
             else dataclasses.replace(ShiftNetConfig(n_frames=spec["n_frames"]), bn_affine_scale=True, profile="release"))
    cfg = SeparationNetConfig(shift=shift, widths=tuple(_out(shapes, f"gen/conv{i}/weights") for i in range(1, 10)),
                              variant=spec["variant"], output="spectrogram", bn_momentum=RELEASE_BN_MOMENTUM, bn_eps=1e-5)
    entries = unet_entries()
    if uses_video:
        entries = shift_net_entries(scale=shift.bn_affine_scale, prefix="shift.") + entries
    return SeparationNet(cfg), entries


def _plural(items: list[str], what: str) -> str:
    head = ", ".join(items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")
    return f"{len(items)} {what}: {head}"


@dataclasses.dataclass
class VariablePlan:
    """How a checkpoint's variables become a model: the model, its map, what is ignored and why."""

    model: torch.nn.Module
    entries: list[Entry]
    ignored: dict[str, str]

    @property
    def used(self) -> list[str]:
        return sorted({src for e in self.entries for src in e.sources})


def plan_variables(kind: str, shapes: Mapping[str, tuple[int, ...]]) -> VariablePlan:
    """Check, from the variables' names and shapes alone, that they are the release's ``kind``
    network: every variable used or ignored for a reason, none missing, every converted shape that
    of its parameter. Raises :class:`ReleaseImportError` naming each offender."""
    if kind not in KINDS:
        raise ReleaseImportError(f"unknown release network kind {kind!r}; choose from {sorted(KINDS)}")
    model, entries = build_model(kind, shapes)
    wanted = {src for e in entries for src in e.sources}
    ignored = {name: reason for name in shapes if name not in wanted and (reason := ignored_reason(name))}
    problems = []
    unknown = sorted(set(shapes) - wanted - set(ignored))
    if unknown:
        problems.append(_plural(unknown, "unknown variables"))
    missing = sorted(wanted - set(shapes))
    if missing:
        problems.append(_plural(missing, "missing variables"))
    state = model.state_dict()
    misshaped = []
    for entry in entries:
        if all(src in shapes for src in entry.sources):
            # shapes only: convert zero-copy placeholders of the variables' shapes
            parts = [entry.convert(np.broadcast_to(np.float32(0), shapes[src])) for src in entry.sources]
            shape = parts[0].shape if len(parts) == 1 else np.concatenate(parts, axis=entry.concat_dim).shape
            if tuple(shape) != tuple(state[entry.key].shape):
                misshaped.append(f"{'+'.join(entry.sources)} {tuple(shapes[entry.sources[0]])} -> {tuple(shape)}, "
                                 f"expected {tuple(state[entry.key].shape)}")
    if misshaped:
        problems.append(_plural(misshaped, "mis-shaped variables"))
    if problems:
        raise ReleaseImportError(f"not the release's {kind!r} network: " + "; ".join(problems))
    unmapped = [k for k in state if k not in {e.key for e in entries} and not k.endswith("num_batches_tracked")]
    if unmapped:  # the map and the model disagree: a bug here, not a bad file
        raise RuntimeError(f"avscene parameters with no release variable: {unmapped[:5]}")
    return VariablePlan(model, entries, ignored)


def convert(checkpoint: TFCheckpoint, kind: str) -> Conversion:
    """Build the avscene network of ``kind`` from ``checkpoint``; raises
    :class:`ReleaseImportError` naming every unknown, missing or mis-shaped variable."""
    shapes = {name: info.shape for name, info in checkpoint.tensors().items()}
    try:
        plan = plan_variables(kind, shapes)
    except ReleaseImportError as err:
        raise ReleaseImportError(f"{checkpoint.prefix}: {err}") from None
    state = {}
    for entry in plan.entries:
        parts = [entry.convert(checkpoint.read(src)) for src in entry.sources]
        value = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=entry.concat_dim)
        state[entry.key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    plan.model.load_state_dict(state, strict=False)
    steps = int(checkpoint.read("global_step")) if "global_step" in shapes else None
    return Conversion(kind, plan.model.eval(), plan.used, plan.ignored, steps)
