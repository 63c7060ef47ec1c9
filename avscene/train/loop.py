"""One training loop for every task (shift, separation, action).

A task says how to build its model, which examples to train on, its loss and its validation;
:func:`fit` does the rest, the same on one CPU, one GPU or N processes under ``torchrun``:

* **Global batch independent of world size.** A step consumes ``global_batch`` examples with
  ids ``step * global_batch + [0, global_batch)``, cut into micro-batches of ``micro_batch``;
  micro-batch ``k`` goes to rank ``k % world_size`` and each rank accumulates gradients over its
  ``global_batch / (micro_batch * world_size)`` micro-batches. Batch-norm statistics are per
  micro-batch (per tower, as the release), so one process with two accumulation steps computes
  exactly what two processes compute.
* **Exact resume.** Examples are functions of their id, and the random state of the model
  (fractional pooling) is re-seeded from ``(seed, step, micro-batch)`` before every micro-batch,
  so a run resumed from a checkpoint continues bit for bit as if it had never stopped.
* **Side effects on rank 0 only**: progress bar, logs (CSV + JSON), curves (PNG), checkpoints
  (atomic, every ``ckpt_every`` steps and at exit, including Ctrl-C and SIGTERM).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import time
from pathlib import Path
from typing import Any, Iterator, Protocol

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from avscene.cards import UNKNOWN, ModelCard, combine_synthetic
from avscene.checkpoints import load_checkpoint, read_card, save_checkpoint
from avscene.files import remove_stale_temporaries, write_csv, write_json
from avscene.models.separation_net import SHIFT_INIT_KEY
from avscene.train.runtime import Runtime, autocast, init_runtime, shutdown


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train (the task says what). ``optimizer="sgd"`` with the defaults is the paper's
    shift schedule (momentum 0.9, constant lr 1e-2, global grad-norm clip 5, weight decay 1e-5
    on weights); ``"adamw"`` is the modern option, usually with ``warmup_steps`` and
    ``schedule="cosine"``. ``lr_drop_step`` multiplies the lr by 0.1 from that step on (the
    release's separation schedule: lr 1e-4, x0.1 at 120K of 160K steps)."""

    out_dir: str
    steps: int
    global_batch: int = 16
    micro_batch: int = 16
    optimizer: str = "sgd"
    lr: float = 1e-2
    momentum: float = 0.9
    weight_decay: float = 1e-5
    grad_clip: float = 5.0
    warmup_steps: int = 0
    schedule: str = "constant"  # or "cosine"
    lr_drop_step: int | None = None
    precision: str = "fp32"  # or "bf16"
    channels_last: bool = False
    compile: bool = False
    log_every: int = 10
    val_every: int = 100
    ckpt_every: int = 100
    seed: int = 0
    num_workers: int = 2
    device: str = "auto"
    resume: bool = True
    progress: bool = True

    def accumulation(self, world_size: int) -> int:
        per_step = self.micro_batch * world_size
        if self.global_batch % per_step:
            raise ValueError(f"global_batch {self.global_batch} is not a multiple of micro_batch "
                             f"{self.micro_batch} x {world_size} processes")
        return self.global_batch // per_step


class Task(Protocol):
    """What :func:`fit` needs from a task."""

    name: str

    def build_model(self) -> nn.Module: ...

    def model_config(self) -> dict[str, Any]: ...

    def train_dataset(self) -> Dataset: ...

    def loss(self, model: nn.Module, batch: dict, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]: ...

    def validate(self, model: nn.Module, device: torch.device) -> dict[str, float]: ...


