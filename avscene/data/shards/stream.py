"""Reading shards back: :class:`ShardSegments` streams the stored segments to the readers of a
training run (processes x DataLoader workers), and :func:`shift_example_shards` cuts one shift
example from each (:func:`cut_shift_example`, the draws of
:class:`~avscene.data.shift_pairs.ShiftPairs`)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist
import webdataset as wds
from torch.utils.data import IterableDataset, get_worker_info

from avscene.constants import frame_to_sample
from avscene.data.shards.format import Segment, segment_from_sample
from avscene.data.shift_pairs import ShiftSampling, draw_augmentation, draw_shift
from avscene.media import MediaError


# --------------------------------------------------------------------------------------------
# Shift examples from a segment
# --------------------------------------------------------------------------------------------

def cut_shift_example(segment: Segment, sampling: ShiftSampling, rng: np.random.Generator) -> dict:
    """One shift example from one segment, as :class:`~avscene.data.shift_pairs.ShiftPairs`
    makes from a whole video (the same draws of window, shift, crop and flip):

    * ``frames``: uint8 (T, crop, crop, 3)
    * ``audio_aligned``, ``audio_shifted``: float32 (C, N), N = ``sampling.n_samples``
    * ``shift_frames``: int, the negative's shift; ``key``: the segment's key

    Only the clip's own frames are decoded, and they are cropped and mirrored while decoding.
    The segment must have been stored at the sampling's rate, sample rate, channels and
    ``full_size``, and hold at least one clip plus the smallest shift plus one spare frame.
    """
    s = sampling
    if s.negatives != "shift":
        raise ValueError(f"shard examples take their negative from the same segment; negatives={s.negatives!r} "
                         "needs a second video (use ShiftPairs on the videos)")
    stored = (segment.fps, segment.sample_rate, segment.channels, (segment.height, segment.width))
    wanted = (s.fps, s.sample_rate, s.channels, (s.full_size, s.full_size))
    if stored != wanted:
        raise ValueError(f"{segment.where}: stored at {float(segment.fps):.3f} fps, {segment.sample_rate} Hz, "
                         f"{segment.channels} ch, {segment.height}x{segment.width} px; the sampling wants "
                         f"{float(s.fps):.3f} fps, {s.sample_rate} Hz, {s.channels} ch, {s.full_size}x{s.full_size} px "
                         "(prepare shards with those settings)")
    n, n_samples = s.n_frames, s.n_samples
    try:
        f1, shift = draw_shift(s, segment.n_frames - 1, rng)  # one spare frame covers sample rounding
    except ValueError as err:
        raise ValueError(f"{segment.where}: {err}") from None
    aug = draw_augmentation(s, (segment.height, segment.width), segment.channels, rng)
    frames = segment.read_frames(f1, f1 + n, box=(aug.top, aug.left, aug.size, aug.size), mirror=aug.flip)
    audio = segment.audio  # (N_segment, C)
    a0, b0 = frame_to_sample(f1, s.fps, s.sample_rate), frame_to_sample(f1 + shift, s.fps, s.sample_rate)
    aligned, shifted = audio[a0 : a0 + n_samples].T, audio[b0 : b0 + n_samples].T  # (C, N) each
    if aug.swap_stereo:
        aligned, shifted = aligned[::-1], shifted[::-1]
    return {
        "frames": torch.from_numpy(frames),  # (T, crop, crop, 3)
        "audio_aligned": torch.from_numpy(np.ascontiguousarray(aligned)),  # (C, N)
        "audio_shifted": torch.from_numpy(np.ascontiguousarray(shifted)),  # (C, N)
        "shift_frames": shift,
        "key": segment.key,
    }


@dataclasses.dataclass(frozen=True)
class ShiftCutter:
    """A :class:`ShardSegments` transform: one shift example per segment (see
    :func:`cut_shift_example`). A picklable callable, so DataLoader workers can run it."""

    sampling: ShiftSampling

    def __call__(self, segment: Segment, rng: np.random.Generator) -> dict:
        return cut_shift_example(segment, self.sampling, rng)



# --------------------------------------------------------------------------------------------
# The streaming dataset
# --------------------------------------------------------------------------------------------

def expand_shards(shards: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Shard URLs from a folder (its ``*.tar``, sorted), a local path, a WebDataset spec
    (``"dir/shard-{000000..000099}.tar"``, ``"a.tar::b.tar"``, ``"pipe:CMD"``, ``"https://..."``)
    or a list of these. Local paths must exist."""
    items = [shards] if isinstance(shards, (str, os.PathLike)) else list(shards)
    urls: list[str] = []
    for item in items:
        spec = os.fspath(item)
        if os.path.isdir(spec):
            found = sorted(str(p) for p in Path(spec).glob("*.tar") if not p.name.startswith("."))
            if not found:
                raise MediaError(spec, "folder holds no .tar shards")
            urls += found
            continue
        for url in wds.shardlists.expand_urls(spec):
            local = url[len("file:"):] if url.startswith("file:") else url
            if "://" not in url and not url.startswith("pipe:") and not os.path.isfile(local):
                raise MediaError(url, "no such shard")
            urls.append(url)
    if not urls:
        raise ValueError("no shards given")
    return urls


