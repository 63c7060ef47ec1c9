"""The media layer: the only code in avscene that touches containers (PyAV / FFmpeg).

Everything else receives NumPy arrays with known rates: ``frames`` uint8 (T, H, W, 3) and
``audio`` float32 (N, C) in [-1, 1], aligned so that frame 0 and sample 0 are the same instant.
"""

from avscene.media.errors import ClipRangeError, MediaError, NoStreamError
from avscene.media.probe import SYNTHETIC_TAG, MediaInfo, check_input_path, open_input, probe
from avscene.media.reader import Clip, read_clip
from avscene.media.writer import write_video, write_wav

__all__ = [
    "SYNTHETIC_TAG", "Clip", "ClipRangeError", "MediaError", "MediaInfo", "NoStreamError", "check_input_path",
    "open_input", "probe", "read_clip", "write_video", "write_wav",
]
