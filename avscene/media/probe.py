"""Opening media files safely and describing them (:func:`probe`).

Everything that touches a container goes through :func:`open_input`, which turns every way a
path can be unusable into a :class:`MediaError` before FFmpeg sees it: FFmpeg blocks forever on a
named pipe with no writer, and reports a directory or an empty file with an opaque errno.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av

from avscene.media.errors import MediaError, NoStreamError
from avscene.media.isolate import decodes_in_worker, tick

#: Paths opened for reading in this process; the writers refuse to replace any of them.
_INPUTS_SEEN: set[tuple[int, int]] = set()


def _file_id(path: Path) -> tuple[int, int]:
    st = path.stat()
    return (st.st_dev, st.st_ino)


def is_known_input(path: str | os.PathLike) -> bool:
    """True when ``path`` is (the same file as) a media file this process has read."""
    try:
        return _file_id(Path(path)) in _INPUTS_SEEN
    except OSError:
        return False


def remember_input(path: str | os.PathLike) -> None:
    """Count ``path`` as an input of this process (one that a worker process reads for it), so
    that the writers refuse to replace it."""
    with contextlib.suppress(OSError):
        _INPUTS_SEEN.add(_file_id(Path(path)))


def check_input_path(path: str | os.PathLike) -> Path:
    """Return ``path`` as a Path if it names a non-empty regular file, else raise MediaError."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise MediaError(p, "no such file") from None
    except PermissionError:
        raise MediaError(p, "permission denied") from None
    except OSError as err:
        raise MediaError(p, f"cannot be read ({err.strerror or err})") from None
    if stat.S_ISDIR(st.st_mode):
        raise MediaError(p, "is a directory, not a media file")
    if not stat.S_ISREG(st.st_mode):
        raise MediaError(p, "is not a regular file (a pipe, socket or device); give a file")
    if st.st_size == 0:
        raise MediaError(p, "is empty (0 bytes)")
    if not os.access(p, os.R_OK):
        raise MediaError(p, "permission denied")
    return p


