"""How well *could* a map pick the sounding object in the localization scenes? An ideal observer of
event timing on the scenes and windows of ``benchmarks/localize.py`` (issue 4).

The observer knows the ground truth a network has to infer: every object's visual event times
(its pulses) and the sound's onsets. In each window (32 frames, 1.07 s: the ``small-cam``
network's input) it scores each object: sound onsets that have one of the object's pulses within
``tau`` seconds, minus the object's pulses in the window with no onset within ``tau``. It picks the
best score and breaks ties at random (``tau`` counts whole frames: events are on the frame grid).
Its object-choice accuracy (expected over the random tie breaks) is the ceiling of
``object_choice_accuracy`` in ``localize.json`` for a network whose audio-visual timing is only as
precise as ``tau`` and which does not hear where the sound is: each source is panned by its
object's horizontal position, a cue worth little while the look-alikes crowd the middle of one
96-px picture (``--layout shared``) but not with the objects apart (the default). The layout
moves the objects, not their events, so the figures hold for both layouts.

``tau``: one frame (33 ms), 3 frames (0.1 s), and one CAM slice of ``small-cam`` (8 frames, 0.27 s).
No network is run; ~10 s.

    python benchmarks/localize_oracle.py [--scenes 60] [--seed 40000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from common import write_result
from localize import scene_config

from avscene.models import get_preset
from avscene.synth import generate_scene
from avscene.synth.worlds import SYNTHETIC_SYNC_WORLDS


def timing_scores(sound_onsets: np.ndarray, pulses: list[np.ndarray], t0: float, t1: float, tau: float) -> np.ndarray:
    """Each object's score in the window ``[t0, t1)``: onsets matched by one of its pulses within
    ``tau``, minus its pulses in the window that match no onset (all times in seconds)."""
    onsets = sound_onsets[(sound_onsets >= t0) & (sound_onsets < t1)]
    scores = []
    for times in pulses:
        near = times[(times >= t0 - tau) & (times < t1 + tau)]  # a pulse just outside may match
        inside = times[(times >= t0) & (times < t1)]
        matched = sum(bool(len(near)) and np.abs(near - x).min() <= tau + 1e-6 for x in onsets)
        unmatched = sum(not len(onsets) or np.abs(onsets - y).min() > tau + 1e-6 for y in inside)
        scores.append(matched - unmatched)
    return np.array(scores)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small-cam", help="shift-net preset whose window and CAM slice are used")
    ap.add_argument("--world", choices=sorted(SYNTHETIC_SYNC_WORLDS), default="pulses")
    ap.add_argument("--scenes", type=int, default=60)
    ap.add_argument("--seed", type=int, default=40_000, help="first scene seed (localize.py's default)")
    ap.add_argument("--results-name", default="localize_oracle")
    args = ap.parse_args()

    cfg = get_preset(args.preset)
    fps = float(cfg.fps)
    taus = {"one_frame": 1 / fps, "3_frames": 3 / fps, "cam_slice": 8 / fps}  # small-cam: a slice per 8 frames
    config = scene_config(args.world, cfg)
    n = cfg.n_frames

    t_start = time.perf_counter()
    choice = {name: [] for name in taus}  # per window: the chance the observer picks the sounding object
    unique = {name: [] for name in taus}
    for i in range(args.scenes):
        scene = generate_scene(config, args.seed + i)
        target = next(j for j, o in enumerate(scene.objects) if o.sounding)
        onsets = np.asarray(scene.objects[target].sound_events_s, float)
        pulses = [np.asarray(o.events_s, float) for o in scene.objects]
        for t in range(0, scene.n_frames - n + 1, n):
            for name, tau in taus.items():
                scores = timing_scores(onsets, pulses, t / fps, (t + n) / fps, tau)
                best = np.flatnonzero(scores == scores.max())
                choice[name].append(float(target in best) / len(best))
                unique[name].append(list(best) == [target])
    table = {name: {"tau_s": round(tau, 4), "windows": len(choice[name]),
                    "object_choice_accuracy": round(float(np.mean(choice[name])), 4),
                    "sounding_object_uniquely_best": round(float(np.mean(unique[name])), 4)}
             for name, tau in taus.items()}
    for name, row in table.items():
        print(f"tau {row['tau_s']:.3f} s ({name}): ideal object choice {row['object_choice_accuracy']:.3f} (sounding "
              f"object uniquely best in {row['sounding_object_uniquely_best']:.3f} of {row['windows']} windows)")
    write_result(args.results_name, {"preset": args.preset, "world": args.world, "scenes": args.scenes,
                                     "seed": args.seed, "window_frames": n, "observer": table,
                                     "seconds": round(time.perf_counter() - t_start, 1)})


if __name__ == "__main__":
    main()
