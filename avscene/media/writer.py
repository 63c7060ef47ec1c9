"""Writing results: H.264 + AAC mp4 (:func:`write_video`) and WAV (:func:`write_wav`).

Both write atomically (see :mod:`avscene.files`) and refuse to replace a file this process has
read as an input. AAC has no 21 kHz mode, so audio at a rate AAC lacks is resampled to the next
rate it has (21000 -> 22050 Hz); readers resample back, and timing is kept exactly.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf

from avscene.constants import as_fps
from avscene.files import atomic_path
from avscene.media.errors import MediaError
from avscene.media.probe import check_input_path, is_known_input, layout_name, open_input
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
) -> Path:
    """Write ``frames`` (uint8 (T, H, W, 3) RGB) at ``fps`` and optional ``audio`` (float32
    (N, C) in [-1, 1] at ``sample_rate`` Hz) as an H.264/AAC mp4 that browsers and players open.

    Frame ``i`` is shown at ``i / fps`` and audio sample 0 at time 0. Odd frame sizes are padded
    by one edge row/column (H.264 4:2:0 needs even sizes).
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


def _encode_audio(out, astream, audio: np.ndarray, sample_rate: int) -> None:
    layout = astream.layout.name
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio.T), format="fltp", layout=layout)  # (C, N)
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


def write_shifted_audio(src: str | os.PathLike, dest: str | os.PathLike, advance_s: float) -> Path:
    """Copy ``src`` to an mp4 at ``dest`` with its audio moved ``advance_s`` seconds earlier
    (negative: later), keeping the video stream as it is (no re-encoding) and the duration: audio
    advanced past the start is dropped, the gap left at the start or end is silence.

    This is the fix for an offset found by ``avscene sync``: advance the audio by the offset.
    """
    src = check_input_path(src)
    dest = _check_output(dest)
    if dest.exists() and dest.samefile(src):
        raise MediaError(dest, "refusing to overwrite the input")
    clip = read_clip(src, video=False)  # whole track at its own rate and channels
    rate, audio = clip.sample_rate, clip.audio  # (N, C)
    shift = round(advance_s * rate)
    shifted = np.zeros_like(audio)
    if shift >= 0:
        shifted[: len(audio) - shift] = audio[shift:]
    else:
        shifted[-shift:] = audio[: len(audio) + shift]
    with open_input(src) as container, atomic_path(dest) as tmp:
        vin = container.streams.video[0] if container.streams.video else None
        if vin is None:
            raise MediaError(src, "has no video stream")
        with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
            try:
                vout = out.add_stream_from_template(vin)
            except (ValueError, av.FFmpegError) as err:
                raise MediaError(src, f"its video codec cannot be copied into mp4 ({err})") from None
            layout = layout_name(min(shifted.shape[1], 8))
            aout = out.add_stream("aac", rate=aac_rate(rate))
            aout.layout, aout.format = layout, "fltp"
            for packet in container.demux(vin):
                if packet.dts is None:
                    continue
                packet.stream = vout
                out.mux(packet)
            _encode_audio(out, aout, np.clip(shifted, -1, 1), rate)
    return dest
