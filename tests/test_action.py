"""Action recognition: labelled datasets, the classifier head, training and clip-averaged evaluation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from avscene.checkpoints import load_checkpoint, load_model, save_checkpoint
from avscene.constants import PAPER_FPS, frame_to_sample
from avscene.data.action_clips import ActionClips, ActionSampling, usable_frames
from avscene.data.labelled import (MissingVideosError, SplitFileError, index_labelled, read_class_index,
                                   read_label_csv, read_split_file)
from avscene.data.splits import split_labelled
from avscene.evaluate.action import evaluate
from avscene.infer.classify import classify_arrays, classify_file
from avscene.media import write_video
from avscene.models import ActionNet, ActionNetConfig, ShiftNet, get_preset
from avscene.report.plots import plot_confusion_matrix
from avscene.synth import ACTION_CLASSES, SceneConfig, write_dataset
from avscene.train.action import action_clip_frames, make_action_task
from avscene.train.loop import TrainConfig, fit
from avscene.windows import plan_windows

UCF_CLASSES = ("ApplyEyeMakeup", "Basketball", "HandstandPushups")
RATE = 21000


def _tiny_video(path: Path, seed: int, *, n_frames: int = 20, audio: bool = True) -> Path:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 255, (n_frames, 24, 24, 3), dtype=np.uint8)
    sound = (0.1 * rng.standard_normal((frame_to_sample(n_frames, PAPER_FPS, RATE), 2))).astype(np.float32)
    return write_video(path, frames, PAPER_FPS, sound if audio else None, RATE if audio else None)


@pytest.fixture(scope="module")
def ucf_root(tmp_path_factory) -> Path:
    """A miniature UCF-101: 3 classes x 3 videos (one silent), official-style split files
    (CRLF ends, as the real ones), a corrupt file listed in the training split, and a list/file
    capitalisation mismatch as UCF-101's HandStand/Handstand."""
    root = tmp_path_factory.mktemp("ucf") / "UCF-101"
    lists = root.parent / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    train, test = [], []
    for c, name in enumerate(UCF_CLASSES):
        (root / name).mkdir(parents=True)
        for g in range(3):
            disk_name = f"v_{name.replace('Handstand', 'HandStand')}_g0{g + 1}_c01.avi"
            _tiny_video(root / name / disk_name, 10 * c + g, audio=not (c == 1 and g == 0))
            listed = f"{name}/v_{name}_g0{g + 1}_c01.avi"
            (train if g < 2 else test).append(listed)
    (root / "Basketball" / "v_Basketball_g09_c01.avi").write_bytes(b"\x00not a video" * 100)
    train.append("Basketball/v_Basketball_g09_c01.avi")
    crlf = "\r\n".join
    (lists / "classInd.txt").write_text(crlf(f"{i + 1} {n}" for i, n in enumerate(UCF_CLASSES)) + "\r\n")
    (lists / "trainlist01.txt").write_text(
        crlf(f"{p} {UCF_CLASSES.index(p.split('/')[0]) + 1}" for p in train) + "\r\n")
    (lists / "testlist01.txt").write_text(crlf(test) + "\r\n")
    return root


@pytest.fixture(scope="module")
def synth_actions(tmp_path_factory) -> Path:
    """One synthetic scene per action class (1 s, 40x40)."""
    out = tmp_path_factory.mktemp("synth_actions")
    config = SceneConfig(task="action", width=40, height=40, duration_s=1.0)
    write_dataset(out, len(ACTION_CLASSES), 0, task="action", config=config, progress=False, stems=False)
    return out


# -- datasets -------------------------------------------------------------------------------

def test_ucf101_split_files_give_labels_and_report_bad_videos(ucf_root):
    train = index_labelled(ucf_root)
    assert train.layout == "ucf101" and train.classes == UCF_CLASSES
    names = {Path(v.path).parent.name: v.label for v in train.videos}
    assert names == {n: i for i, n in enumerate(UCF_CLASSES)}
    assert len(train) == 6  # 2 per class; the corrupt one is skipped, not fatal
    assert [p for p, _ in train.skipped] == [str(ucf_root / "Basketball" / "v_Basketball_g09_c01.avi")]
    report = train.report()
    assert "6 usable videos in 3 classes" in report and "1 skipped" in report and "no audio" in report
    test = index_labelled(ucf_root.parent, subset="test")  # from the parent: finds UCF-101/
    assert [UCF_CLASSES[v.label] for v in test.videos] == list(UCF_CLASSES)  # label from the folder
    hand = next(v for v in test.videos if v.label == 2)
    assert "HandStand" in Path(hand.path).name  # found despite the list's capitals


