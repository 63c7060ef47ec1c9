"""The model store: networks by name, and which network each command uses by default."""

from __future__ import annotations

import argparse

import pytest

from avscene import cli
from avscene.checkpoints import save_checkpoint
from avscene.models import ShiftNet, get_preset
from avscene.store import default_model, list_models, models_dir, resolve_model, store_path


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("AVSCENE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _store_tiny(name: str, card: dict | None = None):
    cfg = get_preset("tiny", padding="tf-same", fractional_pool="tf-release", profile="release")
    payload = {"task": "shift", "model_config": cfg.to_dict(), "model": ShiftNet(cfg).state_dict()}
    if card:
        payload["model_card"] = card
    return save_checkpoint(store_path(name), payload)


def test_names_resolve_in_the_store_and_files_stay_files(home, tmp_path):
    assert models_dir() == home / "models"
    with pytest.raises(FileNotFoundError, match="the store .* is empty"):
        resolve_model("paper-shift")
    path = _store_tiny("paper-shift", {"trained_on": "AudioSet, test", "source": "x.zip:nets/shift"})
    assert resolve_model("paper-shift") == path
    assert resolve_model(str(path)) == path
    with pytest.raises(FileNotFoundError, match="holds paper-shift"):
        resolve_model("paper-cam")
    with pytest.raises(ValueError, match="not a model name"):
        store_path("../escape")
    (row,) = list_models()
    assert (row.name, row.task, row.trained_on, row.source) == ("paper-shift", "shift", "AudioSet, test",
                                                                 "x.zip:nets/shift")
    assert row.n_parameters == sum(p.numel() for p in ShiftNet(get_preset("tiny")).parameters())


def test_commands_prefer_the_papers_networks_and_say_which_they_use(home, tmp_path):
    fallback = tmp_path / "demo.pt"
    note = default_model("localize", fallback)
    assert note.path == fallback and "has no 'paper-cam' or 'paper-shift'; falling back to" in note.note
    _store_tiny("paper-shift")
    assert default_model("localize", fallback).path == store_path("paper-shift")
    _store_tiny("paper-cam")
    chosen = default_model("localize", fallback)
    assert chosen.path == store_path("paper-cam") and "'paper-cam' from the model store" in chosen.note
    assert "no network for this command" in default_model("classify", fallback).note


def test_init_takes_a_store_name_and_keeps_the_release_layout(home):
    _store_tiny("paper-shift")
    assert cli._checkpoint_arg("paper-shift") == store_path("paper-shift")
    assert cli._checkpoint_arg("scratch") == "scratch"
    with pytest.raises(argparse.ArgumentTypeError, match="no such checkpoint"):
        cli._checkpoint_arg("paper-nothing")
    cfg = cli._with_init_layout(get_preset("tiny", cam=True), store_path("paper-shift"))
    assert (cfg.padding, cfg.fractional_pool, cfg.profile, cfg.cam) == ("tf-same", "tf-release", "release", True)


def test_models_lists_the_store(home, capsys):
    assert cli.main(["models"]) == 0
    assert "is empty" in capsys.readouterr().out
    _store_tiny("paper-shift", {"trained_on": "AudioSet, test", "source": "x.zip:nets/shift"})
    assert cli.main(["models"]) == 0
    assert "paper-shift" in capsys.readouterr().out
