"""Reading an aligned audio-visual window of a media file: :func:`read_clip` -> :class:`Clip`.

Time is the container's presentation time, in seconds, for both streams, which is what a player
shows: a frame and a sample with the same timestamp are shown and heard together. A window
``[start_s, start_s + n_frames / fps)`` is read after one seek, decoding only the packets it
needs:

* video is resampled to a constant ``fps``: output frame ``i`` is the source frame on screen at
  ``start_s + i / fps`` (the latest frame whose timestamp is <= that instant), so variable frame
  rates and odd rates (7.29, 19.62 fps) work and frames are duplicated or dropped as a player
  would;
* audio is resampled and mixed (libswresample, which also downmixes 5.1/7.1 before any sample
  reaches NumPy) and sliced so that sample 0 is at ``start_s``; the clip holds exactly
  ``frame_to_sample(n_frames, fps, sample_rate)`` samples, so audio and video start and end
  together to within one sample.

Frames are resized with one of four ``fit`` modes (:mod:`avscene.media.geometry` holds their
exact rounding): ``"crop"`` (default: keep the aspect ratio, scale to cover, centre-crop —
nothing is distorted, the borders of wide frames are lost), ``"pad"`` (keep the aspect ratio,
scale to fit, pad with black — nothing is lost), ``"squash"`` (stretch to the size: the
release's CAM input) or ``"squash-crop"`` (the release's sync and separation input: stretch to
8/7 of the size, 256 for 224, then centre-crop).
"""

from __future__ import annotations

import dataclasses
import math
import os
from fractions import Fraction

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from avscene.constants import as_fps, frame_to_sample, frames_in, seconds_to_frames, seconds_to_samples
from avscene.media.errors import ClipRangeError, MediaError
from avscene.media.geometry import FITS, Fit, FitGeometry
from avscene.media.isolate import decodes_in_worker, tick
from avscene.media.probe import (_ffmpeg_reason, layout_name, measured_duration, open_input, remember_input,
                                  stream_fps, usable_streams)

#: A window may run this far past the last frame / sample before it counts as beyond the end
#: (containers often end their audio a few ms before the video's last frame does).
_END_TOLERANCE_S = 0.1


@dataclasses.dataclass(frozen=True)
class Clip:
    """An aligned window of a media file: audio sample 0 and frame 0 are the same instant.

    frames: uint8 (T, H, W, 3) RGB, or None when video was not read.
    audio: float32 (N, C) in [-1, 1], or None when audio was not read.
    """

    frames: np.ndarray | None
    audio: np.ndarray | None
    fps: Fraction | None
    sample_rate: int | None
    start_s: float
    path: str | None = None

    @property
    def n_frames(self) -> int:
        return 0 if self.frames is None else int(self.frames.shape[0])

    @property
    def n_samples(self) -> int:
        return 0 if self.audio is None else int(self.audio.shape[0])

    @property
    def duration_s(self) -> float:
        if self.frames is not None and self.fps:
            return float(self.n_frames / self.fps)
        return self.n_samples / self.sample_rate if self.sample_rate else 0.0


def _output_size(size: int | tuple[int, int] | None, src_hw: tuple[int, int]) -> tuple[int, int]:
    if size is None:
        return src_hw
    if isinstance(size, int):
        return (size, size)
    return (int(size[0]), int(size[1]))


def _check_params(path, start_s, duration_s, fps, size, sample_rate, channels, fit) -> None:
    def bad(reason: str) -> MediaError:
        return MediaError(path, f"invalid request: {reason}")

    if not (isinstance(start_s, (int, float)) and math.isfinite(start_s) and start_s >= 0):
        raise bad(f"start_s must be a finite time >= 0 s, got {start_s!r}")
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        raise bad(f"duration_s must be > 0 s, got {duration_s!r}")
    if fps is not None:
        try:
            fps_value = as_fps(fps)
        except (ValueError, ZeroDivisionError):
            raise bad(f"fps must be a positive rate, got {fps!r}") from None
        if not 0.1 <= fps_value <= 1000:
            raise bad(f"fps must be within 0.1..1000, got {fps!r}")
    if size is not None:
        sizes = (size,) if isinstance(size, int) else tuple(size)
        if len(sizes) not in (1, 2) or not all(isinstance(s, (int, np.integer)) and 1 <= s <= 8192 for s in sizes):
            raise bad(f"size must be an int or (height, width) within 1..8192 px, got {size!r}")
    if sample_rate is not None and not (isinstance(sample_rate, (int, np.integer)) and 1000 <= sample_rate <= 384000):
        raise bad(f"sample_rate must be an int within 1000..384000 Hz, got {sample_rate!r}")
    if channels is not None and not (isinstance(channels, (int, np.integer)) and 1 <= channels <= 8):
        raise bad(f"channels must be within 1..8, got {channels!r}")
    if fit not in FITS:
        raise bad(f"fit must be one of {FITS}, got {fit!r}")


