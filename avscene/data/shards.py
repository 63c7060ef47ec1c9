"""Sharded datasets: a folder of videos becomes WebDataset tar shards of fixed-rate segments
(:func:`prepare_shards`), which :class:`ShardSegments` streams back for training.

Why shards: reading a training clip from the original videos (:func:`avscene.media.read_clip`)
seeks to a keyframe, decodes every frame from there at the source's resolution and resizes
it, about 5 paper clips/s per core on a 640x360 H.264 file (``benchmarks/decode.json``). Shards
hold the frames already at the training rate (29.97 fps) and size (256x256, the paper's stored
frames for its 224 px crops) and the audio already at 21 kHz, so a clip costs the decoding of
its own 125 small frames and nothing else; the files are read sequentially, which is what
network and object storage do well.

One sample (``KEY`` = a hash of the source path + ``_`` + the segment's first frame):

* ``KEY.json``: metadata: ``source`` (path relative to the video folder), ``start_s`` and
  ``start_frame`` in the source, ``fps`` (exact, ``"30000/1001"``), ``sample_rate``,
  ``channels``, ``n_frames``, ``n_samples``, ``height``, ``width``, and the byte size of each
  stored frame;
* ``KEY.mjpeg``: the frames, one baseline JPEG (4:2:0) each, back to back (an MJPEG elementary
  stream, playable with ``ffplay -f mjpeg``);
* ``KEY.flac``: the audio, 16-bit FLAC; its sample 0 is the instant of frame 0, and it holds
  exactly ``frame_to_sample(n_frames)`` samples, as :class:`~avscene.media.Clip` does.

Stored video format: per-frame JPEG, encoded and decoded by FFmpeg's MJPEG codec through PyAV
(quantiser scale 3 by default). ``benchmarks/loader.py`` compared it with H.264, the best
low-resolution alternative (libx264, a keyframe every 30 frames, no B-frames), on a 10 s
segment at 256x256 and 29.97 fps: size per frame, PSNR against the uncompressed frames, and CPU
time (one core) to decode a 125-frame window at a random start to RGB:

=====================  =======================  =======================  =======================
source                 MJPEG q3                 H.264 crf 18             H.264 crf 23
=====================  =======================  =======================  =======================
tennis, 480x360        7.3 kB  40.1 dB  22 ms   1.4 kB  39.6 dB  39 ms   0.7 kB  37.4 dB  27 ms
TED talk, 454x256      7.9 kB  39.7 dB  24 ms   1.7 kB  39.6 dB  37 ms   0.9 kB  37.4 dB  25 ms
news panel, 720p       20.8 kB 33.2 dB  37 ms   2.0 kB  34.1 dB  38 ms   1.2 kB  32.8 dB  29 ms
synthetic scene        9.4 kB  37.9 dB  27 ms   1.8 kB  38.1 dB  46 ms   1.0 kB  36.4 dB  34 ms
synthetic noise        31.9 kB 26.7 dB  57 ms   14.1 kB 26.5 dB  165 ms  5.8 kB  25.1 dB  95 ms
encode, per frame      0.5-1.0 ms               1.5-4.8 ms               1.2-3.8 ms
=====================  =======================  =======================  =======================

(Best of 3 on a shared 2-core machine; timings moved by about 20 % between runs.) At the same
quality (q3 against crf 18) MJPEG decodes a window 1.0-1.8x faster (3x on noise) and encodes
2-5x faster: every JPEG decodes on its own, so a window decodes exactly its frames, cropped and
mirrored as they are converted, while H.264 decodes from the keyframe before the window (about
15 frames more on average). With H.264 at that quality the window alone takes 37-46 ms, which
with the rest of an example (about 10 ms: audio, tar reading, cropping) overruns 40 ms, the
budget of 25 clips/s per core; crf 23 fits on the real clips (25-29 ms), 0.4-2.7 dB worse.
From MJPEG shards the loader measured 29.5 clips/s per core on the synthetic scene, 4.9x
reading the videos with read_clip. The price is storage: MJPEG shards are 5-10x larger than
H.264 ones on real footage (7-21 kB per frame, about 0.9-2.3 GB per hour of video with its
audio); where storage or network bandwidth rather than CPU is the bottleneck, H.264 would be
the better trade. FFmpeg's MJPEG decoder with one swscale conversion decoded the same JPEGs
1.05-1.5x faster than Pillow's libjpeg-turbo, and keeps all media code on PyAV. Audio is FLAC:
lossless at 16 bits, about 4x smaller than int16 on real sound, and a 10 s segment decodes in
about 3 ms.

Segment length: a shift example needs its clip (125 frames, 4.2 s) and audio starting 2.0-5.8
s away in the same video, so a segment holds :data:`SEGMENT_FRAMES` frames (10.0 s: a clip,
the largest shift and one spare frame for sample rounding) and every shift of the paper's range
fits inside it; the clip's position is drawn anew in every epoch. A video is cut into
consecutive segments from time 0; its tail, or a whole video shorter than a segment, is kept
as one shorter segment if it holds at least :data:`MIN_SEGMENT_FRAMES` (6.2 s: a clip, the
smallest shift and the spare frame), else dropped. Segments never overlap, so no audio or
frame is stored twice.

Preparation is a deterministic plan: the videos (sorted relative paths), their segments, and a
permutation of all segments seeded by ``seed`` cut into shards of ``clips_per_shard``, so each
shard mixes many videos and a small shuffle buffer suffices when reading. The plan is saved as
``plan.json``; shards are written by ``workers`` processes, each atomically (temporary file,
then rename) with a ``shard-NNNNNN.json`` summary beside it, so an interrupted run is resumed by
running it again: finished shards are skipped, and a shard written again is byte-identical
(fixed tar headers, deterministic encoders). Files that cannot be used (corrupt, no audio, too
short) and segments that fail to decode are listed in ``report.json``, never fatal.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import io
import json
import math
import multiprocessing
import os
import random
import tarfile
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import av
import numpy as np
import soundfile as sf
import torch
import torch.distributed as dist
import webdataset as wds
from av.video.reformatter import VideoReformatter
from torch.utils.data import IterableDataset, get_worker_info
from tqdm import tqdm

from avscene.constants import (
    PAPER_CLIP_SECONDS, PAPER_CROP_SIZE, PAPER_FPS, PAPER_FULL_SIZE, PAPER_SAMPLE_RATE, as_fps,
    frame_to_sample, seconds_to_frames,
)
from avscene.data.shift_pairs import ShiftSampling, draw_augmentation, draw_shift
from avscene.data.videos import VideoIndex, find_videos, index_videos
from avscene.files import atomic_path, write_json
from avscene.media import MediaError, MediaInfo, read_clip

#: How the paper cuts shift examples; the segment lengths below are derived from it.
PAPER_SAMPLING = ShiftSampling(n_frames=seconds_to_frames(PAPER_CLIP_SECONDS, PAPER_FPS), fps=PAPER_FPS,
                               sample_rate=PAPER_SAMPLE_RATE, crop_size=PAPER_CROP_SIZE, full_size=PAPER_FULL_SIZE)
#: Frames of a full stored segment: a paper clip, its largest shift and one spare frame.
SEGMENT_FRAMES = PAPER_SAMPLING.n_frames + PAPER_SAMPLING.shift_frames[1] + 1
#: Fewest frames a stored segment may hold: a paper clip, its smallest shift and one spare frame.
MIN_SEGMENT_FRAMES = PAPER_SAMPLING.n_frames + PAPER_SAMPLING.shift_frames[0] + 1
SEGMENT_S = float(SEGMENT_FRAMES / PAPER_FPS)
MIN_SEGMENT_S = float(MIN_SEGMENT_FRAMES / PAPER_FPS)
#: FFmpeg MJPEG quantiser scale (2 = finest .. 31 = coarsest); 3 keeps 40 dB PSNR on ordinary
#: footage (33 dB on a detailed 720p news panel): see the module docstring.
DEFAULT_JPEG_Q = 3
DEFAULT_CLIPS_PER_SHARD = 64
#: Layout name and version, written into plan.json.
SHARD_FORMAT = "avscene-shards/1"

_SHARD_NAME = "shard-{:06d}"
_PLAN = "plan.json"
_REPORT = "report.json"


# --------------------------------------------------------------------------------------------
# Codecs of a stored segment
# --------------------------------------------------------------------------------------------

def encode_jpegs(frames: np.ndarray, q: int = DEFAULT_JPEG_Q) -> list[bytes]:
    """uint8 (T, H, W, 3) RGB -> T baseline JPEGs (4:2:0, full-range BT.601 as JFIF says)."""
    if not 2 <= q <= 31:
        raise ValueError(f"jpeg_q must be within 2..31 (FFmpeg qscale), got {q}")
    _, h, w, _ = frames.shape
    cc = av.CodecContext.create("mjpeg", "w")
    cc.width, cc.height, cc.pix_fmt = w, h, "yuvj420p"
    cc.time_base = Fraction(1, 1)
    cc.thread_count = 1
    cc.options = {"qmin": str(q), "qmax": str(q)}  # a constant quantiser: the quality of "-q:v q"
    to_yuv = VideoReformatter()
    out = []
    for i, image in enumerate(frames):
        frame = to_yuv.reformat(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24"),
                                format="yuvj420p")
        frame.pts = i
        out.extend(bytes(p) for p in cc.encode(frame))
    out.extend(bytes(p) for p in cc.encode(None))
    if len(out) != len(frames):
        raise RuntimeError(f"MJPEG encoder returned {len(out)} pictures for {len(frames)} frames")
    return out


def decode_jpegs(data: bytes | memoryview, offsets: np.ndarray, start: int, stop: int, height: int, width: int,
                 where: str = "", *, box: tuple[int, int, int, int] | None = None, mirror: bool = False) -> np.ndarray:
    """Decode JPEGs ``start..stop-1`` of a back-to-back stream whose picture ``i`` is
    ``data[offsets[i]:offsets[i + 1]]`` -> uint8 (stop - start, h, w, 3) RGB.

    ``box = (top, left, h, w)`` keeps only that part of each ``height`` x ``width`` picture
    (default: all of it) and ``mirror`` flips it left-right, both while decoding: copying a
    cropped, mirrored clip afterwards costs as much as decoding it (NumPy copies a
    negative-stride byte axis one byte at a time).
    """
    top, left, h, w = box if box is not None else (0, 0, height, width)
    if not (0 <= top and 0 <= left and top + h <= height and left + w <= width):
        raise ValueError(f"box {box} does not fit in {height}x{width} pictures")
    cc = av.CodecContext.create("mjpeg", "r")
    cc.thread_count = 1  # one core per reader: DataLoader workers give the parallelism
    convert = VideoReformatter()
    # mirrored: convert to BGR, then reversing each row's bytes gives the RGB pixels right to left
    pix_fmt = "bgr24" if mirror else "rgb24"
    view = memoryview(data)
    out = np.empty((stop - start, h, w, 3), np.uint8)  # (T, h, w, 3)
    for i in range(start, stop):
        try:
            pictures = cc.decode(av.Packet(view[offsets[i]: offsets[i + 1]]))
        except av.FFmpegError as err:
            raise MediaError(where, f"frame {i} is not a decodable JPEG ({err})") from None
        if len(pictures) != 1 or (pictures[0].height, pictures[0].width) != (height, width):
            raise MediaError(where, f"frame {i} did not decode to one {width}x{height} picture")
        image = convert.reformat(pictures[0], format=pix_fmt).to_ndarray()  # (height, width, 3)
        out[i - start] = image[top : top + h, left : left + w]
    if mirror:  # torch reverses a contiguous byte axis ~8x faster than a NumPy copy does
        rows = torch.from_numpy(out).view(stop - start, h, w * 3)
        out = torch.flip(rows, dims=[2]).view(stop - start, h, w, 3).numpy()
    return out


def encode_flac(audio: np.ndarray, sample_rate: int) -> bytes:
    """float32 (N, C) in [-1, 1] -> 16-bit FLAC bytes."""
    buf = io.BytesIO()
    sf.write(buf, audio, sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def decode_flac(data: bytes, where: str = "") -> tuple[np.ndarray, int]:
    """FLAC bytes -> (float32 (N, C) in [-1, 1], sample rate)."""
    try:
        audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)  # (N, C)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise MediaError(where, f"audio is not decodable FLAC ({err})") from None
    return audio, int(rate)


# --------------------------------------------------------------------------------------------
# Reading side: one decoded segment
# --------------------------------------------------------------------------------------------

class Segment:
    """One stored segment: frames and audio of a window of one video, aligned so that frame 0
    and audio sample 0 are the same instant of the source.

    ``frames`` (uint8 (T, H, W, 3)) and ``audio`` (float32 (N, C)) decode on first use;
    :meth:`read_frames` decodes only a range, which is how a training clip avoids decoding the
    frames it does not use. :meth:`decode` decodes both and drops the encoded bytes (what a
    DataLoader worker should do before sending a segment to the main process).
    """

    def __init__(self, key: str, url: str, meta: dict, mjpeg: bytes, flac: bytes):
        self.key, self.url, self.meta = key, url, meta
        self._mjpeg: bytes | None = mjpeg
        self._flac: bytes | None = flac
        self._frames: np.ndarray | None = None
        self._audio: np.ndarray | None = None
        try:
            sizes = np.asarray(meta["frame_bytes"], np.int64)
            self.fps = Fraction(meta["fps"])
            self.sample_rate = int(meta["sample_rate"])
            self.channels = int(meta["channels"])
            self.n_frames, self.n_samples = int(meta["n_frames"]), int(meta["n_samples"])
            self.height, self.width = int(meta["height"]), int(meta["width"])
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as err:
            raise MediaError(self.where, f"metadata lacks or garbles a field ({err!r}): not an avscene shard?") from None
        self._offsets = np.concatenate([[0], np.cumsum(sizes)])  # (T + 1,)
        if len(sizes) != self.n_frames or self._offsets[-1] != len(mjpeg):
            raise MediaError(self.where, f"frame index ({len(sizes)} frames, {int(self._offsets[-1])} bytes) does not "
                                         f"match the stored frames ({self.n_frames} frames, {len(mjpeg)} bytes)")

    @property
    def where(self) -> str:
        return f"{self.url}#{self.key}"

    @property
    def source(self) -> str:
        return self.meta["source"]

    @property
    def start_s(self) -> float:
        return float(self.meta["start_s"])

    @property
    def frames(self) -> np.ndarray:
        """uint8 (T, H, W, 3), all frames of the segment."""
        if self._frames is None:
            self._frames = self.read_frames(0, self.n_frames)
        return self._frames

    def read_frames(self, start: int, stop: int, *, box: tuple[int, int, int, int] | None = None,
                    mirror: bool = False) -> np.ndarray:
        """uint8 (stop - start, h, w, 3): frames ``start..stop-1``, decoding only those; ``box =
        (top, left, h, w)`` crops them and ``mirror`` flips them left-right (see
        :func:`decode_jpegs`)."""
        if not 0 <= start <= stop <= self.n_frames:
            raise IndexError(f"{self.where}: frames {start}..{stop} outside 0..{self.n_frames}")
        if self._frames is None:
            return decode_jpegs(self._mjpeg, self._offsets, start, stop, self.height, self.width, self.where,
                                box=box, mirror=mirror)
        top, left, h, w = box if box is not None else (0, 0, self.height, self.width)
        frames = self._frames[start:stop, top : top + h, left : left + w]
        return np.ascontiguousarray(frames[:, :, ::-1] if mirror else frames)

    @property
    def audio(self) -> np.ndarray:
        """float32 (N, C) in [-1, 1], N = frame_to_sample(T)."""
        if self._audio is None:
            audio, rate = decode_flac(self._flac, self.where)
            if rate != self.sample_rate or audio.shape != (self.n_samples, self.channels):
                raise MediaError(self.where, f"audio is {audio.shape} at {rate} Hz, metadata says "
                                             f"({self.n_samples}, {self.channels}) at {self.sample_rate} Hz")
            self._audio = audio
        return self._audio

    def decode(self) -> "Segment":
        """Decode frames and audio now and release the encoded bytes; returns self."""
        _ = self.frames, self.audio
        self._mjpeg = self._flac = None
        return self

    def __repr__(self) -> str:
        return (f"Segment({self.key!r}, source={self.source!r}, start_s={self.start_s:.3f}, "
                f"{self.n_frames} frames {self.height}x{self.width} @ {float(self.fps):.3f} fps, "
                f"{self.n_samples} samples @ {self.sample_rate} Hz x {self.channels})")


# --------------------------------------------------------------------------------------------
# Shift examples from a segment
# --------------------------------------------------------------------------------------------

def cut_shift_example(segment: Segment, sampling: ShiftSampling, rng: np.random.Generator) -> dict:
    """One shift example from one segment, as :class:`~avscene.data.shift_pairs.ShiftPairs`
    makes from a whole video (the same draws of window, shift, crop and flip):

    * ``frames``: uint8 (T, crop, crop, 3)
    * ``audio_aligned``, ``audio_shifted``: float32 (C, N), N = ``sampling.n_samples``
    * ``shift_frames``: int, the negative's shift; ``key``: the segment's key

    Only the clip's own frames are decoded, and they are cropped and mirrored while decoding.
    The segment must have been stored at the sampling's rate, sample rate, channels and
    ``full_size``, and hold at least one clip plus the smallest shift plus one spare frame.
    """
    s = sampling
    if s.negatives != "shift":
        raise ValueError(f"shard examples take their negative from the same segment; negatives={s.negatives!r} "
                         "needs a second video (use ShiftPairs on the videos)")
    stored = (segment.fps, segment.sample_rate, segment.channels, (segment.height, segment.width))
    wanted = (s.fps, s.sample_rate, s.channels, (s.full_size, s.full_size))
    if stored != wanted:
        raise ValueError(f"{segment.where}: stored at {float(segment.fps):.3f} fps, {segment.sample_rate} Hz, "
                         f"{segment.channels} ch, {segment.height}x{segment.width} px; the sampling wants "
                         f"{float(s.fps):.3f} fps, {s.sample_rate} Hz, {s.channels} ch, {s.full_size}x{s.full_size} px "
                         "(prepare shards with those settings)")
    n, n_samples = s.n_frames, s.n_samples
    try:
        f1, shift = draw_shift(s, segment.n_frames - 1, rng)  # one spare frame covers sample rounding
    except ValueError as err:
        raise ValueError(f"{segment.where}: {err}") from None
    aug = draw_augmentation(s, (segment.height, segment.width), segment.channels, rng)
    frames = segment.read_frames(f1, f1 + n, box=(aug.top, aug.left, aug.size, aug.size), mirror=aug.flip)
    audio = segment.audio  # (N_segment, C)
    a0, b0 = frame_to_sample(f1, s.fps, s.sample_rate), frame_to_sample(f1 + shift, s.fps, s.sample_rate)
    aligned, shifted = audio[a0 : a0 + n_samples].T, audio[b0 : b0 + n_samples].T  # (C, N) each
    if aug.swap_stereo:
        aligned, shifted = aligned[::-1], shifted[::-1]
    return {
        "frames": torch.from_numpy(frames),  # (T, crop, crop, 3)
        "audio_aligned": torch.from_numpy(np.ascontiguousarray(aligned)),  # (C, N)
        "audio_shifted": torch.from_numpy(np.ascontiguousarray(shifted)),  # (C, N)
        "shift_frames": shift,
        "key": segment.key,
    }


@dataclasses.dataclass(frozen=True)
class ShiftCutter:
    """A :class:`ShardSegments` transform: one shift example per segment (see
    :func:`cut_shift_example`). A picklable callable, so DataLoader workers can run it."""

    sampling: ShiftSampling

    def __call__(self, segment: Segment, rng: np.random.Generator) -> dict:
        return cut_shift_example(segment, self.sampling, rng)


# --------------------------------------------------------------------------------------------
# Reading side: the streaming dataset
# --------------------------------------------------------------------------------------------

def expand_shards(shards: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Shard URLs from a folder (its ``*.tar``, sorted), a local path, a WebDataset spec
    (``"dir/shard-{000000..000099}.tar"``, ``"a.tar::b.tar"``, ``"pipe:CMD"``, ``"https://..."``)
    or a list of these. Local paths must exist."""
    items = [shards] if isinstance(shards, (str, os.PathLike)) else list(shards)
    urls: list[str] = []
    for item in items:
        spec = os.fspath(item)
        if os.path.isdir(spec):
            found = sorted(str(p) for p in Path(spec).glob("*.tar") if not p.name.startswith("."))
            if not found:
                raise MediaError(spec, "folder holds no .tar shards")
            urls += found
            continue
        for url in wds.shardlists.expand_urls(spec):
            local = url[len("file:"):] if url.startswith("file:") else url
            if "://" not in url and not url.startswith("pipe:") and not os.path.isfile(local):
                raise MediaError(url, "no such shard")
            urls.append(url)
    if not urls:
        raise ValueError("no shards given")
    return urls


