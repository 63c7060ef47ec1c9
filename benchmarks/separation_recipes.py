"""Separator recipes that fit the demo's minutes (issue 27): which output form, loss, precision
and batch make the demo's separator beat the unprocessed mixture by >= 3 dB of on-screen SDR.

Every recipe trains the separator from the demo's own shift network on the demo's own synthetic
separation sets (a finished ``avscene demo`` output folder: ``--demo``; talking faces until the
demo moved to the pulse world, see each row's ``world``), for the same number of steps, and is scored as the demo scores it (:func:`avscene.evaluate.separation.evaluate_separation`,
mixture phase, the held-out test scenes). Each recipe runs in a process of its own, so two can
share the machine (``--threads 1`` each); ``train_seconds`` is then not an idle-machine figure.

    python benchmarks/separation_recipes.py --demo DEMO_OUT --recipes log,compressed,mask [--threads 1]
    python benchmarks/separation_recipes.py --demo DEMO_OUT --oracle     # the oracle masks' SDR
    python benchmarks/separation_recipes.py --merge                      # rows -> results JSON

Rows are kept under ``--work/<recipe>/result.json`` (give each demo folder its own ``--work``
below the default) and all rows below the default are merged into
``benchmarks/results/separation_recipes.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import write_result

#: name -> overrides of the demo's separator preset (small-lite) and of the training recipe.
RECIPES = {
    "log": {"output": "mixture-residual", "loss": "log"},
    "log-frozen-shift": {"output": "mixture-residual", "loss": "log", "freeze_shift": True},
    "compressed": {"output": "mixture-residual", "loss": "compressed"},
    "compressed-lr2e-3": {"output": "mixture-residual", "loss": "compressed", "lr": 2e-3},
    "mask-log": {"output": "mask", "loss": "log"},
    "mask": {"output": "mask", "loss": "compressed"},
    "mask-bf16": {"output": "mask", "loss": "compressed", "precision": "bf16"},
    "mask-bf16-1000": {"output": "mask", "loss": "compressed", "precision": "bf16", "steps": 1000},
    "mask-bf16-batch4": {"output": "mask", "loss": "compressed", "precision": "bf16", "batch": 4, "steps": 1200},
    # the demo's budget since its separation world became the pulse world its shift network knows
    "mask-400": {"output": "mask", "loss": "compressed", "steps": 400},
    "mask-frozen-400": {"output": "mask", "loss": "compressed", "steps": 400, "freeze_shift": True},
}
TRAIN = {"steps": 600, "batch": 8, "lr": 1e-3, "precision": "fp32", "freeze_shift": False}
WORK = Path("runs/bench/separation_recipes")


def run_recipe(name: str, demo: Path, work: Path) -> dict:
    """Train and score one recipe (in this process)."""
    import torch

    from avscene.checkpoints import load_model
    from avscene.data.separation_examples import separation_dataset
    from avscene.demo import SEPARATION_RECIPE
    from avscene.evaluate.separation import evaluate_separation
    from avscene.models.separation_net import get_preset
    from avscene.train.loop import TrainConfig, fit
    from avscene.train.separation import make_separation_task

    recipe = {**TRAIN, **RECIPES[name]}
    cfg = get_preset("small-lite", variant="full", output=recipe["output"], loss=recipe["loss"],
                     train_shift=not recipe["freeze_shift"])
    sets = demo / "synthetic" / "separation"
    task = make_separation_task(sets / "train", cfg, init=demo / "shift" / "checkpoint.pt", val_data=sets / "val")
    out = work / name
    train = TrainConfig(out_dir=str(out), steps=recipe["steps"], global_batch=recipe["batch"],
                        micro_batch=recipe["batch"], optimizer="adam", lr=recipe["lr"],
                        grad_clip=SEPARATION_RECIPE["grad_clip"], schedule="cosine", precision=recipe["precision"],
                        val_every=10**9, ckpt_every=10**9, log_every=50, num_workers=1, resume=False,
                        progress=False)
    t0 = time.perf_counter()
    checkpoint = fit(task, train)
    seconds = time.perf_counter() - t0
    table = evaluate_separation({name: load_model(checkpoint, "cpu")},
                                separation_dataset(sets / "test", cfg, train=False), batch_size=4)
    scene_config = json.loads((sets / "train" / "manifest.json").read_text())["config"]
    world = "pulses" if scene_config.get("motions") else "talk"  # the two demo worlds so far
    row = {"recipe": name, "demo": str(demo), "world": world, **recipe, "threads": torch.get_num_threads(), "train_seconds": round(seconds, 1),
           "sdr_on": round(table.value(name, "sdr_on", "all"), 3),
           "sdr_on_mixture": round(table.value("mixture", "sdr_on", "all"), 3),
           "sdr": round(table.value(name, "sdr", "all"), 3), "sdr_mixture": round(table.value("mixture", "sdr", "all"), 3),
           "clips": table.summary["mixture"]["all"]["n"]}
    row["gain_on_db"] = round(row["sdr_on"] - row["sdr_on_mixture"], 3)
    return row


def oracle(demo: Path) -> dict:
    """Mean on-screen SDR of the demo's test clips split by the oracle masks of
    ``separation_oracles.py`` (mixture phase), beside the unprocessed mixture's."""
    import numpy as np

    from separation_oracles import oracle_sdr_on

    from avscene.data.separation_examples import separation_dataset
    from avscene.models.separation_net import get_preset

    cfg = get_preset("small-lite")
    data = separation_dataset(demo / "synthetic/separation/test", cfg, train=False)
    scores: dict[str, list[float]] = {}
    for i in range(len(data)):
        for name, sdr in oracle_sdr_on(data[i], cfg.spectrogram).items():
            scores.setdefault(name, []).append(sdr)
    return {name: round(float(np.mean(v)), 3) for name, v in scores.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", type=Path, help="a finished `avscene demo` output folder")
    ap.add_argument("--recipes", default="", help=f"comma-separated, of {', '.join(RECIPES)}")
    ap.add_argument("--oracle", action="store_true", help="score the oracle masks")
    ap.add_argument("--merge", action="store_true", help="merge the rows under --work into the results JSON")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per recipe (default torch's)")
    ap.add_argument("--work", type=Path, default=WORK)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child process: one recipe
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.one:
        row = run_recipe(args.one, args.demo, args.work)
        (args.work / args.one / "result.json").write_text(json.dumps(row))
        print(json.dumps(row), flush=True)
        return
    if args.oracle:
        args.work.mkdir(parents=True, exist_ok=True)
        (args.work / "oracle.json").write_text(json.dumps(oracle(args.demo)))
    for name in filter(None, args.recipes.split(",")):
        extra = ["--threads", str(args.threads)] if args.threads else []
        subprocess.run([sys.executable, __file__, "--one", name, "--demo", str(args.demo), "--work", str(args.work),
                        *extra], check=True)
    if args.merge or args.oracle or args.recipes:
        merge(WORK)


def merge(work: Path) -> None:
    rows = [json.loads(p.read_text()) for p in sorted(work.glob("**/result.json"))]
    rows.sort(key=lambda r: list(RECIPES).index(r["recipe"]) if r["recipe"] in RECIPES else len(RECIPES))
    oracle_file = work / "oracle.json"
    for r in rows:
        print(f"{r['recipe']:22s} on-screen SDR {r['sdr_on']:+.2f} dB (mixture {r['sdr_on_mixture']:+.2f}): "
              f"gain {r['gain_on_db']:+.2f} dB, {r['train_seconds'] or float('nan'):.0f} s training, {r.get('demo', '')}")
    write_result("separation_recipes", {
        "data": "the demo's synthetic separation sets (96 training scenes, 24 held-out test scenes, 4 clips each) "
                "and its shift network (320 steps on the pulses world)",
        "preset": "small-lite", "target_gain_on_db": 3.0,
        "oracle": json.loads(oracle_file.read_text()) if oracle_file.exists() else None,
        "rows": rows})


if __name__ == "__main__":
    main()
