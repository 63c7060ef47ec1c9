"""Sync versus correspondence: the fused shift network against the two-tower family (issue 29).

Every family trains on the **same synthetic scenes** (``--scenes`` training scenes of the
``pulses`` world, the shift benchmark's; 10 % more held out for validation) with the **same
budget**: ``--steps`` steps of 16 clips of 1.07 s at 64 x 64 px, cosine schedule, one data
worker, through the library's trainers (:func:`avscene.train.loop.fit`):

==========  ==========================================================  ======================
family      network                                                     objective, optimiser
==========  ==========================================================  ======================
``shift``   fused shift net, ``small-cam`` (8-px CAM cells)               sync (shifted audio of the
                                                                        same video), SGD lr 1e-2
``l3``      two towers, ``small`` preset (2D over the middle frame,      L3 binary, AdamW 1e-3
            8-px cells), negatives from other videos
``avenet``  the same towers                                             AVE-Net distance, AdamW 1e-3
``infonce`` the same towers                                             InfoNCE over the batch, AdamW 1e-3
==========  ==========================================================  ======================

Then, on held-out scenes of other seeds (generated in memory, the same for every family and
seed; frames resized to the training frames' 73 px and centre-cropped, as training reads them):

* **retrieval**: one window from each of ``--retrieval-scenes`` sync scenes of the same world;
  recall@1 and @5, sound -> picture and picture -> sound, against chance ``k / n``. The
  two-tower nets compare embeddings; the shift net scores every (picture, sound) pair with its
  sync logit (n x n passes).
* **pointing game** (:mod:`benchmarks.localize`'s scoring, ``window_extent``): the peak of a
  window's time-averaged map (signed CAM for the shift net, cosine similarity map for the two
  towers) falls in the sounding object's box over the window; scenes of one sounding object and
  1-2 silent look-alikes, each in its own cell of a 192-px picture, seen whole at 146 px (the
  scale of training). Chance: the box's share of the picture, and ``1 / objects``.
* **linear probe** on the synthetic action task: features of 2 clips per scene, averaged (the
  shift net's fused conv5 features; the two towers' ``[picture, sound]`` embeddings), a
  multinomial logistic regression (L-BFGS, L2 1e-3) on ``--probe-per-class`` labelled scenes per
  class, top-1 on ``--probe-test-per-class`` others. Chance 1/8.

Three seeds (initial weights, example order) by default; mean, std, min and max per family.
``--untrained`` evaluates the networks at their initial weights instead (a control: what the
architectures and front ends give without learning; ``--results-name correspondence_untrained``).
Training runs are kept under ``--out`` and reused at the same budget (``--fresh`` retrains).

    flock /tmp/avscene-cpu.lock python benchmarks/correspondence.py [--steps 400] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from common import RESULTS, record_training_time, reuse_or_start, write_result
from localize import frame_maps, scene_config, score

from avscene.checkpoints import load_model
from avscene.constants import frame_to_sample
from avscene.data.clips import full_size_for
from avscene.data.shift_pairs import center_crop, frames_to_video
from avscene.files import atomic_path
from avscene.infer.localize import fit_frames
from avscene.models import get_preset as shift_preset
from avscene.models.two_tower import get_preset as two_tower_preset
from avscene.synth import SceneConfig, generate_scene
from avscene.synth.actions import ACTION_CLASSES
from avscene.synth.worlds import SYNTHETIC_ACTION_SCENE_S, SYNTHETIC_SYNC_WORLDS, write_synthetic_sync_data
from avscene.train.correspondence import make_correspondence_task
from avscene.train.loop import TrainConfig, fit
from avscene.train.shift import make_shift_task

FAMILIES = ("shift", "l3", "avenet", "infonce")
WORLD = "pulses"


def model_config(family: str):
    return shift_preset("small-cam") if family == "shift" else two_tower_preset("small", objective=family)


def train(family: str, seed: int, data: tuple[Path, Path], args) -> tuple[Path, dict]:
    """Train (or reuse) one family's network at the shared budget; its checkpoint and timing."""
    run_dir = args.out / f"{family}_seed{seed}"
    optimizer, lr = ("sgd", 1e-2) if family == "shift" else ("adamw", 1e-3)
    budget = {"family": family, "seed": seed, "scenes": args.scenes, "world": WORLD, "global_batch": 16, "n_val": args.n_val,
              "optimizer": optimizer, "lr": lr, "schedule": "cosine", "steps": args.steps}
    done = reuse_or_start(run_dir, budget, args.steps, args.fresh)
    cfg = model_config(family)
    if family == "shift":
        task = make_shift_task(data[0], cfg, val_data=data[1], seed=seed, n_val=args.n_val)
    else:
        task = make_correspondence_task(data[0], cfg, val_data=data[1], seed=seed, n_val=args.n_val)
    train_cfg = TrainConfig(out_dir=str(run_dir), steps=args.steps, global_batch=16, micro_batch=16,
                            optimizer=optimizer, lr=lr, schedule="cosine", val_every=args.steps,
                            ckpt_every=args.steps, log_every=10, num_workers=1, seed=seed, resume=not args.fresh)
    t0 = time.perf_counter()
    checkpoint = fit(task, train_cfg)
    return checkpoint, record_training_time(run_dir, done, args.steps, time.perf_counter() - t0)


