"""Every file of the shared edge-case corpus (``../shared/tools/make-bad-corpus.py``: odd rates and
sizes, VFR, 1-8 channels, 8-192 kHz, many containers and codecs, truncations, bit flips, lying
headers, not-media) is described and read by the media layer as its manifest expects, or gives a
clear :class:`MediaError`: never another exception, and never a changed input."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from avscene.media import MediaError, probe, read_clip

TOOL = Path(__file__).resolve().parents[2] / "shared" / "tools" / "make-bad-corpus.py"


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    if not TOOL.exists():
        pytest.skip(f"{TOOL} not found (the shared folder beside the checkout)")
    out = tmp_path_factory.mktemp("corpus")
    subprocess.run([sys.executable, str(TOOL), str(out)], check=True, capture_output=True, timeout=600)
    return out, json.loads((out / "manifest.json").read_text())


def _cases(manifest: dict) -> list[dict]:
    """The cases a test process can run: not the FIFO (opening one blocks; the media layer refuses
    it before opening, see test_media), not the unreadable file when running as root."""
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    return [c for c in manifest["cases"] if c.get("kind") != "fifo" and not (root and c.get("skip_if_root"))]


def _read_start(path: Path) -> str:
    """'ok' if a short window from the start reads (as much of each stream as the file has),
    'error' for a MediaError; anything else propagates and fails the test."""
    info = probe(path)
    try:
        read_clip(path, 0.0, min(1.0, max(0.05, info.duration_s / 2)), fps=30000 / 1001 if info.has_video else None,
                  size=32 if info.has_video else None, sample_rate=21000 if info.has_audio else None,
                  channels=2 if info.has_audio else None, video=info.has_video, audio=info.has_audio)
    except MediaError:
        return "error"
    return "ok"


def test_every_case_is_read_as_expected_or_refused_clearly(corpus):
    root, manifest = corpus
    wrong = []
    for case in _cases(manifest):
        path = root / case["file"]
        try:
            got = _read_start(path)
        except MediaError:
            got = "error"
        if case["expect"] == "decode" and got != "ok":
            wrong.append(f"{case['file']}: expected to decode ({case['why']})")
        if case["expect"] == "error" and got == "ok" and not case.get("lenient"):
            wrong.append(f"{case['file']}: expected a clear error ({case['why']})")
    assert not wrong, "\n".join(wrong)


def test_inputs_are_never_modified(corpus):
    root, manifest = corpus
    for case in _cases(manifest):
        path = root / case["file"]
        if case.get("sha256") and path.is_file():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == case["sha256"], case["file"]


# -- every command on the corpus ------------------------------------------------------------------

#: The default run's cases: healthy files of the families that once failed some command (Matroska
#: with 192 kHz PCM, WebM with VP8, MPEG-TS, 7.1, a WAV without video) and a broken one; more
#: broken ones in a user's run below (the slow run takes every case).
DEFAULT_CASES = ("sr_192000_pcm.mkv", "webm_vp8_opus.webm", "mpegts_h264_aac.ts", "ch_7.1.mp4", "audio_only.wav",
                 "truncated_50pct.mp4")

#: What each command writes into its output folder for one input (``sync`` and ``classify`` write
#: their JSON, given with ``--json``, outside it).
OUTPUTS = {"localize": ("_cam.mp4", "_cam.npy", "_cam.json", "_sheet.png"),
           "separate": ("_on.wav", "_off.wav", "_separation.json")}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Random-weight tiny checkpoints for every command: shift (sync, localize), separation, action."""
    import torch

    from avscene.checkpoints import save_checkpoint
    from avscene.models import ActionNet, ActionNetConfig, SeparationNet, ShiftNet, get_preset
    from avscene.models.separation_net import get_preset as separation_preset

    root = tmp_path_factory.mktemp("tiny_models")
    torch.manual_seed(0)
    shift, separation = get_preset("tiny"), separation_preset("tiny")
    action = ActionNetConfig(shift, 3, class_names=("a", "b", "c"))
    payloads = {"shift": {"model_config": shift.to_dict(), "model": ShiftNet(shift).state_dict()},
                "separation": {"model_config": separation.to_dict(), "model": SeparationNet(separation).state_dict()},
                "action": {"model_config": action.to_dict(), "model": ActionNet.from_config(action).state_dict()}}
    return {task: save_checkpoint(root / f"{task}.pt", {"task": task, **payload}) for task, payload in payloads.items()}


def _argv(command: str, path: Path, out: Path, models: dict[str, Path]) -> list[str]:
    """``command`` on one input, as fast as it goes with a tiny model."""
    return {"sync": ["sync", str(path), "--model", str(models["shift"]), "--json", str(out.with_suffix(".json")),
                     "--max-windows", "1", "--max-offset-s", "0.3"],
            "localize": ["localize", str(path), "-o", str(out), "--model", str(models["shift"]), "--max-windows", "2"],
            "separate": ["separate", str(path), "-o", str(out), "--model", str(models["separation"]), "--no-plot",
                         "--hop-frames", "7", "--batch-size", "64"],
            "classify": ["classify", str(path), "--model", str(models["action"]), "--n-clips", "2", "--json",
                         str(out.with_suffix(".json"))]}[command]


