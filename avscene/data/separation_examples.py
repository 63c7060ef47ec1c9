"""Examples for on/off-screen separation: a clip's frames, a mixture, and its two parts.

Two sources of examples, one format (a dict, see :data:`EXAMPLE_KEYS`):

* :class:`VideoMixtures` — any folder of videos, the paper's recipe (design doc 5.2): the
  on-screen sound is a clip's own audio (with its frames), the off-screen sound is the audio of a
  window of *another* video, and the mixture is their sum after
  :func:`avscene.data.mixtures.make_mixture` (each RMS-normalised, on/off SNR drawn from
  ``mixture.snr_db_range``; 0 dB, the release, by default). The own video is read in epochs
  (one random permutation of the videos per epoch, so every clip is on-screen once per epoch, as
  the release's in-batch pairing made it once per batch); the other video is
  :func:`avscene.data.mixtures.off_screen_index`.
* :class:`SceneMixtures` — a synthetic separation set written by
  :func:`avscene.synth.write_dataset` with ``task="separation"`` and stems (the default). Its
  scenes already hold an on-screen talker and an off-screen talker, and the npz holds each
  source's exact waveform, so the targets are ground truth rather than a second video:

    - on  = the sum of the on-screen sources (the talking face in the picture),
    - off = the sum of the off-screen sources **plus the background noise** (everything that
      has no visible cause counts as off-screen, so ``on + off`` is exactly the scene's sound),
    - mixture = on + off, from the stems (the mp4's AAC track is lossy; only the frames are read
      from the mp4).

  In training mode the window is random, the frames are augmented and on/off are re-levelled
  by :func:`~avscene.data.mixtures.make_mixture` (as the video recipe). In evaluation mode
  (``train=False``) the windows are fixed (``clips_per_scene`` spread evenly over each scene),
  the frames centre-cropped, and the scene's own on/off balance is kept: one gain per clip
  brings the mixture to the training mixtures' RMS (``mixture.mixture_rms``, 0.1414) and is
  applied to on and off too. Each example carries its scene's ``voice_pairing`` as ``group``
  (``"within"``: both talkers from one voice group, hard; ``"across"``: one from each), which
  :func:`avscene.metrics.separation.evaluate_separation` breaks its table down by. Evaluation
  windows where either target is more than ``min_source_db`` (default 20 dB) below the
  mixture are left out (a pause of one talker: SDR is undefined there); ``n_skipped`` counts
  them.

Augmentation (training only, both sources): a random crop of frames stored at
``full_size`` (the paper's 256/224 of the crop) and a whole-clip horizontal flip that also
swaps the stereo channels of the mixture and both targets (the release forgot the swap).
Without augmentation the crop is centred.

Every training example is a pure function of ``(seed, example_id)``: choices come from
``np.random.default_rng((seed, example_id))`` and the mixture's own streams, so a run reads the
same examples whatever the number of processes or workers, and a resumed run continues exactly.
Clips whose audio is (nearly) silent (RMS below ``min_rms``) cannot be levelled and are
redrawn, as are windows that fail to decode.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from avscene.audio.resample import resample_audio
from avscene.cards import videos_data
from avscene.constants import frame_to_sample, frames_in
from avscene.data.clips import ClipSampling
from avscene.data.mixtures import MixtureConfig, make_mixture, off_screen_index
from avscene.data.shift_pairs import draw_augmentation
from avscene.data.videos import VideoIndex
from avscene.media import MediaError, read_clip
from avscene.windows import plan_windows

#: Keys of one example: ``frames`` uint8 (T, crop, crop, 3) (empty (0,) when video is not read);
#: ``mixture``, ``on``, ``off`` float32 (C, N) with ``mixture == on + off``; ``snr_db`` the
#: on/off SNR in dB (of the clip as levelled); ``group`` the voice pairing ('' for videos);
#: ``source`` the on-screen video or scene; ``start_frame`` the window's first frame.
EXAMPLE_KEYS = ("frames", "mixture", "on", "off", "snr_db", "group", "source", "start_frame")

#: Reads that fail (or windows that are silent) are redrawn this many times.
_MAX_TRIES = 8


@dataclasses.dataclass(frozen=True)
class SeparationSampling(ClipSampling):
    """How separation clips are cut (the shared fields: :class:`ClipSampling`); how the two
    sources are levelled (``mixture``); the RMS under which a clip counts as silent.
    ``read_video`` False (audio-only models) skips decoding frames."""

    fit: str = "crop"
    mixture: MixtureConfig = MixtureConfig()
    min_rms: float = 1e-3
    read_video: bool = True

    @classmethod
    def for_model(cls, cfg, *, augment: bool, mixture: MixtureConfig = MixtureConfig()) -> "SeparationSampling":
        """Clips for a :class:`~avscene.models.SeparationNetConfig` ``cfg``: its shift network's
        clip, rates and crop, and whether it sees video."""
        return cls(**cls.fields_for(cfg.shift), augment=augment, mixture=mixture, read_video=cfg.uses_video)


def _level(audio: np.ndarray, per_channel: bool) -> float:
    """Smallest RMS the mixture normalisation will divide by: per channel, or overall."""
    x = np.asarray(audio, np.float64)
    if per_channel:
        return float(np.sqrt(np.mean(x**2, axis=-1)).min())
    return float(np.sqrt(np.mean(x**2)))


def augment_separation_example(sampling: SeparationSampling, frames: np.ndarray | None, audios: list[np.ndarray],
                               rng: np.random.Generator) -> tuple[np.ndarray | None, list[np.ndarray]]:
    """Random crop + whole-clip flip (stereo of every ``(C, N)`` audio swapped with it) when
    ``sampling.augment``, else the centre crop. ``frames`` (T, full, full, 3) -> (T, crop, crop, 3)."""
    if frames is None:
        return None, audios
    aug = draw_augmentation(sampling, frames.shape[1:3], 2, rng)  # the swap applies to the stereo ones
    frames = aug.crop(frames)
    if aug.swap_stereo:
        audios = [a[::-1] if a.shape[0] == 2 else a for a in audios]
    return frames, audios


def _example(frames: np.ndarray | None, mixture: np.ndarray, on: np.ndarray, off: np.ndarray, snr_db: float,
             group: str, source: str, start_frame: int) -> dict:
    frames_t = (torch.from_numpy(np.ascontiguousarray(frames)) if frames is not None
                else torch.zeros(0, dtype=torch.uint8))
    return {
        "frames": frames_t,
        "mixture": torch.from_numpy(np.ascontiguousarray(mixture, dtype=np.float32)),
        "on": torch.from_numpy(np.ascontiguousarray(on, dtype=np.float32)),
        "off": torch.from_numpy(np.ascontiguousarray(off, dtype=np.float32)),
        "snr_db": float(snr_db),
        "group": group,
        "source": source,
        "start_frame": int(start_frame),
    }


# -- videos ------------------------------------------------------------------------------------------


def _usable_frames(duration_s: float, fps: Fraction) -> int:
    """Whole frames of a video, one spare for rounding (as the shift examples)."""
    return max(0, frames_in(duration_s, fps) - 1)


class VideoMixtures(Dataset):
    """Map-style dataset over a folder of videos: ``mixtures[example_id]`` -> an example dict
    (:data:`EXAMPLE_KEYS`). Endless by default (ids come from the training loop); ``length``
    gives a fixed held-out set of ids ``0 .. length - 1``."""

    def training_data(self) -> dict:
        """What a separator trained on these mixtures learnt from (its model card's)."""
        return self.index.training_data()

    def __init__(self, index: VideoIndex, sampling: SeparationSampling, *, seed: int = 0,
                 length: int | None = None):
        if len(index) < 2:
            raise ValueError(f"separation mixtures need at least 2 usable videos (the off-screen sound comes "
                             f"from another one), got {len(index)}")
        short = [v.path for v in index.videos if _usable_frames(v.duration_s, sampling.fps) < sampling.n_frames]
        if short:
            raise ValueError(f"{len(short)} video(s) are shorter than one clip "
                             f"({float(sampling.n_frames / sampling.fps):.2f} s), e.g. {short[0]}")
        self.index, self.sampling, self.seed, self.length = index, sampling, seed, length

    def __len__(self) -> int:
        return self.length if self.length is not None else 2**62

    def video_of(self, example_id: int) -> int:
        """Which video is on-screen in example ``example_id``: epochs of one permutation each."""
        n = len(self.index)
        epoch, pos = divmod(int(example_id), n)
        return int(np.random.default_rng((self.seed, 1, epoch)).permutation(n)[pos])

    def __getitem__(self, example_id: int) -> dict:
        if self.length is not None and not 0 <= example_id < self.length:
            raise IndexError(example_id)
        example_id = int(example_id)
        rng = np.random.default_rng((self.seed, example_id))
        n = len(self.index)
        own = self.video_of(example_id)
        other = off_screen_index(self.seed, example_id, own, n)
        for _ in range(_MAX_TRIES):
            try:
                example = self._example(example_id, own, other, rng)
            except MediaError:
                example = None
            if example is not None:
                return example
            own = int(rng.integers(n))  # unreadable or silent: draw another pair
            other = (own + 1 + int(rng.integers(n - 1))) % n
        raise RuntimeError(f"example {example_id}: {_MAX_TRIES} draws in a row were unreadable or silent; "
                           "is the data corrupt or without sound?")

    def _read(self, info, start_frame: int, *, video: bool):
        s = self.sampling
        clip = read_clip(info.path, float(start_frame / s.fps), float((s.n_frames + 1) / s.fps) + 1e-6,
                         fps=s.fps if video else None, size=s.full_size, fit=s.fit, sample_rate=s.sample_rate,
                         channels=s.channels, video=video, threads=1)
        if clip.n_samples < s.n_samples or (video and clip.n_frames < s.n_frames):
            raise MediaError(info.path, f"window at frame {start_frame} is short")
        return clip

    def _example(self, example_id: int, own: int, other: int, rng: np.random.Generator) -> dict | None:
        s = self.sampling
        own_info, other_info = self.index.videos[own], self.index.videos[other]
        start = int(rng.integers(0, _usable_frames(own_info.duration_s, s.fps) - s.n_frames + 1))
        other_start = int(rng.integers(0, _usable_frames(other_info.duration_s, s.fps) - s.n_frames + 1))
        clip = self._read(own_info, start, video=s.read_video)
        on = clip.audio[: s.n_samples].T  # (C, N)
        off = self._read(other_info, other_start, video=False).audio[: s.n_samples].T
        per_channel = s.mixture.per_channel
        if _level(on, per_channel) < s.min_rms or _level(off, per_channel) < s.min_rms:
            return None
        frames = clip.frames[: s.n_frames] if s.read_video else None
        frames, (on, off) = augment_separation_example(s, frames, [on, off], rng)
        m = make_mixture(on, off, seed=self.seed, example_id=example_id, config=s.mixture)
        return _example(frames, m.mixture, m.on, m.off, m.snr_db, "", own_info.path, start)


# -- synthetic scenes with stems --------------------------------------------------------------------


def is_scene_set(path: str | os.PathLike) -> bool:
    """True if ``path`` is a synthetic separation set (a folder, or its manifest.json)."""
    p = Path(path)
    p = p / "manifest.json" if p.is_dir() else p
    if p.name != "manifest.json" or not p.is_file():
        return False
    try:
        return json.loads(p.read_text()).get("task") == "separation"
    except (OSError, ValueError):
        return False


class SceneMixtures(Dataset):
    """A synthetic separation set (``root``: its folder or manifest.json) as examples
    (:data:`EXAMPLE_KEYS`) with ground-truth targets; see the module docstring.

    ``train=True``: endless, random windows, augmentation, re-levelled to the drawn SNR.
    ``train=False``: ``clips_per_scene`` fixed windows per scene (evenly spread; fewer if the
    scene is short), scene levels kept, windows with a near-silent target left out.
    ``scenes``: indices of the scenes to use (default all), e.g. from :func:`avscene.data.splits.split_scenes`.
    """

    def __init__(self, root: str | os.PathLike, sampling: SeparationSampling, *, train: bool, seed: int = 0,
                 scenes: Sequence[int] | None = None, clips_per_scene: int = 4, min_source_db: float = -20.0,
                 cache_scenes: int = 16):
        from avscene.synth import load_manifest

        manifest = load_manifest(root)
        if manifest.get("task") != "separation":
            raise ValueError(f"{root}: a synthetic set of task {manifest.get('task')!r}, not 'separation'")
        entries = manifest["scenes"]
        self.scenes = [entries[i] for i in (range(len(entries)) if scenes is None else scenes)]
        if not self.scenes:
            raise ValueError(f"{root}: no scenes")
        with np.load(self.scenes[0]["npz"]) as z:
            if "sources" not in z:
                raise ValueError(f"{root}: written without stems (write_dataset(stems=False)); separation needs "
                                 "the per-source waveforms")
        if not train:
            sampling = dataclasses.replace(sampling, augment=False)  # evaluation: centre crop, no flip
        self.root, self.sampling, self.train, self.seed = str(root), sampling, train, seed
        self.scene_rate = int(manifest["config"]["sample_rate"])
        self.min_source_db = min_source_db
        self._cache: collections.OrderedDict[int, tuple[np.ndarray, np.ndarray]] = collections.OrderedDict()
        self._cache_size = cache_scenes
        self.n_skipped = 0
        self.clips: list[tuple[int, int]] = []
        if not train:
            self.clips = self._plan_eval_clips(clips_per_scene)
            if not self.clips:
                raise ValueError(f"{root}: every evaluation window has a near-silent source")

    def __len__(self) -> int:
        return len(self.clips) if not self.train else 2**62

    def training_data(self) -> dict:
        """What a separator trained on these scenes learnt from (its model card's): synthetic scenes."""
        return videos_data(self.root, [float(e["duration_s"]) for e in self.scenes], [True] * len(self.scenes))

    @property
    def groups(self) -> list[str]:
        """The voice pairing of each scene used (``within`` / ``across``)."""
        return [e.get("voice_pairing") or "" for e in self.scenes]

    def _usable(self, scene: int) -> int:
        return _usable_frames(float(self.scenes[scene]["duration_s"]), self.sampling.fps)

    def stems(self, scene: int) -> tuple[np.ndarray, np.ndarray]:
        """On- and off-screen (sources + noise) audio of scene ``scene``, float32 (C, N) at the
        sampling's rate and channels (cached, a few scenes per worker)."""
        if scene in self._cache:
            self._cache.move_to_end(scene)
            return self._cache[scene]
        entry = self.scenes[scene]
        with np.load(entry["npz"]) as z:
            sources, noise = z["sources"], z["noise"]  # (S, N, 2), (N, 2)
        onscreen = np.asarray([s["onscreen"] for s in json.loads(Path(entry["json"]).read_text())["source_info"]],
                              bool)
        on = sources[onscreen].sum(0, dtype=np.float32) if onscreen.any() else np.zeros_like(noise)
        off = (sources[~onscreen].sum(0, dtype=np.float32) if (~onscreen).any() else np.zeros_like(noise)) + noise
        on, off = on.T, off.T  # (2, N)
        if self.sampling.channels == 1:
            on, off = on.mean(0, keepdims=True), off.mean(0, keepdims=True)
        elif self.sampling.channels != 2:
            raise ValueError(f"synthetic scenes are stereo; a model with {self.sampling.channels} channels "
                             "cannot use them")
        on = resample_audio(on, self.scene_rate, self.sampling.sample_rate)
        off = resample_audio(off, self.scene_rate, self.sampling.sample_rate)
        self._cache[scene] = (on, off)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return on, off

    def _window(self, scene: int, start: int) -> tuple[np.ndarray, np.ndarray]:
        s = self.sampling
        on, off = self.stems(scene)
        a = frame_to_sample(start, s.fps, s.sample_rate)
        on, off = on[:, a : a + s.n_samples], off[:, a : a + s.n_samples]
        if on.shape[1] < s.n_samples:
            raise MediaError(self.scenes[scene]["npz"], f"window at frame {start} runs past the stems")
        return on, off

    def _plan_eval_clips(self, clips_per_scene: int) -> list[tuple[int, int]]:
        s = self.sampling
        clips = []
        floor = 10 ** (self.min_source_db / 10)
        for i in range(len(self.scenes)):
            usable = self._usable(i)
            if usable < s.n_frames:
                continue
            n_fit = max(1, usable // s.n_frames)  # non-overlapping windows that fit
            for start in plan_windows(usable, s.n_frames, count=min(clips_per_scene, n_fit), align="cover"):
                on, off = self._window(i, start)
                p_on, p_off = (float(np.mean(np.mean(x, 0, dtype=np.float64) ** 2)) for x in (on, off))
                p_mix = float(np.mean(np.mean(on + off, 0, dtype=np.float64) ** 2))
                if p_mix > 0 and p_on >= floor * p_mix and p_off >= floor * p_mix:
                    clips.append((i, start))
                else:
                    self.n_skipped += 1
        return clips

    def _frames(self, scene: int, start: int) -> np.ndarray | None:
        s = self.sampling
        if not s.read_video:
            return None
        clip = read_clip(self.scenes[scene]["video"], float(start / s.fps), float((s.n_frames + 1) / s.fps) + 1e-6,
                         fps=s.fps, size=s.full_size, fit=s.fit, audio=False, threads=1)
        if clip.n_frames < s.n_frames:
            raise MediaError(self.scenes[scene]["video"], f"window at frame {start} is short")
        return clip.frames[: s.n_frames]

    def __getitem__(self, example_id: int) -> dict:
        if self.train:
            return self._train_example(int(example_id))
        if not 0 <= example_id < len(self.clips):
            raise IndexError(example_id)
        scene, start = self.clips[example_id]
        on, off = self._window(scene, start)
        frames, _ = augment_separation_example(self.sampling, self._frames(scene, start), [], None)
        mixture = on.astype(np.float64) + off
        level = _level(mixture, per_channel=False)
        gain = self.sampling.mixture.mixture_rms / max(level, self.sampling.mixture.eps)
        on32, off32 = (on * gain).astype(np.float32), (off * gain).astype(np.float32)
        p_on, p_off = (float(np.mean(x.astype(np.float64) ** 2)) for x in (on32, off32))
        snr = 10 * math.log10(p_on / p_off) if p_on > 0 and p_off > 0 else float("nan")
        return _example(frames, on32 + off32, on32, off32, snr, self.scenes[scene].get("voice_pairing") or "",
                        self.scenes[scene]["stem"], start)

    def _train_example(self, example_id: int) -> dict:
        s = self.sampling
        rng = np.random.default_rng((self.seed, example_id))
        for _ in range(_MAX_TRIES):
            scene = int(rng.integers(len(self.scenes)))
            usable = self._usable(scene)
            if usable < s.n_frames:
                continue
            start = int(rng.integers(0, usable - s.n_frames + 1))
            try:
                on, off = self._window(scene, start)
                if _level(on, s.mixture.per_channel) < s.min_rms or _level(off, s.mixture.per_channel) < s.min_rms:
                    continue
                frames = self._frames(scene, start)
            except MediaError:
                continue
            frames, (on, off) = augment_separation_example(s, frames, [on, off], rng)
            m = make_mixture(on, off, seed=self.seed, example_id=example_id, config=s.mixture)
            return _example(frames, m.mixture, m.on, m.off, m.snr_db, self.scenes[scene].get("voice_pairing") or "",
                            self.scenes[scene]["stem"], start)
        raise RuntimeError(f"example {example_id}: {_MAX_TRIES} draws in a row were unreadable, too short or "
                           f"silent; are the scenes shorter than a clip ({float(s.n_frames / s.fps):.2f} s)?")


def separation_dataset(path: str | os.PathLike, cfg, *, train: bool, mixture: MixtureConfig = MixtureConfig(),
                       seed: int = 0, scenes: Sequence[int] | None = None, length: int | None = None,
                       clips_per_scene: int = 4, progress: bool = False) -> Dataset:
    """Examples for the model ``cfg`` (a :class:`~avscene.models.SeparationNetConfig`) from
    ``path``: a synthetic separation set (:class:`SceneMixtures`; ``scenes``,
    ``clips_per_scene``) or a folder of videos (:class:`VideoMixtures`; held-out sets need
    ``length``). ``train``: augmented, endless; otherwise centre crops, finite."""
    sampling = SeparationSampling.for_model(cfg, augment=train, mixture=mixture)
    if is_scene_set(path):
        return SceneMixtures(path, sampling, train=train, seed=seed, scenes=scenes, clips_per_scene=clips_per_scene)
    from avscene.data.videos import index_videos

    index = index_videos(path, min_duration_s=float((sampling.n_frames + 2) / sampling.fps), progress=progress)
    if len(index) < 2:
        raise ValueError(f"{path}: separation needs at least 2 usable videos\n{index.report()}")
    if not train and length is None:
        raise ValueError("a held-out set of video mixtures needs its length (number of examples)")
    return VideoMixtures(index, sampling, seed=seed, length=None if train else length)


__all__ = ["EXAMPLE_KEYS", "SceneMixtures", "SeparationSampling", "VideoMixtures", "augment_separation_example",
           "is_scene_set", "separation_dataset"]
