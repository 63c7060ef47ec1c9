"""Kill-and-resume soak (issue 26): every long job survives ``kill -9`` at any moment and, re-run
with the same command, ends exactly where an uninterrupted run ends.

For each job (``train shift``, ``train separation``, ``train action`` with tiny presets on
synthetic data, and ``prepare`` into shards) an uninterrupted reference run is timed first. Then
the same command is started in a fresh folder and SIGKILLed (its whole process group: data
workers and ``prepare``'s pool too) at a moment drawn uniformly from the reference's wall time;
it is started again, and killed again, until it happens to finish before its kill: that folder
(a *chain*) is then compared with the reference, and the next chain begins, until ``--kills``
kills are done; the last chain is run to the end. Kills land anywhere: while importing, writing
the synthetic set, training, validating, writing a checkpoint or a shard, evaluating.

Compared with the reference, per chain:

* trainers: every tensor of the parameters and buffers, of the optimizer state and of the
  schedule in ``checkpoint.pt`` bit-identical (``torch.equal``), and the same step;
* ``prepare``: every shard (``.tar``) and its summary identical by sha256, and ``plan.json``;
* stray files: any file the reference folder does not have (temporaries of killed writers,
  half-written outputs), listed.

    python benchmarks/soak_resume.py [--kills 20] [--jobs shift separation action prepare]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import write_result

from avscene.checkpoints import load_checkpoint, save_checkpoint

#: Arguments of the tiny, few-step trainers (checkpoints often, so kills land between and in them).
TRAIN_ARGS = ["--preset", "tiny", "--batch-size", "4", "--workers", "0", "--log-every", "2", "--val-every", "4",
              "--ckpt-every", "2", "--n-val", "4", "--quiet"]


def job_commands(shift_init: Path, sets: dict[str, Path], steps: int) -> dict[str, list[str]]:
    """The command line (after ``python -m avscene``) of each job; ``OUT`` stands for its folder."""
    train = TRAIN_ARGS + ["--steps", str(steps)]
    return {
        "shift": ["train", "shift", "--data", str(sets["sync"]), "--val-data", str(sets["sync_val"]), "--out", "OUT",
                  *train],
        "separation": ["train", "separation", "--data", str(sets["separation"]), "--val-data",
                       str(sets["separation_val"]), "--init", str(shift_init), "--out", "OUT", *train],
        "action": ["train", "action", "--data", str(sets["action"]), "--val-data", str(sets["action_val"]),
                   "--layout", "synthetic", "--init", str(shift_init), "--eval-clips", "2", "--out", "OUT",
                   *_without(train, "--preset")],
        "prepare": ["prepare", str(sets["sync"]), "--out", "OUT", "--preset", "tiny", "--clips-per-shard", "3",
                    "--workers", "2", "--quiet"],
    }


def _without(args: list[str], flag: str) -> list[str]:
    """``args`` without ``flag`` and its value."""
    i = args.index(flag)
    return args[:i] + args[i + 2:]


def _start(command: list[str], out: Path, log) -> subprocess.Popen:
    argv = [sys.executable, "-m", "avscene", *[str(out) if a == "OUT" else a for a in command]]
    # a session of its own: the kill reaches the data workers and prepare's pool as well
    return subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)


def run_to_end(command: list[str], out: Path, log) -> float:
    """Run ``command`` into ``out`` to the end; its wall time in seconds."""
    t0 = time.perf_counter()
    proc = _start(command, out, log)
    if proc.wait() != 0:
        raise SystemExit(f"{' '.join(command)} failed (exit {proc.returncode}); see {log.name}")
    return time.perf_counter() - t0


def run_killed_chain(command: list[str], out: Path, log, rng: random.Random, span_s: float,
                     kills_left: int) -> tuple[int, int]:
    """Start ``command`` into ``out`` and SIGKILL it at a random moment within ``span_s``, again and
    again, until a run finishes before its kill (or ``kills_left`` kills are spent; the last run
    then goes to the end). Returns (kills, runs that resumed a killed one)."""
    kills = resumed = 0
    while True:
        proc = _start(command, out, log)
        resumed += kills > 0
        if kills >= kills_left:
            proc.wait()
        else:
            try:
                proc.wait(timeout=rng.uniform(0.0, span_s))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                kills += 1
                continue
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed after {kills} kills (exit {proc.returncode}); see {log.name}")
        return kills, resumed


def _equal(a, b) -> bool:
    """Bit-identical nested state: tensors by ``torch.equal`` (dtype and shape too), the rest by ==."""
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and torch.equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def compare_checkpoints(reference: Path, chain: Path) -> list[str]:
    """What differs between two runs' final checkpoints (empty: bit-identical)."""
    ref, got = load_checkpoint(reference / "checkpoint.pt"), load_checkpoint(chain / "checkpoint.pt")
    return [key for key in ("step", "model", "optimizer", "scheduler", "rng_cpu") if not _equal(ref[key], got[key])]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compare_shards(reference: Path, chain: Path) -> list[str]:
    """The shards, summaries and plan that differ by sha256 (empty: identical)."""
    names = sorted({p.name for p in reference.glob("shard-*")} | {p.name for p in chain.glob("shard-*")}) + ["plan.json"]
    return [n for n in names if not ((reference / n).is_file() and (chain / n).is_file()
                                     and _sha256(reference / n) == _sha256(chain / n))]


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def stray_files(reference: Path, chain: Path) -> list[str]:
    """Files of the chain's folder that the reference's does not have (relative paths)."""
    return sorted(_files(chain) - _files(reference))


