"""Inference speed end to end (issue 28): real-time factor, peak memory and where the time goes,
for ``sync``, ``localize`` and ``separate`` on a 60 s 720p clip, before and after each lever.

The clip (made once with avscene's own writer): 1280x720 at 29.97 fps, a disc that moves and
flashes with a click in stereo AAC, on a smooth background. Networks have random weights (it is
timing; the verdicts of trained ones are measured by ``benchmarks/offset.py --step``). Each
configuration runs in its own process, so its peak RSS is its own, through the same functions
the commands call (``sync_file``; ``localize_file`` + ``write_cam_outputs``; ``separate_file`` +
``write_separation``). Shares of the wall time: ``decode`` = inside ``read_clip`` (decoding,
scaling, resampling), ``write`` = writing the outputs less the decoding they do, ``model`` = the
rest (the network and the arrays around it).

    flock /tmp/avscene-cpu.lock python benchmarks/inference.py [--only sync-small,...] [--seconds 60]

The ``before`` rows are the settings of the commands before issue 28 (fp32, full scan, overlays
at the source size, encoding in the same thread); the full paper scan is timed on its first
``--before-windows`` windows and its time scaled to all windows (marked ``projected``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from common import write_result

#: name -> (command, preset, settings). Settings are the options of the command's functions.
CONFIGS = {
    "sync-small-before": ("sync", "small", {"step": 1, "precision": "fp32"}),
    "sync-small": ("sync", "small", {"step": 4, "precision": "bf16"}),
    "sync-small-fp32": ("sync", "small", {"step": 4, "precision": "fp32"}),
    "sync-paper-before": ("sync", "paper", {"step": 1, "precision": "fp32", "project": True}),
    "sync-paper": ("sync", "paper", {"step": 4, "precision": "bf16"}),
    "sync-paper-step2": ("sync", "paper", {"step": 2, "precision": "bf16"}),
    "sync-small-step2": ("sync", "small", {"step": 2, "precision": "bf16"}),
    "sync-small-step2-all": ("sync", "small", {"step": 2, "coarse_windows": None, "precision": "bf16"}),
    "sync-paper-step2-all": ("sync", "paper", {"step": 2, "coarse_windows": None, "precision": "bf16",
                                               "project": True}),
    "sync-paper-noscan": ("sync", "paper", {"scan": False, "precision": "bf16"}),
    "sync-paper-noscan-cl": ("sync", "paper", {"scan": False, "precision": "bf16", "channels_last": True}),
    "sync-paper-noscan-fp32": ("sync", "paper", {"scan": False, "precision": "fp32"}),
    "localize-small-before": ("localize", "small", {"out_size": None, "precision": "fp32", "background": False}),
    "localize-small-source-size": ("localize", "small", {"out_size": None, "precision": "bf16"}),
    "localize-small": ("localize", "small", {"out_size": 360, "precision": "bf16"}),
    "localize-paper-before": ("localize", "paper-cam", {"out_size": None, "precision": "fp32", "background": False}),
    "localize-paper": ("localize", "paper-cam", {"out_size": 360, "precision": "bf16"}),
    "separate-paper-before": ("separate", "paper", {"precision": "fp32"}),
    "separate-paper": ("separate", "paper", {"precision": "bf16"}),
}
#: Issue 28's targets: the real-time factor (wall time / clip length) each "after" row must reach.
TARGETS = {"sync-small": 0.3, "sync-paper": 3.0, "sync-paper-step2": 3.0, "sync-small-step2": 0.3,
           "sync-small-step2-all": 0.3, "sync-paper-step2-all": 3.0,
           "sync-paper-noscan": 0.3, "localize-small": 0.2,
           "localize-paper": 0.5, "separate-paper": 0.5}
DEFAULT_ORDER = ["sync-small", "sync-paper-noscan", "sync-paper", "sync-paper-step2", "sync-small-step2",
                 "localize-small", "localize-paper", "separate-paper", "sync-small-before", "localize-small-before",
                 "separate-paper-before", "sync-paper-noscan-fp32", "sync-small-fp32", "localize-small-source-size",
                 "localize-paper-before", "sync-paper-before"]


def make_clip(path: Path, seconds: float, hw: tuple[int, int]) -> Path:
    """A ``seconds`` long clip of ``hw`` at 29.97 fps with stereo sound, written in chunks."""
    from avscene.media.writer import VideoWriter

    if path.exists():
        return path
    fps, rate = Fraction(30000, 1001), 48000
    h, w = hw
    n = int(seconds * fps)
    yy, xx = np.mgrid[0:h, 0:w]
    background = np.stack([xx * 200 // w, yy * 200 // h, np.full_like(xx, 80)], -1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(path, fps, hw, sample_rate=rate, channels=2) as out:
        for k0 in range(0, n, 30):
            frames, audio = [], []
            for k in range(k0, min(n, k0 + 30)):
                cx, cy = w / 2 + w / 3 * np.sin(k / 40), h / 2 + h / 4 * np.cos(k / 55)
                disc = (xx - cx) ** 2 + (yy - cy) ** 2 < (h / 10) ** 2
                frame = background.copy()
                frame[disc] = (255, 255, 255) if k % 15 == 0 else (220, 60, 60)
                frames.append(frame)
                samples = int((k + 1) * rate / fps) - int(k * rate / fps)
                sound = np.random.default_rng(k).normal(0, 0.01, (samples, 2))
                if k % 15 == 0:
                    sound[:400] += 0.5 * np.sin(np.arange(400) / 3)[:, None]
                audio.append(sound.astype(np.float32))
            out.write(np.stack(frames), np.concatenate(audio))
    return path


@contextlib.contextmanager
def timed_calls(module, name: str, totals: dict, key: str):
    """Add the seconds spent in ``module.name`` to ``totals[key]`` while the block runs."""
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - t0

    setattr(module, name, wrapper)
    try:
        yield
    finally:
        setattr(module, name, original)


def build_model(command: str, preset: str, device: str = "cpu"):
    import torch

    from avscene.models import SeparationNet, ShiftNet, get_preset
    from avscene.models.separation_net import get_preset as separation_preset

    torch.manual_seed(0)
    model = SeparationNet(separation_preset(preset)) if command == "separate" else ShiftNet(get_preset(preset))
    return model.to(device).eval()


def run_sync(model, clip: Path, settings: dict, totals: dict) -> dict:
    from avscene.infer import spans, sync

    options = sync.SyncOptions(step=settings.get("step", 1), scan=settings.get("scan", True),
                               coarse_windows=settings.get("coarse_windows", 4),
                               precision=settings["precision"], max_windows=settings.get("max_windows", 16),
                               channels_last=settings.get("channels_last", False))
    with timed_calls(spans, "read_clip", totals, "decode"):
        result = sync.sync_file(model, clip, options)
    return {"windows": len(result.windows), "offsets_scored_per_window": len(result.offsets_frames),
            "offset_frames": result.offset_frames}


def run_localize(model, clip: Path, settings: dict, totals: dict, out: Path) -> dict:
    from avscene.infer import localize, spans

    options = localize.LocalizeOptions(out_size=settings["out_size"], precision=settings["precision"])
    with timed_calls(spans, "read_clip", totals, "decode"), timed_calls(localize, "read_clip", totals, "decode"):
        result = localize.localize_file(model, clip, options)
        decode_before = totals["decode"]
        t0 = time.perf_counter()
        localize.write_cam_outputs(result, out, name=f"{out.name}", background=settings.get("background", True))
        totals["write"] += time.perf_counter() - t0 - (totals["decode"] - decode_before)
    return {"windows": len(result.window_starts), "cells_shape": list(result.cells.shape),
            "peaks_grid": list(result.map_hw),
            "overlay_hw": list(result.out_hw or result.frame_hw)}


def run_separate(model, clip: Path, settings: dict, totals: dict, out: Path) -> dict:
    from avscene.infer import separate

    options = separate.SeparateOptions(precision=settings["precision"])
    with timed_calls(separate, "read_clip", totals, "decode"):
        result = separate.separate_file(model, clip, options)
    t0 = time.perf_counter()
    separate.write_separation(result, out, name=out.name)
    totals["write"] += time.perf_counter() - t0
    return {"windows": len(result.window_starts_s)}


def run_one(name: str, clip: Path, work: Path, device: str = "cpu") -> dict:
    """Time configuration ``name`` in this process; its figures as a dict."""
    import torch

    from avscene.media import probe

    command, preset, settings = CONFIGS[name]
    settings = dict(settings)
    model = build_model(command, preset, device)
    duration = probe(clip).duration_s
    if settings.pop("project", False):
        settings["max_windows"] = 1  # the full paper scan of one window, scaled to all of them
    totals = {"decode": 0.0, "write": 0.0}
    out = work / name
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    runner = {"sync": run_sync, "localize": run_localize, "separate": run_separate}[command]
    details = runner(model, clip, settings, totals) if command == "sync" else runner(model, clip, settings, totals, out)
    wall = time.perf_counter() - t0
    row = {"config": name, "command": command, "preset": preset, "settings": CONFIGS[name][2],
           "clip_s": round(duration, 3), "wall_s": round(wall, 2), "real_time_factor": round(wall / duration, 3),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "share": {"decode": round(totals["decode"] / wall, 3), "write": round(totals["write"] / wall, 3),
                     "model": round(1 - (totals["decode"] + totals["write"]) / wall, 3)},
           "device": device, "torch_threads": torch.get_num_threads(), **details}
    if CONFIGS[name][2].get("project"):
        full = 16  # windows the command plans on this clip (max_windows 16)
        from avscene.windows import plan_windows
        from avscene.constants import frames_in
        cfg = model.config
        full = len(plan_windows(frames_in(duration, cfg.fps), cfg.n_frames, cfg.n_frames, max_windows=16,
                                align="center"))
        row["projected_real_time_factor"] = round(wall / details["windows"] * full / duration, 3)
        row["projection"] = f"timed on {details['windows']} window(s), scaled to the {full} the command scans"
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(DEFAULT_ORDER), help="comma-separated configurations")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--work", type=Path, default=Path("runs/bench/inference"))
    ap.add_argument("--name", default="inference", help="results file name")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, mps")
    ap.add_argument("--merge", default=None, metavar="NAME,NAME",
                    help="only combine these results files' rows into --name, with the targets table")
    ap.add_argument("--note", default=None,
                    help="what the results file says of the machine's state")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child process: one configuration
    args = ap.parse_args()
    clip = args.work / f"clip_{int(args.seconds)}s_720p.mp4"
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one, clip, args.work, args.device)), flush=True)
        return
    if args.merge:
        merge(args.merge.split(","), args.name, args.note)
        return
    rows, note = [], args.note or "2-core CPU shared with other work: timings +-30 %"
    for row in run_all(args.only.split(","), args.seconds, args.work, args.device):
        rows.append(row)
        write_result(args.name, {"clip": {"seconds": args.seconds, "size": "1280x720", "fps": "30000/1001",
                                          "audio": "AAC 48 kHz stereo"}, "note": note, "rows": rows})


def merge(names: list[str], name: str, note: str | None = None) -> None:
    """Combine the rows of results files ``names`` into ``name`` with a table: each target's
    configuration after (``TARGETS``) and before (``<config>-before``), and whether it is met. A
    configuration in several files takes its row from the last; ``note`` (default: the first
    file's) says what the machine was doing."""
    from common import RESULTS

    parts = [json.loads((RESULTS / f"{n}.json").read_text()) for n in names if (RESULTS / f"{n}.json").exists()]
    rows = {row["config"]: row for part in parts for row in part["rows"]}
    table = []
    for config, target in TARGETS.items():
        after = rows.get(config, {})
        before = rows.get(f"{config}-before") or rows.get(f"{config}-fp32", {})
        rtf = after.get("projected_real_time_factor", after.get("real_time_factor"))
        table.append({"config": config, "target_real_time_factor": target, "after": rtf,
                      "before": before.get("projected_real_time_factor", before.get("real_time_factor")),
                      "before_config": before.get("config"), "met": None if rtf is None else bool(rtf <= target)})
        print(f"{config:22s} after {rtf}  before {table[-1]['before']}  target <= {target}  met {table[-1]['met']}")
    write_result(name, {"clip": parts[0]["clip"], "note": note or parts[0]["note"], "targets": table,
                        "from": names, "rows": list(rows.values())})


def run_all(names: list[str], seconds: float, work: Path, device: str = "cpu"):
    """Make the clip, then time each configuration in a process of its own; yields their rows."""
    clip = work / f"clip_{int(seconds)}s_720p.mp4"
    t0 = time.perf_counter()
    make_clip(clip, seconds, (720, 1280))
    print(f"clip {clip} ready ({time.perf_counter() - t0:.0f} s)", flush=True)
    for name in names:
        proc = subprocess.run([sys.executable, __file__, "--one", name, "--seconds", str(seconds),
                               "--work", str(work), "--device", device], capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        row = json.loads(lines[-1][7:]) if lines else {"config": name, "error": proc.stderr[-2000:]}
        print(json.dumps(row), flush=True)
        yield row


if __name__ == "__main__":
    main()
