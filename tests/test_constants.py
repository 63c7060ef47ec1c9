from fractions import Fraction

import pytest

from avscene.constants import (PAPER_FPS, as_fps, frame_to_sample, sample_to_frame, samples_per_frame,
                               seconds_to_frames, seconds_to_samples)


def test_samples_per_frame_is_exact():
    assert samples_per_frame(PAPER_FPS, 21000) == Fraction(7007, 10)  # 700.7


@pytest.mark.parametrize("frame, sample", [(0, 0), (1, 701), (10, 7007), (125, 87588), (302, 211611)])
def test_frame_to_sample_rounds_exactly(frame, sample):
    assert frame_to_sample(frame, PAPER_FPS, 21000) == sample


@pytest.mark.parametrize("fps, rate", [(PAPER_FPS, 21000), (Fraction(25), 16000), (Fraction(729, 100), 44100),
                                       (Fraction(24000, 1001), 48000), (Fraction(1962, 100), 22050)])
def test_sample_to_frame_inverts_frame_to_sample(fps, rate):
    for frame in range(0, 500, 7):
        assert sample_to_frame(frame_to_sample(frame, fps, rate), fps, rate) == frame


def test_clip_sizes_of_the_paper():
    assert seconds_to_frames(4.2, PAPER_FPS) == 125
    assert seconds_to_frames(10.1, PAPER_FPS) == 302
    assert seconds_to_samples(10.1, 21000) == 212100


def test_as_fps_recognises_ntsc_and_odd_rates():
    assert as_fps(29.97) == Fraction(30000, 1001)
    assert as_fps(23.976) == Fraction(24000, 1001)
    assert as_fps(30.0) == 30
    assert as_fps(7.29) == Fraction(729, 100)
    assert as_fps(19.62) == Fraction(981, 50)
    assert as_fps("30000/1001") == PAPER_FPS
    with pytest.raises(ValueError):
        as_fps(0)
