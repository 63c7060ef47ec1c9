"""Labelled video datasets on disk: which videos, which class each, and what was skipped.

Four layouts, detected by :func:`index_labelled` (or named with ``layout=``):

``ucf101``
    The UCF-101 release: videos under ``<root>/<Class>/v_*.avi`` (or ``<root>/UCF-101/...``)
    and the official split files ``classInd.txt`` (``"1 ApplyEyeMakeup"``), ``trainlist0N.txt``
    (``"ApplyEyeMakeup/v_x.avi 1"``) and ``testlist0N.txt`` (``"ApplyEyeMakeup/v_x.avi"``; the
    label is the folder's class), found in ``<root>``, ``<root>/ucfTrainTestlist`` or beside
    ``<root>`` (or given with ``splits_dir=``).
``folders``
    One folder per class: ``<root>/<class>/**/*.mp4``; classes are the sorted folder names.
``csv``
    A CSV file of ``path,label`` rows (an optional ``path,label`` header); paths relative to the
    CSV's folder; a label is a class name, or an integer class id when every label is one.
``synth``
    A synthetic action set written by ``avscene.synth.write_dataset(..., task="action")``:
    its ``manifest.json`` gives the classes and every scene's label.

Entries listed explicitly (split files, CSV rows) must exist: a missing video is a
:class:`MissingVideosError` naming them (a wrong root is the usual cause), a malformed line a
:class:`SplitFileError` naming the file and line. A video that exists but cannot be used (corrupt,
no video stream, too short) is skipped and counted in :meth:`LabelledIndex.report`, never fatal.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from tqdm import tqdm

from avscene.data.videos import VIDEO_SUFFIXES, find_videos, screen_video
from avscene.media import MediaInfo

LAYOUTS = ("auto", "ucf101", "folders", "csv", "synth")
SUBSETS = ("train", "test")
#: Missing videos named in an error message at most.
_MAX_LISTED = 10


class SplitFileError(ValueError):
    """A line of a split, class-index or CSV file cannot be parsed: ``"<file>:<line>: <why>"``."""

    def __init__(self, path: str | os.PathLike, line_no: int, reason: str, line: str | None = None):
        self.path, self.line_no, self.reason = os.fspath(path), line_no, reason
        shown = f" (line: {line.strip()!r})" if line is not None else ""
        where = f"{self.path}:{line_no}" if line_no else self.path  # 0: the file as a whole
        super().__init__(f"{where}: {reason}{shown}")


class MissingVideosError(ValueError):
    """A split file or CSV names videos that are not on disk; ``missing`` lists them all."""

    def __init__(self, listing: str | os.PathLike, root: str | os.PathLike, missing: Sequence[str]):
        self.listing, self.root, self.missing = os.fspath(listing), os.fspath(root), list(missing)
        shown = "\n  ".join(self.missing[:_MAX_LISTED])
        more = f"\n  ... and {len(self.missing) - _MAX_LISTED} more" if len(self.missing) > _MAX_LISTED else ""
        super().__init__(f"{self.listing}: {len(self.missing)} listed video(s) not found under {self.root} "
                         f"(wrong root or an incomplete download?):\n  {shown}{more}")


@dataclasses.dataclass(frozen=True)
class LabelledVideo:
    """One usable video and its class id (``0 <= label < len(classes)``)."""

    info: MediaInfo
    label: int

    @property
    def path(self) -> str:
        return self.info.path


@dataclasses.dataclass(frozen=True)
class LabelledIndex:
    """Usable labelled videos, the class names (index = label) and the entries skipped and why."""

    classes: tuple[str, ...]
    videos: tuple[LabelledVideo, ...]
    skipped: tuple[tuple[str, str], ...]  # (path, reason)
    layout: str = "folders"
    source: str = ""

    def __len__(self) -> int:
        return len(self.videos)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def labels(self) -> tuple[int, ...]:
        return tuple(v.label for v in self.videos)

    def class_counts(self) -> dict[str, int]:
        counts = Counter(self.labels)
        return {name: counts.get(i, 0) for i, name in enumerate(self.classes)}

    def report(self) -> str:
        """A short human summary: usable and skipped counts by reason, classes, silent videos."""
        lines = [f"{len(self.videos)} usable videos in {self.n_classes} classes ({self.layout}: {self.source}), "
                 f"{len(self.skipped)} skipped"]
        for reason, n in Counter(r.split(" (")[0] for _, r in self.skipped).most_common():
            lines.append(f"  {n:5d} x {reason}")
        empty = [name for name, n in self.class_counts().items() if n == 0]
        if empty:
            lines.append(f"  classes without usable videos: {', '.join(empty[:_MAX_LISTED])}"
                         + (" ..." if len(empty) > _MAX_LISTED else ""))
        silent = sum(not v.info.has_audio for v in self.videos)
        if silent:
            lines.append(f"  {silent} usable videos have no audio stream (they are heard as silence)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"layout": self.layout, "source": self.source, "classes": list(self.classes),
                "usable": [{"path": v.path, "label": v.label} for v in self.videos],
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped]}


# -- parsing the listings (no media access) ------------------------------------------------------

def _lines(path: Path) -> Iterable[tuple[int, str]]:
    """(1-based line number, stripped line) of the non-blank lines (UCF's files have CRLF ends)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield i, line.strip()


def read_class_index(path: str | os.PathLike) -> tuple[str, ...]:
    """Class names from a UCF-101 ``classInd.txt`` (``"<id> <name>"``, ids 1..K): index = id - 1."""
    path = Path(path)
    by_id: dict[int, str] = {}
    for no, line in _lines(path):
        fields = line.split()
        if len(fields) != 2:
            raise SplitFileError(path, no, "expected '<class id> <class name>'", line)
        try:
            cid = int(fields[0])
        except ValueError:
            raise SplitFileError(path, no, f"class id {fields[0]!r} is not an integer", line) from None
        if cid in by_id:
            raise SplitFileError(path, no, f"class id {cid} appears twice", line)
        if fields[1] in by_id.values():
            raise SplitFileError(path, no, f"class {fields[1]!r} appears twice", line)
        by_id[cid] = fields[1]
    if not by_id:
        raise SplitFileError(path, 0, "no classes in the file")
    if sorted(by_id) != list(range(1, len(by_id) + 1)):
        raise SplitFileError(path, 0, f"class ids must be 1..{len(by_id)} without gaps, got {sorted(by_id)[:5]}...")
    return tuple(by_id[i] for i in range(1, len(by_id) + 1))


def read_split_file(path: str | os.PathLike, classes: Sequence[str]) -> list[tuple[str, int]]:
    """``(relative video path, label)`` per line of a UCF-101 ``trainlist``/``testlist`` file.

    A line is ``"<Class>/<file>"`` or ``"<Class>/<file> <class id>"`` (ids 1-based as in
    ``classInd.txt``); the label is the folder's class, and a given id must agree with it.
    """
    path = Path(path)
    lookup = {name.lower(): i for i, name in enumerate(classes)}  # UCF mixes HandStand/Handstand
    entries = []
    for no, line in _lines(path):
        fields = line.split()
        if len(fields) not in (1, 2):
            raise SplitFileError(path, no, "expected '<Class>/<video>' or '<Class>/<video> <class id>'", line)
        rel = fields[0].replace("\\", "/")
        parts = rel.split("/")
        if len(parts) < 2 or not parts[-1]:
            raise SplitFileError(path, no, "the video path must be '<Class>/<video>'", line)
        folder_label = lookup.get(parts[0].lower())
        given = None
        if len(fields) == 2:
            try:
                given = int(fields[1]) - 1
            except ValueError:
                raise SplitFileError(path, no, f"class id {fields[1]!r} is not an integer", line) from None
            if not 0 <= given < len(classes):
                raise SplitFileError(path, no, f"class id {fields[1]} is not in 1..{len(classes)}", line)
        if folder_label is None and given is None:
            raise SplitFileError(path, no, f"folder {parts[0]!r} is not a class of the class index", line)
        if folder_label is not None and given is not None and folder_label != given:
            raise SplitFileError(path, no, f"class id {given + 1} ({classes[given]}) disagrees with the "
                                 f"folder {parts[0]!r} ({classes[folder_label]})", line)
        entries.append((rel, folder_label if folder_label is not None else given))
    return entries


def read_label_csv(path: str | os.PathLike, classes: Sequence[str] | None = None
                   ) -> tuple[tuple[str, ...], list[tuple[str, int]]]:
    """Classes and ``(path as written, label)`` rows of a ``path,label`` CSV.

    Labels are class names (the classes are then the sorted distinct names), or integer ids
    ``0..K-1`` when every label is an integer: named by ``classes`` if given (an id beyond them is
    an error), else ``"0"``, ``"1"``, ...
    """
    path = Path(path)
    rows: list[tuple[int, str, str]] = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        for no, row in enumerate(csv.reader(f), 1):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != 2 or not row[0].strip() or not row[1].strip():
                raise SplitFileError(path, no, "expected two columns 'path,label'", ",".join(row))
            if not rows and row[0].strip().lower() == "path" and row[1].strip().lower() == "label":
                continue  # header
            rows.append((no, row[0].strip(), row[1].strip()))
    if not rows:
        raise SplitFileError(path, 0, "no 'path,label' rows")
    numeric = all(_is_int(label) for _, _, label in rows)
    if numeric:
        ids = [int(label) for _, _, label in rows]
        n = len(classes) if classes is not None else max(ids) + 1
        names = tuple(classes) if classes is not None else tuple(str(i) for i in range(n))
        for (no, p, label), cid in zip(rows, ids):
            if not 0 <= cid < n:
                raise SplitFileError(path, no, f"class id {cid} is not in 0..{n - 1}", f"{p},{label}")
        return names, [(p, cid) for (_, p, _), cid in zip(rows, ids)]
    names = tuple(sorted({label for _, _, label in rows}))
    lookup = {name: i for i, name in enumerate(names)}
    return names, [(p, lookup[label]) for _, p, label in rows]


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


# -- finding files ---------------------------------------------------------------------------

def find_splits_dir(root: str | os.PathLike) -> Path | None:
    """The folder holding ``classInd.txt`` for a UCF-101 ``root``, or None."""
    root = Path(root)
    for cand in (root, root / "ucfTrainTestlist", root.parent / "ucfTrainTestlist", root.parent):
        if (cand / "classInd.txt").is_file():
            return cand
    return None


def _resolver(roots: Sequence[Path]):
    """``resolve(rel) -> Path | None``: the file ``rel`` under the first root that has it; falls
    back to a case-insensitive match (UCF-101's lists and files disagree on some capitals)."""
    folded: dict[str, Path] | None = None

    def resolve(rel: str) -> Path | None:
        nonlocal folded
        rel_path = Path(rel)
        if rel_path.is_absolute():
            return rel_path if rel_path.is_file() else None
        for root in roots:
            if (root / rel_path).is_file():
                return root / rel_path
        if folded is None:
            folded = {}
            for root in roots:
                if root.is_dir():
                    for p in root.rglob("*"):
                        if p.suffix.lower() in VIDEO_SUFFIXES:
                            folded.setdefault(p.relative_to(root).as_posix().lower(), p)
        return folded.get(rel_path.as_posix().lower())

    return resolve


def _resolve_all(entries: list[tuple[str, int]], roots: Sequence[Path], listing: Path,
                 on_missing: str) -> tuple[list[tuple[Path, int]], list[tuple[str, str]]]:
    resolve = _resolver(roots)
    found, missing = [], []
    for rel, label in entries:
        p = resolve(rel)
        if p is None:
            missing.append(rel)
        else:
            found.append((p, label))
    skipped = []
    if missing:
        if on_missing == "error":
            raise MissingVideosError(listing, roots[0], missing)
        skipped = [(rel, "listed but not found") for rel in missing]
    return found, skipped


# -- probing -------------------------------------------------------------------------------

def _probe_all(entries: Sequence[tuple[Path, int]], *, min_duration_s: float, need_audio: bool,
               progress: bool) -> tuple[list[LabelledVideo], list[tuple[str, str]]]:
    videos, skipped = [], []
    for path, label in tqdm(entries, desc="probing videos", unit="file", disable=not progress):
        info, why = screen_video(path, min_duration_s=min_duration_s, need_audio=need_audio)
        if info is None:
            skipped.append((str(path), why))
        else:
            videos.append(LabelledVideo(info, label))
    return videos, skipped


def _remap(entries, names: Sequence[str], classes: Sequence[str] | None):
    """Map labels of ``names`` onto ``classes`` by name; entries of other classes are skipped."""
    if classes is None or tuple(names) == tuple(classes):
        return tuple(names), entries, []
    lookup = {n: i for i, n in enumerate(classes)}
    kept, skipped = [], []
    for path, label in entries:
        name = names[label]
        if name in lookup:
            kept.append((path, lookup[name]))
        else:
            skipped.append((str(path), f"class {name!r} not among the model's classes"))
    return tuple(classes), kept, skipped


# -- the layouts ---------------------------------------------------------------------------

def detect_layout(root: str | os.PathLike) -> str:
    """``"csv"`` for a .csv file, ``"synth"`` for a folder with an action manifest.json,
    ``"ucf101"`` when a ``classInd.txt`` is found, else ``"folders"``."""
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() == ".csv":
            return "csv"
        if root.name == "manifest.json":
            return "synth"
        raise ValueError(f"{root}: a labelled dataset is a folder, a .csv file or a manifest.json")
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such dataset folder or file")
    if (root / "manifest.json").is_file():
        return "synth"
    if find_splits_dir(root) is not None:
        return "ucf101"
    return "folders"


def index_labelled(root: str | os.PathLike, *, layout: str = "auto", split: int = 1, subset: str = "train",
                   splits_dir: str | os.PathLike | None = None, classes: Sequence[str] | None = None,
                   min_duration_s: float = 0.0, need_audio: bool = False, on_missing: str = "error",
                   progress: bool = False) -> LabelledIndex:
    """Index a labelled dataset: parse its listing, probe every video, keep the usable ones.

    Args:
        root: dataset folder, CSV file or synthetic ``manifest.json`` (see the module docstring).
        layout: ``"auto"`` (:func:`detect_layout`), ``"ucf101"``, ``"folders"``, ``"csv"``, ``"synth"``.
        split, subset: UCF-101 only: split 1-3 and ``"train"`` or ``"test"``.
        splits_dir: UCF-101 only: folder of ``classInd.txt`` and the lists (default: found).
        classes: the class names to label with (e.g. a trained model's); entries of other classes
            are skipped. Default: the dataset's own classes.
        min_duration_s: shorter videos are skipped (clips of longer-than-video windows are looped).
        need_audio: skip videos without an audio stream (default: they are heard as silence, as
            half of UCF-101 has no audio).
        on_missing: ``"error"`` (default) or ``"skip"`` for listed videos that are not on disk.

    Raises:
        SplitFileError: a malformed line; MissingVideosError: listed videos not found.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if on_missing not in ("error", "skip"):
        raise ValueError(f"on_missing must be 'error' or 'skip', got {on_missing!r}")
    root = Path(root)
    if layout == "auto":
        layout = detect_layout(root)
    if layout == "ucf101":
        names, entries, skipped = _ucf101_entries(root, split, subset, splits_dir, on_missing)
    elif layout == "folders":
        names, entries, skipped = _folder_entries(root)
    elif layout == "csv":
        names, rows = read_label_csv(root, classes)
        entries, skipped = _resolve_all(rows, [root.parent], root, on_missing)
    else:
        names, entries, skipped = _synth_entries(root, on_missing)
    names, entries, foreign = _remap(entries, names, classes)
    videos, unusable = _probe_all(entries, min_duration_s=min_duration_s, need_audio=need_audio, progress=progress)
    return LabelledIndex(tuple(names), tuple(videos), tuple(skipped + foreign + unusable), layout, str(root))


def _ucf101_entries(root: Path, split: int, subset: str, splits_dir, on_missing: str):
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
    sdir = Path(splits_dir) if splits_dir is not None else find_splits_dir(root)
    if sdir is None or not (sdir / "classInd.txt").is_file():
        raise FileNotFoundError(f"{root}: no UCF-101 classInd.txt here, in ucfTrainTestlist/ or beside it; "
                                "pass splits_dir")
    listing = sdir / f"{subset}list{int(split):02d}.txt"
    if not listing.is_file():
        raise FileNotFoundError(f"{listing}: no such split file (UCF-101 has splits 1-3)")
    names = read_class_index(sdir / "classInd.txt")
    rows = read_split_file(listing, names)
    roots = [root] + [r for r in (root / "UCF-101", root / "UCF101") if r.is_dir()]
    entries, skipped = _resolve_all(rows, roots, listing, on_missing)
    return names, entries, skipped


def _folder_entries(root: Path):
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    names, entries = [], []
    for d in class_dirs:
        files = find_videos(d)
        if files:
            entries.extend((p, len(names)) for p in files)
            names.append(d.name)
    skipped = [(str(p), "not in a class folder") for p in root.iterdir()
               if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
    if not names:
        raise ValueError(f"{root}: no class folders with videos (expected <root>/<class>/<video>)")
    return tuple(names), entries, skipped


def _synth_entries(root: Path, on_missing: str):
    manifest_path = root if root.is_file() else root / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("task") != "action" or not manifest.get("classes"):
        raise ValueError(f"{manifest_path}: a synthetic set of task {manifest.get('task')!r}, not 'action' "
                         "(write one with write_dataset(..., task='action'))")
    names = tuple(manifest["classes"])
    rows = [(scene["video"], int(scene["label"])) for scene in manifest["scenes"]]
    entries, skipped = _resolve_all(rows, [manifest_path.parent], manifest_path, on_missing)
    return names, entries, skipped
