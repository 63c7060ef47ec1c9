"""The speed levers of inference (issue 28) change the work, not the answers: the split forward
of the offset scan, the coarse-to-fine scan, --no-scan, bf16, --device cpu, --out-size, and the
background encoder."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from avscene import cli
from avscene.checkpoints import save_checkpoint
from avscene.infer.background import in_background, prefetched
from avscene.infer.localize import LocalizeOptions, localize_file, write_cam_outputs
from avscene.infer.sync import SyncOptions, _fine_offsets, audio_tracks, scan_plan, scan_window, sync_clip
from avscene.media import probe
from avscene.models import ShiftNet, get_preset
from avscene.windows import inference
from conftest import make_event_video


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return ShiftNet(get_preset("tiny", n_frames=16)).eval()


@pytest.fixture(scope="module")
def tiny_media(tiny):
    """Frames (T, 32, 32, 3) and audio (N, 2) at the tiny net's rates: 80 frames of noise."""
    cfg = tiny.config
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (80, cfg.crop_size, cfg.crop_size, 3), dtype=np.uint8)
    audio = rng.uniform(-0.5, 0.5, (int(80 * cfg.sample_rate / cfg.fps) + 1, 2)).astype(np.float32)
    return frames, audio


def test_split_scan_gives_the_plain_forward_logits(tiny, tiny_media):
    """Stem once + audio features per track + fused trunk == forward() on each (video, track)."""
    frames, audio = tiny_media
    cfg = tiny.config
    offsets = np.arange(-5, 6)
    split = scan_window(tiny, frames[10 : 10 + cfg.n_frames], audio, offsets, -10, chunk=4)  # (K,) in 3 chunks
    video = torch.from_numpy(frames[10 : 10 + cfg.n_frames]).permute(3, 0, 1, 2)[None].float() * 2 / 255 - 1
    tracks = torch.from_numpy(audio_tracks(audio, offsets, -10, cfg))  # (K, C, N)
    with torch.no_grad():
        plain = torch.stack([tiny(video, track[None])[0] for track in tracks]).numpy()
    np.testing.assert_allclose(split, plain, rtol=1e-5, atol=1e-5)


def test_shared_audio_features_between_windows_change_nothing(tiny, tiny_media):
    """Overlapping windows reuse the features of the tracks they share: same scan as without."""
    frames, audio = tiny_media
    options = SyncOptions(max_offset_s=0.2, hop_s=0.1, max_windows=None)
    shared = sync_clip(tiny, frames, audio, options)
    one_by_one = [scan_window(tiny, frames[round(w.start_s * float(tiny.config.fps)):][:16], audio,
                              shared.offsets_frames, -round(w.start_s * float(tiny.config.fps)))
                  for w in shared.windows]
    assert len(shared.windows) > 3
    np.testing.assert_allclose(np.stack([w.scores for w in shared.windows]), np.stack(one_by_one), atol=1e-5)


def test_coarse_plan_reaches_every_offset():
    coarse, radius = scan_plan(60, 4)
    assert radius == 2 and coarse[0] == -60 and coarse[-1] == 60 and 0 in coarse
    every = np.arange(-60, 61)
    assert np.abs(every[:, None] - coarse[None]).min(1).max() <= radius  # each offset near a coarse one
    assert list(scan_plan(3, 1)[0]) == [-3, -2, -1, 0, 1, 2, 3]


def test_fine_offsets_surround_the_best_coarse_peaks():
    coarse = np.array([-8, -4, 0, 4, 8])
    fine = _fine_offsets(coarse, np.array([0.0, 3.0, 1.0, 2.0, 0.5]), 2, 2, 8)
    assert list(fine) == [-6, -5, -4, -3, -2, 2, 3, 4, 5, 6]


class PeakOracle(torch.nn.Module):
    """Scores a track by how close the frame its audio starts at is to the window's first frame
    plus a known offset, smoothly, as a trained net's scan peaks: frames carry their index as
    their value, audio the index of the frame it plays with (over 1000)."""

    def __init__(self, truth: int):
        super().__init__()
        self.config = get_preset("tiny", n_frames=16)
        self.truth = truth
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def score_audios(self, video, audios, chunk=16):
        start = torch.round((video[0, 0, 0, 0, 0] + 1) * 255 / 2)  # the window's first frame
        track_start = audios[:, 0, 0] * 1000  # (K,) the frame each track starts at
        return -((track_start - start - self.truth) ** 2) / 10  # (K,)


