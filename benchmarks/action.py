"""Action recognition on the synthetic world: the *shape* of the paper's Table 1 (UCF-101).

Does self-supervised shift pretraining help a classifier that sees few labels, and does the
sound help it further? Every row gets the **same labelled budget** (``--per-class`` scenes of each
of the 8 synthetic action classes, :mod:`avscene.synth.actions`; one fixed set, the same for
every row and seed) and the **same fine-tuning budget** (``--steps`` SGD steps of ``--batch``
clips at ``--lr``, momentum 0.9, clip 5, constant schedule), through the library's real paths
(mp4 files, :func:`avscene.train.action.make_action_task`, :func:`avscene.train.loop.fit`):

============================  ===============================  ========  =======
row                           trunk starts from                audio     trunk
============================  ===============================  ========  =======
``scratch``                   random weights                   used      trained
``scratch-vision``            random weights                   zeroed    trained
``vision``                    the shift checkpoint ``--init``  zeroed    trained
``sound``                     the shift checkpoint             used      trained
``probe-vision`` (optional)   the shift checkpoint             zeroed    frozen
``probe-sound`` (optional)    the shift checkpoint             used      frozen
============================  ===============================  ========  =======

The architecture is the checkpoint's for every row (scratch too). For each row and ``--seeds``
seed (initial weights of what the checkpoint does not give, example order, augmentation) the
test score is the clip-averaged top-1 (:func:`avscene.evaluate.action.evaluate`: ``--eval-clips``
uniformly spaced, centre-cropped clips per video) on ``--test-per-class`` held-out scenes per
class of other seeds; a small validation set (other seeds again) is only watched during
training, never used to pick anything. Reported per row: mean, std, min and max over seeds, and
whether the paper's ordering *with sound > vision only > scratch* holds on the means, against
each scratch row run (the paper does not say whether its scratch network heard the sound; in this
world the classes differ in sound too, so the like-for-like baseline of the vision-only row is
``scratch-vision``). Chance is 1/8.

A run whose folder holds a checkpoint of the same budget (init, batch, lr, labelled set, seed) is
reused and, with more ``--steps``, continued (:func:`common.reuse_or_start`; another budget is an
error unless ``--fresh``), so adding a row or a seed trains only what is new.

Default budget (``small`` checkpoint): 20 labelled 4 s scenes per class (160), 120 steps of 16
clips (12 epochs) at lr 1e-2, 10 test scenes per class, 5 clips each: about 1.5 minutes per run
on a 2-core CPU, about 15 minutes for 3 rows x 3 seeds with the data (about 1 minute, written
once under ``--out`` and reused).

The claim is checked on the means and, because a seed's spread is about 0.1, also seed by seed:
``ordering.paired_margins`` gives each pair's per-seed difference (mean, standard error, seeds
ahead). The init matters: the default (the pulse net) knows one of the five motions;
``--init runs/bench/shift_small_motions4k/run/checkpoint.pt`` (pretrained on all five, see
``benchmarks/shift.py``) with ``--seeds 0 1 2 3 4 --rows scratch scratch-vision vision sound
probe-vision --out runs/bench/action_m4k --results-name action_motions4k`` gives the committed
second table.

In this world the sound alone names most classes (7 of 8), so the scratch net that hears it
beats the pretrained vision-only net. ``--unseen-action-sound P`` makes the sound ambiguous the
way real soundtracks are (music, commentary, off-camera action): with probability ``P`` a scene's
soundtrack also carries another class's sound, off-screen and as loud as the action's
(:class:`avscene.synth.SceneConfig`), so the sound names two candidates and only its agreement
with the visible motion says which one is on screen. Same init, rows, seeds and budgets with
``--unseen-action-sound 1 --out runs/bench/action_m4k_unseen --results-name
action_motions4k_unseen`` give the third table (the sets go under ``..._unseen1``): vision-only
beats both scratch rows, but the sound adds nothing to it. ``--unseen-action-sound 0.5 --out
runs/bench/action_m4k_unseen05 --results-name action_motions4k_unseen05`` (the unseen sound in
half the scenes) gives the fourth, where the whole ordering holds against both scratch rows.

Result: ``benchmarks/results/<--results-name>.json`` and ``<--results-name>_table1.png`` (bars:
mean, whiskers: min..max over seeds, dots: seeds). ``--results-name`` may be a path (e.g.
``/tmp/smoke``) to keep a trial run out of ``benchmarks/results``.

    python benchmarks/action.py [--init runs/bench/shift2/run/checkpoint.pt] [--seeds 0 1 2] [--steps N]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from common import RESULTS, record_training_time, reuse_or_start, write_result

from avscene.checkpoints import load_model, read_shift_checkpoint
from avscene.synth.worlds import SYNTHETIC_ACTION_SCENE_S, write_synthetic_action_data
from avscene.data.labelled import index_labelled
from avscene.files import atomic_path
from avscene.evaluate.action import evaluate
from avscene.synth import ACTION_CLASSES
from avscene.train.action import action_clip_frames, make_action_task
from avscene.train.loop import TrainConfig, fit
from avscene.train.runtime import pick_device


@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    pretrained: bool
    use_sound: bool
    freeze_backbone: bool = False


ROWS = {
    "scratch": Row("scratch (with sound)", pretrained=False, use_sound=True),
    "scratch-vision": Row("scratch (vision only)", pretrained=False, use_sound=False),
    "vision": Row("pretrained (vision only)", pretrained=True, use_sound=False),
    "sound": Row("pretrained (with sound)", pretrained=True, use_sound=True),
    "probe-vision": Row("linear probe (vision only)", pretrained=True, use_sound=False, freeze_backbone=True),
    "probe-sound": Row("linear probe (with sound)", pretrained=True, use_sound=True, freeze_backbone=True),
}


def summary(values: list[float]) -> dict:
    a = np.asarray(values, dtype=float)
    return {"mean": round(float(a.mean()), 4), "std": round(float(a.std(ddof=1)) if len(a) > 1 else 0.0, 4),
            "min": round(float(a.min()), 4), "max": round(float(a.max()), 4),
            "per_seed": [round(float(v), 4) for v in a]}


def paired_margin(better: list[float], worse: list[float]) -> dict:
    """How far one row is ahead of another, seed by seed (a seed fixes the head's initial weights,
    the example order and the augmentation of both runs): mean and standard error of the per-seed
    difference (None from one seed), and in how many seeds it is positive. With a few seeds and a
    spread of 0.1 between them, a gap of the means smaller than about two standard errors is not
    evidence either way."""
    d = np.asarray(better, dtype=float) - np.asarray(worse, dtype=float)
    se = round(float(d.std(ddof=1) / np.sqrt(len(d))), 4) if len(d) > 1 else None  # NaN is not JSON
    return {"mean": round(float(d.mean()), 4), "standard_error": se,
            "seeds_ahead": int((d > 0).sum()), "seeds": len(d)}


def plot_table(rows: list[dict], chance: float, path: Path, title: str) -> Path:
    """Bars of the mean top-1 per row, whiskers from the worst to the best seed, seeds as dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(rows), 3.8))
    x = np.arange(len(rows))
    means = np.array([r["top1"]["mean"] for r in rows])
    lo = means - np.array([r["top1"]["min"] for r in rows])
    hi = np.array([r["top1"]["max"] for r in rows]) - means
    ax.bar(x, means, color=["#9e9e9e" if not r["pretrained"] else "#4c72b0" if r["use_sound"] else "#8fb3de"
                            for r in rows], width=0.6)
    ax.errorbar(x, means, yerr=[lo, hi], fmt="none", ecolor="black", capsize=5)
    for i, r in enumerate(rows):
        ax.scatter(np.full(len(r["top1"]["per_seed"]), i), r["top1"]["per_seed"], color="black", s=10, zorder=3)
        ax.text(i, means[i] + hi[i] + 0.02, f"{100 * means[i]:.1f}", ha="center", fontsize=8)
    ax.axhline(chance, color="red", linestyle="--", linewidth=1, label=f"chance {chance:.3f}")
    ax.set_xticks(x, [r["name"].replace(" (", "\n(") for r in rows], fontsize=8)
    ax.set_ylabel("clip-averaged top-1 (test)")
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", type=Path, default=Path("runs/bench/shift2/run/checkpoint.pt"),
                    help="shift checkpoint of the pretrained rows (its architecture is every row's)")
    ap.add_argument("--out", type=Path, default=Path("runs/bench/action"), help="synthetic sets and runs")
    ap.add_argument("--rows", nargs="+", choices=sorted(ROWS), default=["scratch", "scratch-vision", "vision", "sound"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=120, help="fine-tuning steps of every row")
    ap.add_argument("--batch", type=int, default=16, help="clips per step")
    ap.add_argument("--lr", type=float, default=1e-2, help="SGD learning rate of every row")
    ap.add_argument("--per-class", type=int, default=20, help="labelled training scenes per class")
    ap.add_argument("--test-per-class", type=int, default=10, help="held-out test scenes per class")
    ap.add_argument("--eval-clips", type=int, default=5, help="clips averaged per test video")
    ap.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic sets (fixed across rows)")
    ap.add_argument("--unseen-action-sound", type=float, default=0.0, metavar="P",
                    help="probability that a scene's soundtrack also carries another class's sound, off-screen "
                         "and as loud as the action's (SceneConfig.unseen_action_sound; 0: the plain world)")
    ap.add_argument("--workers", type=int, default=1, help="data-loading processes")
    ap.add_argument("--device", default="cpu", help="cpu (the budget above is for a 2-core CPU), cuda, auto")
    ap.add_argument("--fresh", action="store_true", help="retrain runs that exist instead of reusing them")
    ap.add_argument("--results-name", default="action",
                    help="writes benchmarks/results/NAME.json and NAME_table1.png (NAME may be a path)")
    args = ap.parse_args()
    if not args.init.is_file():
        ap.error(f"{args.init}: no such shift checkpoint; make one with `python benchmarks/shift.py --out "
                 f"{args.init.parent.parent}` or pass --init")

    t_start = time.perf_counter()
    shift_cfg, _ = read_shift_checkpoint(args.init)
    k = len(ACTION_CLASSES)
    data_root = args.out / "synthetic" / f"{args.per_class}pc_{args.test_per_class}tpc_s{args.data_seed}"
    if args.unseen_action_sound:
        data_root = data_root.with_name(f"{data_root.name}_unseen{args.unseen_action_sound:g}")
    sets = write_synthetic_action_data(data_root, shift_cfg, unseen_action_sound=args.unseen_action_sound,
                                       train=(k * args.per_class, args.data_seed), val=(k * 2, args.data_seed + 10_000),
                                       test=(k * args.test_per_class, args.data_seed + 20_000))
    test_index = index_labelled(sets["test"])
    data_s = time.perf_counter() - t_start

    runs = [(key, seed) for key in args.rows for seed in args.seeds]
    scores: dict[str, list[dict]] = {key: [] for key in args.rows}
    for i, (key, seed) in enumerate(runs):
        row = ROWS[key]
        print(f"[{i + 1}/{len(runs)}] {row.name}, seed {seed}", flush=True)
        t0 = time.perf_counter()
        task = make_action_task(sets["train"], shift_cfg, init=args.init if row.pretrained else None,
                                val_data=sets["val"], use_sound=row.use_sound, freeze_backbone=row.freeze_backbone,
                                n_val=32, seed=seed)
        out_dir = args.out / "runs" / f"{key}_seed{seed}"
        budget = {"row": dataclasses.asdict(row), "init": str(args.init) if row.pretrained else None,
                  "batch": args.batch, "lr": args.lr, "train": str(sets["train"]), "seed": seed}
        start = reuse_or_start(out_dir, budget, args.steps, args.fresh)
        cfg = TrainConfig(out_dir=str(out_dir), steps=args.steps, global_batch=args.batch, micro_batch=args.batch,
                          optimizer="sgd", lr=args.lr, schedule="constant", log_every=10, val_every=args.steps,
                          ckpt_every=args.steps, num_workers=args.workers, seed=seed, resume=not args.fresh,
                          device=args.device)
        checkpoint = fit(task, cfg)  # a reused run is finished: fit returns its checkpoint at once
        t1 = time.perf_counter()
        timing = record_training_time(out_dir, start, args.steps, t1 - t0)
        result = evaluate(load_model(checkpoint, pick_device(args.device)), test_index, n_clips=args.eval_clips, progress=True)
        t2 = time.perf_counter()
        scores[key].append({"seed": seed, "top1": result.top1, "top5": result.top5,
                            "mean_class_accuracy": result.mean_class_accuracy,
                            "train_seconds": timing["seconds"], "eval_seconds": t2 - t1, "reused": start == args.steps})
        print(f"    test: {result.describe()}; {t1 - t0:.0f} s training, {t2 - t1:.0f} s evaluation", flush=True)

    table = []
    for key in args.rows:
        row, per_seed = ROWS[key], scores[key]
        table.append({"row": key, "name": row.name, "pretrained": row.pretrained, "use_sound": row.use_sound,
                      "freeze_backbone": row.freeze_backbone,
                      "top1": summary([s["top1"] for s in per_seed]), "top5": summary([s["top5"] for s in per_seed]),
                      "seconds": round(sum(s["train_seconds"] + s["eval_seconds"] for s in per_seed), 1)})
    means = {r["row"]: r["top1"]["mean"] for r in table}
    # The claim against each scratch row that was run; None when a row of the claim was not run.
    holds = {base: (bool(means["sound"] > means["vision"] > means[base])
                    if {"sound", "vision", base} <= means.keys() else None)
             for base in ("scratch", "scratch-vision")}
    per_seed = {key: [s["top1"] for s in scores[key]] for key in args.rows}
    margins = {f"{a} - {b}": paired_margin(per_seed[a], per_seed[b])
               for a, b in (("sound", "vision"), ("vision", "scratch"), ("vision", "scratch-vision"))
               if a in per_seed and b in per_seed}
    total_s = time.perf_counter() - t_start
    chance = 1 / k
    result = {
        "init": str(args.init), "init_model": shift_cfg.to_dict(),
        "budget": {"labelled_per_class": args.per_class, "classes": k, "labelled_scenes": k * args.per_class,
                   "scene_s": SYNTHETIC_ACTION_SCENE_S, "steps": args.steps, "global_batch": args.batch,
                   "optimizer": f"sgd lr {args.lr:g} momentum 0.9 clip 5 weight decay 1e-5, constant",
                   "clip_frames": action_clip_frames(shift_cfg), "eval_clips": args.eval_clips},
        "test": {"per_class": args.test_per_class, "videos": len(test_index), "data_seed": args.data_seed + 20_000},
        "unseen_action_sound": args.unseen_action_sound,
        "seeds": args.seeds, "chance": round(chance, 4), "rows": table,
        "ordering": {"claim": "with sound > vision only > scratch (test top-1 means)",
                     "holds_against": holds, "means": means, "paired_margins": margins},
        "runs": {key: [{k2: (round(v, 4) if isinstance(v, float) else v) for k2, v in s.items()} for s in scores[key]]
                 for key in args.rows},
        "data_seconds": round(data_s, 1), "seconds": round(total_s, 1),
    }
    print(f"\n{'row':28s} {'top-1 mean':>10s} {'std':>6s} {'min':>6s} {'max':>6s}   seconds")
    for r in table:
        t = r["top1"]
        print(f"{r['name']:28s} {t['mean']:10.3f} {t['std']:6.3f} {t['min']:6.3f} {t['max']:6.3f}   {r['seconds']:.0f}")
    print(f"chance {chance:.3f}; ordering with sound > vision only > scratch: "
          f"{', '.join(f'against {b}: {h}' for b, h in holds.items())}; "
          f"total {total_s / 60:.1f} min (data {data_s:.0f} s)")
    for pair, m in margins.items():
        spread = f" +- {m['standard_error']:.3f} (standard error over seeds)" if m["standard_error"] is not None else ""
        print(f"  {pair}: {m['mean']:+.3f}{spread}, ahead in {m['seeds_ahead']} of {m['seeds']} seeds")
    write_result(args.results_name, result)
    png = plot_table(table, chance, RESULTS / f"{args.results_name}_table1.png",
                     f"synthetic actions: {args.per_class} labelled scenes/class, {args.steps} steps x {args.batch}, "
                     f"{len(args.seeds)} seed(s)"
                     + (f", unseen class sound p={args.unseen_action_sound:g}" if args.unseen_action_sound else ""))
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
