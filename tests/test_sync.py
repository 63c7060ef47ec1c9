"""The sync scan: offsets with the documented sign, windows, confidence, --fix, the CLI.

A trained network is not needed to test the scan machinery: an oracle with the ShiftNet
interface scores audio by how well its bursts line up with the video's flashes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from avscene import cli
from avscene.checkpoints import save_checkpoint
from avscene.constants import frame_to_sample
from avscene.infer.sync import SyncOptions, peak_confidence, sync_clip, sync_file
from avscene.media import read_clip
from avscene.media.writer import write_shifted_audio
from avscene.models import ShiftNet, get_preset
from avscene.windows import plan_windows
from conftest import make_event_video


class FlashBurstOracle(nn.Module):
    """Scores (K,) = correlation of per-frame brightness onsets with per-frame audio energy."""

    def __init__(self):
        super().__init__()
        self.config = get_preset("tiny", n_frames=60)
        self.dummy = nn.Parameter(torch.zeros(1))

    def score_audios(self, video, audios, chunk=16):
        cfg = self.config
        brightness = video[0].mean(dim=(0, 2, 3))  # (T,)
        flash = torch.relu(brightness[1:] - brightness[:-1])
        flash = torch.cat([flash.new_zeros(1), flash])  # (T,)
        bounds = [frame_to_sample(t, cfg.fps, cfg.sample_rate) for t in range(cfg.n_frames + 1)]
        energy = torch.stack([audios[:, :, a:b].abs().mean(dim=(1, 2)) for a, b in zip(bounds, bounds[1:])], 1)
        onset = torch.relu(energy[:, 1:] - energy[:, :-1])
        onset = torch.cat([onset.new_zeros(len(audios), 1), onset], 1)  # (K, T)
        return 50 * (onset * flash).sum(1) / (flash.norm() * onset.norm(dim=1) + 1e-6)


@pytest.fixture(scope="module")
def event_video(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sync")
    path, events = make_event_video(folder / "events.mp4", 11, n_frames=240, n_events=20)
    return path


@pytest.mark.parametrize("delay_s", [0.3, -0.5, 0.1])
def test_scan_finds_the_offset_with_the_documented_sign(event_video, tmp_path, delay_s):
    delayed = write_shifted_audio(event_video, tmp_path / "delayed.mp4", -delay_s)  # audio later by delay_s
    result = sync_file(FlashBurstOracle(), delayed, SyncOptions(max_offset_s=1.0))
    assert abs(result.offset_s - delay_s) <= 1.01 / 29.97  # within one frame
    assert (result.offset_frames > 0) == (delay_s > 0)  # positive = audio lags video
    assert result.to_dict()["offset_frames"] == result.offset_frames
    truth = result.offsets_frames == result.offset_frames
    reaching = [w for w in result.windows if w.valid[truth].all()]  # windows near the ends may not reach it
    assert len(reaching) >= 2 and all(abs(w.offset_frames - result.offset_frames) <= 1 for w in reaching)
    window = result.to_dict()["windows"][-1]
    assert window["scored_offsets_frames"][0] == -result.offsets_frames.max() != window["scored_offsets_frames"][1]
    assert 0 <= result.aligned_probability <= 1 and 0 < result.confidence <= 1
    if delay_s > 0:
        assert "lags" in result.describe()


def test_fix_undoes_the_offset(event_video, tmp_path):
    delayed = write_shifted_audio(event_video, tmp_path / "delayed.mp4", -0.4)
    result = sync_file(FlashBurstOracle(), delayed, SyncOptions(max_offset_s=1.0))
    fixed = write_shifted_audio(delayed, tmp_path / "fixed.mp4", result.offset_s)
    assert abs(sync_file(FlashBurstOracle(), fixed, SyncOptions(max_offset_s=1.0)).offset_frames) <= 1
    assert read_clip(fixed).n_frames == read_clip(event_video).n_frames  # video kept as it was


def test_in_memory_scan_matches_the_file_scan(event_video):
    oracle = FlashBurstOracle()
    cfg = oracle.config
    clip = read_clip(event_video, fps=cfg.fps, size=cfg.crop_size, sample_rate=cfg.sample_rate, channels=2)
    a = sync_clip(oracle, clip.frames, clip.audio, SyncOptions(max_offset_s=1.0))
    b = sync_file(oracle, event_video, SyncOptions(max_offset_s=1.0))
    assert a.offset_frames == b.offset_frames == 0
    np.testing.assert_allclose(a.scores, b.scores, atol=0.5)


def test_offsets_longer_than_the_window_scan_silence_on_a_short_video(tmp_path):
    """A video too short for the margins gets one window; offsets that put the whole audio window
    before the file's start are scored on silence, not an error."""
    short, _ = make_event_video(tmp_path / "short.mp4", 5, n_frames=70, n_events=5)
    result = sync_file(FlashBurstOracle(), short, SyncOptions(max_offset_s=2.5))  # 75 frames > 60-frame window
    assert len(result.windows) == 1 and len(result.offsets_frames) == 151
    assert result.windows[0].valid.sum() == 11  # the window starts at frame 5: offsets -5..+5 stay inside
    assert abs(result.offset_frames) <= 1