class MicroBatchSampler(Sampler[list[int]]):
    """Yields this rank's micro-batches of example ids, step after step, from ``start_step``."""

    def __init__(self, start_step: int, steps: int, global_batch: int, micro_batch: int, runtime: Runtime):
        self.start_step, self.steps = start_step, steps
        self.global_batch, self.micro_batch = global_batch, micro_batch
        self.rank, self.world = runtime.rank, runtime.world_size

    def __iter__(self) -> Iterator[list[int]]:
        n_micro = self.global_batch // self.micro_batch
        for step in range(self.start_step, self.steps):
            base = step * self.global_batch
            for k in range(self.rank, n_micro, self.world):
                yield list(range(base + k * self.micro_batch, base + (k + 1) * self.micro_batch))

    def __len__(self) -> int:
        return (self.steps - self.start_step) * (self.global_batch // self.micro_batch // self.world)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weights only (as the release's L2 on conv kernels), not biases or norms."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    groups = _param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    elif cfg.optimizer == "adamw":
        opt = torch.optim.AdamW(groups, lr=cfg.lr)
    elif cfg.optimizer == "adam":
        opt = torch.optim.Adam(groups, lr=cfg.lr)
    else:
        raise ValueError(f"optimizer must be 'sgd', 'adam' or 'adamw', got {cfg.optimizer!r}")
    if cfg.schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine', got {cfg.schedule!r}")
    if cfg.schedule == "cosine" and cfg.lr_drop_step is not None:
        raise ValueError("lr_drop_step goes with the constant schedule, not the cosine one")

    def factor(step: int) -> float:
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "cosine":
            progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        if cfg.lr_drop_step is not None and step >= cfg.lr_drop_step:
            return 0.1
        return 1.0

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def micro_batch_seed(seed: int, step: int, micro_index: int) -> int:
    """Seed of the model's random state for one micro-batch: independent of the world size."""
    return (seed * 1_000_003 + step * 4099 + micro_index) % (2**63)


@dataclasses.dataclass
class _Log:
    """Rows of the training log, written as CSV and JSON beside the checkpoint."""

    out_dir: Path
    rows: list[dict] = dataclasses.field(default_factory=list)

    def add(self, row: dict) -> None:
        self.rows.append(row)

    def write(self) -> None:
        keys = sorted({k for r in self.rows for k in r}, key=lambda k: (k != "step", k))
        write_csv(self.out_dir / "log.csv", self.rows, keys)
        write_json(self.out_dir / "log.json", self.rows)


def _write_curves(out_dir: Path, rows: list[dict], title: str) -> None:
    from avscene.report.plots import plot_training_curves

    plot_training_curves(rows, out_dir / "curves.png", title=title)


def fit(task: Task, cfg: TrainConfig) -> Path:
    """Train ``task`` as ``cfg`` says; returns the path of the final checkpoint."""
    runtime = init_runtime(cfg.device)
    try:
        return _fit(task, cfg, runtime)
    finally:
        shutdown(runtime)


def _resume(ckpt_path: Path, cfg: TrainConfig, model: nn.Module, opt: torch.optim.Optimizer,
            sched: torch.optim.lr_scheduler.LambdaLR, log: _Log, device: torch.device) -> int:
    """Load the run's checkpoint into ``model``, ``opt``, ``sched`` and ``log`` when ``cfg.resume``
    and one exists; returns the step to start from (0 for a fresh run)."""
    if not (cfg.resume and ckpt_path.exists()):
        return 0
    state = load_checkpoint(ckpt_path, map_location=device)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    # The lr of the next step comes from this config's schedule (the one saved may differ,
    # e.g. a run continued with an lr drop).
    for group, base_lr, factor in zip(opt.param_groups, sched.base_lrs, sched.lr_lambdas):
        group["lr"] = base_lr * factor(sched.last_epoch)
    log.rows = list(state.get("log", []))
    return int(state["step"])


def _training_modules(task: Task, model: nn.Module, cfg: TrainConfig, runtime: Runtime) -> tuple[nn.Module, nn.Module]:
    """The module whose forward the loss calls (e.g. the shift task's paired forward), wrapped in
    DDP when distributed, and the same compiled when ``cfg.compile`` (the one to run)."""
    wrapped: nn.Module = task.train_module(model) if hasattr(task, "train_module") else model
    if runtime.distributed:
        device = runtime.device
        wrapped = DistributedDataParallel(wrapped, device_ids=[device.index] if device.type == "cuda" else None,
                                          find_unused_parameters=getattr(task, "find_unused_parameters", False))
    return wrapped, torch.compile(wrapped) if cfg.compile else wrapped


@dataclasses.dataclass
class _Checkpointer:
    """Saves the run's state (rank 0) with its log and curves, then waits for every rank."""

    path: Path
    task: Task
    cfg: TrainConfig
    model: nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    log: _Log
    runtime: Runtime
    basis: tuple[dict | None, ModelCard | None] | None = None  # of the model card, found once

    def save(self, step: int) -> None:
        if self.runtime.is_main:
            if self.basis is None:
                self.basis = card_basis(self.task)
            save_checkpoint(self.path, {
                "task": self.task.name, "model_config": self.task.model_config(),
                "model_card": model_card(self.task, step, self.log.rows, self.basis).to_dict(),
                "train_config": dataclasses.asdict(self.cfg), "model": self.model.state_dict(),
                "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                "step": step, "log": self.log.rows, "rng_cpu": torch.get_rng_state(),
            })
            self._write_log()
        self.runtime.barrier()

    def _write_log(self) -> None:
        self.log.write()
        if self.log.rows:
            _write_curves(self.log.out_dir, self.log.rows, f"{self.task.name} training")

    def write_log_if_behind(self) -> None:
        """Write the log and curves of the checkpoint when they are missing or older than it."""
        names = ("log.json", "log.csv", "curves.png") if self.log.rows else ("log.json", "log.csv")
        written = [self.log.out_dir / name for name in names]
        if self.path.exists() and any(not p.is_file() or p.stat().st_mtime_ns < self.path.stat().st_mtime_ns
                                      for p in written):
            self._write_log()


def _preset_of(task_name: str, model_config: dict[str, Any]) -> str | None:
    """The name of the preset whose config the model has, if any."""
    from avscene.models import PRESETS
    from avscene.models.separation_net import PRESETS as SEPARATION_PRESETS

    presets = {"shift": PRESETS, "separation": SEPARATION_PRESETS}.get(task_name, {})
    config = {k: v for k, v in model_config.items() if k != SHIFT_INIT_KEY}
    return next((name for name, cfg in presets.items() if cfg.to_dict() == config), None)


def card_basis(task: Task) -> tuple[dict | None, ModelCard | None]:
    """What ``task`` trains on, and the card of the network it starts from (both fixed for a run)."""
    data = task.training_data() if hasattr(task, "training_data") else None
    init = getattr(task, "init", None)
    return data, (read_card(init) if init and str(init) != "scratch" else None)


def model_card(task: Task, step: int, rows: list[dict],
               basis: tuple[dict | None, ModelCard | None] | None = None) -> ModelCard:
    """The card of ``task``'s network after ``step`` steps: its data, the network it was fine-tuned
    from (``basis``, from :func:`card_basis`), and the last validation figures (``rows``: the
    training log)."""
    data, init = basis if basis is not None else card_basis(task)
    trained_on = data["text"] if data else UNKNOWN
    if init is not None:
        trained_on += f"; fine-tuned from a network trained on {init.trained_on}"
    validation = next((r for r in reversed(rows) if any(k.startswith("val_") for k in r)), None)
    held_out = None
    if validation:
        held_out = {"set": "held-out validation split of the training data", "step": validation.get("step"),
                    "metrics": {k: v for k, v in validation.items() if k.startswith("val_")}}
    return ModelCard(task=task.name, preset=_preset_of(task.name, task.model_config()), trained_on=trained_on,
                     training_data=data, synthetic_only=combine_synthetic(data and data.get("synthetic_only"), init),
                     steps=step, held_out=held_out, init=init.to_dict() if init else None)


def _train_loader(task: Task, cfg: TrainConfig, start_step: int, runtime: Runtime) -> DataLoader:
    """This rank's micro-batches of the steps ``start_step..cfg.steps``."""
    return DataLoader(
        task.train_dataset(),
        batch_sampler=MicroBatchSampler(start_step, cfg.steps, cfg.global_batch, cfg.micro_batch, runtime),
        num_workers=cfg.num_workers,
        persistent_workers=False,
        pin_memory=runtime.device.type == "cuda",
        prefetch_factor=4 if cfg.num_workers else None,
    )


def _accumulate_gradients(task: Task, run_model: nn.Module, wrapped: nn.Module, batches: Iterator[dict],
                          cfg: TrainConfig, step: int, accum: int, runtime: Runtime) -> dict[str, float]:
    """Forward and backward this rank's ``accum`` micro-batches of ``step`` (gradients summed,
    each loss scaled by ``1 / accum``); returns the step's metrics, averaged over them."""
    device = runtime.device
    metrics_sum: dict[str, float] = {}
    for k in range(accum):
        batch = next(batches)
        torch.manual_seed(micro_batch_seed(cfg.seed, step, k * runtime.world_size + runtime.rank))
        # DDP reduces gradients on the last micro-batch only
        sync = contextlib.nullcontext() if (k == accum - 1 or not runtime.distributed) else wrapped.no_sync()
        with sync:
            with autocast(device, cfg.precision):
                loss, metrics = task.loss(run_model, batch, device)
            (loss / accum).backward()
        for name, value in metrics.items():
            metrics_sum[name] = metrics_sum.get(name, 0.0) + value / accum
    return metrics_sum


def _optimizer_step(model: nn.Module, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LambdaLR,
                    cfg: TrainConfig) -> tuple[torch.Tensor | None, float]:
    """Clip, step and advance the schedule; returns the gradient norm before clipping (None
    without clipping) and the lr the step used."""
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip) if cfg.grad_clip else None
    step_lr = opt.param_groups[0]["lr"]
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    return grad_norm, step_lr