def _rank_and_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """This process's place among the training processes: given, else the started process
    group's, else torchrun's environment, else a world of one."""
    if rank is not None or world_size is not None:
        if rank is None or world_size is None or not 0 <= rank < world_size:
            raise ValueError(f"give both rank and world_size with 0 <= rank < world_size, got {rank}, {world_size}")
        return rank, world_size
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _describe(err: Exception) -> tuple[str | None, str]:
    """(shard url, reason) of an error raised inside WebDataset's tar reading, which appends
    the stream and the url to the exception's args."""
    args = getattr(err, "args", ())
    url = args[-1] if len(args) > 1 and isinstance(args[-1], str) else None
    if isinstance(err, MediaError):  # raised by an inner stage, maybe before the url was known
        return err.path or url, err.reason
    text = str(args[0]) if args else str(err)
    return url, f"unreadable shard data ({type(err).__name__}: {text.split(' @ <')[0]})"


def _raise_media_error(err: Exception) -> bool:
    # a fresh error each time: WebDataset's outer stages append to the args of what they catch
    raise MediaError(*_describe(err)) from (err.__cause__ if isinstance(err, MediaError) else err)


def _warn_and_continue(err: Exception) -> bool:
    url, reason = _describe(err)
    warnings.warn(f"skipping unreadable shard data: {url}: {reason}", stacklevel=2)
    return True