def _rank_and_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """This process's place among the training processes: given, else the started process
    group's, else torchrun's environment, else a world of one."""
    if rank is not None or world_size is not None:
        if rank is None or world_size is None or not 0 <= rank < world_size:
            raise ValueError(f"give both rank and world_size with 0 <= rank < world_size, got {rank}, {world_size}")
        return rank, world_size
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _describe(err: Exception) -> tuple[str | None, str]:
    """(shard url, reason) of an error raised inside WebDataset's tar reading, which appends
    the stream and the url to the exception's args."""
    args = getattr(err, "args", ())
    url = args[-1] if len(args) > 1 and isinstance(args[-1], str) else None
    if isinstance(err, MediaError):  # raised by an inner stage, maybe before the url was known
        return err.path or url, err.reason
    text = str(args[0]) if args else str(err)
    return url, f"unreadable shard data ({type(err).__name__}: {text.split(' @ <')[0]})"


def _raise_media_error(err: Exception) -> bool:
    # a fresh error each time: WebDataset's outer stages append to the args of what they catch
    raise MediaError(*_describe(err)) from (err.__cause__ if isinstance(err, MediaError) else err)


def _warn_and_continue(err: Exception) -> bool:
    url, reason = _describe(err)
    warnings.warn(f"skipping unreadable shard data: {url}: {reason}", stacklevel=2)
    return True


def _example_rng(seed: int, epoch: int, key: str) -> np.random.Generator:
    """A generator that depends only on (seed, epoch, key): a segment gets the same example
    whichever rank or worker reads it."""
    key_id = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    return np.random.default_rng([seed, epoch, key_id])