class _MetricWindow:
    """Sums of the training metrics over the steps since the last log row."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.started = time.perf_counter()

    def add(self, metrics: dict[str, float], grad_norm: torch.Tensor | None) -> None:
        for name, value in metrics.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.sums["_n"] = self.sums.get("_n", 0) + 1
        if grad_norm is not None:
            self.sums["grad_norm"] = self.sums.get("grad_norm", 0.0) + float(grad_norm)

    def row(self, runtime: Runtime, *, step: int, lr: float, global_batch: int) -> dict[str, float]:
        """The log row of the window (means over its steps and the ranks, throughput in
        examples/s), and a new window."""
        n = self.sums.pop("_n")
        row = runtime.mean({name: value / n for name, value in self.sums.items()})
        elapsed = time.perf_counter() - self.started
        row.update(step=step, lr=lr, examples_per_s=n * global_batch / max(elapsed, 1e-9))
        self.sums, self.started = {}, time.perf_counter()
        return row


def _fit(task: Task, cfg: TrainConfig, runtime: Runtime) -> Path:
    out_dir = Path(cfg.out_dir)
    ckpt_path = out_dir / "checkpoint.pt"
    accum = cfg.accumulation(runtime.world_size)
    device = runtime.device

    torch.manual_seed(cfg.seed)  # same initial weights in every process
    model = task.build_model().to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    opt, sched = build_optimizer(model, cfg)
    log = _Log(out_dir)
    start_step = _resume(ckpt_path, cfg, model, opt, sched, log, device)
    if runtime.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(out_dir)  # a killed run's half-written checkpoint or log
        write_json(out_dir / "config.json", {"task": task.name, "model": task.model_config(),
                                             "train": dataclasses.asdict(cfg), "world_size": runtime.world_size})
    wrapped, run_model = _training_modules(task, model, cfg, runtime)
    checkpointer = _Checkpointer(ckpt_path, task, cfg, model, opt, sched, log, runtime)
    if start_step >= cfg.steps:
        if runtime.is_main:
            checkpointer.write_log_if_behind()  # killed between the last checkpoint and its log
        return ckpt_path

    batches = iter(_train_loader(task, cfg, start_step, runtime))
    stop = {"signal": None}
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.update(signal="SIGTERM"))
    step = start_step
    bar = tqdm(total=cfg.steps, initial=start_step, desc=f"train {task.name}", unit="step",
               disable=not (cfg.progress and runtime.is_main), dynamic_ncols=True)
    window = _MetricWindow()
    try:
        model.train()
        while step < cfg.steps and stop["signal"] is None:
            metrics = _accumulate_gradients(task, run_model, wrapped, batches, cfg, step, accum, runtime)
            grad_norm, step_lr = _optimizer_step(model, opt, sched, cfg)
            step += 1
            window.add(metrics, grad_norm)
            bar.update(1)
            if step % cfg.log_every == 0 or step == cfg.steps:
                row = window.row(runtime, step=step, lr=step_lr, global_batch=cfg.global_batch)
                if step % cfg.val_every == 0 or step == cfg.steps:
                    row.update(_validate(task, model, runtime))
                log.add(row)
                bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k in ("loss", "acc", "val_acc")})
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                checkpointer.save(step)
    except KeyboardInterrupt:
        stop["signal"] = "SIGINT"
    finally:
        bar.close()
        signal.signal(signal.SIGTERM, previous)
    if stop["signal"] is not None:
        checkpointer.save(step)
        raise KeyboardInterrupt(f"training stopped by {stop['signal']} at step {step}; resume with the same command")
    return ckpt_path


def _validate(task: Task, model: nn.Module, runtime: Runtime) -> dict[str, float]:
    """Validation on rank 0 in eval mode (moving BN statistics), then back to training."""
    metrics: dict[str, float] = {}
    if runtime.is_main:
        model.eval()
        with torch.no_grad():
            metrics = {f"val_{k}": v for k, v in task.validate(model, runtime.device).items()}
        model.train()
    runtime.barrier()
    return metrics
