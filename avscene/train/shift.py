"""Self-supervised sync pretraining: the shift task for :func:`avscene.train.loop.fit`.

Each clip contributes one positive (aligned audio) and one negative (shifted audio). As in the
release, a random label per clip decides which of the two goes through the first pass; the
visual stem runs once, the fused trunk twice, batch-norm statistics are per pass, and the loss
is the sigmoid cross-entropy over all 2B logits (label 1 = aligned).

Training data is a folder of videos (examples cut by :class:`ShiftPairs`, each a function of
its id) or, at scale, WebDataset shards written by ``avscene prepare``
(:mod:`avscene.data.shards`): a shard folder, a ``.tar`` path or brace pattern, or a URL
(``https://``, ``pipe:``, ``gs://``...). From shards, each process and DataLoader worker reads
its own share of the shards (:class:`~avscene.data.shards.ShardSegments`: one example per
segment and epoch, reshuffled every epoch, a function of ``(seed, epoch)`` for a given number of
processes and workers); see :class:`ShardShiftExamples` for how that meets the training loop.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, default_collate, get_worker_info

from avscene.checkpoints import shift_weights_for
from avscene.constants import as_fps
from avscene.data.shards import SHARD_FORMAT, expand_shards, shift_example_shards
from avscene.data.shift_pairs import ShiftPairs, ShiftSampling, frames_to_video
from avscene.data.videos import VideoIndex, index_videos
from avscene.models import ShiftNet, ShiftNetConfig
from avscene.synth import SceneConfig, ensure_dataset

#: Synthetic worlds for sync pretraining (``avscene train shift --data synthetic``).
#: ``pulses`` is the CPU-scale default: objects that grow and brighten with each tone or hiss
#: burst, made salient (``SceneConfig.salience``), 1-2 objects with silent ones among them,
#: off-screen sources, background clutter. Measured on this project's 2-core CPU, the ``small``
#: preset learns it in a few hundred steps, while on the ``full`` world (five motion kinds at
#: default salience) it stayed at chance for 600 steps: its cues (a bounce's contact, a
#: mouth's opening, a roll's push) take a few pixels at 64 x 64 and need far more training.
#: ``pulses-crowd`` is ``pulses`` with 1-3 look-alike objects of which exactly one sounds: to
#: tell sync apart the net must find *which* object's pulses meet the bursts, the skill its
#: class activation maps show (``benchmarks/localize.py`` fine-tunes on it). ``pulses-lookalikes``
#: always has 2-3 of them, as the localization scenes do: no clip can be told apart without
#: telling the objects apart.
#: ``motions`` has all five motion kinds at the larger size of ``salience`` 1, 1-2 objects: the
#: cues the action classes of ``benchmarks/action.py`` are made of. Slow at CPU scale: the
#: ``small`` net fine-tuned on it from ``pulses`` stays on the pulses it knew for about 1500 steps
#: (0.57 held-out sync accuracy after 1000) and reaches 0.82, every kind learnt, after 4000
#: (``benchmarks/results/shift_small_motions*.json``).
SYNTHETIC_SYNC_WORLDS = {
    "pulses": dict(motions=("pulse",), salience=1.0, n_objects=(1, 2)),
    "pulses-crowd": dict(motions=("pulse",), salience=1.0, n_objects=(1, 3), n_sounding=1),
    "pulses-lookalikes": dict(motions=("pulse",), salience=1.0, n_objects=(2, 3), n_sounding=1),
    "motions": dict(salience=1.0, n_objects=(1, 2)),
    "full": {},
}


def write_synthetic_sync_data(root: str | Path, n: int, seed: int, model_cfg: ShiftNetConfig, *,
                              world: str = "pulses", progress: bool = True) -> tuple[Path, Path]:
    """Generate (once; finished sets are reused) ``n`` training scenes of a synthetic sync world
    under ``root/train`` and ``max(8, n // 8)`` held-out ones (other seeds) under ``root/val``."""
    if world not in SYNTHETIC_SYNC_WORLDS:
        raise ValueError(f"unknown synthetic world {world!r}; choose from {sorted(SYNTHETIC_SYNC_WORLDS)}")
    root = Path(root)
    config = SceneConfig(task="sync", fps=model_cfg.fps, sample_rate=model_cfg.sample_rate,
                         **SYNTHETIC_SYNC_WORLDS[world])
    ensure_dataset(root / "train", n, seed, config=config, progress=progress)
    ensure_dataset(root / "val", max(8, n // 8), seed + 10_000, config=config, progress=progress)
    return root / "train", root / "val"


def _held_out(name: str, val_fraction: float) -> bool:
    """Whether the file ``name`` is held out: a stable hash, so the split does not change when
    files are added."""
    digest = hashlib.sha1(name.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < val_fraction


def split_index(index: VideoIndex, val_fraction: float = 0.1) -> tuple[VideoIndex, VideoIndex]:
    """Hold out ~``val_fraction`` of the videos, chosen by a stable hash of the file name (so the
    split does not change when files are added). With fewer than 2 videos both sides share them."""
    if len(index) < 2:
        return index, index
    val = tuple(v for v in index.videos if _held_out(Path(v.path).name, val_fraction)) or index.videos[-1:]
    train = tuple(v for v in index.videos if v not in val)
    return VideoIndex(train, index.skipped), VideoIndex(val, ())


def shift_sampling(model_cfg: ShiftNetConfig, *, negatives: str, shift_range_s, augment: bool) -> ShiftSampling:
    """How examples for ``model_cfg`` are cut: its clip length, rates and crop."""
    return ShiftSampling(**ShiftSampling.fields_for(model_cfg), shift_range_s=shift_range_s, negatives=negatives,
                         augment=augment)


# --------------------------------------------------------------------------------------------
# Training from shards
# --------------------------------------------------------------------------------------------

def shard_settings(model_cfg: ShiftNetConfig, *, shift_range_s=None) -> dict:
    """The :func:`~avscene.data.shards.prepare_shards` settings whose shards train ``model_cfg``:
    frames stored at its ``full_size`` (256 px for the paper's 224 crops), its frame rate,
    sample rate and channels; full segments of one clip + the largest shift + a spare frame, the
    shortest kept one clip + the smallest shift + a spare frame (10.0 s and 6.2 s for ``paper``,
    the shard module's defaults)."""
    s = shift_sampling(model_cfg, negatives="shift", shift_range_s=shift_range_s, augment=False)
    lo, hi = s.shift_frames
    return dict(size=s.full_size, fps=s.fps, sample_rate=s.sample_rate, channels=s.channels,
                clip_s=float((s.n_frames + hi + 1) / s.fps), min_clip_s=float((s.n_frames + lo + 1) / s.fps))


def is_shard_data(data: str | os.PathLike) -> bool:
    """Whether ``data`` names shards rather than a folder of videos: a URL (``scheme://...``,
    ``pipe:...``), a ``.tar`` path or pattern (``dir/shard-{000000..000099}.tar``), or a folder
    holding ``avscene prepare``'s ``plan.json`` or ``.tar`` files."""
    spec = os.fspath(data)
    if "://" in spec or spec.startswith("pipe:") or spec.endswith(".tar"):
        return True
    folder = Path(spec)
    return folder.is_dir() and ((folder / "plan.json").is_file() or any(folder.glob("*.tar")))


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


def _check_plan(folder: Path, sampling: ShiftSampling) -> None:
    """Refuse shards that ``prepare`` stored at other settings than ``sampling`` needs, naming
    both, before any worker starts (remote shards are checked by the reader, segment by segment)."""
    path = folder / "plan.json"
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
        _check_plan(Path(spec), sampling)
    return ShardSet(spec, tuple(urls), _count_samples(urls))


def split_shards(shards: ShardSet, val_fraction: float = 0.1) -> tuple[ShardSet, ShardSet]:
    """Hold out ~``val_fraction`` of the shards (at least one), by a stable hash of the shard's
    file name; with fewer than 2 shards both sides share them. ``prepare`` mixes every video's
    segments across shards, so held-out shards hold other windows of the training videos: for a
    held-out set of other videos, prepare one from them and pass it as ``val_data``."""
    if len(shards) < 2:
        return shards, shards
    val = [u for u in shards.urls if _held_out(u.rsplit("/", 1)[-1], val_fraction)] or [shards.urls[-1]]
    return shards.subset(u for u in shards.urls if u not in val), shards.subset(val)


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
    :class:`ShiftPairs`.
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


class PairForward(nn.Module):
    """The training forward (aligned and shifted audio through one shared visual stem) as a
    module's ``forward``, so DistributedDataParallel sees it."""

    def __init__(self, net: ShiftNet):
        super().__init__()
        self.net = net

    def forward(self, video, audio_a, audio_b):
        return self.net.forward_pair(video, audio_a, audio_b)


def shift_loss(logits_aligned: torch.Tensor, logits_shifted: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Sigmoid cross-entropy, label 1 = aligned, mean over both; accuracy of logit > 0."""
    logits = torch.cat([logits_aligned, logits_shifted]).float()  # (2B,)
    labels = torch.cat([torch.ones_like(logits_aligned), torch.zeros_like(logits_shifted)]).float()
    loss = F.binary_cross_entropy_with_logits(logits, labels)
    acc = ((logits > 0).float() == labels).float().mean()
    return loss, {"loss": float(loss.detach()), "acc": float(acc)}


@dataclasses.dataclass
class ShiftTask:
    """Shift pretraining on a folder of videos or on shards (``train_index``), validated on
    held-out videos or shards (``val_index``)."""

    model_cfg: ShiftNetConfig
    train_index: VideoIndex | ShardSet
    val_index: VideoIndex | ShardSet
    negatives: str = "shift"
    shift_range_s: tuple[float, float] | None = None
    n_val: int = 64
    seed: int = 0
    name: str = "shift"
    find_unused_parameters: bool = False
    #: A shift checkpoint to start from (fine-tuning, e.g. into the ``cam`` / ``fine_cam`` layouts,
    #: whose parameters are the same); None = random init. A resumed run ignores it.
    init: str | os.PathLike | None = None

    def __post_init__(self):
        self._val_batches: list[dict] | None = None
        self.find_unused_parameters = not self.model_cfg.use_sound

    def sampling(self, augment: bool) -> ShiftSampling:
        return shift_sampling(self.model_cfg, negatives=self.negatives, shift_range_s=self.shift_range_s,
                              augment=augment)

    def build_model(self) -> ShiftNet:
        net = ShiftNet(self.model_cfg)
        if self.init is not None:  # same widths; the layout (cam, fine_cam, clip, crop) may differ
            net.load_state_dict(shift_weights_for(self.init, net.config))
        return net

    def model_config(self) -> dict:
        return self.model_cfg.to_dict()

    def train_module(self, model: ShiftNet) -> nn.Module:
        return PairForward(model)

    def train_dataset(self) -> Dataset:
        if isinstance(self.train_index, ShardSet):
            return ShardShiftExamples(self.train_index, self.sampling(augment=True), seed=self.seed)
        return ShiftPairs(self.train_index, self.sampling(augment=True), seed=self.seed)

    def loss(self, model: nn.Module, batch: dict, device: torch.device):
        video = frames_to_video(batch["frames"].to(device, non_blocking=True))  # (B, 3, T, H, W)
        aligned = batch["audio_aligned"].to(device, non_blocking=True)  # (B, C, N)
        shifted = batch["audio_shifted"].to(device, non_blocking=True)
        # which audio takes the first pass is random per clip, so neither pass's batch-norm
        # statistics can tell aligned from shifted
        first_is_aligned = torch.rand(video.shape[0]) < 0.5  # (B,)
        mask = first_is_aligned.to(device).view(-1, 1, 1)
        first = torch.where(mask, aligned, shifted)
        second = torch.where(mask, shifted, aligned)
        logits_first, logits_second = model(video, first, second)  # (B,), (B,)
        m = first_is_aligned.to(device)
        logits_aligned = torch.where(m, logits_first, logits_second)
        logits_shifted = torch.where(m, logits_second, logits_first)
        return shift_loss(logits_aligned, logits_shifted)

    def val_batches(self, batch_size: int = 16) -> list[dict]:
        """The fixed held-out examples (centre crop, no flip), built once."""
        if self._val_batches is None:
            if isinstance(self.val_index, ShardSet):  # the first n_val segments, in shard order
                stream = shift_example_shards(list(self.val_index.urls), self.sampling(augment=False),
                                              seed=self.seed + 7919, shuffle=False, rank=0, world_size=1)
                examples = list(itertools.islice(stream, self.n_val))
            else:
                pairs = ShiftPairs(self.val_index, self.sampling(augment=False), seed=self.seed + 7919)
                examples = [pairs[i] for i in range(self.n_val)]
            self._val_batches = [default_collate(examples[i : i + batch_size])
                                 for i in range(0, len(examples), batch_size)]
        return self._val_batches

    @torch.no_grad()
    def validate(self, model: ShiftNet, device: torch.device) -> dict[str, float]:
        totals = {"loss": 0.0, "acc": 0.0}
        batches = self.val_batches()
        for batch in batches:
            video = frames_to_video(batch["frames"].to(device))
            logits_aligned = model(video, batch["audio_aligned"].to(device))
            logits_shifted = model(video, batch["audio_shifted"].to(device))
            _, metrics = shift_loss(logits_aligned, logits_shifted)
            for k in totals:
                totals[k] += metrics[k] / len(batches)
        return totals


def make_shift_task(data: str | Path, model_cfg: ShiftNetConfig, *, val_data: str | Path | None = None,
                    negatives: str = "shift", shift_range_s=None, n_val: int = 64, seed: int = 0,
                    progress: bool = False, num_workers: int | None = None,
                    init: str | os.PathLike | None = None) -> ShiftTask:
    """Index the training (and validation) videos, or open the shards (see :func:`is_shard_data`),
    and build the task; unusable files are skipped and reported on the task's ``train_index``.
    Without ``val_data`` about 10 % of the videos (or shards) are held out. With ``num_workers``
    (DataLoader workers per process), training shards too few for every reader are refused now
    rather than when a reader runs dry. ``init``: a shift checkpoint to start from
    (:func:`avscene.checkpoints.shift_weights_for` checks that it fits)."""
    probe_sampling = shift_sampling(model_cfg, negatives=negatives, shift_range_s=shift_range_s, augment=False)

    def load(source) -> VideoIndex | ShardSet:
        if is_shard_data(source):
            return open_shards(source, probe_sampling)
        return index_videos(source, min_duration_s=probe_sampling.min_video_s, progress=progress)

    index = load(data)
    if val_data is not None:
        train_index, val_index = index, load(val_data)
    elif isinstance(index, ShardSet):
        train_index, val_index = split_shards(index)
    else:
        train_index, val_index = split_index(index)
    if len(train_index) == 0:
        raise ValueError(f"{data}: no usable training videos\n{index.report()}")
    if isinstance(train_index, ShardSet) and num_workers is not None:
        world = int(os.environ.get("WORLD_SIZE", "1"))  # torchrun's; the process group starts later
        if len(train_index) < world * max(1, num_workers):
            raise ValueError(f"{data}: {len(train_index)} training shards for {world} processes x "
                             f"{max(1, num_workers)} data workers: every reader needs its own shard; prepare more, "
                             "smaller shards (--clips-per-shard) or use fewer --workers")
    return ShiftTask(model_cfg, train_index, val_index, negatives=negatives, shift_range_s=shift_range_s, init=init,
                     n_val=n_val, seed=seed)
