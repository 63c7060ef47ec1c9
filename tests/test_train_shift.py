"""Shift pretraining: the examples are right, and training resumes and scales exactly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from avscene.constants import frame_to_sample
from avscene.data.shift_pairs import HeldVideos, ShiftPairs, ShiftSampling
from avscene.data.videos import index_videos
from avscene.models import get_preset
from avscene.checkpoints import load_checkpoint


def _sampling(**kw) -> ShiftSampling:
    cfg = get_preset("tiny")
    base = dict(n_frames=cfg.n_frames, fps=cfg.fps, sample_rate=cfg.sample_rate, crop_size=32, full_size=36,
                shift_range_s=(0.5, 1.5), augment=False)
    return ShiftSampling(**{**base, **kw})


def _onsets(audio_cn: np.ndarray, threshold=0.3) -> np.ndarray:
    loud = np.abs(audio_cn).max(axis=0) > threshold
    return np.flatnonzero(loud[1:] & ~loud[:-1]) + 1


def _flashes(frames: np.ndarray) -> np.ndarray:
    bright = frames.reshape(len(frames), -1).mean(axis=1) > 120
    return np.flatnonzero(bright[1:] & ~bright[:-1]) + 1


def test_aligned_and_shifted_audio_match_the_events(event_videos):
    folder, _ = event_videos
    sampling = _sampling(n_frames=60)  # 2 s windows so several events fall inside
    pairs = ShiftPairs(index_videos(folder, min_duration_s=sampling.min_video_s), sampling, seed=3)
    checked = 0
    for i in range(12):
        ex = pairs[i]
        frames, aligned, shifted = ex["frames"].numpy(), ex["audio_aligned"].numpy(), ex["audio_shifted"].numpy()
        shift = ex["shift_frames"]
        lo, hi = sampling.shift_frames
        assert lo <= abs(shift) <= hi
        assert aligned.shape == shifted.shape == (2, sampling.n_samples)
        flashes = _flashes(frames)
        for f in flashes:  # every flash inside the window has its burst in the aligned audio
            expected = frame_to_sample(f, sampling.fps, sampling.sample_rate)
            assert np.min(np.abs(_onsets(aligned) - expected)) <= 0.004 * sampling.sample_rate
            checked += 1
        assert not np.allclose(aligned, shifted)
    assert checked >= 10


def test_examples_are_a_function_of_their_id(event_videos):
    folder, _ = event_videos
    sampling = _sampling(augment=True)
    index = index_videos(folder, min_duration_s=sampling.min_video_s)
    a, b = ShiftPairs(index, sampling, seed=0), ShiftPairs(index, sampling, seed=0)
    for i in (0, 5, 123456789):
        x, y = a[i], b[i]
        assert all(torch.equal(x[k], y[k]) for k in ("frames", "audio_aligned", "audio_shifted"))
    assert not torch.equal(a[1]["audio_aligned"], a[2]["audio_aligned"])


def test_a_small_set_is_held_decoded_and_cut_as_the_reader_cuts_windows(event_videos):
    folder, _ = event_videos
    sampling = _sampling()
    index = index_videos(folder, min_duration_s=sampling.min_video_s)
    held = ShiftPairs(index, sampling, seed=0)
    assert held.held.enabled
    windows = ShiftPairs(index, sampling, seed=0)
    windows.held = HeldVideos(sampling, index, max_bytes=0)  # too small for anything: window reads
    assert not windows.held.enabled
    for start in (0, 7, 31):
        frames, audio = held._read(index.videos[0], start, sampling.n_frames + 1)
        want_frames, want_audio = windows._read(index.videos[0], start, sampling.n_frames + 1)
        assert np.array_equal(frames, want_frames)
        n = min(len(audio), len(want_audio))
        assert n >= sampling.n_samples and np.array_equal(audio[:n], want_audio[:n])
    assert list(held.held.videos) == [index.videos[0].path]  # decoded once, on first use


def test_flip_swaps_stereo_channels():
    sampling = _sampling(augment=True, crop_size=4, full_size=4)
    pairs = ShiftPairs.__new__(ShiftPairs)
    pairs.sampling = sampling
    frames = np.zeros((2, 4, 4, 3), np.uint8)
    frames[:, :, :2] = 255  # bright on the left
    audio = np.zeros((10, 2), np.float32)
    audio[:, 0] = 1.0  # loud on the left
    flipped_seen = 0
    for seed in range(20):
        f, a, s = pairs._augment(frames, audio, audio.copy(), np.random.default_rng(seed))
        left_bright = f[0, :, :2].mean() > f[0, :, 2:].mean()
        left_loud = a[:, 0].mean() > a[:, 1].mean()
        assert left_bright == left_loud  # picture and sound stay on the same side
        flipped_seen += not left_bright
    assert 0 < flipped_seen < 20


def _train_cmd(data: Path, out: Path, steps: int, **extra) -> list[str]:
    args = [sys.executable, "-m", "avscene", "train", "shift", "--data", str(data), "--out", str(out),
            "--preset", "tiny", "--steps", str(steps), "--batch-size", "4", "--workers", "0", "--quiet",
            "--n-val", "4", "--val-every", "5", "--log-every", "5", "--shift-range", "0.5", "1.5"]
    for key, value in extra.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def _params(ckpt: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(ckpt)["model"]


def test_killed_training_resumes_exactly(event_videos, tmp_path):
    folder, _ = event_videos
    steps = 30
    ref = tmp_path / "ref"
    subprocess.run(_train_cmd(folder, ref, steps, ckpt_every=5), check=True, timeout=300)

    run = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(folder, run, steps, ckpt_every=5))
    ckpt = run / "checkpoint.pt"
    deadline = time.time() + 240
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(ckpt)["step"]
    assert killed_at < steps, "training finished before it could be killed"
    subprocess.run(_train_cmd(folder, run, steps, ckpt_every=5), check=True, timeout=300)

    final, expected = _params(ckpt), _params(ref / "checkpoint.pt")
    assert load_checkpoint(ckpt)["step"] == steps
    for name, tensor in expected.items():
        assert torch.equal(final[name], tensor), name
    for name in ("log.csv", "log.json", "curves.png", "config.json"):
        assert (run / name).is_file()
    log = (run / "log.csv").read_text().splitlines()
    assert len(log) == 1 + steps // 5 and "val_acc" in log[0]


def test_a_run_continued_with_an_lr_drop_equals_one_trained_with_it(event_videos, tmp_path):
    """The separation recipe (lr x 0.1 late in training) can extend a finished constant-lr run:
    the first step after resuming already uses the dropped lr."""
    folder, _ = event_videos
    ref = tmp_path / "ref"
    subprocess.run(_train_cmd(folder, ref, 10, ckpt_every=5, log_every=1, lr_drop_step=5), check=True, timeout=300)
    run = tmp_path / "continued"
    subprocess.run(_train_cmd(folder, run, 5, ckpt_every=5, log_every=1), check=True, timeout=300)
    subprocess.run(_train_cmd(folder, run, 10, ckpt_every=5, log_every=1, lr_drop_step=5), check=True, timeout=300)

    final, expected = _params(run / "checkpoint.pt"), _params(ref / "checkpoint.pt")
    for name, tensor in expected.items():
        assert torch.equal(final[name], tensor), name
    lrs = [row["lr"] for row in load_checkpoint(run / "checkpoint.pt")["log"]]
    assert lrs == pytest.approx([1e-2] * 5 + [1e-3] * 5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_reach_the_parameters_of_one(event_videos, tmp_path):
    folder, _ = event_videos
    steps = 6
    # Same intra-op thread count in both runs: with batch-norm over 2 clips, float rounding
    # differences between 1 and 2 threads grow to ~1e-3 in 6 steps and would hide real errors.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = tmp_path / "one"  # 1 process, 2 micro-batches accumulated
    subprocess.run(_train_cmd(folder, one, steps, micro_batch=2), check=True, timeout=300, env=env)
    two = tmp_path / "two"  # 2 processes, 1 micro-batch each
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
                f"--master_port={_free_port()}"]
    cmd = _train_cmd(folder, two, steps, micro_batch=2)
    subprocess.run(launcher + cmd[1:], check=True, timeout=300, env=env)
    a, b = _params(one / "checkpoint.pt"), _params(two / "checkpoint.pt")
    for name, tensor in a.items():
        if name.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue  # buffers: DDP keeps rank 0's, one process saw both micro-batches
        torch.testing.assert_close(b[name], tensor, rtol=1e-6, atol=1e-7, msg=name)
    init = _params_at_init()
    moved = sum(not torch.allclose(a[k], init[k]) for k in init if k in a and a[k].is_floating_point())
    assert moved > 10  # training changed the weights, so the comparison means something


def _params_at_init() -> dict[str, torch.Tensor]:
    from avscene.models import ShiftNet

    torch.manual_seed(0)
    return ShiftNet(get_preset("tiny")).state_dict()


def test_fine_tuning_starts_from_a_checkpoint_in_another_cam_layout(tmp_path):
    from avscene.checkpoints import save_checkpoint
    from avscene.data.videos import VideoIndex
    from avscene.models import ShiftNet
    from avscene.train.shift import ShiftTask

    trained = ShiftNet(get_preset("tiny"))
    path = save_checkpoint(tmp_path / "shift.pt", {"task": "shift", "model_config": trained.config.to_dict(),
                                                   "model": trained.state_dict(), "step": 7})
    empty = VideoIndex((), ())
    fine = ShiftTask(get_preset("tiny", cam=True, fine_cam=True), empty, empty, init=path).build_model()
    assert fine.config.fine_cam
    for name, tensor in trained.state_dict().items():
        assert torch.equal(fine.state_dict()[name], tensor), name
    assert not torch.equal(ShiftTask(get_preset("tiny"), empty, empty).build_model().head.weight, trained.head.weight)
    with pytest.raises(ValueError, match="shift.pt.*stem_width"):
        ShiftTask(get_preset("tiny", stem_width=16, trunk_widths=(16, 16, 32)), empty, empty, init=path).build_model()


def test_cli_offers_every_synthetic_world():
    from avscene import cli
    from avscene.synth.worlds import SYNTHETIC_SEPARATION_WORLDS, SYNTHETIC_SYNC_WORLDS

    assert cli.SYNTHETIC_SYNC_WORLD_NAMES == tuple(sorted(SYNTHETIC_SYNC_WORLDS))
    assert cli.SYNTHETIC_SEPARATION_WORLD_NAMES == tuple(sorted(SYNTHETIC_SEPARATION_WORLDS))


def test_cli_offers_the_separation_phases():
    from avscene import cli
    from avscene.models.separation_net import DEFAULT_PHASE, PHASE_SOURCES

    assert (cli.SEPARATION_PHASES, cli.DEFAULT_SEPARATION_PHASE) == (PHASE_SOURCES, DEFAULT_PHASE)


def test_every_synthetic_world_makes_scenes_of_its_motions():
    from avscene.synth import MOTIONS, SceneConfig, generate_scene
    from avscene.synth.worlds import SYNTHETIC_SYNC_WORLDS

    kinds = {}
    for name, world in SYNTHETIC_SYNC_WORLDS.items():
        config = SceneConfig(task="sync", duration_s=1.5, **world)
        scenes = [generate_scene(config, seed) for seed in range(6)]
        kinds[name] = {o.kind for s in scenes for o in s.objects if o.sounding}
        lo, hi = world.get("n_objects", config.n_objects)
        assert all(lo <= len(s.objects) <= hi for s in scenes), name
    assert kinds["pulses"] == kinds["pulses-crowd"] == {"pulse"}
    assert len(kinds["motions"]) >= 3 and kinds["motions"] <= set(MOTIONS)  # all kinds, not just pulses


def test_train_shift_crop_size_overrides_the_preset(event_videos, tmp_path):
    from avscene import cli

    folder, _ = event_videos
    argv = _train_cmd(folder, tmp_path / "run", 1, crop_size=40, val_every=1)[3:]  # drop python -m avscene
    assert cli.main(argv) == cli.EXIT_OK
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ckpt["model_config"]["crop_size"] == 40
    assert ckpt["step"] == 1
