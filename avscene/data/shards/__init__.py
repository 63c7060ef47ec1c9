"""Sharded datasets: a folder of videos becomes WebDataset tar shards of fixed-rate segments
(:func:`prepare_shards`), which :class:`ShardSegments` streams back for training.

::

    videos --prepare.prepare_shards--> shard-NNNNNN.tar (+ .json summary), plan.json, report.json
    shards --stream.ShardSegments--> format.Segment --stream.cut_shift_example--> shift example
    shards --sets.open_shards--> ShardSet --sets.ShardShiftExamples--> the shift task's examples

The modules: :mod:`~avscene.data.shards.format` (the layout's constants and :class:`Segment`),
:mod:`~avscene.data.shards.stream` (reading), :mod:`~avscene.data.shards.prepare` (writing) and
:mod:`~avscene.data.shards.sets` (a shard set as training data). The JPEG and FLAC codecs are
the media layer's (:mod:`avscene.media.codecs`).

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
(:mod:`avscene.media.codecs`; quantiser scale 3 by default). ``benchmarks/loader.py`` compared it with H.264, the best
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

from avscene.data.shards.format import (DEFAULT_CLIPS_PER_SHARD, MIN_SEGMENT_FRAMES, MIN_SEGMENT_S, PAPER_SAMPLING,
                                        SEGMENT_FRAMES, SEGMENT_S, SHARD_FORMAT, Segment, segment_from_sample)
from avscene.data.shards.prepare import prepare_main, prepare_shards
from avscene.data.shards.sets import ShardSet, ShardShiftExamples, check_plan_fits, is_shard_data, open_shards
from avscene.data.shards.stream import (ShardSegments, ShiftCutter, cut_shift_example, expand_shards,
                                        shift_example_shards)

__all__ = [
    "DEFAULT_CLIPS_PER_SHARD", "MIN_SEGMENT_FRAMES", "MIN_SEGMENT_S", "PAPER_SAMPLING", "SEGMENT_FRAMES", "SEGMENT_S",
    "SHARD_FORMAT", "Segment", "ShardSegments", "ShardSet", "ShardShiftExamples", "ShiftCutter", "check_plan_fits",
    "cut_shift_example", "expand_shards", "is_shard_data", "open_shards", "prepare_main", "prepare_shards",
    "segment_from_sample", "shift_example_shards",
]
