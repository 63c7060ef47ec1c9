"""Two-tower audio-visual correspondence: losses and negatives on tiny tensors, the towers and
their maps, a short training run whose loss falls, and the retrieve and localize commands."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from avscene import cli
from avscene.constants import frame_to_sample
from avscene.data.correspondence_pairs import CorrespondencePairs, correspondence_sampling
from avscene.data.videos import index_videos
from avscene.infer.retrieve import BY
from avscene.media import read_clip, write_video, write_wav
from avscene.models import two_tower
from avscene.models.two_tower import TwoTowerNet, get_preset, mel_filterbank
from avscene.train.correspondence import (batch_negative_pairs, binary_loss, infonce_loss, make_correspondence_task,
                                          same_video_mask)
from avscene.train.loop import TrainConfig, fit

FPS, RATE = Fraction(30000, 1001), 21000


# -- losses and negatives --------------------------------------------------------------------------

def test_binary_loss_by_hand():
    loss, metrics = binary_loss(torch.tensor([0.0]), [torch.tensor([0.0])])
    assert loss.item() == pytest.approx(math.log(2))
    # softplus(-2) for the positive, softplus(-1) for the negative, half each
    loss, metrics = binary_loss(torch.tensor([2.0]), [torch.tensor([-1.0])])
    assert loss.item() == pytest.approx(0.5 * (math.log1p(math.exp(-2)) + math.log1p(math.exp(-1))), rel=1e-6)
    assert metrics["acc"] == 1.0
    # two negative tensors count as one pool: the negatives weigh half in all
    loss, metrics = binary_loss(torch.tensor([2.0]), [torch.tensor([-1.0]), torch.tensor([3.0])])
    negatives = (math.log1p(math.exp(-1)) + math.log1p(math.exp(3))) / 2
    assert loss.item() == pytest.approx(0.5 * (math.log1p(math.exp(-2)) + negatives), rel=1e-6)
    assert metrics["acc"] == pytest.approx(0.5 * (1 + 0.5))


def test_infonce_by_hand():
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss, metrics = infonce_loss(logits)
    assert loss.item() == pytest.approx(math.log1p(math.exp(-1)), rel=1e-6)
    assert metrics["acc"] == 1.0
    # an extra negative sound joins the picture -> sound softmax only
    loss, metrics = infonce_loss(logits, extra=torch.tensor([0.0, 5.0]))
    to_sound = (math.log(math.e + 2) - 1 + math.log(1 + math.e + math.exp(5)) - 1) / 2  # rows [1, 0 | 0], [0, 1 | 5]
    assert loss.item() == pytest.approx(0.5 * (to_sound + math.log1p(math.exp(-1))), rel=1e-6)
    assert metrics["acc"] == 0.5
    # an excluded pair (same video) is no negative either way
    logits = torch.tensor([[1.0, 2.0], [0.0, 1.0]])
    exclude = torch.tensor([[False, True], [False, False]])
    loss, _ = infonce_loss(logits, exclude=exclude)
    expected = (0.0 + math.log1p(math.exp(-1))) / 2 + (math.log1p(math.exp(-1)) + 0.0) / 2
    assert loss.item() == pytest.approx(0.5 * expected, rel=1e-6)


def test_negatives_never_pair_a_picture_with_its_own_video():
    mask = same_video_mask(torch.tensor([3, 3, 1, -1, -1]))
    expected = torch.zeros(5, 5, dtype=torch.bool)
    expected[0, 1] = expected[1, 0] = True  # unknown videos (-1) are taken as different
    assert torch.equal(mask, expected)
    rows, cols = batch_negative_pairs(torch.tensor([0, 0, 1, 2]))
    assert rows.tolist() == [1, 2, 3] and cols.tolist() == [2, 3, 0]  # clip 0 meets clip 1: same video
    rows, cols = batch_negative_pairs(torch.tensor([5]))
    assert len(rows) == 0


# -- the towers ------------------------------------------------------------------------------------

def test_mel_filters_are_triangles_that_tile_the_spectrum():
    bank = mel_filterbank(513, 1024, RATE, 20)  # (bins, mels)
    assert bank.shape == (513, 20)
    assert np.all(np.diff(bank.argmax(axis=0)) > 0)  # centres rise
    assert np.all(bank.max(axis=0) > 0.5)
    first, last = bank[:, 0].argmax(), bank[:, -1].argmax()
    np.testing.assert_allclose(bank[first : last + 1].sum(axis=1), 1.0, atol=1e-5)  # neighbours sum to 1


@pytest.mark.parametrize("objective", two_tower.OBJECTIVES)
def test_embeddings_are_unit_and_the_map_is_their_cosine(objective):
    torch.manual_seed(0)
    cfg = get_preset("tiny", objective=objective, mil=objective != "l3")
    net = TwoTowerNet(cfg).eval()
    video = torch.rand(3, 3, cfg.n_frames, 32, 32) * 2 - 1
    audio = 0.1 * torch.randn(3, 2, cfg.n_samples)
    v, locations = net.embed_video(video)
    a = net.embed_audio(audio)
    assert v.shape == (3, cfg.embed_dim) and locations.shape == (3, cfg.embed_dim, 1, 8, 8)
    torch.testing.assert_close(v.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(a.norm(dim=1), torch.ones(3))
    sim = net.similarity_map(a, locations)  # (B, 1, 8, 8)
    torch.testing.assert_close(sim[1, 0, 2, 5], (a[1] * locations[1, :, 0, 2, 5]).sum())
    logits = net(video, audio)
    if objective != "l3":  # MIL: the logit of the map's best location
        torch.testing.assert_close(logits, net.logit_from_cosine(sim.flatten(1).amax(1)))


def test_two_tower_configs_round_trip_and_refuse_nonsense():
    cfg = get_preset("small", visual="3d", objective="avenet", mil=True)
    assert two_tower.TwoTowerConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.map_stride == (8, 8, 8)
    with pytest.raises(ValueError, match="mil"):
        get_preset("tiny", objective="l3", mil=True)
    with pytest.raises(ValueError, match="objective"):
        get_preset("tiny", objective="triplet")


def test_cli_names_match_the_library():
    from avscene.models.two_tower import OBJECTIVES, POOLS, PRESETS, VISUAL_KINDS

    assert cli.CORRESPONDENCE_PRESETS == tuple(sorted(PRESETS))
    assert cli.CORRESPONDENCE_OBJECTIVES == OBJECTIVES
    assert (cli.CORRESPONDENCE_VISUAL, cli.CORRESPONDENCE_POOLS, cli.RETRIEVE_BY) == (VISUAL_KINDS, POOLS, BY)


# -- training and the commands ---------------------------------------------------------------------

def _tone_video(path: Path, k: int, n_frames: int = 60) -> Path:
    """A plain picture of colour ``k`` and a tone of pitch ``k``: sound and picture name the video."""
    rng = np.random.default_rng(k)
    colour = np.array([(k * 97) % 256, (k * 53 + 80) % 256, (k * 151 + 30) % 256], np.uint8)
    frames = np.tile(colour, (n_frames, 40, 40, 1))
    t = np.arange(frame_to_sample(n_frames, FPS, RATE)) / RATE
    tone = 0.3 * np.sin(2 * np.pi * 300 * 1.6**k * t)
    audio = np.stack([tone, tone], 1) + 0.01 * rng.standard_normal((len(t), 2))
    return write_video(path, frames, FPS, audio.astype(np.float32), RATE)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, list[dict]]:
    """Six tone videos and a tiny InfoNCE net trained on them for a few seconds: (videos, checkpoint, log)."""
    root = tmp_path_factory.mktemp("correspondence")
    videos = root / "videos"
    videos.mkdir()
    for k in range(6):
        _tone_video(videos / f"tone{k}.mp4", k)
    task = make_correspondence_task(videos, get_preset("tiny", objective="infonce"), val_data=videos, n_val=8)
    cfg = TrainConfig(out_dir=str(root / "run"), steps=40, global_batch=8, micro_batch=8, optimizer="adamw", lr=3e-3,
                      log_every=10, val_every=40, ckpt_every=40, num_workers=0, device="cpu", progress=False)
    ckpt = fit(task, cfg)
    return videos, ckpt, json.loads((root / "run" / "log.json").read_text())


def test_examples_say_which_video_their_clip_came_from(trained):
    videos, _, _ = trained
    index = index_videos(videos, min_duration_s=1.0)
    sampling = correspondence_sampling(get_preset("tiny"), hard_negatives=False, augment=False)
    pairs = CorrespondencePairs(index, sampling, seed=3)
    for example_id in range(6):
        example = pairs[example_id]
        colour = example["frames"][0, 4, 4].numpy().astype(int)  # each video is one plain colour
        k = int(Path(index.videos[example["video"]].path).stem[len("tone"):])
        expected = np.array([(k * 97) % 256, (k * 53 + 80) % 256, (k * 151 + 30) % 256])
        assert np.abs(colour - expected).max() <= 12, (example["video"], colour, expected)


def test_training_loss_falls(trained):
    _, ckpt, log = trained
    assert ckpt.is_file()
    assert log[-1]["loss"] < log[0]["loss"] - 0.3, [row["loss"] for row in log]
    assert "val_acc" in log[-1]


def test_retrieve_writes_ranked_json_and_sheet_and_survives_a_bad_file(trained, tmp_path, capsys):
    videos, ckpt, _ = trained
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    for video in videos.iterdir():
        (gallery / video.name).write_bytes(video.read_bytes())
    (gallery / "broken.mp4").write_bytes(b"not a video")
    query = write_wav(tmp_path / "tone3.wav", read_clip(videos / "tone3.mp4", video=False).audio, RATE)
    out = tmp_path / "out"
    code = cli.main(["retrieve", "--model", str(ckpt), "--query", str(query), "--gallery", str(gallery),
                     "--k", "3", "-o", str(out), "--quiet"])
    assert code == cli.EXIT_SOME_FAILED  # the broken file is reported, the rest ranked
    assert "broken.mp4" in capsys.readouterr().err
    result = json.loads((out / "tone3_retrieve.json").read_text())
    scores = [m["score"] for m in result["matches"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    assert result["matches"][0]["path"].endswith("tone3.mp4")  # its sound finds its picture
    assert [Path(s["path"]).name for s in result["skipped"]] == ["broken.mp4"]
    assert result["network"]["name"] and (out / "tone3_retrieve.png").stat().st_size > 0
    # never overwritten: a second run gets its own name
    cli.main(["retrieve", "--model", str(ckpt), "--query", str(query), "--gallery", str(gallery), "-o", str(out),
              "--quiet"])
    assert (out / "tone3_2_retrieve.json").is_file()
    # an audio file has no picture to retrieve by
    code = cli.main(["retrieve", "--model", str(ckpt), "--query", str(query), "--gallery", str(gallery), "-o", str(out),
                     "--by", "picture", "--quiet"])
    assert code == cli.EXIT_ERROR and "no video stream" in capsys.readouterr().err


def test_localize_writes_similarity_maps_in_the_cam_formats(trained, tmp_path):
    videos, ckpt, _ = trained
    out = tmp_path / "maps"
    assert cli.main(["localize", str(videos / "tone1.mp4"), "-o", str(out), "--model", str(ckpt)]) == cli.EXIT_OK
    maps = np.load(out / "tone1_cam.npy")  # one map of cells per frame
    assert maps.shape[0] == 60 and maps.ndim == 3
    assert np.nanmin(maps) >= -1.0001 and np.nanmax(maps) <= 1.0001  # cosines
    for suffix in ("_cam.mp4", "_cam.json", "_sheet.png"):
        assert (out / f"tone1{suffix}").is_file()
