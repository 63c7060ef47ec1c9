"""What the media fuzzer (benchmarks/fuzz_media.py) found, kept: every file it saved in
tests/data/fuzz reads as a command reads it (probe, a window from the start, a window after a
seek, the whole soundtrack) with a result or a MediaError, never another exception, a crash or a
hang; the bugs behind them stay fixed; and a short deterministic fuzz run finds nothing new."""

from __future__ import annotations

import hashlib
import json
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from avscene.media import MediaError, NoStreamError, probe, read_clip
from avscene.media.isolate import DecodeWorker

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import fuzz_media  # noqa: E402

FUZZ_DATA = Path(__file__).resolve().parent / "data" / "fuzz"
REPRODUCERS = sorted(FUZZ_DATA.glob("*.*"))


@pytest.fixture(scope="module")
def worker():
    with DecodeWorker(stall_s=20, time_limit_s=60, memory_limit=fuzz_media.MEMORY_LIMIT) as w:
        yield w


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, bytes]:
    return fuzz_media.make_sources(tmp_path_factory.mktemp("fuzz-sources"))


@pytest.mark.parametrize("path", REPRODUCERS, ids=[p.name for p in REPRODUCERS])
def test_every_saved_case_reads_or_fails_clearly(worker, path: Path):
    outcome, detail = fuzz_media.run_case(worker, path)
    assert outcome in ("ok", "clear"), f"{path.name}: {outcome}: {detail}"


def _no_decoder(path: Path, kind: str) -> bool:
    with av.open(str(path)) as container:
        return any(s.codec_context is None for s in getattr(container.streams, kind))


def test_a_stream_without_a_decoder_is_not_used():
    # Bit flips in a codec id left a stream FFmpeg has no decoder for: probe used to fail with
    # AttributeError on its missing codec context.
    lost_audio = FUZZ_DATA / "mp4-header_field-seed1-case145.mp4"
    assert _no_decoder(lost_audio, "audio")
    info = probe(lost_audio)
    assert info.has_video and not info.has_audio
    with pytest.raises(NoStreamError, match="has no usable audio stream \\(no decoder for its audio stream's codec\\)"):
        read_clip(lost_audio, 0.0, 0.5)
    lost_video = FUZZ_DATA / "mkv-bitflip-seed1-case426.mkv"
    assert _no_decoder(lost_video, "video")
    assert not probe(lost_video).has_video
    only_stream = FUZZ_DATA / "wav-header_field-seed1-case174.wav"
    with pytest.raises(MediaError, match="has no usable video or audio stream .*no decoder for its audio"):
        probe(only_stream)


def test_audio_whose_layout_changes_mid_stream_is_read_whole():
    # A byte run in an MPEG-TS turned stereo MP2 frames into mono ones half-way: the resampler
    # used to raise "Frame does not match AudioResampler setup".
    path = FUZZ_DATA / "ts-byte_run-seed1-case1133.ts"
    with av.open(str(path)) as container:
        layouts = {frame.layout.name for frame in container.decode(audio=0)}
    assert layouts == {"stereo", "mono"}
    clip = read_clip(path, 0.1, 0.8, video=False, sample_rate=16000, channels=2)
    assert clip.audio.shape == (12800, 2) and np.abs(clip.audio).max() > 0.05


def test_a_seek_into_a_long_gop_mpeg_ts_reads_the_frames_a_full_read_gives(tmp_path):
    # A TS has no index: a seek lands after the only keyframe, no frame decodes, and the window
    # was refused as "runs past the end of the video (0.000 s)". The reader now backs off further.
    path = fuzz_media._encode(tmp_path / "long_gop.ts", "mpegts", "mpeg2video", "mp2", rate=32000)
    with av.open(str(path)) as container:
        assert sum(p.is_keyframe for p in container.demux(video=0) if p.size) == 1
    full = read_clip(path, 0.0, 1.0, fps=10, audio=False).frames  # (10, 24, 32, 3), frame k at k / 10 s
    for first in (3, 5, 8):
        window = read_clip(path, first / 10, 0.2, fps=10, audio=False).frames
        assert np.array_equal(window, full[first : first + 2]), first


def test_sources_and_mutations_are_deterministic(sources, tmp_path):
    again = fuzz_media.make_sources(tmp_path / "again")
    assert again == sources
    for case, fmt, kind in fuzz_media.plan(25, seed=3):
        assert fuzz_media.mutate(sources, fmt, kind, 3, case) == fuzz_media.mutate(again, fmt, kind, 3, case)


def test_a_short_fuzz_run_finds_no_crash_hang_or_traceback(sources):
    summary = fuzz_media.fuzz(sources, 100, seed=11, workers=1, stall_s=20, time_limit_s=60, progress=False)
    bad = {o: summary["outcomes"][o] for o in ("traceback", "crash", "hang")}
    assert bad == {"traceback": 0, "crash": 0, "hang": 0}, summary["reproducers"]
    assert summary["outcomes"]["ok"] > 0 and summary["outcomes"]["clear"] > 0  # the mutations bite, not all


def test_read_like_the_commands_reads_a_valid_file(tmp_path, sources):
    for fmt, data in sources.items():
        path = tmp_path / f"valid.{fmt}"
        path.write_bytes(data)
        steps = fuzz_media.read_like_the_commands(str(path))
        assert steps == ["ok"] * (2 + probe(path).has_audio), (fmt, steps)
    assert Fraction(probe(tmp_path / "valid.mp4").fps) == 10


#: Cases of the committed 10^4-case run (benchmarks/results/fuzz_media.json, seed 0) that are kept
#: as mutations rather than files: each is remade from the bit-exact sources.
REMADE_CASES = [("wav", "header_field", 0, 2999), ("wav", "header_field", 0, 4199), ("wav", "header_field", 0, 7999),
                ("wav", "header_field", 0, 8524)]


@pytest.mark.parametrize("fmt, kind, seed, case", REMADE_CASES)
def test_remade_cases_of_the_committed_run_read_or_fail_clearly(worker, sources, tmp_path, fmt, kind, seed, case):
    run = json.loads((Path(__file__).resolve().parents[1] / "benchmarks/results/fuzz_media.json").read_text())
    if hashlib.sha256(sources[fmt]).hexdigest() != run["source_sha256"][fmt]:
        pytest.skip(f"this PyAV / FFmpeg writes another {fmt} source than the committed run's")
    path = tmp_path / f"case{case}.{fmt}"
    path.write_bytes(fuzz_media.mutate(sources, fmt, kind, seed, case))
    outcome, detail = fuzz_media.run_case(worker, path)
    assert outcome in ("ok", "clear"), f"{path.name}: {outcome}: {detail}"


def test_a_header_claiming_more_than_8_channels_is_a_clear_error():
    # A WAV header edit claimed 256 channels: reading at the source's channel count raised
    # KeyError from the channel-layout table.
    path = FUZZ_DATA / "wav-header_field-seed0-case1424.wav"
    assert probe(path).channels > 8
    with pytest.raises(MediaError, match="claims 256 channels; a clip keeps at most 8"):
        read_clip(path, video=False)
