"""Sharded datasets: shards hold what read_clip reads, stay in sync, split across ranks and
workers without duplicates, are rewritten byte for byte, and bad files are reported."""

from __future__ import annotations

import json
import tarfile
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from avscene.constants import frame_to_sample
from avscene.data.shards import (
    Segment, ShardSegments, ShiftCutter, cut_shift_example, expand_shards, prepare_main, prepare_shards,
    shift_example_shards,
)
from avscene.data.shards import prepare as shards_module
from avscene.data.shift_pairs import ShiftSampling, augment_shift_example, draw_shift
from avscene.media import MediaError, read_clip, write_video
from avscene.media.codecs import encode_flac, encode_jpegs
from conftest import make_click_video, make_event_video

FPS, RATE = Fraction(30000, 1001), 21000
SEG, MIN_SEG = 76, 46  # frames: a 30-frame clip + largest / smallest shift (45 / 15) + 1 spare
SETTINGS = dict(size=36, clip_s=float(SEG / FPS), min_clip_s=float(MIN_SEG / FPS), clips_per_shard=2, progress=False)
CLICK_FRAME = 100


def _sampling(**kw) -> ShiftSampling:
    base = dict(n_frames=30, fps=FPS, sample_rate=RATE, crop_size=32, full_size=36, shift_range_s=(0.5, 1.5),
                augment=False)
    return ShiftSampling(**{**base, **kw})


def _onsets(audio_nc: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    loud = np.abs(audio_nc).max(axis=1) > threshold
    return np.flatnonzero(loud[1:] & ~loud[:-1]) + 1


def _flashes(frames: np.ndarray) -> np.ndarray:
    bright = frames.reshape(len(frames), -1).mean(axis=1) > 120
    return np.flatnonzero(bright[1:] & ~bright[:-1]) + 1


def _key_only(segment, rng) -> str:
    return segment.key


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """A click video (5 s, flash + click at frame 100) and 3 event videos (5 s each)."""
    folder = tmp_path_factory.mktemp("shard_videos")
    make_click_video(folder / "click.mp4", fps=FPS, sample_rate=RATE, n_frames=150, click_frame=CLICK_FRAME,
                     size=(48, 64))
    (folder / "events").mkdir()
    for i in range(3):
        make_event_video(folder / "events" / f"ev{i}.mp4", i)
    return folder


@pytest.fixture(scope="module")
def shards(videos, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("shards")
    return out, prepare_shards(videos, out, **SETTINGS)


def test_plan_cuts_videos_into_segments_with_tails(shards):
    out, report = shards
    # 150 frames -> 149 usable: one 76-frame segment + a 73-frame tail (>= 46), for 4 videos
    assert report["videos"] == 4 and report["segments"] == report["samples"] == 8
    assert len(report["shards"]) == 4 and not report["skipped_files"] and not report["failed_segments"]
    segments = list(ShardSegments(out, shuffle=False))
    assert sorted(s.n_frames for s in segments) == [73] * 4 + [76] * 4
    assert sorted({s.source for s in segments}) == ["click.mp4", "events/ev0.mp4", "events/ev1.mp4", "events/ev2.mp4"]
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))


def test_segments_match_read_clip_and_keep_sync(shards, videos):
    out, _ = shards
    segments = list(ShardSegments(out, shuffle=False))
    for seg in segments:
        assert seg.fps == FPS and seg.sample_rate == RATE and seg.channels == 2
        assert seg.frames.shape == (seg.n_frames, 36, 36, 3) and seg.frames.dtype == np.uint8
        assert seg.audio.shape == (frame_to_sample(seg.n_frames, FPS, RATE), 2) and seg.audio.dtype == np.float32
        assert seg.start_s == pytest.approx(seg.meta["start_frame"] / float(FPS))
        direct = read_clip(videos / seg.source, seg.start_s, float(seg.n_frames / FPS) + 1e-6, fps=FPS, size=36,
                           sample_rate=RATE, channels=2)
        diff = np.abs(direct.frames.astype(np.int16) - seg.frames)
        assert diff.mean() < 1.5 and diff.max() <= 24  # JPEG at qscale 3
        assert np.abs(direct.audio - seg.audio).max() <= 2 / 32768  # 16-bit FLAC: lossless at 16 bits
        assert np.array_equal(seg.read_frames(5, 9), seg.frames[5:9])

    click = [s for s in segments if s.source == "click.mp4" and s.meta["start_frame"] <= CLICK_FRAME
             < s.meta["start_frame"] + s.n_frames]
    assert len(click) == 1
    seg = click[0]
    k = CLICK_FRAME - seg.meta["start_frame"]  # 24 frames into the tail segment
    bright = seg.frames.reshape(seg.n_frames, -1).mean(axis=1) > 120
    assert int(np.argmax(bright)) == k
    onset = int(np.argmax(np.abs(seg.audio).max(axis=1) > 0.3))
    assert abs(onset - frame_to_sample(k, FPS, RATE)) <= round(0.003 * RATE)


