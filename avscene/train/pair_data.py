"""The data side shared by the tasks that learn from clips of videos with an aligned and a
negative sound (shift pretraining, two-tower correspondence): where the training and held-out
examples come from, the fixed held-out batches, and what a model card says of the data."""

from __future__ import annotations

import itertools
from pathlib import Path

from torch.utils.data import default_collate

from avscene.cards import shards_data
from avscene.data.shards import ShardSet, is_shard_data, open_shards, shift_example_shards
from avscene.data.splits import split_index, split_shards
from avscene.data.videos import VideoIndex, index_videos


def load_train_val(data: str | Path, val_data: str | Path | None, sampling, *, progress: bool = False):
    """``(index, train_index, val_index)``: ``data`` indexed (a folder of videos, unusable files
    skipped and reported on the index) or opened as shards, and its training and held-out parts:
    ``val_data`` when given, else about 10 % of the videos (or shards) of ``data``."""

    def load(source) -> VideoIndex | ShardSet:
        if is_shard_data(source):
            return open_shards(source, sampling)
        return index_videos(source, min_duration_s=sampling.min_video_s, progress=progress)

    index = load(data)
    if val_data is not None:
        return index, index, load(val_data)
    return (index, *(split_shards if isinstance(index, ShardSet) else split_index)(index))


def held_out_batches(index: VideoIndex | ShardSet, sampling, pairs_class, *, n: int, seed: int,
                     batch_size: int) -> list[dict]:
    """The fixed held-out examples of ``index`` (``sampling`` without augmentation), batched:
    the first ``n`` segments in shard order, or the first ``n`` of ``pairs_class(index, sampling,
    seed=seed)`` for videos."""
    if isinstance(index, ShardSet):
        stream = shift_example_shards(list(index.urls), sampling, seed=seed, shuffle=False, rank=0, world_size=1)
        examples = list(itertools.islice(stream, n))
    else:
        pairs = pairs_class(index, sampling, seed=seed)
        examples = [pairs[i] for i in range(n)]
    return [default_collate(examples[i : i + batch_size]) for i in range(0, len(examples), batch_size)]


def index_training_data(index: VideoIndex | ShardSet) -> dict:
    """What a network trained on ``index`` learnt from, for its model card."""
    if isinstance(index, ShardSet):
        return shards_data(index.spec, len(index))
    return index.training_data()
