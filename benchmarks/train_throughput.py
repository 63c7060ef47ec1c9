"""Training throughput of the shift task: clips/s, step time, peak memory, FLOP/s and MFU.

    python benchmarks/train_throughput.py [--preset paper] [--batch-size B] [--steps 10] [--warmup 3]
        [--precision fp32|bf16] [--channels-last] [--compile] [--device auto]
        [--with-loader SHARDS [--workers N]] [--peak-tflops T] [--results-name NAME]

One optimizer step is what :func:`avscene.train.loop.fit` does for one micro-batch: the shift
task's loss (visual stem once, audio and fused trunk twice, :meth:`ShiftTask.loss
<avscene.train.shift.ShiftTask.loss>`) under the chosen autocast, backward, grad-norm clip, SGD
step. By default the batch is random tensors already on the device (model-only throughput);
``--with-loader SHARDS`` feeds it from shards (``avscene prepare`` output for the same preset)
through the training DataLoader instead, and splits each step into data wait (blocked on the
loader) and compute, whose share is the fraction of the step the device is busy.

Timing: ``--warmup`` untimed steps (``--compile`` compiles there), then ``--steps`` timed steps,
each ended by a device synchronisation; step time mean and median, clips/s = batch / mean.
FLOPs (convolutions and matmuls, counted on the meta device by ``FlopCounterMode``): the
single-pass forward per clip (``benchmarks/model_cost.py``'s count, what inference costs) and
the training forward (the paired forward above); a training step costs 3x its forward
(backward = 2x). Achieved FLOP/s = training FLOPs per clip x clips/s. On CUDA, MFU = achieved /
the GPU's peak dense bf16 FLOP/s (table below, or ``--peak-tflops``), reported for fp32 too
(then against the bf16 peak). Peak memory: ``torch.cuda.max_memory_allocated`` on CUDA; on CPU
the process's peak RSS (and its growth over the RSS before the first step).

Writes ``benchmarks/results/train_throughput_<device>_<precision>[_<preset>][_cl][_compile][_loader].json``
(preset when not ``paper``; ``<device>`` = ``cpu`` or the GPU's name, e.g. ``h100-80gb-hbm3``), or
``<NAME>.json`` with ``--results-name``.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

if importlib.util.find_spec("avscene") is None:  # run as a script from a checkout without installing it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avscene.data.videos import VideoIndex
from avscene.models import PRESETS, ShiftNet, get_preset
from avscene.train.loop import MicroBatchSampler, TrainConfig, build_optimizer
from avscene.train.runtime import Runtime, autocast, pick_device
from avscene.train.shift import PairForward, ShiftTask, make_shift_task
from common import write_result
from model_cost import _device_name, _rss_bytes, _sync, count_flops

#: Peak dense bf16 tensor FLOP/s by GPU name (first match wins; vendor data sheets).
PEAK_BF16_FLOPS = (
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),  # SXM (HBM3)
    ("A100", 312e12),
)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="paper", choices=sorted(PRESETS))
    p.add_argument("--batch-size", type=int, default=None, help="clips per step (default: 32 on a GPU, 2 on a CPU)")
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation, allocator, cudnn autotune)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--channels-last", action="store_true", help="channels_last_3d weights (as fit --channels-last)")
    p.add_argument("--compile", action="store_true", help="torch.compile the training forward")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1")
    p.add_argument("--with-loader", dest="with_loader", default=None, metavar="SHARDS",
                   help="feed the steps from these shards (prepared for --preset) through the training loader")
    p.add_argument("--workers", type=int, default=4, help="DataLoader workers with --with-loader")
    p.add_argument("--peak-tflops", type=float, default=None, help="peak dense FLOP/s of the device for MFU (TFLOP/s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results-name", dest="results_name", default=None,
                   help="write benchmarks/results/NAME.json instead of the default name")
    return p


def count_train_forward_flops(preset: str, batch: int) -> float:
    """FLOPs of the training forward (:meth:`ShiftNet.forward_pair`: stem once, two audio
    tracks) of one batch, counted on the meta device as ``model_cost.count_flops`` counts the
    single forward."""
    cfg = get_preset(preset)
    with torch.device("meta"):
        net = ShiftNet(cfg).train()
        video = torch.empty(batch, *cfg.video_shape)  # (B, 3, T, H, W)
        audio = torch.empty(batch, *cfg.audio_shape)  # (B, C, N)
        counter = FlopCounterMode(display=False)
        with counter:
            net.forward_pair(video, audio, audio)
    return float(counter.get_total_flops())


def peak_flops(device: torch.device, override_tflops: float | None) -> float | None:
    """Peak dense bf16 FLOP/s of a CUDA device (None when unknown or not CUDA)."""
    if override_tflops:
        return override_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, flops in PEAK_BF16_FLOPS:
        if key in name:
            return flops
    print(f"warning: peak bf16 FLOP/s of {name!r} unknown; MFU left null (give --peak-tflops)", file=sys.stderr)
    return None


def random_batch(cfg, batch: int, device: torch.device, generator: torch.Generator) -> dict:
    """What the shard loader yields, as random tensors already on ``device``."""
    frames = torch.randint(0, 256, (batch, cfg.n_frames, cfg.crop_size, cfg.crop_size, 3), dtype=torch.uint8,
                           generator=generator)  # (B, T, H, W, 3)
    audio = (torch.rand(2, batch, cfg.audio_channels, cfg.n_samples, generator=generator) - 0.5)  # 2 x (B, C, N)
    return {"frames": frames.to(device), "audio_aligned": audio[0].to(device), "audio_shifted": audio[1].to(device)}


def device_slug(device: torch.device) -> str:
    if device.type != "cuda":
        return device.type
    name = torch.cuda.get_device_name(device).lower().replace("nvidia", "")
    return re.sub(r"[^a-z0-9]+", "-", name).strip("-")


def measure(args: argparse.Namespace) -> dict:
    device = pick_device(args.device)
    cfg = get_preset(args.preset)
    b = args.batch_size or (32 if device.type == "cuda" else 2)
    train_cfg = TrainConfig(out_dir="", steps=args.warmup + args.steps, global_batch=b, micro_batch=b,
                            precision=args.precision, channels_last=args.channels_last, compile=args.compile,
                            seed=args.seed, num_workers=args.workers)
    runtime = Runtime(0, 1, 0, device)

    # the data: random tensors on the device, or the training loader over shards
    if args.with_loader:
        task = make_shift_task(args.with_loader, cfg, val_data=args.with_loader, seed=args.seed,
                               num_workers=args.workers)
        loader = torch.utils.data.DataLoader(
            task.train_dataset(), batch_sampler=MicroBatchSampler(0, train_cfg.steps, b, b, runtime),
            num_workers=args.workers, pin_memory=device.type == "cuda", prefetch_factor=4 if args.workers else None)
        batches = iter(loader)
    else:
        task = ShiftTask(cfg, VideoIndex((), ()), VideoIndex((), ()), seed=args.seed)
        fixed = random_batch(cfg, b, device, torch.Generator().manual_seed(args.seed))
        batches = iter(lambda: fixed, None)

    # the model and optimizer as fit builds them
    torch.manual_seed(args.seed)
    model = task.build_model().to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    opt, sched = build_optimizer(model, train_cfg)
    run_model = PairForward(model)
    if args.compile:
        run_model = torch.compile(run_model)
    model.train()

    def step() -> tuple[float, float, float]:
        """One optimizer step -> (seconds waiting for data, seconds computing, loss)."""
        t0 = time.perf_counter()
        batch = next(batches)
        t1 = time.perf_counter()
        with autocast(device, args.precision):
            loss, metrics = task.loss(run_model, batch, device)  # metrics: a host sync, as in fit
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        _sync(device)
        return t1 - t0, time.perf_counter() - t1, metrics["loss"]

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rss_before = _rss_bytes()[0]
    waits, computes, losses = [], [], []
    for _ in range(args.steps):
        wait, compute, loss = step()
        waits.append(wait)
        computes.append(compute)
        losses.append(loss)
    if device.type == "cuda":
        peak_mem = {"peak_memory_mb": torch.cuda.max_memory_allocated(device) / 2**20,
                    "memory_measure": "torch.cuda.max_memory_allocated"}
    else:
        peak_rss = _rss_bytes()[1]
        peak_mem = {"peak_memory_mb": peak_rss / 2**20,
                    "peak_memory_growth_mb": max(0, peak_rss - rss_before) / 2**20,
                    "memory_measure": "process peak RSS (growth: over the RSS before the timed steps)"}

    step_times = [w + c for w, c in zip(waits, computes)]
    mean_s = statistics.fmean(step_times)
    clips_per_s = b / mean_s
    # per clip, counted on 2 clips: train-mode batch norm needs more than one value per channel
    fwd_flops = count_flops(args.preset, 2)[0] / 2  # count_flops -> (single-pass forward, fwd+bwd)
    train_fwd_flops = count_train_forward_flops(args.preset, 2) / 2
    train_flops = 3 * train_fwd_flops
    achieved = train_flops * clips_per_s
    peak = peak_flops(device, args.peak_tflops)
    return {
        "argv": sys.argv[1:],
        "preset": args.preset,
        "n_params": sum(p.numel() for p in model.parameters()),
        "device": device.type,
        "device_name": _device_name(device),
        "device_slug": device_slug(device),
        "batch_size": b,
        "precision": args.precision,
        "channels_last": args.channels_last,
        "compile": args.compile,
        "data": (f"shards {args.with_loader} ({args.workers} workers)" if args.with_loader
                 else "random tensors on device"),
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        "step_s_mean": mean_s,
        "step_s_median": statistics.median(step_times),
        "step_s_min": min(step_times),
        "clips_per_s": clips_per_s,
        "data_wait_s_mean": statistics.fmean(waits),
        "compute_s_mean": statistics.fmean(computes),
        "device_busy_fraction": sum(computes) / sum(step_times),
        **peak_mem,
        "forward_gflops_per_clip": fwd_flops / 1e9,
        "train_forward_gflops_per_clip": train_fwd_flops / 1e9,
        "train_gflops_per_clip": train_flops / 1e9,
        "achieved_tflops": achieved / 1e12,
        "peak_tflops": None if peak is None else peak / 1e12,
        "mfu": None if peak is None else achieved / peak,
        "loss_first_last": [losses[0], losses[-1]],
        "torch_threads": torch.get_num_threads(),
    }


def print_summary(r: dict) -> None:
    print(f"shift '{r['preset']}' training ({r['n_params'] / 1e6:.2f} M params) on {r['device_name']} "
          f"({r['device']}), batch {r['batch_size']}, {r['precision']}"
          f"{', channels_last_3d' if r['channels_last'] else ''}{', compiled' if r['compile'] else ''}; {r['data']}")
    print(f"  step {r['step_s_mean']:.4f} s mean, {r['step_s_median']:.4f} s median over {r['timed_steps']} steps "
          f"-> {r['clips_per_s']:.2f} clips/s")
    print(f"  data wait {r['data_wait_s_mean']:.4f} s, compute {r['compute_s_mean']:.4f} s per step: "
          f"device busy {r['device_busy_fraction']:.1%}")
    print(f"  FLOPs per clip: forward {r['forward_gflops_per_clip']:.4g} G, training forward "
          f"{r['train_forward_gflops_per_clip']:.4g} G, training step {r['train_gflops_per_clip']:.4g} G; "
          f"achieved {r['achieved_tflops']:.4g} TFLOP/s"
          + (f", MFU {r['mfu']:.1%} of {r['peak_tflops']:.0f} TFLOP/s" if r["mfu"] is not None else ""))
    print(f"  peak memory {r['peak_memory_mb']:.0f} MiB ({r['memory_measure']})")


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        raise SystemExit("--steps must be >= 1 and --warmup >= 0")
    result = measure(args)
    print_summary(result)
    name = args.results_name
    if name is None:
        name = f"train_throughput_{result['device_slug']}_{args.precision}"
        name += f"_{args.preset}" if args.preset != "paper" else ""
        for flag, suffix in ((args.channels_last, "_cl"), (args.compile, "_compile"), (args.with_loader, "_loader")):
            name += suffix if flag else ""
    write_result(name, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
