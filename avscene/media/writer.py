"""Writing results: H.264 + AAC mp4 (:func:`write_video`, or :class:`VideoWriter` chunk by chunk
for long videos) and WAV (:func:`write_wav`).

All write atomically (see :mod:`avscene.files`) and refuse to replace a file this process has
read as an input. AAC has no 21 kHz mode, so audio at a rate AAC lacks is resampled to the next
rate it has (21000 -> 22050 Hz); readers resample back, and timing is kept exactly.
"""

from __future__ import annotations

import contextlib
import os
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf

from avscene.constants import as_fps
from avscene.files import atomic_path
from avscene.media.errors import MediaError
from avscene.media.probe import check_input_path, is_known_input, layout_name, open_input, usable_streams
from avscene.media.reader import read_clip

#: Sample rates the AAC encoder accepts (Hz).
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)


def _check_output(path: str | os.PathLike) -> Path:
    dest = Path(path)
    if dest.is_dir():
        raise MediaError(dest, "output path is a directory")
    if is_known_input(dest):
        raise MediaError(dest, "refusing to overwrite a file that was read as an input")
    return dest


def _as_audio(audio: np.ndarray, path) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[:, None]
    if audio.ndim != 2 or not 1 <= audio.shape[1] <= 8:
        raise MediaError(path, f"audio must be (samples, channels) with 1..8 channels, got shape {audio.shape}")
    if not np.isfinite(audio).all():
        raise MediaError(path, "audio contains NaN or infinite values")
    return np.clip(audio, -1.0, 1.0)  # (N, C)


def aac_rate(sample_rate: int) -> int:
    """The AAC rate to store ``sample_rate`` audio at: itself if AAC has it, else the next one up."""
    for rate in AAC_RATES:
        if rate >= sample_rate:
            return rate
    return AAC_RATES[-1]


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: float | Fraction,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
    *,
    crf: int = 18,
    preset: str = "veryfast",
    comment: str | None = None,
) -> Path:
    """Write ``frames`` (uint8 (T, H, W, 3) RGB) at ``fps`` and optional ``audio`` (float32
    (N, C) in [-1, 1] at ``sample_rate`` Hz) as an H.264/AAC mp4 that browsers and players open.

    Frame ``i`` is shown at ``i / fps`` and audio sample 0 at time 0. Odd frame sizes are padded
    by one edge row/column (H.264 4:2:0 needs even sizes). ``comment`` goes into the container's
    metadata (``avscene synth`` marks its scenes there).
    """
    dest = _check_output(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise MediaError(dest, f"frames must be non-empty uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    fps = as_fps(fps)
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    if audio is not None:
        if not sample_rate:
            raise MediaError(dest, "sample_rate is needed with audio")
        audio = _as_audio(audio, dest)
    with atomic_path(dest) as tmp:
        with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
            if comment:
                out.metadata["comment"] = comment
            vstream = out.add_stream("libx264", rate=fps)
            vstream.width, vstream.height = frames.shape[2], frames.shape[1]
            vstream.pix_fmt = "yuv420p"
            vstream.options = {"crf": str(crf), "preset": preset}
            astream = None
            if audio is not None:
                rate = aac_rate(int(sample_rate))
                layout = layout_name(audio.shape[1])
                astream = out.add_stream("aac", rate=rate)
                astream.layout, astream.format = layout, "fltp"
            for i, image in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                frame.pts = i
                out.mux(vstream.encode(frame))
            out.mux(vstream.encode(None))
            if astream is not None:
                _encode_audio(out, astream, audio, int(sample_rate))
    return dest


def audio_frame(audio: np.ndarray, layout: str) -> av.AudioFrame:
    """A planar float frame of ``audio`` (float32 (N, C)) in channel ``layout``, filled plane by
    plane: PyAV 18's ``AudioFrame.from_ndarray`` fails on 8 channels (7.1), this works at any count."""
    frame = av.AudioFrame(format="fltp", layout=layout, samples=len(audio))
    for c in range(audio.shape[1]):
        frame.planes[c].update(np.ascontiguousarray(audio[:, c], dtype=np.float32).tobytes())
    return frame


def _encode_audio(out, astream, audio: np.ndarray, sample_rate: int) -> None:
    layout = astream.layout.name
    frame = audio_frame(audio, layout)  # (N, C) -> C planes
    frame.sample_rate, frame.pts = sample_rate, 0
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=astream.codec_context.sample_rate)
    for chunk in [*resampler.resample(frame), *resampler.resample(None)]:
        out.mux(astream.encode(chunk))
    out.mux(astream.encode(None))


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, *, subtype: str = "PCM_16") -> Path:
    """Write ``audio`` (float32 (N, C) or (N,) in [-1, 1]) as a WAV file, atomically."""
    dest = _check_output(path)
    audio = _as_audio(audio, dest)
    with atomic_path(dest) as tmp:
        sf.write(str(tmp), audio, int(sample_rate), subtype=subtype, format="WAV")
    return dest