def missing_files(reference: Path, chain: Path) -> list[str]:
    """Files of the reference's folder that the chain's lacks (relative paths)."""
    return sorted(_files(reference) - _files(chain))


def soak_job(name: str, command: list[str], work: Path, kills: int, rng: random.Random) -> dict:
    """The reference run and killed chains of one job, compared; the job's JSON row."""
    folder = work / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    t0 = time.perf_counter()
    with open(folder / "log.txt", "w") as log:
        reference_s = run_to_end(command, folder / "reference", log)
        chains, done = [], 0
        while done < kills:
            chain = folder / f"chain{len(chains):02d}"
            k, resumed = run_killed_chain(command, chain, log, rng, reference_s, kills - done)
            done += k
            differs = (compare_shards if name == "prepare" else compare_checkpoints)(folder / "reference", chain)
            chains.append({"kills": k, "resumed": resumed, "identical": not differs, "differs": differs,
                           "stray_files": stray_files(folder / "reference", chain),
                           "missing_files": missing_files(folder / "reference", chain)})
            print(f"{name} chain {len(chains)}: {k} kills, identical={not differs} {differs or ''} "
                  f"stray={chains[-1]['stray_files']} missing={chains[-1]['missing_files']}", flush=True)
    return {"command": " ".join(["avscene", *command]), "reference_s": round(reference_s, 1),
            "kills": done, "resumed": sum(c["resumed"] for c in chains), "chains": len(chains),
            "identical": sum(c["identical"] for c in chains),
            "killed_chains_identical": sum(c["identical"] for c in chains if c["kills"]),
            "killed_chains": sum(1 for c in chains if c["kills"]),
            "stray_files": sorted({f for c in chains for f in c["stray_files"]}),
            "missing_files": sorted({f for c in chains for f in c["missing_files"]}),
            "seconds": round(time.perf_counter() - t0, 1), "per_chain": chains}


def make_inputs(work: Path) -> tuple[Path, dict[str, Path]]:
    """A random tiny shift checkpoint (the trainers' ``--init``) and small synthetic sets (2 s
    scenes of 48 x 48 pixels at the tiny preset's rates): sync scenes (also ``prepare``'s input),
    separation scenes with stems, action scenes, each with a held-out set."""
    import torch

    from avscene.models import ShiftNet, get_preset
    from avscene.synth import ACTION_CLASSES, SceneConfig, ensure_dataset
    from avscene.synth.worlds import SYNTHETIC_SYNC_WORLDS

    cfg = get_preset("tiny")
    torch.manual_seed(0)
    init = save_checkpoint(work / "shift_init.pt", {"task": "shift", "model_config": cfg.to_dict(),
                                                    "model": ShiftNet(cfg).state_dict(), "step": 0})
    small = dict(fps=cfg.fps, sample_rate=cfg.sample_rate, duration_s=2.0, width=48, height=48)
    configs = {"sync": SceneConfig(task="sync", **small, **SYNTHETIC_SYNC_WORLDS["pulses"]),
               "separation": SceneConfig(task="separation", **small), "action": SceneConfig(task="action", **small)}
    sets = {}
    for task, config in configs.items():
        n = len(ACTION_CLASSES) if task == "action" else 6
        sets[task] = ensure_dataset(work / "sets" / task, n, 0, config=config, progress=False, stems=task == "separation")
        sets[f"{task}_val"] = ensure_dataset(work / "sets" / f"{task}_val", n, 10_000, config=config, progress=False,
                                             stems=task == "separation")
    return init, sets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=20, help="SIGKILLs per job")
    ap.add_argument("--jobs", nargs="+", default=["shift", "separation", "action", "prepare"])
    ap.add_argument("--steps", type=int, default=8, help="steps of each trainer")
    ap.add_argument("--work", type=Path, default=Path("runs/bench/soak_resume"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="soak_resume", help="results file name (benchmarks/results/NAME.json)")
    args = ap.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    init, sets = make_inputs(args.work)
    commands = job_commands(init, sets, args.steps)
    rng = random.Random(args.seed)
    jobs = {}
    for name in args.jobs:
        jobs[name] = soak_job(name, commands[name], args.work, args.kills, rng)
        row = jobs[name]
        print(f"{name}: {row['kills']} kills, {row['resumed']} resumed runs, {row['identical']}/{row['chains']} chains "
              f"identical, stray files {row['stray_files'] or 'none'}, {row['seconds']} s")
        # written after every job, so that an interrupted soak keeps what it found
        write_result(args.name, {"kills_per_job": args.kills, "seed": args.seed, "steps": args.steps, "jobs": jobs,
                                 "complete": len(jobs) == len(args.jobs),
                                 "all_identical": all(j["identical"] == j["chains"] for j in jobs.values()),
                                 "no_stray_files": not any(j["stray_files"] for j in jobs.values()),
                                 "no_missing_files": not any(j["missing_files"] for j in jobs.values()),
                                 "note": "2-core CPU shared with other jobs; seconds are wall times under that load"})


if __name__ == "__main__":
    main()
