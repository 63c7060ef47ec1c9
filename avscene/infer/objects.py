"""Audio-visual objects: find each sounding thing, follow it, say when it sounds, give it its own
sound and check its sync (``avscene objects``).

Built on the networks avscene already has, called through their public functions::

    frames (T, H, W, 3) + audio (N, C) at the shift net's rates
      --> localize_clip: |CAM| (or the signed CAM) per frame on the picture's pixels, divided by
          the video's scale (its 99.5th percentile), so thresholds are fractions of the video's
          strong evidence
      --> per step (the CAM's time stride, 8 frames): the mean map of the step's frames
          --> find_peaks: local maxima >= ``threshold``, greedy NMS within ``nms_radius`` and
              inside a stronger peak's blob (where the map stays above 3/4 of that peak): one
              peak per object whatever its size in cells; each peak moved onto the strongest
              motion within ``snap_cells`` cells (the map has one value per cell, often on an
              object's rim; the object's own motion places it to the pixel)
      --> link_tracks: peaks joined over steps (Hungarian on distances; gaps of ``max_gap_steps``
          bridged, an object pausing between turns stays one track); merge_tracks: tracks whose
          median positions lie in each other's median blob box are one object; the ``max_objects``
          strongest kept; track_boxes: one box per frame (the blob at 3/4 of the peak, at most
          ``box_cells`` cells a side: a coarse map cannot place an object more finely)
      --> activity: the map's maximum in the track's box per frame, above the frame's median
          (the evidence there against the rest of the picture), >= ``activity_threshold``; with a
          separator also active where its own sound carries >= ``sound_share`` of the mixture's
          energy (the separator outputs near silence for a silent object); pauses and spells
          under a sixth of a second removed
      --> each track seen on its own: a square window that follows its box, of the part of the
          picture the maps' scale puts on the network's crop (the whole picture without ``size``)
      --> sync per track: the offset scan (sync_clip) on its window greyed outside its box (grown
          by ``sync_margin``): only that object can be in or out of sync; out of sync when the
          best offset beats offset 0 by ``min_offset_gain`` logits
      --> sound per track: the on/off separator (separate_arrays) on its window with every OTHER
          track's box greyed: what is left on screen is that object, its sound is "on-screen"

The default thresholds are starting points; ``benchmarks/objects.py`` calibrates them for a
network on held-out synthetic scenes (``calibration`` in its results JSON).
Writers live in :mod:`avscene.infer.objects_output`.
"""

from __future__ import annotations

import dataclasses
import os
from fractions import Fraction

import numpy as np
from scipy import ndimage

from avscene.media import ClipRangeError, MediaError, probe, read_clip
from avscene.infer.localize import LocalizeOptions, cam_stride, fit_frames, localize_clip
from avscene.infer.separate import MASK_GREY, SeparateOptions, separate_arrays
from avscene.infer.sync import SyncOptions, SyncResult, sync_clip
from avscene.infer.tracks import (Peak, Track, activity_segments, box_values, find_peaks, link_tracks,
                                  merge_tracks, snap_peak, track_boxes)


#: Motion a peak snaps to must be at least this many times the step's median motion.
MOTION_FLOOR = 1.3
#: Activity's shortest spell and shortest pause, in frames (a sixth of a second at 30 fps).
SPELL_FRAMES = 5