def test_lazy_segment_decodes_only_what_is_asked(shards):
    out, _ = shards
    seg = next(iter(ShardSegments(out, shuffle=False, lazy=True)))
    assert seg._frames is None and seg._audio is None
    part = seg.read_frames(10, 40)  # (30, 36, 36, 3)
    assert part.shape == (30, 36, 36, 3) and seg._frames is None
    assert np.array_equal(part, seg.decode().frames[10:40])
    with pytest.raises(IndexError):
        seg.read_frames(0, seg.n_frames + 1)


def test_two_ranks_two_workers_read_every_segment_once(shards):
    out, report = shards
    summaries = [json.loads(Path(shard).with_suffix(".json").read_text()) for shard in report["shards"]]
    every = Counter(k for summary in summaries for k in summary["keys"])  # what prepare wrote
    assert len(every) == 8

    # the shard split: 2 ranks x 2 workers partition the shards, differently each epoch
    for epoch in (0, 1):
        parts = [ShardSegments(out, rank=r, world_size=2, epoch=epoch).shards_for(epoch, w, 2)
                 for r in range(2) for w in range(2)]
        assert sorted(u for p in parts for u in p) == sorted(report["shards"])
    p0 = [ShardSegments(out, rank=0, world_size=2).shards_for(e, 0, 2) for e in range(6)]
    assert len({tuple(p) for p in p0}) > 1

    # real DataLoader workers
    seen = Counter()
    for rank in range(2):
        ds = ShardSegments(out, rank=rank, world_size=2, seed=5, transform=_key_only)
        seen.update(DataLoader(ds, batch_size=None, num_workers=2))
    assert seen == every


def test_stream_is_a_function_of_seed_and_epoch(shards):
    out, _ = shards

    def keys(**kw):
        return list(ShardSegments(out, buffer=4, transform=_key_only, **kw))

    assert keys(seed=1) == keys(seed=1)
    assert sorted(keys(seed=1)) == sorted(keys(seed=1, epoch=1))
    assert len({tuple(keys(seed=1, epoch=e)) for e in range(4)}) > 1
    ds = ShardSegments(out, buffer=4, transform=_key_only, seed=1)
    ds.set_epoch(2)
    assert list(ds) == keys(seed=1, epoch=2)
    # repeat: the next epoch follows, reshuffled
    endless = iter(ShardSegments(out, buffer=4, transform=_key_only, seed=1, repeat=True))
    assert [next(endless) for _ in range(16)] == keys(seed=1) + keys(seed=1, epoch=1)


def test_shift_examples_from_shards(shards):
    out, _ = shards
    sampling = _sampling()
    lo, hi = sampling.shift_frames
    assert SEG == sampling.n_frames + hi + 1 and MIN_SEG == sampling.n_frames + lo + 1
    segments = {s.key: s for s in ShardSegments(out, shuffle=False)}
    examples = list(shift_example_shards(out, sampling, seed=3))
    assert sorted(e["key"] for e in examples) == sorted(segments)
    n_samples = sampling.n_samples
    flashes_checked = 0
    for ex in examples:
        seg = segments[ex["key"]]
        frames, aligned, shifted = ex["frames"].numpy(), ex["audio_aligned"].numpy().T, ex["audio_shifted"].numpy().T
        assert frames.shape == (30, 32, 32, 3) and aligned.shape == shifted.shape == (n_samples, 2)
        shift = ex["shift_frames"]
        assert lo <= abs(shift) <= hi
        # the clip and its aligned audio are frames [f1, f1 + 30) of the segment (centre crop) and
        # the audio from f1's sample on; the negative is the audio from f1 + shift's sample on
        crops = seg.frames[:, 2:34, 2:34]

        def audio_at(f):
            return seg.audio[frame_to_sample(f, FPS, RATE):][:n_samples]

        starts = [j for j in range(seg.n_frames - 29)
                  if np.array_equal(crops[j : j + 30], frames) and np.array_equal(audio_at(j), aligned)]
        assert starts, "the clip is not a window of the segment"
        assert any(0 <= j + shift and j + shift + 30 <= seg.n_frames - 1 and np.array_equal(audio_at(j + shift), shifted)
                   for j in starts)
        for f in _flashes(frames):  # every flash in the clip has its burst in the aligned audio
            expected = frame_to_sample(f, FPS, RATE)
            assert np.min(np.abs(_onsets(aligned) - expected)) <= 0.004 * RATE
            flashes_checked += 1
    assert flashes_checked >= 5

    # an example depends on (seed, epoch, key) only, not on who reads it
    again = {e["key"]: e for r in range(2)
             for e in shift_example_shards(out, sampling, seed=3, rank=r, world_size=2, buffer=2)}
    for ex in examples:
        assert all(torch.equal(ex[k], again[ex["key"]][k]) for k in ("frames", "audio_aligned", "audio_shifted"))
    other = {e["key"]: e["shift_frames"] for e in shift_example_shards(out, sampling, seed=3, epoch=1)}
    assert any(other[e["key"]] != e["shift_frames"] for e in examples)