def untrained(family: str, seed: int) -> torch.nn.Module:
    """The family's network at the initial weights its training run starts from (seed ``seed``)."""
    from avscene.models import ShiftNet, TwoTowerNet

    torch.manual_seed(seed)
    cfg = model_config(family)
    return (ShiftNet(cfg) if family == "shift" else TwoTowerNet(cfg)).eval()


def as_trained(frames: np.ndarray, crop: int) -> np.ndarray:
    """Frames as training reads them: resized to cover ``full_size_for(crop)`` px, centre crop."""
    return center_crop(fit_frames(frames, full_size_for(crop), "crop"), crop)


def window(scene, start: int, n: int, cfg) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``[start, start + n)`` as trained on, and their audio (N, C)."""
    s0 = frame_to_sample(start, cfg.fps, cfg.sample_rate)
    return as_trained(scene.frames[start : start + n], cfg.crop_size), scene.audio[s0 : s0 + cfg.n_samples]


@torch.no_grad()
def pair_scores(model, family: str, clips: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """(n, n) scores, picture i (rows) with sound j (columns)."""
    video = frames_to_video(torch.from_numpy(np.stack([f for f, _ in clips])))  # (n, 3, T, H, W)
    audio = torch.from_numpy(np.stack([a.T for _, a in clips]).copy())  # (n, C, N)
    if family == "shift":
        return np.stack([model.score_audios(video[i : i + 1], audio).numpy() for i in range(len(clips))])
    v, _ = model.embed_video(video)
    return (v @ model.embed_audio(audio).T).numpy()


def recall(scores: np.ndarray, k: int) -> dict:
    """Recall@k both ways of (picture, sound) scores whose diagonal holds the true pairs."""
    n = len(scores)
    truth = np.arange(n)
    sound_to_picture = (scores >= scores[truth, truth][None, :]).sum(axis=0)  # rank of the true picture, 1 = best
    picture_to_sound = (scores >= scores[truth, truth][:, None]).sum(axis=1)
    return {"audio_to_video": float(np.mean(sound_to_picture <= k)),
            "video_to_audio": float(np.mean(picture_to_sound <= k)), "chance": k / n}


def retrieval_set(cfg, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    config = SceneConfig(task="sync", fps=cfg.fps, sample_rate=cfg.sample_rate, **SYNTHETIC_SYNC_WORLDS[WORLD])
    clips = []
    for i in range(n):
        scene = generate_scene(config, 30_000 + i)
        clips.append(window(scene, (scene.n_frames - cfg.n_frames) // 2, cfg.n_frames, cfg))
    return clips


def localize_set(cfg, n: int) -> list[dict]:
    """Windows of localize scenes: frames (whole picture), audio, the sounding object's extent and
    all objects' extents over the window."""
    config = scene_config(WORLD, cfg, "apart")
    windows = []
    for i in range(n):
        scene = generate_scene(config, 40_000 + i)
        target = next(j for j, o in enumerate(scene.objects) if o.sounding)
        for t in range(0, scene.n_frames - cfg.n_frames + 1, cfg.n_frames):
            s0 = frame_to_sample(t, cfg.fps, cfg.sample_rate)
            extents = np.stack([np.r_[o.boxes[t : t + cfg.n_frames, :2].min(0), o.boxes[t : t + cfg.n_frames, 2:].max(0)]
                                for o in scene.objects]).astype(float)
            windows.append({"frames": scene.frames[t : t + cfg.n_frames], "audio": scene.audio[s0 : s0 + cfg.n_samples],
                            "extents": extents, "target": target})
    return windows


