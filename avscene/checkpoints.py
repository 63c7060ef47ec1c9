"""Self-describing checkpoints: the model's config, weights, optimizer, schedule, step, RNG
state and the training log, in one file written atomically (a kill mid-write leaves the
previous checkpoint intact). Loaded with ``weights_only=True``: no pickled code runs."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable

import torch

from avscene.cards import ModelCard, NetworkId, card_of, network_id
from avscene.files import atomic_path
from avscene.models import (ActionNet, ActionNetConfig, SeparationNet, SeparationNetConfig, ShiftNet,
                            ShiftNetConfig, TwoTowerConfig, TwoTowerNet)
from avscene.models.action_net import check_compatible

FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (tensors, numbers, strings, lists, dicts) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save({"format_version": FORMAT_VERSION, **payload}, tmp)
    return Path(path)


#: How each task's checkpoint becomes a model: its config class (``from_dict`` of the stored
#: ``model_config``) and the constructor that takes that config.
MODEL_BUILDERS: dict[str, tuple[type, Callable[[Any], torch.nn.Module]]] = {
    "shift": (ShiftNetConfig, ShiftNet),
    "action": (ActionNetConfig, ActionNet.from_config),
    "separation": (SeparationNetConfig, SeparationNet),
    "correspondence": (TwoTowerConfig, TwoTowerNet),
}


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the model stored in a checkpoint from the file alone, in eval mode on ``device``."""
    return _model_of(load_checkpoint(path, map_location="cpu"), path, device)


@dataclasses.dataclass(frozen=True)
class Network:
    """A loaded network with what every output says about it: which file, what it learnt from,
    and the sync scan's calibration (``{"temperature": ...}``) when it has one."""

    model: torch.nn.Module
    path: Path
    id: NetworkId
    calibration: dict | None

    @property
    def card(self) -> ModelCard:
        return self.id.card


def load_network(path: str | os.PathLike, device: str | torch.device = "cpu") -> Network:
    """:func:`load_model` with the checkpoint's card, short hash and calibration."""
    payload = load_checkpoint(path, map_location="cpu")
    model = _model_of(payload, path, device)
    return Network(model, Path(path), network_id(path, card_of(payload)), payload.get("calibration"))


def read_card(path: str | os.PathLike) -> ModelCard:
    """The card of the checkpoint at ``path``, read without loading its weights (memory-mapped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    return card_of(torch.load(path, map_location="cpu", weights_only=True, mmap=True))


def _model_of(payload: dict[str, Any], path: str | os.PathLike, device: str | torch.device) -> torch.nn.Module:
    task = payload.get("task")
    if task not in MODEL_BUILDERS:
        raise ValueError(f"{path}: checkpoint of task {task!r}, which cannot be loaded as a model here")
    config_class, build = MODEL_BUILDERS[task]
    model = build(config_class.from_dict(payload["model_config"]))
    model.load_state_dict(payload["model"])
    return model.to(device).eval()


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; a clear error if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise ValueError(f"{path}: not a readable avscene checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: not an avscene checkpoint of format {FORMAT_VERSION}")
    return payload


def read_shift_checkpoint(path: str | os.PathLike):
    """The config (:class:`~avscene.models.ShiftNetConfig`) and weights of a shift checkpoint
    (``avscene train shift``); a clear error for a checkpoint of another task."""
    payload = load_checkpoint(path, map_location="cpu")
    if payload.get("task") != "shift":
        raise ValueError(f"{path}: a checkpoint of task {payload.get('task')!r}; initialise from a shift checkpoint")
    return ShiftNetConfig.from_dict(payload["model_config"]), payload["model"]


def shift_weights_for(path: str | os.PathLike, config) -> dict[str, torch.Tensor]:
    """The weights of the shift checkpoint at ``path``, checked to fit a shift network of
    ``config`` (a :class:`~avscene.models.ShiftNetConfig`): the same widths and rates; its layout
    (``cam``, ``fine_cam``, clip length, crop) may differ. A clear error naming the file otherwise."""
    ckpt_cfg, state = read_shift_checkpoint(path)
    check_compatible(config, ckpt_cfg, source=str(path))
    if (ckpt_cfg.sample_rate, ckpt_cfg.fps) != (config.sample_rate, config.fps):
        raise ValueError(f"{path}: shift network trained at {ckpt_cfg.sample_rate} Hz / {float(ckpt_cfg.fps):.3f} fps, "
                         f"the new network runs at {config.sample_rate} Hz / {float(config.fps):.3f} fps")
    return state
