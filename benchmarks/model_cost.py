"""Cost of one shift-net preset: time, memory and FLOPs per clip, forward and forward+backward.

    python benchmarks/model_cost.py --preset paper --batch-size 1 --repeats 3 [--dtype bf16]
        [--channels-last] [--peak-tflops 989]

Runs on CUDA when available (bf16 autocast and channels_last_3d when asked), else on CPU.
Forward = eval mode under ``torch.no_grad`` (inference); forward+backward = train mode, the
shift loss on the logits, ``backward()`` (one training step without the optimizer).
FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on the meta device (convolutions
and matmuls only; BN, ReLU and pooling are not counted). Peak memory is
``torch.cuda.max_memory_allocated`` on CUDA, and on CPU the growth of the process's peak RSS
(``psutil`` if installed, else ``resource.getrusage``) over the RSS after building the model.
Prints a table and writes JSON to ``benchmarks/results/model_cost_<preset>_<device>[_bf16][_cl].json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

try:
    import avscene  # noqa: F401
except ImportError:  # run as a script from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avscene.models import PRESETS, ShiftNet, get_preset

RESULTS = Path(__file__).resolve().parent / "results"


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="paper", choices=sorted(PRESETS))
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs before timing")
    p.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32",
                   help="bf16 = autocast to bfloat16 (weights stay float32)")
    p.add_argument("--channels-last", action="store_true", help="torch.channels_last_3d video")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="device peak TFLOP/s for MFU (e.g. 989 for H100 SXM bf16 dense)")
    p.add_argument("--out", type=Path, default=None, help="JSON path (default under results/)")
    return p


def _rss_bytes() -> tuple[int, int]:
    """(current RSS, peak RSS) of this process in bytes."""
    try:
        import psutil

        info = psutil.Process().memory_info()
        peak = getattr(info, "peak_wset", None) or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return info.rss, peak
    except ImportError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        with open("/proc/self/statm") as f:
            current = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        return current, peak


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_flops(preset: str, batch: int) -> tuple[float, float]:
    """(forward, forward+backward) FLOPs of one batch, counted on the meta device."""
    cfg = get_preset(preset)
    with torch.device("meta"):
        net = ShiftNet(cfg)
        video = torch.empty(batch, *cfg.video_shape)
        audio = torch.empty(batch, *cfg.audio_shape)
        counter = FlopCounterMode(display=False)
        with counter:
            net.eval()(video, audio)
        fwd = counter.get_total_flops()
        counter = FlopCounterMode(display=False)
        with counter:
            net.train()(video, audio).sum().backward()
        train = counter.get_total_flops()
    return float(fwd), float(train)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def measure(args: argparse.Namespace) -> dict:
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cfg = get_preset(args.preset)
    b = args.batch_size
    torch.manual_seed(0)
    net = ShiftNet(cfg).to(device)
    video = torch.rand(b, *cfg.video_shape, device=device) * 2 - 1
    audio = (torch.rand(b, *cfg.audio_shape, device=device) * 2 - 1) * 0.5
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last_3d)
        video = video.contiguous(memory_format=torch.channels_last_3d)
    labels = torch.arange(b, device=device).remainder(2).float()
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if args.dtype == "bf16"
                else contextlib.nullcontext())

    def forward() -> None:
        with torch.no_grad(), autocast:
            net(video, audio)

    def train_step() -> None:
        with autocast:
            loss = F.binary_cross_entropy_with_logits(net(video, audio), labels)
        loss.backward()
        net.zero_grad(set_to_none=True)

    def timed(fn, mode: str) -> tuple[float, int]:
        net.train(mode == "train")
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        else:
            base = _rss_bytes()[0]
        for _ in range(args.warmup):
            fn()
        times = []
        for _ in range(args.repeats):
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - t0)
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device) - base
        else:
            peak = _rss_bytes()[1] - base
        return statistics.median(times), max(peak, 0)

    fwd_s, fwd_mem = timed(forward, "eval")
    train_s, train_mem = timed(train_step, "train")
    fwd_flops, train_flops = count_flops(args.preset, b)
    result = {
        "preset": args.preset,
        "config": cfg.to_dict(),
        "n_params": sum(p.numel() for p in net.parameters()),
        "batch_size": b,
        "dtype": args.dtype,
        "channels_last": args.channels_last,
        "repeats": args.repeats,
        "forward_s_per_clip": fwd_s / b,
        "train_step_s_per_clip": train_s / b,
        "forward_clips_per_s": b / fwd_s,
        "train_clips_per_s": b / train_s,
        "forward_gflops_per_clip": fwd_flops / b / 1e9,
        "train_gflops_per_clip": train_flops / b / 1e9,
        "forward_achieved_tflops": fwd_flops / fwd_s / 1e12,
        "train_achieved_tflops": train_flops / train_s / 1e12,
        "forward_peak_mem_mb": fwd_mem / 2**20,
        "train_peak_mem_mb": train_mem / 2**20,
        "memory_measure": ("torch.cuda.max_memory_allocated" if device.type == "cuda"
                           else "peak RSS growth over RSS after model build"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "device": device.type,
            "device_name": _device_name(device),
        },
    }
    if args.peak_tflops:
        result["peak_tflops"] = args.peak_tflops
        result["forward_mfu"] = result["forward_achieved_tflops"] / args.peak_tflops
        result["train_mfu"] = result["train_achieved_tflops"] / args.peak_tflops
    return result


def print_table(r: dict) -> None:
    m = r["machine"]
    print(f"shift net '{r['preset']}' ({r['n_params'] / 1e6:.2f} M params), batch {r['batch_size']}, "
          f"{r['dtype']}{', channels_last_3d' if r['channels_last'] else ''}, "
          f"{m['device_name']} ({m['device']}, {m['torch_threads']} threads), torch {m['torch']}")
    print(f"{'':22s}{'forward':>12s}{'fwd+bwd':>12s}")
    rows = [("s / clip", "forward_s_per_clip", "train_step_s_per_clip", "{:.4f}"),
            ("clips / s", "forward_clips_per_s", "train_clips_per_s", "{:.2f}"),
            ("GFLOP / clip", "forward_gflops_per_clip", "train_gflops_per_clip", "{:.4g}"),
            ("achieved TFLOP/s", "forward_achieved_tflops", "train_achieved_tflops", "{:.4g}"),
            ("peak memory (MiB)", "forward_peak_mem_mb", "train_peak_mem_mb", "{:.0f}")]
    if "forward_mfu" in r:
        rows.append(("MFU", "forward_mfu", "train_mfu", "{:.1%}"))
    for label, a, b, fmt in rows:
        print(f"{label:22s}{fmt.format(r[a]):>12s}{fmt.format(r[b]):>12s}")


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    result = measure(args)
    print_table(result)
    suffix = ("_bf16" if args.dtype == "bf16" else "") + ("_cl" if args.channels_last else "")
    out = args.out or RESULTS / f"model_cost_{args.preset}_{result['machine']['device']}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
