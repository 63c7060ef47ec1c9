"""Writing shards: :func:`prepare_shards` cuts a folder of videos into fixed-rate segments and
stores them in WebDataset tar shards by a deterministic, resumable plan (see
:mod:`avscene.data.shards`); :func:`prepare_main` is its command-line front."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import io
import json
import math
import multiprocessing
import os
import tarfile
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from avscene.constants import PAPER_FPS, PAPER_FULL_SIZE, PAPER_SAMPLE_RATE, as_fps, frame_to_sample, seconds_to_frames
from avscene.data.shards.format import (DEFAULT_CLIPS_PER_SHARD, MIN_SEGMENT_S, PLAN_NAME, REPORT_NAME, SAMPLE_MEMBERS,
                                        SEGMENT_S, SHARD_FORMAT, SHARD_NAME)
from avscene.data.videos import VideoIndex, find_videos, index_videos
from avscene.files import atomic_path, remove_stale_temporaries, write_json
from avscene.media import MediaError, MediaInfo, read_clip
from avscene.media.codecs import DEFAULT_JPEG_Q, encode_flac, encode_jpegs


@dataclasses.dataclass(frozen=True)
class _SegmentJob:
    source: str  # path relative to the video folder (posix)
    start_frame: int
    n_frames: int

    @property
    def key(self) -> str:
        return f"{hashlib.blake2b(self.source.encode(), digest_size=6).hexdigest()}_{self.start_frame:07d}"


@dataclasses.dataclass(frozen=True)
class _Params:
    size: tuple[int, int]
    fit: str
    fps: Fraction
    sample_rate: int
    channels: int
    segment_frames: int
    min_segment_frames: int
    clips_per_shard: int
    jpeg_q: int
    seed: int

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["size"] = list(self.size)
        d["fps"] = f"{self.fps.numerator}/{self.fps.denominator}"
        return d


def _segments_of(info: MediaInfo, p: _Params) -> list[tuple[int, int]]:
    """(start_frame, n_frames) of the segments a video is cut into (see :mod:`avscene.data.shards`)."""
    avail = math.floor(Fraction(info.duration_s).limit_denominator(10**6) * p.fps) - 1  # one spare, as ShiftPairs
    out, start = [], 0
    while avail - start >= p.segment_frames:
        out.append((start, p.segment_frames))
        start += p.segment_frames
    if avail - start >= p.min_segment_frames:
        out.append((start, avail - start))
    return out


def _probe_one(path: str, min_duration_s: float) -> VideoIndex:
    return index_videos(path, min_duration_s=min_duration_s, need_audio=True)


def _encode_segment(video_path: Path, job: _SegmentJob, p: _Params) -> dict:
    """Read one segment from its video and encode it as a WebDataset sample (bytes only)."""
    n = job.n_frames
    clip = read_clip(video_path, float(job.start_frame / p.fps), float(n / p.fps) + 1e-6, fps=p.fps, size=p.size,
                     fit=p.fit, sample_rate=p.sample_rate, channels=p.channels, threads=1)
    n_samples = frame_to_sample(n, p.fps, p.sample_rate)
    if clip.n_frames != n or clip.n_samples < n_samples:
        raise MediaError(video_path, f"segment at frame {job.start_frame} read as {clip.n_frames} frames and "
                                     f"{clip.n_samples} samples, not {n} and {n_samples}")
    frames, audio = clip.frames, clip.audio[:n_samples]  # (T, H, W, 3), (N, C)
    jpegs = encode_jpegs(frames, p.jpeg_q)
    meta = {
        "source": job.source, "start_s": clip.start_s, "start_frame": job.start_frame,
        "fps": f"{p.fps.numerator}/{p.fps.denominator}", "sample_rate": p.sample_rate, "channels": p.channels,
        "n_frames": n, "n_samples": n_samples, "height": frames.shape[1], "width": frames.shape[2],
        "video_codec": "mjpeg", "jpeg_q": p.jpeg_q, "audio_codec": "flac", "frame_bytes": [len(j) for j in jpegs],
    }
    return {"__key__": job.key, "json": json.dumps(meta, separators=(",", ":")).encode(),
            "mjpeg": b"".join(jpegs), "flac": encode_flac(audio, p.sample_rate)}


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)  # fixed owner, mode and time: a rewritten shard is byte-identical
    info.size, info.mtime, info.mode, info.uname, info.gname = len(data), 0, 0o444, "avscene", "avscene"
    tar.addfile(info, io.BytesIO(data))


def _write_shard(out_dir: str, index: int, video_dir: str, jobs: list[_SegmentJob], p: _Params) -> dict:
    """Write shard ``index`` (tar, then its summary JSON), each atomically; one segment in
    memory at a time. Segments that fail to read are listed in the summary, not fatal."""
    name = SHARD_NAME.format(index)
    root = Path(video_dir)
    keys, failed = [], []
    with atomic_path(Path(out_dir) / f"{name}.tar") as tmp:
        with open(tmp, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for job in jobs:
                video = root / job.source if root.is_dir() else root
                try:
                    sample = _encode_segment(video, job, p)
                except MediaError as err:
                    failed.append({"path": str(video), "start_s": round(float(job.start_frame / p.fps), 6),
                                   "reason": err.reason})
                    continue
                for ext in SAMPLE_MEMBERS:
                    _add_member(tar, f"{job.key}.{ext}", sample[ext])
                keys.append(job.key)
    summary = {"shard": f"{name}.tar", "samples": len(keys), "keys": keys, "failed": failed}
    write_json(Path(out_dir) / f"{name}.json", summary)
    return summary


def _read_summary(out_dir: Path, index: int) -> dict | None:
    name = SHARD_NAME.format(index)
    if not (out_dir / f"{name}.tar").is_file():
        return None
    try:
        return json.loads((out_dir / f"{name}.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None  # the tar landed but its summary did not: write the shard again


def _refuse_other_plan(out_dir: Path, plan: dict) -> None:
    """Refuse to mix shards of two different plans in one folder."""
    path = out_dir / PLAN_NAME
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            old = None
        if old != json.loads(json.dumps(plan)):
            raise ValueError(f"{out_dir}: holds shards of a different plan (the videos or the settings changed since "
                             "they were written); give a new output folder or empty this one")
    elif any(out_dir.glob("shard-*.tar")):
        raise ValueError(f"{out_dir}: holds shards without a {PLAN_NAME}; give a new output folder")


#: How worker processes start: spawn, because the caller may hold threads (a training process,
#: CUDA) that fork would copy in an unusable state.
_START_METHOD = "spawn"


def _executor(workers: int) -> concurrent.futures.Executor | None:
    if workers <= 1:
        return None
    return concurrent.futures.ProcessPoolExecutor(max_workers=workers,
                                                  mp_context=multiprocessing.get_context(_START_METHOD))


def _settings(size, fit: str, fps, sample_rate: int, channels: int, clip_s: float, min_clip_s: float,
              clips_per_shard: int, jpeg_q: int, seed: int, workers: int) -> _Params:
    """The checked settings of :func:`prepare_shards` (its arguments of the same names)."""
    fps = as_fps(fps)
    hw = (int(size), int(size)) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    p = _Params(size=hw, fit=fit, fps=fps, sample_rate=int(sample_rate), channels=int(channels),
                segment_frames=seconds_to_frames(clip_s + 1e-6, fps),
                min_segment_frames=seconds_to_frames(min_clip_s + 1e-6, fps),
                clips_per_shard=int(clips_per_shard), jpeg_q=int(jpeg_q), seed=int(seed))
    if not 1 <= p.min_segment_frames <= p.segment_frames:
        raise ValueError(f"need 0 < min_clip_s <= clip_s, got {min_clip_s} and {clip_s}")
    if p.clips_per_shard < 1 or workers < 1:
        raise ValueError("clips_per_shard and workers must be >= 1")
    if not 2 <= p.jpeg_q <= 31:
        raise ValueError(f"jpeg_q must be within 2..31, got {jpeg_q}")
    if fit not in ("crop", "pad", "squash"):
        raise ValueError(f"fit must be 'crop', 'pad' or 'squash', got {fit!r}")
    return p


def _probe_videos(files: Sequence[Path], p: _Params, executor: concurrent.futures.Executor | None,
                  progress: bool) -> tuple[list[MediaInfo], list[dict]]:
    """Probe every file (in parallel with an executor): the videos with both streams and one
    segment's length, and the skipped files (``path``, ``reason``)."""
    min_duration_s = float((p.min_segment_frames + 1) / p.fps)
    args = [str(f) for f in files]
    if executor is None:
        results = map(_probe_one, args, [min_duration_s] * len(args))
    else:
        results = executor.map(_probe_one, args, [min_duration_s] * len(args), chunksize=8)
    videos: list[MediaInfo] = []
    skipped: list[dict] = []
    for result in tqdm(results, total=len(args), desc="probing videos", unit="file", disable=not progress):
        videos += result.videos
        skipped += [{"path": path, "reason": reason} for path, reason in result.skipped]
    return videos, skipped