@dataclasses.dataclass(frozen=True)
class ObjectsOptions:
    """How to find and follow objects. Thresholds are fractions of the video's map scale (the
    99.5th percentile of its map). Distances in pixels of the picture; None: ``nms_radius``
    1.5 CAM cells, ``link_distance`` 2 cells. ``box_cells``: the longest side of a track's box, in
    cells. ``size`` / ``fit`` / ``signed``: as :class:`LocalizeOptions` (``signed``: objects are
    found on the evidence for sync, so a silent thing moving on its own is not one; nor is an
    object whose sound is offset, so per-object sync checks need |CAM|).
    ``sync_margin``: how much of the picture around its box an object's own scan sees (a fraction
    of the box's size on every side). ``min_offset_gain``: an object is called out of sync only
    when its scan's best offset beats offset 0 by at least this many logits (mean over windows):
    a scan of one object among several sounds peaks somewhere even when nothing is wrong.
    ``sound_share``: with a separator, an object is also active where its own sound carries at
    least this fraction of the mixture's energy (None: activity from the map alone).
    ``snap_cells``: how far (cells) a peak may move onto the strongest motion near it (0: peaks
    stay on the map's grid)."""

    threshold: float = 0.6
    activity_threshold: float = 0.5
    max_objects: int = 4
    nms_radius: float | None = None
    link_distance: float | None = None
    max_gap_steps: int = 8
    min_detections: int = 2
    size: int | None = None
    fit: str | None = None
    sync_max_offset_s: float = 1.0
    sync_margin: float = 0.5
    signed: bool = False
    box_cells: float = 2.0
    snap_cells: float = 1.5
    min_offset_gain: float = 1.0
    sound_share: float | None = 0.01

    def __post_init__(self) -> None:
        if self.max_objects < 1:
            raise ValueError(f"max_objects must be >= 1, got {self.max_objects}")
        if not self.threshold > 0:
            raise ValueError(f"threshold must be positive, got {self.threshold}")
        if self.sync_margin < 0 or self.sync_max_offset_s <= 0:
            raise ValueError(f"sync_margin must be >= 0 and sync_max_offset_s > 0, got {self.sync_margin}, "
                             f"{self.sync_max_offset_s}")
        if not self.box_cells > 0:
            raise ValueError(f"box_cells must be positive, got {self.box_cells}")
        if self.sound_share is not None and not 0 < self.sound_share <= 1:
            raise ValueError(f"sound_share must be in (0, 1] or None, got {self.sound_share}")
        if self.snap_cells < 0 or self.min_offset_gain < 0:
            raise ValueError(f"snap_cells and min_offset_gain must be >= 0, got {self.snap_cells}, "
                             f"{self.min_offset_gain}")


@dataclasses.dataclass(frozen=True, eq=False)
class ObjectTrack:
    """One object. ``boxes`` float32 (T, 4) on the picture; ``strength`` float32 (T,) the map's
    maximum in its box minus the frame's median (scaled map units); ``active`` bool (T,);
    ``share`` float32 (T,) with a separator: the fraction of the mixture's energy in its sound;
    ``detected_steps`` the steps whose peaks made it; ``confidence`` in [0, 1]: the mean of its
    peaks' values over the strongest peak of the video, times the fraction of steps it was found
    in while it existed.
    ``sync``: its own offset scan and ``in_sync`` the verdict on it (see ``min_offset_gain``);
    ``sound``: float32 (N,) its separated sound at the model's rate."""

    id: int
    boxes: np.ndarray
    strength: np.ndarray
    active: np.ndarray
    detected_steps: tuple[int, ...]
    confidence: float
    sync: SyncResult | None = None
    in_sync: bool | None = None
    sound: np.ndarray | None = None
    share: np.ndarray | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class ObjectsResult:
    """The objects of one video: ``tracks`` strongest first; ``maps`` float32 (T, H, W) the scaled
    map; ``map_scale`` what it was divided by; frames at ``fps``, sound at ``sample_rate``."""

    path: str | None
    fps: Fraction
    sample_rate: int
    frame_hw: tuple[int, int]
    tracks: tuple[ObjectTrack, ...]
    maps: np.ndarray
    map_scale: float
    step_frames: int
    options: ObjectsOptions

    def describe(self) -> str:
        parts = []
        for t in self.tracks:
            sync = "" if t.sync is None else (", in sync" if t.in_sync else
                                              f", out of sync by {t.sync.offset_frames:+d} frames")
            parts.append(f"#{t.id} active {t.active.mean():.0%}{sync}")
        return f"{len(self.tracks)} object(s)" + (": " + "; ".join(parts) if parts else "")

    def to_dict(self, to_picture: float = 1.0) -> dict:
        """JSON-friendly summary; boxes multiplied by ``to_picture`` (working -> original pixels)."""
        fps = float(self.fps)
        return {
            "path": self.path, "fps": f"{self.fps.numerator}/{self.fps.denominator}", "n_frames": len(self.maps),
            "map_scale": round(self.map_scale, 6), "step_frames": self.step_frames,
            "options": dataclasses.asdict(self.options),
            "objects": [_track_dict(t, fps, to_picture) for t in self.tracks],
        }


