"""How fast the media layer reads paper-size training clips, and where the time goes.

Reads 4.2 s windows (125 frames at 29.97 fps, resized to 256x256, plus 21 kHz stereo audio)
at random starts from a 60 s H.264/AAC video, on one core (decoder threads = 1, one process),
and compares with the decode-only limit of the same file: every frame and audio packet
decoded once with no conversion. Also times the parts of a read (seek + video decode, resize + RGB
conversion, audio decode + resample).

    python benchmarks/decode.py [--video FILE] [--clips 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from avscene.constants import PAPER_FPS, PAPER_SAMPLE_RATE, frame_to_sample
from avscene.media import probe, read_clip, write_video
from common import write_result

CLIP_S = 4.2


def make_source(path: Path, seconds: float = 60.0, size=(360, 640), fps=PAPER_FPS, rate=44100) -> Path:
    """A 60 s 640x360 video with moving texture (so H.264 has real work) and noisy stereo audio."""
    rng = np.random.default_rng(0)
    n = int(seconds * fps)
    h, w = size
    base = rng.integers(0, 255, (h + n, w, 3), dtype=np.uint8)
    base = ((base.astype(np.uint16) + np.roll(base, 1, 0) + np.roll(base, 1, 1)) // 3).astype(np.uint8)
    frames = np.stack([base[i : i + h] for i in range(n)])  # (T, H, W, 3) scrolling texture
    t = np.arange(frame_to_sample(n, fps, rate)) / rate
    audio = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.3 * np.sin(2 * np.pi * 330 * t)], 1)
    audio += 0.05 * rng.standard_normal(audio.shape)
    return write_video(path, frames, fps, audio.astype(np.float32), rate, preset="medium", crf=23)


def decode_only(path: Path) -> dict:
    """Decode every packet once, single-threaded, no conversion: the ceiling for this file."""
    out = {}
    with av.open(str(path)) as c:
        c.streams.video[0].thread_count = 1
        t = time.perf_counter()
        n = sum(1 for _ in c.decode(video=0))
        out["video_frames_per_s"] = n / (time.perf_counter() - t)
    with av.open(str(path)) as c:
        t = time.perf_counter()
        samples = sum(f.samples for f in c.decode(audio=0))
        out["audio_seconds_per_s"] = samples / c.streams.audio[0].codec_context.sample_rate / (time.perf_counter() - t)
    frames_per_clip = round(CLIP_S * float(PAPER_FPS))
    out["clips_per_s_limit"] = 1 / (frames_per_clip / out["video_frames_per_s"] + CLIP_S / out["audio_seconds_per_s"])
    return out


def keyframe_interval(path: Path) -> float:
    """Mean number of frames between keyframes: a seek decodes from the keyframe before it."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        flags = [p.is_keyframe for p in c.demux(stream) if p.size]
    return round(len(flags) / max(1, sum(flags)), 1)


def read_clips(path: Path, starts: list[float], **kwargs) -> float:
    t = time.perf_counter()
    for s in starts:
        clip = read_clip(path, s, CLIP_S, fps=PAPER_FPS, size=256, sample_rate=PAPER_SAMPLE_RATE,
                         channels=2, threads=1, **kwargs)
        assert clip.frames.shape == (125, 256, 256, 3)
        assert clip.audio is None or clip.audio.shape == (87588, 2)
    return len(starts) / (time.perf_counter() - t)


def time_parts(path: Path, starts: list[float]) -> dict:
    """Mean seconds per clip of each part of a read: seeking and decoding the video packets the
    window needs (from the keyframe before it, no conversion), converting its frames (resize +
    RGB), and reading the audio (decode + resample)."""
    decode = convert = audio = 0.0
    for s in starts:
        t = time.perf_counter()
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            stream.thread_count = 1
            c.seek(int(s / stream.time_base), stream=stream, backward=True)
            for frame in c.decode(stream):
                if frame.time >= s + CLIP_S:
                    break
        decode += time.perf_counter() - t
        t = time.perf_counter()
        read_clip(path, s, CLIP_S, fps=PAPER_FPS, size=256, audio=False, threads=1)
        convert += time.perf_counter() - t
        t = time.perf_counter()
        read_clip(path, s, CLIP_S, video=False, sample_rate=PAPER_SAMPLE_RATE, channels=2)
        audio += time.perf_counter() - t
    n = len(starts)
    return {"video_seek_and_decode_s": decode / n, "frame_conversion_s": (convert - decode) / n,
            "audio_read_s": audio / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=None, help="source video (default: a generated 60 s one)")
    parser.add_argument("--clips", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        video = args.video or make_source(Path(tmp) / "source60s.mp4")
        info = probe(video)
        rng = np.random.default_rng(1)
        starts = sorted(rng.uniform(0, info.duration_s - CLIP_S - 0.1, args.clips).tolist())
        rng.shuffle(starts)
        limit = decode_only(video)
        clips_per_s = read_clips(video, starts)
        video_only = read_clips(video, starts[: max(3, args.clips // 2)], audio=False)
        parts = time_parts(video, starts[:8])
        gop = keyframe_interval(video)
    result = {
        "source": {k: v for k, v in info.to_dict().items() if k != "path"},
        "clip": {"seconds": CLIP_S, "frames": 125, "size": 256, "sample_rate": PAPER_SAMPLE_RATE, "channels": 2},
        "decoder_threads": 1,
        "clips_per_s_per_core": round(clips_per_s, 3),
        "clips_per_s_per_core_video_only": round(video_only, 3),
        "decode_only": {k: round(v, 3) for k, v in limit.items()},
        "fraction_of_decode_limit": round(clips_per_s / limit["clips_per_s_limit"], 3),
        "per_clip_parts_s": {k: round(v, 4) for k, v in parts.items()},
        "gop_frames": gop,
    }
    print(f"source: {info.width}x{info.height} @ {float(info.fps):.3f} fps, {info.duration_s:.1f} s, "
          f"{info.video_codec}/{info.audio_codec} {info.sample_rate} Hz")
    print(f"read_clip (4.2 s, 125x256x256 + 21 kHz stereo): {clips_per_s:.2f} clips/s per core "
          f"({video_only:.2f} video only)")
    print(f"decode-only limit: {limit['video_frames_per_s']:.0f} frames/s, audio x{limit['audio_seconds_per_s']:.0f} "
          f"real time -> {limit['clips_per_s_limit']:.2f} clips/s")
    print("per clip: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in parts.items()))
    write_result("decode", result)


if __name__ == "__main__":
    main()