def _example_rng(seed: int, epoch: int, key: str) -> np.random.Generator:
    """A generator that depends only on (seed, epoch, key): a segment gets the same example
    whichever rank or worker reads it."""
    key_id = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    return np.random.default_rng([seed, epoch, key_id])


class ShardSegments(IterableDataset):
    """Streams the segments of WebDataset shards (see the module docstring for their layout).

    Each epoch, the shards are permuted by ``(seed, epoch)`` and dealt out round-robin to the
    ``world_size x num_workers`` readers (training processes x DataLoader workers), so every
    shard is read by exactly one reader and every segment is seen once per epoch; within a
    reader, segments pass through a shuffle buffer of ``buffer`` encoded segments (a few MB
    each) seeded by ``(seed, epoch, rank, worker)``. For a given world size and worker count the
    stream is a pure function of ``(seed, epoch)``.

    Yields :class:`Segment` (decoded in the worker unless ``lazy``), or ``transform(segment,
    rng)`` when a transform is given (then segments stay lazy and the transform decodes what it
    needs), with ``rng`` a NumPy generator seeded by ``(seed, epoch, key)``.

    Args:
        shards: a folder, shard paths or URLs, or a WebDataset spec (see :func:`expand_shards`).
        seed, epoch: the shuffle's seed and the epoch to start at (:meth:`set_epoch` changes it;
            a DataLoader with ``persistent_workers`` would not see the change).
        shuffle: permute shards and shuffle segments (False: shard order, no buffer).
        buffer: segments in the shuffle buffer.
        lazy: yield segments undecoded: frames and audio decode on first use, in whichever
            process touches them (with a transform, segments are always lazy).
        repeat: go on to the next epoch (reshuffled) instead of stopping: an endless stream,
            which keeps ranks in step when their shares of shards hold different numbers of
            segments.
        rank, world_size: this process's place; default: the process group's, else torchrun's
            ``RANK``/``WORLD_SIZE``, else 0 of 1. Resolved when the dataset is built.
        errors: ``"raise"`` (unreadable shard data raises) or ``"skip"`` (warn and go on).
    """

    def __init__(self, shards, *, seed: int = 0, epoch: int = 0, shuffle: bool = True, buffer: int = 64,
                 lazy: bool = False, transform: Callable[[Segment, np.random.Generator], Any] | None = None,
                 repeat: bool = False, rank: int | None = None, world_size: int | None = None,
                 errors: str = "raise"):
        super().__init__()
        if errors not in ("raise", "skip"):
            raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
        if buffer < 0 or seed < 0 or epoch < 0:
            raise ValueError("buffer, seed and epoch must be >= 0")
        self.urls = expand_shards(shards)
        self.seed, self.epoch, self.shuffle, self.buffer = int(seed), int(epoch), shuffle, int(buffer)
        self.lazy, self.transform, self.repeat, self.errors = lazy, transform, repeat, errors
        self.rank, self.world_size = _rank_and_world(rank, world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def shards_for(self, epoch: int, worker: int = 0, num_workers: int = 1) -> list[str]:
        """The shards that reader (this rank, ``worker`` of ``num_workers``) reads in ``epoch``."""
        order = np.arange(len(self.urls))
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.urls))
        slot, slots = self.rank * num_workers + worker, self.world_size * num_workers
        return [self.urls[i] for i in order[slot::slots]]

    def _segment(self, sample: dict) -> Segment:
        where = f"{sample.get('__url__')}#{sample.get('__key__')}"
        missing = {"json", "mjpeg", "flac"} - sample.keys()
        if missing:
            raise MediaError(where, f"sample lacks {', '.join(sorted(missing))}: not an avscene shard?")
        try:
            meta = json.loads(sample["json"])
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise MediaError(where, f"metadata is not JSON ({err})") from None
        segment = Segment(sample["__key__"], sample["__url__"], meta, sample["mjpeg"], sample["flac"])
        return segment if self.lazy or self.transform is not None else segment.decode()

    def _epoch(self, epoch: int, worker: int, num_workers: int) -> Iterator:
        handler = _raise_media_error if self.errors == "raise" else _warn_and_continue
        urls = self.shards_for(epoch, worker, num_workers)
        samples = wds.tarfile_to_samples(handler=handler)(iter([{"url": u} for u in urls]))
        if self.shuffle and self.buffer > 1:
            rng = random.Random(f"{self.seed}/{epoch}/{self.rank}/{worker}")
            samples = wds.shuffle(self.buffer, initial=self.buffer, rng=rng)(samples)
        for sample in samples:
            try:
                segment = self._segment(sample)
                item = segment if self.transform is None else self.transform(
                    segment, _example_rng(self.seed, epoch, segment.key))
            except (MediaError, ValueError) as err:  # a bad sample, or one the transform cannot use
                if self.errors == "raise":
                    raise
                _warn_and_continue(err)
                continue
            yield item

    def __iter__(self) -> Iterator:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        readers = self.world_size * num_workers
        if len(self.urls) < readers:
            warnings.warn(f"{len(self.urls)} shards for {readers} readers ({self.world_size} ranks x {num_workers} "
                          "workers): some readers get none; make more, smaller shards", stacklevel=2)
        epoch = self.epoch
        while True:
            if not self.shards_for(epoch, worker, num_workers):
                return
            n = 0
            for item in self._epoch(epoch, worker, num_workers):
                n += 1
                yield item
            if not self.repeat or n == 0:
                return
            epoch += 1


