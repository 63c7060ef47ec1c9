"""Signal constants of the paper, with units, and the one frame <-> sample conversion.

The rates do not divide: at 21000 Hz and 30000/1001 fps a frame lasts 700.7 samples. Frame
rates are therefore kept as exact ``Fraction``s and every conversion between a frame index and
a sample index goes through :func:`frame_to_sample` / :func:`sample_to_frame`, which round
explicitly (half away from zero) instead of truncating with ``int()`` — the release truncated in
one place and rounded in another, giving 87587 vs 87588 samples for the same clip.
"""

from __future__ import annotations

import math
from fractions import Fraction
from numbers import Rational

#: NTSC frame rate of the paper's videos (29.97 fps), exact.
PAPER_FPS = Fraction(30000, 1001)
#: Audio sample rate of the paper (Hz).
PAPER_SAMPLE_RATE = 21000
#: Length of one shift-network clip (s): 125 frames at 29.97 fps.
PAPER_CLIP_SECONDS = 4.2
#: Side of the stored frames (px) and of the random crop fed to the network (px).
PAPER_FULL_SIZE = 256
PAPER_CROP_SIZE = 224
#: Input preparation that a network's weights expect (``ShiftNetConfig.profile``): the ``fit`` of
#: frames for sync and separation, and the ``cam_fit`` for localization. 'release' is the
#: release's: 256 x 256 squash then a 224 centre crop (``sep_video``, the test-time crop of
#: training), and the whole frame squashed to 224 x 224 for CAMs (``predict_cam_resize``).
PROFILES = {
    "avscene": {"fit": "crop", "cam_fit": "crop"},
    "release": {"fit": "squash-crop", "cam_fit": "squash"},
}


def profile_fit(profile: str, fit: str | None = None, *, cam: bool = False) -> str:
    """``fit`` when given, else the one ``profile``'s weights expect (``cam``: for localization)."""
    return fit or PROFILES[profile]["cam_fit" if cam else "fit"]


#: Range of audio shifts for negatives (s), as the paper states it.
PAPER_SHIFT_RANGE_S = (2.0, 5.8)


def as_fps(fps: float | Fraction | int | str) -> Fraction:
    """Return ``fps`` as an exact Fraction.

    Floats that are NTSC-like (29.97, 23.976, 59.94) map to their exact x/1001 rate; other floats
    are approximated with a denominator of at most 1001·1000 (enough for 7.29 or 19.62 fps).
    Strings like ``"30000/1001"`` are accepted.
    """
    if isinstance(fps, Fraction):
        value = fps
    elif isinstance(fps, Rational):
        value = Fraction(int(fps.numerator), int(fps.denominator))
    elif isinstance(fps, str):
        value = Fraction(fps)
    else:
        fps = float(fps)
        ntsc = Fraction(round(fps * 1001 / 1000) * 1000, 1001)
        if ntsc > 0 and abs(float(ntsc) - fps) < 5e-4 and round(fps) != fps:
            value = ntsc
        else:
            value = Fraction(fps).limit_denominator(1001000)
    if value <= 0:
        raise ValueError(f"frame rate must be positive, got {fps}")
    return value


def _round_half_away(x: Fraction) -> int:
    floor = x.numerator // x.denominator
    rest = x - floor
    return floor + 1 if rest >= Fraction(1, 2) else floor


def samples_per_frame(fps: float | Fraction, sample_rate: int) -> Fraction:
    """Exact number of audio samples per video frame (700.7 at 21000 Hz, 29.97 fps)."""
    return Fraction(int(sample_rate)) / as_fps(fps)


def frame_to_sample(frame: int, fps: float | Fraction, sample_rate: int) -> int:
    """Index of the audio sample at the same instant as the start of video frame ``frame``.

    ``round(frame * sample_rate / fps)`` computed exactly, rounding half away from zero.
    """
    return _round_half_away(Fraction(int(frame)) * samples_per_frame(fps, sample_rate))


def sample_to_frame(sample: int, fps: float | Fraction, sample_rate: int) -> int:
    """Index of the video frame nearest in time to audio sample ``sample`` (inverse of
    :func:`frame_to_sample` for samples that start a frame)."""
    return _round_half_away(Fraction(int(sample)) / samples_per_frame(fps, sample_rate))


def frames_in(duration_s: float | Fraction, fps: float | Fraction) -> int:
    """Whole frames of a ``duration_s`` long stream at ``fps``: ``floor(duration * fps + 1/1000)``.
    The 1/1000 of a frame absorbs durations stored rounded (a 2.0 s stream at 29.97 fps measured
    as 1.99999 s still holds its 59 frames) without counting a frame that is not there."""
    return math.floor(duration_s * as_fps(fps) + Fraction(1, 1000))


def seconds_to_frames(seconds: float, fps: float | Fraction) -> int:
    """Number of whole frames that fit in ``seconds`` (``int(4.2 * 29.97) = 125`` as the paper)."""
    return int(Fraction(seconds).limit_denominator(10**6) * as_fps(fps))


def seconds_to_samples(seconds: float, sample_rate: int) -> int:
    """Number of samples in ``seconds``, rounded (0.1 s at 21 kHz = 2100)."""
    return _round_half_away(Fraction(seconds).limit_denominator(10**6) * int(sample_rate))
