"""Safe file output: every result is written to a temporary file beside its destination and
renamed into place, so a crash or a kill never leaves a half-written file under the final name
(rename within one directory is atomic on POSIX)."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator, Sequence


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); on success rename it to ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=f".tmp{dest.suffix}", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a result should be an ordinary file
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_csv(path: str | os.PathLike, rows: list[dict], fields: list[str]) -> Path:
    """Write ``rows`` as CSV with the columns ``fields`` (missing values left empty), atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


class OutputNames:
    """The one naming rule for every command's outputs: the files made from an input are named by
    its stem plus each of ``suffixes`` (e.g. ``_cam.mp4``) in ``out_dir``. A stem that another
    input of the run took, or whose files are already there, gets ``_2``, ``_3``... so nothing is
    overwritten (``overwrite=True``: files already there are replaced, within a run stems still
    never collide)."""

    def __init__(self, out_dir: str | os.PathLike, suffixes: Sequence[str], *, overwrite: bool = False):
        self.out, self.suffixes, self.overwrite = Path(out_dir), tuple(suffixes), overwrite
        self.taken: set[str] = set()

    def _free(self, stem: str) -> bool:
        return stem not in self.taken and (self.overwrite or not any(self.paths(stem)))

    def paths(self, stem: str) -> list[Path]:
        """The files of ``stem`` that exist."""
        return [p for p in (self.out / f"{stem}{s}" for s in self.suffixes) if p.exists()]

    def claim(self, input_path: str | os.PathLike) -> str:
        """A stem for the outputs of ``input_path`` that no other output has."""
        base = stem = Path(input_path).stem
        k = 2
        while not self._free(stem):
            stem, k = f"{base}_{k}", k + 1
        self.taken.add(stem)
        return stem

    @contextlib.contextmanager
    def all_or_nothing(self, stem: str) -> Iterator[None]:
        """On an error inside, remove whatever files of ``stem`` were written, then re-raise: an
        input gets all its outputs or none."""
        try:
            yield
        except BaseException:
            for path in self.paths(stem):
                path.unlink()
            raise