def shift_example_shards(shards, sampling: ShiftSampling, **kwargs) -> ShardSegments:
    """Shift examples (see :func:`cut_shift_example`) streamed from shards: one per segment and
    epoch, each a function of ``(seed, epoch, segment key)``. ``kwargs`` go to
    :class:`ShardSegments`."""
    return ShardSegments(shards, transform=ShiftCutter(sampling), **kwargs)


# --------------------------------------------------------------------------------------------
# Writing side
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _SegmentJob:
    source: str  # path relative to the video folder (posix)
    start_frame: int
    n_frames: int

    @property
    def key(self) -> str:
        return f"{hashlib.blake2b(self.source.encode(), digest_size=6).hexdigest()}_{self.start_frame:07d}"


@dataclasses.dataclass(frozen=True)
class _Params:
    size: tuple[int, int]
    fit: str
    fps: Fraction
    sample_rate: int
    channels: int
    segment_frames: int
    min_segment_frames: int
    clips_per_shard: int
    jpeg_q: int
    seed: int

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["size"] = list(self.size)
        d["fps"] = f"{self.fps.numerator}/{self.fps.denominator}"
        return d


def _segments_of(info: MediaInfo, p: _Params) -> list[tuple[int, int]]:
    """(start_frame, n_frames) of the segments a video is cut into (see the module docstring)."""
    avail = math.floor(Fraction(info.duration_s).limit_denominator(10**6) * p.fps) - 1  # one spare, as ShiftPairs
    out, start = [], 0
    while avail - start >= p.segment_frames:
        out.append((start, p.segment_frames))
        start += p.segment_frames
    if avail - start >= p.min_segment_frames:
        out.append((start, avail - start))
    return out


