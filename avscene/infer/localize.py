"""Where does the sound come from? Class activation maps over whole videos (``avscene localize``).

The map (paper section 4, design notes section 4) is the shift network's logit head applied at
every cell of its last conv map, bias included, made absolute as the release does: a large
``|CAM|`` marks the places whose appearance and motion the network ties to the sound. It is
always computed in eval mode (the release's first CAM example ran BatchNorm on batch statistics
and gave wrong maps); use the ``paper-cam`` preset (conv5 without spatial stride: 14 x 14 at 224
px) for the paper's resolution.

Pipeline for a file; memory holds one window of model frames, then one chunk of original frames::

    probe --> windows of n_frames model frames covering the video, overlapping by ``overlap``
          --> per window: read_clip(fps=model fps, size=crop, fit) --> cam_clip: |CAM| (T', h, w)
          --> cross-faded into ``cells`` (T, h, w): one map per frame of the VIDEO's own frame rate
          --> peaks (T, 3) on the original frame's pixels; the pixel maps are rendered from the cells
              when asked for (LocalizeResult.frame_map / maps / cam), never held for the whole video
    writers: <name>_cam.mp4 (second pass over the original frames with the original sound),
             <name>_cam.npy (the cells), <name>_cam.json, <name>_sheet.png

Where a value of the map sits
-----------------------------
* Time: slice ``j`` of a window is centred on model frame ``8 j`` of the window, not on
  ``(j + 1/2) T / T'``: the net's three stride-2 convs in time use symmetric padding, and each
  centres its output ``i`` on its input ``2 i`` (checked by the tests with the gradient of one
  slice). Between slice centres the map is linear in time, after the last one it is held.
  Video frame ``k`` is the instant ``k / fps``, i.e. model frame ``k * model_fps / fps``.
* Space: cell ``(i, k)`` is centred on model pixel ``(16 i, 16 k)`` of the crop (``cam=True``;
  32 with the strided conv5), in pixel-centre coordinates (pixel ``u`` covers ``[u - 1/2, u +
  1/2]``), for the same reason. Between cell centres the map is bilinear; beyond the outermost
  centres it is held. This continuous map on the model's pixel grid is then sampled at the
  centres of the original pixels, mapped through the fit of :func:`avscene.media.read_clip`
  (:class:`~avscene.media.geometry.FitGeometry`: ``crop`` scales to cover and cuts the centre,
  ``pad`` scales to fit inside black borders, ``squash`` stretches). One step, no intermediate
  224 x 224 image.
* Original pixels that the model did not see (the borders cut away by ``fit='crop'``) are NaN in
  :attr:`LocalizeResult.cam` (the ``.npy``'s cells cover only what was seen: the JSON's geometry
  says where); the overlay leaves them uncoloured and the peaks ignore them.
* Windows: frames where two windows overlap get both maps, weighted by triangular windows that
  fall to the window edges (:class:`avscene.windows.OverlapAdd`), so the map fades from one
  window to the next without a step. Frames that no window covers (``max_windows`` spreads
  fewer windows over a long video) are interpolated linearly in time between their covered
  neighbours.

Values are ``|CAM|`` in logit units (the logit of "in sync" that the cell alone would give).
Peaks are in original pixels, pixel-centre coordinates: ``(0, 0)`` is the centre of the top-left
pixel, x to the right, y down.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from avscene.constants import as_fps, frame_to_sample, frames_in, profile_fit
from avscene.data.shift_pairs import frames_to_video
from avscene.infer.spans import SpanReader
from avscene.infer.similarity import is_two_tower, similarity_batch
from avscene.media import ClipRangeError, MediaError, probe, read_clip
from avscene.media.geometry import FITS, FitGeometry
from avscene.windows import (OverlapAdd, check_precision, inference, model_device, plan_windows,
                             to_channels_last, video_layout, window_batch)


# -- options and results ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class LocalizeOptions:
    """How to localize.

    fit: how frames meet the model's square input (as :func:`avscene.media.read_clip`); None:
        the one the model's weights expect for CAMs (``PROFILES[config.profile]["cam_fit"]``).
    size: side of that square in pixels (None: the crop the model was trained on). The network
        is fully convolutional: a larger side (e.g. the video's own height with ``fit="pad"`` or
        ``"squash"``) shows it the whole picture at its own scale, in more, equally fine cells.
    overlap: fraction of a window shared with the next one (0.5: each frame is in two windows).
    max_windows: bound on the work for long videos (None: cover every frame); fewer windows are
        spread evenly and the frames between them interpolated.
    max_map_bytes: memory budget of :attr:`LocalizeResult.cam`; a longer or larger video gets
        its map at a reduced resolution (``LocalizeResult.scale`` < 1).
    out_size: height in pixels of the map (:attr:`LocalizeResult.cam`) and of the overlay video
        :func:`write_cam_outputs` renders, the width keeping the frame's aspect (never larger
        than the video); None: the video's own size. Smaller outputs decode, render and encode
        faster; the peaks stay in original pixels.
    precision: ``"fp32"`` or ``"bf16"`` (autocast) for the network; ``channels_last``: video in
        ``channels_last_3d`` order (see :func:`avscene.windows.inference`).
    signed: the signed CAM instead of the release's ``|CAM|``: positive where a place is evidence
        that the sound is in sync with it, negative where it is evidence against (a silent object
        moving on its own), which ``|CAM|`` lights up as brightly as a sounding one.
    """

    fit: str | None = None
    size: int | None = None
    overlap: float = 0.5
    max_windows: int | None = None
    max_map_bytes: int = 1 << 30
    out_size: int | None = None
    precision: str = "fp32"
    channels_last: bool = False
    signed: bool = False

    def __post_init__(self) -> None:
        if self.fit is not None and self.fit not in FITS:
            raise ValueError(f"fit must be one of {FITS}, got {self.fit!r}")
        if self.size is not None and self.size < 16:
            raise ValueError(f"size must be >= 16 pixels or None, got {self.size}")
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")
        if self.max_windows is not None and self.max_windows < 1:
            raise ValueError(f"max_windows must be >= 1 or None, got {self.max_windows}")
        if self.out_size is not None and self.out_size < 16:
            raise ValueError(f"out_size must be >= 16 pixels or None, got {self.out_size}")
        check_precision(self.precision)

    def fit_for(self, config) -> str:
        """``fit``, or (None) the one the model's weights expect for CAMs (its profile's)."""
        return profile_fit(config.profile, self.fit, cam=True)

    def input_side(self, config) -> int:
        """Side of the square the frames are fitted to: ``size``, else the model's crop."""
        return self.size or config.crop_size

    def output_hw(self, frame_hw: tuple[int, int]) -> tuple[int, int]:
        """(height, width) of the map and the overlay for frames of ``frame_hw``: ``out_size``
        high (the video's height at most), the width keeping the aspect ratio."""
        h, w = frame_hw
        if self.out_size is None or self.out_size >= h:
            return int(h), int(w)
        return self.out_size, max(1, round(w * self.out_size / h))


