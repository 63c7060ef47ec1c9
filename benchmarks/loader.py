"""How many paper-size shift examples per second one CPU core gets from shards, next to reading
the same examples from the original videos, and next to the decode-only limit of the stored
format; and the measurement behind the stored format (MJPEG against short-GOP H.264).

An example is what training consumes: 125 frames (4.2 s at 29.97 fps) randomly cropped to
224x224 from the stored 256x256, flipped or not, plus two 4.2 s windows of 21 kHz stereo audio
(aligned and shifted by 2-5.8 s). One process, ``torch.set_num_threads(1)``, decoders on one
thread: the rate of one DataLoader worker. Rates are per second of the process's CPU time (what
one core delivers, even on a machine busy with other work) and per second of wall clock; the
format timings are CPU time too.

Sources (60 s, 640x360 H.264 + 44.1 kHz AAC, generated in a temporary folder):

* ``scene``: a textured background of large bright and dark areas panning under moving textured
  discs, with sensor noise: compresses like ordinary footage (9 kB per stored frame; real clips
  take 7-21 kB);
* ``noise``: ``benchmarks/decode.py``'s scrolling noise texture, the worst case for any codec.

    python benchmarks/loader.py [--content scene noise] [--clips 60] [--compare-on FILE ...]

``--compare-on`` adds the format comparison on real videos (their first 10 s at 256x256).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter
from scipy import ndimage

from avscene.constants import PAPER_FPS, frame_to_sample
from avscene.data.shards import PAPER_SAMPLING, SEGMENT_FRAMES, ShardSegments, prepare_shards, shift_example_shards
from avscene.data.shift_pairs import ShiftPairs
from avscene.data.videos import index_videos
from avscene.media import read_clip, write_video
from avscene.media.codecs import decode_flac, decode_jpegs, encode_jpegs
from common import write_result
from decode import make_source as make_noise_source

SIZE = PAPER_SAMPLING.full_size  # 256
N_FRAMES = PAPER_SAMPLING.n_frames  # 125


def make_scene_source(path: Path, seconds: float = 60.0, size=(360, 640), fps=PAPER_FPS, rate=44100) -> Path:
    """A 60 s 640x360 video that compresses like ordinary footage: a textured background of
    large bright and dark areas panning 2 px per frame, four textured discs moving across it,
    and sensor noise."""
    rng = np.random.default_rng(0)
    n, (h, w) = int(seconds * fps), size
    def smooth(sigma: float, scale: int, channels: int, width: int) -> np.ndarray:  # (h, width, channels)
        coarse = rng.normal(0, sigma, (h // scale + 2, width // scale + 2, channels))
        return ndimage.zoom(coarse, (scale, scale, 1), order=1)[:h, :width]

    luma = 120 + smooth(45, 48, 1, 2 * w)  # large bright and dark areas
    tint = smooth(12, 64, 3, 2 * w)  # a little colour
    detail = smooth(10, 3, 1, 2 * w)  # fine texture (foliage, fabric)
    background = np.clip(luma + tint + detail, 0, 255).astype(np.int16)  # (h, 2w, 3)
    noise = rng.normal(0, 2.0, (8, h, w, 1)).round().astype(np.int16)  # (8, h, w, 1) sensor noise
    yy, xx = np.mgrid[0:h, 0:w]
    discs = [(rng.uniform(30, 70), rng.uniform(0.2, 1.0), rng.uniform(0.2, 1.0), rng.uniform(0, 6.3),
              rng.uniform(40, 215, 3), smooth(15, 4, 1, w)) for _ in range(4)]
    frames = np.empty((n, h, w, 3), np.uint8)  # (T, H, W, 3)
    for i in range(n):
        t = i / float(fps)
        shift = (2 * i) % w
        img = background[:, shift : shift + w].copy()
        for radius, fx, fy, phase, colour, texture in discs:
            cx = w / 2 + (w / 2 - radius) * np.sin(fx * t + phase)
            cy = h / 2 + (h / 2 - radius) * np.sin(fy * t + 2 * phase)
            inside = (xx - cx) ** 2 + (yy - cy) ** 2 < radius**2
            img[inside] = (colour + texture[inside]).astype(np.int16)
        frames[i] = np.clip(img + noise[i % len(noise)], 0, 255)
    tt = np.arange(frame_to_sample(n, fps, rate)) / rate
    audio = np.stack([0.3 * np.sin(2 * np.pi * 220 * tt), 0.3 * np.sin(2 * np.pi * 330 * tt)], 1)
    audio += 0.05 * rng.standard_normal(audio.shape)
    return write_video(path, frames, fps, audio.astype(np.float32), rate, preset="medium", crf=23)


def _rate(fn, n: int, passes: int = 3) -> dict:
    """Items per second of ``fn(n)`` over ``passes`` runs, per second of this process's CPU time
    (the rate of one busy core, whatever else the machine runs) and per second of wall clock
    (lower when other processes share the core); best and median pass of each."""
    cpu, wall = [], []
    for _ in range(passes):
        t, c = time.perf_counter(), time.process_time()
        fn(n)
        cpu.append(n / (time.process_time() - c))
        wall.append(n / (time.perf_counter() - t))
    return {"per_cpu_s": max(cpu), "per_cpu_s_median": statistics.median(cpu),
            "per_wall_s": max(wall), "per_wall_s_median": statistics.median(wall)}


def from_shards(shard_dir: Path, n_clips: int) -> dict:
    """Shift examples streamed from the shards (tar reading, shuffle buffer, decoding, crop, flip)."""
    stream = iter(shift_example_shards(shard_dir, PAPER_SAMPLING, seed=0, buffer=4, repeat=True))
    ex = next(stream)  # warm up
    assert ex["frames"].shape == (N_FRAMES, 224, 224, 3) and ex["audio_aligned"].shape == (2, PAPER_SAMPLING.n_samples)

    def run(n):
        for _ in range(n):
            next(stream)

    return _rate(run, n_clips)


def from_videos(video: Path, n_clips: int) -> dict:
    """The same examples read from the original video by :class:`ShiftPairs` (two read_clips)."""
    pairs = ShiftPairs(index_videos(video, min_duration_s=PAPER_SAMPLING.min_video_s), PAPER_SAMPLING, seed=0)
    next_id = iter(range(10**9))
    pairs[next(next_id)]  # warm up

    def run(n):
        for _ in range(n):
            pairs[next(next_id)]

    return _rate(run, n_clips, passes=2)


def decode_limit(shard_dir: Path) -> dict:
    """Per example: decoding 125 stored JPEGs (YUV, no conversion), the same with the RGB
    conversion the loader does, and decoding one segment's FLAC; from bytes in memory, best CPU
    time of 3 passes."""
    segments = [s for s in ShardSegments(shard_dir, lazy=True, shuffle=False) if s.n_frames >= N_FRAMES]
    yuv = rgb = flac = float("inf")
    for _ in range(3):
        for seg in segments:
            offsets = seg._offsets
            t = time.process_time()
            cc = av.CodecContext.create("mjpeg", "r")
            cc.thread_count = 1
            for i in range(N_FRAMES):
                cc.decode(av.Packet(memoryview(seg._mjpeg)[offsets[i] : offsets[i + 1]]))
            yuv = min(yuv, time.process_time() - t)
            t = time.process_time()
            decode_jpegs(seg._mjpeg, offsets, 0, N_FRAMES, seg.height, seg.width)
            rgb = min(rgb, time.process_time() - t)
            t = time.process_time()
            decode_flac(seg._flac)
            flac = min(flac, time.process_time() - t)
    return {"jpeg_decode_125_ms": yuv * 1e3, "jpeg_decode_rgb_125_ms": rgb * 1e3, "flac_decode_segment_ms": flac * 1e3,
            "clips_per_s_limit": 1 / (yuv + flac), "clips_per_s_limit_with_rgb": 1 / (rgb + flac)}


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def _pillow_window(jpegs: list[bytes], start: int, n: int) -> np.ndarray:
    from PIL import Image  # only for this comparison (Pillow comes with matplotlib)

    return np.stack([np.asarray(Image.open(io.BytesIO(j)).convert("RGB")) for j in jpegs[start : start + n]])


def _h264(frames: np.ndarray, crf: int, gop: int) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        s = out.add_stream("libx264", rate=PAPER_FPS)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        s.options = {"crf": str(crf), "preset": "fast", "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0",
                     "bf": "0"}
        s.codec_context.thread_count = 1
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(s.encode(frame))
        out.mux(s.encode(None))
    return buf.getvalue()


def _h264_window(data: bytes, start: int, n: int) -> np.ndarray:
    """Frames [start, start + n) of an in-memory H.264 mp4, decoded from the keyframe before."""
    to_rgb, got = VideoReformatter(), []
    with av.open(io.BytesIO(data)) as c:
        stream = c.streams.video[0]
        stream.thread_count = 1
        c.seek(int(Fraction(start) / PAPER_FPS / stream.time_base), stream=stream, backward=True)
        for frame in c.decode(stream):
            if round(frame.time * PAPER_FPS) >= start:
                got.append(to_rgb.reformat(frame, format="rgb24").to_ndarray())
                if len(got) == n:
                    break
    return np.stack(got)  # (n, H, W, 3)


def compare_formats(video: Path, starts: int = 8) -> dict:
    """MJPEG (qscale 2, 3) against H.264 (crf 18, 23; a keyframe every 30 frames, no B-frames)
    on one stored segment (300 frames at 256x256): size, encode time, PSNR, and the time to
    decode a 125-frame window to RGB at random starts (best of 3 per start); for MJPEG q3 also
    the same window decoded by Pillow."""
    frames = read_clip(video, 0, float(SEGMENT_FRAMES / PAPER_FPS) + 1e-6, fps=PAPER_FPS, size=SIZE,
                       audio=False, threads=1).frames  # (300, 256, 256, 3)
    n = len(frames)
    window_starts = np.random.default_rng(0).integers(0, n - N_FRAMES, starts).tolist()
    out = {}
    for q in (2, 3):
        t = time.process_time()
        jpegs = encode_jpegs(frames, q)
        encode = time.process_time() - t
        data, offsets = b"".join(jpegs), np.concatenate([[0], np.cumsum([len(j) for j in jpegs])])
        decoded = decode_jpegs(data, offsets, 0, n, SIZE, SIZE)
        window = statistics.mean(min(_timed(decode_jpegs, data, offsets, s, s + N_FRAMES, SIZE, SIZE) for _ in range(3))
                                 for s in window_starts)
        out[f"mjpeg_q{q}"] = {"kB_per_frame": len(data) / n / 1e3, "encode_ms_per_frame": encode / n * 1e3,
                              "psnr_db": _psnr(decoded, frames), "window_125_decode_ms": window * 1e3}
        if q == 3:  # the same JPEGs through Pillow's libjpeg-turbo instead of FFmpeg's decoder
            pillow = statistics.mean(min(_timed(_pillow_window, jpegs, s, N_FRAMES) for _ in range(3))
                                     for s in window_starts)
            out["mjpeg_q3"]["window_125_decode_ms_pillow"] = pillow * 1e3
    for crf in (18, 23):
        t = time.process_time()
        data = _h264(frames, crf, 30)
        encode = time.process_time() - t
        decoded = _h264_window(data, 0, n)
        window = statistics.mean(min(_timed(_h264_window, data, s, N_FRAMES) for _ in range(3)) for s in window_starts)
        out[f"h264_crf{crf}_gop30"] = {"kB_per_frame": len(data) / n / 1e3, "encode_ms_per_frame": encode / n * 1e3,
                                       "psnr_db": _psnr(decoded, frames), "window_125_decode_ms": window * 1e3}
    return {k: {m: round(v, 3) for m, v in d.items()} for k, d in out.items()}


def _timed(fn, *args) -> float:
    """CPU seconds of ``fn(*args)`` in this process."""
    t = time.process_time()
    fn(*args)
    return time.process_time() - t


def _print_format(name: str, fmt: str, m: dict) -> None:
    pillow = f" (Pillow {m['window_125_decode_ms_pillow']:.1f} ms)" if "window_125_decode_ms_pillow" in m else ""
    print(f"[{name}]   {fmt:16s} {m['kB_per_frame']:6.1f} kB/frame  encode {m['encode_ms_per_frame']:.2f} ms/frame  "
          f"PSNR {m['psnr_db']:.1f} dB  125-frame window {m['window_125_decode_ms']:.1f} ms{pillow}")


def bench_source(name: str, video: Path, tmp: Path, n_clips: int) -> dict:
    shard_dir = tmp / f"shards_{name}"
    t = time.process_time()
    report = prepare_shards(video, shard_dir, workers=1, progress=False)
    prepare_s = time.process_time() - t
    stored_frames = sum(s.n_frames for s in ShardSegments(shard_dir, lazy=True, shuffle=False))
    shard_bytes = sum(Path(p).stat().st_size for p in report["shards"])
    shards = from_shards(shard_dir, n_clips)
    videos = from_videos(video, max(6, n_clips // 4))
    limit = decode_limit(shard_dir)
    formats = compare_formats(video)
    result = {
        "segments": report["samples"],
        "prepare_s_per_segment_one_core": round(prepare_s / report["samples"], 3),
        "shard_kB_per_frame_with_audio": round(shard_bytes / stored_frames / 1e3, 2),
        "shard_MB_per_segment": round(shard_bytes / report["samples"] / 1e6, 2),
        "clips_per_s_per_core_from_shards": {k: round(v, 2) for k, v in shards.items()},
        "clips_per_s_per_core_from_videos_read_clip": {k: round(v, 2) for k, v in videos.items()},
        "decode_only": {k: round(v, 3) for k, v in limit.items()},
        "fraction_of_decode_limit": round(shards["per_cpu_s"] / limit["clips_per_s_limit"], 3),
        "formats": formats,
    }
    print(f"[{name}] {report['samples']} segments, {result['shard_kB_per_frame_with_audio']} kB/frame stored, "
          f"prepare {result['prepare_s_per_segment_one_core']} s/segment")
    print(f"[{name}] clips/s per core (per CPU-second; wall clock): from shards {shards['per_cpu_s']:.1f} "
          f"(median {shards['per_cpu_s_median']:.1f}; wall {shards['per_wall_s']:.1f}), read_clip from the video "
          f"{videos['per_cpu_s']:.1f} (median {videos['per_cpu_s_median']:.1f}; wall {videos['per_wall_s']:.1f}), "
          f"decode-only limit {limit['clips_per_s_limit']:.1f} ({limit['clips_per_s_limit_with_rgb']:.1f} with RGB)")
    for fmt, m in formats.items():
        _print_format(name, fmt, m)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", nargs="+", choices=["scene", "noise"], default=["scene", "noise"])
    parser.add_argument("--clips", type=int, default=60, help="examples per timed pass from shards")
    parser.add_argument("--compare-on", nargs="*", type=Path, default=[], help="real videos for the format comparison")
    args = parser.parse_args()
    torch.set_num_threads(1)
    makers = {"scene": make_scene_source, "noise": make_noise_source}
    sources = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.content:
            video = makers[name](Path(tmp) / f"{name}60s.mp4")
            sources[name] = bench_source(name, video, Path(tmp), args.clips)
    real = {}
    for video in args.compare_on:
        real[video.name] = compare_formats(video)
        for fmt, m in real[video.name].items():
            _print_format(video.name, fmt, m)
    write_result("loader", {
        "argv": sys.argv[1:],
        "example": {"frames": N_FRAMES, "crop": 224, "stored_size": SIZE, "audio_s": 4.2, "sample_rate": 21000,
                    "channels": 2, "audio_windows": 2},
        "threads": 1,
        "target_clips_per_s_per_core": 25,
        "sources": sources,
        "formats_on_real_videos": real,
    })


if __name__ == "__main__":
    main()
