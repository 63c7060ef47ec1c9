"""The command line as a user meets it: entry points, synth, demo."""

from __future__ import annotations

import json
import subprocess
import sys

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


def test_demo_makes_every_set_and_reuses_them(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path), "--minutes", "1"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["synthetic"]) == {"sync", "localize", "separation", "action"}
    first = (tmp_path / "synthetic" / "sync" / "manifest.json").stat().st_mtime_ns
    assert cli.main(["demo", "--out", str(tmp_path), "--minutes", "1"]) == 0
    assert (tmp_path / "synthetic" / "sync" / "manifest.json").stat().st_mtime_ns == first  # reused
    assert "[synth] sync" in capsys.readouterr().out
