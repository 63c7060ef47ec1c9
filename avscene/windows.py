"""Long inputs in windows: where the windows start, and how their outputs are cross-faded.

One engine for every task that runs a fixed-length model over a longer input (demucs'
``apply``): the sync scan, CAM localization, separation, action classification and the
evaluation clips of the datasets. The whole signal stays on the CPU; each window goes to the
model's device (:func:`model_device`) and its output comes back to be stitched::

    plan_windows(total, length, hop)  ->  starts  ->  model(window at each start)
                                                 ->  OverlapAdd: sum of w * output / sum of w

It lives at the package root, not in :mod:`avscene.infer`, because the datasets plan their
evaluation clips with it too and :mod:`avscene.data` must not import :mod:`avscene.infer`.
"""

from __future__ import annotations

import contextlib
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from avscene.constants import frame_to_sample

#: How windows are laid over the input (see :func:`plan_windows`).
Align = Literal["center", "cover", "start"]


def plan_windows(total: int, length: int, hop: int | None = None, *, count: int | None = None,
                 max_windows: int | None = None, align: Align = "cover") -> list[int]:
    """Start positions of windows of ``length`` over ``[0, total)``, ascending; sizes in frames
    (any one unit works the same way).

    align:
        ``"center"``: a start every ``hop`` from the first, as many as fit, the grid centred
            (the positions left over are split between both ends, the odd one at the end).
            ``max_windows``: that many of them, picked evenly from the grid (one: the middle one).
        ``"cover"``: the first window starts at 0 and the last ends at ``total``; ``count``
            windows (default: the fewest whose neighbours are at most ``hop`` apart, at most
            ``max_windows``) spread evenly, each start rounded; one window is centred. A
            ``total`` of exactly ``length`` gives one window at 0.
        ``"start"``: a start every ``hop`` from 0 and one more ending at ``total``.
    ``hop < 1`` counts as 1; ``max_windows`` None or 0: no bound.

    Raises ValueError when ``total < length`` or neither ``hop`` nor (``"cover"``) ``count`` is given.
    """
    if total < length:
        raise ValueError(f"needs at least {length} frames, got {total}")
    span = total - length  # the last possible start
    if align == "cover" and count is not None:
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        return [0] if span == 0 else _spread(span, count)
    if hop is None:
        raise ValueError(f"align={align!r} needs a hop" + (" or a count" if align == "cover" else ""))
    hop = max(1, hop)
    if align == "center":
        return _centred_grid(span, hop, max_windows)
    if align == "cover":
        n_windows = 1 + -(-span // hop)
        return _spread(span, min(n_windows, max_windows) if max_windows else n_windows)
    if align == "start":
        return list(range(0, span, hop)) + [span]
    raise ValueError(f"align must be 'center', 'cover' or 'start', got {align!r}")


def _spread(span: int, count: int) -> list[int]:
    """``count`` starts from 0 to ``span`` evenly spaced and rounded; one is centred."""
    if count == 1:
        return [span // 2]
    return [round(i * span / (count - 1)) for i in range(count)]


def _centred_grid(span: int, hop: int, max_windows: int | None) -> list[int]:
    """Every ``hop`` from the first start, centred in ``[0, span]``; at most ``max_windows``
    of them picked evenly."""
    count = span // hop + 1
    first = (span - (count - 1) * hop) // 2
    starts = [first + i * hop for i in range(count)]
    if not max_windows or count <= max_windows:
        return starts
    if max_windows == 1:
        return [starts[count // 2]]
    return [starts[round(i * (count - 1) / (max_windows - 1))] for i in range(max_windows)]


def crossfade_weights(length: int, positions: np.ndarray | None = None) -> np.ndarray:
    """Triangular cross-fade weights ``min(u + 1, length - u)``, float64, of a window of
    ``length`` at its ``positions`` ``u`` in ``[0, length - 1]`` (None: every one): 1 at the
    window's edges, ``length / 2`` in its middle, so a window fades out where the next fades in."""
    u = np.arange(length) if positions is None else np.asarray(positions)
    return np.minimum(u + 1, length - u).astype(np.float64)


class OverlapAdd:
    """Stitches window outputs into one signal: at each position, the sum of ``w * output``
    over the windows that hold it divided by the sum of their ``w`` (triangular weights,
    :func:`crossfade_weights`). Accumulates in float64.

    ``shape``: the whole output, with its positions (frames or samples) along ``axis``
    (0: ``(N, ...)``, -1: ``(..., N)``).
    """

    def __init__(self, shape: tuple[int, ...], *, axis: int = 0):
        if axis not in (0, -1):
            raise ValueError(f"positions must be along axis 0 or -1, got {axis}")
        self.axis = axis
        self.weighted = np.zeros(shape, np.float64)  # sum of w * output
        self.weight = np.zeros(shape[axis], np.float64)  # (N,) sum of w

    def _key(self, at):
        return at if self.axis == 0 else (Ellipsis, at)

    def _along_axis(self, w: np.ndarray) -> np.ndarray:
        return w.reshape(-1, *([1] * (self.weighted.ndim - 1))) if self.axis == 0 else w

    def add(self, at, values: np.ndarray, positions: np.ndarray, length: int) -> None:
        """Add one window's ``values`` at output positions ``at`` (a slice or index array),
        which are its own ``positions`` (P,) (see :func:`crossfade_weights`) in a window of
        ``length``; ``values`` has the output's shape with P positions along ``axis``."""
        w = crossfade_weights(length, positions)
        self.weighted[self._key(at)] += self._along_axis(w) * values
        self.weight[at] += w

    def stitched(self, at) -> tuple[np.ndarray, np.ndarray]:
        """The sum of ``w * output`` and the sum of ``w`` so far at positions ``at``."""
        return self.weighted[self._key(at)], self.weight[at]

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """The cross-faded output (float64, ``shape``; 0 where no window reached) and which
        positions a window reached (bool (N,))."""
        covered = self.weight > 0
        return self.weighted / self._along_axis(np.where(covered, self.weight, 1.0)), covered


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s parameters (the CPU for a model without any)."""
    param = next(iter(model.parameters()), None)
    return param.device if param is not None else torch.device("cpu")


#: Arithmetic of inference: ``"fp32"``, or ``"bf16"`` autocast (convolutions in bfloat16 with
#: float32 accumulation; the weights stay float32).
PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`; a ValueError naming them otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


@contextlib.contextmanager
def inference(model: torch.nn.Module, precision: str = "fp32"):
    """Run ``model`` for inference: eval mode (BatchNorm on its moving statistics, restored
    afterwards), ``torch.inference_mode`` (no autograd bookkeeping) and, for ``"bf16"``,
    autocast on the model's device (CPU, CUDA and MPS alike)."""
    device = model_device(model)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if check_precision(precision) == "bf16"
                else contextlib.nullcontext())
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast:
            yield model
    finally:
        model.train(was_training)


def to_channels_last(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with its 5-D (3-D conv) weights in ``torch.channels_last_3d`` memory order, in
    place (same values; convolutions on video given in that order avoid layout conversions)."""
    for param in model.parameters():
        if param.dim() == 5:
            param.data = param.data.contiguous(memory_format=torch.channels_last_3d)
    return model


def video_layout(video: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``video`` (B, C, T, H, W) in ``channels_last_3d`` order when asked (same values)."""
    return video.contiguous(memory_format=torch.channels_last_3d) if channels_last else video


def window_batch(frames, audio, cfg) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of model windows as tensors, checked: ``frames`` uint8 (B, T, H, W, 3) with
    H, W >= 16 (the networks are fully convolutional), and ``audio`` (B, N, C) trimmed or padded
    with silence to the frames' span -> (frames (B, T, H, W, 3), audio (B, C, N')); a clear
    error for anything else."""
    frames = torch.as_tensor(np.asarray(frames))
    audio = torch.as_tensor(np.asarray(audio, np.float32))
    if frames.dim() != 5 or frames.shape[-1] != 3 or frames.dtype != torch.uint8 or min(frames.shape[2:4]) < 16:
        raise ValueError(f"frames must be uint8 (B, T, H, W, 3) with H, W >= 16 (the model's crop is "
                         f"{cfg.crop_size}), got {frames.dtype} {tuple(frames.shape)}")
    if audio.dim() != 3 or audio.shape[0] != frames.shape[0] or audio.shape[2] != cfg.audio_channels:
        raise ValueError(f"audio must be ({frames.shape[0]}, N, {cfg.audio_channels}), got {tuple(audio.shape)}")
    n_samples = frame_to_sample(frames.shape[1], cfg.fps, cfg.sample_rate)
    if abs(audio.shape[1] - n_samples) > cfg.sample_rate / cfg.fps + 1:
        raise ValueError(f"{frames.shape[1]} frames need {n_samples} audio samples, got {audio.shape[1]}")
    audio = F.pad(audio[:, :n_samples], (0, 0, 0, max(0, n_samples - audio.shape[1])))  # (B, N, C)
    return frames, audio.permute(0, 2, 1)  # (B, T, H, W, 3), (B, C, N)
