"""A video with new sound: the original video stream copied packet for packet (no re-encoding,
no quality loss) and the given audio encoded as AAC, written atomically as mp4."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np

from avscene.files import atomic_path
from avscene.media.errors import MediaError
from avscene.media.probe import check_input_path, layout_name, open_input
from avscene.media.writer import _as_audio, _check_output, _encode_audio, aac_rate


def replace_audio(src: str | os.PathLike, dest: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> Path:
    """Write ``dest`` (mp4): the video stream of ``src`` as it is, with ``audio`` (float32
    (N, C) or (N,) in [-1, 1], clipped, at ``sample_rate`` Hz; sample 0 at the video's time 0)
    instead of ``src``'s sound. Rates AAC lacks are resampled to the next one up (21 kHz ->
    22.05 kHz). Raises :class:`MediaError` if ``src`` has no video or its codec cannot go into
    an mp4."""
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
                vout = out.add_stream_from_template(vin)
            except (ValueError, av.FFmpegError) as err:
                raise MediaError(src, f"its video codec cannot be copied into mp4 ({err})") from None
            aout = out.add_stream("aac", rate=aac_rate(int(sample_rate)))
            aout.layout, aout.format = layout_name(audio.shape[1]), "fltp"
            for packet in container.demux(vin):
                if packet.dts is None:
                    continue
                packet.stream = vout
                out.mux(packet)
            _encode_audio(out, aout, audio, int(sample_rate))
    return dest
