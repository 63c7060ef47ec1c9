"""On/off-screen separation on the synthetic world: the *shape* of the paper's Table 2 (issue 5).

Every model gets the **same budget**: ``--steps`` Adam steps (the release's lr 1e-4, gradient
clip 10, constant schedule) of ``--batch-size`` mixtures drawn from the same ``--train-scenes``
synthetic talking scenes (ground-truth stems; random voice pairings), through the library's real
paths (mp4 files, :func:`avscene.train.separation.make_separation_task`,
:func:`avscene.train.loop.fit`):

================  ================================================  ====================  =========
model             sees                                              starts from           loss
================  ================================================  ====================  =========
``full``          the clip (through the shift net) and the mixture  the shift ``--init``  on/off L1
``audio-only``    the mixture only (the release's ``unet_pit``)     scratch               PIT
``single-frame``  the middle frame repeated and the mixture         the shift ``--init``  on/off L1
================  ================================================  ====================  =========

``--variants`` adds optional rows: full-pit, mono, no-early-fusion, scratch.

The test set is held out (other seeds) and covers both voice-group conditions, ``--test-scenes``
/ 2 scenes each: ``within`` (both talkers' voices from one group: hard, only the picture can
tell them apart) and ``across`` (one voice from each group). Every test scene gives up to
``--clips-per-scene`` fixed, non-overlapping clips at the scene's own on/off balance
(:class:`avscene.data.separation_examples.SceneMixtures`, ``train=False``), scored by
:func:`avscene.metrics.separation.evaluate_separation` with the "mixture as estimate" baseline:
on/off L1 of log spectrograms (dB, lower is better), BSS Eval SDR / SIR / SAR and SI-SDR (dB,
mean over the on- and off-screen sources; On-SDR: on-screen only), by voice pairing and overall.

Checks: (a) the full model's on-screen SDR beats the mixture's by >= 6 dB; (b) the full model
beats the audio-only PIT model on within-group SDR; (c) the single-frame model is worse than the
full one on within-group SDR.

Runs: ``--out/<variant>`` (default ``runs/bench/separation/<variant>``). A finished run with the
same budget is reused (``fit`` resumes from its checkpoint: nothing left to do returns at once;
more ``--steps`` continue it); a run made with another budget is an error unless ``--fresh``.

Cost (``small`` preset, batch 8, measured on the 2-core CPU under load): a training step takes
about 5.3 CPU-seconds for ``full`` and ``single-frame`` and 3.1 for ``audio-only``, plus 0.9 /
0.3 s of data loading, i.e. roughly 3.5 s and 2 s of wall time with ``OMP_NUM_THREADS=2`` on an
otherwise idle machine. Measured alone (2026-11-21): 0.67 s per step for ``full``, 0.37 s for
``audio-only``, 0.74 s for ``single-frame``; the default budget (800 steps each) took 24 min of
training and 1 min of evaluation, plus ~3 min writing the synthetic sets once.

The budget recorded with each run includes the preset's ``output`` form (see
:mod:`avscene.models.separation_net`), so runs of the release's spectrogram regression are not
reused for the residual form. ``benchmarks/separation_oracles.py`` gives the ceilings on the same
test clips (ideal masks).

A longer budget, ten times the lr (``separation_lr1e3``; about 1 hour for the three models)::

    python benchmarks/separation.py --out runs/bench/sep_lr1e3 --lr 1e-3 --steps 2400 --results-name separation_lr1e3

(``runs/bench/sep_lr1e3/synthetic`` is a link to ``runs/bench/separation/synthetic``: same sets.)
The full model's on-screen SDR gain grows from +0.6 dB (800 steps at 1e-4) to +3.5 dB; its
validation on/off error was still falling (10.5 dB at step 800, 8.3 dB at 2400). Continued with
``--steps 4800`` (same ``--out``, ``separation_lr1e3_4800``) the magnitudes keep improving
(on/off 7.7 dB, SIR 11.9) while the phase head gets worse: the gain with the predicted phase falls
to +1.3 dB, and with ``--phase mixture`` (the release's ``phase_type='orig'``) it is +5.7 dB
(``separation_lr1e3_4800_mixture_phase``). The full run's timing covers 4500 of its 4800 steps:
it was stopped once after step 2700 and resumed from that checkpoint.

The release's schedule, lr x 0.1 for the last quarter (120K of 160K steps): the same runs
continued from step 4800 to 6400 at 1e-4 (``separation_lr1e3_drop``; the budget check accepts a
constant-lr run that has not passed the drop)::

    python benchmarks/separation.py --out runs/bench/sep_lr1e3 --lr 1e-3 --lr-drop-step 4800 --steps 6400 \
        --phase pred --results-name separation_lr1e3_drop
    python benchmarks/separation.py --out runs/bench/sep_lr1e3 --lr 1e-3 --lr-drop-step 4800 --steps 6400 \
        --results-name separation_lr1e3_drop_mixture_phase

The magnitudes improve again (on/off 7.7 -> 6.0 dB); with the mixture's phase the full model's
On-SDR is 7.50 dB against 0.51 for the mixture, **+7.0 dB**, and all three checks pass; with its
own phase it is +1.4 dB. Since then the mixture's phase is the default of ``--phase`` (and of
``avscene separate`` / ``eval separation``); the results above named without ``mixture_phase``
were made with ``--phase pred``, the default then. The 1600 steps took 0.75 / 0.28 / 0.59 s each
(full / audio-only / single-frame); the full run's figure is inflated by ~4 min of other
benchmarks running beside it.

Results: ``benchmarks/results/<--results-name>.json`` (budgets, seconds per model, the table,
the checks), ``<--results-name>_table2.md`` and ``<--results-name>_example.png`` (one held-out
within-group scene separated by the full model). ``--results-name`` may be a path (e.g.
``/tmp/sep_smoke``). The per-clip scores stay in ``--out/eval``.

    python benchmarks/separation.py [--init runs/bench/shift2/run/checkpoint.pt] [--steps N]
    python benchmarks/separation.py --preset tiny --steps 2 ...   # smoke test
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from torch.utils.data import ConcatDataset

from common import RESULTS, record_training_time, reuse_or_start, write_result

from avscene.checkpoints import load_model
from avscene.data.separation_examples import separation_dataset
from avscene.files import write_text
from avscene.evaluate.separation import MIXTURE, evaluate_separation
from avscene.metrics.separation import si_sdr
from avscene.models.separation_net import DEFAULT_PHASE, PHASE_SOURCES, VARIANTS, get_preset
from avscene.train.loop import TrainConfig, fit
from avscene.train.runtime import pick_device
from avscene.synth.worlds import write_synthetic_separation_data
from avscene.train.separation import make_separation_task

#: The rows issue 5 requires, in table order.
REQUIRED = ("full", "audio-only", "single-frame")
#: Table columns: (metric key of evaluate_separation, label).
COLUMNS = (("on_off_db", "On/off (dB) ↓"), ("sdr", "SDR"), ("sir", "SIR"), ("sar", "SAR"), ("si_sdr", "SI-SDR"),
           ("sdr_on", "On-SDR"))
GROUPS = ("within", "across", "all")
#: Check (a): the full model's on-screen SDR over the mixture's, in dB.
MIN_SDR_GAIN_DB = 6.0
def train_variant(variant: str, args: argparse.Namespace, sets: dict[str, Path]) -> dict:
    """Train (or reuse) one row; returns its checkpoint, budget and timing."""
    model_cfg = get_preset(args.preset, variant=variant)
    init = str(args.init) if model_cfg.init_from_shift else None
    run_dir = args.out / variant
    budget = {"variant": variant, "preset": args.preset, "output": model_cfg.output, "global_batch": args.batch_size,
              "lr": args.lr, "optimizer": "adam", "grad_clip": 10.0, "weight_decay": 1e-5, "schedule": "constant",
              "lr_drop_step": args.lr_drop_step,
              "train_data": str(sets["train"]), "val_data": str(sets["val"]), "init": init, "seed": args.seed}
    start = reuse_or_start(run_dir, budget, args.steps, args.fresh)
    task = make_separation_task(sets["train"], model_cfg, init=init, val_data=sets["val"], n_val=args.n_val,
                                seed=args.seed)
    cfg = TrainConfig(out_dir=str(run_dir), steps=args.steps, global_batch=args.batch_size,
                      micro_batch=args.batch_size, optimizer="adam", lr=args.lr, grad_clip=10.0, weight_decay=1e-5,
                      schedule="constant", lr_drop_step=args.lr_drop_step, log_every=min(10, args.steps),
                      val_every=args.val_every or args.steps,
                      ckpt_every=max(1, min(100, args.steps)), num_workers=args.workers, seed=args.seed,
                      device=args.device, resume=not args.fresh)
    t0 = time.perf_counter()
    checkpoint = fit(task, cfg)
    timing = record_training_time(run_dir, start, args.steps, time.perf_counter() - t0)
    log = json.loads((run_dir / "log.json").read_text())
    last_val = next((r for r in reversed(log) if "val_loss" in r), {})
    return {
        "checkpoint": str(checkpoint), "init": init, "pit": model_cfg.pit_loss, "steps": args.steps,
        "reused_steps": start, "train_seconds": round(timing["seconds"], 1),
        "seconds_per_step": round(timing["seconds"] / timing["steps"], 3) if timing["steps"] else None,
        "final_val": {k: round(v, 4) for k, v in last_val.items() if k.startswith("val_")},
    }


def synthetic_root(args: argparse.Namespace) -> Path:
    """Where the synthetic train / val / test sets of these ``--train-scenes``, ``--test-scenes``
    and ``--seed`` live (written once, reused by every later run)."""
    return args.out / "synthetic" / f"{args.train_scenes}tr_{args.test_scenes}te_s{args.seed}"


def test_dataset(sets: dict[str, Path], args: argparse.Namespace):
    """The held-out clips of both voice pairings, one dataset (the model's clip)."""
    cfg = get_preset(args.preset)
    parts = [separation_dataset(sets[f"test-{g}"], cfg, train=False, clips_per_scene=args.clips_per_scene)
             for g in ("within", "across")]
    data = ConcatDataset(parts)
    data.n_skipped = sum(p.n_skipped for p in parts)  # windows with a near-silent source
    return data, parts


def table2(table, models: list[str]) -> dict:
    """``{group: {model: {metric: value, "n": clips}}}`` rounded, groups within / across / all."""
    return {g: {m: {**{k: round(table.value(m, k, g), 3) for k, _ in COLUMNS}, "n": int(table.value(m, "n", g))}
                for m in models} for g in GROUPS if g in table.groups}


def markdown(t2: dict, models: list[str], header: str) -> str:
    lines = [header, ""]
    for g in GROUPS:
        if g not in t2:
            continue
        n = t2[g][models[0]]["n"]
        title = {"within": "Within-group voices (hard)", "across": "Across-group voices", "all": "All test clips"}[g]
        lines += [f"### {title} ({n} clips)", "", "| Method | " + " | ".join(label for _, label in COLUMNS) + " |",
                  "|---|" + "---|" * len(COLUMNS)]
        for m in models:
            cells = [f"{t2[g][m][k]:.2f}" if math.isfinite(t2[g][m][k]) else "–" for k, _ in COLUMNS]
            lines.append(f"| {'mixture as estimate' if m == MIXTURE else m} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("SDR / SIR / SAR / SI-SDR in dB, mean over the on- and off-screen sources; On-SDR: the on-screen "
                 "source only; On/off: L1 between log-magnitude spectrograms in dB (lower is better). The mixture "
                 "row uses the mixture as both estimates.")
    return "\n".join(lines) + "\n"


def checks(t2: dict) -> dict:
    """The issue's three claims, each with its numbers and whether it holds."""
    def v(model, metric, group):
        return t2[group][model][metric] if group in t2 and model in t2[group] else math.nan

    gain = v("full", "sdr_on", "all") - v(MIXTURE, "sdr_on", "all")
    out = {
        "a_full_on_sdr_gain_over_mixture": {
            "claim": f"full model on-screen SDR - mixture on-screen SDR >= {MIN_SDR_GAIN_DB:g} dB (all test clips)",
            "full_sdr_on": v("full", "sdr_on", "all"), "mixture_sdr_on": v(MIXTURE, "sdr_on", "all"),
            "gain_db": round(gain, 3), "passed": bool(gain >= MIN_SDR_GAIN_DB)},
        "b_full_beats_audio_only_within": {
            "claim": "full SDR > audio-only (PIT) SDR on within-group clips",
            "full_sdr": v("full", "sdr", "within"), "audio_only_sdr": v("audio-only", "sdr", "within"),
            "passed": bool(v("full", "sdr", "within") > v("audio-only", "sdr", "within"))},
        "c_single_frame_worse_within": {
            "claim": "single-frame SDR < full SDR on within-group clips",
            "full_sdr": v("full", "sdr", "within"), "single_frame_sdr": v("single-frame", "sdr", "within"),
            "passed": bool(v("single-frame", "sdr", "within") < v("full", "sdr", "within"))},
    }
    return out


def plot_example(checkpoint: str, part, args: argparse.Namespace, path: Path) -> dict:
    """Separate the first held-out scene of ``part`` (within-group) whole with the full model and
    draw the mixture and its two parts; returns the scene and the SI-SDR of each part."""
    from avscene.data.shift_pairs import center_crop
    from avscene.infer.separate import SeparateOptions, separate_arrays
    from avscene.media import read_clip
    from avscene.report.plots import plot_separation

    model = load_model(checkpoint, "cpu")
    cfg = model.config
    s = part.sampling
    entry = part.scenes[0]
    on, off = part.stems(0)  # (C, N) at the model's rate
    mixture = (on + off).T  # (N, C)
    frames = read_clip(entry["video"], fps=s.fps, size=s.full_size, fit=s.fit, audio=False, threads=1).frames
    result = separate_arrays(model, center_crop(frames, s.crop_size), mixture, SeparateOptions(phase=args.phase))
    scores = {name: round(float(si_sdr(ref.mean(0), est)), 2) for name, ref, est in
              (("on_si_sdr", on, result.on), ("off_si_sdr", off, result.off))}
    mix_score = round(float(si_sdr(on.mean(0), mixture.mean(1))), 2)
    plot_separation(mixture, result.on, result.off, cfg.shift.sample_rate, path,
                    title=f"full model, held-out scene {entry['stem']} ({entry.get('voice_pairing')}-group voices): "
                          f"on-screen SI-SDR {scores['on_si_sdr']:+.1f} dB (mixture {mix_score:+.1f} dB)",
                    labels=("mixture", "separated on-screen (talking face)", "separated off-screen (+ noise)"))
    return {"scene": entry["stem"], "set": str(Path(entry["video"]).parent), "voice_pairing": entry.get("voice_pairing"),
            "mixture_on_si_sdr": mix_score, **scores}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", type=Path, default=Path("runs/bench/shift2/run/checkpoint.pt"),
                    help="shift checkpoint for full and single-frame (its architecture must be --preset's shift net)")
    ap.add_argument("--out", type=Path, default=Path("runs/bench/separation"), help="synthetic sets and runs")
    ap.add_argument("--preset", default="small", help="separation preset: small (the benchmark), tiny (smoke test)")
    ap.add_argument("--variants", nargs="*", default=[], choices=sorted(set(VARIANTS) - set(REQUIRED)),
                    help="extra Table 2 rows besides full, audio-only and single-frame")
    ap.add_argument("--steps", type=int, default=800, help="training steps of every model")
    ap.add_argument("--batch-size", type=int, default=8, help="mixtures per step")
    ap.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate of every model")
    ap.add_argument("--lr-drop-step", type=int, default=None,
                    help="lr x 0.1 from this step on (the release: 120K of 160K); default: constant lr")
    ap.add_argument("--train-scenes", type=int, default=400, help="synthetic training scenes (6 s each)")
    ap.add_argument("--test-scenes", type=int, default=64, help="held-out test scenes, half within-, half across-group")
    ap.add_argument("--clips-per-scene", type=int, default=4, help="test clips per scene (non-overlapping)")
    ap.add_argument("--n-val", type=int, default=32, help="held-out clips watched during training")
    ap.add_argument("--val-every", type=int, default=200, help="validate every N steps (0: at the end only)")
    ap.add_argument("--phase", choices=PHASE_SOURCES, default=DEFAULT_PHASE,
                    help="phase of the separated waveforms: the mixture's (the toolkit's default) or the "
                         "predicted one (the release's default)")
    ap.add_argument("--eval-batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0, help="data seed and training seed")
    ap.add_argument("--workers", type=int, default=1, help="data-loading processes")
    ap.add_argument("--device", default="cpu", help="cpu (the default budget is for a 2-core CPU), cuda, auto")
    ap.add_argument("--fresh", action="store_true", help="retrain runs that exist instead of reusing them")
    ap.add_argument("--results-name", default="separation",
                    help="writes benchmarks/results/NAME.json, NAME_table2.md, NAME_example.png (NAME may be a path)")
    args = ap.parse_args()
    if args.test_scenes < 2:
        ap.error("--test-scenes must be >= 2 (half within-group, half across-group)")
    variants = list(REQUIRED) + [v for v in dict.fromkeys(args.variants) if v not in REQUIRED]
    if not args.init.is_file():
        raise SystemExit(f"no shift checkpoint at {args.init}: train one (benchmarks/shift.py, or `avscene train "
                         f"shift --data synthetic --preset {args.preset} --out RUN`) and pass --init")

    t_start = time.perf_counter()
    model_cfg = get_preset(args.preset)
    n_test = args.test_scenes // 2
    data_root = synthetic_root(args)
    sets = write_synthetic_separation_data(data_root, model_cfg, train=(args.train_scenes, args.seed),
                                           val=(max(8, args.train_scenes // 8), args.seed + 10_000))
    for i, g in enumerate(("within", "across")):
        sets.update(write_synthetic_separation_data(data_root, model_cfg, voice_pairing=g,
                                                    **{f"test-{g}": (n_test, args.seed + 20_000 + 1000 * i)}))
    data_s = time.perf_counter() - t_start

    runs = {}
    for i, variant in enumerate(variants):
        print(f"[{i + 1}/{len(variants)}] {variant}: {args.steps} steps x {args.batch_size} mixtures, lr {args.lr:g}",
              flush=True)
        runs[variant] = train_variant(variant, args, sets)
        r = runs[variant]
        print(f"    {r['train_seconds']:.0f} s of training ({r['seconds_per_step']} s/step); final validation "
              f"{r['final_val']}", flush=True)

    data, parts = test_dataset(sets, args)
    print(f"evaluating {len(variants)} models on {len(data)} held-out clips ({data.n_skipped} windows skipped: "
          f"a near-silent source)", flush=True)
    t0 = time.perf_counter()
    table = evaluate_separation({v: runs[v]["checkpoint"] for v in variants}, data, batch_size=args.eval_batch,
                                device=pick_device(args.device), phase=args.phase, progress=True)
    eval_s = time.perf_counter() - t0
    table.write(args.out / "eval", stem=Path(args.results_name).name)

    models = [*variants, MIXTURE]
    t2 = table2(table, models)
    verdicts = checks(t2)
    schedule = "constant lr" if args.lr_drop_step is None else f"lr x0.1 from step {args.lr_drop_step}"
    header = (f"## Separation on the synthetic world (Table 2's shape)\n\n"
              f"Preset `{args.preset}`; every model {args.steps} Adam steps x {args.batch_size} mixtures, lr "
              f"{args.lr:g} ({schedule}), clip 10, on {args.train_scenes} training scenes; test: {n_test} within-group "
              f"+ {n_test} across-group held-out scenes, up to {args.clips_per_scene} clips each; phase: {args.phase}.")
    md = markdown(t2, models, header)
    md_path = write_text(RESULTS / f"{args.results_name}_table2.md", md)
    example = plot_example(runs["full"]["checkpoint"], parts[0], args, RESULTS / f"{args.results_name}_example.png")

    total_s = time.perf_counter() - t_start
    result = {
        "preset": args.preset, "model": model_cfg.to_dict(), "init": str(args.init),
        "budget": {"steps": args.steps, "global_batch": args.batch_size, "lr": args.lr,
                   "lr_drop_step": args.lr_drop_step,
                   "optimizer": f"adam lr {args.lr:g} ({schedule}), grad clip 10, weight decay 1e-5",
                   "train_scenes": args.train_scenes, "val_scenes": max(8, args.train_scenes // 8),
                   "snr_db": [0.0, 0.0], "seed": args.seed},
        "test": {"scenes": {"within": n_test, "across": n_test}, "clips_per_scene": args.clips_per_scene,
                 "clips": len(data), "skipped_windows": data.n_skipped, "phase": args.phase,
                 "sets": {k: str(v) for k, v in sets.items()}},
        "models": runs,
        "table": t2,
        "checks": verdicts,
        "all_checks_passed": all(c["passed"] for c in verdicts.values()),
        "example": example,
        "data_seconds": round(data_s, 1), "eval_seconds": round(eval_s, 1), "seconds": round(total_s, 1),
    }
    print()
    print(md)
    for name, c in verdicts.items():
        print(f"{'PASS' if c['passed'] else 'FAIL'}  {c['claim']}")
    print(f"total {total_s / 60:.1f} min (data {data_s:.0f} s, evaluation {eval_s:.0f} s); "
          f"wrote {md_path}, {RESULTS / f'{args.results_name}_example.png'}")
    write_result(args.results_name, result)


if __name__ == "__main__":
    main()