#: What :attr:`LocalizeResult.value` means, as the JSON says it.
MAP_VALUES = {"|CAM|": "|CAM|: per-cell logit of the shift network (bias included), absolute value",
              "CAM": "CAM: per-cell logit of the shift network (bias included), signed: positive = in sync there",
              "similarity": "cosine similarity of the sound's embedding with each location's picture embedding, "
                            "in [-1, 1] (two-tower correspondence network)"}


@dataclasses.dataclass(frozen=True, eq=False)
class LocalizeResult:
    """Sound-source maps of one video, at the video's frame rate.

    cells: float32 (T, h, w): the map on the CAM's own grid, one per video frame; everything
        else is sampled from it (bilinear in space, see the module docstring), and it is what
        ``<name>_cam.npy`` stores: lossless and small (1.8 MB for a 60 s paper-cam video).
    cam: float32 (T, H_m, W_m), ``|CAM|`` on the original frame's pixel grid at ``map_hw``,
        rendered from ``cells`` on first use (a whole-video array: commands that stream use
        :meth:`frame_map` / :meth:`maps` instead); NaN where the model did not see the picture.
    map_hw, scale: the size of ``cam`` and of the peaks' grid: ``out_hw`` (the video's size by
        default), reduced to fit ``max_map_bytes``; ``scale`` = its height / the video's.
    peaks: float32 (T, 3): per frame x, y (original pixels, pixel centres) and value of the
        strongest point on that grid.
    window_starts: first model frame of each window (model frames are at ``model_fps``).
    """

    path: str | None
    fps: Fraction
    frame_hw: tuple[int, int]
    map_hw: tuple[int, int]
    peaks: np.ndarray
    cells: np.ndarray
    geometry: FitGeometry
    cam_stride: tuple[int, int, int]
    cam_shape: tuple[int, int, int]
    model_fps: Fraction
    window_frames: int
    window_starts: tuple[int, ...]
    hop_frames: int
    model_config: dict
    #: (height, width) of the overlay video (``LocalizeOptions.out_size``); None: ``frame_hw``.
    out_hw: tuple[int, int] | None = None
    #: What the map's values are: ``|CAM|`` or the signed ``CAM`` (shift networks), or cosine
    #: similarity (two-tower).
    value: str = "|CAM|"

    @property
    def n_frames(self) -> int:
        return int(self.cells.shape[0])

    @property
    def scale(self) -> float:
        return self.map_hw[0] / self.frame_hw[0]

    @functools.cached_property
    def cam(self) -> np.ndarray:
        return self.maps(0, self.n_frames)

    def maps(self, first: int, last: int, out_hw: tuple[int, int] | None = None) -> np.ndarray:
        """float32 (last - first, H, W): the maps of frames ``first .. last - 1`` at ``out_hw``
        (default ``map_hw``)."""
        return _render(self.cells[first:last], *self._weights(out_hw or self.map_hw))

    def frame_map(self, index: int, out_hw: tuple[int, int] | None = None) -> np.ndarray:
        """float32 (H, W) map of frame ``index`` at the original resolution (or ``out_hw``)."""
        return self.maps(index, index + 1, out_hw or self.frame_hw)[0]

    def time_average(self) -> np.ndarray:
        """float32 (H_m, W_m): the map averaged over the video (NaN where never seen); the map is
        linear in the cells, so this is the map of their mean."""
        return _render(self.cells.mean(0, dtype=np.float64)[None], *self._weights(self.map_hw))[0]

    def _weights(self, out_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        return _grid_weights(self.geometry, self.cam_stride[1:], self.cells.shape[1:], out_hw)

    def describe(self) -> str:
        best = int(np.nanargmax(self.peaks[:, 2])) if np.isfinite(self.peaks[:, 2]).any() else 0
        x, y, value = self.peaks[best]
        return (f"{self.n_frames} frames at {float(self.fps):.3f} fps, {self.frame_hw[1]}x{self.frame_hw[0]}, "
                f"{len(self.window_starts)} window(s); strongest at x={x:.0f}, y={y:.0f} px, "
                f"t={float(best / self.fps):.2f} s ({self.value} {value:.3g})")

    def to_dict(self) -> dict:
        """JSON-ready metadata and per-frame peaks (the map itself goes to the .npy)."""
        fps = lambda f: f"{f.numerator}/{f.denominator}"  # noqa: E731
        return {
            "path": self.path,
            "fps": fps(self.fps),
            "fps_float": round(float(self.fps), 6),
            "n_frames": self.n_frames,
            "width": self.frame_hw[1],
            "height": self.frame_hw[0],
            "map": {
                "file": "cells (T, h, w) float32 on the CAM's own grid, one per video frame",
                "shape": list(self.cells.shape),
                "value": MAP_VALUES[self.value],
                "pixels": "bilinear between cell centres, held beyond the outer ones: cell (i, k) is centred on "
                          "model pixel (stride i, stride k) (windows.cam_stride), mapped to original pixels by "
                          "geometry; avscene.infer.localize.LocalizeResult.frame_map renders any frame at any size",
                "unseen": "NaN (parts of the frame the model did not see)",
                "coordinates": "original pixels, (0, 0) = centre of the top-left pixel, x right, y down",
                "peaks_grid": list(self.map_hw),
            },
            "geometry": self.geometry.to_dict(),
            "windows": {
                "model_fps": fps(self.model_fps),
                "window_frames": self.window_frames,
                "hop_frames": self.hop_frames,
                "starts_frames": list(self.window_starts),
                "starts_s": [round(float(s / self.model_fps), 6) for s in self.window_starts],
                "cam_shape": list(self.cam_shape),
                "cam_stride": list(self.cam_stride),
                "blend": "triangular cross-fade in overlaps; linear interpolation in gaps",
            },
            "model": self.model_config,
            "peaks": [{"frame": i, "time_s": round(float(i / self.fps), 6), "x": round(float(x), 2),
                       "y": round(float(y), 2), "value": round(float(v), 6)}
                      for i, (x, y, v) in enumerate(self.peaks)],
        }


# -- the map of one clip ---------------------------------------------------------------------------

def cam_stride(config) -> tuple[int, int, int]:
    """(t, h, w) input steps between CAM cells of a :class:`~avscene.models.ShiftNet`: 8 frames
    (conv1, conv2_2, conv4_1 stride 2 in time) and 32 px, 16 px with ``cam=True``, 8 px with
    ``fine_cam=True`` too. Cell ``(j, i, k)`` is centred on input frame ``8 j`` and pixel ``(s i, s k)``.
    A two-tower correspondence net's config gives its own (``map_stride``)."""
    if hasattr(config, "map_stride"):
        return tuple(config.map_stride)
    spatial = 8 if config.fine_cam else 16 if config.cam else 32
    return (8, spatial, spatial)


def cam_batch(model, frames, audio, *, absolute: bool = True, precision: str = "fp32",
              channels_last: bool = False) -> np.ndarray:
    """CAMs of a batch of clips, computed in eval mode (so one clip's map never depends on the
    others in the batch); the model's train/eval mode is restored afterwards.

    Args:
        frames: uint8 (B, T, H, W, 3) at ``model.config.fps``, already fitted to the model's input
            (usually its crop; any size >= 16 px works, the network being fully convolutional).
        audio: float32 (B, N, C) in [-1, 1] at ``model.config.sample_rate``, sample 0 at frame 0;
            ``N`` should be ``frame_to_sample(T)``: up to one frame of samples more or less is
            trimmed or padded with silence.
        absolute: the release's ``|CAM|`` (True) or the signed map.
        precision, channels_last: see :func:`avscene.windows.inference`.
    Returns: float32 (B, T', h, w), T' = ceil(T / 8), cells as :func:`cam_stride` says.
    """
    if is_two_tower(model):  # correspondence nets: similarity maps, already signed in [-1, 1]
        return similarity_batch(model, frames, audio)
    if not hasattr(model, "cam"):
        raise ValueError("localization needs a shift network (a model with a `cam` method)")
    frames, audio = window_batch(frames, audio, model.config)  # (B, T, H, W, 3), (B, C, N)
    device = model_device(model)
    video = video_layout(frames_to_video(frames.to(device)), channels_last)  # (B, 3, T, H, W)
    with inference(model, precision):
        cam = model.cam(video, audio.to(device))  # (B, T', h, w)
    cam = cam.float()
    return (cam.abs() if absolute else cam).cpu().numpy()


def cam_clip(model, frames, audio, *, absolute: bool = True, precision: str = "fp32",
             channels_last: bool = False) -> np.ndarray:
    """CAM of one clip: frames uint8 (T, crop, crop, 3), audio float32 (N, C) -> float32
    (T', h, w) (see :func:`cam_batch`). For a time-averaged map on the clip's own pixels:
    ``cam_to_frame(cam_clip(...).mean(0), frame_hw, model.config, fit=...)``."""
    return cam_batch(model, np.asarray(frames)[None], np.asarray(audio)[None], absolute=absolute,
                     precision=precision, channels_last=channels_last)[0]


def fit_frames(frames: np.ndarray, size: int, fit: str = "crop") -> np.ndarray:
    """In-memory counterpart of ``read_clip(size=..., fit=...)``: uint8 (T, H, W, 3) ->
    (T, size, size, 3) with the same geometry (:class:`FitGeometry`); antialiased bilinear."""
    frames = np.asarray(frames)
    geo = FitGeometry.of(frames.shape[1:3], size, fit)
    (sh, sw), (top, left), (oh, ow) = geo.scaled_hw, geo.offset, geo.model_hw
    out = np.zeros((len(frames), oh, ow, 3), np.uint8)
    for i in range(0, len(frames), 64):
        x = torch.from_numpy(np.ascontiguousarray(frames[i : i + 64])).permute(0, 3, 1, 2).float()  # (t, 3, H, W)
        if (sh, sw) != tuple(frames.shape[1:3]):
            x = F.interpolate(x, size=(sh, sw), mode="bilinear", align_corners=False, antialias=True)
        x = x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (t, sh, sw, 3)
        if geo.fit == "pad":  # the picture inside black borders (offsets <= 0)
            out[i : i + 64, -top : -top + sh, -left : -left + sw] = x
        else:  # crop, squash-crop, or no change
            out[i : i + 64] = x[:, top : top + oh, left : left + ow]
    return out


def _cell_weights(model_pos: np.ndarray, stride: int, n_cells: int, size: int) -> np.ndarray:
    """(P, n_cells) weights that interpolate cells centred at ``stride * i`` linearly at model
    pixel positions ``model_pos`` (held beyond the outer centres); NaN rows where the position is
    outside the model's ``size`` pixels (not seen)."""
    c = np.clip(model_pos / stride, 0, n_cells - 1)
    i0 = np.floor(c).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_cells - 1)
    frac = c - i0
    weights = np.zeros((len(model_pos), n_cells))
    rows = np.arange(len(model_pos))
    np.add.at(weights, (rows, i0), 1 - frac)
    np.add.at(weights, (rows, i1), frac)
    weights[(model_pos < -0.5) | (model_pos > size - 0.5)] = np.nan
    return weights