def _track_dict(track: ObjectTrack, fps: float, to_picture: float) -> dict:
    sync = None
    if track.sync is not None:
        sync = {"in_sync": track.in_sync, "offset_frames": track.sync.offset_frames,
                "offset_s": round(track.sync.offset_s, 6), "confidence": round(track.sync.confidence, 4),
                "gain_over_zero": round(offset_gain(track.sync), 4),
                "sign": "positive = its sound lags its picture"}
    return {"id": track.id, "confidence": round(track.confidence, 4),
            "active_fraction": round(float(track.active.mean()), 4),
            "active_segments_s": activity_segments(track.active, fps),
            "boxes": np.round(track.boxes * to_picture, 1).tolist(),
            "strength": np.round(track.strength, 3).tolist(), "active": track.active.astype(int).tolist(),
            "sound_share": None if track.share is None else np.round(track.share, 4).tolist(),
            "sync": sync}


# -- finding and following ------------------------------------------------------------------------


def object_maps(model, frames: np.ndarray, audio: np.ndarray, options: ObjectsOptions
                ) -> tuple[np.ndarray, float, float]:
    """|CAM| (the signed CAM with ``options.signed``) of in-memory media at the model's rates,
    divided by its 99.5th percentile: float32 (T, H, W) on the frames' pixels, the scale, and one
    CAM cell's side in pixels of the picture."""
    loc = localize_clip(model, frames, audio,
                        LocalizeOptions(fit=options.fit, size=options.size, signed=options.signed))
    maps = loc.cam
    if maps.shape[1:] != tuple(frames.shape[1:3]):
        raise ValueError(f"{len(frames)} frames of {frames.shape[1]} x {frames.shape[2]} px exceed the maps' memory "
                         "budget (1 GiB); use smaller frames (avscene objects --max-side) or a shorter video")
    finite = maps[np.isfinite(maps)]
    scale = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    scale = scale if scale > 0 else 1.0
    geometry = loc.geometry
    cell = cam_stride(model.config)[1] * geometry.frame_hw[0] / geometry.scaled_hw[0]
    return (maps / scale).astype(np.float32), scale, float(cell)