def _segment_jobs(videos: Sequence[MediaInfo], root: Path, p: _Params, skipped: list[dict]) -> list[_SegmentJob]:
    """The segments of every video, in video order; a video too short for one is added to
    ``skipped``."""
    jobs: list[_SegmentJob] = []
    for info in videos:
        rel = Path(info.path).relative_to(root).as_posix() if root.is_dir() else Path(info.path).name
        segments = _segments_of(info, p)
        if not segments:
            skipped.append({"path": info.path, "reason": f"too short ({info.duration_s:.2f} s holds no "
                                                         f"{p.min_segment_frames}-frame segment)"})
        jobs += [_SegmentJob(rel, start, n) for start, n in segments]
    if len({j.key for j in jobs}) != len(jobs):
        raise ValueError("two videos hash to the same segment key; rename one of them")
    return jobs


def _deal_into_shards(jobs: list[_SegmentJob], p: _Params) -> list[list[_SegmentJob]]:
    """All segments permuted by ``p.seed`` and cut into shards of ``p.clips_per_shard``."""
    order = np.random.default_rng(p.seed).permutation(len(jobs))
    return [[jobs[i] for i in order[k : k + p.clips_per_shard]] for k in range(0, len(jobs), p.clips_per_shard)]


def _write_missing_shards(out: Path, root: Path, shards: list[list[_SegmentJob]], p: _Params,
                          executor: concurrent.futures.Executor | None, progress: bool) -> int:
    """Write the shards that have no finished summary yet (in parallel with an executor);
    returns how many were written."""
    todo = [i for i in range(len(shards)) if _read_summary(out, i) is None]
    bar = tqdm(total=len(todo), desc="writing shards", unit="shard", disable=not progress)
    if executor is None:
        for i in todo:
            _write_shard(str(out), i, str(root), shards[i], p)
            bar.update()
    else:
        futures = [executor.submit(_write_shard, str(out), i, str(root), shards[i], p) for i in todo]
        for future in concurrent.futures.as_completed(futures):
            future.result()
            bar.update()
    bar.close()
    return len(todo)


