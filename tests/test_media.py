"""The media layer: round trips that keep sync, resampling, resizing, and every bad input."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from avscene import cli
from avscene.constants import frame_to_sample
from avscene.media import (ClipRangeError, MediaError, NoStreamError, probe, read_clip, write_video,
                           write_wav)
from conftest import make_click_video, make_vfr_video


def _onset(audio: np.ndarray, threshold: float = 0.3) -> int:
    return int(np.argmax(np.abs(audio).max(axis=1) > threshold))


def _bright_frame(frames: np.ndarray) -> int:
    return int(np.argmax(frames.reshape(len(frames), -1).mean(axis=1) > 120))


# --- round trips --------------------------------------------------------------------------------

@pytest.mark.parametrize("fps, rate", [
    (Fraction(30000, 1001), 21000),
    (Fraction(25), 16000),
    (Fraction(30), 44100),
    (Fraction(24000, 1001), 48000),
    (Fraction(729, 100), 22050),
])
def test_click_at_frame_k_is_found_at_its_sample(tmp_path, fps, rate):
    k, n = 23, 40
    path = make_click_video(tmp_path / "v.mp4", fps=fps, sample_rate=rate, n_frames=n, click_frame=k)
    clip = read_clip(path, fps=fps, sample_rate=rate)
    assert clip.n_frames == n
    assert clip.n_samples == frame_to_sample(n, fps, rate)
    assert _bright_frame(clip.frames) == k
    tolerance = round(0.003 * rate)  # 3 ms
    assert abs(_onset(clip.audio) - frame_to_sample(k, fps, rate)) <= tolerance


def test_probe_describes_the_file(click_video):
    info = probe(click_video)
    assert info.fps == Fraction(30000, 1001)
    assert (info.width, info.height, info.n_frames) == (64, 48, 90)
    assert info.has_audio and info.has_video and info.channels == 2
    assert abs(info.duration_s - 90 * 1001 / 30000) < 0.05
    assert info.to_dict()["fps"] == "30000/1001"


def test_window_after_a_seek_keeps_audio_and_video_aligned(click_video):
    fps, rate = Fraction(30000, 1001), 21000
    start_frame = 31  # start exactly on a frame: the click is then at frame 9 and its sample
    clip = read_clip(click_video, float(start_frame / fps), 1.0, fps=fps, sample_rate=rate)
    assert clip.n_frames == 29 and clip.n_samples == frame_to_sample(29, fps, rate)
    assert _bright_frame(clip.frames) == 40 - start_frame
    assert abs(_onset(clip.audio) - frame_to_sample(40 - start_frame, fps, rate)) <= 63


def test_audio_is_the_same_with_or_without_video(tmp_path):
    """An audio-only read seeks straight to the window; without a decoder pre-roll AAC's first
    frame after the seek comes out wrong, and shift negatives (audio-only reads) would differ
    from positives (read with video) in a way a network could learn to spot. A 220 Hz tone keeps
    the test blind to the resampler's sub-sample phase (+-24 us at 21 kHz), which differs
    between any two seeks and is no cue."""
    fps, rate = Fraction(30000, 1001), 22050
    n = frame_to_sample(150, fps, rate)
    tone = 0.5 * np.sin(2 * np.pi * 220 * np.arange(n) / rate)
    frames = np.zeros((150, 32, 32, 3), np.uint8)
    path = write_video(tmp_path / "tone.mp4", frames, fps, np.stack([tone, tone], 1).astype(np.float32), rate)
    for start in (1.0, 2.37, 3.5):
        both = read_clip(path, start, 1.0, fps=fps, sample_rate=21000).audio
        alone = read_clip(path, start, 1.0, fps=fps, sample_rate=21000, video=False).audio
        n = min(len(both), len(alone))
        assert np.abs(both[:n] - alone[:n]).max() < 0.03, start


def test_resampling_rate_and_channels(click_video):
    clip = read_clip(click_video, 0.5, 2.0, fps=15, sample_rate=16000, channels=1)
    assert clip.frames.shape[0] == 30 and clip.audio.shape == (32000, 1)
    assert clip.audio.dtype == np.float32 and np.abs(clip.audio).max() <= 1.0
    # the flash at 40/29.97 = 1.335 s is at output frame ceil((1.335 - 0.5) * 15) = 13
    assert _bright_frame(clip.frames) == 13
    assert abs(_onset(clip.audio) - round((40 * 1001 / 30000 - 0.5) * 16000)) <= 48


@pytest.mark.parametrize("fps", [7.29, 19.62])
def test_odd_frame_rates_round_trip(tmp_path, fps):
    path = make_click_video(tmp_path / "odd.mp4", fps=fps, sample_rate=22050, n_frames=30, click_frame=12)
    info = probe(path)
    assert abs(float(info.fps) - fps) < 1e-6
    clip = read_clip(path, sample_rate=22050)
    assert clip.n_frames == 30 and _bright_frame(clip.frames) == 12


def test_variable_frame_rate_is_resampled_to_a_constant_rate(tmp_path):
    times = [0.0, 0.1, 0.15, 0.5, 0.55, 0.6, 1.0, 1.2]  # irregular
    path = make_vfr_video(tmp_path / "vfr.mp4", times)
    clip = read_clip(path, 0.0, 1.2, fps=10, audio=False)
    assert clip.n_frames == 12 and clip.audio is None
    shown = np.round(clip.frames[:, 0, 0, 0] / 10).astype(int)
    # at t = i / 10 the frame on screen is the latest one with time <= t
    expected = [max(j for j, t in enumerate(times) if t <= i / 10 + 1e-9) for i in range(12)]
    assert shown.tolist() == expected


@pytest.mark.parametrize("fit, expect_hw", [("crop", (32, 32)), ("pad", (32, 32)), ("squash", (32, 32))])
def test_resize_modes(tmp_path, fit, expect_hw):
    # a 64x32 (w x h) frame: left half red, right half blue
    frames = np.zeros((4, 32, 64, 3), np.uint8)
    frames[:, :, :32, 0] = 255
    frames[:, :, 32:, 2] = 255
    path = write_video(tmp_path / "wide.mp4", frames, 10)
    out = read_clip(path, size=32, fit=fit, audio=False).frames[0]
    assert out.shape[:2] == expect_hw
    if fit == "pad":  # letterboxed: black bars above and below, full width kept
        assert out[:6].max() < 40 and out[-6:].max() < 40
        assert out[16, 2, 0] > 200 and out[16, -3, 2] > 200
    elif fit == "crop":  # centre crop: both colours, image fills the frame
        assert out[16, 2, 0] > 200 and out[16, -3, 2] > 200 and out[0].min(axis=1).max() < 255
        assert out.reshape(-1, 3).max(axis=1).min() > 150  # no black bars
    else:
        assert out.reshape(-1, 3).max(axis=1).min() > 150


def test_squash_crop_is_the_releases_squash_to_8_7_then_centre_crop(tmp_path):
    """The release's input (256 x 256 squash, 224 centre crop) at any side, and its geometry."""
    from avscene.infer.separate import model_box
    from avscene.media.geometry import FitGeometry

    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 256, (1, 36, 80, 3), dtype=np.uint8), 3, axis=0)
    path = write_video(tmp_path / "wide.mp4", frames, 10)
    out = read_clip(path, size=56, fit="squash-crop", audio=False).frames[0]
    squashed = read_clip(path, size=64, fit="squash", audio=False).frames[0]  # 56 * 8 / 7 = 64
    assert out.shape == (56, 56, 3) and np.array_equal(out, squashed[4:60, 4:60])
    geo = FitGeometry.of((36, 80), 56, "squash-crop")
    assert geo.scaled_hw == (64, 64) and geo.offset == (4, 4)
    assert model_box((0, 0, 40, 36), (36, 80), 56, "squash-crop") == (0, 0, 28, 56)  # left half of the frame


