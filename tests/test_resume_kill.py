"""``kill -9`` at the worst moments: a command killed while it writes its outputs leaves only
complete files, and the next run into the same folder removes what the killed one left unfinished
(temporary files, the outputs of the input it was writing); a training run killed at any moment
and started again with the same command ends bit-identical to one never killed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_click_video

from avscene.checkpoints import load_checkpoint, save_checkpoint
from avscene.files import is_temporary, remove_stale_temporaries
from avscene.media import MediaError, probe
from avscene.models import SeparationNet, ShiftNet, get_preset
from avscene.models.separation_net import get_preset as separation_preset


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Random tiny shift and separation checkpoints."""
    root = tmp_path_factory.mktemp("kill_models")
    torch.manual_seed(0)
    shift, separation = get_preset("tiny"), separation_preset("tiny")
    return {"shift": save_checkpoint(root / "shift.pt", {"task": "shift", "model_config": shift.to_dict(),
                                                         "model": ShiftNet(shift).state_dict()}),
            "separation": save_checkpoint(root / "sep.pt", {"task": "separation",
                                                            "model_config": separation.to_dict(),
                                                            "model": SeparationNet(separation).state_dict()})}


def _start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "avscene", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def _kill_when_writing(proc: subprocess.Popen, folder: Path, *, done: int = 0, timeout_s: float = 120.0) -> bool:
    """SIGKILL ``proc`` as soon as ``folder`` holds a temporary output file (one being written)
    and at least ``done`` finished ones; False if it finished first."""
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and time.monotonic() < deadline:
        names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
        writing = [n for n in names if is_temporary(n) and ".outputs-pending." not in n]
        if writing and sum(not n.startswith(".") for n in names) >= done:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.002)
    proc.communicate(timeout=timeout_s)
    return False


def _complete(path: Path) -> bool:
    """Whether an output file reads as a whole file of its kind."""
    if path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix == ".npy":
        np.load(path)
    elif path.suffix in (".mp4", ".wav"):
        try:
            return probe(path).duration_s > 0
        except MediaError:
            return False
    elif path.suffix == ".png":
        return path.read_bytes()[-8:] == b"IEND\xaeB`\x82"  # the PNG trailer, written last
    return True


@pytest.mark.parametrize("command", ["localize", pytest.param("separate", marks=pytest.mark.slow)])
def test_kill_9_mid_write_leaves_only_complete_files_and_the_next_run_cleans_up(tmp_path, models, command):
    video = make_click_video(tmp_path / "talk.mp4", fps=Fraction(25), sample_rate=16000, n_frames=50, click_frame=20)
    out = tmp_path / "out"
    model = models["shift" if command == "localize" else "separation"]
    argv = [command, str(video), "-o", str(out), "--model", str(model)]
    # killed while writing its second file: the first is finished, the input's set is not
    assert _kill_when_writing(_start(argv), out, done=1), f"{command} finished before it could be killed mid-write"
    left = sorted(out.iterdir())
    assert any(is_temporary(p) for p in left)  # what the kill interrupted
    finished = [p for p in left if not p.name.startswith(".")]
    assert finished and all(p.name.startswith("talk_") and _complete(p) for p in finished), finished

    done = subprocess.run([sys.executable, "-m", "avscene", *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.startswith(".")], names  # no temporary file, no marker
    # the killed input's unfinished outputs were removed, so its outputs came out whole, once, as talk_*
    assert all(n.startswith("talk_") and not n.startswith("talk_2") for n in names), names
    assert all(_complete(out / n) for n in names)


def test_stale_temporaries_of_live_processes_and_other_files_are_kept(tmp_path):
    live = tmp_path / f".a.json.tmp-{socket.gethostname()}-{os.getpid()}-abc123.json"
    other = tmp_path / ".hidden_config"
    dead_pid = _dead_pid()
    dead = tmp_path / f".b.json.tmp-{socket.gethostname()}-{dead_pid}-x_y9.json"
    elsewhere = tmp_path / f".c.json.tmp-another-host-{dead_pid}-abc.json"
    for p in (live, other, dead, elsewhere):
        p.write_text("{}")
    assert remove_stale_temporaries(tmp_path) == [dead]
    assert live.exists() and other.exists() and elsewhere.exists() and not dead.exists()


def _dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.slow
def test_training_killed_twice_resumes_bit_identical(tmp_path):
    """``train shift`` (tiny, 6 steps, a checkpoint every step): killed once while writing a
    checkpoint and once at a random moment, then run to the end, equals a run never killed:
    parameters, buffers, optimizer and schedule state, tensor by tensor."""
    from avscene.synth import SceneConfig, ensure_dataset
    from avscene.synth.worlds import SYNTHETIC_SYNC_WORLDS

    cfg = get_preset("tiny")
    data = ensure_dataset(tmp_path / "set", 4, 0, progress=False,
                          config=SceneConfig(task="sync", fps=cfg.fps, sample_rate=cfg.sample_rate, duration_s=2.0,
                                             width=48, height=48, **SYNTHETIC_SYNC_WORLDS["pulses"]))

    def argv(out: Path) -> list[str]:
        return ["train", "shift", "--data", str(data), "--out", str(out), "--preset", "tiny", "--steps", "6",
                "--batch-size", "2", "--workers", "0", "--ckpt-every", "1", "--log-every", "1", "--val-every", "3",
                "--n-val", "2", "--quiet"]

    subprocess.run([sys.executable, "-m", "avscene", *argv(tmp_path / "ref")], check=True, capture_output=True)
    run = tmp_path / "run"
    assert _kill_when_writing(_start(argv(run)), run)
    proc = _start(argv(run))
    try:
        proc.wait(timeout=float(np.random.default_rng(0).uniform(2.0, 6.0)))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    subprocess.run([sys.executable, "-m", "avscene", *argv(run)], check=True, capture_output=True)
    ref, got = load_checkpoint(tmp_path / "ref" / "checkpoint.pt"), load_checkpoint(run / "checkpoint.pt")
    assert got["step"] == ref["step"] == 6
    for key in ("model", "optimizer", "scheduler"):
        _assert_identical(ref[key], got[key], key)
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]


def _assert_identical(a, b, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_identical(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_outputs_of_an_input_a_killed_process_was_writing_are_removed_when_the_folder_is_opened(tmp_path):
    from avscene.files import OutputNames

    dead = _dead_pid()
    (tmp_path / "a_cam.mp4").write_text("complete, but its input's json never came")
    (tmp_path / f".a_cam.json.tmp-{socket.gethostname()}-{dead}-k1ll3d.json").write_text('{"half')
    (tmp_path / f".a.outputs-pending.tmp-{socket.gethostname()}-{dead}-abc.json").write_text(
        json.dumps({"outputs": ["a_cam.mp4", "a_cam.json"]}))
    (tmp_path / "b_cam.mp4").write_text("another input's, finished")
    names = OutputNames(tmp_path, ["_cam.mp4", "_cam.json"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b_cam.mp4"]
    assert names.claim("a.mp4") == "a"  # the name is free again
    with names.all_or_nothing("a"):
        markers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".a.outputs-pending.")]
        assert len(markers) == 1  # a marker while the outputs are written ...
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # ... and none after
