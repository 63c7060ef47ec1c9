"""Training / held-out splits of every kind of data source, all by one stable hash of a name.

A file is held out when :func:`hash_fraction` of its name (a number in [0, 1) that depends only
on the name) is below the held-out fraction, so a split does not change when files are added or
removed, and every process of a run computes the same split.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Sequence

from avscene.data.labelled import LabelledIndex, LabelledVideo
from avscene.data.shards.sets import ShardSet
from avscene.data.videos import VideoIndex


def hash_fraction(name: str) -> float:
    """A number in [0, 1) fixed by ``name``: the first 32 bits of its SHA-1, over 2**32."""
    return int.from_bytes(hashlib.sha1(name.encode()).digest()[:4], "big") / 2**32


def is_held_out(name: str, val_fraction: float) -> bool:
    """Whether ``name`` falls in the held-out ~``val_fraction`` of all names."""
    return hash_fraction(name) < val_fraction


def split_index(index: VideoIndex, val_fraction: float = 0.1) -> tuple[VideoIndex, VideoIndex]:
    """Hold out ~``val_fraction`` of the videos, chosen by a stable hash of the file name (so the
    split does not change when files are added). With fewer than 2 videos both sides share them."""
    if len(index) < 2:
        return index, index
    val = tuple(v for v in index.videos if is_held_out(Path(v.path).name, val_fraction)) or index.videos[-1:]
    train = tuple(v for v in index.videos if v not in val)
    return VideoIndex(train, index.skipped), VideoIndex(val, ())


def split_shards(shards: ShardSet, val_fraction: float = 0.1) -> tuple[ShardSet, ShardSet]:
    """Hold out ~``val_fraction`` of the shards (at least one), by a stable hash of the shard's
    file name; with fewer than 2 shards both sides share them. ``prepare`` mixes every video's
    segments across shards, so held-out shards hold other windows of the training videos: for a
    held-out set of other videos, prepare one from them and pass it as ``val_data``."""
    if len(shards) < 2:
        return shards, shards
    val = [u for u in shards.urls if is_held_out(u.rsplit("/", 1)[-1], val_fraction)] or [shards.urls[-1]]
    return shards.subset(u for u in shards.urls if u not in val), shards.subset(val)


def split_labelled(index: LabelledIndex, val_fraction: float = 0.1) -> tuple[LabelledIndex, LabelledIndex]:
    """Hold out ~``val_fraction`` of each class's videos, chosen by a stable hash of the file path
    (unchanged when files are added); every class with 2+ videos keeps one on each side."""
    def score(v: LabelledVideo) -> float:
        return hash_fraction(v.path)

    held: set[str] = set()
    for label in range(index.n_classes):
        members = sorted((v for v in index.videos if v.label == label), key=score)
        if len(members) < 2:
            continue
        n_held = min(len(members) - 1, max(1, sum(score(v) < val_fraction for v in members)))
        held.update(v.path for v in members[:n_held])
    train = tuple(v for v in index.videos if v.path not in held)
    val = tuple(v for v in index.videos if v.path in held) or index.videos
    return (dataclasses.replace(index, videos=train),
            dataclasses.replace(index, videos=val, skipped=()))


def split_scenes(stems: Sequence[str], val_fraction: float = 0.1) -> tuple[list[int], list[int]]:
    """Indices of training and held-out scenes of a synthetic set: ~``val_fraction`` held out by
    the hash of their stem (at least one; with a single scene both sides share it)."""
    val = [i for i, stem in enumerate(stems) if is_held_out(stem, val_fraction)] or [len(stems) - 1]
    train = [i for i in range(len(stems)) if i not in val] or val
    return train, val