def _probe_one(path: str, min_duration_s: float) -> VideoIndex:
    return index_videos(path, min_duration_s=min_duration_s, need_audio=True)


def _encode_segment(video_path: Path, job: _SegmentJob, p: _Params) -> dict:
    """Read one segment from its video and encode it as a WebDataset sample (bytes only)."""
    n = job.n_frames
    clip = read_clip(video_path, float(job.start_frame / p.fps), float(n / p.fps) + 1e-6, fps=p.fps, size=p.size,
                     fit=p.fit, sample_rate=p.sample_rate, channels=p.channels, threads=1)
    n_samples = frame_to_sample(n, p.fps, p.sample_rate)
    if clip.n_frames != n or clip.n_samples < n_samples:
        raise MediaError(video_path, f"segment at frame {job.start_frame} read as {clip.n_frames} frames and "
                                     f"{clip.n_samples} samples, not {n} and {n_samples}")
    frames, audio = clip.frames, clip.audio[:n_samples]  # (T, H, W, 3), (N, C)
    jpegs = encode_jpegs(frames, p.jpeg_q)
    meta = {
        "source": job.source, "start_s": clip.start_s, "start_frame": job.start_frame,
        "fps": f"{p.fps.numerator}/{p.fps.denominator}", "sample_rate": p.sample_rate, "channels": p.channels,
        "n_frames": n, "n_samples": n_samples, "height": frames.shape[1], "width": frames.shape[2],
        "video_codec": "mjpeg", "jpeg_q": p.jpeg_q, "audio_codec": "flac", "frame_bytes": [len(j) for j in jpegs],
    }
    return {"__key__": job.key, "json": json.dumps(meta, separators=(",", ":")).encode(),
            "mjpeg": b"".join(jpegs), "flac": encode_flac(audio, p.sample_rate)}


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)  # fixed owner, mode and time: a rewritten shard is byte-identical
    info.size, info.mtime, info.mode, info.uname, info.gname = len(data), 0, 0o444, "avscene", "avscene"
    tar.addfile(info, io.BytesIO(data))