@contextlib.contextmanager
def open_input(path: str | os.PathLike) -> Iterator[av.container.InputContainer]:
    """Open a media file for reading; any failure is a :class:`MediaError` naming the file."""
    p = check_input_path(path)
    try:
        container = av.open(str(p), mode="r", metadata_errors="ignore")
    except av.FFmpegError as err:
        raise MediaError(p, f"not a readable media file or corrupt container ({_ffmpeg_reason(err)})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise MediaError(p, f"cannot be opened ({err})") from None
    _INPUTS_SEEN.add(_file_id(p))
    try:
        yield container
    finally:
        container.close()


def _ffmpeg_reason(err: Exception) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return text.strip().rstrip(".") or type(err).__name__


@dataclasses.dataclass(frozen=True)
class MediaInfo:
    """What a media file holds. Times in seconds; ``fps`` exact (e.g. 30000/1001).

    ``duration_s`` is checked against the packets at the end of the file, so a header that lies
    (a truncated file claiming 10 h) reports the duration that is really there.
    """

    path: str
    format_name: str
    duration_s: float
    has_video: bool
    has_audio: bool
    fps: Fraction | None = None
    width: int | None = None
    height: int | None = None
    n_frames: int | None = None
    video_codec: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    audio_codec: str | None = None
    #: Written by ``avscene synth`` (its container comment starts with :data:`SYNTHETIC_TAG`).
    synthetic: bool = False

    def to_dict(self) -> dict:
        """JSON-ready fields; ``fps`` as ``"num/den"`` plus ``fps_float``."""
        out = dataclasses.asdict(self)
        out["fps"] = None if self.fps is None else f"{self.fps.numerator}/{self.fps.denominator}"
        out["fps_float"] = None if self.fps is None else round(float(self.fps), 6)
        return out


#: The container comment ``avscene synth`` gives its videos, so that a synthetic scene is told
#: from a real video wherever it goes (the honest-output warnings rely on it).
SYNTHETIC_TAG = "avscene synthetic world"


def is_synthetic(container: av.container.InputContainer) -> bool:
    return str(container.metadata.get("comment", "")).startswith(SYNTHETIC_TAG)


def stream_fps(stream: av.video.stream.VideoStream) -> Fraction | None:
    """Frame rate of a video stream: the average rate (correct for variable frame rate),
    falling back to the guessed or base rate."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate.numerator, rate.denominator)
    return None


def _header_duration(container: av.container.InputContainer) -> float:
    # Stream durations are exact; the container's is truncated to microseconds.
    best = 0.0
    for s in container.streams:
        if s.duration and s.time_base:
            best = max(best, float((s.start_time or 0) * s.time_base + s.duration * s.time_base))
    if not best and container.duration:
        best = container.duration / av.time_base
    return best


def _scan_end_time(container: av.container.InputContainer, from_s: float) -> float:
    """End time (s) of the last packet at or after ``from_s`` (demux only, no decoding)."""
    streams = [s for s in container.streams if s.type in ("video", "audio")]
    if from_s > 0:
        try:
            container.seek(int(from_s * av.time_base), backward=True, any_frame=False)
        except av.FFmpegError:
            container.seek(0)
    end = 0.0
    try:
        for packet in container.demux(*streams):
            tick()
            if packet.pts is None or packet.time_base is None:
                continue
            t = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            end = max(end, t)
    except av.FFmpegError:
        pass  # a truncated tail ends the scan: what was read is what is there
    return end


def measured_duration(container: av.container.InputContainer) -> float:
    """Duration (s) the file really holds: the header's, if packets exist near its end,
    otherwise a packet scan from the start."""
    claimed = _header_duration(container)
    if claimed > 0:
        near_end = _scan_end_time(container, max(0.0, claimed - 2.0))
        if near_end >= claimed - 2.5:
            return min(claimed, near_end) if near_end > 0 else claimed
    return _scan_end_time(container, 0.0)


def _usable(stream) -> bool:
    """A stream FFmpeg has a decoder for (a damaged header can name no codec), and, for audio,
    one whose header does not claim 0 channels."""
    context = stream.codec_context
    return context is not None and (stream.type != "audio" or bool(context.channels))


def _unusable(container: av.container.InputContainer, kind: str) -> str:
    """Why ``container`` has no usable ``kind`` ("video" or "audio") stream, in words."""
    streams = getattr(container.streams, kind)
    if not streams:
        return f"no {kind} stream"
    if any(s.codec_context is None for s in streams):
        return f"no decoder for its {kind} stream's codec"
    return f"its {kind} stream claims 0 channels"


def usable_streams(container: av.container.InputContainer, path, *, need_video: bool = False,
                   need_audio: bool = False) -> tuple[av.VideoStream | None, av.AudioStream | None]:
    """The first usable (see :func:`_usable`) video and audio streams of ``container``, each None
    when there is none; :class:`NoStreamError` naming ``path`` and why for one that is needed."""
    found = []
    for kind, needed in (("video", need_video), ("audio", need_audio)):
        stream = next((s for s in getattr(container.streams, kind) if _usable(s)), None)
        if needed and stream is None:
            reason = _unusable(container, kind)
            raise NoStreamError(path, f"has no {kind} stream" if reason == f"no {kind} stream" else
                                f"has no usable {kind} stream ({reason})")
        found.append(stream)
    return found[0], found[1]


@decodes_in_worker(remember_input)
def probe(path: str | os.PathLike, *, need_video: bool = False, need_audio: bool = False) -> MediaInfo:
    """Describe the media file at ``path``; raises :class:`MediaError` if it is unusable, and
    :class:`NoStreamError` if it lacks a video (``need_video``) or audio (``need_audio``) stream."""
    with open_input(path) as container:
        video, audio = usable_streams(container, path, need_video=need_video, need_audio=need_audio)
        if video is None and audio is None:
            raise MediaError(path, "has no usable video or audio stream ("
                             + "; ".join(_unusable(container, kind) for kind in ("video", "audio")) + ")")
        duration = measured_duration(container)
        fields: dict = {}
        if video is not None:
            fps = stream_fps(video)
            n_frames = video.frames or None
            if fps is not None and (n_frames is None or n_frames > duration * fps + 2):
                n_frames = int(round(duration * fps))
            fields.update(
                fps=fps,
                width=video.codec_context.width,
                height=video.codec_context.height,
                n_frames=n_frames,
                video_codec=video.codec_context.name,
            )
        if audio is not None:
            fields.update(
                sample_rate=audio.codec_context.sample_rate or None,
                channels=audio.codec_context.channels or None,
                audio_codec=audio.codec_context.name,
            )
        return MediaInfo(
            path=os.fspath(path),
            format_name=container.format.name,
            duration_s=round(duration, 6),
            has_video=video is not None,
            has_audio=audio is not None,
            synthetic=is_synthetic(container),
            **fields,
        )


#: FFmpeg's default channel layout for each channel count (PyAV wants names, not counts).
_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def layout_name(channels: int) -> str:
    """FFmpeg channel layout name for ``channels`` (1 -> "mono", 2 -> "stereo", 6 -> "5.1")."""
    return _LAYOUTS[int(channels)]
