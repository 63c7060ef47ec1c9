"""The demo's figures (issue 27): every capability's headline on held-out synthetic data against
its baseline, the gain, the minutes each stage took, the wall time and the machine.

Runs ``avscene demo`` (what ``make demo`` runs) into ``--out``, or, given ``--summary``, reads a
finished run's ``summary.json`` instead; writes ``benchmarks/results/<--name>.json`` (default
``demo.json``). Timings are only comparable on the same machine (recorded with them); a run that
reused finished steps (``run.reused``) is flagged: its minutes are those of the run that made them.

    python benchmarks/demo.py --clips ../shared/clips                # a full demo, about 15 minutes on 2 cores
    python benchmarks/demo.py --summary runs/demo/summary.json        # the figures of a finished run
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from common import write_result

from avscene.demo import run_demo


def headlines(summary: dict) -> dict[str, dict]:
    """Each step's headline with its gain (``value - baseline``, in the headline's unit; rates
    as fractions) and whether it beats its target (a gain above ``target``, 0 by default)."""
    out = {}
    for step in summary.get("steps", []):
        h = step.get("headline")
        if not h:
            continue
        gain = h["value"] - h["baseline"]
        target = h.get("target", 0.0)
        out[step["name"]] = {**h, "gain": round(gain, 4), "target": target,
                             "met": bool(math.isfinite(gain) and gain > target), "result": step.get("result")}
    return out


def figures(summary: dict, summary_path: Path) -> dict:
    """The JSON written to ``benchmarks/results``: headlines, stage minutes, wall time, machine."""
    run = summary.get("run", {})
    table = headlines(summary)
    return {
        "summary": str(summary_path),
        "headlines": table,
        "all_met": bool(table) and all(h["met"] for h in table.values()),
        "metrics": {s["name"]: s.get("metrics", {}) for s in summary.get("steps", [])},
        "minutes": run.get("minutes"),
        "wall_minutes": run.get("wall_minutes"),
        "reused_steps": run.get("reused", []),
        "demo_machine": run.get("machine"),
        "real_clip_network": (summary.get("real_clip_maps") or {}).get("network", {}).get("name"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--summary", type=Path, help="a finished demo's summary.json (default: run the demo)")
    ap.add_argument("--out", type=Path, default=Path("runs/bench/demo"), help="where the demo runs")
    ap.add_argument("--clips", type=Path, help="real videos for the demo's last section")
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--name", default="demo", help="results file: benchmarks/results/<name>.json")
    args = ap.parse_args()

    if args.summary is None:
        run_demo(args.out, minutes=args.minutes, clips=args.clips)
        args.summary = args.out / "summary.json"
    if not args.summary.is_file():
        raise SystemExit(f"{args.summary}: no such summary.json (run the demo first, or leave out --summary)")
    summary = json.loads(args.summary.read_text())
    result = figures(summary, args.summary)
    for name, h in result["headlines"].items():
        unit = h.get("unit", "")
        print(f"{name:11s} {h['metric']}: {h['value']:.4g} vs {h['baseline']:.4g} ({h['baseline_name']}), "
              f"gain {h['gain']:+.4g} {'' if unit == 'fraction' else unit} -> {'met' if h['met'] else 'NOT met'}")
    print(f"wall {result['wall_minutes']} minutes; per stage {result['minutes']}")
    if result["reused_steps"]:
        print(f"note: reused finished steps {result['reused_steps']}; their minutes come from the run that made them")
    write_result(args.name, result)


if __name__ == "__main__":
    main()
