"""The command line as a user meets it: entry points, synth, demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from avscene import cli


def test_python_dash_m_and_version():
    out = subprocess.run([sys.executable, "-m", "avscene", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("avscene ")


def test_synth_writes_a_set_with_ground_truth(tmp_path, capsys):
    assert cli.main(["synth", str(tmp_path / "set"), "--n", "2", "--task", "action", "--seed", "5",
                     "--duration-s", "2", "--quiet"]) == 0
    manifest = json.loads((tmp_path / "set" / "manifest.json").read_text())
    assert len(manifest["scenes"]) == 2
    for name in ("scene_00000.mp4", "scene_00000.npz", "scene_00000.json", "scene_00001.mp4"):
        assert (tmp_path / "set" / name).is_file()
    assert "wrote 2 action scenes" in capsys.readouterr().out
    assert manifest["config"]["unseen_action_sound"] == 0.0

    assert cli.main(["synth", str(tmp_path / "unseen"), "--n", "1", "--task", "action", "--duration-s", "1",
                     "--unseen-action-sound", "1", "--quiet"]) == 0
    manifest = json.loads((tmp_path / "unseen" / "manifest.json").read_text())
    assert manifest["config"]["unseen_action_sound"] == 1.0

    assert cli.main(["synth", str(tmp_path / "apart"), "--n", "1", "--task", "localize", "--size", "64",
                     "--duration-s", "0.5", "--layout", "apart", "--quiet"]) == 0
    manifest = json.loads((tmp_path / "apart" / "manifest.json").read_text())
    assert manifest["config"]["layout"] == "apart"


def test_cli_offers_the_scene_layouts():
    from avscene.synth import LAYOUTS

    assert cli.SCENE_LAYOUTS == LAYOUTS


def test_cli_offers_the_fits_presets_variants_and_release_kinds():
    from avscene.media.geometry import FITS
    from avscene.models import PRESETS
    from avscene.models.separation_net import PRESETS as SEPARATION_PRESETS
    from avscene.models.separation_net import VARIANTS
    from avscene.release.convert import KINDS

    assert cli.FITS == FITS
    assert cli.SHIFT_PRESETS == tuple(PRESETS)
    assert cli.SEPARATION_PRESETS == tuple(SEPARATION_PRESETS)
    assert cli.SEPARATION_VARIANTS == tuple(sorted(VARIANTS))
    assert cli.RELEASE_KINDS == tuple(sorted(KINDS))


def test_every_command_is_listed_and_old_flag_spellings_still_work():
    parser = cli.get_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse keeps them here
    assert list(commands) == ["sync", "localize", "separate", "classify", "train", "eval", "import-tf", "models",
                              "prepare", "synth", "probe", "demo", "report"]
    args = parser.parse_args(["sync", "v.mp4", "--hop", "1.5", "--max-offset", "0.5"])
    assert (args.hop_s, args.max_offset_s) == (1.5, 0.5)
    args = parser.parse_args(["train", "shift", "--data", "d", "--out", "o", "--batch-size", "4", "--workers", "0"])
    assert (args.global_batch, args.num_workers) == (4, 0)
    assert parser.parse_args(["classify", "v.mp4", "--clips", "3"]).n_clips == 3


def test_demo_networks_are_where_the_commands_look_for_them():
    from avscene.store import demo_checkpoint

    assert demo_checkpoint("separation") == Path("runs/demo/separation/run/checkpoint.pt")


def test_demo_runs_every_step_writes_the_report_and_reuses_steps(tmp_path, capsys):
    """The main job end to end at the smallest budget (tiny models: the numbers mean nothing)."""
    argv = ["demo", "--out", str(tmp_path), "--minutes", "0.1", "--preset", "tiny"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "open the results page: file://" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [s["name"] for s in summary["steps"]] == ["shift", "sync", "localize", "separation", "action"]
    for step in summary["steps"]:
        assert step["result"] and step.get("status", "ok") == "ok"
        for kind in ("images", "videos", "audio"):
            for item in step.get(kind, []):
                assert (tmp_path / item["path"]).is_file(), item
    assert summary["steps"][1]["metrics"]["clips"] >= 3
    page = (tmp_path / "report.html").read_text()
    assert "localize" in page and "_cam.mp4" in page and "<audio" in page
    first = (tmp_path / "shift" / "checkpoint.pt").stat().st_mtime_ns
    assert cli.main(argv) == 0
    assert (tmp_path / "shift" / "checkpoint.pt").stat().st_mtime_ns == first  # reused, not retrained
    assert "[shift] reused" in capsys.readouterr().out


def test_output_names_never_overwrite_and_an_input_gets_all_its_outputs_or_none(tmp_path):
    from avscene.files import OutputNames

    (tmp_path / "a_cam.json").write_text("{}")  # from an earlier run
    names = OutputNames(tmp_path, ["_cam.mp4", "_cam.json"])
    assert names.claim(tmp_path / "in" / "a.mkv") == "a_2"  # a_cam.json is taken on disk
    assert names.claim(tmp_path / "in" / "a.mp4") == "a_3"  # a_2 is taken in this run
    assert OutputNames(tmp_path, ["_cam.json"], overwrite=True).claim("a.mp4") == "a"
    try:
        with names.all_or_nothing("a_2"):
            (tmp_path / "a_2_cam.mp4").write_text("half")
            raise RuntimeError("the writer failed")
    except RuntimeError:
        pass
    assert not (tmp_path / "a_2_cam.mp4").exists() and (tmp_path / "a_cam.json").exists()


def test_a_folder_without_videos_is_an_error_not_an_empty_batch(tmp_path, capsys):
    (tmp_path / "x.mp4").mkdir()
    assert cli.main(["sync", str(tmp_path / "x.mp4"), "--model", str(tmp_path / "none.pt")]) == cli.EXIT_ERROR
    outcomes = cli._run_batch([tmp_path / "x.mp4"], lambda p: 1)
    assert outcomes[0][2] and "folder with no video files" in outcomes[0][2]
    assert "folder with no video files" in capsys.readouterr().err
