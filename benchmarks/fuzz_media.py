"""Fuzzing the media layer: mutated mp4 / mkv / webm / ts / wav files through probe and read_clip.

Small valid sources (about 1 s, 32x24 px, 8-16 kHz: a few KB each, so that a mutation often hits
a header) are mutated in five ways: bit flips, byte runs, truncations, splices (a chunk of another
source, or of the same file, inserted or written over) and header-field edits (a size, count,
rate or id field of an mp4 box, a Matroska element, a WAV chunk or an MPEG-TS packet set to an
edge value). Each case is read as the commands read a file (probe, a window from the start, a
window after a seek, the whole soundtrack) through the avscene.media.isolate decode worker, with
a stall and a time limit, and classified as

    ok         probe and reads succeeded,
    clear      a MediaError (a one-line message naming the file),
    traceback  any other exception (a bug: a user would see a traceback),
    crash      the worker died from a signal (a native crash in FFmpeg / PyAV),
    hang       the worker made no progress for --stall-s, or ran past --time-limit-s.

A case's mutation depends only on (--seed, case number, source): every case is reproducible. The
mutated file of every traceback, crash and hang is saved under --keep-dir (by default
tests/data/fuzz, where tests/test_fuzz_regressions.py reads each back) and listed in the JSON.

    python benchmarks/fuzz_media.py [--cases 10000] [--seed 0] [--workers 2]
      -> benchmarks/results/fuzz_media.json
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import re
import struct
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm

from avscene.media import MediaError, probe, read_clip, write_video
from avscene.media.errors import DecoderCrashError, DecoderStallError
from avscene.media.isolate import DecodeWorker

FORMATS = ("mp4", "mkv", "webm", "ts", "wav")
MUTATIONS = ("bitflip", "byte_run", "truncate", "splice", "header_field")
OUTCOMES = ("ok", "clear", "traceback", "crash", "hang")
KEEP_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "fuzz"
#: Values a header field is set to: zero, one, sign and size boundaries.
EDGE_VALUES = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
               0xFFFFFFFE, 0xFFFFFFFF)
#: What one child may allocate: an absurd header then fails inside FFmpeg instead of exhausting memory.
MEMORY_LIMIT = 4 << 30


# -- sources ------------------------------------------------------------------------------------


def _scene(n_frames: int, h: int = 24, w: int = 32) -> np.ndarray:
    """uint8 (T, H, W, 3): a bright square moving over a gradient."""
    frames = np.empty((n_frames, h, w, 3), np.uint8)
    frames[:] = np.linspace(30, 200, w, dtype=np.uint8)[None, None, :, None]
    for i in range(n_frames):
        x = (3 * i) % (w - 8)
        frames[i, 8:16, x : x + 8] = 250
    return frames


def _yuv420(image: np.ndarray) -> np.ndarray:
    """uint8 (H * 3 / 2, W) planar yuv420p (BT.601, limited range) of an RGB image (H, W, 3) of
    even sides, computed here: swscale's conversion of such tiny pictures was not always the same
    from run to run, and the sources must be byte-identical every time."""
    rgb = image.astype(np.float64)
    y = 16 + rgb @ np.array([65.481, 128.553, 24.966]) / 255
    u = 128 + rgb @ np.array([-37.797, -74.203, 112.0]) / 255
    v = 128 + rgb @ np.array([112.0, -93.786, -18.214]) / 255
    h, w = y.shape
    half = [c.reshape(h // 2, 2, w // 2, 2).mean((1, 3)).reshape(h // 4, w) for c in (u, v)]  # quarter planes
    return np.clip(np.round(np.concatenate([y, *half])), 0, 255).astype(np.uint8)


def _tone(n: int, rate: int, channels: int) -> np.ndarray:
    t = np.arange(n) / rate
    return np.stack([0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)], 1).astype(np.float32)


def _encode(path: Path, fmt: str, vcodec: str, acodec: str, *, fps: int = 10, rate: int = 16000,
            seconds: float = 1.0) -> Path:
    """A ``seconds`` long file with one video stream (``vcodec``; none if empty) and one stereo
    audio stream (``acodec``) written with PyAV: the containers avscene's own writer does not make."""
    # bitexact: no random ids or encoder strings, so the same sources (and mutations) come out every time
    with av.open(str(path), "w", format=fmt, container_options={"fflags": "+bitexact"}) as out:
        vstream = None
        if vcodec:
            vstream = out.add_stream(vcodec, rate=fps)
            vstream.width, vstream.height, vstream.pix_fmt = 32, 24, "yuv420p"
            vstream.codec_context.thread_count = 1
        astream = out.add_stream(acodec, rate=rate, layout="stereo")
        audio = _tone(int(seconds * rate), rate, 2)
        for i, image in enumerate(_scene(int(seconds * fps)) if vstream else []):
            frame = av.VideoFrame.from_ndarray(_yuv420(image), format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(vstream.encode(frame))
        if vstream:
            out.mux(vstream.encode(None))
        pcm = (audio * 32767).astype(np.int16)  # PyAV converts to the encoder's format and frame size
        for first in range(0, len(pcm), 1024):
            chunk = np.ascontiguousarray(pcm[first : first + 1024]).reshape(1, -1)  # packed s16: (1, n * 2)
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = rate, first, Fraction(1, rate)
            out.mux(astream.encode(frame))
        out.mux(astream.encode(None))
    return path


def make_sources(folder: Path) -> dict[str, bytes]:
    """One small valid file per format (the mp4 by avscene's own writer), as bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "mp4": folder / "source.mp4",
        "mkv": _encode(folder / "source.mkv", "matroska", "libx264", "mp3"),
        "webm": _encode(folder / "source.webm", "webm", "libvpx", "libopus", rate=48000),
        "ts": _encode(folder / "source.ts", "mpegts", "mpeg2video", "mp2", rate=32000),
        "wav": _encode(folder / "source.wav", "wav", "", "pcm_s16le", rate=8000),
    }
    if not paths["mp4"].exists():
        write_video(paths["mp4"], _scene(10), 10, _tone(16000, 16000, 2), 16000)
    for fmt, path in paths.items():
        probe(path)  # each source is valid before it is mutated
    return {fmt: path.read_bytes() for fmt, path in paths.items()}


# -- mutations ----------------------------------------------------------------------------------


def bitflip(data: bytearray, rng: np.random.Generator, fmt: str, others: dict) -> bytearray:
    for bit in rng.integers(0, len(data) * 8, int(rng.integers(1, 17))):
        data[bit // 8] ^= 1 << int(bit % 8)
    return data


def byte_run(data: bytearray, rng: np.random.Generator, fmt: str, others: dict) -> bytearray:
    n = int(min(len(data), rng.integers(1, 257)))
    at = int(rng.integers(0, len(data) - n + 1))
    fill = rng.choice([0x00, 0xFF, -1])
    data[at : at + n] = bytes(rng.integers(0, 256, n, dtype=np.uint8)) if fill < 0 else bytes([int(fill)]) * n
    return data


def truncate(data: bytearray, rng: np.random.Generator, fmt: str, others: dict) -> bytearray:
    return data[: int(rng.integers(1, len(data)))]


def splice(data: bytearray, rng: np.random.Generator, fmt: str, others: dict) -> bytearray:
    """A chunk of another source (or of this file) inserted at, or written over, a random place."""
    donor = others[str(rng.choice(sorted(others)))]
    n = int(rng.integers(1, min(len(donor), 4096) + 1))
    first = int(rng.integers(0, len(donor) - n + 1))
    chunk, at = donor[first : first + n], int(rng.integers(0, len(data) + 1))
    if rng.random() < 0.5:
        return data[:at] + chunk + data[at:]
    return data[:at] + chunk + data[at + n :]


def header_field(data: bytearray, rng: np.random.Generator, fmt: str, others: dict) -> bytearray:
    """A size, count, rate or id field of the container's structure set to an edge value."""
    fields = FIELD_FINDERS[fmt](bytes(data))
    if not fields:
        return bitflip(data, rng, fmt, others)
    at, width = fields[int(rng.integers(0, len(fields)))]
    value = int(rng.choice(EDGE_VALUES)) & ((1 << (8 * width)) - 1)
    data[at : at + width] = value.to_bytes(width, "big" if fmt != "wav" else "little")
    return data


MUTATORS = {"bitflip": bitflip, "byte_run": byte_run, "truncate": truncate, "splice": splice,
            "header_field": header_field}

#: ISO BMFF boxes that hold other boxes.
_MP4_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"dinf", b"edts", b"udta", b"mvex", b"moof",
                   b"traf", b"mfra"}


