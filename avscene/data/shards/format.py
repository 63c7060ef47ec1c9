"""What one shard holds: the layout's constants (segment lengths, file names, format version)
and :class:`Segment`, one stored sample decoded back into frames and audio.

A sample is three tar members under one ``KEY`` (a hash of the source path + ``_`` + the
segment's first frame): ``KEY.json`` (metadata), ``KEY.mjpeg`` (the frames, one JPEG each, back
to back) and ``KEY.flac`` (the audio); see :mod:`avscene.data.shards` for the fields.
"""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np

from avscene.constants import (PAPER_CLIP_SECONDS, PAPER_CROP_SIZE, PAPER_FPS, PAPER_FULL_SIZE, PAPER_SAMPLE_RATE,
                               seconds_to_frames)
from avscene.data.shift_pairs import ShiftSampling
from avscene.media import MediaError
from avscene.media.codecs import decode_flac, decode_jpegs

#: How the paper cuts shift examples; the segment lengths below are derived from it.
PAPER_SAMPLING = ShiftSampling(n_frames=seconds_to_frames(PAPER_CLIP_SECONDS, PAPER_FPS), fps=PAPER_FPS,
                               sample_rate=PAPER_SAMPLE_RATE, crop_size=PAPER_CROP_SIZE, full_size=PAPER_FULL_SIZE)
#: Frames of a full stored segment: a paper clip, its largest shift and one spare frame.
SEGMENT_FRAMES = PAPER_SAMPLING.n_frames + PAPER_SAMPLING.shift_frames[1] + 1
#: Fewest frames a stored segment may hold: a paper clip, its smallest shift and one spare frame.
MIN_SEGMENT_FRAMES = PAPER_SAMPLING.n_frames + PAPER_SAMPLING.shift_frames[0] + 1
#: The same two lengths in seconds (10.0 s and 6.2 s).
SEGMENT_S = float(SEGMENT_FRAMES / PAPER_FPS)
MIN_SEGMENT_S = float(MIN_SEGMENT_FRAMES / PAPER_FPS)
DEFAULT_CLIPS_PER_SHARD = 64
#: Layout name and version, written into plan.json.
SHARD_FORMAT = "avscene-shards/1"

#: Shard ``i`` is ``SHARD_NAME.format(i) + ".tar"``, its summary the same name + ``.json``.
SHARD_NAME = "shard-{:06d}"
#: The preparation plan and report, beside the shards.
PLAN_NAME = "plan.json"
REPORT_NAME = "report.json"
#: The members of one sample, by extension.
SAMPLE_MEMBERS = ("json", "mjpeg", "flac")


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
        :func:`~avscene.media.codecs.decode_jpegs`)."""
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


def segment_from_sample(sample: dict) -> Segment:
    """The :class:`Segment` of a WebDataset sample (``__key__``, ``__url__`` and the bytes of
    its :data:`SAMPLE_MEMBERS`), undecoded; a :class:`MediaError` naming it if it is not one."""
    where = f"{sample.get('__url__')}#{sample.get('__key__')}"
    missing = set(SAMPLE_MEMBERS) - sample.keys()
    if missing:
        raise MediaError(where, f"sample lacks {', '.join(sorted(missing))}: not an avscene shard?")
    try:
        meta = json.loads(sample["json"])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MediaError(where, f"metadata is not JSON ({err})") from None
    return Segment(sample["__key__"], sample["__url__"], meta, sample["mjpeg"], sample["flac"])
