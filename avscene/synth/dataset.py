"""Writing sets of synthetic scenes to disk and reading their ground truth back.

``write_dataset(out_dir, n, seed)`` writes, for scene ``i`` (seed :func:`scene_seed`)::

    scene_00000.mp4   video (H.264) + stereo audio (AAC) via avscene.media.write_video
    scene_00000.npz   arrays (np.savez_compressed):
                        boxes   (n_objects, T, 4) float32 x0, y0, x1, y1 pixel edges
                        masks   np.packbits of the bool (n_objects, T, H, W) masks, flattened;
                                masks_shape holds the shape (packing: 8x smaller, and the
                                mostly-zero bytes then compress well, ~30 KB per default scene)
                        activity (n_objects, T) bool, objects scenes only: each object's turns
                        mouth   (n_objects, T) float32 mouth opening, NaN for non-faces
                        sources (n_sources, N, 2) float32 and noise (N, 2) float32, only with
                                ``stems=True``; the exact mix is ``sources.sum(0) + noise``
                                (the mp4's AAC audio is lossy, so this is the reference)
    scene_00000.json  per-object events and flags, per-source info (on/off-screen, kind, voice
                      group), label, pairing, config, seed (see :func:`scene_record`)
    manifest.json     the config, and per scene stem/task/label/duration/seed; written last

Every file is written atomically (temporary file in the same folder + ``os.replace``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import multiprocessing
import os
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avscene.synth.actions import ACTION_CLASSES
from avscene.synth.scene import Scene, SceneConfig, generate_scene
from avscene.synth.voices import VOICE_GROUPS

MANIFEST_FORMAT = "avscene-synth/1"


def scene_seed(seed: int, index: int) -> int:
    """Seed of scene ``index`` of a set with ``seed``: 63 bits of ``SeedSequence((seed, index))``,
    so sets with different seeds share no scenes and scene i does not depend on n."""
    state = np.random.SeedSequence((int(seed), int(index))).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def scene_record(scene: Scene, stem: str) -> dict:
    """JSON-friendly ground truth of ``scene`` (everything but the large arrays)."""
    return {
        "format": MANIFEST_FORMAT,
        "stem": stem,
        "task": scene.task,
        "seed": scene.seed,
        "fps": f"{scene.fps.numerator}/{scene.fps.denominator}",
        "sample_rate": scene.sample_rate,
        "n_frames": scene.n_frames,
        "n_samples": scene.n_samples,
        "width": scene.frames.shape[2],
        "height": scene.frames.shape[1],
        "duration_s": scene.duration_s,
        "label": scene.label,
        "label_name": scene.label_name,
        "voice_pairing": scene.voice_pairing,
        "gain": scene.gain,
        "objects": [
            {
                "kind": o.kind, "sound": o.sound, "shape": o.shape, "colour": list(o.colour),
                "radius_px": o.radius_px, "sounding": o.sounding, "source": o.source,
                "event_frames": list(o.event_frames), "events_s": list(o.events_s),
                "sound_events_s": list(o.sound_events_s), "voice": o.voice, "lag_s": o.lag_s,
            }
            for o in scene.objects
        ],
        "source_info": [
            {"onscreen": on, "object": obj, "kind": kind, "voice": voice, "voice_group": group,
             "voice_group_name": VOICE_GROUPS[group] if group >= 0 else None}
            for on, obj, kind, voice, group in zip(scene.source_onscreen, scene.source_object,
                                                   scene.source_kinds, scene.voices, scene.voice_groups)
        ],
        "config": scene.config.to_dict(),
        **({"offset_object": scene.offset_object} if scene.activity is not None else {}),
    }


def _atomic_write(path: Path, write) -> Path:
    """Call ``write(tmp_path)`` then move the result onto ``path`` atomically."""
    # A unique hidden name in the same folder (same file system, so os.replace is atomic);
    # created with the default permissions, unlike tempfile.mkstemp's 0600.
    tmp = path.parent / f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}{path.suffix}"
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _write_npz(path: Path, scene: Scene, stems: bool) -> Path:
    mouth = np.full((len(scene.objects), scene.n_frames), np.nan, np.float32)
    for i, o in enumerate(scene.objects):
        if o.mouth is not None:
            mouth[i] = o.mouth
    arrays = {
        "boxes": scene.boxes,
        "masks": np.packbits(scene.masks.ravel()),
        "masks_shape": np.asarray(scene.masks.shape, np.int64),
        "mouth": mouth,
    }
    if scene.activity is not None:
        arrays["activity"] = scene.activity
    if stems:
        arrays["sources"] = scene.sources
        arrays["noise"] = scene.noise

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: savez must not append ".npz" to the temp name
            np.savez_compressed(f, **arrays)

    return _atomic_write(path, write)


def _write_json(path: Path, obj: dict) -> Path:
    return _atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=1)))


def _scene_config(config: SceneConfig, index: int) -> SceneConfig:
    """Scene ``index``'s config: action sets without a label cycle over the classes."""
    if config.task == "action" and config.label is None:
        return dataclasses.replace(config, label=index % len(ACTION_CLASSES))
    return config