def _grid_weights(geometry: FitGeometry, stride_hw, cells_hw, out_hw) -> tuple[np.ndarray, np.ndarray]:
    """Row and column weights (out_h, h), (out_w, w) that sample the map of ``cells_hw`` cells at
    the centres of an ``out_hw`` grid laid over the original frame."""
    (fh, fw), (oh, ow) = geometry.frame_hw, out_hw
    y = (np.arange(oh) + 0.5) * fh / oh - 0.5  # frame coordinates of the output pixel centres
    x = (np.arange(ow) + 0.5) * fw / ow - 0.5
    v, u = geometry.to_model(y, x)
    ay = _cell_weights(v, stride_hw[0], cells_hw[0], geometry.model_hw[0])
    ax = _cell_weights(u, stride_hw[1], cells_hw[1], geometry.model_hw[1])
    return ay, ax


def cam_to_frame(cam: np.ndarray, frame_hw: tuple[int, int], config, *, fit: str = "crop",
                 size: int | None = None, out_hw: tuple[int, int] | None = None) -> np.ndarray:
    """Put a CAM (..., h, w) (from :func:`cam_clip`, e.g. averaged over time) onto the pixel grid
    of the original (H, W) frames the clip was fitted from with ``fit`` (or onto an ``out_hw``
    grid over the same frame): float32 (..., H, W), NaN where the model did not see the frame.
    ``config`` is the model's config (cell stride; its crop size unless ``size`` says the side
    the frames were fitted to)."""
    cam = np.asarray(cam, np.float32)
    geometry = FitGeometry.of(frame_hw, size or config.crop_size, fit)
    ay, ax = _grid_weights(geometry, cam_stride(config)[1:], cam.shape[-2:], out_hw or tuple(frame_hw))
    return (ay @ cam @ ax.T).astype(np.float32)