class ShardSegments(IterableDataset):
    """Streams the segments of WebDataset shards (see :mod:`avscene.data.shards` for their layout).

    Each epoch, the shards are permuted by ``(seed, epoch)`` and dealt out round-robin to the
    ``world_size x num_workers`` readers (training processes x DataLoader workers), so every
    shard is read by exactly one reader and every segment is seen once per epoch; within a
    reader, segments pass through a shuffle buffer of ``buffer`` encoded segments (a few MB
    each) seeded by ``(seed, epoch, rank, worker)``. For a given world size and worker count the
    stream is a pure function of ``(seed, epoch)``.

    Yields :class:`Segment` (decoded in the worker unless ``lazy``), or ``transform(segment,
    rng)`` when a transform is given (then segments stay lazy and the transform decodes what it
    needs), with ``rng`` a NumPy generator seeded by ``(seed, epoch, key)``.

    Args:
        shards: a folder, shard paths or URLs, or a WebDataset spec (see :func:`expand_shards`).
        seed, epoch: the shuffle's seed and the epoch to start at (:meth:`set_epoch` changes it;
            a DataLoader with ``persistent_workers`` would not see the change).
        shuffle: permute shards and shuffle segments (False: shard order, no buffer).
        buffer: segments in the shuffle buffer.
        lazy: yield segments undecoded: frames and audio decode on first use, in whichever
            process touches them (with a transform, segments are always lazy).
        repeat: go on to the next epoch (reshuffled) instead of stopping: an endless stream,
            which keeps ranks in step when their shares of shards hold different numbers of
            segments.
        rank, world_size: this process's place; default: the process group's, else torchrun's
            ``RANK``/``WORLD_SIZE``, else 0 of 1. Resolved when the dataset is built.
        errors: ``"raise"`` (unreadable shard data raises) or ``"skip"`` (warn and go on).
    """

    def __init__(self, shards, *, seed: int = 0, epoch: int = 0, shuffle: bool = True, buffer: int = 64,
                 lazy: bool = False, transform: Callable[[Segment, np.random.Generator], Any] | None = None,
                 repeat: bool = False, rank: int | None = None, world_size: int | None = None,
                 errors: str = "raise"):
        super().__init__()
        if errors not in ("raise", "skip"):
            raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
        if buffer < 0 or seed < 0 or epoch < 0:
            raise ValueError("buffer, seed and epoch must be >= 0")
        self.urls = expand_shards(shards)
        self.seed, self.epoch, self.shuffle, self.buffer = int(seed), int(epoch), shuffle, int(buffer)
        self.lazy, self.transform, self.repeat, self.errors = lazy, transform, repeat, errors
        self.rank, self.world_size = _rank_and_world(rank, world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def shards_for(self, epoch: int, worker: int = 0, num_workers: int = 1) -> list[str]:
        """The shards that reader (this rank, ``worker`` of ``num_workers``) reads in ``epoch``."""
        order = np.arange(len(self.urls))
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.urls))
        slot, slots = self.rank * num_workers + worker, self.world_size * num_workers
        return [self.urls[i] for i in order[slot::slots]]

    def _segment(self, sample: dict) -> Segment:
        segment = segment_from_sample(sample)
        return segment if self.lazy or self.transform is not None else segment.decode()

    def _epoch(self, epoch: int, worker: int, num_workers: int) -> Iterator:
        handler = _raise_media_error if self.errors == "raise" else _warn_and_continue
        urls = self.shards_for(epoch, worker, num_workers)
        samples = wds.tarfile_to_samples(handler=handler)(iter([{"url": u} for u in urls]))
        if self.shuffle and self.buffer > 1:
            rng = random.Random(f"{self.seed}/{epoch}/{self.rank}/{worker}")
            samples = wds.shuffle(self.buffer, initial=self.buffer, rng=rng)(samples)
        for sample in samples:
            try:
                segment = self._segment(sample)
                item = segment if self.transform is None else self.transform(
                    segment, _example_rng(self.seed, epoch, segment.key))
            except (MediaError, ValueError) as err:  # a bad sample, or one the transform cannot use
                if self.errors == "raise":
                    raise
                _warn_and_continue(err)
                continue
            yield item

    def __iter__(self) -> Iterator:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        readers = self.world_size * num_workers
        if len(self.urls) < readers:
            warnings.warn(f"{len(self.urls)} shards for {readers} readers ({self.world_size} ranks x {num_workers} "
                          "workers): some readers get none; make more, smaller shards", stacklevel=2)
        epoch = self.epoch
        while True:
            if not self.shards_for(epoch, worker, num_workers):
                return
            n = 0
            for item in self._epoch(epoch, worker, num_workers):
                n += 1
                yield item
            if not self.repeat or n == 0:
                return
            epoch += 1


def shift_example_shards(shards, sampling: ShiftSampling, **kwargs) -> ShardSegments:
    """Shift examples (see :func:`cut_shift_example`) streamed from shards: one per segment and
    epoch, each a function of ``(seed, epoch, segment key)``. ``kwargs`` go to
    :class:`ShardSegments`."""
    return ShardSegments(shards, transform=ShiftCutter(sampling), **kwargs)
