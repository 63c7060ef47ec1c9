"""The GPU check (benchmarks/gpu_check.sh) runs end to end in its CPU dry-run mode: shards,
training throughput from them, CPU-vs-device agreement of training steps, inference timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run_writes_every_part(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run([str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", "--work", str(tmp_path / "work"),
                           "--out", str(out), "--correctness-steps", "2"], env=env, capture_output=True, text=True,
                          timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["mode"] == "dry-run" and report["shards"]["n_shards"] >= 2
    assert report["train"]["from_shards"]["clips_per_s"] > 0 and report["train"]["model_only"]["clips_per_s"] > 0
    assert report["train"]["from_shards"]["data"].startswith("shards")
    check = report["correctness"]
    assert check["match"] and len(check["losses_cpu"]) == 2 and check["max_loss_difference"] == 0.0
    (row,) = report["inference"]
    assert row["config"] == "sync-small" and row["real_time_factor"] > 0 and "error" not in row
    assert set(row["share"]) == {"decode", "write", "model"}