def pointing(model, windows: list[dict], size: int, keep: int = 0) -> tuple[dict, list[np.ndarray]]:
    """Pointing game over ``windows`` (time-averaged signed maps); the first ``keep`` maps."""
    rows, maps = [], []
    for w in windows:
        window_map = np.nanmean(frame_maps(model, w["frames"], w["audio"], size, "squash"), axis=0)  # (H, W)
        rows.append(score(window_map, w["extents"], w["target"]))
        if len(maps) < keep:
            maps.append(window_map)
    return {"pointing_accuracy": float(np.mean([r["hit"] for r in rows])),
            "object_choice_accuracy": float(np.mean([r["object"] for r in rows])),
            "chance_box_area": float(np.mean([r["chance"] for r in rows])),
            "random_lookalike_rate": float(np.mean([1 / r["objects"] for r in rows])), "windows": len(rows)}, maps


def probe_set(cfg, per_class: int, seed: int) -> tuple[list[list[tuple[np.ndarray, np.ndarray]]], np.ndarray]:
    """Two clips of each of ``per_class`` action scenes per class; labels."""
    base = SceneConfig(task="action", fps=cfg.fps, sample_rate=cfg.sample_rate, duration_s=SYNTHETIC_ACTION_SCENE_S)
    scenes, labels = [], []
    for i in range(per_class * len(ACTION_CLASSES)):
        scene = generate_scene(dataclasses.replace(base, label=i % len(ACTION_CLASSES)), seed + i)
        starts = (0, scene.n_frames - cfg.n_frames)
        scenes.append([window(scene, s, cfg.n_frames, cfg) for s in starts])
        labels.append(scene.label)
    return scenes, np.asarray(labels)


@torch.no_grad()
def features(model, family: str, scenes) -> np.ndarray:
    """(n, F) features per scene, averaged over its clips."""
    out = []
    for clips in scenes:
        video = frames_to_video(torch.from_numpy(np.stack([f for f, _ in clips])))
        audio = torch.from_numpy(np.stack([a.T for _, a in clips]).copy())
        if family == "shift":
            feats = model.embed(video, audio)
        else:
            feats = torch.cat([model.embed_video(video)[0], model.embed_audio(audio)], dim=1)
        out.append(feats.mean(0).numpy())
    return np.stack(out)