def audio_layout(path: str | os.PathLike) -> str | None:
    """The channel layout (FFmpeg's name: "mono", "stereo", "5.1(side)", "7.1", or "N channels"
    when the file names none) of the audio stream the readers use; None without one."""
    with open_input(path) as container:
        astream = usable_streams(container, path)[1]
        return astream.layout.name if astream is not None else None


def replace_audio(src: str | os.PathLike, dest: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> Path:
    """Write ``dest`` (mp4): the video stream of ``src`` as it is, with ``audio`` (float32
    (N, C) or (N,) in [-1, 1], clipped, at ``sample_rate`` Hz; sample 0 at the video's time 0)
    instead of ``src``'s sound. Rates AAC lacks are resampled to the next one up (21 kHz ->
    22.05 kHz; above 96 kHz, 96 kHz). A video codec that mp4 cannot hold as it is (VP8), or
    that this FFmpeg cannot copy (AV1 read by libdav1d), is re-encoded as H.264 at the same
    times. Raises :class:`MediaError` if ``src`` has no video or it cannot be decoded."""
    src = check_input_path(src)
    dest = _check_output(dest)
    if dest.exists() and dest.samefile(src):
        raise MediaError(dest, "refusing to overwrite the input")
    audio = _as_audio(audio, dest)  # (N, C)
    with open_input(src) as container, atomic_path(dest) as tmp:
        vin = container.streams.video[0] if container.streams.video else None
        if vin is None:
            raise MediaError(src, "has no video stream")
        with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
            try:
                vout, copy = out.add_stream_from_template(vin), True
            except (ValueError, av.FFmpegError):
                vout, copy = _h264_stream_like(out, vin), False
            aout = out.add_stream("aac", rate=aac_rate(int(sample_rate)))
            aout.layout, aout.format = layout_name(audio.shape[1]), "fltp"
            (_copy_packets if copy else _encode_pictures)(container, vin, vout, out)
            _encode_audio(out, aout, audio, int(sample_rate))
    return dest


def _copy_packets(container, vin, vout, out) -> None:
    """Mux the packets of ``vin`` into ``vout`` as they are."""
    for packet in container.demux(vin):
        if packet.dts is None:
            continue
        packet.stream = vout
        out.mux(packet)


def _h264_stream_like(out, vin):
    """An H.264 stream of ``vin``'s size (made even: 4:2:0) and time base."""
    stream = out.add_stream("libx264", rate=vin.average_rate or vin.guessed_rate or 25)
    ctx = vin.codec_context
    stream.width, stream.height = ctx.width + ctx.width % 2, ctx.height + ctx.height % 2
    stream.pix_fmt, stream.options = "yuv420p", {"crf": "18", "preset": "veryfast"}
    stream.codec_context.time_base = vin.time_base
    return stream


def _encode_pictures(container, vin, vout, out) -> None:
    """Decode ``vin`` and encode its pictures into ``vout`` (H.264) at their own times."""
    try:
        for frame in container.decode(vin):
            pts = frame.pts if frame.pts is not None else frame.dts
            if pts is None:
                continue
            picture = frame.reformat(width=vout.width, height=vout.height, format="yuv420p")
            picture.pts, picture.time_base = pts, vin.time_base
            out.mux(vout.encode(picture))
        out.mux(vout.encode(None))
    except av.FFmpegError as err:
        raise MediaError(container.name, f"its video could not be re-encoded for the mp4 ({err})") from None


def write_shifted_audio(src: str | os.PathLike, dest: str | os.PathLike, advance_s: float) -> Path:
    """Copy ``src`` to an mp4 at ``dest`` with its audio moved ``advance_s`` seconds earlier
    (negative: later), keeping the video stream as it is (no re-encoding) and the duration: audio
    advanced past the start is dropped, the gap left at the start or end is silence.

    This is the fix for an offset found by ``avscene sync``: advance the audio by the offset.
    """
    src = check_input_path(src)
    clip = read_clip(src, video=False)  # whole track at its own rate and channels
    rate, audio = clip.sample_rate, clip.audio  # (N, C)
    shift = round(advance_s * rate)
    shifted = np.zeros_like(audio)
    if shift >= 0:
        shifted[: len(audio) - shift] = audio[shift:]
    else:
        shifted[-shift:] = audio[: len(audio) + shift]
    return replace_audio(src, dest, shifted[:, :8], rate)


class VideoWriter:
    """Streaming counterpart of :func:`write_video` for long outputs: frames and audio are encoded
    chunk by chunk as they are given, so memory holds one chunk, not the whole video.

    ``with VideoWriter(path, fps, (H, W), sample_rate=sr, channels=c) as out: out.write(frames,
    audio)`` for consecutive chunks of uint8 (t, H, W, 3) RGB frames and float32 (n, C) audio in
    [-1, 1] (audio and frames may come in chunks of any lengths; audio sample 0 is at time 0).
    Same container, codecs, odd-size padding and AAC rate rule as :func:`write_video`. The file
    appears under ``path`` only when the ``with`` block ends without an error (atomic, as every
    writer here); on an error the previous file at ``path``, if any, is left as it was.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float | Fraction,
        frame_hw: tuple[int, int],
        *,
        sample_rate: int | None = None,
        channels: int | None = None,
        crf: int = 18,
        preset: str = "veryfast",
    ) -> None:
        self.dest = _check_output(path)
        self.fps = as_fps(fps)
        self.frame_hw = (int(frame_hw[0]), int(frame_hw[1]))
        if min(self.frame_hw) < 1:
            raise MediaError(self.dest, f"frame size must be positive, got {frame_hw}")
        if (sample_rate is None) != (channels is None):
            raise MediaError(self.dest, "give both sample_rate and channels for audio, or neither")
        if channels is not None and not 1 <= int(channels) <= 8:
            raise MediaError(self.dest, f"audio must have 1..8 channels, got {channels}")
        self.sample_rate = None if sample_rate is None else int(sample_rate)
        self.channels = None if channels is None else int(channels)
        self.crf, self.preset = crf, preset
        self.n_frames = 0  # frames written so far
        self.n_samples = 0  # audio samples written so far
        self._stack: contextlib.ExitStack | None = None

    def __enter__(self) -> "VideoWriter":
        stack = contextlib.ExitStack()
        try:
            tmp = stack.enter_context(atomic_path(self.dest))
            out = stack.enter_context(av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}))
            h, w = self.frame_hw
            vstream = out.add_stream("libx264", rate=self.fps)
            vstream.width, vstream.height = w + w % 2, h + h % 2
            vstream.pix_fmt = "yuv420p"
            vstream.options = {"crf": str(self.crf), "preset": self.preset}
            astream = resampler = None
            if self.sample_rate is not None:
                layout = layout_name(self.channels)
                astream = out.add_stream("aac", rate=aac_rate(self.sample_rate))
                astream.layout, astream.format = layout, "fltp"
                resampler = av.AudioResampler(format="fltp", layout=layout, rate=astream.codec_context.sample_rate)
        except BaseException:
            stack.__exit__(*sys.exc_info())
            raise
        self._stack, self._out, self._vstream, self._astream, self._resampler = stack, out, vstream, astream, resampler
        return self

    def write(self, frames: np.ndarray | None = None, audio: np.ndarray | None = None) -> None:
        """Append ``frames`` (uint8 (t, H, W, 3)) and/or ``audio`` (float32 (n, C))."""
        if self._stack is None:
            raise MediaError(self.dest, "VideoWriter.write outside its `with` block")
        if frames is not None:
            frames = np.asarray(frames)
            if frames.ndim != 4 or frames.shape[1:] != (*self.frame_hw, 3) or frames.dtype != np.uint8:
                raise MediaError(self.dest, f"frames must be uint8 (t, {self.frame_hw[0]}, {self.frame_hw[1]}, 3), "
                                            f"got {frames.dtype} {frames.shape}")
            pad_h, pad_w = self.frame_hw[0] % 2, self.frame_hw[1] % 2
            if pad_h or pad_w:
                frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
            for image in frames:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                frame.pts = self.n_frames
                self._out.mux(self._vstream.encode(frame))
                self.n_frames += 1
        if audio is not None:
            if self._astream is None:
                raise MediaError(self.dest, "audio given to a VideoWriter opened without sample_rate/channels")
            audio = _as_audio(audio, self.dest)
            if audio.shape[1] != self.channels:
                raise MediaError(self.dest, f"audio must have {self.channels} channels, got {audio.shape[1]}")
            if len(audio):
                frame = audio_frame(audio, self._astream.layout.name)  # (n, C) -> C planes
                frame.sample_rate, frame.pts = self.sample_rate, self.n_samples
                frame.time_base = Fraction(1, self.sample_rate)
                for chunk in self._resampler.resample(frame):
                    self._out.mux(self._astream.encode(chunk))
                self.n_samples += len(audio)

    def __exit__(self, exc_type, exc, tb) -> bool:
        stack, self._stack = self._stack, None
        if exc_type is not None:  # unwinding removes the temporary file
            return bool(stack.__exit__(exc_type, exc, tb))
        with stack:  # closes the container, then renames into place (or cleans up on an error)
            if self.n_frames == 0:
                raise MediaError(self.dest, "no frames were written")
            self._out.mux(self._vstream.encode(None))
            if self._astream is not None:
                for chunk in self._resampler.resample(None):
                    self._out.mux(self._astream.encode(chunk))
                self._out.mux(self._astream.encode(None))
        return False