def _main(argv: list[str]) -> tuple[int | str, str]:
    """``avscene ARGV`` in this process: its exit code (or the exception that escaped ``main``, a
    traceback for a user) and what it printed on stderr."""
    import contextlib
    import io
    import traceback

    from avscene import cli

    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = cli.main(argv)
    except BaseException:  # noqa: BLE001 - whatever escapes is the failure this test looks for
        return "traceback", err.getvalue() + traceback.format_exc()
    return code, err.getvalue()


def _problems(case: dict, command: str, code, stderr: str, path: Path, out: Path) -> list[str]:
    """What is wrong with ``command``'s run on ``case`` (empty: the expected result or a clear error)."""
    problems = []
    if code not in (0, 1) or "Traceback" in stderr:
        return [f"exit {code}: {stderr.strip()[-600:]}"]
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    if code == 1 and not any(str(path) in line for line in errors):
        problems.append(f"exit 1 without an error line naming the file: {stderr.strip()[-300:]}")
    if code == 1 and case["expect"] == "decode" and case.get("window_4p2s") == "ok":
        problems.append(f"a healthy file refused ({case['why']}): {errors}")
    if code == 0 and case["expect"] == "error" and not case.get("lenient"):
        problems.append(f"a broken file accepted ({case['why']})")
    written = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if [n for n in written if n.startswith(".")]:
        problems.append(f"temporary files left: {written}")
    if code == 1 and written:
        problems.append(f"outputs left after an error: {written}")
    wanted = [path.stem + s for s in OUTPUTS.get(command, ())]
    if code == 0 and not set(wanted) <= set(written):
        problems.append(f"missing outputs: {sorted(set(wanted) - set(written))}")
    return problems


def _commands_on(cases: list[dict], root: Path, models: dict[str, Path], tmp: Path) -> list[str]:
    wrong = []
    for i, case in enumerate(cases):
        path = root / case["file"]
        for command in ("sync", "localize", "separate", "classify"):
            out = tmp / command / f"case{i:03d}"
            code, stderr = _main(_argv(command, path, out, models))
            wrong += [f"{command} {case['file']}: {p}" for p in _problems(case, command, code, stderr, path, out)]
    return wrong


def test_every_command_on_a_case_of_each_kind(corpus, tiny_models, tmp_path):
    root, manifest = corpus
    cases = [c for c in _cases(manifest) if c["file"] in DEFAULT_CASES]
    assert len(cases) == len(DEFAULT_CASES)
    wrong = _commands_on(cases, root, tiny_models, tmp_path)
    assert not wrong, "\n".join(wrong)
    test_inputs_are_never_modified(corpus)
    # separate says what it did with the sound: 192 kHz PCM gives a 192 kHz wav and a 96 kHz mp4
    # (AAC's highest rate), 7.1 is heard downmixed and comes out mono
    index = {c["file"]: i for i, c in enumerate(cases)}
    hi_res = _separation_audio(tmp_path / "separate" / f"case{index['sr_192000_pcm.mkv']:03d}")
    assert hi_res["wav_sample_rate"] == 192000 and hi_res["mp4_sample_rate"] == 96000 and "96000" in hi_res["mp4_note"]
    surround = _separation_audio(tmp_path / "separate" / f"case{index['ch_7.1.mp4']:03d}")
    assert surround["input"] == {"channels": 8, "layout": "7.1", "sample_rate": 48000}
    assert surround["estimates"]["channels"] == 1 and "mp4_note" not in surround


