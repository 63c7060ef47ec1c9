"""Files of ``avscene objects`` for one input, every one written atomically::

    <name>_objects.json   tracks: id, confidence, box per frame, activity (per frame and as spans),
                          own sync offset; files; the network that made them
    <name>_objects.mp4    the picture with each object's box, id and activity (filled label while
                          it sounds), with the original sound
    <name>_timeline.png   who sounds when: each object's map strength (and, with a separator, its
                          sound's share of the mixture) over time, active spans shaded
    <name>_obj<K>.wav     object K's own sound (mono, the separator's rate), with a separator
    <name>_obj<K>.mp4     the picture with object K highlighted (the rest dimmed), with its sound
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from avscene.files import atomic_path, write_json
from avscene.infer.objects import ObjectsResult, box_mask

#: Suffixes of the files of one input; per-object files add ``_obj<K>`` for K = 1 .. max_objects.
OBJECTS_OUTPUTS = {"json": "_objects.json", "video": "_objects.mp4", "timeline": "_timeline.png"}
_COLOURS = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230))


def object_suffixes(max_objects: int) -> list[str]:
    """Every suffix an input's files may take (for :class:`avscene.files.OutputNames`)."""
    per_object = [f"_obj{k}{ext}" for k in range(1, max_objects + 1) for ext in (".wav", ".mp4")]
    return list(OBJECTS_OUTPUTS.values()) + per_object


def colour_of(track_id: int) -> tuple[int, int, int]:
    return _COLOURS[(track_id - 1) % len(_COLOURS)]


def draw_overlay(frames: np.ndarray, result: ObjectsResult) -> np.ndarray:
    """``frames`` (T, H, W, 3) uint8 with each track's box, id and activity drawn on."""
    from PIL import Image, ImageDraw

    out = np.empty_like(frames)
    for t, frame in enumerate(frames):
        image = Image.fromarray(frame)
        draw = ImageDraw.Draw(image)
        for track in result.tracks:
            x0, y0, x1, y1 = (float(v) for v in track.boxes[t])
            colour, active = colour_of(track.id), bool(track.active[t])
            draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline=colour, width=2 if active else 1)
            label = f"{track.id}" + (" on" if active else "")
            draw.rectangle([x0, y0, x0 + 6 * len(label) + 3, y0 + 11], fill=colour if active else None,
                           outline=colour)
            draw.text((x0 + 2, y0), label, fill=(0, 0, 0) if active else colour)
        out[t] = np.asarray(image)
    return out


def highlight(frames: np.ndarray, boxes: np.ndarray, track_id: int) -> np.ndarray:
    """``frames`` with everything outside ``boxes`` (T, 4) dimmed and the box drawn."""
    inside = box_mask(boxes, frames.shape[1:3], 0.25)[..., None]  # (T, H, W, 1)
    out = np.where(inside, frames, (frames * 0.35).astype(np.uint8))
    edge = inside[..., 0] & ~box_mask(boxes, frames.shape[1:3], 0.15)
    out[edge] = colour_of(track_id)
    return out


def plot_timeline(result: ObjectsResult, path: str | os.PathLike, title: str = "") -> Path:
    """Who sounds when: one row per track (map strength and its threshold; with a separator, the
    share of the mixture's energy in its sound, right axis, dotted; active spans shaded)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(1, len(result.tracks))
    times = np.arange(len(result.maps)) / float(result.fps)
    fig, axes = plt.subplots(n, 1, figsize=(8, 1.1 * n + 0.8), sharex=True, squeeze=False)
    for ax, track in zip(axes[:, 0], result.tracks):
        colour = np.array(colour_of(track.id)) / 255
        ax.fill_between(times, 0, 1, where=track.active, transform=ax.get_xaxis_transform(), color=colour, alpha=0.3)
        ax.plot(times, track.strength, color=colour)
        ax.axhline(result.options.activity_threshold, color="grey", lw=0.8, ls="--")
        if track.share is not None:
            share_ax = ax.twinx()
            share_ax.plot(times, track.share, color=colour, ls=":", lw=1)
            share_ax.set_ylim(0, 1)
            share_ax.set_ylabel("sound share", fontsize=7)
        ax.set_ylabel(f"#{track.id}", rotation=0, labelpad=14)
    if not result.tracks:
        axes[0, 0].text(0.5, 0.5, "no object found", ha="center", transform=axes[0, 0].transAxes)
    axes[-1, 0].set_xlabel("time (s)")
    axes[0, 0].set_title(title or "objects: map strength in each box (shaded: active)", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return Path(path)


def _timeline_title(name: str, network: dict) -> str:
    """The timeline's title: the input, the network that made it, and its caveat in short."""
    title = f"{name}: who sounds when"
    made_by = network.get("network") or {}
    if made_by.get("name"):
        title += f"\nnetwork {Path(str(made_by['name'])).name} [{made_by.get('sha256', '?')}]"
    if network.get("caveat"):
        title += "; trained only on the synthetic world: not meaningful on real video"
    return title


def _write_video(path: Path, frames: np.ndarray, fps, audio: np.ndarray, sample_rate: int) -> Path:
    from avscene.media import write_video

    with atomic_path(path) as tmp:
        write_video(tmp, frames, fps, audio=audio, sample_rate=sample_rate)
    return path


def write_objects_outputs(result: ObjectsResult, frames: np.ndarray, audio: np.ndarray, out_dir: str | os.PathLike,
                          name: str, *, network: dict | None = None, to_picture: float = 1.0) -> dict[str, Path]:
    """Write the files of the module docstring for ``result`` of :func:`find_objects` on
    ``frames`` (T, H, W, 3) and ``audio`` (N, C) (the media it ran on); ``to_picture`` scales the
    JSON's boxes to the original picture. Returns the paths by kind."""
    from avscene.media.writer import write_wav

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {kind: out / f"{name}{suffix}" for kind, suffix in OBJECTS_OUTPUTS.items()}
    _write_video(paths["video"], draw_overlay(frames, result), result.fps, audio, result.sample_rate)
    plot_timeline(result, paths["timeline"], title=_timeline_title(name, network or {}))
    for track in result.tracks:
        if track.sound is None:
            continue
        paths[f"obj{track.id}_wav"] = write_wav(out / f"{name}_obj{track.id}.wav", track.sound, result.sample_rate)
        paths[f"obj{track.id}_video"] = _write_video(out / f"{name}_obj{track.id}.mp4",
                                                     highlight(frames, track.boxes, track.id), result.fps,
                                                     track.sound[:, None], result.sample_rate)
    meta = result.to_dict(to_picture)
    meta.update(network or {})
    meta["files"] = {kind: p.name for kind, p in paths.items()}
    for entry in meta["objects"]:
        entry["files"] = {k.split("_")[1]: p.name for k, p in paths.items() if k.startswith(f"obj{entry['id']}_")}
    write_json(paths["json"], meta)
    return paths
