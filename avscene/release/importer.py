"""``avscene import-tf``: the release's networks into the model store.

The input is the release's ``multisensory-nets.zip``, its unpacked folder, or one checkpoint
prefix (``nets/shift/net.tf-650000``). Checkpoints are recognised by the folder they sit in
(:data:`RELEASE_NETWORKS`: ``shift``, ``cam``, ``sep/full``, ``sep/large``, ``sep/unet-pit``,
wherever that folder is inside the input); a folder holding several keeps the latest iteration.
A checkpoint elsewhere is imported only with an explicit ``kind``. Each becomes an ordinary avscene
checkpoint in the store, with its config, weights, the sha256 of the files it was read from, and a
model card that says what it was trained on. Nothing is written for a checkpoint that does not
convert, and a stored network is never overwritten.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Iterator

from avscene import __version__
from avscene.cards import ModelCard
from avscene.checkpoints import load_checkpoint, save_checkpoint
from avscene.release.convert import KINDS, ReleaseImportError, convert
from avscene.release.tf_checkpoint import TFCheckpoint
from avscene.store import store_path

PAPER = "Owens & Efros 2018 release (multisensory-nets.zip)"


@dataclasses.dataclass(frozen=True)
class ReleaseNetwork:
    """One network of the release: where it sits, what it is, what it was trained on."""

    name: str
    folder: str
    kind: str
    dataset: str
    held_out: dict


RELEASE_NETWORKS = (
    ReleaseNetwork("paper-shift", "shift", "shift", "AudioSet",
                   {"metric": "sync accuracy", "value": 0.599, "set": "AudioSet test clips (paper, section 4.1)"}),
    ReleaseNetwork("paper-cam", "cam", "cam", "AudioSet",
                   {"metric": "sync accuracy", "value": None, "set": "not reported (the CAM variant of paper-shift)"}),
    ReleaseNetwork("paper-sep", "sep/full", "sep", "VoxCeleb (shift net pretrained on AudioSet)",
                   {"metric": "SDR (dB)", "value": 7.0, "set": "VoxCeleb test mixtures (paper, Table 2, full on/off)"}),
    ReleaseNetwork("paper-sep-large", "sep/large", "sep", "VoxCeleb (shift net pretrained on AudioSet)",
                   {"metric": "SDR (dB)", "value": None, "set": "not reported (paper-sep trained longer)"}),
    ReleaseNetwork("paper-unet-pit", "sep/unet-pit", "unet-pit", "VoxCeleb",
                   {"metric": "SDR (dB)", "value": 7.3, "set": "VoxCeleb test mixtures (paper, Table 2, u-net PIT)"}),
)
#: The store name a checkpoint of each kind gets when its folder does not say which network it is.
DEFAULT_NAMES = {"shift": "paper-shift", "cam": "paper-cam", "sep": "paper-sep", "unet-pit": "paper-unet-pit"}


@dataclasses.dataclass(frozen=True)
class Found:
    """A checkpoint inside the input: its prefix relative to the input (POSIX), and its network."""

    prefix: str
    network: ReleaseNetwork | None

    @property
    def step(self) -> int:
        match = re.search(r"-(\d+)$", self.prefix)
        return int(match.group(1)) if match else -1


@dataclasses.dataclass(frozen=True)
class Imported:
    name: str
    path: Path | None
    kind: str
    source: str
    n_parameters: int
    used: int
    ignored: int
    note: str = ""


def _network_of(prefix: str) -> ReleaseNetwork | None:
    folder = PurePosixPath(prefix).parent.as_posix()
    for net in sorted(RELEASE_NETWORKS, key=lambda n: -len(n.folder)):
        if folder == net.folder or folder.endswith("/" + net.folder):
            return net
    return None


def find_release_checkpoints(names: list[str]) -> tuple[list[Found], list[str]]:
    """The checkpoints among file ``names`` (POSIX, relative): one per known network (its latest
    iteration), and notes on what was passed over."""
    prefixes = sorted(n[: -len(".index")] for n in names if n.endswith(".index"))
    by_network: dict[str, list[Found]] = {}
    notes = []
    for prefix in prefixes:
        net = _network_of(prefix)
        if net is None:
            notes.append(f"{prefix}: not in a folder of a released network "
                         f"({', '.join(n.folder for n in RELEASE_NETWORKS)}); import it alone with --kind")
            continue
        by_network.setdefault(net.name, []).append(Found(prefix, net))
    found = []
    for group in by_network.values():
        group.sort(key=lambda f: f.step)
        found.append(group[-1])
        notes += [f"{f.prefix}: an earlier iteration of {f.network.name}; kept {group[-1].prefix}" for f in group[:-1]]
    return sorted(found, key=lambda f: f.prefix), notes


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _opened(source: Path, found: Found) -> Iterator[TFCheckpoint]:
    """The checkpoint ``found`` of ``source`` (a zip: its files extracted to a temporary folder)."""
    if not zipfile.is_zipfile(source):
        yield TFCheckpoint(source / found.prefix if source.is_dir() else source)
        return
    with zipfile.ZipFile(source) as archive, tempfile.TemporaryDirectory(prefix="avscene-import-") as tmp:
        members = [m for m in archive.namelist() if m.startswith(found.prefix + ".")]
        for member in members:
            archive.extract(member, tmp)
        yield TFCheckpoint(Path(tmp) / found.prefix)


def _payload(conversion, network: ReleaseNetwork | None, kind: str, checkpoint: TFCheckpoint, source: Path,
             label: str, name: str) -> dict:
    files = sorted(p for p in checkpoint.prefix.parent.iterdir() if p.name.startswith(checkpoint.prefix.name + "."))
    steps = conversion.steps
    dataset = network.dataset if network else "unknown (a checkpoint outside the release's folders)"
    iterations = f", {steps // 1000}K iterations" if steps else ""
    card = ModelCard(task=KINDS[kind]["task"], preset=f"release:{kind}", trained_on=f"{dataset}, {PAPER}{iterations}",
                     training_data={"kind": "release", "dataset": dataset, "network": name}, synthetic_only=False,
                     steps=steps, held_out=network.held_out if network else None, source=label)
    return {
        "task": KINDS[kind]["task"],
        "model_config": conversion.model.config.to_dict(),
        "model": conversion.model.state_dict(),
        "model_card": card.to_dict(),
        "source": {
            "input": str(source),
            "input_sha256": _sha256(source) if source.is_file() else None,
            "checkpoint": label,
            "files_sha256": {p.name: _sha256(p) for p in files},
            "variables_used": len(conversion.used),
            "variables_ignored": conversion.ignored,
            "converted_by": f"avscene {__version__} import-tf",
        },
    }


def _already_stored(dest: Path, label_hashes: dict[str, str]) -> bool:
    """True when ``dest`` holds a network converted from exactly these files."""
    try:
        stored = load_checkpoint(dest).get("source", {}).get("files_sha256")
    except (ValueError, FileNotFoundError):
        return False
    return stored == label_hashes


def import_one(source: Path, found: Found, *, name: str, kind: str) -> Imported:
    """Convert one checkpoint of ``source`` into the store as ``name``."""
    dest = store_path(name)
    with _opened(source, found) as checkpoint:
        label = f"{source.name}:{found.prefix}" if source.is_dir() or zipfile.is_zipfile(source) else str(source)
        if dest.exists():
            files = sorted(p for p in checkpoint.prefix.parent.iterdir()
                           if p.name.startswith(checkpoint.prefix.name + "."))
            if _already_stored(dest, {p.name: _sha256(p) for p in files}):
                return Imported(name, dest, kind, label, 0, 0, 0, note="already in the store, unchanged")
            raise FileExistsError(f"{dest} exists and was not converted from {label}: remove it or pass --name")
        conversion = convert(checkpoint, kind)
        save_checkpoint(dest, _payload(conversion, found.network, kind, checkpoint, source, label, name))
    return Imported(name, dest, kind, label, conversion.n_parameters, len(conversion.used), len(conversion.ignored))


def plan_import(path: str | os.PathLike, *, name: str | None = None, kind: str | None = None
                ) -> tuple[Path, list[tuple[Found, str, str]], list[str]]:
    """What :func:`import_release` would convert: ``(source, [(checkpoint, name, kind)], notes)``."""
    source = Path(path)
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose from {sorted(KINDS)}")
    if source.is_dir() or zipfile.is_zipfile(source):
        if source.is_dir():
            names = [p.relative_to(source).as_posix() for p in source.rglob("*.index")]
        else:
            with zipfile.ZipFile(source) as archive:
                names = archive.namelist()
        found, notes = find_release_checkpoints(names)
        if not found:
            raise ReleaseImportError(f"{source}: holds no checkpoint of the release's networks"
                                     + (f" ({'; '.join(notes)})" if notes else ""))
        if name or kind:
            if len(found) != 1:
                raise ValueError(f"{source} holds {len(found)} networks: --name and --kind apply to one checkpoint; "
                                 "pass its prefix instead")
        plan = [(f, name or f.network.name, kind or f.network.kind) for f in found]
        return source, plan, notes
    prefix = source.with_suffix("") if source.suffix == ".index" else source
    if not Path(str(prefix) + ".index").is_file():
        raise FileNotFoundError(f"{path}: not a zip, a folder, or a checkpoint prefix with a .index file beside it")
    found = Found(prefix.name, _network_of(prefix.as_posix()))
    kind = kind or (found.network.kind if found.network else None)
    if kind is None:
        raise ValueError(f"{path}: its folder does not say which network it is; pass --kind "
                         f"({', '.join(sorted(KINDS))})")
    default = found.network.name if found.network and found.network.kind == kind else DEFAULT_NAMES[kind]
    return prefix, [(found, name or default, kind)], []


def import_release(path: str | os.PathLike, *, name: str | None = None, kind: str | None = None,
                   progress: bool = True) -> tuple[list[Imported], list[str]]:
    """Convert the release networks found at ``path`` into the store. Returns what was imported
    and notes on what was passed over."""
    from tqdm import tqdm

    source, plan, notes = plan_import(path, name=name, kind=kind)
    done = []
    for found, net_name, net_kind in tqdm(plan, desc="import-tf", unit="net", disable=not progress):
        done.append(import_one(source, found, name=net_name, kind=net_kind))
    return done, notes