def linear_probe(train_x, train_y, test_x, test_y, n_classes: int, weight_decay: float = 1e-3) -> float:
    """Top-1 of a multinomial logistic regression on standardised features."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    x, xt = (torch.from_numpy((a - mean) / std).float() for a in (train_x, test_x))
    y = torch.from_numpy(train_y).long()
    weights = torch.zeros(x.shape[1], n_classes, requires_grad=True)
    bias = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([weights, bias], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weights + bias, y) + weight_decay * weights.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float(((xt @ weights + bias).argmax(1).numpy() == test_y).mean())


def summary(values: list[float]) -> dict:
    v = np.asarray(values, float)
    return {"mean": round(float(v.mean()), 4), "std": round(float(v.std()), 4), "min": round(float(v.min()), 4),
            "max": round(float(v.max()), 4), "seeds": [round(float(x), 4) for x in v]}


def evaluate(model, family: str, sets: dict, size: int, keep: int) -> tuple[dict, list[np.ndarray]]:
    """Retrieval, pointing game and linear probe of one trained network."""
    scores = pair_scores(model, family, sets["retrieval"])
    point, maps = pointing(model, sets["localize"], size, keep)
    (train_scenes, train_y), (test_scenes, test_y) = sets["probe_train"], sets["probe_test"]
    probe = linear_probe(features(model, family, train_scenes), train_y, features(model, family, test_scenes), test_y,
                         len(ACTION_CLASSES))
    return {"recall_at_1": recall(scores, 1), "recall_at_5": recall(scores, 5), "pointing": point,
            "linear_probe_top1": probe}, maps


def table(per_seed: dict) -> dict:
    """Mean, std, min, max over seeds of every headline figure, per family."""
    out = {}
    for family, runs in per_seed.items():
        pick = {
            "recall_at_1_audio_to_video": lambda r: r["recall_at_1"]["audio_to_video"],
            "recall_at_1_video_to_audio": lambda r: r["recall_at_1"]["video_to_audio"],
            "recall_at_5_audio_to_video": lambda r: r["recall_at_5"]["audio_to_video"],
            "recall_at_5_video_to_audio": lambda r: r["recall_at_5"]["video_to_audio"],
            "pointing_accuracy": lambda r: r["pointing"]["pointing_accuracy"],
            "object_choice_accuracy": lambda r: r["pointing"]["object_choice_accuracy"],
            "linear_probe_top1": lambda r: r["linear_probe_top1"],
            "training_seconds": lambda r: r["training"]["seconds"],
        }
        out[family] = {name: summary([f(r) for r in runs]) for name, f in pick.items()}
    return out


def plot_maps(examples: list[dict], maps: dict, path: Path) -> None:
    """Rows: windows; columns: the picture, then each family's time-averaged map (seed 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = list(maps)
    fig, axes = plt.subplots(len(examples), 1 + len(families), figsize=(2.1 * (1 + len(families)), 2.1 * len(examples)),
                             squeeze=False)
    for row, example in enumerate(examples):
        frame = example["frames"][len(example["frames"]) // 2]
        x0, y0, x1, y1 = example["extents"][example["target"]]
        for col, name in enumerate(["picture", *families]):
            ax = axes[row, col]
            ax.imshow(frame)
            if name != "picture":
                m = maps[name][row]
                lo, hi = np.nanpercentile(m, 50), np.nanmax(m)
                ax.imshow(np.clip((m - lo) / max(hi - lo, 1e-6), 0, 1), cmap="jet", alpha=0.5)
                y, x = np.unravel_index(np.nanargmax(m), m.shape)
                ax.plot([x], [y], "w+", ms=10, mew=2)
            ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="lime", lw=1.2))
            ax.set_title(name if row == 0 else "", fontsize=9)
            ax.axis("off")
    fig.suptitle("time-averaged maps of a 1.07 s window (upper half, normalised); green: the sounding object, "
                 "+: the peak", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/bench/correspondence"))
    ap.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=400,
                    help="training steps of every family (at 150 the shift net is still at chance on its task)")
    ap.add_argument("--scenes", type=int, default=200)
    ap.add_argument("--retrieval-scenes", type=int, default=32)
    ap.add_argument("--localize-scenes", type=int, default=16)
    ap.add_argument("--probe-per-class", type=int, default=12)
    ap.add_argument("--probe-test-per-class", type=int, default=6)
    ap.add_argument("--n-val", dest="n_val", type=int, default=32, help="validation clips of each training run")
    ap.add_argument("--fresh", action="store_true", help="retrain runs that exist")
    ap.add_argument("--untrained", action="store_true",
                    help="control: evaluate each family's network at its random initialisation (no training)")
    ap.add_argument("--results-name", default="correspondence")
    args = ap.parse_args()

    t0 = time.perf_counter()
    cfg = model_config("l3")  # the rates and windows every family shares
    data = write_synthetic_sync_data(args.out / "synthetic", args.scenes, 0, cfg, world=WORLD, progress=False)
    side = scene_config(WORLD, cfg, "apart").height
    size = round(side * full_size_for(cfg.crop_size) / SceneConfig().height)
    sets = {"retrieval": retrieval_set(cfg, args.retrieval_scenes), "localize": localize_set(cfg, args.localize_scenes),
            "probe_train": probe_set(cfg, args.probe_per_class, 50_000),
            "probe_test": probe_set(cfg, args.probe_test_per_class, 60_000)}
    data_s = time.perf_counter() - t0
    per_seed, maps = {f: [] for f in args.families}, {}
    for seed in args.seeds:
        for family in args.families:
            if args.untrained:
                model, timing = untrained(family, seed), {"seconds": 0.0, "steps": 0}
            else:
                checkpoint, timing = train(family, seed, data, args)
                model = load_model(checkpoint, "cpu")
            result, family_maps = evaluate(model, family, sets, size, keep=4 if seed == args.seeds[0] else 0)
            result["training"] = timing
            per_seed[family].append(result)
            maps.setdefault(family, family_maps)
            print(f"seed {seed} {family}: R@1 a->v {result['recall_at_1']['audio_to_video']:.3f} "
                  f"v->a {result['recall_at_1']['video_to_audio']:.3f}, R@5 a->v {result['recall_at_5']['audio_to_video']:.3f}, "
                  f"pointing {result['pointing']['pointing_accuracy']:.3f}, probe {result['linear_probe_top1']:.3f}, "
                  f"trained {timing['seconds']:.0f} s", flush=True)
        report(args, sets, size, per_seed, maps, data_s, seeds_done=args.seeds[: args.seeds.index(seed) + 1])
    for family, row in table(per_seed).items():
        print(family, {k: v["mean"] for k, v in row.items()})


