"""Fixtures that synthesize small media files with known ground truth."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from avscene.constants import frame_to_sample
from avscene.media import write_video


def make_click_video(path: Path, *, fps, sample_rate: int, n_frames: int, click_frame: int,
                     size=(48, 64), channels: int = 2) -> Path:
    """A dark video whose frames turn bright at ``click_frame``, with a click in the audio at
    the same instant (sample ``frame_to_sample(click_frame)``)."""
    frames = np.full((n_frames, *size, 3), 20, np.uint8)
    frames[click_frame:] = 220
    n_samples = frame_to_sample(n_frames, fps, sample_rate)
    audio = np.zeros((n_samples, channels), np.float32)
    s = frame_to_sample(click_frame, fps, sample_rate)
    audio[s : s + max(8, sample_rate // 2000)] = 0.9
    return write_video(path, frames, fps, audio, sample_rate)


def make_vfr_video(path: Path, frame_times_s: list[float], size=(32, 32)) -> Path:
    """A video whose frame ``i`` is shown at ``frame_times_s[i]`` (variable frame rate) and has
    brightness ``10 * i`` so tests can tell which frame is on screen."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = size[1], size[0], "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"crf": "0", "preset": "ultrafast", "bf": "0"}
        for i, t in enumerate(frame_times_s):
            frame = av.VideoFrame.from_ndarray(np.full((*size, 3), 10 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def click_video(media_dir) -> Path:
    """3 s at 29.97 fps, 21 kHz stereo, click and flash at frame 40."""
    return make_click_video(media_dir / "click.mp4", fps=Fraction(30000, 1001), sample_rate=21000,
                            n_frames=90, click_frame=40)


@pytest.fixture
def real_clips() -> list[Path]:
    folder = os.environ.get("AVSCENE_REAL_CLIPS")
    if not folder:
        pytest.skip("AVSCENE_REAL_CLIPS is not set")
    clips = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in {".mp4", ".mkv", ".webm", ".mov", ".avi"})
    assert clips, f"no videos in {folder}"
    return clips


def make_event_video(path: Path, seed: int, *, n_frames: int = 150, size: int = 40, n_events: int = 14,
                     fps=Fraction(30000, 1001), sample_rate: int = 21000) -> tuple[Path, list[int]]:
    """A video with irregular events: at each event frame the picture flashes for 2 frames and a
    noise burst starts in the audio at that frame's sample. Returns the path and event frames."""
    rng = np.random.default_rng(seed)
    frames = np.full((n_frames, size, size, 3), 30, np.uint8)
    n_samples = frame_to_sample(n_frames, fps, sample_rate)
    audio = 0.005 * rng.standard_normal((n_samples, 2))
    events = sorted(int(e) for e in rng.choice(np.arange(2, n_frames - 4, 3), n_events, replace=False))
    for e in events:
        frames[e : e + 2] = 220
        s = frame_to_sample(e, fps, sample_rate)
        audio[s : s + 250] += 0.7 * rng.standard_normal((250, 2))
    return write_video(path, frames, fps, np.clip(audio, -1, 1).astype(np.float32), sample_rate), events


@pytest.fixture(scope="session")
def event_videos(tmp_path_factory) -> tuple[Path, dict[str, list[int]]]:
    """A folder of 4 event videos (5 s each) and their event frames by file name."""
    folder = tmp_path_factory.mktemp("events")
    events = {}
    for i in range(4):
        path, ev = make_event_video(folder / f"ev{i}.mp4", i)
        events[path.name] = ev
    return folder, events