# -- windows over a whole video --------------------------------------------------------------------

def _blend(model, n_model_frames: int, window_at: Callable, times: np.ndarray, options: LocalizeOptions):
    """Run every window, cross-fade their CAMs (``|CAM|`` unless ``options.signed``) at ``times``
    (model-frame coordinates of the output frames). Returns cells (K, h, w), the window starts, the
    hop and one window's CAM shape."""
    n = model.config.n_frames
    hop = max(1, round(n * (1 - options.overlap)))
    starts = plan_windows(n_model_frames, n, hop, max_windows=options.max_windows, align="cover")
    if options.channels_last:
        to_channels_last(model)
    blend = cam_shape = None
    for start in starts:
        frames, audio = window_at(start)
        cam = cam_clip(model, frames, audio, absolute=not options.signed, precision=options.precision,
                       channels_last=options.channels_last)  # (T', h, w)
        if blend is None:
            blend, cam_shape = OverlapAdd((len(times), *cam.shape[1:])), cam.shape
        local = times - start  # (K,) the output frames in the window's model frames
        inside = np.flatnonzero((local >= 0) & (local <= n - 1))
        blend.add(inside, _cam_at(cam, local[inside], cam_stride(model.config)[0]), local[inside], n)
    cells, covered = blend.result()  # (K, h, w)
    _fill_gaps(cells, covered, times)
    return cells.astype(np.float32), starts, hop, tuple(int(s) for s in cam_shape)


