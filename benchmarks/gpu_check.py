"""One GPU check, under 8 minutes (issue 28): training throughput and MFU of the paper preset in
bf16 fed from shards, the inference real-time factors of ``benchmarks/inference.py`` on the GPU,
and whether a few training steps on the GPU match the same steps on the CPU.

    benchmarks/gpu_check.sh              # on a machine with a CUDA GPU
    benchmarks/gpu_check.sh --dry-run    # anywhere, in seconds: tiny sizes on the CPU

Steps (each timed, each with its own part of the JSON; a failing step records its error and
the others still run):

1. ``shards``: synthetic scenes (``avscene synth``) cut into shards for the preset (``avscene
   prepare``), the loader's input.
2. ``train``: :func:`train_throughput.measure` twice, bf16 + channels-last: fed from the shards
   (clips/s, the share of each step the GPU is busy) and from tensors already on the GPU (the
   model alone); MFU against the card's dense bf16 peak (H100 SXM and H200: 989 TFLOP/s,
   table in ``train_throughput.PEAK_BF16_FLOPS``). The scale target is MFU >= 40 %.
3. ``correctness``: the same model, batch and ``--correctness-steps`` SGD steps in fp32 on the
   CPU and on the GPU (TF32 off): losses and weights must agree within ``TOLERANCE``.
4. ``inference``: the ``benchmarks/inference.py`` configurations with ``--device cuda``.

Writes ``benchmarks/results/gpu_<card>.json`` (``<card>`` from ``torch.cuda.get_device_name``),
or ``--out``. ``--dry-run`` runs every step with the ``tiny`` preset on the CPU and writes
``gpu_dry_run.json`` unless ``--out`` says where.
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
import time
from pathlib import Path

import torch

import inference
import train_throughput
from common import RESULTS, machine_info

from avscene.files import write_json

#: Largest differences allowed between the CPU's and the GPU's fp32 training steps: the loss
#: (absolute) and each weight tensor (max |difference| over max |weight|).
TOLERANCE = {"loss": 2e-3, "weights_relative": 2e-3}

#: What each mode runs: the preset, the synthetic scenes and shards, the training sizes and the
#: inference configurations (``benchmarks/inference.py``) on a clip of ``clip_s`` seconds.
MODES = {
    "gpu": {"preset": "paper", "scenes": 24, "scene_size": 224, "scene_s": 12.0, "clips_per_shard": 2,
            "batch": 32, "steps": 10, "warmup": 3, "workers": 8, "check_preset": "small", "check_batch": 4,
            "clip_s": 60.0, "configs": ["sync-paper-noscan", "sync-paper", "sync-small", "localize-paper",
                                        "localize-small", "separate-paper"]},
    "dry-run": {"preset": "tiny", "scenes": 3, "scene_size": 48, "scene_s": 2.0, "clips_per_shard": 1,
                "batch": 2, "steps": 2, "warmup": 0, "workers": 0, "check_preset": "small", "check_batch": 2,
                "clip_s": 2.0, "configs": ["sync-small"]},
}


def make_shards(work: Path, mode: dict) -> dict:
    """Synthetic scenes cut into shards for ``mode["preset"]``; returns where and how many."""
    avscene = [sys.executable, "-m", "avscene"]
    scenes, shards = work / "scenes", work / "shards"
    subprocess.run([*avscene, "synth", str(scenes), "--n", str(mode["scenes"]), "--task", "sync", "--size",
                    str(mode["scene_size"]), "--duration-s", str(mode["scene_s"]), "--quiet"], check=True)
    subprocess.run([*avscene, "prepare", str(scenes), "--out", str(shards), "--preset", mode["preset"],
                    "--clips-per-shard", str(mode["clips_per_shard"]), "--workers", "8", "--quiet"], check=True)
    return {"shards": str(shards), "n_shards": len(list(shards.glob("*.tar")))}


def train_speed(shards: str, mode: dict, device: str) -> dict:
    """Throughput and MFU from shards and from tensors on the device (bf16, channels-last)."""
    common = ["--preset", mode["preset"], "--batch-size", str(mode["batch"]), "--steps", str(mode["steps"]),
              "--warmup", str(mode["warmup"]), "--precision", "bf16", "--channels-last", "--device", device]
    out = {}
    for name, extra in (("from_shards", ["--with-loader", shards, "--workers", str(mode["workers"])]),
                        ("model_only", [])):
        r = train_throughput.measure(train_throughput.get_parser().parse_args(common + extra))
        out[name] = {k: r[k] for k in ("batch_size", "clips_per_s", "step_s_mean", "device_busy_fraction",
                                       "achieved_tflops", "peak_tflops", "mfu", "peak_memory_mb", "data")}
    mfu = out["from_shards"]["mfu"]
    out["target"] = "MFU >= 0.40 of the card's dense bf16 peak, fed from shards"
    out["met"] = None if mfu is None else bool(mfu >= 0.40)
    return out


def _train_steps(model, batch: dict, device: torch.device, steps: int) -> tuple[list[float], dict]:
    """``steps`` plain SGD steps of the shift loss (both tracks through the net, labels 1 and
    0) in fp32 on ``device``; returns the losses and the final weights (on the CPU)."""
    from avscene.data.shift_pairs import frames_to_video

    torch.manual_seed(0)  # the same fractional-pooling boundaries (drawn from the CPU's generator) on each device
    model = model.to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    video = frames_to_video(batch["frames"].to(device))  # (B, 3, T, H, W)
    aligned, shifted = batch["audio_aligned"].to(device), batch["audio_shifted"].to(device)  # (B, C, N)
    losses = []
    for _ in range(steps):
        pos, neg = model.forward_pair(video, aligned, shifted)  # (B,), (B,)
        logits = torch.cat([pos, neg])
        labels = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses, {k: v.detach().cpu() for k, v in model.state_dict().items()}


def correctness(mode: dict, device: str, steps: int) -> dict:
    """The same fp32 training steps on the CPU and on ``device``: the largest differences."""
    from avscene.models import ShiftNet, get_preset

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cfg = get_preset(mode["check_preset"])
    torch.manual_seed(0)
    model = ShiftNet(cfg)
    batch = train_throughput.random_batch(cfg, mode["check_batch"], torch.device("cpu"),
                                          torch.Generator().manual_seed(0))
    cpu_losses, cpu_weights = _train_steps(copy.deepcopy(model), batch, torch.device("cpu"), steps)
    dev_losses, dev_weights = _train_steps(copy.deepcopy(model), batch, torch.device(device), steps)
    loss_diff = max(abs(a - b) for a, b in zip(cpu_losses, dev_losses))
    weight_diff = max(float((cpu_weights[k].float() - dev_weights[k].float()).abs().max()
                            / cpu_weights[k].float().abs().max().clamp_min(1e-12))
                      for k in cpu_weights if cpu_weights[k].is_floating_point())
    return {"preset": mode["check_preset"], "steps": steps, "batch": mode["check_batch"], "precision": "fp32, TF32 off",
            "losses_cpu": cpu_losses, "losses_device": dev_losses, "max_loss_difference": loss_diff,
            "max_weight_difference_relative": weight_diff, "tolerance": TOLERANCE,
            "match": bool(loss_diff <= TOLERANCE["loss"] and weight_diff <= TOLERANCE["weights_relative"])}


def card_slug(device: str) -> str:
    return train_throughput.device_slug(torch.device(device)) if device.startswith("cuda") else "dry_run"


def run_step(report: dict, name: str, work) -> None:
    """``report[name] = work()`` with its seconds; an error is recorded, not raised."""
    t0 = time.perf_counter()
    try:
        report[name] = work()
    except Exception as err:  # noqa: BLE001 - one step's failure must not lose the others' figures
        report[name] = {"error": f"{type(err).__name__}: {err}"}
    report.setdefault("seconds", {})[name] = round(time.perf_counter() - t0, 1)
    print(f"{name}: {report[name]}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU, in seconds")
    ap.add_argument("--work", type=Path, default=Path("runs/bench/gpu_check"))
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/gpu_<card>.json)")
    ap.add_argument("--correctness-steps", type=int, default=3)
    args = ap.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here: run with --dry-run to check the script on the CPU")
    mode = MODES["dry-run" if args.dry_run else "gpu"]
    device = "cpu" if args.dry_run else "cuda"
    args.work.mkdir(parents=True, exist_ok=True)
    report = {"mode": "dry-run" if args.dry_run else "gpu", "device": device,
              "device_name": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "machine": machine_info()}
    out = args.out or RESULTS / f"gpu_{card_slug(device)}.json"
    t0 = time.perf_counter()

    def save() -> None:  # after every step and row, so a run cut off by its time limit keeps what it measured
        report["total_seconds"] = round(time.perf_counter() - t0, 1)
        write_json(out, report)

    def train() -> dict:
        shards = report["shards"].get("shards")
        return train_speed(shards, mode, device) if shards else {"error": "no shards"}

    steps = {"shards": lambda: make_shards(args.work, mode), "train": train,
             "correctness": lambda: correctness(mode, device, args.correctness_steps)}
    for name, work in steps.items():
        run_step(report, name, work)
        save()
    rows = report["inference"] = []
    try:
        for row in inference.run_all(mode["configs"], mode["clip_s"], args.work / "inference", device):
            rows.append(row)
            save()
    except Exception as err:  # noqa: BLE001 - keep the rows measured before the failure
        rows.append({"error": f"{type(err).__name__}: {err}"})
    save()
    print(f"wrote {out} in {report['total_seconds']} s")
    return 0 if all("error" not in report[name] for name in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