def test_window_plan():
    assert plan_windows(100, 30, 30, align="center") == [5, 35, 65]  # centred: 5 frames spare at each end
    assert plan_windows(40, 30, 30, align="center") == [5]  # room for one window
    assert plan_windows(90, 30, 30, align="center") == [0, 30, 60]
    assert len(plan_windows(10_000, 30, 30, max_windows=8, align="center")) == 8
    with pytest.raises(ValueError):
        plan_windows(20, 30, 30, align="center")


def test_confidence_is_the_mass_near_the_peak():
    best, conf = peak_confidence(np.array([0.0, 0.0, 10.0, 0.0, 0.0]), 1.0)
    assert best == 2 and conf > 0.99
    best, flat = peak_confidence(np.array([0.0, 0.0, 1e-9, 0.0, 0.0]), 1.0)  # a flat scan
    assert best == 2 and flat == pytest.approx(3 / 5)


def test_cli_sync_writes_csv_json_plots_and_fixed_video(event_video, tmp_path, capsys):
    torch.manual_seed(0)
    model = ShiftNet(get_preset("tiny"))
    ckpt = save_checkpoint(tmp_path / "tiny.pt", {"task": "shift", "model_config": model.config.to_dict(),
                                                  "model": model.state_dict()})
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    code = cli.main(["sync", str(event_video), str(bad), "--model", str(ckpt), "--max-offset", "0.5",
                     "--csv", str(tmp_path / "out.csv"), "--json", str(tmp_path / "out.json"),
                     "--plot-dir", str(tmp_path / "plots"), "--fix", str(tmp_path / "fixed")])
    out, err = capsys.readouterr()
    assert code == cli.EXIT_SOME_FAILED  # one bad file, the batch went on
    assert "events.mp4:" in out and "confidence" in out and "bad.mp4" in err
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert rows[0].startswith("path,offset_s,offset_frames") and len(rows) == 3 and "not a readable" in rows[2]
    results = json.loads((tmp_path / "out.json").read_text())
    assert results[0]["sign"].startswith("positive = audio lags")
    assert len(results[0]["scan"]["scores"]) == 2 * round(0.5 * 29.97) + 1
    assert (tmp_path / "plots" / "events_sync.png").stat().st_size > 1000
    assert (tmp_path / "fixed" / "events_synced.mp4").is_file()


def test_cli_sync_without_a_model_says_what_to_do(event_video, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["sync", str(event_video)]) == cli.EXIT_ERROR
    assert "train one with `avscene train shift`" in capsys.readouterr().err


def test_video_without_sound_is_a_clear_error(tmp_path):
    from avscene.media import NoStreamError, write_video

    silent = write_video(tmp_path / "silent.mp4", np.zeros((90, 32, 32, 3), np.uint8), 30)
    with pytest.raises(NoStreamError, match="silent.mp4: has no audio stream"):
        sync_file(FlashBurstOracle(), silent)