def _cam_at(cam: np.ndarray, frames: np.ndarray, stride_t: int) -> np.ndarray:
    """A window's map (T', h, w) at its model frames ``frames`` (P,): linear in time between the
    slices' centres (slice ``j`` at frame ``stride_t * j``), held after the last. -> (P, h, w)"""
    f = np.clip(frames / stride_t, 0, cam.shape[0] - 1)
    j0 = np.floor(f).astype(np.int64)
    j1 = np.minimum(j0 + 1, cam.shape[0] - 1)
    frac = (f - j0)[:, None, None]
    return cam[j0] * (1 - frac) + cam[j1] * frac


def _fill_gaps(cells: np.ndarray, covered: np.ndarray, times: np.ndarray) -> None:
    """In place: frames no window reached (``covered`` False) linear in time between their covered
    neighbours, held before the first covered frame and after the last."""
    covered, gaps = np.flatnonzero(covered), np.flatnonzero(~covered)
    if not len(gaps):
        return
    pos = np.searchsorted(covered, gaps)
    left, right = np.clip(pos - 1, 0, len(covered) - 1), np.clip(pos, 0, len(covered) - 1)
    t_left, t_right = times[covered[left]], times[covered[right]]
    span = np.where(t_right > t_left, t_right - t_left, 1.0)
    frac = np.clip((times[gaps] - t_left) / span, 0, 1)[:, None, None]
    cells[gaps] = cells[covered[left]] * (1 - frac) + cells[covered[right]] * frac