def step_maps(maps: np.ndarray, step_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean map of each run of ``step_frames`` frames (the last run may be shorter): float32
    (n_steps, H, W) and the centre frame of each step (n_steps,)."""
    starts = np.arange(0, len(maps), step_frames)
    means = np.stack([_nan_mean(maps[s : s + step_frames]) for s in starts]).astype(np.float32)
    centres = np.minimum(starts + (step_frames - 1) / 2, len(maps) - 1)
    return means, centres


def step_motion(frames: np.ndarray, step_frames: int, cell_px: float) -> np.ndarray:
    """Where the picture moves in each step: the mean over the step's frames of |frame - the
    frame before| summed over colour, blurred by a Gaussian of a third of a CAM cell. float32
    (n_steps, H, W), one step at a time (memory: a step's frames)."""
    out = np.zeros((-(-len(frames) // step_frames), *frames.shape[1:3]), np.float32)
    for k, start in enumerate(range(0, len(frames), step_frames)):
        run = frames[max(0, start - 1) : start + step_frames].astype(np.float32)  # (n + 1, H, W, 3)
        if len(run) > 1:
            out[k] = np.abs(np.diff(run, axis=0)).sum(-1).mean(0)
    return ndimage.gaussian_filter(out, (0, cell_px / 3, cell_px / 3))


def _nan_mean(maps: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring NaN; NaN where every value is (a pixel the model never saw),
    without NumPy's empty-slice warning."""
    seen = np.isfinite(maps)
    count = seen.sum(0)
    total = np.where(seen, maps, 0).sum(0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def detect(steps: np.ndarray, options: ObjectsOptions, cell_px: float,
           motion: np.ndarray | None = None) -> list[list[Peak]]:
    """Peaks of every step map (n_steps, H, W) (see :func:`avscene.infer.tracks.find_peaks`),
    each moved onto the strongest motion within a cell of it when ``motion`` (n_steps, H, W) is
    given and ``options.snap_cells`` > 0 (:func:`avscene.infer.tracks.snap_peak`): only to motion
    above ``MOTION_FLOOR`` times the step's median, as sensor noise and texture flicker move
    everywhere a little."""
    radius = options.nms_radius if options.nms_radius is not None else 1.5 * cell_px
    peaks = [find_peaks(heat, options.threshold, radius, box_fraction=0.75, within_blobs=True) for heat in steps]
    if motion is None or options.snap_cells == 0:
        return peaks
    radius = options.snap_cells * cell_px
    return [[snap_peak(p, energy, radius, floor=MOTION_FLOOR * float(np.median(energy))) for p in step]
            for step, energy in zip(peaks, motion)]


def follow(peaks: list[list[Peak]], options: ObjectsOptions, cell_px: float) -> list[Track]:
    """The ``max_objects`` strongest objects: tracks linked from per-step peaks, those that are one
    object merged (:func:`avscene.infer.tracks.merge_tracks`)."""
    distance = options.link_distance if options.link_distance is not None else 2.0 * cell_px
    tracks = link_tracks(peaks, distance, max_gap=options.max_gap_steps, min_detections=options.min_detections)
    return merge_tracks(tracks)[: options.max_objects]


def _confidence(track: Track, best: float) -> float:
    span = track.steps[-1] - track.steps[0] + 1
    mean_value = float(np.mean([p.value for p in track.peaks]))
    return float(np.clip(mean_value / max(best, 1e-9), 0, 1) * len(track.steps) / span)


def activity(strength: np.ndarray, threshold: float, share: np.ndarray | None = None,
             share_threshold: float | None = None) -> np.ndarray:
    """Per frame, whether an object sounds: its map ``strength`` (T,) reaches ``threshold`` or its
    sound's ``share`` (T,) of the mixture reaches ``share_threshold``; pauses shorter than
    ``SPELL_FRAMES`` are filled, then spells shorter than that dropped. bool (T,)."""
    active = np.asarray(strength) >= threshold
    if share is not None and share_threshold is not None:
        active |= np.asarray(share) >= share_threshold
    spell = np.ones(SPELL_FRAMES, bool)
    return ndimage.binary_opening(active | ndimage.binary_closing(active, spell), spell)


def find_tracks(maps: np.ndarray, options: ObjectsOptions, cell_px: float, step_frames: int,
                motion: np.ndarray | None = None) -> list[ObjectTrack]:
    """Objects of a scaled map (T, H, W): tracks with their boxes and activity (no sync, no sound);
    peaks snapped to ``motion`` (n_steps, H, W, :func:`step_motion`) when given."""
    steps, centres = step_maps(maps, step_frames)
    peaks = detect(steps, options, cell_px, motion)
    tracks = follow(peaks, options, cell_px)
    best = max((p.value for t in tracks for p in t.peaks), default=1.0)
    background = np.nan_to_num(np.nanmedian(maps.reshape(len(maps), -1), axis=1))  # (T,)
    out = []
    for k, track in enumerate(tracks, start=1):
        boxes = track_boxes(track, centres, len(maps), maps.shape[1:], max_side=options.box_cells * cell_px)
        strength = box_values(maps, boxes) - background  # above the rest of the picture
        out.append(ObjectTrack(id=k, boxes=boxes, strength=strength,
                               active=activity(strength, options.activity_threshold),
                               detected_steps=track.steps, confidence=_confidence(track, best)))
    return out


# -- each object on its own -----------------------------------------------------------------------


def box_mask(boxes: np.ndarray, frame_hw: tuple[int, int], margin: float = 0.0) -> np.ndarray:
    """bool (T, H, W): pixels inside each frame's box (T, 4), grown by ``margin`` x its size on
    every side."""
    boxes = np.asarray(boxes, np.float64)
    grow = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1) * margin  # (T, 2)
    x0, x1 = boxes[:, 0] - grow[:, 0], boxes[:, 2] + grow[:, 0]
    y0, y1 = boxes[:, 1] - grow[:, 1], boxes[:, 3] + grow[:, 1]
    xs, ys = np.arange(frame_hw[1]) + 0.5, np.arange(frame_hw[0]) + 0.5
    in_x = (xs[None] >= x0[:, None]) & (xs[None] < x1[:, None])  # (T, W)
    in_y = (ys[None] >= y0[:, None]) & (ys[None] < y1[:, None])  # (T, H)
    return in_y[:, :, None] & in_x[:, None, :]


def grey_where(frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of ``frames`` (T, H, W, 3) painted grey where ``mask`` (T, H, W) is True."""
    out = np.array(frames, copy=True)
    out[mask] = MASK_GREY
    return out


def view_side(model_crop: int, frame_hw: tuple[int, int], options: ObjectsOptions) -> int:
    """Side (px of the picture) of the square an object is seen in on its own: the part of the
    picture that the maps' scale (``options.size`` for the whole picture) puts on ``model_crop``
    pixels, so the object keeps the size the maps saw it at; the whole picture without ``size``."""
    side = min(frame_hw)
    return side if options.size is None else max(16, min(side, round(model_crop * max(frame_hw) / options.size)))


def object_view(frames: np.ndarray, boxes: np.ndarray, side: int, out_side: int) -> np.ndarray:
    """Square windows of ``side`` px centred on each frame's box (T, 4), kept inside the picture,
    resized to ``out_side``: uint8 (T, out_side, out_side, 3), the object at the maps' scale."""
    h, w = frames.shape[1:3]
    cx = np.clip((boxes[:, 0] + boxes[:, 2]) / 2 - side / 2, 0, w - side).round().astype(int)
    cy = np.clip((boxes[:, 1] + boxes[:, 3]) / 2 - side / 2, 0, h - side).round().astype(int)
    view = np.stack([frames[t, y : y + side, x : x + side] for t, (x, y) in enumerate(zip(cx, cy))])
    return fit_frames(view, out_side, "squash")


def scan_options(model, options: ObjectsOptions) -> SyncOptions:
    """The offset scan of an object: every whole-frame offset within ``sync_max_offset_s``, the
    audio tracks of a window in one batch (a few dozen tracks of one window)."""
    n_offsets = 2 * round(options.sync_max_offset_s * model.config.fps) + 1
    return SyncOptions(max_offset_s=options.sync_max_offset_s, chunk=max(32, n_offsets))


def object_sync(model, frames: np.ndarray, audio: np.ndarray, boxes: np.ndarray,
                options: ObjectsOptions) -> SyncResult:
    """The offset scan of one object: frames greyed outside its box (grown by ``sync_margin``),
    seen in its own window (:func:`object_view`) at the shift net's crop."""
    cfg = model.config
    alone = grey_where(frames, ~box_mask(boxes, frames.shape[1:3], options.sync_margin))
    view = object_view(alone, boxes, view_side(cfg.crop_size, frames.shape[1:3], options), cfg.crop_size)
    return sync_clip(model, view, audio, scan_options(model, options))


def object_sound(separator, frames: np.ndarray, audio: np.ndarray, tracks: list[ObjectTrack], k: int,
                 options: ObjectsOptions) -> np.ndarray:
    """The sound of ``tracks[k]``: the on-screen output of the on/off ``separator`` on its own
    window (:func:`object_view`) with every other track's box greyed. float32 (N,) at the
    separator's rate."""
    crop = separator.config.shift.crop_size
    hidden = np.zeros((len(frames), *frames.shape[1:3]), bool)
    for j, other in enumerate(tracks):
        if j != k:
            hidden |= box_mask(other.boxes, frames.shape[1:3])
    view = object_view(grey_where(frames, hidden), tracks[k].boxes, view_side(crop, frames.shape[1:3], options), crop)
    return separate_arrays(separator, view, audio, SeparateOptions()).on


def offset_gain(scan: SyncResult) -> float:
    """How much better (mean logit over windows) a scan's best offset scores than offset 0: the
    evidence that the object is out of sync (0 when the best is offset 0)."""
    zero = scan.scores[scan.offsets_frames == 0]
    return float(scan.scores.max() - zero[0]) if zero.size else float("inf")


def out_of_sync(offset_frames: int, gain: float, min_gain: float) -> bool:
    """The rule of the sync verdict: a scan's best offset more than one frame from 0 that beats
    offset 0 by at least ``min_gain`` logits (:func:`offset_gain`)."""
    return abs(offset_frames) > 1 and gain >= min_gain


def sync_verdict(scan: SyncResult, options: ObjectsOptions) -> bool:
    """The verdict on an object's scan: in sync unless :func:`out_of_sync` with
    ``options.min_offset_gain``."""
    return not out_of_sync(scan.offset_frames, offset_gain(scan), options.min_offset_gain)


def sound_share(sound: np.ndarray, audio: np.ndarray, n_frames: int, fps, sample_rate: int) -> np.ndarray:
    """Per frame, the fraction of the mixture's energy (``audio`` (N, C), channel mean) in an
    object's ``sound`` (N,), both averaged over 5 frames (a sixth of a second) so that a syllable's
    gap is not a pause. float32 (n_frames,)."""
    mixture = np.asarray(audio, np.float32).mean(1)
    edges = np.round(np.arange(n_frames + 1) * sample_rate / float(fps)).astype(int)

    def energy(x: np.ndarray) -> np.ndarray:  # (n_frames,) mean square per frame
        x = np.pad(x, (0, max(0, edges[-1] - len(x))))
        sums = np.add.reduceat(x[: edges[-1]].astype(np.float64) ** 2, edges[:-1])
        return ndimage.uniform_filter1d(sums / np.maximum(np.diff(edges), 1), 5)

    return (energy(sound) / np.maximum(energy(mixture), 1e-12)).astype(np.float32)


def _with_sound(track: ObjectTrack, sound: np.ndarray, audio: np.ndarray, fps, sample_rate: int,
                options: ObjectsOptions) -> ObjectTrack:
    """``track`` with its own sound, that sound's share of the mixture, and its activity widened
    to where that share reaches ``options.sound_share``."""
    share = sound_share(sound, audio, len(track.active), fps, sample_rate)
    active = activity(track.strength, options.activity_threshold, share, options.sound_share)
    return dataclasses.replace(track, sound=sound, share=share, active=active)


def _check_rates(model, separator) -> None:
    shift, sep = model.config, separator.config.shift
    if (shift.fps, shift.sample_rate, shift.audio_channels) != (sep.fps, sep.sample_rate, sep.audio_channels):
        raise ValueError(f"the separator works at {sep.fps} fps, {sep.sample_rate} Hz, {sep.audio_channels} "
                         f"channel(s) and the shift network at {shift.fps} fps, {shift.sample_rate} Hz, "
                         f"{shift.audio_channels}: objects needs both at the same rates")


def find_objects(model, frames: np.ndarray, audio: np.ndarray, options: ObjectsOptions = ObjectsOptions(), *,
                 separator=None, sync: bool = True, path: str | os.PathLike | None = None) -> ObjectsResult:
    """Every object of in-memory media at the shift net ``model``'s rates: ``frames`` uint8
    (T, H, W, 3) at ``model.config.fps``, ``audio`` float32 (N, C) at its sample rate, aligned at
    sample 0. With ``separator`` (an on/off separation net at the same rates) each track gets its
    sound; with ``sync`` its own offset scan."""
    frames, audio = np.asarray(frames), np.asarray(audio, np.float32)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if len(frames) < model.config.n_frames:
        raise ValueError(f"{len(frames)} frames are fewer than one model window ({model.config.n_frames})")
    if separator is not None:
        _check_rates(model, separator)
    maps, scale, cell = object_maps(model, frames, audio, options)
    step = cam_stride(model.config)[0]
    motion = step_motion(frames, step, cell) if options.snap_cells > 0 else None
    tracks = find_tracks(maps, options, cell, step, motion)
    done = []
    for k, track in enumerate(tracks):
        scan = object_sync(model, frames, audio, track.boxes, options) if sync else None
        verdict = None if scan is None else sync_verdict(scan, options)
        track = dataclasses.replace(track, sync=scan, in_sync=verdict)
        if separator is not None:
            sound = object_sound(separator, frames, audio, tracks, k, options)
            track = _with_sound(track, sound, audio, model.config.fps, model.config.sample_rate, options)
        done.append(track)
    return ObjectsResult(path=None if path is None else os.fspath(path), fps=model.config.fps,
                         sample_rate=model.config.sample_rate, frame_hw=tuple(frames.shape[1:3]), tracks=tuple(done),
                         maps=maps, map_scale=scale, step_frames=step, options=options)


def working_hw(frame_hw: tuple[int, int], max_side: int) -> tuple[int, int]:
    """The picture size objects are found at: the video's own, shrunk (aspect kept, even sides)
    so that its longer side is at most ``max_side``."""
    h, w = frame_hw
    scale = min(1.0, max_side / max(h, w))
    return max(16, 2 * round(h * scale / 2)), max(16, 2 * round(w * scale / 2))


def objects_file(model, path: str | os.PathLike, options: ObjectsOptions = ObjectsOptions(), *, separator=None,
                 sync: bool = True, max_side: int = 384) -> tuple[ObjectsResult, np.ndarray, np.ndarray, float]:
    """:func:`find_objects` on a video file read whole at the shift net's rates and at
    :func:`working_hw` (memory: T x H x W x 3 bytes of frames). Returns the result, the frames and
    audio it ran on, and the factor from its pixels to the video's. Raises MediaError naming the
    file for an unreadable one, ClipRangeError for one shorter than a model window."""
    cfg = model.config
    info = probe(path, need_video=True, need_audio=True)
    if not info.width or not info.height or not info.fps:
        raise MediaError(path, "video stream has no readable frame rate or size")
    if info.duration_s < float(cfg.n_frames / cfg.fps):
        raise ClipRangeError(path, f"too short for the model: {info.duration_s:.2f} s, needs "
                                   f"{float(cfg.n_frames / cfg.fps):.2f} s")
    hw = working_hw((info.height, info.width), max_side)
    clip = read_clip(path, 0.0, None, fps=cfg.fps, size=hw, fit="squash", sample_rate=cfg.sample_rate,
                     channels=cfg.audio_channels)
    result = find_objects(model, clip.frames, clip.audio, options, separator=separator, sync=sync, path=path)
    return result, clip.frames, clip.audio, info.height / hw[0]