def _memory_segment(n_frames: int = 80, side: int = 36) -> Segment:
    """A segment built in memory with left-right asymmetric frames and distinct stereo channels."""
    t, y, x = np.meshgrid(np.arange(n_frames), np.arange(side), np.arange(side), indexing="ij")
    frames = np.stack([(x * 7 + t * 3) % 256, y * 7, (x * y) % 256], axis=-1).astype(np.uint8)  # (T, H, W, 3)
    n_samples = frame_to_sample(n_frames, FPS, RATE)
    rng = np.random.default_rng(0)
    audio = np.stack([0.5 * rng.standard_normal(n_samples), 0.1 * rng.standard_normal(n_samples)], 1)
    jpegs = encode_jpegs(frames)
    meta = {"source": "memory", "start_s": 0.0, "start_frame": 0, "fps": "30000/1001", "sample_rate": RATE,
            "channels": 2, "n_frames": n_frames, "n_samples": n_samples, "height": side, "width": side,
            "frame_bytes": [len(j) for j in jpegs]}
    return Segment("memory_0000000", "memory", meta, b"".join(jpegs),
                   encode_flac(np.clip(audio, -1, 1).astype(np.float32), RATE))


def test_cropped_mirrored_decoding_equals_augmenting_decoded_frames():
    lazy, full = _memory_segment(), _memory_segment().decode()
    for box, mirror in (((0, 0, 36, 36), False), ((3, 1, 32, 32), False), ((2, 4, 32, 32), True)):
        top, left, h, w = box
        expected = full.frames[10:20, top : top + h, left : left + w]
        expected = expected[:, :, ::-1] if mirror else expected
        assert np.array_equal(lazy.read_frames(10, 20, box=box, mirror=mirror), expected)  # while decoding
        assert np.array_equal(full.read_frames(10, 20, box=box, mirror=mirror), expected)  # from decoded frames
    assert not np.array_equal(expected, expected[:, :, ::-1])

    # an example is ShiftPairs' draws (window, shift, crop, flip, stereo swap) applied to the segment
    sampling = _sampling(augment=True)
    n, n_samples = sampling.n_frames, sampling.n_samples
    flips = set()
    for seed in range(8):
        ex = cut_shift_example(_memory_segment(), sampling, np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        f1, shift = draw_shift(sampling, full.n_frames - 1, rng)
        a0, b0 = frame_to_sample(f1, FPS, RATE), frame_to_sample(f1 + shift, FPS, RATE)
        frames, aligned, shifted = augment_shift_example(sampling, full.frames[f1 : f1 + n], full.audio[a0 : a0 + n_samples],
                                                         full.audio[b0 : b0 + n_samples], rng)
        assert ex["shift_frames"] == shift
        assert np.array_equal(ex["frames"].numpy(), frames)
        assert np.array_equal(ex["audio_aligned"].numpy(), aligned.T)
        assert np.array_equal(ex["audio_shifted"].numpy(), shifted.T)
        flips.add(bool(np.array_equal(ex["audio_aligned"].numpy()[0], full.audio[a0 : a0 + n_samples, 1])))
    assert flips == {True, False}  # both branches of the flip (and its stereo swap) were checked


def test_shift_cutter_refuses_mismatched_settings(shards):
    out, _ = shards
    seg = next(iter(ShardSegments(out, shuffle=False, lazy=True)))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="prepare shards"):
        cut_shift_example(seg, _sampling(full_size=40), rng)
    with pytest.raises(ValueError, match="no shift example"):
        cut_shift_example(seg, _sampling(shift_range_s=(2.0, 3.0)), rng)
    with pytest.raises(ValueError, match="random-pair"):
        ShiftCutter(_sampling(negatives="random-pair"))(seg, rng)


