"""Model cards: what made a network, so that every output can say what it knows.

Every checkpoint that training or ``avscene import-tf`` writes carries a card (``payload
["model_card"]``): the task and preset, what it was trained on (a synthetic world, a folder of
videos with their count and hours, shards, or the authors' release), the steps, and its held-out
figure with the set it was measured on. ``synthetic_only`` is True when everything the network
ever learnt from (its own data and the network it was fine-tuned from) came from avscene's
synthetic world: its outputs on real video mean nothing, and the commands say so.

Checkpoints written before cards existed still load; their card says "training data unknown".
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

UNKNOWN = "training data unknown"

#: What the commands say, once per run, when a network of the synthetic world meets a real video.
SYNTHETIC_ONLY_WARNING = (
    "this network was trained only on avscene's synthetic world (flashes and beeps): its results on "
    "real video are not meaningful. Get networks trained on real video with `avscene import-tf "
    "multisensory-nets.zip` (the paper's), or train one with `avscene train ... --data YOUR_VIDEOS`")


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """What a network is and what it learnt from."""

    task: str | None = None
    preset: str | None = None
    trained_on: str = UNKNOWN
    training_data: dict | None = None
    synthetic_only: bool | None = None  # None: unknown
    steps: int | None = None
    held_out: dict | None = None
    init: dict | None = None  # the card of the network it was fine-tuned from
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "ModelCard":
        if not d:
            return cls()
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in fields})

    def describe(self) -> str:
        """One line: what it was trained on, and how far."""
        steps = f", {self.steps} steps" if self.steps and "iterations" not in self.trained_on else ""
        return f"{self.task or 'network'} trained on {self.trained_on}{steps}"


def videos_data(source: str, durations_s: list[float], synthetic: list[bool]) -> dict:
    """``training_data`` of a set of videos: how many, how long, how many from the synthetic world."""
    n, n_synthetic = len(durations_s), sum(bool(x) for x in synthetic)
    hours = sum(durations_s) / 3600
    text = f"{n} videos ({hours:.2f} h) in {source}"
    if n and n_synthetic == n:
        text += ", all from avscene's synthetic world"
    elif n_synthetic:
        text += f", {n_synthetic} of them from avscene's synthetic world"
    return {"kind": "videos", "source": source, "n_videos": n, "hours": round(hours, 4),
            "synthetic_videos": n_synthetic, "synthetic_only": bool(n) and n_synthetic == n, "text": text}


def shards_data(source: str, n_shards: int) -> dict:
    """``training_data`` of WebDataset shards (what they were cut from is not recorded in them)."""
    return {"kind": "shards", "source": source, "n_shards": n_shards, "synthetic_only": None,
            "text": f"{n_shards} shards in {source}"}


def combine_synthetic(data_synthetic: bool | None, init: "ModelCard | None") -> bool | None:
    """A network is synthetic-only when its data is, and so is the network it started from."""
    if init is None:
        return data_synthetic
    if data_synthetic is False or init.synthetic_only is False:
        return False
    if data_synthetic is None or init.synthetic_only is None:
        return None
    return True


def card_of(payload: dict) -> ModelCard:
    """The card of a checkpoint ``payload`` (an unknown one for checkpoints without)."""
    card = ModelCard.from_dict(payload.get("model_card"))
    return card if card.task else dataclasses.replace(card, task=payload.get("task"))


def input_caveat(card: ModelCard, input_is_synthetic: bool) -> str | None:
    """:data:`SYNTHETIC_ONLY_WARNING` when a network that knows only the synthetic world meets an
    input that the synthetic world did not make; None otherwise."""
    return SYNTHETIC_ONLY_WARNING if card.synthetic_only and not input_is_synthetic else None


def file_digest(path: str | os.PathLike, length: int = 12) -> str:
    """The first ``length`` hex digits of the file's sha256: a short, exact name for a checkpoint."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


@dataclasses.dataclass(frozen=True)
class NetworkId:
    """Which network made an output: its store name or path, a short hash, and its card."""

    name: str
    sha256: str
    card: ModelCard

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "trained_on": self.card.trained_on,
                "synthetic_only": self.card.synthetic_only, "steps": self.card.steps, "card": self.card.to_dict()}

    def describe(self) -> str:
        return f"{self.name} [{self.sha256}]: {self.card.describe()}"


def network_id(path: str | os.PathLike, card: ModelCard) -> NetworkId:
    """The id of the checkpoint at ``path``: its store name when it lives in the model store."""
    from avscene.store import models_dir

    path = Path(path)
    in_store = path.parent.resolve() == models_dir().resolve() and path.suffix == ".pt"
    return NetworkId(path.stem if in_store else str(path), file_digest(path), card)