def _write_scene(out: Path, config: SceneConfig, seed: int, index: int, stems: bool) -> dict:
    """Generate scene ``index`` of a set and write its mp4, npz and json; returns its manifest entry."""
    from avscene.media import SYNTHETIC_TAG, write_video  # the container layer; imported late (heavy)

    scene = generate_scene(_scene_config(config, index), scene_seed(seed, index))
    stem = f"scene_{index:05d}"
    write_video(out / f"{stem}.mp4", scene.frames, scene.fps, audio=scene.audio,
                sample_rate=scene.sample_rate, comment=f"{SYNTHETIC_TAG}: {scene.task} scene, seed {scene.seed}")
    _write_npz(out / f"{stem}.npz", scene, stems)
    _write_json(out / f"{stem}.json", scene_record(scene, stem))
    return {"stem": stem, "video": f"{stem}.mp4", "npz": f"{stem}.npz", "json": f"{stem}.json",
            "task": scene.task, "label": scene.label, "label_name": scene.label_name,
            "voice_pairing": scene.voice_pairing, "duration_s": scene.duration_s,
            "n_frames": scene.n_frames, "n_samples": scene.n_samples, "seed": scene.seed}


def default_workers(n: int) -> int:
    """Processes for writing ``n`` scenes: one per CPU (at most 8), one for sets under 8 scenes,
    where starting processes costs more than it saves (a scene takes about 0.4 s of one core)."""
    return 1 if n < 8 else max(1, min(8, os.cpu_count() or 1, n // 4))


def write_dataset(out_dir: str | os.PathLike, n: int, seed: int, *, task: str | None = None,
                  config: SceneConfig | None = None, progress: bool = True,
                  stems: bool = True, workers: int | None = None) -> Path:
    """Generate ``n`` scenes and write them to ``out_dir``; returns the path of manifest.json.

    ``task`` overrides ``config.task`` when given (default: ``config.task``, or ``'sync'``
    without a config). For the action task with ``config.label`` None, scene ``i`` gets label
    ``i % n_classes`` so every class is covered evenly. ``stems=False`` skips the per-source
    waveforms in the npz (about 3 MB per default scene). ``workers``: processes that write
    scenes side by side (default :func:`default_workers`); scene ``i`` depends only on
    ``(seed, i)``, so the set is the same for any number of them.
    """
    config = config if config is not None else SceneConfig()
    if task is not None and task != config.task:
        config = dataclasses.replace(config, task=task)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n, workers = int(n), default_workers(int(n)) if workers is None else max(1, int(workers))
    bar = functools.partial(tqdm, total=n, desc=f"synth {config.task}", unit="scene", disable=not progress)
    write = functools.partial(_write_scene, out, config, int(seed), stems=stems)
    if workers == 1:
        entries = [write(i) for i in bar(range(n))]
    else:
        # spawned, not forked: the parent may hold torch's thread pools, which a fork would copy broken
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            entries = list(bar(pool.map(write, range(n))))
    manifest = {
        "format": MANIFEST_FORMAT,
        "task": config.task,
        "seed": int(seed),
        "n": int(n),
        "config": config.to_dict(),
        "classes": list(ACTION_CLASSES) if config.task == "action" else [],
        "voice_groups": list(VOICE_GROUPS),
        "scenes": entries,
    }
    return _write_json(out / "manifest.json", manifest)



def _stored_config(manifest: dict) -> dict | None:
    """A manifest's scene config with the defaults of options added since it was written (those
    options did not exist, so the set was made as their defaults make it); None if unreadable."""
    try:
        return SceneConfig.from_dict(manifest["config"]).to_dict()
    except (KeyError, TypeError, ValueError):
        return None


def ensure_dataset(out_dir: str | os.PathLike, n: int, seed: int, *, config: SceneConfig, progress: bool = True,
                   stems: bool = True) -> Path:
    """:func:`write_dataset` once: a finished set (its manifest written) of the same count, seed
    and scene config is reused; one written with others is an error, never silently reused or
    overwritten. Returns the set's folder."""
    out = Path(out_dir)
    if (out / "manifest.json").exists():
        manifest = load_manifest(out)
        if (manifest.get("n"), manifest.get("seed"), _stored_config(manifest)) != (n, seed, config.to_dict()):
            raise ValueError(f"{out} holds {manifest.get('n')} scenes of seed {manifest.get('seed')} written with "
                             f"another config than the {n} scenes of seed {seed} asked for; delete it or choose "
                             "another folder")
        return out
    write_dataset(out, n, seed, config=config, progress=progress, stems=stems)
    return out


def _stem_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix in {".mp4", ".npz", ".json"} else p


def load_ground_truth(path: str | os.PathLike) -> dict:
    """Ground truth of one written scene, from its mp4, npz, json or extension-less stem path.

    Returns the scene's JSON record (:func:`scene_record`: ``objects`` with their events,
    ``source_info`` with on-screen flags and voice groups, label, seed, ...) plus arrays: ``boxes``
    (n_objects, T, 4) float32, ``masks`` (n_objects, T, H, W) bool, ``mouth`` (n_objects, T)
    float32 (NaN for non-faces), ``activity`` (n_objects, T) bool for objects scenes, and when stems were written ``sources`` (n_sources, N, 2),
    ``noise`` (N, 2) and ``audio`` = ``sources.sum(0) + noise`` (N, 2), all float32; ``video``
    is the mp4 path and ``config`` a :class:`SceneConfig`.
    """
    stem = _stem_path(path)
    record = json.loads(stem.with_suffix(".json").read_text())
    with np.load(stem.with_suffix(".npz")) as z:
        shape = tuple(int(v) for v in z["masks_shape"])
        record["boxes"] = z["boxes"]
        record["masks"] = np.unpackbits(z["masks"], count=int(np.prod(shape))).astype(bool).reshape(shape)
        record["mouth"] = z["mouth"]
        if "activity" in z:
            record["activity"] = z["activity"]
        if "sources" in z:
            record["sources"] = z["sources"]
            record["noise"] = z["noise"]
            record["audio"] = record["sources"].sum(0, dtype=np.float32) + record["noise"]
    record["video"] = stem.with_suffix(".mp4")
    record["config_dict"] = record["config"]
    record["config"] = SceneConfig.from_dict(record["config"])
    return record


@functools.lru_cache(maxsize=256)
def _holds_synthetic_set(folder: str) -> bool:
    try:
        return str(json.loads((Path(folder) / "manifest.json").read_text()).get("format", "")).startswith("avscene-synth/")
    except (OSError, ValueError, AttributeError):
        return False


def is_synthetic_video(info) -> bool:
    """Whether a probed video (:class:`~avscene.media.MediaInfo`) comes from the synthetic world:
    its container says so, or it sits in a set that ``avscene synth`` wrote (sets written before
    the container tag existed)."""
    return bool(getattr(info, "synthetic", False)) or _holds_synthetic_set(str(Path(info.path).parent))


def load_manifest(path: str | os.PathLike) -> dict:
    """The manifest of a dataset (``path`` is manifest.json or its folder); every scene entry
    gains absolute ``video`` / ``npz`` / ``json`` paths."""
    p = Path(path)
    p = p / "manifest.json" if p.is_dir() else p
    manifest = json.loads(p.read_text())
    for e in manifest["scenes"]:
        for key in ("video", "npz", "json"):
            e[key] = str(p.parent / e[key])
    return manifest
