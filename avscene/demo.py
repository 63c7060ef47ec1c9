"""The main job, ``avscene demo``: the system end to end on the synthetic world.

This first stage generates a small synthetic set for each task (sync, localize, separation,
action) and describes what it made, and probes the real videos it is given. Steps that already
finished (a set with its manifest) are reused when the demo is run again. Later stages (shift
pretraining, localization, separation, action recognition and the results page) add steps here.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from avscene.data.videos import find_videos
from avscene.files import write_json
from avscene.media import MediaError, probe
from avscene.synth import SceneConfig, write_dataset

#: Scenes per task at the default budget (about a minute of generation on a 2-core CPU).
SCENES_PER_TASK = {"sync": 24, "localize": 12, "separation": 12, "action": 16}


def _describe_set(manifest_path: Path) -> str:
    manifest = json.loads(manifest_path.read_text())
    scenes = manifest["scenes"]
    duration = sum(s.get("duration_s", 0.0) for s in scenes)
    line = f"{len(scenes)} scenes, {duration:.0f} s of video"
    labels = Counter(s.get("label_name") for s in scenes if s.get("label_name"))
    if labels:
        line += f", classes: {', '.join(f'{k} x{v}' for k, v in sorted(labels.items()))}"
    return line


def run_demo(out: str | Path, *, minutes: float = 15.0, clips: str | Path | None = None, seed: int = 0) -> Path:
    """Run the demo into ``out``; returns the path of its summary (``summary.json``)."""
    out = Path(out)
    scale = max(0.25, minutes / 15.0)
    summary: dict = {"synthetic": {}, "real_clips": []}
    for i, (task, n) in enumerate(SCENES_PER_TASK.items()):
        folder = out / "synthetic" / task
        manifest = folder / "manifest.json"
        if not manifest.exists():
            write_dataset(folder, max(2, round(n * scale)), seed + 1000 * i, task=task,
                          config=SceneConfig(task=task))
        description = _describe_set(manifest)
        print(f"[synth] {task:10s} {description} -> {folder}")
        summary["synthetic"][task] = {"folder": str(folder), "description": description}
    if clips is not None and Path(clips).exists():
        for path in find_videos(clips):
            try:
                info = probe(path)
            except MediaError as err:
                print(f"[clips] {err}")
                summary["real_clips"].append({"path": str(path), "error": err.reason})
                continue
            print(f"[clips] {path.name}: {info.width}x{info.height} @ {float(info.fps):.2f} fps, "
                  f"{info.duration_s:.1f} s, audio {info.sample_rate} Hz x{info.channels}")
            summary["real_clips"].append(info.to_dict())
    return write_json(out / "summary.json", summary)
