"""Honest outputs: every checkpoint carries a model card, every output names its network, and a
network of the synthetic world says, once per run, that it knows nothing of real video."""

from __future__ import annotations

import json

import pytest

from avscene import cli
from avscene.cards import SYNTHETIC_ONLY_WARNING, UNKNOWN, ModelCard, combine_synthetic, videos_data
from avscene.checkpoints import load_checkpoint, load_network, read_card, save_checkpoint
from avscene.data.videos import index_videos
from avscene.infer.sync import read_calibration, write_calibration
from avscene.media import probe
from avscene.models import ShiftNet, get_preset


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    """A tiny shift network trained 4 steps on the synthetic world, with its run folder."""
    run = tmp_path_factory.mktemp("run")
    assert cli.main(["train", "shift", "--data", "synthetic", "--synthetic-scenes", "6", "--preset", "tiny",
                     "--steps", "4", "--global-batch", "4", "--num-workers", "0", "--n-val", "4", "--val-every", "4",
                     "--log-every", "2", "--shift-range-s", "0.3", "0.8", "--quiet", "--out", str(run)]) == 0
    return run


def test_training_writes_a_card_saying_what_the_network_learnt_from(synthetic_run):
    card = read_card(synthetic_run / "checkpoint.pt")
    assert card.task == "shift" and card.preset == "tiny" and card.steps == 4
    assert card.synthetic_only is True and card.trained_on.endswith("all from avscene's synthetic world")
    assert card.training_data["n_videos"] >= 4 and card.training_data["hours"] > 0
    assert "val_acc" in card.held_out["metrics"] and card.held_out["set"].startswith("held-out")


def test_real_videos_make_a_card_that_is_not_synthetic(event_videos):
    folder, _ = event_videos
    data = index_videos(folder, min_duration_s=1.0).training_data()
    assert data["synthetic_only"] is False and data["n_videos"] == 4 and "synthetic" not in data["text"]
    mixed = videos_data("x", [1.0, 2.0], [True, False])
    assert mixed["synthetic_only"] is False and "1 of them from avscene's synthetic world" in mixed["text"]


def test_synth_marks_its_videos(synthetic_run):
    scene = next((synthetic_run / "synthetic").rglob("scene_00000.mp4"))
    assert probe(scene).synthetic


def test_cards_survive_save_load_and_resave(synthetic_run, tmp_path):
    payload = load_checkpoint(synthetic_run / "checkpoint.pt")
    card = ModelCard.from_dict(payload["model_card"])
    assert ModelCard.from_dict(card.to_dict()) == card
    save_checkpoint(tmp_path / "again.pt", payload)
    assert read_card(tmp_path / "again.pt") == card
    assert load_network(tmp_path / "again.pt").card == card


def test_a_checkpoint_without_a_card_loads_as_training_data_unknown(tmp_path):
    cfg = get_preset("tiny")
    save_checkpoint(tmp_path / "old.pt", {"task": "shift", "model_config": cfg.to_dict(),
                                          "model": ShiftNet(cfg).state_dict()})
    network = load_network(tmp_path / "old.pt")
    assert network.card.trained_on == UNKNOWN and network.card.synthetic_only is None
    assert network.id.sha256 and network.id.name == str(tmp_path / "old.pt")


def test_fine_tuned_networks_know_where_they_started():
    synthetic, real = ModelCard(synthetic_only=True), ModelCard(synthetic_only=False)
    assert combine_synthetic(True, synthetic) is True
    assert combine_synthetic(True, real) is False  # fine-tuned from a network of real video
    assert combine_synthetic(True, None) is True and combine_synthetic(None, synthetic) is None


def test_calibration_lives_in_the_checkpoint(synthetic_run, tmp_path):
    ckpt = tmp_path / "calibrated.pt"
    save_checkpoint(ckpt, load_checkpoint(synthetic_run / "checkpoint.pt"))
    write_calibration(ckpt, 0.37)
    network = load_network(ckpt)
    assert read_card(ckpt).task == "shift"  # rewriting kept the card
    assert read_calibration(ckpt, network.calibration) == pytest.approx(0.37)


def test_a_synthetic_network_on_real_clips_warns_once_and_says_so_in_every_output(synthetic_run, real_clips, tmp_path,
                                                                                 capsys):
    clips = [c for c in real_clips if c.name in ("tennis_30fps_stereo44k.mp4", "ted_talk_25fps_mono16k.mp4")]
    ckpt = str(synthetic_run / "checkpoint.pt")
    assert cli.main(["sync", *map(str, clips), "--model", ckpt, "--max-windows", "1", "--max-offset-s", "0.2",
                     "--json", str(tmp_path / "sync.json"), "--csv", str(tmp_path / "sync.csv")]) == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "not meaningful" in err
    rows = json.loads((tmp_path / "sync.json").read_text())
    assert len(rows) == 2 and all(r["caveat"] == SYNTHETIC_ONLY_WARNING for r in rows)
    assert all(r["network"]["synthetic_only"] is True and len(r["network"]["sha256"]) == 12 for r in rows)
    assert "all from avscene's synthetic world" in rows[0]["network"]["trained_on"]
    assert "network_sha256" in (tmp_path / "sync.csv").read_text().splitlines()[0]
    assert cli.main(["localize", str(clips[0]), "--model", ckpt, "--max-windows", "1", "-o", str(tmp_path)]) == 0
    meta = json.loads(next(tmp_path.glob("*_cam.json")).read_text())
    assert meta["caveat"] == SYNTHETIC_ONLY_WARNING and meta["network"]["name"] == ckpt


def test_a_synthetic_clip_gives_no_warning(synthetic_run, tmp_path, capsys):
    scene = next((synthetic_run / "synthetic").rglob("scene_00001.mp4"))
    assert cli.main(["sync", str(scene), "--model", str(synthetic_run / "checkpoint.pt"), "--max-windows", "1",
                     "--max-offset-s", "0.2", "--json", str(tmp_path / "sync.json")]) == 0
    assert "warning:" not in capsys.readouterr().err
    (row,) = json.loads((tmp_path / "sync.json").read_text())
    assert row["caveat"] is None and row["network"]["synthetic_only"] is True
