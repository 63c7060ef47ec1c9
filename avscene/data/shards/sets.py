"""A set of shards as the training data of the shift task: which specs name shards
(:func:`is_shard_data`), opening and checking them against the model's sampling
(:func:`open_shards`, :class:`ShardSet`), and :class:`ShardShiftExamples`, the shard stream
behind the map-style face that :func:`avscene.train.loop.fit` drives."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from torch.utils.data import Dataset, get_worker_info

from avscene.constants import as_fps
from avscene.data.shards.format import PLAN_NAME, SHARD_FORMAT
from avscene.data.shards.stream import expand_shards, shift_example_shards
from avscene.data.shift_pairs import ShiftSampling


def is_shard_data(data: str | os.PathLike) -> bool:
    """Whether ``data`` names shards rather than a folder of videos: a URL (``scheme://...``,
    ``pipe:...``), a ``.tar`` path or pattern (``dir/shard-{000000..000099}.tar``), or a folder
    holding ``avscene prepare``'s ``plan.json`` or ``.tar`` files."""
    spec = os.fspath(data)
    if "://" in spec or spec.startswith("pipe:") or spec.endswith(".tar"):
        return True
    folder = Path(spec)
    return folder.is_dir() and ((folder / PLAN_NAME).is_file() or any(folder.glob("*.tar")))


@dataclasses.dataclass(frozen=True)
class ShardSet:
    """Shift examples stored in shards: ``spec`` as given, its shard ``urls``, and the segments
    they hold when known (local shards beside ``prepare``'s ``shard-NNNNNN.json`` summaries)."""

    spec: str
    urls: tuple[str, ...]
    samples: int | None = None
    skipped: tuple[tuple[str, str], ...] = ()  # as VideoIndex: preparation reported them already

    def __len__(self) -> int:
        return len(self.urls)

    def subset(self, urls) -> "ShardSet":
        urls = tuple(urls)
        return ShardSet(self.spec, urls, _count_samples(urls))


def _local(url: str) -> Path | None:
    """The local file a shard url names, or None for a remote or piped one."""
    if url.startswith("file:"):
        url = url[len("file:"):]
    return None if "://" in url or url.startswith("pipe:") else Path(url)


def _count_samples(urls) -> int | None:
    """Segments in the shards, from prepare's per-shard summaries; None if any is unknown."""
    total = 0
    for url in urls:
        path = _local(url)
        if path is None:
            return None
        try:
            total += int(json.loads(path.with_suffix(".json").read_text())["samples"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
    return total


def check_plan_fits(folder: Path, sampling: ShiftSampling) -> None:
    """Refuse shards that ``prepare`` stored at other settings than ``sampling`` needs, naming
    both, before any worker starts (remote shards are checked by the reader, segment by segment)."""
    path = folder / PLAN_NAME
    if not path.is_file():
        return
    try:
        plan = json.loads(path.read_text())
        params = plan["params"]
        stored = (as_fps(params["fps"]), int(params["sample_rate"]), int(params["channels"]), tuple(params["size"]))
        min_frames = int(params["min_segment_frames"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not an avscene shard plan ({err!r})") from None
    if plan.get("format") != SHARD_FORMAT:
        raise ValueError(f"{path}: shard format {plan.get('format')!r}, this version reads {SHARD_FORMAT!r}")
    s = sampling
    wanted = (s.fps, s.sample_rate, s.channels, (s.full_size, s.full_size))
    if stored != wanted:
        raise ValueError(f"{folder}: shards hold {stored[3][0]}x{stored[3][1]} px frames at "
                         f"{float(stored[0]):.3f} fps, {stored[1]} Hz x {stored[2]} ch; this model needs "
                         f"{s.full_size}x{s.full_size} px at {float(s.fps):.3f} fps, {s.sample_rate} Hz x "
                         f"{s.channels} ch: prepare them with `avscene prepare ... --preset` of the model you train")
    need = s.n_frames + s.shift_frames[0] + 1
    if min_frames < need:
        raise ValueError(f"{folder}: shards keep segments of {min_frames} frames, shorter than one clip + the "
                         f"smallest shift + 1 ({need} frames): prepare them with the same --preset and --shift-range")


def open_shards(data: str | os.PathLike, sampling: ShiftSampling) -> ShardSet:
    """The shards ``data`` names (see :func:`is_shard_data`), checked against ``sampling``."""
    from webdataset.gopen import gopen_schemes

    spec = os.fspath(data)
    if sampling.negatives != "shift":
        raise ValueError(f"{spec}: shards hold segments of one video each; negatives={sampling.negatives!r} "
                         "needs whole videos (train on the video folder)")
    urls = expand_shards(spec)  # MediaError for a missing local shard or an empty folder
    for url in urls:
        scheme = url.split("://", 1)[0] if "://" in url else None
        if scheme is not None and scheme != "file" and scheme not in gopen_schemes:
            raise ValueError(f"{url}: WebDataset cannot open {scheme}:// urls; stream them through a pipe, e.g. "
                             f"'pipe:aws s3 cp {url} -' (brace patterns work there too)")
    if os.path.isdir(spec):
        check_plan_fits(Path(spec), sampling)
    return ShardSet(spec, tuple(urls), _count_samples(urls))


class ShardShiftExamples(Dataset):
    """Shift examples streamed from shards, behind the map-style face that :func:`fit
    <avscene.train.loop.fit>`'s micro-batch sampler drives: ``dataset[i]`` is the next example of
    the stream this process and DataLoader worker read, whatever ``i`` is.

    The sampler deals micro-batches to the ranks and the DataLoader deals them round-robin to its
    workers, so each reader (rank x worker) draws from its own share of the shards
    (:class:`~avscene.data.shards.ShardSegments`, endless: epoch after epoch, reshuffled), no
    segment is read twice within an epoch, and the batches of a run are a function of ``(seed,
    processes, workers)``. The first example id a reader sees sets its starting epoch (``id //
    segments``, when the shard summaries give the number of segments): a resumed run goes on
    from the start of the epoch it stopped in, not from the exact example, unlike
    :class:`~avscene.data.shift_pairs.ShiftPairs`.
    """

    def __init__(self, shards: ShardSet, sampling: ShiftSampling, *, seed: int = 0, buffer: int = 64,
                 rank: int | None = None, world_size: int | None = None):
        # built in the training process: the rank and world size (default: the process group's,
        # else torchrun's) are resolved here, before DataLoader workers start
        self.stream = shift_example_shards(list(shards.urls), sampling, seed=seed, buffer=buffer, repeat=True,
                                           rank=rank, world_size=world_size)
        if len(shards) < self.stream.world_size:
            raise ValueError(f"{shards.spec}: {len(shards)} shards for {self.stream.world_size} processes: every "
                             "process needs its own; prepare more, smaller shards (--clips-per-shard)")
        self.shards = shards
        self._examples = None

    def __len__(self) -> int:
        return 2**62  # an endless stream, as ShiftPairs

    def __getitem__(self, example_id: int) -> dict:
        if self._examples is None:
            if self.shards.samples:
                self.stream.set_epoch(int(example_id) // self.shards.samples)
            self._examples = iter(self.stream)
        try:
            return next(self._examples)
        except StopIteration:
            info = get_worker_info()
            workers = info.num_workers if info is not None else 1
            raise ValueError(
                f"{self.shards.spec}: the shard stream of rank {self.stream.rank} ended: {len(self.shards)} shards "
                f"for {self.stream.world_size} processes x {workers} data workers, or no usable segment in its "
                "share; prepare more, smaller shards (--clips-per-shard) or use fewer --workers") from None
