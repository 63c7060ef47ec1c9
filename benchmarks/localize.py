"""Sound-source localization by class activation maps: the pointing game on held-out synthetic
scenes with one sounding object and one or two silent look-alikes (issue 4: >= 85 %).

Scenes: the ``localize`` task of the ``pulses`` world the shift network was pretrained on
(:data:`avscene.train.shift.SYNTHETIC_SYNC_WORLDS`): one object pulses (grows by up to 80 % and
brightens) with its tone or hiss bursts, 1-2 silent distractors of the same shape family pulse on
their own irregular schedules, so only audio-visual co-occurrence says which one sounds. Objects
drift by a few pixels per second; their boxes are 20-40 px at rest.

Layout (``--layout``). By default (``apart``) each object wanders in its own 96 x 96 cell of a
2 x 2 grid on a 192-px picture (:class:`avscene.synth.SceneConfig` ``layout``): the same objects,
sizes, pulses and sounds as the 96-px scenes of the same seed, only apart, so the boxes never
overlap. In the training world's own ``shared`` 96-px picture (``--layout shared``) salient
objects crowd its middle: in 56 % of the windows a look-alike covers more than half of the
sounding object's box, and who "wins" a peak on the overlap is decided by the tie-break rule
below rather than by the map (``overlap_over_half`` in the result says how often).

The model (default: the ``small-cam`` preset, 8-px cells, trained by ``benchmarks/shift.py
--preset small-cam`` exactly as ``small`` is for the shift issue, then fine-tuned, still without
labels, on ``pulses-crowd`` sync scenes, where one of 1-3 look-alikes sounds, at an 84-px crop
of the 96-px frames: the command is in ``benchmarks/shift.py``) sees the **whole picture**
(``--size``, default the scenes' own side; the network is fully convolutional, so objects keep
the pixel size it learned). Each scene is cut into model windows (1.07 s); the CAM (eval mode,
bias included) has one slice per 8 frames (0.27 s) and is put back onto the picture's pixels
(:func:`cam_to_frame`). Its peak is **assigned to an object**: the one whose box holds it (the
nearest box centre deciding when boxes overlap), or none. A **hit** when that is the sounding
object, a **distractor hit** when it is a silent one.

Three ways to score:

* ``window_extent`` (the headline): the peak of the window's **time-averaged** map against each
  object's box over the window it averages (the union of its boxes). A pulsing object is up to
  1.8 times its rest size while it sounds, and a pulse's evidence is its moving rim, outside the
  rest-size box; the box of the sounding object over the averaged time is its extent;
* ``window``: the same peak against the boxes at the window's middle frame (mostly the
  rest-size box: a strict reading that counts a peak on the pulse's rim as a miss);
* ``slice``: the peak of every 0.27 s slice against the boxes at the slice's middle frame (a slice
  without a pulse carries little evidence).

Also per unit: **object choice** (the object whose box, as the unit defines it, holds the highest
mean map: does the map know which object sounds, however imprecise its peak?), the mean map inside vs
outside the sounding object's box, and **chance**: the fraction of the picture that box covers,
and ``1 / objects`` for a map that picks one of the look-alikes at random.

Two maps: the release's ``|CAM|`` and the signed CAM (positive = evidence that the sound is in
sync there). With aligned audio, a silent pulsing distractor gives confident evidence of
*misalignment*, which ``|CAM|`` lights up as brightly as the sounding object.

Control: the same windows with the audio of another scene. If the maps follow the sound, the
hit rate falls towards the rate of picking a look-alike at random.

(A first version scored a 2x2-cell map against boxes united over windows of a world whose objects
cross the picture; the united boxes covered most of it and it reported 0.88 for a map that could
not localize. Here objects move a few pixels per window and the extent's area is reported as its
chance.)

    python benchmarks/localize.py [--model runs/bench/shift_small_cam_crowd/run/checkpoint.pt] [--layout apart|shared]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from common import RESULTS, write_result

from avscene.checkpoints import load_model
from avscene.constants import frame_to_sample
from avscene.files import atomic_path
from avscene.infer.localize import cam_clip, cam_stride, cam_to_frame, fit_frames
from avscene.synth import LAYOUTS, SceneConfig, generate_scene
from avscene.synth.worlds import SYNTHETIC_SYNC_WORLDS

MAPS = ("abs", "signed")
UNITS = ("window_extent", "window", "slice")
WORLD_SIDE = SceneConfig().height  # the picture side of the synthetic sync worlds the networks learn on


def scene_config(world: str, model_cfg, layout: str = "apart") -> SceneConfig:
    """The held-out scenes: the ``localize`` task (one sounding object, 1-2 silent look-alikes) in
    the synthetic sync ``world``, at the rates of the shift-net config ``model_cfg``; ``apart``:
    each object in its own ``WORLD_SIDE`` cell of a 2 x 2 grid, ``shared``: one ``WORLD_SIDE`` picture."""
    kinds = {k: v for k, v in SYNTHETIC_SYNC_WORLDS[world].items() if k not in ("n_objects", "n_sounding")}
    side = 2 * WORLD_SIDE if layout == "apart" else WORLD_SIDE
    return SceneConfig(task="localize", fps=model_cfg.fps, sample_rate=model_cfg.sample_rate, width=side,
                       height=side, layout=layout, **kinds)


def box_overlap(boxes: np.ndarray, target: int) -> float:
    """The largest fraction of the ``target`` box (of the (K, 4) boxes) that another box covers."""
    x0, y0, x1, y1 = boxes[target]
    cover = [max(0.0, min(x1, b[2]) - max(x0, b[0])) * max(0.0, min(y1, b[3]) - max(y0, b[1]))
             for k, b in enumerate(boxes) if k != target]
    return max(cover, default=0.0) / max((x1 - x0) * (y1 - y0), 1e-9)


def pointed_object(boxes: np.ndarray, x: int, y: int) -> int | None:
    """Index of the object a peak at pixel (x, y) points at: among the (K, 4) boxes
    (x0, y0, x1, y1) that hold it, the one with the nearest centre; None if none holds it."""
    holding = [k for k, (x0, y0, x1, y1) in enumerate(boxes) if x0 <= x + 0.5 <= x1 and y0 <= y + 0.5 <= y1]
    if not holding:
        return None
    centres = (boxes[holding, :2] + boxes[holding, 2:]) / 2
    return holding[int(np.argmin(((centres - (x + 0.5, y + 0.5)) ** 2).sum(1)))]


def frame_maps(model, frames, audio, size: int, fit: str = "squash") -> np.ndarray:
    """Signed CAM slices of one window on the frames' pixel grid, the frames fitted to a ``size``
    square (the network is fully convolutional): float32 (T', H, W), NaN where not seen."""
    cam = cam_clip(model, fit_frames(frames, size, fit), audio, absolute=False)  # (T', h, w)
    return cam_to_frame(cam, frames.shape[1:3], model.config, fit=fit, size=size)


def score(cam: np.ndarray, boxes: np.ndarray, target: int) -> dict:
    """Pointing-game outcome of one (H, W) map (NaN = unseen) against the (K, 4) object boxes."""
    x0, y0, x1, y1 = np.round(boxes[target]).astype(int)
    inside = np.zeros(cam.shape, bool)
    inside[max(0, y0):y1, max(0, x0):x1] = True
    seen = ~np.isnan(cam)
    y, x = np.unravel_index(np.nanargmax(cam), cam.shape)
    hit = pointed_object(boxes, x, y)
    mass = []  # mean of the map inside each object's box: which object the map favours
    for bx0, by0, bx1, by1 in np.round(boxes).astype(int):
        mass.append(np.nanmean(cam[max(0, by0):by1, max(0, bx0):bx1]))
    return {"hit": hit == target, "distractor": hit is not None and hit != target,
            "object": int(np.nanargmax(mass)) == target,
            "chance": float((inside & seen).sum() / seen.sum()),
            "inside": float(np.nanmean(cam[inside & seen])) if (inside & seen).any() else np.nan,
            "outside": float(np.nanmean(cam[~inside & seen])), "objects": len(boxes)}


def summary(rows: list[dict]) -> dict:
    mean = lambda key: round(float(np.nanmean([r[key] for r in rows])), 4)  # noqa: E731
    return {"count": len(rows), "pointing_accuracy": mean("hit"), "distractor_rate": mean("distractor"),
            "object_choice_accuracy": mean("object"), "chance_box_area": mean("chance"),
            "random_lookalike_rate": round(float(np.mean([1 / r["objects"] for r in rows])), 4),
            "mean_map_inside": mean("inside"), "mean_map_outside": mean("outside")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("runs/bench/shift_small_cam_crowd/run/checkpoint.pt"))
    ap.add_argument("--world", choices=sorted(SYNTHETIC_SYNC_WORLDS), default="pulses")
    ap.add_argument("--layout", choices=LAYOUTS, default="apart",
                    help="apart: each object in its own 96-px cell of a 192-px picture; shared: one 96-px picture")
    ap.add_argument("--scenes", type=int, default=60)
    ap.add_argument("--seed", type=int, default=40_000)
    ap.add_argument("--size", type=int, default=None,
                    help="side the frames are fitted to (default: the scenes' own, the whole picture)")
    ap.add_argument("--fit", choices=("crop", "pad", "squash"), default="squash")
    ap.add_argument("--results-name", default="localize")
    ap.add_argument("--sheet", type=Path, default=None, help="default benchmarks/results/<results-name>_sheet.png")
    args = ap.parse_args()

    model = load_model(args.model, "cpu")
    cfg = model.config
    config = scene_config(args.world, cfg, args.layout)
    size = args.size or config.height
    sheet = args.sheet or RESULTS / f"{args.results_name}_sheet.png"
    n, stride_t = cfg.n_frames, cam_stride(cfg)[0]

    t0 = time.perf_counter()
    scenes = [generate_scene(config, args.seed + i) for i in range(args.scenes)]
    rows = {(unit, kind, m): [] for unit in UNITS for kind in ("real", "control") for m in MAPS}
    examples, overlaps = [], []
    for i, scene in enumerate(scenes):
        other = scenes[(i + 1) % len(scenes)]
        target = [j for j, o in enumerate(scene.objects) if o.sounding]
        assert len(target) == 1, "localize scenes have exactly one sounding object"
        target = target[0]
        boxes_at = lambda f: np.stack([o.boxes[min(f, scene.n_frames - 1)] for o in scene.objects]).astype(float)  # noqa: E731
        extents = lambda t0, t1: np.stack([np.r_[o.boxes[t0:t1, :2].min(0), o.boxes[t0:t1, 2:].max(0)]  # noqa: E731
                                           for o in scene.objects]).astype(float)
        for t in range(0, scene.n_frames - n + 1, n):
            s0, s1 = frame_to_sample(t, cfg.fps, cfg.sample_rate), frame_to_sample(t + n, cfg.fps, cfg.sample_rate)
            frames = scene.frames[t : t + n]
            middle, extent = boxes_at(t + n // 2), extents(t, t + n)  # (K, 4) each
            overlaps.append(box_overlap(middle, target))
            for kind, audio in (("real", scene.audio[s0:s1]), ("control", other.audio[s0:s1])):
                signed = frame_maps(model, frames, audio, size, args.fit)  # (T', H, W)
                for m, maps in (("signed", signed), ("abs", np.abs(signed))):
                    window_map = np.nanmean(maps, axis=0)  # (H, W) the window's time-averaged map
                    rows["window", kind, m].append(score(window_map, middle, target))
                    rows["window_extent", kind, m].append(score(window_map, extent, target))
                    for k in range(len(maps)):
                        rows["slice", kind, m].append(score(maps[k], boxes_at(t + k * stride_t + stride_t // 2), target))
                    if kind == "real" and m == "signed" and len(examples) < 6 and t == n:
                        examples.append((frames[n // 2], window_map, middle[target], extent[target]))
    elapsed = time.perf_counter() - t0

    table = {unit: {m: {"real_audio": summary(rows[unit, "real", m]),
                        "control_other_scene_audio": summary(rows[unit, "control", m])} for m in MAPS}
             for unit in UNITS}
    _contact_sheet(examples, sheet)
    headline = "window_extent"
    best = max(MAPS, key=lambda m: table[headline][m]["real_audio"]["pointing_accuracy"])
    real, control = table[headline][best]["real_audio"], table[headline][best]["control_other_scene_audio"]
    result = {"model": str(args.model), "model_config": cfg.to_dict(), "world": args.world, "layout": args.layout,
              "scenes": args.scenes, "seed": args.seed,
              "input": {"size": size, "fit": args.fit, "frame": [config.height, config.width]},
              "overlap_over_half": round(float(np.mean(np.asarray(overlaps) > 0.5)), 4),
              "window_frames": n, "slice_frames": stride_t, "cam_cell_px": cam_stride(cfg)[1] * config.height / size,
              "maps": table, "best_map": best, "seconds": round(elapsed, 1), "contact_sheet": sheet.name,
              "headline": headline,
              "target": f"{headline} pointing accuracy >= 0.85 with real audio; control loses most of it",
              "met": bool(real["pointing_accuracy"] >= 0.85
                          and control["pointing_accuracy"] <= (real["pointing_accuracy"] + real["random_lookalike_rate"]) / 2)}
    for unit in UNITS:
        for m in MAPS:
            r, c = table[unit][m]["real_audio"], table[unit][m]["control_other_scene_audio"]
            print(f"{unit:>13} {m:>6} map: pointing {r['pointing_accuracy']:.3f} (distractor {r['distractor_rate']:.3f}, "
                  f"object choice {r['object_choice_accuracy']:.3f}; box-area chance {r['chance_box_area']:.3f}, "
                  f"look-alike chance {r['random_lookalike_rate']:.3f}); with another scene's audio "
                  f"{c['pointing_accuracy']:.3f} (object choice {c['object_choice_accuracy']:.3f})")
    write_result(args.results_name, result)


def _contact_sheet(examples, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(examples), figsize=(2.2 * len(examples), 2.4))
    for ax, (frame, cam, box, extent) in zip(np.atleast_1d(axes), examples):
        y, x = np.unravel_index(np.nanargmax(cam), cam.shape)
        ax.imshow(frame)
        ax.imshow(np.clip(np.nan_to_num(cam), 0, None), cmap="jet", alpha=0.45)
        x0, y0, x1, y1 = box
        ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="lime", lw=1.5))
        x0, y0, x1, y1 = extent
        ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="lime", lw=1, ls="--"))
        ax.plot([x], [y], "w+", ms=10, mew=2)
        ax.axis("off")
    fig.suptitle("signed CAM averaged over a 1.07 s window, positive part; green: the sounding object at the middle "
                 "frame (dashed: over the window), +: the peak", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
