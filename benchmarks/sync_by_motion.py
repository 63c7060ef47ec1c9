"""Held-out sync accuracy of a shift checkpoint, broken down by the motion of the sounding object.

``benchmarks/shift.py`` gives one number per world. On a world of several motion kinds (``motions``,
``full``) that number hides which audio-visual cues the net has learnt: the pulse net fine-tuned
on ``motions`` for 1000 steps scores 0.57 overall because it solves the pulses it already knew and
guesses on the four other kinds. This script scores each kind on its own: the test scenes (by
default the ones ``benchmarks/shift.py`` wrote beside the run) are grouped by the motion of their
sounding object, and each group gets the same test as ``shift.py`` (aligned vs shifted audio,
centre crop, ``--clips-per-scene`` clips per scene, at most ``--max-clips`` per kind).

Result: ``benchmarks/results/<--results-name>.json`` (default ``<run name>_by_motion``).

    python benchmarks/sync_by_motion.py --model runs/bench/shift_small_motions4k/run/checkpoint.pt
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import torch

from common import write_result

from avscene.checkpoints import load_model
from avscene.data.videos import VideoIndex, index_videos
from avscene.train.shift import ShiftTask, shift_sampling


def sounding_motion(video_path: str) -> str:
    """Motion kind of the scene's sounding object (its ground-truth record), ``none`` if silent."""
    record = json.loads(Path(video_path).with_suffix(".json").read_text())
    kinds = [obj["kind"] for obj in record["objects"] if obj["sounding"]]
    return kinds[0] if kinds else "none"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="a shift checkpoint (.../run/checkpoint.pt)")
    ap.add_argument("--scenes", type=Path, default=None,
                    help="synthetic sync scenes with ground truth (default: the run's synthetic/test)")
    ap.add_argument("--clips-per-scene", type=int, default=16)
    ap.add_argument("--max-clips", type=int, default=256)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--results-name", default=None)
    args = ap.parse_args()
    run_root = args.model.parent.parent
    scenes = args.scenes or run_root / "synthetic" / "test"
    if not (scenes / "manifest.json").is_file():
        ap.error(f"{scenes}: no synthetic scene set (manifest.json) here; pass --scenes")

    model = load_model(args.model, "cpu").eval()
    cfg = model.config
    sampling = shift_sampling(cfg, negatives="shift", shift_range_s=None, augment=False)
    index = index_videos(scenes, min_duration_s=sampling.min_video_s)
    groups: dict[str, list] = defaultdict(list)
    for video in index.videos:
        groups[sounding_motion(video.path)].append(video)

    t0 = time.perf_counter()
    by_motion = {}
    with torch.no_grad():
        for kind, videos in sorted(groups.items()):
            subset = VideoIndex(tuple(videos), ())
            n_clips = min(args.max_clips, args.clips_per_scene * len(videos))
            test = ShiftTask(cfg, subset, subset, n_val=n_clips, seed=args.seed).validate(model, torch.device("cpu"))
            by_motion[kind] = {"scenes": len(videos), "clips": n_clips,
                               "accuracy": round(test["acc"], 4), "loss": round(test["loss"], 4)}
            print(f"{kind:8s} {len(videos):3d} scenes {n_clips:4d} clips   accuracy {test['acc']:.3f}   "
                  f"loss {test['loss']:.3f}", flush=True)

    write_result(args.results_name or f"{run_root.name}_by_motion", {
        "model": str(args.model), "scenes": str(scenes), "chance": 0.5,
        "test": "aligned vs shifted audio (the shift benchmark's range), centre crop, same clips for every model "
                "given the same --seed and scenes",
        "by_motion": by_motion, "seconds": round(time.perf_counter() - t0, 1),
    })


if __name__ == "__main__":
    main()