def test_a_user_sees_one_error_line_per_bad_file_never_a_traceback(corpus, tiny_models, tmp_path):
    """``avscene localize`` as a user runs it (a process of its own) on broken files and a good
    one: an ``error:`` line naming each broken file, the good one's outputs, exit 1."""
    root = corpus[0]
    bad = ["random_bytes.mp4", "truncated_50pct.mp4", "directory.mp4", "missing.mp4", "wav_channels_0.wav"]
    argv = _argv("localize", root / "dur_1s.mp4", tmp_path / "out", tiny_models)
    argv[2:2] = [str(root / name) for name in bad]
    done = subprocess.run([sys.executable, "-m", "avscene", *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(bad) and all(str(root / n) in e for n, e in zip(bad, errors)), errors
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(f"dur_1s{s}" for s in OUTPUTS["localize"])


def _separation_audio(out: Path) -> dict:
    """The ``audio`` record of the one ``_separation.json`` in ``out``, checked against its files."""
    from avscene.media import probe

    (path,) = out.glob("*_separation.json")
    record = json.loads(path.read_text())
    for kind in ("on_wav", "on_mp4"):
        info = probe(out / record["files"][kind])
        assert info.channels == 1 and info.sample_rate == record["audio"][f"{kind[3:]}_sample_rate"]
    return record["audio"]


def test_a_name_two_inputs_share_gets_a_suffix_and_nothing_is_overwritten(corpus, tiny_models, tmp_path):
    """a.mkv and a.mp4 in one run: a_* and a_2_*, for localize and separate alike; a second run
    into the same folder adds a_3_* and a_4_*."""
    root = corpus[0]
    inputs = tmp_path / "in"
    inputs.mkdir()
    # names are what matters here; the media layer goes by content (a .mkv holding mp4 reads fine)
    shutil.copy(root / "dur_1s.mp4", inputs / "a.mkv")
    shutil.copy(root / "dur_1s.mp4", inputs / "a.mp4")
    for command in ("localize", "separate"):
        out = tmp_path / command
        argv = _argv(command, inputs / "a.mkv", out, tiny_models)[:2] + [str(inputs / "a.mp4")] + \
            _argv(command, inputs / "a.mkv", out, tiny_models)[2:]
        for run, stems in enumerate((("a", "a_2"), ("a_3", "a_4"))):
            before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()} if out.is_dir() else {}
            code, stderr = _main(argv)
            assert code == 0, stderr
            names = {p.name for p in out.iterdir()}
            assert {stem + s for stem in stems for s in OUTPUTS[command]} <= names, (run, sorted(names))
            assert all(out.joinpath(n).stat().st_mtime_ns == t for n, t in before.items())  # none rewritten
        record = out / ("a_cam.json" if command == "localize" else "a_separation.json")
        assert json.loads(record.read_text())["path"].endswith("a.mkv")  # in the order given


@pytest.mark.slow
def test_every_command_on_every_case(corpus, tiny_models, tmp_path):
    wrong = _commands_on(_cases(corpus[1]), corpus[0], tiny_models, tmp_path)
    assert not wrong, "\n".join(wrong)
    test_inputs_are_never_modified(corpus)


def _folder_of(cases: list[dict], root: Path, folder: Path) -> list[dict]:
    """Copies of the cases that are regular files, under their own names, in ``folder``; the
    cases copied."""
    folder.mkdir()
    copied = []
    for case in cases:
        src = root / case["file"]
        if not case.get("kind") and src.is_file() and os.access(src, os.R_OK):
            shutil.copy(src, folder / case["file"])
            copied.append(case)
    return copied


def _folder_problems(cases: list[dict], skipped: dict[str, str], folder: Path) -> list[str]:
    """Skipped files (``name: reason``) that are healthy, and broken files that were used."""
    from avscene.data.videos import VIDEO_SUFFIXES

    wrong = []
    for case in cases:
        if Path(case["file"]).suffix.lower() not in VIDEO_SUFFIXES:
            continue  # not looked at in a folder
        name = case["file"]
        if case["expect"] == "decode" and case.get("window_4p2s") == "ok" and name in skipped:
            wrong.append(f"{name}: a healthy file skipped ({skipped[name]})")
        if case["expect"] == "error" and not case.get("lenient") and name not in skipped:
            wrong.append(f"{name}: a broken file used ({case['why']})")
    return wrong


def _prepare_and_train(cases: list[dict], root: Path, tmp: Path) -> list[str]:
    """``prepare`` and ``train shift --data`` on a folder of ``cases``: each healthy file used,
    each broken one skipped with its reason, no traceback, no temporary file left."""
    folder = tmp / "videos"
    cases = _folder_of(cases, root, folder)
    code, stderr = _main(["prepare", str(folder), "--out", str(tmp / "shards"), "--preset", "tiny", "--quiet"])
    if code not in (0, 1):
        return [f"prepare: exit {code}: {stderr[-600:]}"]
    report = json.loads((tmp / "shards" / "report.json").read_text())
    skipped = {Path(item["path"]).name: item["reason"] for item in report["skipped_files"] + report["failed_segments"]}
    wrong = [f"prepare: {w}" for w in _folder_problems(cases, skipped, folder)]
    wrong += [f"prepare: temporary file {p.name}" for p in (tmp / "shards").iterdir() if p.name.startswith(".")]
    code, stderr = _main(["train", "shift", "--data", str(folder), "--out", str(tmp / "run"), "--preset", "tiny",
                          "--steps", "1", "--batch-size", "2", "--workers", "0", "--n-val", "2", "--quiet"])
    if code != 0:
        return wrong + [f"train shift: exit {code}: {stderr[-600:]}"]
    # "  skipped PATH: REASON" lines, the first 20
    listed = dict(line.strip()[len("skipped "):].split(": ", 1) for line in stderr.splitlines()
                  if line.strip().startswith("skipped ") and ": " in line)
    listed = {Path(path).name: reason for path, reason in listed.items()}
    wrong += [f"train shift: {w}" for w in _folder_problems(cases, listed, folder)
              if "a healthy file" in w or len(listed) < 20]
    return wrong


def test_prepare_and_train_on_a_folder_of_cases_of_each_kind(corpus, tmp_path):
    root, manifest = corpus
    wrong = _prepare_and_train([c for c in _cases(manifest) if c["file"] in DEFAULT_CASES], root, tmp_path)
    assert not wrong, "\n".join(wrong)


@pytest.mark.slow
def test_prepare_and_train_on_a_folder_of_every_case(corpus, tmp_path):
    wrong = _prepare_and_train(_cases(corpus[1]), corpus[0], tmp_path)
    assert not wrong, "\n".join(wrong)
