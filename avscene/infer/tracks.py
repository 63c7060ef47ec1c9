"""From a sound-source map over time to object tracks: peaks with non-maximum suppression, and
peaks linked over time.

Pure array code, no network: ``heat`` maps are float (H, W) on a picture's pixels (NaN where the
model saw nothing), coordinates are pixel centres ((0, 0) is the centre of the top-left pixel, x
to the right, y down) and boxes are ``(x0, y0, x1, y1)`` pixel edges, right/bottom exclusive.

* :func:`find_peaks`: local maxima of one map at or above a threshold, strongest first, each
  suppressing the weaker ones within ``radius`` pixels (greedy NMS), and optionally those inside
  its blob's box.
* :func:`snap_peak`: a peak moved onto the strongest motion near it.
* :func:`peak_box`: the box of the connected region around a peak where the map stays above a
  fraction of the peak's value (the extent of the blob the peak tops).
* :func:`link_tracks`: peaks of consecutive steps joined into tracks by an optimal assignment of
  distances (Hungarian), a track surviving ``max_gap`` steps without a peak (an object pausing
  between turns), tracks with fewer than ``min_detections`` peaks dropped.
* :func:`merge_tracks`: tracks whose median positions fall in each other's median blob box
  joined into one (one object lit by several bumps of the map).
* :func:`track_boxes`: a track's box on every frame: its centre interpolated linearly between
  the steps that found it and held before the first and after the last, its size the median of
  its peaks' boxes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment


@dataclasses.dataclass(frozen=True)
class Peak:
    """One peak of a map: position (px), value (map units) and its blob's box."""

    x: float
    y: float
    value: float
    box: tuple[float, float, float, float]


@dataclasses.dataclass(frozen=True)
class Track:
    """Peaks of one object over time: ``steps`` (n,) the step indices that found it, in order,
    and ``peaks`` the peak found at each."""

    steps: tuple[int, ...]
    peaks: tuple[Peak, ...]

    @property
    def strength(self) -> float:
        """Sum of its peaks' values: how much map evidence the track gathered."""
        return float(sum(p.value for p in self.peaks))


def find_peaks(heat: np.ndarray, threshold: float, radius: float, *, max_peaks: int | None = None,
               box_fraction: float = 0.5, within_blobs: bool = False) -> list[Peak]:
    """Peaks of ``heat`` (H, W): pixels that are the maximum of their 3 x 3 neighbourhood and at
    least ``threshold``, strongest first, none within ``radius`` px of a stronger kept one (nor,
    with ``within_blobs``, inside a stronger kept one's box: a bump on the same blob, whatever
    the blob's size); at most ``max_peaks``. Each gets the box of its blob (:func:`peak_box`)."""
    heat = np.asarray(heat, np.float64)
    if heat.ndim != 2:
        raise ValueError(f"heat must be (H, W), got {heat.shape}")
    finite = np.where(np.isnan(heat), -np.inf, heat)
    local = (finite == ndimage.maximum_filter(finite, size=3, mode="nearest")) & (finite >= threshold)
    ys, xs = np.nonzero(local)
    order = np.argsort(-finite[ys, xs], kind="stable")
    kept: list[Peak] = []
    for y, x in zip(ys[order], xs[order]):
        if any((p.x - x) ** 2 + (p.y - y) ** 2 <= radius**2 for p in kept):
            continue
        if within_blobs and any(_holds(p.box, x, y) for p in kept):
            continue
        value = float(finite[y, x])
        kept.append(Peak(float(x), float(y), value, peak_box(finite, int(x), int(y), box_fraction)))
        if max_peaks is not None and len(kept) >= max_peaks:
            break
    return kept


def snap_peak(peak: Peak, energy: np.ndarray, radius: float, floor: float = -np.inf) -> Peak:
    """``peak`` moved to the strongest pixel of ``energy`` (H, W) within a square of ``radius`` px
    around it, its box moved with it; unchanged where ``energy`` there is flat or nowhere above
    ``floor`` (nothing moved).
    The map is coarse (one value per CAM cell, its peaks often on an object's rim); the
    object's own motion places it to the pixel."""
    h, w = energy.shape
    x0, x1 = max(0, int(peak.x - radius)), min(w, int(peak.x + radius) + 1)
    y0, y1 = max(0, int(peak.y - radius)), min(h, int(peak.y + radius) + 1)
    window = energy[y0:y1, x0:x1]
    if window.size == 0 or not np.isfinite(window).any() or np.nanmax(window) <= max(np.nanmin(window), floor):
        return peak
    dy, dx = np.unravel_index(int(np.nanargmax(window)), window.shape)
    x, y = float(x0 + dx), float(y0 + dy)
    bx0, by0, bx1, by1 = peak.box
    return dataclasses.replace(peak, x=x, y=y, box=(bx0 + x - peak.x, by0 + y - peak.y, bx1 + x - peak.x,
                                                     by1 + y - peak.y))


def peak_box(heat: np.ndarray, x: int, y: int, fraction: float = 0.5) -> tuple[float, float, float, float]:
    """Box (x0, y0, x1, y1) of the connected region containing pixel (x, y) where ``heat`` is at
    least ``fraction`` of its value there (values measured from the map's minimum)."""
    floor = float(np.min(heat[np.isfinite(heat)])) if np.isfinite(heat).any() else 0.0
    level = floor + fraction * (float(heat[y, x]) - floor)
    labels, _ = ndimage.label(heat >= level)
    rows, cols = np.nonzero(labels == labels[y, x])
    return (float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1))