@pytest.mark.parametrize("line, why", [
    ("ApplyEyeMakeup/v_a.avi one", "not an integer"),
    ("ApplyEyeMakeup/v_a.avi 7", "not in 1..3"),
    ("ApplyEyeMakeup/v_a.avi 2", "disagrees with the folder"),
    ("Juggling/v_a.avi", "not a class"),
    ("v_a.avi", "'<Class>/<video>'"),
    ("ApplyEyeMakeup/v_a.avi 1 extra", "expected"),
])
def test_malformed_split_line_names_file_and_line(tmp_path, line, why):
    listing = tmp_path / "trainlist01.txt"
    listing.write_text(f"ApplyEyeMakeup/v_ok.avi 1\r\n\r\nBasketball/v_ok.avi 2\r\n{line}\r\n")
    with pytest.raises(SplitFileError) as err:
        read_split_file(listing, UCF_CLASSES)
    assert "trainlist01.txt:4: " in str(err.value) and why in str(err.value)
    assert err.value.line_no == 4


def test_malformed_class_index(tmp_path):
    index = tmp_path / "classInd.txt"
    index.write_text("1 ApplyEyeMakeup\n2 Basketball\nthree Juggling\n")
    with pytest.raises(SplitFileError, match=r"classInd.txt:3: class id 'three' is not an integer"):
        read_class_index(index)
    index.write_text("1 ApplyEyeMakeup\n3 Basketball\n")
    with pytest.raises(SplitFileError, match=r"classInd.txt: class ids must be 1..2"):
        read_class_index(index)


