"""The command line as a user meets it: entry points, synth, demo."""

from __future__ import annotations

import json
import math
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
                              "prepare", "synth", "probe", "demo", "report", "retrieve", "objects"]
    args = parser.parse_args(["sync", "v.mp4", "--hop", "1.5", "--max-offset", "0.5"])
    assert (args.hop_s, args.max_offset_s) == (1.5, 0.5)
    args = parser.parse_args(["train", "shift", "--data", "d", "--out", "o", "--batch-size", "4", "--workers", "0"])
    assert (args.global_batch, args.num_workers) == (4, 0)
    assert parser.parse_args(["classify", "v.mp4", "--clips", "3"]).n_clips == 3


def test_demo_networks_are_where_the_commands_look_for_them():
    from avscene.store import demo_checkpoint

    assert demo_checkpoint("separation") == Path("runs/demo/separation/run/checkpoint.pt")


def test_demo_separator_is_small_on_half_the_bins_and_starts_as_the_mixture():
    """The demo's separator (small-lite) takes the small shift network's clip whole: 64 STFT
    frames, no padding, 512 bins; its mask output halves the mixture for both sources (-6 dB)
    before it has learnt."""
    import torch

    from avscene.demo import SEPARATION_PRESET
    from avscene.models import SeparationNet, get_preset
    from avscene.models.separation_net import get_preset as separation_preset
    from avscene.models.separation_net import input_spectrogram

    cfg = separation_preset(SEPARATION_PRESET["small"])
    assert cfg.shift == separation_preset("small").shift and cfg.shift.n_frames == get_preset("small").n_frames
    assert (cfg.spectrogram.n_bins, cfg.spec_frames, cfg.spec_frames % cfg.time_reduction) == (512, 64, 0)
    torch.manual_seed(0)
    net = SeparationNet(cfg).eval()
    assert (cfg.output, cfg.loss) == ("mask", "compressed")
    for module in net.modules():  # heads at zero (the video gate starts there): the mask is then 1/2
        if isinstance(module, torch.nn.ConvTranspose2d) and module.out_channels == 4:
            torch.nn.init.zeros_(module.weight)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
    video = torch.rand(1, 3, *cfg.video_shape[1:]) * 2 - 1  # (1, 3, T, H, W)
    audio = torch.randn(1, *cfg.audio_shape) * 0.1  # (1, C, N)
    with torch.no_grad():
        out = net(video, audio)  # (1, 2, 2, 512, 64)
    mixture = input_spectrogram(audio, cfg.spectrogram)  # (1, 2, 512, 64)
    assert out.shape == (1, 2, 2, 512, 64)
    half = 40 * math.log10(0.5) / (cfg.spectrogram.db_max - cfg.spectrogram.db_min)  # -6 dB in normalised units
    for source in (0, 1):  # on- and off-screen log magnitudes
        assert torch.allclose(out[0, source, 0], mixture[0, 0] + half, atol=1e-5)


def test_demo_runs_every_step_writes_the_report_and_reuses_steps(tmp_path, capsys, monkeypatch):
    """The main job end to end at the smallest budget (tiny models: the numbers mean nothing)."""
    from fractions import Fraction

    from conftest import make_click_video

    monkeypatch.setenv("AVSCENE_HOME", str(tmp_path / "home"))  # an empty model store: the demo's own network
    clips = tmp_path / "clips"
    clips.mkdir()
    make_click_video(clips / "real.mp4", fps=Fraction(25), sample_rate=16000, n_frames=30, click_frame=10)
    (clips / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "run"
    argv = ["demo", "--out", str(out), "--minutes", "0.1", "--preset", "tiny", "--clips", str(clips)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "open the results page: file://" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert [s["name"] for s in summary["steps"]] == ["shift", "sync", "localize", "separation", "action"]
    for step in summary["steps"]:
        assert step["result"] and step.get("status", "ok") == "ok"
        for kind in ("images", "videos", "audio"):
            for item in step.get(kind, []):
                assert (out / item["path"]).is_file(), item
    # every step but the sync scan's says what it beat: a number, its baseline, finite
    headlines = {s["name"]: s["headline"] for s in summary["steps"]}
    assert set(headlines) == {"shift", "sync", "localize", "separation", "action"}
    assert headlines["shift"]["baseline"] == 0.5 and headlines["action"]["baseline"] == 0.125
    assert 0 < headlines["sync"]["baseline"] < 0.5 and 0 < headlines["localize"]["baseline"] < 0.5
    assert headlines["separation"]["unit"] == "dB" and headlines["separation"]["target"] == 3.0
    assert summary["steps"][1]["metrics"]["clips"] >= 3
    # the real clip's maps, by the demo's own network (the store is empty), and the bad clip reported
    maps = summary["real_clip_maps"]
    assert maps["network"]["name"] == "shift/checkpoint.pt" and not maps["network"]["from_store"]
    assert [Path(v["path"]).name for v in maps["videos"]] == ["real_cam.mp4"]
    assert (out / maps["videos"][0]["path"]).is_file()
    assert any(c.get("error") for c in summary["real_clips"])
    assert set(summary["run"]["minutes"]) == {"data", "shift", "sync", "localize", "separation", "action"}
    assert summary["run"]["machine"]["cpu_count"] >= 1
    page = (out / "report.html").read_text()
    assert "localize" in page and "_cam.mp4" in page and "<audio" in page
    assert 'id="at-a-glance"' in page and 'id="real-clip-caveat"' in page
    first = (out / "shift" / "checkpoint.pt").stat().st_mtime_ns
    assert cli.main(argv) == 0
    assert (out / "shift" / "checkpoint.pt").stat().st_mtime_ns == first  # reused, not retrained
    assert "[shift] reused" in capsys.readouterr().out
    assert json.loads((out / "summary.json").read_text())["run"]["reused"] == ["shift", "sync", "localize",
                                                                               "separation", "action"]


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
