"""Decoding in a worker process (avscene.media.isolate): a crash or a hang of the decoder becomes a
clear error naming the file, the worker comes back for the next file, and a probe or a clip read in
the worker gives what it gives in-process."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from avscene import cli
from avscene.cli import _run_batch
from avscene.media import MediaError, probe, read_clip
from avscene.media.errors import DecoderCrashError, DecoderStallError
from avscene.media.isolate import DecodeWorker, active_worker, isolated_decoding, tick
from avscene.media.probe import is_known_input


# Module-level, so that the worker can import them by name.
def segfault(path):
    os.kill(os.getpid(), signal.SIGSEGV)


def hang(path):
    time.sleep(600)  # no tick(): as a decoder stuck in C would be


def busy(path, seconds: float):
    """Works for ``seconds``, reporting progress as a decoder does per packet."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        tick()
        time.sleep(0.01)
    return os.getpid()


def explode(path):
    raise KeyError("no such table entry")


def pid(path):
    return os.getpid()


def test_a_crash_costs_the_call_and_the_worker_comes_back():
    with DecodeWorker(stall_s=30) as worker:
        first = worker.call(pid, "a.mp4")
        with pytest.raises(DecoderCrashError, match=r"^bad\.mp4: the decoder crashed \(SIGSEGV\) reading this file"):
            worker.call(segfault, "bad.mp4")
        second = worker.call(pid, "c.mp4")
    assert first != second and worker.starts == 2


def test_a_stalled_decoder_is_stopped_after_the_stall_timeout():
    with DecodeWorker(stall_s=1.0) as worker:
        worker.call(pid, "warm.mp4")  # start the worker before timing
        t0 = time.monotonic()
        with pytest.raises(DecoderStallError, match=r"^stuck\.ts: the decoder made no progress for 1 s"):
            worker.call(hang, "stuck.ts")
        assert time.monotonic() - t0 < 8
        assert worker.call(pid, "next.mp4") > 0


def test_a_long_call_that_makes_progress_is_not_stopped():
    with DecodeWorker(stall_s=1.5) as worker:  # progress every 0.5 s, 1 s of slack for a busy machine
        assert worker.call(busy, "long.wav", 3.0) > 0
        assert worker.starts == 1


def test_a_time_limit_stops_a_call_that_never_ends_even_with_progress():
    with DecodeWorker(stall_s=5.0, time_limit_s=1.0) as worker:
        with pytest.raises(DecoderStallError, match=r"^loop\.mkv: the decoder did not finish within 1 s"):
            worker.call(busy, "loop.mkv", 30)
        assert worker.call(pid, "next.mp4") > 0 and worker.starts == 2


def test_errors_cross_the_process_boundary_unchanged(tmp_path):
    not_media = tmp_path / "notes.mp4"
    not_media.write_text("not a video")
    with pytest.raises(MediaError) as here:
        probe(not_media)
    with isolated_decoding(enabled=True) as worker:
        assert worker is not None and active_worker() is worker
        with pytest.raises(MediaError) as there:
            probe(not_media)
        with pytest.raises(KeyError) as other:
            worker.call(explode, "x.mp4")
    assert type(there.value) is type(here.value) and str(there.value) == str(here.value)
    assert there.value.path == str(not_media)
    assert any("in the decode worker" in note for note in other.value.__notes__)  # the child's traceback


def test_probe_and_read_clip_give_the_same_in_the_worker(click_video: Path):
    info = probe(click_video)
    clip = read_clip(click_video, 0.2, 0.5, size=24, sample_rate=16000, channels=1)
    with isolated_decoding(enabled=True) as worker:
        assert probe(click_video) == info
        isolated = read_clip(click_video, 0.2, 0.5, size=24, sample_rate=16000, channels=1)
        assert worker.starts == 1
    assert np.array_equal(isolated.frames, clip.frames) and np.array_equal(isolated.audio, clip.audio)
    assert is_known_input(click_video)  # the writers still refuse to replace an input read by the worker


def test_isolation_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("AVSCENE_ISOLATE_DECODER", "0")
    with isolated_decoding() as worker:
        assert worker is None and active_worker() is None


def test_a_bad_stall_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("AVSCENE_DECODER_STALL_S", "soon")
    with pytest.raises(ValueError, match="AVSCENE_DECODER_STALL_S"):
        with isolated_decoding(enabled=True):
            pass


def test_a_batch_goes_on_after_a_decoder_crash(tmp_path, capsys):
    files = [tmp_path / name for name in ("a.mp4", "b.mp4", "c.mp4")]
    for f in files:
        f.write_bytes(b"\0")

    def work(path: Path):
        worker = active_worker()
        return worker.call(segfault if path.name == "b.mp4" else pid, path)

    outcomes = _run_batch([tmp_path], work)
    errors = {path.name: error for path, _, error in outcomes}
    assert errors["a.mp4"] is None and errors["c.mp4"] is None
    assert "the decoder crashed (SIGSEGV)" in errors["b.mp4"] and str(files[1]) in errors["b.mp4"]
    assert "b.mp4: the decoder crashed (SIGSEGV)" in capsys.readouterr().err


def test_the_probe_command_reads_through_the_worker(click_video: Path, tmp_path, capsys):
    junk = tmp_path / "junk.mkv"
    junk.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(200))
    assert cli.main(["probe", str(click_video), str(junk)]) == cli.EXIT_SOME_FAILED
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[0])["path"] == str(click_video)
    assert err.startswith(f"error: {junk}: ")