def _result(model, cells, fps, frame_hw, options, starts, hop, cam_shape, path) -> LocalizeResult:
    cfg = model.config
    geometry = FitGeometry.of(frame_hw, options.input_side(cfg), options.fit_for(cfg))
    stride = cam_stride(cfg)
    n, (h, w), (out_h, out_w) = len(cells), frame_hw, options.output_hw(frame_hw)
    scale = min(1.0, math.sqrt(options.max_map_bytes / max(1, n * out_h * out_w * 4)))
    map_hw = (max(1, round(out_h * scale)), max(1, round(out_w * scale)))
    ay, ax = _grid_weights(geometry, stride[1:], cells.shape[1:], map_hw)
    peaks = np.full((n, 3), np.nan, np.float32)
    chunk = max(1, (64 << 20) // (map_hw[0] * map_hw[1] * 8))
    for k0 in range(0, n, chunk):
        part = _render(cells[k0 : k0 + chunk], ay, ax)  # (k, H_m, W_m)
        flat = np.where(np.isnan(part), -np.inf, part).reshape(len(part), -1)
        best = flat.argmax(axis=1)
        rows, cols = np.divmod(best, map_hw[1])
        peaks[k0 : k0 + chunk, 0] = (cols + 0.5) * w / map_hw[1] - 0.5
        peaks[k0 : k0 + chunk, 1] = (rows + 0.5) * h / map_hw[0] - 0.5
        peaks[k0 : k0 + chunk, 2] = flat[np.arange(len(part)), best]
    return LocalizeResult(
        path=path, fps=fps, frame_hw=(int(h), int(w)), map_hw=map_hw, peaks=peaks,
        cells=cells, geometry=geometry, cam_stride=stride, cam_shape=cam_shape, model_fps=cfg.fps,
        window_starts=tuple(int(s) for s in starts), window_frames=cfg.n_frames, hop_frames=hop,
        model_config=cfg.to_dict() if hasattr(cfg, "to_dict") else {}, out_hw=(out_h, out_w),
        value="similarity" if is_two_tower(model) else "CAM" if options.signed else "|CAM|")


def _render(cells: np.ndarray, ay: np.ndarray, ax: np.ndarray, dtype=torch.float64) -> np.ndarray:
    """float32 (k, H, W) maps of cells (k, h, w) through row and column weights (H, h), (W, w),
    computed in ``dtype``. Torch's batched products are ~5x faster than NumPy's stacked ``@``
    here (tiny inner dimensions) and give the same values."""
    with torch.inference_mode():
        weights = [torch.from_numpy(np.asarray(a)).to(dtype) for a in (ay, ax)]
        rows = torch.matmul(torch.from_numpy(np.ascontiguousarray(cells)).to(dtype), weights[1].T)  # (k, h, W)
        return torch.matmul(weights[0], rows).to(torch.float32).numpy()


def localize_file(model, path: str | os.PathLike, options: LocalizeOptions = LocalizeOptions()) -> LocalizeResult:
    """Sound-source maps of a whole video file (bounded memory: one window at a time).

    Raises MediaError (naming the file) for an unreadable file, NoStreamError without video or
    audio, ClipRangeError when the video is shorter than one model window.
    """
    cfg = model.config
    n, fps_m = cfg.n_frames, cfg.fps
    info = probe(path, need_video=True, need_audio=True)
    if not info.fps or not info.width or not info.height:
        raise MediaError(path, "video stream has no readable frame rate or size")
    fps_v = info.fps
    n_video = info.n_frames or frames_in(info.duration_s, fps_v)
    video_s = min(info.duration_s, float(n_video / fps_v))
    n_model = frames_in(Fraction(video_s).limit_denominator(10**6), fps_m)
    if n_model < n:
        raise ClipRangeError(path, f"too short for the model: {video_s:.2f} s, needs {float(n / fps_m):.2f} s")

    side = options.input_side(cfg)
    span = SpanReader(path, n_model, fps_m, cfg.sample_rate, side * side * 3, size=side, fit=options.fit_for(cfg),
                      channels=cfg.audio_channels)

    def window_at(start: int):  # overlapping windows come from one decode
        frames, audio = span(start, start + n)
        return frames, audio[: cfg.n_samples]
    times = np.arange(n_video) * float(fps_m / fps_v)  # video frame k in model frames
    cells, starts, hop, cam_shape = _blend(model, n_model, window_at, times, options)
    return _result(model, cells, fps_v, (info.height, info.width), options, starts, hop, cam_shape,
                   os.fspath(path))



def localize_clip(model, frames: np.ndarray, audio: np.ndarray,
                  options: LocalizeOptions = LocalizeOptions()) -> LocalizeResult:
    """Sound-source maps of in-memory media at the model's rates: ``frames`` uint8 (T, H, W, 3) of
    any size at ``model.config.fps`` (fitted with ``options.fit`` and ``options.size``), ``audio`` float32
    (N, C) at its sample rate, aligned at sample 0. The result is on the frames' own pixel grid."""
    cfg = model.config
    n, n_samples = cfg.n_frames, cfg.n_samples
    frames, audio = np.asarray(frames), np.asarray(audio, np.float32)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.shape}")

    def window_at(start: int):
        s0 = frame_to_sample(start, cfg.fps, cfg.sample_rate)
        seg = audio[s0 : s0 + n_samples]
        seg = np.pad(seg, ((0, n_samples - len(seg)), (0, 0)))
        return fit_frames(frames[start : start + n], options.input_side(cfg), options.fit_for(cfg)), seg

    times = np.arange(len(frames), dtype=np.float64)
    cells, starts, hop, cam_shape = _blend(model, len(frames), window_at, times, options)
    return _result(model, cells, cfg.fps, frames.shape[1:3], options, starts, hop, cam_shape, None)