def _mp4_fields(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(offset, width) of every box's size field and of the first 32-bit words of its payload."""
    end = len(data) if end is None else end
    out, at = [], start
    while at + 8 <= end:
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        if size < 8 or at + size > end:
            break
        out.append((at, 4))
        payload = at + 8
        if kind in _MP4_CONTAINERS:
            out.extend(_mp4_fields(data, payload, at + size))
        else:
            out.extend((payload + 4 * k, 4) for k in range(min(8, (size - 8) // 4)))
        at += size
    return out


#: Matroska element ids worth editing: headers, track fields, clusters, blocks, cues.
_EBML_IDS = [bytes.fromhex(h) for h in ("1a45dfa3", "18538067", "1549a966", "1654ae6b", "1f43b675", "1c53bb6b",
                                        "114d9b74", "2ad7b1", "4489", "63a2", "86", "b0", "ba", "b5", "9f", "e7",
                                        "a3", "a0", "ae", "d7", "83")]


def _ebml_fields(data: bytes) -> list[tuple[int, int]]:
    """(offset, width) of the size (first byte) and the first payload bytes after known element ids."""
    out = []
    for element in _EBML_IDS:
        at = data.find(element)
        while at >= 0 and len(out) < 400:
            size_at = at + len(element)
            if size_at + 2 < len(data):
                out.extend([(size_at, 1), (size_at + 1, 1), (size_at + 1, 2)])
            at = data.find(element, at + 1)
    return out


def _wav_fields(data: bytes) -> list[tuple[int, int]]:
    """RIFF size, each chunk's size, and every field of the fmt chunk (16- and 32-bit)."""
    out, at = [(4, 4)], 12
    while at + 8 <= len(data):
        kind, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        out.append((at + 4, 4))
        if kind == b"fmt ":
            out.extend([(at + 8, 2), (at + 10, 2), (at + 12, 4), (at + 16, 4), (at + 20, 2), (at + 22, 2)])
        at += 8 + size + (size & 1)
    return out


def _ts_fields(data: bytes) -> list[tuple[int, int]]:
    """Per 188-byte packet: the PID, the flags and counter byte, and the first header bytes of its payload."""
    out = []
    for at in range(0, len(data) - 188 + 1, 188):
        if data[at] == 0x47:
            out.extend([(at + 1, 2), (at + 3, 1), (at + 4, 1), (at + 5, 1), (at + 6, 2), (at + 8, 2), (at + 10, 2),
                        (at + 12, 2)])
    return out


FIELD_FINDERS = {"mp4": _mp4_fields, "mkv": _ebml_fields, "webm": _ebml_fields, "wav": _wav_fields, "ts": _ts_fields}


def mutate(sources: dict[str, bytes], fmt: str, kind: str, seed: int, case: int) -> bytes:
    """The mutated file of case ``case``: depends only on the sources, ``seed`` and ``case``."""
    rng = np.random.default_rng([seed, case])
    data = MUTATORS[kind](bytearray(sources[fmt]), rng, fmt, sources)
    return bytes(data) or b"\0"


def plan(n_cases: int, seed: int) -> list[tuple[int, str, str]]:
    """(case, format, mutation) for every case: formats and mutations in turn, so each pair gets
    an equal share."""
    return [(i, FORMATS[i % len(FORMATS)], MUTATIONS[(i // len(FORMATS)) % len(MUTATIONS)]) for i in range(n_cases)]


# -- running a case ----------------------------------------------------------------------------


def read_like_the_commands(path: str) -> list[str]:
    """Probe ``path``, then read as the commands do: a window from its start, one after a seek,
    and (with audio) the whole soundtrack, as ``separate`` does; per read ``"ok"`` or the
    MediaError's reason. Other exceptions propagate. Runs in the decode worker."""
    info = probe(path)
    has_video, has_audio = info.has_video, info.has_audio
    options = dict(fps=Fraction(30000, 1001) if has_video else None, size=32 if has_video else None,
                   sample_rate=16000 if has_audio else None, channels=2 if has_audio else None,
                   video=has_video, audio=has_audio)
    reads = [((0.0, min(1.0, max(0.05, info.duration_s / 2))), options), ((info.duration_s / 2, 0.2), options)]
    if has_audio:
        reads.append(((0.0, None), {"video": False}))
    steps = []
    for (start, length), kwargs in reads:
        try:
            read_clip(path, start, length, **kwargs)
            steps.append("ok")
        except MediaError as err:
            steps.append(err.reason)
    return steps


def _importable(fn):
    """``fn`` as a decode worker can import it: from this file as a module, not from __main__."""
    if fn.__module__ != "__main__":
        return fn
    import importlib

    return getattr(importlib.import_module(Path(__file__).stem), fn.__name__)


def run_case(worker: DecodeWorker, path: Path) -> tuple[str, str]:
    """(outcome, detail) of reading ``path`` in ``worker``: see the module docstring."""
    try:
        steps = worker.call(_importable(read_like_the_commands), str(path))
    except DecoderCrashError as err:
        return "crash", err.reason
    except DecoderStallError as err:
        return "hang", err.reason
    except MediaError as err:
        return "clear", err.reason
    except Exception as err:  # a bug: what a user would see as a traceback
        notes = "".join(getattr(err, "__notes__", []))
        return "traceback", f"{type(err).__name__}: {err}\n{notes}"
    errors = [s for s in steps if s != "ok"]
    return ("clear", errors[0]) if errors else ("ok", "")


def reason_kind(reason: str) -> str:
    """A MediaError's reason without its numbers and parenthesised details, to count kinds."""
    return re.sub(r"\d+(\.\d+)?", "N", reason.split(" (")[0])[:90]


class Runner:
    """Runs cases on ``n_workers`` threads, each with its own persistent decode worker."""

    def __init__(self, sources: dict[str, bytes], seed: int, *, stall_s: float, time_limit_s: float,
                 scratch: Path):
        self.sources, self.seed, self.scratch = sources, seed, scratch
        self.stall_s, self.time_limit_s = stall_s, time_limit_s
        self.local = threading.local()
        self.workers: list[DecodeWorker] = []
        self.lock = threading.Lock()

    def _worker(self) -> DecodeWorker:
        if not hasattr(self.local, "worker"):
            self.local.worker = DecodeWorker(stall_s=self.stall_s, time_limit_s=self.time_limit_s,
                                             memory_limit=MEMORY_LIMIT)
            with self.lock:
                self.workers.append(self.local.worker)
        return self.local.worker

    def __call__(self, job: tuple[int, str, str]) -> dict:
        case, fmt, kind = job
        path = self.scratch / f"case{threading.get_ident()}.{fmt}"
        data = mutate(self.sources, fmt, kind, self.seed, case)
        path.write_bytes(data)
        outcome, detail = run_case(self._worker(), path)
        return {"case": case, "format": fmt, "mutation": kind, "outcome": outcome, "detail": detail,
                "bytes": data if outcome not in ("ok", "clear") else None}

    def close(self) -> None:
        for worker in self.workers:
            worker.close()


def fuzz(sources: dict[str, bytes], n_cases: int, seed: int, *, workers: int = 2, stall_s: float = 10.0,
         time_limit_s: float = 30.0, keep_dir: Path | None = None, progress: bool = True) -> dict:
    """Run ``n_cases`` cases; the summary (counts per outcome, format and mutation, the kinds of
    clear errors, and every bad case) as a dict. Bad cases' files go to ``keep_dir``."""
    counts = collections.Counter()
    by_format = {f: collections.Counter() for f in FORMATS}
    by_mutation = {m: collections.Counter() for m in MUTATIONS}
    reasons = collections.Counter()
    bad = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="avscene-fuzz-", dir=_scratch_root()) as scratch:
        runner = Runner(sources, seed, stall_s=stall_s, time_limit_s=time_limit_s, scratch=Path(scratch))
        try:
            with ThreadPoolExecutor(workers) as pool:
                results = pool.map(runner, plan(n_cases, seed))
                for r in tqdm(results, total=n_cases, desc="fuzzing", unit="case", disable=not progress):
                    counts[r["outcome"]] += 1
                    by_format[r["format"]][r["outcome"]] += 1
                    by_mutation[r["mutation"]][r["outcome"]] += 1
                    if r["outcome"] == "clear":
                        reasons[reason_kind(r["detail"])] += 1
                    elif r["outcome"] != "ok":
                        bad.append(_keep(r, seed, keep_dir))
        finally:
            runner.close()
    elapsed = time.perf_counter() - t0
    return {"cases": n_cases, "seed": seed, "elapsed_s": round(elapsed, 2), "cases_per_s": round(n_cases / elapsed, 1),
            "outcomes": {o: counts[o] for o in OUTCOMES},
            "by_format": {f: {o: c[o] for o in OUTCOMES} for f, c in by_format.items()},
            "by_mutation": {m: {o: c[o] for o in OUTCOMES} for m, c in by_mutation.items()},
            "clear_error_kinds": dict(reasons.most_common(40)), "reproducers": bad,
            "worker_starts": sum(w.starts for w in runner.workers)}


def _scratch_root() -> str | None:
    return "/dev/shm" if Path("/dev/shm").is_dir() else None  # in memory where there is a tmpfs


def _keep(result: dict, seed: int, keep_dir: Path | None) -> dict:
    """The JSON record of a bad case, its file saved in ``keep_dir``."""
    name = f"{result['format']}-{result['mutation']}-seed{seed}-case{result['case']}.{result['format']}"
    if keep_dir is not None:
        keep_dir.mkdir(parents=True, exist_ok=True)
        (keep_dir / name).write_bytes(result["bytes"])
    return {"file": name, **{k: result[k] for k in ("case", "format", "mutation", "outcome", "detail")}}


def main(argv: list[str] | None = None) -> None:
    from common import write_result  # imports torch: kept out of the module the decode workers import

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="cases run at once, each in its own decode worker")
    ap.add_argument("--stall-s", type=float, default=10.0, help="no progress for this long = hang")
    ap.add_argument("--time-limit-s", type=float, default=30.0, help="a case running longer = hang")
    ap.add_argument("--keep-dir", type=Path, default=KEEP_DIR, help="where the files of bad cases are saved")
    ap.add_argument("--name", default="fuzz_media", help="results file name")
    args = ap.parse_args(argv)
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="avscene-fuzz-src-") as folder:
        sources = make_sources(Path(folder))
    summary = fuzz(sources, args.cases, args.seed, workers=args.workers, stall_s=args.stall_s,
                   time_limit_s=args.time_limit_s, keep_dir=args.keep_dir)
    print(f"{summary['cases']} cases in {summary['elapsed_s']} s ({summary['cases_per_s']} cases/s): "
          + ", ".join(f"{o} {n}" for o, n in summary["outcomes"].items()))
    for r in summary["reproducers"]:
        print(f"  {r['outcome']}: {r['file']}: {r['detail'].splitlines()[0] if r['detail'] else ''}")
    write_result(args.name, {"settings": {"workers": args.workers, "stall_s": args.stall_s,
                                          "time_limit_s": args.time_limit_s, "memory_limit_bytes": MEMORY_LIMIT},
                             "load_avg_1_5_15_min": {"before": load_before,
                                                     "after": [round(x, 2) for x in os.getloadavg()]},
                             "source_bytes": {f: len(b) for f, b in sources.items()},
                             "source_sha256": {f: hashlib.sha256(b).hexdigest() for f, b in sources.items()},
                             **summary})


if __name__ == "__main__":
    if __package__ is None and str(Path(__file__).parent) not in sys.path:
        sys.path.insert(0, str(Path(__file__).parent))
    main()
