"""Where training runs: one CPU or GPU, or one process of a ``torchrun`` launch.

The same entry point runs unchanged everywhere: under ``torchrun`` the environment has
``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` and a process group is started (NCCL on GPUs, gloo on
CPU); otherwise this is a world of one. Precision lives here too: bf16 autocast where the device
supports it, a no-op context otherwise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os

import torch
import torch.distributed as dist


@dataclasses.dataclass(frozen=True)
class Runtime:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average scalar metrics over all processes."""
        if not self.distributed or not values:
            return values
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64,
                         device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t)
        return {k: v / self.world_size for k, v in zip(keys, t.tolist())}


def pick_device(device: str = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"``: the local CUDA device if there is one, else Apple MPS, else CPU."""
    if device != "auto":
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", local_rank)
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def launch_env() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` of this process as torchrun sets them; (0, 1, 0) alone."""
    return (int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
            int(os.environ.get("LOCAL_RANK", "0")))


def init_runtime(device: str = "auto") -> Runtime:
    """Start the process group when launched by torchrun; pick this process's device."""
    rank, world_size, local_rank = launch_env()
    dev = pick_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo",
                                timeout=datetime.timedelta(minutes=30))
    return Runtime(rank, world_size, local_rank, dev)


def shutdown(runtime: Runtime) -> None:
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The one place precision is decided: ``"bf16"`` autocasts, ``"fp32"`` does nothing."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