def test_six_channel_audio_is_downmixed(tmp_path):
    rate, n = 48000, 48000
    audio = np.zeros((n, 6), np.float32)
    t = np.arange(n) / rate
    audio[:, 0] = 0.3 * np.sin(2 * np.pi * 440 * t)  # front left only
    audio[:, 1] = 0.3 * np.sin(2 * np.pi * 660 * t)  # front right only
    path = write_video(tmp_path / "six.mp4", np.zeros((25, 16, 16, 3), np.uint8), 25, audio, rate)
    assert probe(path).channels == 6
    stereo = read_clip(path, sample_rate=rate, channels=2).audio
    mono = read_clip(path, sample_rate=rate, channels=1).audio
    assert stereo.shape == (n, 2) and mono.shape == (n, 1)
    spec = np.abs(np.fft.rfft(stereo[4800:43200], axis=0))
    freqs = np.fft.rfftfreq(43200 - 4800, 1 / rate)
    left, right = spec[:, 0], spec[:, 1]
    i440, i660 = np.argmin(np.abs(freqs - 440)), np.argmin(np.abs(freqs - 660))
    assert left[i440] > 10 * left[i660] and right[i660] > 10 * right[i440]  # channels kept apart
    assert np.abs(mono).max() > 0.05


def test_real_clips_decode_a_paper_window(real_clips):
    for path in real_clips:
        info = probe(path)
        assert info.has_video and info.has_audio, path
        clip = read_clip(path, 0.0, 4.2, fps=Fraction(30000, 1001), size=256, sample_rate=21000, channels=2)
        assert clip.frames.shape == (125, 256, 256, 3), path
        assert clip.audio.shape == (87588, 2), path
        assert np.abs(clip.audio).max() > 0.01, f"{path}: silent audio"