class _FrameConverter:
    """Converts decoded frames to RGB uint8 at the output size with the chosen fit."""

    def __init__(self, out_hw: tuple[int, int], fit: Fit):
        self.out_h, self.out_w = out_hw
        self.fit = fit
        self._geometry: FitGeometry | None = None  # of the last frame's size
        # Persistent reformatters keep their swscale contexts between frames; frame.reformat()
        # builds a new one per call, which costs more than the conversion of a small frame.
        self._scaler = VideoReformatter()
        self._to_rgb = VideoReformatter()

    def _geometry_of(self, frame_hw: tuple[int, int]) -> FitGeometry:
        if self._geometry is None or self._geometry.frame_hw != frame_hw:
            self._geometry = FitGeometry.of(frame_hw, (self.out_h, self.out_w), self.fit)
        return self._geometry

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        src_h, src_w = frame.height, frame.width
        geometry = self._geometry_of((src_h, src_w))
        (scaled_h, scaled_w), (top, left) = geometry.scaled_hw, geometry.offset
        if (scaled_w, scaled_h) != (src_w, src_h):
            # Scale in the decoder's own pixel format, then convert the smaller picture to RGB:
            # swscale is several times faster this way round. Fast bilinear is exact enough down
            # to half size; beyond that, area averaging avoids aliasing.
            heavy = scaled_w * 2 < src_w or scaled_h * 2 < src_h
            frame = self._scaler.reformat(frame, width=scaled_w, height=scaled_h,
                                          interpolation="AREA" if heavy else "FAST_BILINEAR")
        rgb = self._to_rgb.reformat(frame, format="rgb24").to_ndarray()  # (scaled_h, scaled_w, 3)
        if (scaled_h, scaled_w) == (self.out_h, self.out_w):
            return rgb
        if self.fit in ("crop", "squash-crop"):  # cut the centre
            return rgb[top : top + self.out_h, left : left + self.out_w]
        canvas = np.zeros((self.out_h, self.out_w, 3), np.uint8)  # pad: the picture inside black borders
        canvas[-top : -top + scaled_h, -left : -left + scaled_w] = rgb
        return canvas


class _VideoWindow:
    """Collects the source frames on screen at ``t_i = start + i / fps`` for i < n_frames."""

    def __init__(self, start: Fraction, fps: Fraction, n_frames: int, convert: _FrameConverter):
        self.start, self.fps, self.n_frames, self.convert = start, fps, n_frames, convert
        self.out: list[np.ndarray] = []
        self.prev: tuple[Fraction, np.ndarray | None, av.VideoFrame] | None = None
        self.first_time: Fraction | None = None

    def target_time(self, i: int) -> Fraction:
        return self.start + Fraction(i) / self.fps

    @property
    def done(self) -> bool:
        return len(self.out) >= self.n_frames

    def _rgb_of_prev(self) -> np.ndarray:
        t, rgb, frame = self.prev
        if rgb is None:
            rgb = self.convert(frame)
            self.prev = (t, rgb, frame)
        return rgb

    def add(self, frame: av.VideoFrame, time: Fraction) -> None:
        if self.first_time is None:
            self.first_time = time
        # Every target instant before this frame's timestamp shows the previous frame (or this
        # one, held, when the window starts before the stream's first frame).
        while not self.done and self.target_time(len(self.out)) < time:
            if self.prev is None:
                self.prev = (time, None, frame)
            self.out.append(self._rgb_of_prev())
        self.prev = (time, None, frame)

    def finish(self, frame_duration: Fraction) -> int:
        """Fill the last targets from the final frame; return how many targets could not be."""
        while not self.done and self.prev is not None:
            if self.target_time(len(self.out)) >= self.prev[0] + frame_duration + Fraction(_END_TOLERANCE_S):
                break
            self.out.append(self._rgb_of_prev())
        return self.n_frames - len(self.out)


