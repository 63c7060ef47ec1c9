"""Pictures of results: training curves, sync scans. Matplotlib without a display; every
figure is written atomically as PNG."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from avscene.files import atomic_path  # noqa: E402

#: Fonts that cover scripts DejaVu Sans lacks (CJK, ...), tried in order after it for titles that
#: hold a file's name; only the installed ones are used (a missing family is a findfont warning).
_FALLBACK_FONTS = ("Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans", "Arial Unicode MS", "Droid Sans Fallback")


def _font_families() -> list[str]:
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return ["DejaVu Sans", *(name for name in _FALLBACK_FONTS if name in installed)]


_FAMILIES = _font_families()
if len(_FAMILIES) > 1:  # matplotlib falls back along a list of families glyph by glyph
    plt.rcParams["font.family"] = _FAMILIES


def _save(fig, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # A character no installed font has (say a Japanese file name on a machine without CJK
        # fonts) is drawn as a box, with one warning per glyph and figure; the figure is still
        # right and the name is written in full in the JSON and the page, so the warning is noise.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
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


def _log_spectrogram(audio, sample_rate: int, max_columns: int = 2000):
    """dB magnitude (F, T) of mono ``audio`` (N,): Hann window of ~46 ms, 75 % overlap; long
    signals get a larger hop so at most ``max_columns`` columns are drawn."""
    import numpy as np

    x = np.asarray(audio, np.float32)
    n_fft = 1 << max(6, int(round(np.log2(0.046 * sample_rate))))
    hop = max(n_fft // 4, -(-max(0, len(x) - n_fft) // max_columns))
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]  # (T, n_fft)
    spec = np.abs(np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1))  # (T, F)
    return 20 * np.log10(np.maximum(spec.T, 1e-5)), hop


def plot_separation(mixture, on, off, sample_rate: int, path: str | os.PathLike, *, title: str = "separation",
                    labels: tuple[str, str, str] = ("mixture", "on-screen", "off-screen")) -> Path:
    """Spectrograms of the mixture and the two separated sounds, stacked, on one dB scale.
    Each signal is float (N,) or (N, C) (channels are averaged) at ``sample_rate`` Hz."""
    import numpy as np

    signals = [np.asarray(s, np.float32) for s in (mixture, on, off)]
    signals = [s.mean(axis=1) if s.ndim == 2 else s for s in signals]
    specs = [_log_spectrogram(s, sample_rate) for s in signals]
    top = max(float(spec.max()) for spec, _ in specs)
    fig, axes = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True, sharey=True)
    for ax, (spec, hop), label in zip(axes, specs, labels):
        duration = spec.shape[1] * hop / sample_rate
        im = ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top,
                       extent=(0, duration, 0, sample_rate / 2000), interpolation="nearest")
        ax.set_ylabel("kHz")
        ax.set_title(label, fontsize=10, loc="left")
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(im, ax=list(axes), fraction=0.025, pad=0.01, label="dB")
    fig.suptitle(title)
    return _save(fig, path)


def heatmap_overlay(frames, heat, lo: float, hi: float, *, max_alpha: float = 0.35, cmap: str = "jet"):
    """Heat map ``heat`` (..., H, W) blended over uint8 RGB ``frames`` (..., H, W, 3).

    Colour = ``cmap`` of ``heat`` clipped to [lo, hi]; opacity rises linearly from 0 at ``lo`` to
    ``max_alpha`` at ``hi`` (the release ramps to its cap of 0.35 over the first 35 % of the range),
    so weak responses stay invisible and the picture is never hidden. NaN (not seen by the model)
    is left uncoloured. ``hi <= lo`` returns the frames unchanged.
    """
    import numpy as np

    frames = np.asarray(frames)
    if not hi > lo:
        return frames.copy()
    level = ((np.asarray(heat, np.float32) - np.float32(lo)) * np.float32(255 / (hi - lo))).ravel()  # (P,)
    # Integer blend through 256-entry tables: out = (frame * (256 - A) + A * colour) / 256 with
    # A = 256 * alpha, at colour index round(clip(level, 0, 255)); the two weights sum to 256, so
    # uint16 never overflows. Where A is 0 that is the frame itself, so only the pixels whose level
    # can reach a non-zero A are blended (NaN, unseen, compares False: no colour). On a typical map
    # most pixels lie below ``lo``, and this is about 3x faster than blending every pixel.
    weight = np.round(256 * max_alpha * np.arange(256) / 255).astype(np.uint16)  # (256,) A
    tinted = weight[:, None] * np.round(_colour_table(cmap)).astype(np.uint16)  # (256, 3) A * colour
    first = int(np.argmax(weight > 0)) if weight.any() else 256
    lit = np.flatnonzero(level >= first - 0.5)  # (k,) pixel indices
    shade = np.clip(level[lit], 0, 255).round().astype(np.uint8)  # (k,)
    out = np.array(frames, order="C")  # (..., H, W, 3) a copy
    pixels = out.reshape(-1, 3)  # (P, 3) a view
    blend = pixels[lit].astype(np.uint16) * (256 - weight)[shade][:, None]  # (k, 3)
    blend += tinted[shade]
    blend += 128
    pixels[lit] = (blend >> 8).astype(np.uint8)
    return out


def _colour_table(cmap: str):
    """(256, 3) float32 RGB in 0..255 of a matplotlib colormap."""
    import numpy as np

    if cmap not in _COLOUR_TABLES:
        _COLOUR_TABLES[cmap] = (matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.float32)
    return _COLOUR_TABLES[cmap]


_COLOUR_TABLES: dict = {}


def plot_cam_sheet(images, titles, path: str | os.PathLike, *, peaks=None, title: str = "sound sources",
                   n_cols: int = 3) -> Path:
    """Contact sheet of heat-map overlays: ``images`` uint8 (H, W, 3) each, one ``titles`` line
    each, and optionally ``peaks`` (x, y) in pixels marked with a cross."""
    n = len(images)
    n_cols = max(1, min(n_cols, n))
    n_rows = -(-n // n_cols)
    h, w = images[0].shape[:2]
    fig_w = 3.4 * n_cols
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(fig_w, fig_w / n_cols * h / w * n_rows + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, image) in enumerate(zip(axes.flat, images)):
        ax.imshow(image, interpolation="bilinear")
        ax.set_title(titles[i], fontsize=8)
        if peaks is not None and peaks[i] is not None:
            ax.plot([peaks[i][0]], [peaks[i][1]], marker="+", color="white", ms=12, mew=2)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