# --- writers --------------------------------------------------------------------------------------

def test_wav_round_trip(tmp_path):
    audio = (0.5 * np.sin(np.linspace(0, 200, 8000))).astype(np.float32)[:, None]
    path = write_wav(tmp_path / "a.wav", audio, 8000)
    clip = read_clip(path, video=False)
    assert clip.sample_rate == 8000 and clip.audio.shape == (8000, 1)
    assert np.abs(clip.audio - audio).max() < 1e-3


def test_writer_is_atomic_when_encoding_fails(tmp_path, monkeypatch):
    dest = tmp_path / "out.mp4"
    dest.write_bytes(b"previous result")
    import avscene.media.writer as writer

    def boom(*args, **kwargs):
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(writer, "_encode_audio", boom)
    with pytest.raises(RuntimeError):
        write_video(dest, np.zeros((3, 16, 16, 3), np.uint8), 10, np.zeros((1000, 1), np.float32), 8000)
    assert dest.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no temporary left behind


def test_outputs_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_wav(tmp_path / "a.wav", np.zeros((100, 1), np.float32), 8000)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_writer_refuses_to_overwrite_an_input(tmp_path):
    path = make_click_video(tmp_path / "in.mp4", fps=25, sample_rate=16000, n_frames=10, click_frame=5)
    before = path.read_bytes()
    read_clip(path)
    with pytest.raises(MediaError, match="input"):
        write_video(path, np.zeros((2, 16, 16, 3), np.uint8), 25)
    assert path.read_bytes() == before


def test_odd_frame_size_is_written(tmp_path):
    path = write_video(tmp_path / "odd.mp4", np.full((3, 15, 17, 3), 90, np.uint8), 10)
    assert (probe(path).width, probe(path).height) == (18, 16)


# --- bad input ------------------------------------------------------------------------------------

def _truncated(src: Path, dest: Path, keep: float) -> Path:
    data = src.read_bytes()
    dest.write_bytes(data[: int(len(data) * keep)])
    return dest


def _bad_inputs(tmp_path: Path, click_video: Path) -> dict[str, tuple[Path, str]]:
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("this is not a video\n" * 50)
    os.mkfifo(tmp_path / "pipe.mp4")
    header_only = _truncated(click_video, tmp_path / "header_only.mp4", 0.002)
    return {
        "missing": (tmp_path / "nope.mp4", "no such file"),
        "directory": (tmp_path, "is a directory"),
        "empty": (tmp_path / "empty.mp4", "empty"),
        "not media": (tmp_path / "notes.mp4", "not a readable media file"),
        "pipe": (tmp_path / "pipe.mp4", "not a regular file"),
        "truncated header": (header_only, "corrupt"),
    }