class _AudioWindow:
    """Resamples decoded audio and keeps ``n_samples`` samples starting at ``start``."""

    def __init__(self, start: Fraction, sample_rate: int, channels: int, n_samples: int):
        self.start, self.sample_rate, self.n_samples = start, sample_rate, n_samples
        self.resampler = av.AudioResampler(format="flt", layout=layout_name(channels), rate=sample_rate)
        self.channels = channels
        self.chunks: list[np.ndarray] = []
        self.have = 0  # samples collected from the window's start on
        self.first_time: Fraction | None = None
        self.skip = 0  # samples still to drop before the window's start

    @property
    def done(self) -> bool:
        return self.have >= self.n_samples

    def _resample(self, frame: av.AudioFrame | None) -> list[av.AudioFrame]:
        try:
            return self.resampler.resample(frame)
        except ValueError:  # the stream changed its rate, layout or sample format mid-way
            if frame is None:
                raise
            rest = self.resampler.resample(None)  # what the old setup still holds, then a new one
            self.resampler = av.AudioResampler(format="flt", layout=layout_name(self.channels), rate=self.sample_rate)
            return rest + self.resampler.resample(frame)

    def add(self, frame: av.AudioFrame | None) -> None:
        for out in self._resample(frame):
            data = out.to_ndarray().reshape(-1, self.channels)  # packed flt: (n, C)
            if self.first_time is None:
                t0 = Fraction(out.pts) * out.time_base if out.pts is not None else Fraction(frame.time or 0)
                self.first_time = t0
                offset = round((self.start - t0) * self.sample_rate)
                if offset < 0:  # the stream starts after the window does: silence before it
                    self.chunks.append(np.zeros((min(-offset, self.n_samples), self.channels), np.float32))
                    self.have = self.chunks[-1].shape[0]
                self.skip = max(0, offset)
            if self.skip:
                drop = min(self.skip, data.shape[0])
                data, self.skip = data[drop:], self.skip - drop
            keep = data[: self.n_samples - self.have]
            if keep.size:
                self.chunks.append(np.ascontiguousarray(keep, dtype=np.float32))
                self.have += keep.shape[0]

    def result(self) -> np.ndarray:
        audio = np.concatenate(self.chunks, axis=0) if self.chunks else np.zeros((0, self.channels), np.float32)
        return np.clip(audio, -1.0, 1.0, out=audio)  # (N, C)


@decodes_in_worker(remember_input)
def read_clip(
    path: str | os.PathLike,
    start_s: float = 0.0,
    duration_s: float | None = None,
    *,
    fps: float | Fraction | None = None,
    size: int | tuple[int, int] | None = None,
    fit: Fit = "crop",
    sample_rate: int | None = None,
    channels: int | None = None,
    video: bool = True,
    audio: bool = True,
    threads: int = 0,
) -> Clip:
    """Read ``duration_s`` seconds of ``path`` from ``start_s`` as an aligned :class:`Clip`.

    Args:
        start_s: window start (s, presentation time).
        duration_s: window length (s); None reads to the end. With video, the window is
            ``seconds_to_frames(duration_s, fps)`` whole frames (4.2 s at 29.97 fps = 125).
        fps: output frame rate (exact Fraction or float; 29.97 means 30000/1001); None keeps
            the source's average rate.
        size: output ``(height, width)`` or a side for square frames; None keeps the source's.
        fit: ``"crop"``, ``"pad"``, ``"squash"`` or ``"squash-crop"`` (see the module docstring).
        sample_rate: output rate (Hz); None keeps the source's.
        channels: output channels (1 = mono mix, 2 = stereo, ...); None keeps the source's.
        video, audio: which streams to read; a stream that is asked for must exist.
        threads: decoder threads (0 = FFmpeg's choice).

    Raises:
        MediaError: unreadable file; NoStreamError: a needed stream is missing;
        ClipRangeError: the window is empty or runs past the end of the file.
    """
    _check_params(path, start_s, duration_s, fps, size, sample_rate, channels, fit)
    if not (video or audio):
        raise MediaError(path, "invalid request: read neither video nor audio")
    with open_input(path) as container:
        vstream, astream = _streams(container, path, video=video, audio=audio)
        out_fps, out_rate, out_channels = _output_format(path, vstream, astream, fps, sample_rate, channels)
        fresh = duration_s is not None  # else measuring the file's end has moved the demuxer
        n_frames, n_samples = _window_length(container, path, start_s, duration_s, out_fps, out_rate)
        start = Fraction(start_s).limit_denominator(10**9)
        return _decode_window(container, path, vstream, astream, start, out_fps, n_frames, size, fit,
                              out_rate, out_channels, n_samples, threads, fresh=fresh)