def link_tracks(peaks_per_step: list[list[Peak]], max_distance: float, *, max_gap: int = 4,
                min_detections: int = 2) -> list[Track]:
    """Join the peaks of consecutive steps into tracks (see the module docstring); tracks ordered
    by strength, strongest first. ``max_distance`` (px) bounds a link; ``max_gap`` steps without
    a peak end a track."""
    open_tracks: list[Track] = []
    closed: list[Track] = []
    for step, peaks in enumerate(peaks_per_step):
        alive = [t for t in open_tracks if step - t.steps[-1] <= max_gap + 1]
        closed += [t for t in open_tracks if step - t.steps[-1] > max_gap + 1]
        links = _assign(alive, peaks, max_distance)
        open_tracks = [dataclasses.replace(t, steps=t.steps + (step,), peaks=t.peaks + (peaks[links[i]],))
                       if i in links else t for i, t in enumerate(alive)]
        linked = set(links.values())
        open_tracks += [Track((step,), (p,)) for j, p in enumerate(peaks) if j not in linked]
    tracks = [t for t in closed + open_tracks if len(t.steps) >= min_detections]
    return sorted(tracks, key=lambda t: -t.strength)


def merge_tracks(tracks: list[Track]) -> list[Track]:
    """Tracks that are one object joined, strongest first: a track whose median position lies in
    a stronger (merged) track's median blob box, or whose median box holds that track's median
    position, is the same object seen through another bump of the map (a pulse's rim moving
    round it, a face's mouth and eyes). At a step both found, the stronger peak is kept. Meant for
    objects that stay put over a track: two objects crossing the same spot at different times
    would be joined."""
    merged: list[Track] = []
    for track in sorted(tracks, key=lambda t: -t.strength):
        home = next((i for i, m in enumerate(merged) if _same_object(m, track)), None)
        if home is None:
            merged.append(track)
            continue
        by_step = {s: p for s, p in zip(merged[home].steps, merged[home].peaks)}
        for s, p in zip(track.steps, track.peaks):
            if s not in by_step or p.value > by_step[s].value:
                by_step[s] = p
        steps = tuple(sorted(by_step))
        merged[home] = Track(steps, tuple(by_step[s] for s in steps))
    return sorted(merged, key=lambda t: -t.strength)


def _same_object(a: Track, b: Track) -> bool:
    def centre(t: Track) -> np.ndarray:
        return np.median([[p.x, p.y] for p in t.peaks], axis=0)  # (2,)

    def box(t: Track) -> np.ndarray:
        return np.median([p.box for p in t.peaks], axis=0)  # (4,) x0, y0, x1, y1

    return _holds(box(a), *centre(b)) or _holds(box(b), *centre(a))


def _holds(box, x: float, y: float) -> bool:
    """Whether ``box`` (x0, y0, x1, y1 pixel edges) holds the pixel centred on (x, y)."""
    return bool(box[0] <= x + 0.5 < box[2] and box[1] <= y + 0.5 < box[3])


def _assign(tracks: list[Track], peaks: list[Peak], max_distance: float) -> dict[int, int]:
    """Track index -> peak index of the assignment with the least total distance, links longer
    than ``max_distance`` refused."""
    if not tracks or not peaks:
        return {}
    last = np.array([[t.peaks[-1].x, t.peaks[-1].y] for t in tracks])  # (n_tracks, 2)
    now = np.array([[p.x, p.y] for p in peaks])  # (n_peaks, 2)
    dist = np.linalg.norm(last[:, None] - now[None], axis=-1)  # (n_tracks, n_peaks)
    big = max_distance * 10 + 1.0
    rows, cols = linear_sum_assignment(np.where(dist <= max_distance, dist, big))
    return {int(r): int(c) for r, c in zip(rows, cols) if dist[r, c] <= max_distance}


def track_boxes(track: Track, step_centres: np.ndarray, n_frames: int, frame_hw: tuple[int, int],
                max_side: float | None = None) -> np.ndarray:
    """The track's box on each of ``n_frames`` frames, float32 (T, 4), inside the picture
    ``frame_hw``; its sides at most ``max_side`` px. ``step_centres`` (n_steps,) is the frame at
    the centre of each step."""
    at = np.asarray(step_centres, np.float64)[list(track.steps)]  # (n,)
    frames = np.arange(n_frames)
    cx = np.interp(frames, at, [p.x for p in track.peaks])
    cy = np.interp(frames, at, [p.y for p in track.peaks])
    width = float(np.median([p.box[2] - p.box[0] for p in track.peaks]))
    height = float(np.median([p.box[3] - p.box[1] for p in track.peaks]))
    if max_side is not None:
        width, height = min(width, max_side), min(height, max_side)
    h, w = frame_hw
    boxes = np.stack([cx + 0.5 - width / 2, cy + 0.5 - height / 2, cx + 0.5 + width / 2, cy + 0.5 + height / 2], 1)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    return boxes.astype(np.float32)


def box_values(maps: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Per frame, the largest value of ``maps`` (T, H, W) inside ``boxes`` (T, 4) (NaN ignored;
    0 for an empty box). Returns float32 (T,)."""
    out = np.zeros(len(maps), np.float32)
    for t, (x0, y0, x1, y1) in enumerate(np.asarray(boxes)):
        region = maps[t, int(np.floor(y0)) : int(np.ceil(y1)), int(np.floor(x0)) : int(np.ceil(x1))]
        if region.size and np.isfinite(region).any():
            out[t] = float(np.nanmax(region))
    return out


def activity_segments(active: np.ndarray, fps: float) -> list[tuple[float, float]]:
    """Spans ``(start_s, end_s)`` where a per-frame bool (T,) is True."""
    edges = np.diff(np.concatenate([[0], np.asarray(active, np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(round(float(a / fps), 4), round(float(b / fps), 4)) for a, b in zip(starts, ends)]