def _add_shard_summaries(out: Path, n_shards: int, report: dict) -> None:
    """Add every shard's path, sample count and failed segments to ``report``."""
    for i in range(n_shards):
        summary = _read_summary(out, i)
        report["shards"].append(str(out / summary["shard"]))
        report["samples"] += summary["samples"]
        report["failed_segments"] += summary["failed"]


def prepare_shards(
    video_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    size: int | tuple[int, int] = PAPER_FULL_SIZE,
    fit: str = "crop",
    fps: float | Fraction = PAPER_FPS,
    sample_rate: int = PAPER_SAMPLE_RATE,
    channels: int = 2,
    clip_s: float = SEGMENT_S,
    min_clip_s: float = MIN_SEGMENT_S,
    clips_per_shard: int = DEFAULT_CLIPS_PER_SHARD,
    jpeg_q: int = DEFAULT_JPEG_Q,
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
) -> dict:
    """Turn every video under ``video_dir`` into segments of ``clip_s`` seconds stored in
    WebDataset shards under ``out_dir`` (layout, format and plan: see :mod:`avscene.data.shards`).

    Args:
        size: stored frame ``(height, width)``, or a side for square frames (the paper: 256).
        fit: ``"crop"``, ``"pad"`` or ``"squash"``, as :func:`~avscene.media.read_clip`.
        fps, sample_rate, channels: the stored rates (the paper's by default).
        clip_s: length of a full segment (default :data:`SEGMENT_S`, 10.0 s).
        min_clip_s: shortest segment kept (tails and short videos; default 6.2 s).
        clips_per_shard: segments per shard (64 = roughly 150-400 MB).
        jpeg_q: MJPEG quantiser scale, 2 (finest) .. 31.
        seed: the permutation that deals segments to shards.
        workers: processes that probe files and write shards.

    Returns the report also written to ``out_dir/report.json``: ``shards`` (paths), ``samples``,
    ``videos``, ``written`` / ``already_done`` (shards this run wrote / found finished),
    ``skipped_files`` and ``failed_segments`` (each with its path and reason).

    Raises:
        MediaError: ``video_dir`` does not exist; ValueError: bad settings, no usable video, or
        ``out_dir`` holds shards of another plan.
    """
    p = _settings(size, fit, fps, sample_rate, channels, clip_s, min_clip_s, clips_per_shard, jpeg_q, seed, workers)
    root = Path(video_dir)
    files = find_videos(root)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)  # the shards a killed run was writing

    executor = _executor(workers)
    try:
        videos, skipped = _probe_videos(files, p, executor, progress)
        jobs = _segment_jobs(videos, root, p, skipped)
        shards = _deal_into_shards(jobs, p)
        plan = {"format": SHARD_FORMAT, "params": p.to_dict(),
                "shards": [[[j.source, j.start_frame, j.n_frames] for j in shard] for shard in shards]}
        report = {"video_dir": str(root), "out_dir": str(out), "params": p.to_dict(), "videos": len(videos),
                  "segments": len(jobs), "samples": 0, "shards": [], "written": 0, "already_done": 0,
                  "skipped_files": sorted(skipped, key=lambda d: d["path"]), "failed_segments": []}
        if not jobs:
            write_json(out / REPORT_NAME, report)
            raise ValueError(f"{root}: no usable videos ({len(files)} files, {len(skipped)} skipped; "
                             f"see {out / REPORT_NAME})")
        _refuse_other_plan(out, plan)
        write_json(out / PLAN_NAME, plan)
        report["written"] = _write_missing_shards(out, root, shards, p, executor, progress)
        report["already_done"] = len(shards) - report["written"]
    except BaseException:
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        raise
    if executor is not None:
        executor.shutdown()

    _add_shard_summaries(out, len(shards), report)
    write_json(out / REPORT_NAME, report)
    return report


def prepare_main(video_dir: str | os.PathLike, out_dir: str | os.PathLike, *, workers: int = 1,
                 progress: bool = True, **kwargs) -> int:
    """Command-line front of :func:`prepare_shards` (``kwargs`` go to it): prints a summary and
    returns the CLI's exit code: 0 all files used, 1 some files or segments skipped (listed in
    ``OUT/report.json``). Fatal problems raise MediaError / ValueError, which the CLI prints."""
    report = prepare_shards(video_dir, out_dir, workers=workers, progress=progress, **kwargs)
    print(f"{report['samples']} segments from {report['videos']} videos in {len(report['shards'])} shards under "
          f"{report['out_dir']} ({report['written']} written now, {report['already_done']} already done)")
    problems = report["skipped_files"] + report["failed_segments"]
    if problems:
        print(f"{len(report['skipped_files'])} files skipped, {len(report['failed_segments'])} segments failed "
              f"(reasons in {Path(report['out_dir']) / REPORT_NAME}):")
        for item in problems[:10]:
            print(f"  {item['path']}: {item['reason']}")
        if len(problems) > 10:
            print(f"  ... and {len(problems) - 10} more")
    return 1 if problems else 0
