"""The local model store: networks by name, so ``--model paper-shift`` works like a path.

The store is the folder ``$AVSCENE_HOME/models`` (default ``~/.cache/avscene/models``); a network
named ``NAME`` is the ordinary avscene checkpoint ``NAME.pt`` there, with its model card.
``avscene import-tf`` fills it with the release's networks; ``avscene models`` lists it.

When the store holds the paper's networks, the inference commands use them by default
(:func:`default_model`); otherwise they fall back to the network ``make demo`` trains.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

#: A name in the store: letters, digits, '.', '_' and '-', starting with a letter or digit.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

#: Store networks each command prefers, best first (the release has no action network).
PAPER_DEFAULTS = {
    "sync": ("paper-shift",),
    "localize": ("paper-cam", "paper-shift"),
    "separate": ("paper-sep", "paper-sep-large"),
    "classify": (),
}


#: Where ``make demo`` (``avscene demo``) writes its run by default.
DEMO_OUT = Path("runs/demo")


def demo_checkpoint(task: str, out: Path = DEMO_OUT) -> Path:
    """Where the demo run in ``out`` leaves its network of ``task`` (shift, separation, action):
    the commands' fallback when the store has no network of the paper for them."""
    return out / {"shift": "shift", "separation": "separation/run", "action": "action/run"}[task] / "checkpoint.pt"


def models_dir() -> Path:
    """``$AVSCENE_HOME/models``, default ``~/.cache/avscene/models``."""
    home = os.environ.get("AVSCENE_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".cache" / "avscene") / "models"


def store_path(name: str) -> Path:
    """Where the network ``name`` lives in the store (whether or not it is there)."""
    if not NAME_PATTERN.match(name):
        raise ValueError(f"{name!r} is not a model name: use letters, digits, '.', '_' and '-'")
    return models_dir() / f"{name}.pt"


def stored_names() -> list[str]:
    folder = models_dir()
    return sorted(p.stem for p in folder.glob("*.pt")) if folder.is_dir() else []


def resolve_model(spec: str | os.PathLike) -> Path:
    """A checkpoint path for ``spec``: an existing file, else the store's network of that name."""
    path = Path(spec)
    if path.is_file():
        return path
    if NAME_PATTERN.match(str(spec)) and store_path(str(spec)).is_file():
        return store_path(str(spec))
    names = stored_names()
    known = f"the store ({models_dir()}) holds {', '.join(names)}" if names else f"the store ({models_dir()}) is empty"
    raise FileNotFoundError(f"{spec}: no such checkpoint file nor stored model; {known}")


@dataclasses.dataclass(frozen=True)
class DefaultModel:
    """The network a command uses when ``--model`` is not given, and why."""

    path: Path
    note: str


def default_model(command: str, fallback: Path) -> DefaultModel:
    """The first of the paper's networks for ``command`` in the store, else ``fallback`` (the one
    ``make demo`` trains), with a line that says which it is."""
    for name in PAPER_DEFAULTS[command]:
        if store_path(name).is_file():
            return DefaultModel(store_path(name), f"using the paper's network {name!r} from the model store")
    wanted = " or ".join(repr(n) for n in PAPER_DEFAULTS[command])
    why = (f"the model store ({models_dir()}) has no {wanted}" if wanted
           else "the release has no network for this command")
    return DefaultModel(fallback, f"{why}; falling back to {fallback}")


@dataclasses.dataclass(frozen=True)
class StoredModel:
    name: str
    task: str
    n_parameters: int
    trained_on: str
    source: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def describe_stored(name: str) -> StoredModel:
    """One store entry's task, size and card, read without loading its weights (memory-mapped)."""
    import torch

    path = store_path(name)
    payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    card = payload.get("model_card") or {}
    n_params = sum(v.numel() for k, v in payload.get("model", {}).items()
                   if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    return StoredModel(name, str(payload.get("task")), n_params, card.get("trained_on", "training data unknown"),
                       card.get("source", str(path)))


def list_models() -> list[StoredModel]:
    return [describe_stored(name) for name in stored_names()]
