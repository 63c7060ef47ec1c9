"""``avscene train action`` and ``avscene classify`` as a user meets them."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest
import torch

from avscene import cli
from avscene.checkpoints import load_checkpoint, save_checkpoint
from avscene.models import ShiftNet, get_preset
from avscene.synth import ACTION_CLASSES


@pytest.fixture(scope="module")
def action_run(tmp_path_factory) -> tuple[Path, Path, str]:
    """A tiny action run fine-tuned from a (random) tiny shift checkpoint on a generated synthetic
    set (one scene per class): the run folder, the checkpoint and what the command printed."""
    root = tmp_path_factory.mktemp("action_cli")
    cfg = get_preset("tiny")
    torch.manual_seed(0)
    save_checkpoint(root / "shift.pt", {"task": "shift", "model_config": cfg.to_dict(),
                                        "model": ShiftNet(cfg).state_dict(), "step": 0})
    run = root / "run"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["train", "action", "--data", "synthetic", "--out", str(run), "--init", str(root / "shift.pt"),
                         "--synthetic-per-class", "1", "--steps", "3", "--batch-size", "4", "--workers", "0",
                         "--log-every", "1", "--n-val", "4", "--eval-clips", "2", "--quiet"])
    assert code == 0
    return run, run / "checkpoint.pt", out.getvalue()


def test_train_action_writes_checkpoint_logs_and_evaluation(action_run):
    run, ckpt, printed = action_run
    payload = load_checkpoint(ckpt)
    assert payload["task"] == "action" and payload["step"] == 3
    config = payload["model_config"]
    assert config["class_names"] == list(ACTION_CLASSES)
    assert config["shift"]["stem_width"] == get_preset("tiny").stem_width  # the checkpoint's architecture
    assert config["backbone_init"].endswith("shift.pt")
    for name in ("log.json", "log.csv", "curves.png", "config.json", "confusion.png"):
        assert (run / name).is_file(), name
    assert (run / "synthetic" / "train" / "manifest.json").is_file() and (run / "synthetic" / "val").is_dir()
    evaluation = json.loads((run / "eval.json").read_text())
    assert evaluation["n_videos"] == len(ACTION_CLASSES) and evaluation["n_clips"] == 2
    assert 0 <= evaluation["top1"] <= evaluation["top5"] <= 1
    assert len(evaluation["confusion"]) == len(ACTION_CLASSES)
    assert re.search(r"validation: top-1 \d+\.\d%, top-5 \d+\.\d%", printed)
    assert f"checkpoint: {ckpt}" in printed


def test_train_action_from_scratch_on_a_set_on_disk(tmp_path, capsys, action_run):
    run, _, _ = action_run
    code = cli.main(["train", "action", "--data", str(run / "synthetic" / "train"), "--layout", "synthetic",
                     "--init", "scratch", "--preset", "tiny", "--out", str(tmp_path / "scratch"), "--steps", "1",
                     "--batch-size", "2", "--workers", "0", "--n-val", "2", "--eval-clips", "1", "--quiet"])
    assert code == 0 and "validation: top-1" in capsys.readouterr().out
    payload = load_checkpoint(tmp_path / "scratch" / "checkpoint.pt")
    assert payload["model_config"]["backbone_init"] is None
    assert json.loads((tmp_path / "scratch" / "eval.json").read_text())["init"] == "scratch"


def test_train_action_from_a_checkpoint_of_another_task_is_a_one_line_error(tmp_path, capsys, action_run):
    run, ckpt, _ = action_run
    code = cli.main(["train", "action", "--data", str(run / "synthetic" / "train"), "--init", str(ckpt),
                     "--out", str(tmp_path / "bad"), "--quiet"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_ERROR and err.count("\n") == 1 and "initialise from a shift checkpoint" in err


def _classify(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["classify", *args])
    captured = capsys.readouterr()
    err = captured.err
    if err.startswith("classify: network "):  # a command that loaded its network names it first
        err = err.partition("\n")[2]
    return code, captured.out, err


def test_classify_prints_top_k_and_writes_json(action_run, capsys, tmp_path):
    run, ckpt, _ = action_run
    videos = sorted((run / "synthetic" / "val").glob("*.mp4"))[:2]
    code, out, err = _classify(capsys, *map(str, videos), "--model", str(ckpt), "--top-k", "3", "--clips", "2",
                               "--json", str(tmp_path / "out" / "classes.json"))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 2
    names = "|".join(ACTION_CLASSES)
    for video, line in zip(videos, lines):
        assert re.fullmatch(rf"{re.escape(str(video))}: ({names}) \d\.\d\d, ({names}) \d\.\d\d, ({names}) \d\.\d\d", line)
    entries = json.loads((tmp_path / "out" / "classes.json").read_text())
    assert [e["path"] for e in entries] == [str(v) for v in videos]
    for e in entries:
        probs = [t["prob"] for t in e["top"]]
        assert len(e["top"]) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
        assert e["label"] == e["top"][0]["label"] and e["top"][0]["label"] in ACTION_CLASSES
        assert e["n_clips"] == 2 and e["clip_starts_s"][0] == 0.0


def test_classify_runs_on_the_real_clips(action_run, real_clips, capsys, tmp_path):
    """Smoke: real footage of other rates, sizes and channel layouts, given as a folder."""
    _, ckpt, _ = action_run
    code, out, err = _classify(capsys, str(real_clips[0].parent), "--model", str(ckpt), "--top-k", "2",
                               "--json", str(tmp_path / "real.json"))
    assert code == 0 and err == ""
    entries = json.loads((tmp_path / "real.json").read_text())
    assert sorted(e["path"] for e in entries) == sorted(map(str, real_clips))
    for e in entries:
        assert len(e["top"]) == 2 and e["top"][0]["label"] in ACTION_CLASSES and e["n_clips"] >= 1


def test_classify_reports_a_bad_file_in_one_line_and_goes_on(action_run, capsys, tmp_path):
    run, ckpt, _ = action_run
    good = sorted((run / "synthetic" / "val").glob("*.mp4"))[0]
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00not a video" * 50)
    code, out, err = _classify(capsys, str(bad), str(good), "--model", str(ckpt), "--clips", "1",
                               "--json", str(tmp_path / "classes.json"))
    assert code == cli.EXIT_SOME_FAILED
    assert err.count("\n") == 1 and err.startswith(f"error: {bad}: ")
    assert out.startswith(f"{good}: ") and out.count("\n") == 1
    entries = json.loads((tmp_path / "classes.json").read_text())
    assert entries[0]["path"] == str(bad) and "error" in entries[0] and entries[1]["top"]


def test_classify_with_a_shift_checkpoint_is_a_clear_error(action_run, capsys, tmp_path):
    cfg = get_preset("tiny")
    save_checkpoint(tmp_path / "shift.pt", {"task": "shift", "model_config": cfg.to_dict(),
                                            "model": ShiftNet(cfg).state_dict(), "step": 0})
    run, _, _ = action_run
    good = sorted((run / "synthetic" / "val").glob("*.mp4"))[0]
    code, _, err = _classify(capsys, str(good), "--model", str(tmp_path / "shift.pt"))
    assert code == cli.EXIT_ERROR and "not an action checkpoint" in err and err.count("\n") == 1
