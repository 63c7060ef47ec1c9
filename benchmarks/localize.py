"""Sound-source localization by class activation maps: the pointing game on held-out synthetic
scenes with one sounding object and one or two silent look-alikes (issue 4: >= 85 %).

Scenes: the ``localize`` task of the synthetic world in the ``pulses`` world the shift network
was pretrained on (:data:`avscene.train.shift.SYNTHETIC_SYNC_WORLDS`): one object pulses with
its tone or hiss bursts, 1-2 silent distractors of the same shape family pulse on their own
irregular schedules, so only audio-visual co-occurrence says which one sounds.

Each scene is cut into model windows (1.07 s for ``small``). Per window: the CAM (eval mode,
absolute value, bias included) averaged over time, mapped back onto the scene's 96 x 96 pixels
(:func:`cam_to_frame`); a **hit** when its peak lies inside the sounding object's box (the union
of its boxes over the window's frames); a **distractor hit** when it lies in a silent object's
box instead. **Chance** is the fraction of the picture the sounding object's box covers.

Control: the same windows with the audio of another scene. If the maps follow the sound, the
hit rate falls towards the rate of picking one of the look-alikes at random.

    python benchmarks/localize.py [--model runs/bench/shift/run/checkpoint.pt]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from common import RESULTS, write_result

from avscene.checkpoints import load_model
from avscene.constants import frame_to_sample
from avscene.infer.localize import cam_clip, cam_to_frame, fit_frames
from avscene.synth import SceneConfig, generate_scene
from avscene.train.shift import SYNTHETIC_SYNC_WORLDS


def union_box(boxes: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) pixel edges covering ``boxes`` (T, 4)."""
    return (int(np.floor(boxes[:, 0].min())), int(np.floor(boxes[:, 1].min())),
            int(np.ceil(boxes[:, 2].max())), int(np.ceil(boxes[:, 3].max())))


def inside(box, x: int, y: int) -> bool:
    x0, y0, x1, y1 = box
    return x0 <= x < x1 and y0 <= y < y1


def score_window(model, frames, audio, fit="crop") -> np.ndarray:
    """Time-averaged CAM of one window on the frames' pixel grid, (H, W) with NaN where unseen."""
    cfg = model.config
    cam = cam_clip(model, fit_frames(frames, cfg.crop_size, fit), audio)  # (T', h, w)
    return cam_to_frame(cam.mean(0), frames.shape[1:3], cfg, fit=fit)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("runs/bench/shift/run/checkpoint.pt"))
    ap.add_argument("--world", choices=sorted(SYNTHETIC_SYNC_WORLDS), default="pulses")
    ap.add_argument("--scenes", type=int, default=60)
    ap.add_argument("--seed", type=int, default=40_000)
    ap.add_argument("--sheet", type=Path, default=RESULTS / "localize_sheet.png")
    args = ap.parse_args()

    model = load_model(args.model, "cpu")
    cfg = model.config
    world = {k: v for k, v in SYNTHETIC_SYNC_WORLDS[args.world].items() if k != "n_objects"}
    config = SceneConfig(task="localize", fps=cfg.fps, sample_rate=cfg.sample_rate, **world)
    n = cfg.n_frames

    t0 = time.perf_counter()
    scenes = [generate_scene(config, args.seed + i) for i in range(args.scenes)]
    stats = {"real": [], "control": []}
    examples = []
    for i, scene in enumerate(scenes):
        other = scenes[(i + 1) % len(scenes)]
        sounding = [j for j, o in enumerate(scene.objects) if o.sounding]
        assert len(sounding) == 1, "localize scenes have exactly one sounding object"
        target = sounding[0]
        for t in range(0, scene.n_frames - n + 1, n):
            s0, s1 = frame_to_sample(t, cfg.fps, cfg.sample_rate), frame_to_sample(t + n, cfg.fps, cfg.sample_rate)
            frames = scene.frames[t : t + n]
            boxes = [union_box(o.boxes[t : t + n]) for o in scene.objects]
            for kind, audio in (("real", scene.audio[s0:s1]), ("control", other.audio[s0:s1])):
                cam = score_window(model, frames, audio)
                y, x = np.unravel_index(np.nanargmax(cam), cam.shape)
                x0, y0, x1, y1 = boxes[target]
                mask = np.zeros(cam.shape, bool)
                mask[max(0, y0):y1, max(0, x0):x1] = True
                seen = ~np.isnan(cam)
                stats[kind].append({
                    "hit": inside(boxes[target], x, y),
                    "distractor": any(inside(b, x, y) for j, b in enumerate(boxes) if j != target)
                    and not inside(boxes[target], x, y),
                    "chance": float((mask & seen).sum() / seen.sum()),
                    "inside": float(np.nanmean(cam[mask & seen])), "outside": float(np.nanmean(cam[~mask & seen])),
                    "n_distractors": len(boxes) - 1,
                })
                if kind == "real" and len(examples) < 6 and t == n:
                    examples.append((frames[n // 2], cam, boxes[target], (x, y)))
    elapsed = time.perf_counter() - t0

    def summary(rows):
        return {"windows": len(rows),
                "pointing_accuracy": round(float(np.mean([r["hit"] for r in rows])), 4),
                "distractor_rate": round(float(np.mean([r["distractor"] for r in rows])), 4),
                "chance_box_area": round(float(np.mean([r["chance"] for r in rows])), 4),
                "random_lookalike_rate": round(float(np.mean([1 / (1 + r["n_distractors"]) for r in rows])), 4),
                "mean_map_inside": round(float(np.mean([r["inside"] for r in rows])), 4),
                "mean_map_outside": round(float(np.mean([r["outside"] for r in rows])), 4)}

    real, control = summary(stats["real"]), summary(stats["control"])
    _contact_sheet(examples, args.sheet)
    result = {"model": str(args.model), "world": args.world, "scenes": args.scenes, "seed": args.seed,
              "window_frames": n, "real_audio": real, "control_other_scene_audio": control,
              "seconds": round(elapsed, 1), "contact_sheet": str(args.sheet.name),
              "target": "pointing accuracy >= 0.85 with real audio; control loses most of it",
              "met": bool(real["pointing_accuracy"] >= 0.85)}
    print(f"pointing game: {real['pointing_accuracy']:.3f} (distractor {real['distractor_rate']:.3f}, chance "
          f"{real['chance_box_area']:.3f}); with another scene's audio {control['pointing_accuracy']:.3f}")
    write_result("localize", result)


def _contact_sheet(examples, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(examples), figsize=(2.2 * len(examples), 2.4))
    for ax, (frame, cam, box, (x, y)) in zip(np.atleast_1d(axes), examples):
        ax.imshow(frame)
        ax.imshow(np.nan_to_num(cam), cmap="jet", alpha=0.45)
        x0, y0, x1, y1 = box
        ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="lime", lw=1.5))
        ax.plot([x], [y], "w+", ms=10, mew=2)
        ax.axis("off")
    fig.suptitle("time-averaged CAM; green: the sounding object, +: the map's peak", fontsize=9)
    fig.tight_layout()
    from avscene.files import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