def report(args, sets: dict, size: int, per_seed: dict, maps: dict, data_s: float, seeds_done: list[int]) -> None:
    """Write the figure and the JSON of the seeds done so far (rewritten after every seed)."""
    figure = RESULTS / f"{args.results_name}_maps.png"
    plot_maps(sets["localize"][:4], maps, figure)
    first = per_seed[args.families[0]][0]["pointing"]
    write_result(args.results_name, {
        "world": WORLD, "train_scenes": args.scenes, "steps": 0 if args.untrained else args.steps, "global_batch": 16, "seeds": seeds_done,
        "complete": seeds_done == args.seeds,
        "models": {f: model_config(f).to_dict() for f in args.families},
        "retrieval_scenes": args.retrieval_scenes, "localize_windows": len(sets["localize"]), "map_input_side": size,
        "probe": {"train_per_class": args.probe_per_class, "test_per_class": args.probe_test_per_class,
                  "classes": len(ACTION_CLASSES), "chance": 1 / len(ACTION_CLASSES)},
        "chance": {"recall_at_1": 1 / args.retrieval_scenes, "recall_at_5": 5 / args.retrieval_scenes,
                   "pointing_box_area": first["chance_box_area"], "pointing_random_lookalike": first["random_lookalike_rate"]},
        "summary": table(per_seed), "per_seed": per_seed, "data_seconds": round(data_s, 1), "figure": figure.name,
        "note": "timings on a 2-core CPU shared with other jobs",
    })

if __name__ == "__main__":
    main()