@pytest.mark.parametrize("truth", [-37, -2, 0, 5, 41])
def test_coarse_to_fine_scan_finds_what_the_full_scan_finds(truth):
    oracle = PeakOracle(truth)
    cfg = oracle.config
    n_frames = 200
    frames = np.ascontiguousarray(np.broadcast_to(np.arange(n_frames, dtype=np.uint8)[:, None, None, None],
                                                  (n_frames, 32, 32, 3)))
    frame_of_sample = np.arange(int(n_frames * cfg.sample_rate / cfg.fps)) * float(cfg.fps) / cfg.sample_rate
    audio = np.repeat((np.round(frame_of_sample) / 1000).astype(np.float32)[:, None], 2, 1)
    full = sync_clip(oracle, frames, audio, SyncOptions(max_offset_s=2.0, max_windows=None))
    fast = sync_clip(oracle, frames, audio, SyncOptions(max_offset_s=2.0, max_windows=None, step=4))
    assert full.offset_frames == truth
    assert len(fast.offsets_frames) < len(full.offsets_frames) / 3
    assert fast.offset_frames == full.offset_frames
    assert 0 in fast.offsets_frames  # the aligned probability needs offset 0
    assert fast.aligned_probability == pytest.approx(full.aligned_probability, abs=1e-6)


def test_no_scan_scores_offset_zero_once_per_window(tiny, tiny_media):
    frames, audio = tiny_media
    result = sync_clip(tiny, frames, audio, SyncOptions(scan=False, max_windows=None))
    full = sync_clip(tiny, frames, audio, SyncOptions(max_offset_s=0.3, max_windows=None))
    assert list(result.offsets_frames) == [0] and not result.scanned
    assert result.aligned_probability == pytest.approx(full.aligned_probability, abs=1e-5)
    assert "not scanned" in result.describe() and result.to_dict()["scanned"] is False


def test_bf16_scan_stays_close_to_fp32(tiny, tiny_media):
    frames, audio = tiny_media
    a = sync_clip(tiny, frames, audio, SyncOptions(max_offset_s=0.3))
    b = sync_clip(tiny, frames, audio, SyncOptions(max_offset_s=0.3, precision="bf16", channels_last=True))
    assert np.abs(a.scores - b.scores).max() < 0.05 * max(1.0, np.abs(a.scores).max())
    with pytest.raises(ValueError, match="precision"):
        SyncOptions(precision="fp16")


def test_inference_context_restores_training_mode(tiny):
    tiny.train()
    with inference(tiny, "bf16"):
        assert not tiny.training and torch.is_inference_mode_enabled()
    assert tiny.training
    tiny.eval()


@pytest.fixture(scope="module")
def event_video(tmp_path_factory):
    path, _ = make_event_video(tmp_path_factory.mktemp("speed") / "events.mp4", 4, n_frames=90, size=64)
    return path


def test_out_size_scales_the_map_and_the_overlay(event_video, tmp_path, tiny):
    full = localize_file(tiny, event_video)
    small = localize_file(tiny, event_video, LocalizeOptions(out_size=32))
    assert small.cam.shape == (full.n_frames, 32, 32) and small.out_hw == (32, 32)
    np.testing.assert_allclose(small.cells, full.cells)  # same network output, another rendering
    np.testing.assert_allclose(small.peaks[:, :2], full.peaks[:, :2], atol=1.0)  # in original pixels both
    paths = write_cam_outputs(small, tmp_path)
    info = probe(paths["video"])
    assert (info.height, info.width) == (32, 32) and info.has_audio
    assert LocalizeOptions(out_size=1000).output_hw((64, 96)) == (64, 96)  # never above the source


