"""Pictures of results: training curves, sync scans. Matplotlib without a display; every
figure is written atomically as PNG."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from avscene.files import atomic_path  # noqa: E402


def _save(fig, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def plot_training_curves(rows: list[dict], path: str | os.PathLike, *, title: str = "training") -> Path:
    """Loss (left) and accuracy-like metrics (right) against step, train and validation."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    def series(key):
        pts = [(r["step"], r[key]) for r in rows if key in r and r[key] is not None]
        return zip(*pts) if pts else ((), ())
    keys = sorted({k for r in rows for k in r})
    for key in keys:
        if key in ("step", "lr", "examples_per_s", "grad_norm"):
            continue
        ax = ax_loss if "loss" in key else ax_acc if ("acc" in key or "sdr" in key.lower()) else None
        if ax is None:
            continue
        xs, ys = series(key)
        ax.plot(xs, ys, marker="o" if key.startswith("val_") else None, ms=3, label=key)
    for ax, name in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("step")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def plot_sync_scan(result, path: str | os.PathLike) -> Path:
    """Score against audio offset for one video (mean over windows, and each window faintly)."""
    offsets_s = result.offsets_frames / float(result.fps)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for w in result.windows if len(result.windows) > 1 else ():
        ax.plot(offsets_s, w.scores, color="0.75", lw=0.8)
    ax.plot(offsets_s, result.scores, color="C0", lw=2, label="sync score (logit)")
    ax.axvline(result.offset_s, color="C3", ls="--", label=f"best: {result.offset_s:+.3f} s")
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_xlabel("audio offset (s); positive = audio lags video")
    ax.set_ylabel("logit")
    name = Path(result.path).name if result.path else "clip"
    ax.set_title(f"{name}: confidence {result.confidence:.2f}", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_confusion_matrix(confusion, class_names, path: str | os.PathLike, *, normalize: bool = True,
                          title: str = "confusion matrix") -> Path:
    """Confusion matrix as an image: rows = true class, columns = predicted class; each row
    divided by its count when ``normalize`` (a class without videos stays empty). Class names are
    written on the axes up to 40 classes (UCF-101's 101 would be unreadable)."""
    import numpy as np

    counts = np.asarray(confusion, dtype=float)
    k = counts.shape[0]
    if normalize:
        rows = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, rows, out=np.full_like(counts, np.nan), where=rows > 0)
    else:
        values = counts
    side = min(14.0, 2.5 + 0.3 * k)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    im = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else None, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class" if normalize else "videos")
    if k <= 40:
        ax.set_xticks(range(k), [str(n) for n in class_names], rotation=90, fontsize=8)
        ax.set_yticks(range(k), [str(n) for n in class_names], fontsize=8)
    if k <= 15:
        for i in range(k):
            for j in range(k):
                if counts[i, j]:
                    v = values[i, j]
                    ax.text(j, i, f"{v:.2f}" if normalize else f"{int(v)}", ha="center", va="center", fontsize=7,
                            color="white" if normalize and v > 0.5 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)