def _write_shard(out_dir: str, index: int, video_dir: str, jobs: list[_SegmentJob], p: _Params) -> dict:
    """Write shard ``index`` (tar, then its summary JSON), each atomically; one segment in
    memory at a time. Segments that fail to read are listed in the summary, not fatal."""
    name = _SHARD_NAME.format(index)
    root = Path(video_dir)
    keys, failed = [], []
    with atomic_path(Path(out_dir) / f"{name}.tar") as tmp:
        with open(tmp, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for job in jobs:
                video = root / job.source if root.is_dir() else root
                try:
                    sample = _encode_segment(video, job, p)
                except MediaError as err:
                    failed.append({"path": str(video), "start_s": round(float(job.start_frame / p.fps), 6),
                                   "reason": err.reason})
                    continue
                for ext in ("json", "mjpeg", "flac"):
                    _add_member(tar, f"{job.key}.{ext}", sample[ext])
                keys.append(job.key)
    summary = {"shard": f"{name}.tar", "samples": len(keys), "keys": keys, "failed": failed}
    write_json(Path(out_dir) / f"{name}.json", summary)
    return summary


def _read_summary(out_dir: Path, index: int) -> dict | None:
    name = _SHARD_NAME.format(index)
    if not (out_dir / f"{name}.tar").is_file():
        return None
    try:
        return json.loads((out_dir / f"{name}.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None  # the tar landed but its summary did not: write the shard again


def _check_plan(out_dir: Path, plan: dict) -> None:
    """Refuse to mix shards of two different plans in one folder."""
    path = out_dir / _PLAN
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            old = None
        if old != json.loads(json.dumps(plan)):
            raise ValueError(f"{out_dir}: holds shards of a different plan (the videos or the settings changed since "
                             "they were written); give a new output folder or empty this one")
    elif any(out_dir.glob("shard-*.tar")):
        raise ValueError(f"{out_dir}: holds shards without a {_PLAN}; give a new output folder")


#: How worker processes start: spawn, because the caller may hold threads (a training process,
#: CUDA) that fork would copy in an unusable state.
_START_METHOD = "spawn"


def _executor(workers: int) -> concurrent.futures.Executor | None:
    if workers <= 1:
        return None
    return concurrent.futures.ProcessPoolExecutor(max_workers=workers,
                                                  mp_context=multiprocessing.get_context(_START_METHOD))


def prepare_shards(
    video_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    size: int | tuple[int, int] = PAPER_FULL_SIZE,
    fit: str = "crop",
    fps: float | Fraction = PAPER_FPS,
    sample_rate: int = PAPER_SAMPLE_RATE,
    channels: int = 2,
    clip_s: float = SEGMENT_S,
    min_clip_s: float = MIN_SEGMENT_S,
    clips_per_shard: int = DEFAULT_CLIPS_PER_SHARD,
    jpeg_q: int = DEFAULT_JPEG_Q,
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
) -> dict:
    """Turn every video under ``video_dir`` into segments of ``clip_s`` seconds stored in
    WebDataset shards under ``out_dir`` (layout, format and plan: see the module docstring).

    Args:
        size: stored frame ``(height, width)``, or a side for square frames (the paper: 256).
        fit: ``"crop"``, ``"pad"`` or ``"squash"``, as :func:`~avscene.media.read_clip`.
        fps, sample_rate, channels: the stored rates (the paper's by default).
        clip_s: length of a full segment (default :data:`SEGMENT_S`, 10.0 s).
        min_clip_s: shortest segment kept (tails and short videos; default 6.2 s).
        clips_per_shard: segments per shard (64 = roughly 150-400 MB).
        jpeg_q: MJPEG quantiser scale, 2 (finest) .. 31.
        seed: the permutation that deals segments to shards.
        workers: processes that probe files and write shards.

    Returns the report also written to ``out_dir/report.json``: ``shards`` (paths), ``samples``,
    ``videos``, ``written`` / ``already_done`` (shards this run wrote / found finished),
    ``skipped_files`` and ``failed_segments`` (each with its path and reason).

    Raises:
        MediaError: ``video_dir`` does not exist; ValueError: bad settings, no usable video, or
        ``out_dir`` holds shards of another plan.
    """
    fps = as_fps(fps)
    hw = (int(size), int(size)) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    p = _Params(size=hw, fit=fit, fps=fps, sample_rate=int(sample_rate), channels=int(channels),
                segment_frames=seconds_to_frames(clip_s + 1e-6, fps),
                min_segment_frames=seconds_to_frames(min_clip_s + 1e-6, fps),
                clips_per_shard=int(clips_per_shard), jpeg_q=int(jpeg_q), seed=int(seed))
    if not 1 <= p.min_segment_frames <= p.segment_frames:
        raise ValueError(f"need 0 < min_clip_s <= clip_s, got {min_clip_s} and {clip_s}")
    if p.clips_per_shard < 1 or workers < 1:
        raise ValueError("clips_per_shard and workers must be >= 1")
    if not 2 <= p.jpeg_q <= 31:
        raise ValueError(f"jpeg_q must be within 2..31, got {jpeg_q}")
    if fit not in ("crop", "pad", "squash"):
        raise ValueError(f"fit must be 'crop', 'pad' or 'squash', got {fit!r}")
    root = Path(video_dir)
    files = find_videos(root)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    executor = _executor(workers)
    try:
        # 1. probe every file (in parallel); keep those with both streams and one segment's length
        min_duration_s = float((p.min_segment_frames + 1) / fps)
        args = [str(f) for f in files]
        if executor is None:
            results = map(_probe_one, args, [min_duration_s] * len(args))
        else:
            results = executor.map(_probe_one, args, [min_duration_s] * len(args), chunksize=8)
        videos: list[MediaInfo] = []
        skipped: list[dict] = []
        for result in tqdm(results, total=len(args), desc="probing videos", unit="file", disable=not progress):
            videos += result.videos
            skipped += [{"path": path, "reason": reason} for path, reason in result.skipped]

        # 2. the plan: segments of every video, permuted, cut into shards
        jobs: list[_SegmentJob] = []
        for info in videos:
            rel = Path(info.path).relative_to(root).as_posix() if root.is_dir() else Path(info.path).name
            segments = _segments_of(info, p)
            if not segments:
                skipped.append({"path": info.path, "reason": f"too short ({info.duration_s:.2f} s holds no "
                                                             f"{p.min_segment_frames}-frame segment)"})
            jobs += [_SegmentJob(rel, start, n) for start, n in segments]
        if len({j.key for j in jobs}) != len(jobs):
            raise ValueError("two videos hash to the same segment key; rename one of them")
        order = np.random.default_rng(p.seed).permutation(len(jobs))
        shards = [[jobs[i] for i in order[k : k + p.clips_per_shard]] for k in range(0, len(jobs), p.clips_per_shard)]
        plan = {"format": SHARD_FORMAT, "params": p.to_dict(),
                "shards": [[[j.source, j.start_frame, j.n_frames] for j in shard] for shard in shards]}
        report = {"video_dir": str(root), "out_dir": str(out), "params": p.to_dict(), "videos": len(videos),
                  "segments": len(jobs), "samples": 0, "shards": [], "written": 0, "already_done": 0,
                  "skipped_files": sorted(skipped, key=lambda d: d["path"]), "failed_segments": []}
        if not jobs:
            write_json(out / _REPORT, report)
            raise ValueError(f"{root}: no usable videos ({len(files)} files, {len(skipped)} skipped; see {out / _REPORT})")
        _check_plan(out, plan)
        write_json(out / _PLAN, plan)

        # 3. write the shards not finished yet
        todo = [i for i in range(len(shards)) if _read_summary(out, i) is None]
        report["already_done"] = len(shards) - len(todo)
        bar = tqdm(total=len(todo), desc="writing shards", unit="shard", disable=not progress)
        if executor is None:
            for i in todo:
                _write_shard(str(out), i, str(root), shards[i], p)
                bar.update()
        else:
            futures = [executor.submit(_write_shard, str(out), i, str(root), shards[i], p) for i in todo]
            for future in concurrent.futures.as_completed(futures):
                future.result()
                bar.update()
        bar.close()
        report["written"] = len(todo)
    except BaseException:
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        raise
    if executor is not None:
        executor.shutdown()

    for i in range(len(shards)):
        summary = _read_summary(out, i)
        report["shards"].append(str(out / summary["shard"]))
        report["samples"] += summary["samples"]
        report["failed_segments"] += summary["failed"]
    write_json(out / _REPORT, report)
    return report


def prepare_main(video_dir: str | os.PathLike, out_dir: str | os.PathLike, *, workers: int = 1,
                 progress: bool = True, **kwargs) -> int:
    """Command-line front of :func:`prepare_shards` (``kwargs`` go to it): prints a summary and
    returns the CLI's exit code: 0 all files used, 1 some files or segments skipped (listed in
    ``OUT/report.json``). Fatal problems raise MediaError / ValueError, which the CLI prints."""
    report = prepare_shards(video_dir, out_dir, workers=workers, progress=progress, **kwargs)
    print(f"{report['samples']} segments from {report['videos']} videos in {len(report['shards'])} shards under "
          f"{report['out_dir']} ({report['written']} written now, {report['already_done']} already done)")
    problems = report["skipped_files"] + report["failed_segments"]
    if problems:
        print(f"{len(report['skipped_files'])} files skipped, {len(report['failed_segments'])} segments failed "
              f"(reasons in {Path(report['out_dir']) / _REPORT}):")
        for item in problems[:10]:
            print(f"  {item['path']}: {item['reason']}")
        if len(problems) > 10:
            print(f"  ... and {len(problems) - 10} more")
    return 1 if problems else 0