def test_rerun_skips_finished_shards_and_rewrites_identically(videos, shards, tmp_path, monkeypatch):
    ref_dir, ref = shards
    # worker processes by fork: the same pool and pickled jobs as spawn, without a fresh torch import each
    monkeypatch.setattr(shards_module, "_START_METHOD", "fork")
    ref_bytes = {Path(p).name: Path(p).read_bytes() for p in ref["shards"]}

    out = tmp_path / "two_workers"
    report = prepare_shards(videos, out, workers=2, **SETTINGS)
    assert report["written"] == 4
    assert {Path(p).name: Path(p).read_bytes() for p in report["shards"]} == ref_bytes  # any worker count

    stamps = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    again = prepare_shards(videos, out, **SETTINGS)
    assert (again["written"], again["already_done"], again["samples"]) == (0, 4, 8)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items() if p.name.startswith("shard-"))

    (out / "shard-000002.tar").unlink()  # an interrupted run: one shard missing, one without summary
    (out / "shard-000003.json").unlink()
    resumed = prepare_shards(videos, out, **SETTINGS)
    assert (resumed["written"], resumed["already_done"]) == (2, 2)
    assert {Path(p).name: Path(p).read_bytes() for p in resumed["shards"]} == ref_bytes
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left

    with pytest.raises(ValueError, match="different plan"):
        prepare_shards(videos, out, **{**SETTINGS, "clips_per_shard": 3})


def test_bad_files_are_reported_not_fatal(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    make_click_video(src / "good.mp4", fps=FPS, sample_rate=RATE, n_frames=100, click_frame=10)
    make_click_video(src / "short.mp4", fps=FPS, sample_rate=RATE, n_frames=30, click_frame=10)
    write_video(src / "silent.mp4", np.zeros((100, 32, 32, 3), np.uint8), FPS)
    (src / "garbage.mp4").write_bytes(b"this is not a video\n" * 100)
    (src / "empty.mp4").write_bytes(b"")
    # audio ends after 3.5 s of a 5 s video: its second segment (2.5-5.0 s) cannot be read
    write_video(src / "early_end.mp4", np.zeros((150, 32, 32, 3), np.uint8), FPS,
                np.zeros((7 * RATE // 2, 2), np.float32), RATE)

    code = prepare_main(src, tmp_path / "out", **SETTINGS)
    assert code == 1
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    reasons = {Path(d["path"]).name: d["reason"] for d in report["skipped_files"]}
    assert set(reasons) == {"short.mp4", "silent.mp4", "garbage.mp4", "empty.mp4"}
    assert "too short" in reasons["short.mp4"] and "no audio" in reasons["silent.mp4"]
    assert "empty" in reasons["empty.mp4"] and "not a readable media file" in reasons["garbage.mp4"]
    failed = report["failed_segments"]
    assert len(failed) == 1 and Path(failed[0]["path"]).name == "early_end.mp4"
    assert failed[0]["start_s"] == pytest.approx(float(SEG / FPS)) and "end of the audio" in failed[0]["reason"]
    # 100 frames: one 76-frame segment (the 23-frame tail is too short); early_end: its first segment
    sources = Counter(s.source for s in ShardSegments(tmp_path / "out", lazy=True))
    assert sources == {"good.mp4": 1, "early_end.mp4": 1} and report["samples"] == 2
    assert "4 files skipped" in capsys.readouterr().out

    with pytest.raises(ValueError, match="no usable videos"):
        prepare_shards(src / "garbage.mp4", tmp_path / "none", **SETTINGS)
    with pytest.raises(MediaError, match="no such file"):
        prepare_shards(tmp_path / "missing", tmp_path / "none", **SETTINGS)


def test_broken_shards_raise_or_are_skipped(shards, tmp_path):
    out, report = shards
    data = Path(report["shards"][0]).read_bytes()
    (tmp_path / "a.tar").write_bytes(data[: len(data) // 2])  # truncated inside a sample
    (tmp_path / "b.tar").write_bytes(Path(report["shards"][1]).read_bytes())
    with tarfile.open(tmp_path / "c.tar", "w") as tar:  # a tar that is not ours
        (tmp_path / "x.txt").write_text("hello")
        tar.add(tmp_path / "x.txt", arcname="k1.txt")
    with pytest.raises(MediaError, match="a.tar: unreadable shard data"):
        list(ShardSegments(tmp_path, shuffle=False))
    with pytest.warns(UserWarning, match="skipping unreadable"):
        got = list(ShardSegments(tmp_path, shuffle=False, errors="skip"))
    assert 2 <= len(got) <= 3 and all(s.frames.shape[1:] == (36, 36, 3) for s in got)


def test_expand_shards(shards, tmp_path):
    out, report = shards
    assert expand_shards(out) == sorted(report["shards"])
    assert expand_shards(str(out / "shard-{000000..000001}.tar")) == sorted(report["shards"])[:2]
    assert expand_shards("pipe:cat x.tar") == ["pipe:cat x.tar"]
    with pytest.raises(MediaError, match="no such shard"):
        expand_shards(out / "shard-999999.tar")
    with pytest.raises(MediaError, match="no .tar shards"):
        expand_shards(tmp_path)