def _streams(container, path, *, video: bool, audio: bool):
    """The first usable video and audio streams (:func:`~avscene.media.probe.usable_streams`), each
    None when not asked for; raises NoStreamError for one that is asked for and missing."""
    vstream, astream = usable_streams(container, path, need_video=video, need_audio=audio)
    return (vstream if video else None), (astream if audio else None)


def _output_format(path, vstream, astream, fps, sample_rate, channels
                   ) -> tuple[Fraction | None, int | None, int | None]:
    """The clip's frame rate (fps), sample rate (Hz) and channels: those asked for, else the
    source's; None for a stream that is not read."""
    out_fps = out_rate = out_channels = None
    if vstream is not None:
        out_fps = as_fps(fps) if fps is not None else stream_fps(vstream)
        if out_fps is None:
            raise MediaError(path, "video stream has no readable frame rate; pass fps explicitly")
    if astream is not None:
        src_rate = astream.codec_context.sample_rate
        if not src_rate:
            raise MediaError(path, "audio stream has no readable sample rate")
        out_rate = int(sample_rate or src_rate)
        out_channels = int(channels or astream.codec_context.channels or 2)
        if out_channels > 8:  # only a request can set 1..8 (checked); a header may claim any count
            raise MediaError(path, f"its audio stream claims {out_channels} channels; a clip keeps at most 8: "
                                   "ask for fewer (channels=2 mixes them to stereo)")
    return out_fps, out_rate, out_channels


def _window_length(container, path, start_s: float, duration_s: float | None, out_fps: Fraction | None,
                   out_rate: int | None) -> tuple[int, int]:
    """Frames and samples of the window from ``start_s`` (s): ``duration_s`` (s; None: to the
    end of the file) in whole frames at ``out_fps`` and the samples of those frames, or, without
    video, in samples at ``out_rate``."""
    file_end = None
    if duration_s is None:
        file_end = measured_duration(container)
        duration_s = file_end - start_s
        if duration_s <= 0:
            raise ClipRangeError(path, f"start {start_s:.3f} s is at or past the end of the file ({file_end:.3f} s)")
    if out_fps is None:
        n_samples = seconds_to_samples(duration_s, out_rate)
        if n_samples < 1:
            raise ClipRangeError(path, f"window of {duration_s} s holds no audio sample")
        return 0, n_samples
    if file_end is not None:  # to the end: every frame that starts before it
        n_frames = frames_in(file_end - start_s, out_fps)
    else:
        n_frames = seconds_to_frames(duration_s, out_fps)
    if n_frames < 1:
        raise ClipRangeError(path, f"window of {duration_s:.4f} s holds no whole frame at {float(out_fps):.3f} fps")
    return n_frames, (frame_to_sample(n_frames, out_fps, out_rate) if out_rate else 0)


#: How far before a window audio decoding starts (s): a few AAC/MP3/Opus frames of 1024-2048
#: samples at 44.1-48 kHz.
_AUDIO_PREROLL_S = Fraction(1, 5)