def test_bad_inputs_give_one_clear_error(tmp_path, click_video):
    for case, (path, message) in _bad_inputs(tmp_path, click_video).items():
        for call in (probe, read_clip):
            with pytest.raises(MediaError) as info:
                call(path)
            assert message in str(info.value), (case, str(info.value))
            assert str(path) in str(info.value), case


def test_missing_streams(tmp_path):
    silent = write_video(tmp_path / "silent.mp4", np.zeros((5, 16, 16, 3), np.uint8), 10)
    with pytest.raises(NoStreamError, match="no audio stream"):
        read_clip(silent)
    assert read_clip(silent, audio=False).n_frames == 5
    wav = write_wav(tmp_path / "a.wav", np.zeros((800, 1), np.float32), 8000)
    with pytest.raises(NoStreamError, match="no video stream"):
        read_clip(wav)


def test_window_beyond_the_end(click_video):
    with pytest.raises(ClipRangeError, match="past the end"):
        read_clip(click_video, 2.5, 2.0)
    with pytest.raises(ClipRangeError, match="past the end"):
        read_clip(click_video, 10.0)
    with pytest.raises(ClipRangeError, match="no whole frame"):
        read_clip(click_video, 0.0, 0.01)


def test_truncated_data_reports_the_real_duration(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (150, 32, 32, 3), dtype=np.uint8)
    audio = np.random.default_rng(1).uniform(-0.5, 0.5, (80000, 2)).astype(np.float32)
    full = write_video(tmp_path / "full.mp4", frames, 25, audio, 16000)  # 6 s, index at the front
    cut = _truncated(full, tmp_path / "cut.mp4", 0.4)
    info = probe(cut)
    assert info.duration_s < 4.0  # the header still claims 6 s
    with pytest.raises(MediaError):
        read_clip(cut, 4.0, 1.5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(start_s=-1.0), "start_s"),
    (dict(duration_s=0.0), "duration_s"),
    (dict(fps=0), "fps"),
    (dict(fps=5000), "fps"),
    (dict(size=0), "size"),
    (dict(size=(10, 100000)), "size"),
    (dict(sample_rate=10), "sample_rate"),
    (dict(channels=12), "channels"),
    (dict(fit="zoom"), "fit"),
])
def test_absurd_parameters(click_video, kwargs, message):
    with pytest.raises(MediaError, match=message):
        read_clip(click_video, **kwargs)


def test_cli_probe_prints_json_and_one_line_errors(click_video, tmp_path, capsys):
    code = cli.main(["probe", str(click_video), str(tmp_path / "missing.mp4")])
    out, err = capsys.readouterr()
    assert code == cli.EXIT_SOME_FAILED
    assert '"fps": "30000/1001"' in out
    assert err.strip().splitlines() == [f"error: {tmp_path / 'missing.mp4'}: no such file"]
    assert "Traceback" not in err


@pytest.mark.parametrize("channels", [1, 2, 6, 8])
def test_audio_of_any_channel_count_is_written_and_read_back(tmp_path, channels):
    """PyAV's AudioFrame.from_ndarray fails on 8 channels; the writer fills planes itself."""
    rate, n = 48000, 24000
    t = np.arange(n) / rate
    # channel 3 of 5.1 / 7.1 is the LFE, which AAC low-passes: give it a low tone
    freqs = [80 if c == 3 and channels >= 6 else 300 + 100 * c for c in range(channels)]
    audio = np.stack([0.2 * np.sin(2 * np.pi * f * t) for f in freqs], 1).astype(np.float32)
    path = write_video(tmp_path / f"c{channels}.mp4", np.zeros((12, 16, 16, 3), np.uint8), 24, audio, rate)
    assert probe(path).channels == channels
    back = read_clip(path, sample_rate=rate, channels=channels, video=False).audio
    assert back.shape[1] == channels
    for c in range(channels):  # each channel keeps its own tone, aligned (AAC is lossy: correlate)
        assert np.corrcoef(back[2000:20000, c], audio[2000:20000, c])[0, 1] > 0.9, c