# -- writers ---------------------------------------------------------------------------------------

#: The files :func:`write_cam_outputs` makes for an input, by kind: ``<stem><suffix>``.
CAM_OUTPUTS = {"video": "_cam.mp4", "map": "_cam.npy", "json": "_cam.json", "sheet": "_sheet.png"}


def output_paths(name: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, Path]:
    """The files written for input ``name`` (its stem is used) in ``out_dir``."""
    stem, out = Path(name).stem, Path(out_dir)
    return {kind: out / f"{stem}{suffix}" for kind, suffix in CAM_OUTPUTS.items()}


def overlay_thresholds(cam: np.ndarray, percentile: float = 97.0) -> tuple[float, float]:
    """(lo, hi) of the overlay, as the release's adaptive threshold: ``hi`` = the ``percentile``
    of the whole map volume, ``lo`` = half of it, but never below the median, so a map with a
    large even level (the bias) does not colour the whole picture. A flat map (range <= 1e-3)
    gives (0, 0): no overlay."""
    step = max(1, cam.size // 4_000_000)
    sample = cam.reshape(-1)[::step]
    sample = sample[np.isfinite(sample)]
    if not len(sample) or float(sample.max() - sample.min()) <= 1e-3:
        return 0.0, 0.0
    hi = float(np.percentile(sample, percentile))
    lo = max(0.5 * hi, float(np.median(sample)))
    return lo, max(hi, lo + 1e-3)


def _map_sample(result: LocalizeResult, max_values: int = 4_000_000) -> np.ndarray:
    """The maps of frames spread evenly over the video, at ``map_hw``, about ``max_values``
    values in all (every frame when the whole map is that small): what the overlay's thresholds
    are taken from, without rendering the whole video's map."""
    per_frame = result.map_hw[0] * result.map_hw[1]
    count = min(result.n_frames, max(1, max_values // per_frame))
    frames = np.unique(np.linspace(0, result.n_frames - 1, count).round().astype(int))
    return _render(result.cells[frames], *result._weights(result.map_hw))  # (count, H_m, W_m)


def render_overlay(result: LocalizeResult, frames: np.ndarray, first_frame: int, lo: float, hi: float,
                   *, max_alpha: float = 0.35) -> np.ndarray:
    """Frames ``first_frame ..`` (uint8 (t, H, W, 3) at the original size) with their heat maps."""
    from avscene.report.plots import heatmap_overlay

    ay, ax = result._weights(frames.shape[1:3])
    out = np.empty_like(frames)
    # Frames in batches of ~OVERLAY_BATCH_PIXELS: one matrix product per batch rather than two tiny
    # ones per frame, while the float temporaries (~50 B/pixel) stay bounded.
    batch = max(1, OVERLAY_BATCH_PIXELS // (frames.shape[1] * frames.shape[2]))
    for i in range(0, len(frames), batch):
        b = min(batch, len(frames) - i)
        cells = result.cells[first_frame + i : first_frame + i + b]  # (b, h, w)
        heat = _render(cells, ay, ax, torch.float32)  # (b, H, W)
        out[i : i + b] = heatmap_overlay(frames[i : i + b], heat, lo, hi, max_alpha=max_alpha)
    return out


#: Pixels whose heat maps :func:`render_overlay` computes at once (~200 MB of temporaries).
OVERLAY_BATCH_PIXELS = 1 << 22


def _read_span(path, k0: int, k1: int, fps: Fraction, rate: int, channels: int,
               size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Original frames ``k0..k1`` (scaled by the decoder to ``size`` (H, W) when given) and
    exactly the audio samples between their instants (silence where the audio track has ended)."""
    start, duration = float(k0 / fps) + 1e-6, float((k1 - k0) / fps) + 1e-6
    want = frame_to_sample(k1, fps, rate) - frame_to_sample(k0, fps, rate)
    fit = "squash" if size else "crop"  # the frame's own aspect: squash only scales
    try:
        clip = read_clip(path, start, duration, fps=fps, size=size, fit=fit, sample_rate=rate, channels=channels)
        audio = clip.audio[:want]
    except ClipRangeError:  # the audio ends before the video: read the picture alone
        clip = read_clip(path, start, duration, fps=fps, size=size, fit=fit, audio=False)
        audio = np.zeros((0, channels), np.float32)
    return clip.frames, np.pad(audio, ((0, want - len(audio)), (0, 0)))


def write_cam_outputs(result: LocalizeResult, out_dir: str | os.PathLike, *, name: str | None = None,
                      model_name: str | None = None, network: dict | None = None, percentile: float = 97.0,
                      max_alpha: float = 0.35, n_sheet: int = 6, background: bool = True) -> dict[str, Path]:
    """Write ``<name>_cam.mp4`` (the original frames at their own rate, at ``result.out_hw`` (their
    own size by default), with the heat map over them and the original sound; encoded on a
    background thread while the next chunk is decoded and rendered, unless ``background`` is False), ``<name>_cam.npy`` (``result.cells``, float32 (T, h, w)),
    ``<name>_cam.json`` (per-frame peaks and metadata) and ``<name>_sheet.png`` (``n_sheet``
    frames) for a result of :func:`localize_file` (``name``: default the input's stem). ``network``: which network made the map and
    what it knows (:meth:`avscene.cards.NetworkId.to_dict` and its caveat), kept in the JSON. Every
    file is written atomically; the video is streamed in chunks of frames. Returns the paths by
    kind (see :func:`output_paths`)."""
    from avscene.files import atomic_path, write_json
    from avscene.infer.background import in_background
    from avscene.media.writer import VideoWriter
    from avscene.report.plots import plot_cam_sheet

    if result.path is None:
        raise ValueError("write_cam_outputs needs a result of localize_file (the video is re-read)")
    # ``name`` is the stem itself ("clip.v2" stays "clip.v2"); without it, the input's stem
    paths = output_paths(f"{name}.mp4" if name else result.path, out_dir)
    info = probe(result.path)
    rate, channels = int(info.sample_rate), min(int(info.channels or 2), 8)
    fps, n = as_fps(result.fps), result.n_frames
    h, w = result.out_hw or result.frame_hw
    size = (h, w) if (h, w) != tuple(result.frame_hw) else None
    lo, hi = overlay_thresholds(_map_sample(result), percentile)
    # Frames per chunk: ~128 MiB of uint8 pictures, at least 16 (each chunk is one seek + decode
    # from the previous keyframe, so tiny chunks would be slow), at most 512.
    chunk = int(np.clip((128 << 20) // (h * w * 3), 16, 512))
    sheet_at = sorted({int(round(i)) for i in np.linspace(0, n - 1, min(n_sheet, n))})
    sheet = {}
    with VideoWriter(paths["video"], fps, (h, w), sample_rate=rate, channels=channels) as out, \
            (in_background(out.write, depth=1) if background else contextlib.nullcontext(out.write)) as write:
        for k0 in range(0, n, chunk):
            k1 = min(n, k0 + chunk)
            frames, audio = _read_span(result.path, k0, k1, fps, rate, channels, size)
            frames = render_overlay(result, frames, k0, lo, hi, max_alpha=max_alpha)
            write(frames, audio)
            sheet.update({k: frames[k - k0].copy() for k in sheet_at if k0 <= k < k1})  # not views of the chunk
    with atomic_path(paths["map"]) as tmp, open(tmp, "wb") as f:
        np.save(f, result.cells)
    meta = result.to_dict()
    meta["model_name"] = model_name
    meta.update(network or {})
    meta["overlay"] = {"percentile": percentile, "lo": lo, "hi": hi, "max_alpha": max_alpha, "colormap": "jet"}
    meta["files"] = {kind: p.name for kind, p in paths.items()}
    write_json(paths["json"], meta)
    titles = [f"frame {k}, {float(k / fps):.2f} s" for k in sheet_at]
    peaks = [tuple(result.peaks[k, :2]) for k in sheet_at]
    plot_cam_sheet([sheet[k] for k in sheet_at], titles, paths["sheet"], peaks=peaks,
                   title=f"{Path(result.path).name}: {result.value} (thresholds {lo:.3g}-{hi:.3g})")
    return paths