def _decode_window(container, path, vstream, astream, start, out_fps, n_frames, size, fit,
                   out_rate, out_channels, n_samples, threads, *, fresh: bool) -> Clip:
    if vstream is not None and threads != 1:
        vstream.thread_type = "AUTO"
    if vstream is not None and threads:
        vstream.codec_context.thread_count = threads
    # Seek a little early and check both streams really start at or before the window; when a
    # seek lands late (sparse keyframes, odd indexes) retry from further back, finally from 0.
    # Audio gets a pre-roll: a decoder started right at the window (an audio-only seek lands
    # exactly there) has no previous frame to overlap-add with, so AAC's first ~46 ms after a
    # seek come out wrong; decoding from _AUDIO_PREROLL_S earlier makes a window's samples the
    # same whether or not video is read with it.
    first_back = _AUDIO_PREROLL_S if astream is not None else Fraction(0)
    attempts = (first_back, 1.0, 5.0, None)
    for back_s in attempts:
        seek_to = 0 if back_s is None else max(Fraction(0), start - Fraction(back_s))
        vwin = aw = None
        if vstream is not None:
            src_h, src_w = vstream.codec_context.height, vstream.codec_context.width
            vwin = _VideoWindow(start, out_fps, n_frames, _FrameConverter(_output_size(size, (src_h, src_w)), fit))
        if astream is not None:
            aw = _AudioWindow(start, out_rate, out_channels, n_samples)
        try:
            if seek_to > 0:
                anchor = vstream if vstream is not None else astream
                try:
                    container.seek(int(seek_to / anchor.time_base), stream=anchor, backward=True, any_frame=False)
                except av.FFmpegError as err:
                    raise MediaError(path, f"cannot seek to {float(seek_to):.3f} s in it ({_ffmpeg_reason(err)}; a "
                                           "raw stream has no index): remux it into a container such as mp4") from None
            elif back_s is not first_back or not fresh:
                # A fresh container is read from its first packet, without a seek: a seek to 0 can
                # land after packets stamped before 0 (Opus pre-skip, B-frame delay).
                container.seek(0)
            # the last attempt reads from the start and takes what the streams have
            late = _demux_window(container, vwin, aw, vstream, astream, start, accept_late=back_s is None)
        except av.FFmpegError as err:
            raise MediaError(path, f"corrupt or truncated media data ({_ffmpeg_reason(err)})") from None
        if not late or back_s is None:
            break

    if vwin is not None:
        frame_duration = 1 / (stream_fps(vstream) or out_fps)
        missing = vwin.finish(frame_duration)
        if missing or not vwin.out:
            window = f"window {float(start):.3f}-{float(vwin.target_time(n_frames)):.3f} s"
            if vwin.first_time is not None and vwin.first_time > start + Fraction(1, 1000):
                raise ClipRangeError(path, f"its video starts at {float(vwin.first_time):.3f} s; the {window} needs "
                                           f"video from {float(start):.3f} s: start the window later")
            end = float(vwin.prev[0] + frame_duration) if vwin.prev else 0.0
            raise ClipRangeError(path, f"{window} runs past the end of the video ({end:.3f} s)")
        frames = np.stack(vwin.out)  # (T, H, W, 3)
    else:
        frames = None
    audio_arr = None
    if aw is not None:
        aw.add(None)  # flush the resampler
        short = n_samples - aw.have
        if short > int(_END_TOLERANCE_S * out_rate) or aw.first_time is None:
            # samples are counted from the window's start (silence before a late stream included)
            have_s = float(start + Fraction(aw.have, out_rate)) if aw.first_time is not None else 0.0
            end_s = float(start + Fraction(n_samples, out_rate))
            raise ClipRangeError(
                path, f"window {float(start):.3f}-{end_s:.3f} s runs past the end of the audio ({have_s:.3f} s)"
            )
        audio_arr = aw.result()
        if short > 0:  # audio ends a few ms before the video: pad with silence
            audio_arr = np.concatenate([audio_arr, np.zeros((short, out_channels), np.float32)])
    return Clip(frames=frames, audio=audio_arr, fps=out_fps, sample_rate=out_rate,
                start_s=float(start), path=os.fspath(path))


def _demux_window(container, vwin, aw, vstream, astream, start, *, accept_late: bool = False) -> bool:
    """Decode packets into the windows until both are full; True if the seek landed late (a
    stream's first frame after the window's start although the stream has earlier ones), unless
    ``accept_late``."""
    streams = [s for s in (vstream, astream) if s is not None]
    v_start = _stream_start(vstream)
    a_start = _stream_start(astream)
    n_video = 0  # frames decoded: their times when the stream has none (raw H.264 elementary streams)
    for packet in container.demux(*streams):
        tick()  # progress, for the stall timeout of a decode worker (avscene.media.isolate)
        is_video = vstream is not None and packet.stream.index == vstream.index
        if is_video and vwin.done or (not is_video) and aw.done:
            if (vwin is None or vwin.done) and (aw is None or aw.done):
                break
            continue
        for frame in packet.decode():
            if is_video:
                if frame.pts is not None:
                    t = Fraction(frame.pts) * frame.time_base
                else:
                    t = Fraction(n_video) / (stream_fps(vstream) or 25)
                n_video += 1
                if vwin.first_time is None and t > start and t > v_start + Fraction(1, 1000) and not accept_late:
                    return True
                vwin.add(frame, t)
            else:
                if aw.first_time is None and frame.pts is not None:
                    t = Fraction(frame.pts) * frame.time_base
                    if t > start and t > a_start + Fraction(1, 1000) and not accept_late:
                        return True
                aw.add(frame)
        if (vwin is None or vwin.done) and (aw is None or aw.done):
            break
    else:
        # The file ended with a stream that gave no frame after the seek: it landed past the last
        # keyframe before the window (MPEG-TS has no index to seek by), which is landing late too.
        ran_dry = (vwin is not None and vwin.first_time is None) or (aw is not None and aw.first_time is None)
        return ran_dry and not accept_late
    return False


def _stream_start(stream) -> Fraction:
    if stream is None or stream.start_time is None:
        return Fraction(0)
    return Fraction(stream.start_time) * stream.time_base