def test_background_writer_keeps_order_and_raises_errors():
    seen, threads = [], set()

    def work(x):
        threads.add(threading.get_ident())
        if x == "bad":
            raise OSError("disk full")
        seen.append(x)

    with in_background(work) as write:
        for i in range(5):
            write(i)
    assert seen == [0, 1, 2, 3, 4] and threading.get_ident() not in threads
    with pytest.raises(OSError, match="disk full"):
        with in_background(work) as write:
            write("bad")


def test_prefetched_reads_ahead_in_order_and_raises_where_the_read_failed():
    started, threads = [], set()

    def read(x):
        threads.add(threading.get_ident())
        started.append(x)
        if x == 3:
            raise OSError("unreadable window")
        return x * 10

    got = []
    with pytest.raises(OSError, match="unreadable window"):
        for item, value in prefetched(read, range(6)):
            assert started[-1] >= item  # read no later than asked for
            assert len(started) <= item + 2  # at most one ahead
            got.append((item, value))
    assert got == [(0, 0), (1, 10), (2, 20)] and threading.get_ident() not in threads
    assert list(prefetched(read, [])) == [] and list(prefetched(read, [1])) == [(1, 10)]


def test_cli_sync_no_scan_and_fast_scan_on_cpu(event_video, tmp_path, tiny, capsys):
    ckpt = save_checkpoint(tmp_path / "tiny.pt", {"task": "shift", "model_config": tiny.config.to_dict(),
                                                  "model": tiny.state_dict()})
    out = tmp_path / "sync.json"
    assert cli.main(["sync", str(event_video), "--model", str(ckpt), "--device", "cpu", "--no-scan",
                     "--json", str(out)]) == 0
    assert json.loads(out.read_text())[0]["scan"]["offsets_frames"] == [0]
    assert "not scanned" in capsys.readouterr().out
    out2 = tmp_path / "fast.json"
    assert cli.main(["sync", str(event_video), "--model", str(ckpt), "--device", "cpu", "--step", "4",
                     "--precision", "fp32", "--max-offset", "0.5", "--json", str(out2)]) == 0
    scanned = json.loads(out2.read_text())[0]["scan"]["offsets_frames"]
    assert 0 in scanned and len(scanned) < 31
    out3 = tmp_path / "all.json"  # the coarse stage on every window (--coarse-windows 0)
    assert cli.main(["sync", str(event_video), "--model", str(ckpt), "--device", "cpu", "--step", "2",
                     "--coarse-windows", "0", "--max-offset", "0.5", "--json", str(out3)]) == 0
    assert 0 in json.loads(out3.read_text())[0]["scan"]["offsets_frames"]
    assert cli.main(["sync", str(event_video), "--model", str(ckpt), "--no-scan", "--fix", str(tmp_path / "f.mp4")]) == 2


def test_cli_localize_out_size(event_video, tmp_path, tiny):
    ckpt = save_checkpoint(tmp_path / "tiny.pt", {"task": "shift", "model_config": tiny.config.to_dict(),
                                                  "model": tiny.state_dict()})
    assert cli.main(["localize", str(event_video), "-o", str(tmp_path / "out"), "--model", str(ckpt),
                     "--device", "cpu", "--out-size", "32"]) == 0
    assert probe(tmp_path / "out" / "events_cam.mp4").height == 32
    with pytest.raises(SystemExit):
        cli.main(["localize", str(event_video), "-o", str(tmp_path / "o2"), "--out-size", "tiny"])


def test_many_windows_are_read_again_not_held(tiny, tiny_media, monkeypatch):
    """Past HELD_WINDOWS the fine stage decodes windows again (bounded memory): same scan."""
    from avscene.infer import sync

    frames, audio = tiny_media
    options = SyncOptions(max_offset_s=0.5, hop_s=0.3, max_windows=None, step=4, coarse_windows=2)
    held = sync_clip(tiny, frames, audio, options)
    monkeypatch.setattr(sync, "HELD_WINDOWS", 1)
    streamed = sync_clip(tiny, frames, audio, options)
    assert len(held.windows) > 1
    np.testing.assert_array_equal(held.offsets_frames, streamed.offsets_frames)
    np.testing.assert_allclose(held.scores, streamed.scores, atol=1e-5)
