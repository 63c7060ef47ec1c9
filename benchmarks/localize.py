"""Sound-source localization by class activation maps: the pointing game on held-out synthetic
scenes with one sounding object and one or two silent look-alikes (issue 4: >= 85 %).

Scenes: the ``localize`` task of the synthetic world in the ``pulses`` world the shift network
was pretrained on (:data:`avscene.train.shift.SYNTHETIC_SYNC_WORLDS`): one object pulses with
its tone or hiss bursts, 1-2 silent distractors of the same shape family pulse on their own
irregular schedules, so only audio-visual co-occurrence says which one sounds.

Each scene is cut into model windows (1.07 s for ``small``). The CAM (eval mode, bias included)
has one time slice per 8 frames (0.27 s); each slice is averaged over its frames already by the
network. Per slice, the map is put back onto the scene's 96 x 96 pixels (:func:`cam_to_frame`)
and its peak is **assigned to an object**: the object whose box (at the slice's middle frame)
holds the peak, the nearest box centre deciding when boxes overlap; no object when it lies
outside every box. A **hit** when that object is the sounding one, a **distractor hit** when it
is a silent one. **Chance**: the fraction of the picture the sounding object's box covers, and
``1 / objects`` for a map that picks one of the look-alikes at random.

(A first version scored the peak of a whole window's map against each object's box *united over
the window*; moving, growing objects made those boxes cover most of the picture and overlap, so
it reported 0.88 for a 2x2-cell map that could not localize at all: the slice boxes fix that.)

Two maps: the release's ``|CAM|`` and the signed CAM (positive = evidence that the sound is in
sync there). With aligned audio, a silent pulsing distractor gives confident evidence of
*misalignment*, which ``|CAM|`` lights up as brightly as the sounding object.

Control: the same windows with the audio of another scene. If the maps follow the sound, the
hit rate falls towards the rate of picking a look-alike at random.

    python benchmarks/localize.py [--model runs/bench/shift2/run/checkpoint.pt]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from common import RESULTS, write_result

from avscene.checkpoints import load_model
from avscene.constants import frame_to_sample
from avscene.infer.localize import cam_clip, cam_stride, cam_to_frame, fit_frames
from avscene.synth import SceneConfig, generate_scene
from avscene.train.shift import SYNTHETIC_SYNC_WORLDS

MAPS = ("abs", "signed")


def pointed_object(boxes: np.ndarray, x: int, y: int) -> int | None:
    """Index of the object a peak at pixel (x, y) points at: among the (K, 4) boxes
    (x0, y0, x1, y1) that hold it, the one with the nearest centre; None if none holds it."""
    holding = [k for k, (x0, y0, x1, y1) in enumerate(boxes) if x0 <= x + 0.5 <= x1 and y0 <= y + 0.5 <= y1]
    if not holding:
        return None
    centres = (boxes[holding, :2] + boxes[holding, 2:]) / 2
    return holding[int(np.argmin(((centres - (x + 0.5, y + 0.5)) ** 2).sum(1)))]


def slice_maps(model, frames, audio, fit="crop") -> dict[str, np.ndarray]:
    """CAM slices of one window on the frames' pixel grid: {"abs", "signed"} -> (T', H, W),
    NaN where the crop does not see the frame."""
    cfg = model.config
    cam = cam_clip(model, fit_frames(frames, cfg.crop_size, fit), audio, absolute=False)  # (T', h, w)
    signed = cam_to_frame(cam, frames.shape[1:3], cfg, fit=fit)
    return {"abs": np.abs(signed), "signed": signed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("runs/bench/shift2/run/checkpoint.pt"))
    ap.add_argument("--world", choices=sorted(SYNTHETIC_SYNC_WORLDS), default="pulses")
    ap.add_argument("--scenes", type=int, default=60)
    ap.add_argument("--seed", type=int, default=40_000)
    ap.add_argument("--sheet", type=Path, default=RESULTS / "localize_sheet.png")
    args = ap.parse_args()

    model = load_model(args.model, "cpu")
    cfg = model.config
    world = {k: v for k, v in SYNTHETIC_SYNC_WORLDS[args.world].items() if k != "n_objects"}
    config = SceneConfig(task="localize", fps=cfg.fps, sample_rate=cfg.sample_rate, **world)
    n, stride_t = cfg.n_frames, cam_stride(cfg)[0]

    t0 = time.perf_counter()
    scenes = [generate_scene(config, args.seed + i) for i in range(args.scenes)]
    rows = {(kind, m): [] for kind in ("real", "control") for m in MAPS}
    examples = []
    for i, scene in enumerate(scenes):
        other = scenes[(i + 1) % len(scenes)]
        target = [j for j, o in enumerate(scene.objects) if o.sounding]
        assert len(target) == 1, "localize scenes have exactly one sounding object"
        target = target[0]
        for t in range(0, scene.n_frames - n + 1, n):
            s0, s1 = frame_to_sample(t, cfg.fps, cfg.sample_rate), frame_to_sample(t + n, cfg.fps, cfg.sample_rate)
            frames = scene.frames[t : t + n]
            for kind, audio in (("real", scene.audio[s0:s1]), ("control", other.audio[s0:s1])):
                maps = slice_maps(model, frames, audio)
                for k in range(maps["abs"].shape[0]):
                    f = min(t + k * stride_t + stride_t // 2, scene.n_frames - 1)
                    boxes = np.stack([o.boxes[f] for o in scene.objects]).astype(np.float64)  # (K, 4)
                    x0, y0, x1, y1 = np.round(boxes[target]).astype(int)
                    inside = np.zeros(maps["abs"].shape[1:], bool)
                    inside[max(0, y0):y1, max(0, x0):x1] = True
                    seen = ~np.isnan(maps["abs"][k])
                    for m in MAPS:
                        cam = maps[m][k]
                        y, x = np.unravel_index(np.nanargmax(cam), cam.shape)
                        hit = pointed_object(boxes, x, y)
                        rows[kind, m].append({
                            "hit": hit == target, "distractor": hit is not None and hit != target,
                            "chance": float((inside & seen).sum() / seen.sum()),
                            "inside": float(np.nanmean(cam[inside & seen])) if (inside & seen).any() else np.nan,
                            "outside": float(np.nanmean(cam[~inside & seen])),
                            "objects": len(boxes),
                        })
                        if kind == "real" and m == "signed" and len(examples) < 6 and t == n and k == 1:
                            examples.append((frames[k * stride_t + stride_t // 2], cam, boxes[target], (x, y)))
    elapsed = time.perf_counter() - t0

    def summary(rs):
        return {"slices": len(rs),
                "pointing_accuracy": round(float(np.mean([r["hit"] for r in rs])), 4),
                "distractor_rate": round(float(np.mean([r["distractor"] for r in rs])), 4),
                "chance_box_area": round(float(np.mean([r["chance"] for r in rs])), 4),
                "random_lookalike_rate": round(float(np.mean([1 / r["objects"] for r in rs])), 4),
                "mean_map_inside": round(float(np.nanmean([r["inside"] for r in rs])), 4),
                "mean_map_outside": round(float(np.nanmean([r["outside"] for r in rs])), 4)}

    table = {m: {"real_audio": summary(rows["real", m]), "control_other_scene_audio": summary(rows["control", m])}
             for m in MAPS}
    _contact_sheet(examples, args.sheet)
    best = max(MAPS, key=lambda m: table[m]["real_audio"]["pointing_accuracy"])
    real, control = table[best]["real_audio"], table[best]["control_other_scene_audio"]
    result = {"model": str(args.model), "world": args.world, "scenes": args.scenes, "seed": args.seed,
              "window_frames": n, "slice_frames": stride_t, "maps": table, "best_map": best,
              "seconds": round(elapsed, 1), "contact_sheet": str(args.sheet.name),
              "target": "pointing accuracy >= 0.85 with real audio; control loses most of it",
              "met": bool(real["pointing_accuracy"] >= 0.85
                          and control["pointing_accuracy"] <= (real["pointing_accuracy"] + real["random_lookalike_rate"]) / 2)}
    for m in MAPS:
        r, c = table[m]["real_audio"], table[m]["control_other_scene_audio"]
        print(f"{m:>6} map: pointing {r['pointing_accuracy']:.3f} (distractor {r['distractor_rate']:.3f}, "
              f"box-area chance {r['chance_box_area']:.3f}, look-alike chance {r['random_lookalike_rate']:.3f}); "
              f"with another scene's audio {c['pointing_accuracy']:.3f} (distractor {c['distractor_rate']:.3f})")
    write_result("localize", result)


def _contact_sheet(examples, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(examples), figsize=(2.2 * len(examples), 2.4))
    for ax, (frame, cam, box, (x, y)) in zip(np.atleast_1d(axes), examples):
        ax.imshow(frame)
        ax.imshow(np.clip(np.nan_to_num(cam), 0, None), cmap="jet", alpha=0.45)
        x0, y0, x1, y1 = box
        ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="lime", lw=1.5))
        ax.plot([x], [y], "w+", ms=10, mew=2)
        ax.axis("off")
    fig.suptitle("signed CAM slice (0.27 s), positive part; green: the sounding object, +: the peak", fontsize=9)
    fig.tight_layout()
    from avscene.files import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
