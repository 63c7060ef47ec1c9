"""Safe file output: every result is written to a temporary file beside its destination and
renamed into place, so a crash or a kill never leaves a half-written file under the final name
(rename within one directory is atomic on POSIX).

A ``kill -9`` cannot remove its own temporary file, so each one is named after the process that
writes it (``.<name>.tmp-<host>-<pid>-<random><suffix>``): the next process writing into that
folder, a command opening its output folder (:class:`OutputNames`), training and ``prepare``
remove the temporaries of processes of this host that no longer run
(:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import socket
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

#: A temporary file of :func:`atomic_path`: ``.<name>.tmp-<host>-<pid>-<random><suffix>`` (mkstemp's
#: random part has no ``-`` or ``.``).
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<host>.+)-(?P<pid>\d+)-[a-z0-9_]+(\.[^.]*)?$")
#: What the marker files of :meth:`OutputNames.all_or_nothing` add to a stem.
_PENDING = ".outputs-pending"


def _host() -> str:
    return socket.gethostname().replace("/", "_") or "host"


def _process_gone(host: str, pid: int) -> bool:
    """True for a process of this host that no longer runs (other hosts' processes are left
    alone: their files may be in use on shared storage)."""
    if host != _host():
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. another user's live process
        return False
    return False


def is_temporary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named as a temporary file of :func:`atomic_path`."""
    return _TEMPORARY.match(Path(path).name) is not None


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files in ``folder`` whose writer, a process of this host, is gone
    (killed before it could clean up); returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.glob(".*.tmp-*"):
        if _PENDING in path.name:  # a marker: its outputs go with it (remove_unfinished_outputs)
            continue
        match = _TEMPORARY.match(path.name)
        if match and _process_gone(match["host"], int(match["pid"])):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


#: Folders this process has swept of stale temporaries (once each: a folder of many files is
#: not listed again at every write).
_SWEPT: set[str] = set()


def _sweep_once(folder: Path) -> None:
    key = os.path.realpath(folder)
    if key not in _SWEPT:
        remove_stale_temporaries(folder)
        _SWEPT.add(key)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); on success rename it to ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was. The first
    write of this process into a folder removes the temporaries killed writers left there.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(dest.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.tmp-{_host()}-{os.getpid()}-", suffix=dest.suffix,
                                    dir=dest.parent)
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
    never collide).

    An input's outputs are all-or-nothing (:meth:`all_or_nothing`), even across a ``kill -9``:
    while they are written a marker file lists them, and opening the folder again removes the
    outputs of markers whose process is gone, with every stale temporary file."""

    def __init__(self, out_dir: str | os.PathLike, suffixes: Sequence[str], *, overwrite: bool = False):
        self.out, self.suffixes, self.overwrite = Path(out_dir), tuple(suffixes), overwrite
        self.taken: set[str] = set()
        remove_unfinished_outputs(self.out)

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
        input gets all its outputs or none. A marker naming them stays while they are written,
        so that a kill leaves something :func:`remove_unfinished_outputs` can undo."""
        self.out.mkdir(parents=True, exist_ok=True)
        fd, marker = tempfile.mkstemp(prefix=f".{stem}{_PENDING}.tmp-{_host()}-{os.getpid()}-", suffix=".json",
                                      dir=self.out)
        with os.fdopen(fd, "w") as f:
            json.dump({"outputs": [f"{stem}{s}" for s in self.suffixes]}, f)
        try:
            yield
        except BaseException:
            for path in self.paths(stem):
                path.unlink()
            raise
        finally:
            os.unlink(marker)


def remove_unfinished_outputs(folder: str | os.PathLike) -> list[Path]:
    """Undo what killed processes left in the output folder ``folder``: the outputs of every
    input they were writing (named in its marker) and their temporary files; returns what was
    removed."""
    folder = Path(folder)
    removed = []
    for marker in folder.glob(f".*{_PENDING}.tmp-*") if folder.is_dir() else []:
        match = _TEMPORARY.match(marker.name)
        if not (match and _process_gone(match["host"], int(match["pid"]))):
            continue
        try:
            outputs = json.loads(marker.read_text())["outputs"]
        except (OSError, ValueError, KeyError, TypeError):
            outputs = []  # killed before the list was written: it had written nothing yet
        for name in outputs:
            path = folder / Path(str(name)).name
            if path.is_file():
                path.unlink()
                removed.append(path)
        marker.unlink()
        removed.append(marker)
    return removed + remove_stale_temporaries(folder)
