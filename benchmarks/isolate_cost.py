"""What decoding in a worker process (avscene.media.isolate) costs against decoding in-process.

On a 12 s 640x360 H.264/AAC video, measures
  * the worker's start (a fresh interpreter importing the media layer), paid once per batch and
    again after each crash or stall;
  * a probe per input file, in-process and through a warm worker;
  * clip reads as inference makes them (4.2 s: 125 frames at 29.97 fps, 224x224 centre crop,
    21 kHz stereo), in-process and through the worker, in clips/s on one decoder thread;
  * the same at the source's size (640x360, no resize): the largest arrays a read sends back;
  * the pipe alone: a function in the worker that returns an array of a clip's size.
In-process and isolated reads alternate read by read, so that other load on the machine falls on
both alike; the overheads are medians of the paired differences.

    python benchmarks/isolate_cost.py [--clips 12] [--probes 30] [--seconds 12]
      -> benchmarks/results/isolate_cost.json
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from avscene.media import probe, read_clip, write_video
from avscene.media.isolate import DecodeWorker, isolated_decoding

FPS = Fraction(30000, 1001)
CLIP_S, RATE = 4.2, 21000


def make_source(path: Path, seconds: float = 20.0, size=(360, 640), rate: int = 44100) -> Path:
    """A moving-texture video (real work for H.264) with noisy stereo audio."""
    rng = np.random.default_rng(0)
    n, (h, w) = int(seconds * float(FPS)), size
    base = rng.integers(0, 255, (h + n, w, 3), dtype=np.uint8)
    frames = np.stack([base[i : i + h] for i in range(n)])  # (T, H, W, 3): the texture scrolls
    audio = (0.1 * rng.standard_normal((int(seconds * rate), 2))).astype(np.float32)  # (N, 2)
    return write_video(path, frames, FPS, audio, rate)


def clip_array(path: str, shape: tuple[int, ...]) -> np.ndarray:
    """An array of ``shape``: what the worker sends when it only has to send (the pipe's cost)."""
    return np.ones(shape, np.uint8)


def _importable(fn):
    """``fn`` as the worker can import it: from this file as a module, not from __main__."""
    return getattr(importlib.import_module(Path(__file__).stem), fn.__name__) if fn.__module__ == "__main__" else fn


def time_starts(path: Path, n: int = 5) -> list[float]:
    """Seconds from a new worker to its first probe's result, ``n`` times."""
    out = []
    for _ in range(n):
        t = time.perf_counter()
        with DecodeWorker() as worker:
            worker.call(probe, path)
            out.append(time.perf_counter() - t)
    return out


def time_paired(path: Path, starts: list[float], size: int | None, probes: int) -> dict[str, list[float]]:
    """Seconds of each probe and clip read, in-process and in a warm worker, the two modes
    alternating read by read (and which goes first, too), so that other load falls on both alike."""
    times = {k: [] for k in ("probe_in", "probe_iso", "read_in", "read_iso")}
    with isolated_decoding(enabled=True):
        probe(path)  # start the worker
        for i in range(max(probes, len(starts))):
            for isolated in ((False, True) if i % 2 == 0 else (True, False)):
                tag = "iso" if isolated else "in"
                with isolated_decoding(enabled=isolated):
                    if i < probes:
                        t = time.perf_counter()
                        probe(path)
                        times[f"probe_{tag}"].append(time.perf_counter() - t)
                    if i < len(starts):
                        t = time.perf_counter()
                        read_clip(path, starts[i], CLIP_S, fps=FPS, size=size, sample_rate=RATE, channels=2, threads=1)
                        times[f"read_{tag}"].append(time.perf_counter() - t)
    return times


def time_pipe(shape: tuple[int, ...], n: int = 10) -> float:
    with DecodeWorker() as worker:
        fn = _importable(clip_array)
        worker.call(fn, "x", shape)
        t = time.perf_counter()
        for _ in range(n):
            worker.call(fn, "x", shape)
        return (time.perf_counter() - t) / n


def measure(path: Path, clips: int, probes: int, seconds: float) -> dict:
    rng = np.random.default_rng(1)
    starts = [float(s) for s in rng.uniform(0, seconds - CLIP_S - 0.1, clips)]
    model = time_paired(path, starts, 224, probes)
    source = time_paired(path, starts[: max(2, clips // 3)], None, 0)
    n_frames = round(CLIP_S * float(FPS))
    probe_in, probe_iso = statistics.median(model["probe_in"]), statistics.median(model["probe_iso"])
    return {
        "worker_start_s": {"median": round(statistics.median(starts_s := time_starts(path)), 3),
                           "all": [round(x, 3) for x in starts_s]},
        "probe_ms": {"in_process": round(1000 * probe_in, 2), "isolated": round(1000 * probe_iso, 2),
                     "overhead_ms": round(1000 * (probe_iso - probe_in), 2)},
        "model_size_clip": _reads(model["read_in"], model["read_iso"], (n_frames, 224, 224, 3)),
        "source_size_clip": _reads(source["read_in"], source["read_iso"], (n_frames, 360, 640, 3)),
        "pipe_only_ms": {"224x224_clip": round(1000 * time_pipe((n_frames, 224, 224, 3)), 2),
                         "640x360_clip": round(1000 * time_pipe((n_frames, 360, 640, 3)), 2)},
    }


def _reads(in_process: list[float], isolated: list[float], frames_shape: tuple[int, ...]) -> dict:
    """Per-clip figures from paired reads (s): totals for clips/s, and the median of the pairs'
    differences, which other load disturbs least."""
    extra = statistics.median(b - a for a, b in zip(in_process, isolated))
    return {"frames_shape": list(frames_shape), "mbytes": round(np.prod(frames_shape) / 1e6, 1), "clips": len(in_process),
            "clips_per_s_in_process": round(len(in_process) / sum(in_process), 2),
            "clips_per_s_isolated": round(len(isolated) / sum(isolated), 2),
            "ms_per_clip_in_process": round(1000 * statistics.median(in_process), 1),
            "ms_per_clip_isolated": round(1000 * statistics.median(isolated), 1),
            "median_extra_ms_per_clip": round(1000 * extra, 1),
            "overhead_pct": round(100 * extra / statistics.median(in_process), 1)}


def main(argv: list[str] | None = None) -> None:
    from common import write_result  # imports torch: kept out of what the worker imports

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=12, help="224x224 clip reads per mode (a third as many at 640 px)")
    ap.add_argument("--probes", type=int, default=30, help="probes per mode")
    ap.add_argument("--seconds", type=float, default=12.0, help="length of the test video")
    args = ap.parse_args(argv)
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="avscene-isolate-") as folder:
        path = make_source(Path(folder) / "source.mp4", seconds=args.seconds)
        result = measure(path, args.clips, args.probes, args.seconds)
    m, f = result["model_size_clip"], result["source_size_clip"]
    print(f"worker start {result['worker_start_s']['median']} s; probe {result['probe_ms']['in_process']} ms "
          f"in-process, {result['probe_ms']['isolated']} ms isolated")
    print(f"224x224 clips: {m['clips_per_s_in_process']} /s in-process, {m['clips_per_s_isolated']} /s isolated "
          f"(median {m['median_extra_ms_per_clip']:+} ms, {m['overhead_pct']:+} %); 640x360 clips: "
          f"{f['clips_per_s_in_process']} /s, {f['clips_per_s_isolated']} /s ({f['median_extra_ms_per_clip']:+} ms, "
          f"{f['overhead_pct']:+} %); pipe alone {result['pipe_only_ms']}")
    write_result("isolate_cost", {"video": f"{args.seconds:g} s 640x360 H.264 29.97 fps + 44.1 kHz stereo AAC",
                                  "clip": f"{CLIP_S} s at 29.97 fps, {RATE} Hz stereo, decoder threads 1",
                                  "load_avg_1_5_15_min": {"before": load_before,
                                                          "after": [round(x, 2) for x in os.getloadavg()]},
                                  **result})


if __name__ == "__main__":
    if str(Path(__file__).parent) not in sys.path:
        sys.path.insert(0, str(Path(__file__).parent))
    main()