def test_split_file_naming_missing_videos_is_a_clear_error(ucf_root, tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    shutil.copy(ucf_root.parent / "ucfTrainTestlist" / "classInd.txt", lists)
    missing = [f"Basketball/v_Basketball_g{g:02d}_c01.avi" for g in range(20, 32)]
    (lists / "trainlist01.txt").write_text("\n".join(["ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 1"]
                                                     + [f"{m} 2" for m in missing]))
    with pytest.raises(MissingVideosError) as err:
        index_labelled(ucf_root, layout="ucf101", splits_dir=lists)
    text = str(err.value)
    assert "12 listed video(s) not found" in text and missing[0] in text and "... and 2 more" in text
    assert err.value.missing == missing
    index = index_labelled(ucf_root, layout="ucf101", splits_dir=lists, on_missing="skip")
    assert len(index) == 1 and len(index.skipped) == 12


def test_class_folders_and_csv_layouts(ucf_root, tmp_path):
    folders = tmp_path / "folders"
    for name in ("walk", "run"):
        (folders / name / "sub").mkdir(parents=True)
    shutil.copy(ucf_root / "Basketball" / "v_Basketball_g01_c01.avi", folders / "walk" / "a.avi")
    shutil.copy(ucf_root / "Basketball" / "v_Basketball_g02_c01.avi", folders / "run" / "sub" / "b.mp4")
    shutil.copy(ucf_root / "Basketball" / "v_Basketball_g03_c01.avi", folders / "stray.mp4")
    index = index_labelled(folders)
    assert index.layout == "folders" and index.classes == ("run", "walk")
    assert {Path(v.path).name: v.label for v in index.videos} == {"b.mp4": 0, "a.avi": 1}
    assert index.skipped == ((str(folders / "stray.mp4"), "not in a class folder"),)

    table = folders / "labels.csv"
    table.write_text("path,label\nwalk/a.avi,walk\nrun/sub/b.mp4,run\nstray.mp4,walk\n")
    index = index_labelled(table)
    assert index.layout == "csv" and index.classes == ("run", "walk") and index.labels == (1, 0, 1)
    table.write_text("walk/a.avi,2\nrun/sub/b.mp4,0\n")  # integer ids, no header
    names, rows = read_label_csv(table)
    assert names == ("0", "1", "2") and [r[1] for r in rows] == [2, 0]
    table.write_text("path,label\nwalk/a.avi,walk\nrun/sub/b.mp4,run,extra\n")
    with pytest.raises(SplitFileError, match=r"labels.csv:3: expected two columns"):
        index_labelled(table)
    table.write_text("walk/a.avi,walk\nwalk/gone.avi,walk\n")
    with pytest.raises(MissingVideosError, match="gone.avi"):
        index_labelled(table)
    # labelling with a given class list (a model's): other classes are skipped, names mapped
    index = index_labelled(folders, classes=("walk", "jump"))
    assert index.classes == ("walk", "jump") and index.labels == (0,)
    assert any("not among the model's classes" in r for _, r in index.skipped)


def test_synthetic_action_set_is_read_from_its_manifest(synth_actions):
    index = index_labelled(synth_actions)
    assert index.layout == "synth" and index.classes == ACTION_CLASSES
    manifest = json.loads((synth_actions / "manifest.json").read_text())
    assert {Path(v.path).name: v.label for v in index.videos} == {s["video"]: s["label"] for s in manifest["scenes"]}
    train, val = split_labelled(index)  # one video per class: nothing can be held out per class
    assert len(train) == len(index)


# -- examples ---------------------------------------------------------------------------------

def _events_index(event_videos, tmp_path):
    folder, events = event_videos
    table = tmp_path / "events.csv"
    table.write_text("".join(f"{folder / name},{i % 2}\n" for i, name in enumerate(sorted(events))))
    return index_labelled(table, classes=("a", "b")), events


def test_examples_are_deterministic_and_the_audio_jitter_is_what_it_says(event_videos, tmp_path):
    index, _ = _events_index(event_videos, tmp_path)
    cfg = get_preset("tiny")
    sampling = ActionSampling(n_frames=60, fps=cfg.fps, sample_rate=cfg.sample_rate, crop_size=32, full_size=36,
                              audio_jitter_frames=3)
    clips = ActionClips(index, sampling, seed=1)
    assert sorted(clips.video_of(i) for i in range(4)) == [0, 1, 2, 3]  # one epoch = every video once
    shifts, checked = set(), 0
    for i in range(10):
        ex, again = clips[i], ActionClips(index, sampling, seed=1)[i]
        assert all(torch.equal(ex[k], again[k]) for k in ("frames", "audio", "label"))
        assert ex["audio"].shape == (2, sampling.n_samples) and ex["frames"].shape == (60, 32, 32, 3)
        d = ex["audio_shift_frames"]
        shifts.add(d)
        frames, audio = ex["frames"].numpy(), ex["audio"].numpy()
        bright = frames.reshape(60, -1).mean(1) > 120
        loud = np.abs(audio).max(0) > 0.3
        onsets = np.flatnonzero(loud[1:] & ~loud[:-1]) + 1
        for f in np.flatnonzero(bright[1:] & ~bright[:-1]) + 1:
            if 0 <= f - d < 58:  # the flash at clip frame f is heard at audio frame f - d
                expected = frame_to_sample(f - d, sampling.fps, sampling.sample_rate)
                assert np.min(np.abs(onsets - expected)) <= 0.004 * sampling.sample_rate
                checked += 1
    assert checked >= 8 and shifts <= set(range(-3, 4)) and len(shifts) > 1


def test_short_video_is_looped_and_a_silent_one_is_heard_as_silence(tmp_path):
    _tiny_video(tmp_path / "x" / "short.mp4", 0, n_frames=5, audio=False)
    index = index_labelled(tmp_path)
    sampling = ActionSampling.for_model(get_preset("tiny", n_frames=12), augment=False)
    ex = ActionClips(index, sampling)[0]
    period = usable_frames(index.videos[0], sampling.fps)
    assert period == 4 and ex["frames"].shape[0] == 12
    assert all(torch.equal(ex["frames"][i], ex["frames"][i % period]) for i in range(12))
    assert not torch.equal(ex["frames"][0], ex["frames"][1])
    assert ex["audio"].shape == (2, sampling.n_samples) and ex["audio"].abs().max() == 0


# -- the model --------------------------------------------------------------------------------

def _batch(cfg, b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((b, *cfg.video_shape), generator=g) * 2 - 1,
            torch.rand((b, *cfg.audio_shape), generator=g) * 2 - 1)


def test_head_gives_class_logits_and_the_loss_starts_near_log_k():
    cfg = get_preset("tiny")
    torch.manual_seed(0)
    model = ActionNet(cfg, 5)
    video, audio = _batch(cfg, 3)
    logits = model(video, audio)
    assert logits.shape == (3, 5) and logits.dtype == torch.float32
    cam = model.cam(video, audio)
    assert cam.shape[:2] == (3, 5) and torch.allclose(cam.mean(dim=(2, 3, 4)), logits, atol=1e-6)
    loss = nn.functional.cross_entropy(logits, torch.tensor([0, 3, 4]))
    assert abs(loss.item() - np.log(5)) < 0.05
    loss.backward()
    assert model.head.weight.grad is not None and model.backbone.stem.conv1.conv.weight.grad is not None
    assert not hasattr(model.backbone, "head")


def test_vision_only_ignores_the_audio():
    cfg = get_preset("tiny")
    video, audio = _batch(cfg)
    for use_sound in (True, False):
        torch.manual_seed(0)
        model = ActionNet(cfg, 4, use_sound=use_sound).eval()
        with torch.no_grad():
            same = torch.allclose(model(video, audio), model(video, torch.zeros_like(audio)))
        assert same == (not use_sound)
    model.train()
    model(video, audio).sum().backward()
    assert all(p.grad is None for p in model.backbone.audio.parameters())


def test_frozen_backbone_gets_no_gradient_and_keeps_its_statistics():
    cfg = get_preset("tiny")
    torch.manual_seed(0)
    model = ActionNet(cfg, 4, freeze_backbone=True).train()
    assert not model.backbone.training and model.head.training
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    video, audio = _batch(cfg)
    nn.functional.cross_entropy(model(video, audio), torch.tensor([1, 2])).backward()
    assert all(p.grad is None and not p.requires_grad for p in model.backbone.parameters())
    assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0
    after = model.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running stats unchanged


def _shift_checkpoint(path: Path, cfg) -> dict:
    torch.manual_seed(123)
    net = ShiftNet(cfg)
    save_checkpoint(path, {"task": "shift", "model_config": cfg.to_dict(), "model": net.state_dict(), "step": 0})
    return net.state_dict()


def test_trunk_starts_from_a_shift_checkpoint(synth_actions, tmp_path):
    cfg = get_preset("tiny", n_frames=16)
    shift_state = _shift_checkpoint(tmp_path / "shift.pt", cfg)
    task = make_action_task(synth_actions, init=tmp_path / "shift.pt", n_val=2)
    assert task.model_cfg.shift.n_frames == action_clip_frames(cfg) == 16  # shorter than 2.56 s: kept
    assert task.model_cfg.shift.bn_affine_scale and task.model_cfg.backbone_init == str(tmp_path / "shift.pt")
    model = task.build_model()
    state = model.backbone.state_dict()
    for k, v in shift_state.items():
        if not k.startswith("head."):
            assert torch.equal(state[k], v), k
    assert torch.equal(model.backbone.stem.conv1.bn.weight, torch.ones_like(model.backbone.stem.conv1.bn.weight))
    with pytest.raises(ValueError, match="another architecture: stem_width"):
        make_action_task(synth_actions, get_preset("small"), init=tmp_path / "shift.pt")
    assert action_clip_frames(get_preset("paper")) == 76  # 2.56 s at 29.97 fps


# -- evaluation ---------------------------------------------------------------------------------

class PositionStub(nn.Module):
    """Logits that depend on where the clip is: class k scores k * mean brightness in [-1, 1]."""

    def __init__(self, n_classes=4):
        super().__init__()
        self.config = ActionNetConfig(get_preset("tiny"), n_classes, class_names=tuple("abcdefgh"[:n_classes]))
        self.scale = nn.Parameter(torch.tensor(3.0))

    def forward(self, video, audio):
        b = video.mean(dim=(1, 2, 3, 4))  # (B,)
        return self.scale * b[:, None] * torch.arange(self.config.n_classes, dtype=b.dtype)


def test_clip_averaging_averages_the_uniformly_spaced_clips():
    model = PositionStub()
    n = model.config.shift.n_frames
    total = 40
    level = np.linspace(0, 255, total).round().astype(np.uint8)  # brightness grows with time
    frames = np.broadcast_to(level[:, None, None, None], (total, 36, 36, 3)).copy()
    result = classify_arrays(model, frames, n_clips=5, top_k=3)
    starts = plan_windows(total, n, count=5)
    assert starts == [0, 8, 16, 24, 32]  # first at 0, last ending at the last frame
    expected = []
    for t0 in starts:
        b = float((level[t0 : t0 + n].astype(np.float64) * 2 / 255 - 1).mean())
        z = 3.0 * b * np.arange(4)
        expected.append(np.exp(z) / np.exp(z).sum())
    np.testing.assert_allclose(result.clip_probabilities, expected, rtol=1e-5)
    np.testing.assert_allclose(result.probabilities, np.mean(expected, axis=0), rtol=1e-5)
    labels = result.clip_probabilities.argmax(1).tolist()
    assert labels[:2] == [0, 0] and labels[3:] == [3, 3]  # dark clips vs bright ones
    assert result.clip_starts_s == tuple(float(t / model.config.shift.fps) for t in starts)
    assert len(classify_arrays(model, frames[:5]).clip_starts_s) == 1  # shorter than a clip: one, looped


class ConstantStub(nn.Module):
    """The same logits for every clip."""

    def __init__(self, logits):
        super().__init__()
        self.config = ActionNetConfig(get_preset("tiny"), len(logits), class_names=ACTION_CLASSES[: len(logits)])
        self.logits = nn.Parameter(torch.tensor(logits, dtype=torch.float32))

    def forward(self, video, audio):
        return self.logits.expand(video.shape[0], -1)


def test_evaluate_counts_videos_and_fills_the_confusion_matrix(synth_actions, tmp_path):
    index = index_labelled(synth_actions)  # one video per class
    model = ConstantStub([0.0, 1.0, 9.0, 4.0, 3.0, 2.0, 0.5, -1.0])  # ranks: 2, 3, 4, 5, 1, ...
    result = evaluate(model, index, n_clips=2)
    assert result.n_videos == len(index) == 8
    assert result.confusion[:, 2].tolist() == [1] * 8 and result.confusion.sum() == 8
    assert result.top1 == pytest.approx(1 / 8) and result.top5 == pytest.approx(5 / 8)
    np.testing.assert_array_equal(result.per_class_accuracy, [0, 0, 1, 0, 0, 0, 0, 0])
    assert all(p["predicted_name"] == ACTION_CLASSES[2] for p in result.predictions)
    json.dumps(result.to_dict())
    png = plot_confusion_matrix(result.confusion, result.class_names, tmp_path / "confusion.png")
    assert png.stat().st_size > 1000


def test_fit_writes_a_checkpoint_that_classifies(synth_actions, tmp_path):
    task = make_action_task(synth_actions, get_preset("tiny"), n_val=4, seed=0)
    ckpt = fit(task, TrainConfig(out_dir=str(tmp_path / "run"), steps=3, global_batch=4, micro_batch=2,
                                 num_workers=0, progress=False, log_every=1, val_every=3, ckpt_every=3))
    payload = load_checkpoint(ckpt)
    assert payload["task"] == "action" and payload["step"] == 3
    assert "val_acc" in payload["log"][-1] and "acc" in payload["log"][0]
    model = load_model(ckpt)
    assert isinstance(model, ActionNet) and not model.training
    assert model.config.class_names == ACTION_CLASSES
    for k, v in payload["model"].items():
        assert torch.equal(model.state_dict()[k], v), k
    video = index_labelled(synth_actions).videos[3].path
    result = classify_file(model, video, n_clips=3, top_k=3)
    out = result.to_dict()
    assert set(out) >= {"path", "label", "name", "probability", "top_k", "n_clips", "clip_starts_s"}
    assert out["n_clips"] == 3 and len(out["top_k"]) == 3 and out["name"] in ACTION_CLASSES
    assert abs(result.probabilities.sum() - 1) < 1e-5 and out["top_k"][0]["name"] == out["name"]
    assert list(out["clip_starts_s"]) == sorted(out["clip_starts_s"]) and out["clip_starts_s"][0] == 0.0
    json.dumps(out)
