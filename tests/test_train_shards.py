"""Training from shards: `avscene prepare` writes shards for a preset, `avscene train shift`
trains from a shard folder, pattern or piped url, and the shard-fed loader gives each rank and
worker its own segments, each once per epoch."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from avscene.cli import main
from avscene.models import get_preset
from avscene.train.loop import MicroBatchSampler
from avscene.train.runtime import Runtime
from avscene.data.shards import ShardSet, ShardShiftExamples, is_shard_data, open_shards
from avscene.train.shift import make_shift_task, shard_settings, shift_sampling
from conftest import make_event_video

# tiny preset: 8-frame clips, shifts of 4-11 frames -> 20-frame segments (13 at least); a 5 s
# video (149 usable frames) gives 7 segments, 4 videos 28, dealt 7 per shard into 4 shards
N_SEGMENTS, PER_SHARD = 28, 7
SAMPLING = shift_sampling(get_preset("tiny"), negatives="shift", shift_range_s=None, augment=True)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    for i in range(4):
        make_event_video(folder / f"ev{i}.mp4", i)
    return folder


def _prepare(videos: Path, out: Path) -> int:
    return main(["prepare", str(videos), "--out", str(out), "--preset", "tiny", "--clips-per-shard", str(PER_SHARD),
                 "--quiet"])


@pytest.fixture(scope="module")
def shard_dir(videos, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards") / "tiny"
    assert _prepare(videos, out) == 0
    return out


def test_prepare_cli_reports_and_fits_the_preset(videos, shard_dir, capsys, tmp_path):
    capsys.readouterr()
    assert _prepare(videos, shard_dir) == 0  # a rerun finds every shard done
    out = capsys.readouterr().out
    assert f"{N_SEGMENTS} segments from 4 videos in 4 shards" in out and "0 written now, 4 already done" in out
    assert str(shard_dir / "report.json") in out and f"--data {shard_dir} --preset tiny" in out
    report = json.loads((shard_dir / "report.json").read_text())
    assert report["samples"] == N_SEGMENTS and len(report["shards"]) == 4 and not report["skipped_files"]
    settings = shard_settings(get_preset("tiny"))
    assert report["params"]["size"] == [37, 37] and report["params"]["segment_frames"] == 20
    assert report["params"]["min_segment_frames"] == 13 and settings["sample_rate"] == 21000
    # the paper preset's segments are the shard module's defaults (10.0 s, 6.2 s)
    from avscene.data.shards import MIN_SEGMENT_S, SEGMENT_S
    paper = shard_settings(get_preset("paper"))
    assert paper["size"] == 256 and paper["clip_s"] == pytest.approx(SEGMENT_S, abs=1e-3)
    assert paper["min_clip_s"] == pytest.approx(MIN_SEGMENT_S, abs=1e-3)

    # a missing input folder: one line naming it, nothing written
    assert _prepare(tmp_path / "nowhere", tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(tmp_path / "nowhere") in err and "no such file or folder" in err
    assert not (tmp_path / "out").exists()


def test_train_shift_from_a_shard_folder(shard_dir, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "shift", "--data", str(shard_dir), "--preset", "tiny", "--out", str(run), "--steps", "3",
            "--batch-size", "4", "--workers", "2", "--log-every", "1", "--val-every", "3", "--ckpt-every", "3",
            "--n-val", "4", "--quiet"]
    assert main(argv) == 0
    assert (run / "checkpoint.pt").is_file() and (run / "log.csv").is_file()
    rows = json.loads((run / "log.json").read_text())
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(math.isfinite(r["loss"]) for r in rows) and math.isfinite(rows[-1]["val_loss"])
    assert "checkpoint:" in capsys.readouterr().out


def test_shard_specs_patterns_and_urls(shard_dir):
    assert is_shard_data(shard_dir) and is_shard_data("s/shard-{000000..000003}.tar")
    assert is_shard_data("https://host/s/shard-000000.tar") and is_shard_data("pipe:cat x")
    assert not is_shard_data(shard_dir.parent) and not is_shard_data("synthetic")
    cfg = get_preset("tiny")
    # a brace pattern: 10 % of the 4 shards held out for validation (at least one)
    task = make_shift_task(str(shard_dir / "shard-{000000..000003}.tar"), cfg, n_val=2)
    assert isinstance(task.train_index, ShardSet) and isinstance(task.val_index, ShardSet)
    assert len(task.train_index) + len(task.val_index) == 4
    assert not set(task.train_index.urls) & set(task.val_index.urls)
    assert task.train_index.samples == PER_SHARD * len(task.train_index)
    # a piped url trains (segment count unknown), validated on the folder
    url = f"pipe:cat {shard_dir}/shard-{{000000..000003}}.tar"
    task = make_shift_task(url, cfg, val_data=shard_dir, n_val=2)
    assert task.train_index.samples is None and len(task.train_index) == 4
    ex = task.train_dataset()[0]
    assert ex["frames"].shape == (8, 32, 32, 3) and ex["audio_aligned"].shape == (2, cfg.n_samples)
    assert len(task.val_batches()) == 1 and task.val_batches()[0]["frames"].shape[0] == 2


def test_shard_errors_are_one_clear_line(shard_dir, tmp_path, capsys):
    def error(*argv) -> str:
        assert main(["train", "shift", "--out", str(tmp_path / "run"), "--steps", "1", "--quiet", *argv]) == 2
        return capsys.readouterr().err.strip()

    err = error("--data", str(shard_dir), "--preset", "small")  # shards made for another preset
    assert str(shard_dir) in err and "37x37" in err and "73x73" in err and "--preset" in err
    err = error("--data", "s3://bucket/shard-000000.tar", "--preset", "tiny")
    assert "s3://bucket/shard-000000.tar" in err and "pipe:aws s3 cp" in err
    err = error("--data", str(shard_dir), "--preset", "tiny", "--negatives", "random-pair")
    assert "random-pair" in err
    err = error("--data", str(tmp_path / "none-{0..3}.tar"), "--preset", "tiny")
    assert "none-0.tar" in err and "no such shard" in err
    err = error("--data", str(shard_dir), "--preset", "tiny", "--workers", "4")  # 3 training shards, 4 readers
    assert "3 training shards for 1 processes x 4 data workers" in err and "\n" not in err


def _keys(shards: ShardSet, rank: int, steps: int, *, start_step: int = 0, workers: int = 2) -> list[str]:
    """Keys of what rank ``rank`` of 2 trains on in ``steps`` steps of 4 clips (micro-batch 1),
    through the training loop's sampler and a DataLoader with ``workers`` workers."""
    ds = ShardShiftExamples(shards, SAMPLING, seed=1, buffer=4, rank=rank, world_size=2)
    sampler = MicroBatchSampler(start_step, start_step + steps, 4, 1, Runtime(rank, 2, 0, torch.device("cpu")))
    return [k for batch in DataLoader(ds, batch_sampler=sampler, num_workers=workers) for k in batch["key"]]


def test_two_ranks_two_workers_see_every_segment_once_per_epoch(shard_dir):
    shards = open_shards(shard_dir, SAMPLING)
    assert shards.samples == N_SEGMENTS
    # 2 ranks x 2 workers, 1 shard each: 7 steps of 4 clips = one epoch, the next 7 the next one
    streams = [_keys(shards, rank, 14) for rank in range(2)]
    epoch0 = Counter(k for keys in streams for k in keys[:14])
    epoch1 = Counter(k for keys in streams for k in keys[14:])
    assert len(epoch0) == N_SEGMENTS and set(epoch0.values()) == {1} and epoch1 == epoch0
    assert [k for keys in streams for k in keys[14:]] != [k for keys in streams for k in keys[:14]]  # reshuffled
    assert _keys(shards, 0, 14) == streams[0]  # deterministic
    # a run resumed at the epoch boundary goes on with the second epoch, example for example
    assert [_keys(shards, rank, 7, start_step=7) for rank in range(2)] == [keys[14:] for keys in streams]
