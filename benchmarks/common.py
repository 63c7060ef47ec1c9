"""What every benchmark shares: a description of the machine, writing results as JSON, and reusing
finished training runs of the same budget."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from avscene.checkpoints import load_checkpoint
from avscene.files import write_json

RESULTS = Path(__file__).resolve().parent / "results"


def machine_info() -> dict:
    import torch

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import av

        info["pyav"] = av.__version__
    except ImportError:
        pass
    return info


def write_result(name: str, result: dict) -> Path:
    """Write ``result`` with the machine's description to ``benchmarks/results/<name>.json``."""
    payload = {"benchmark": name, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": machine_info(), **result}
    path = write_json(RESULTS / f"{name}.json", payload)
    print(f"wrote {path}")
    return path


#: What a benchmark's training run records beside its checkpoint: the budget it was trained with
#: (fields that must match for it to be reused; ``steps`` may grow) and the seconds its steps took.
BUDGET_FILE, TIMING_FILE = "bench_budget.json", "bench_timing.json"


def reuse_or_start(run_dir: Path, budget: dict, steps: int, fresh: bool) -> int:
    """Steps the run in ``run_dir`` has done (0: start anew); an error if it was made with
    another budget or went past ``steps`` (unless ``fresh``, which starts over). Records
    ``budget`` for the run about to be trained."""
    ckpt = run_dir / "checkpoint.pt"
    done = 0
    if not fresh and ckpt.exists():
        record = run_dir / BUDGET_FILE
        old = json.loads(record.read_text()) if record.exists() else None
        done = int(load_checkpoint(ckpt)["step"])
        diff = sorted(k for k in set(budget) | set(old or {}) if (old or {}).get(k) != budget.get(k))
        if diff == ["lr_drop_step"] and done <= _first_drop(old, budget):
            diff = []  # the schedules agree on every step done so far: continue under the new one
        if diff or done > steps:
            raise SystemExit(f"{run_dir} was trained with another budget ({', '.join(diff) or f'{done} > {steps} steps'} "
                             f"differ); pass --fresh to retrain it or choose another --out")
    write_json(run_dir / BUDGET_FILE, budget)
    return done


def _first_drop(old: dict, new: dict) -> int:
    """The first step at which the lr drops in either budget (``lr_drop_step``; absent or None:
    never)."""
    drops = [b.get("lr_drop_step") for b in (old, new)]
    return min((d for d in drops if d is not None), default=2**62)


def record_training_time(run_dir: Path, start: int, steps: int, seconds: float) -> dict:
    """The run's training time over all its calls, ``{"seconds", "steps"}``: ``seconds`` of this
    call, which trained steps ``start..steps``, added to what earlier calls recorded."""
    path = run_dir / TIMING_FILE
    timing = json.loads(path.read_text()) if start and path.exists() else {"seconds": 0.0, "steps": 0}
    if steps > start:  # time only the steps this call trained
        timing = {"seconds": timing["seconds"] + seconds, "steps": timing["steps"] + steps - start}
        write_json(path, timing)
    return timing
