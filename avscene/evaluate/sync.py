"""Sync evaluation: offset recovery on videos given a known offset, and the calibration of the
scan's confidence on such trials (the temperature :func:`avscene.infer.sync.read_calibration` reads)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from avscene.infer.sync import SyncOptions, sync_file
from avscene.media.writer import write_shifted_audio
from avscene.models import ShiftNet

#: Offsets (s) the recovery trials cycle through: small and large, both signs (audio lags > 0).
TRIAL_OFFSETS_S = (0.0, 0.1, -0.1, 0.2, -0.2, 0.5, -0.5, 1.0, -1.0, 1.5, -1.5, 2.0, -2.0)


def offset_trial(model: ShiftNet, video: str | os.PathLike, scratch_dir: str | os.PathLike, truth_frames: int,
                 options: SyncOptions = SyncOptions()) -> dict:
    """Copy ``video`` with its audio moved by ``truth_frames`` (positive: made to lag; the
    ``--fix`` writer run backwards) into ``scratch_dir`` (reused if there), scan the copy through
    the media layer as ``avscene sync`` does, and return the truth, the found offset and the scan."""
    fps = model.config.fps
    shifted = Path(scratch_dir) / f"{Path(video).stem}_{truth_frames:+d}f.mp4"
    if not shifted.exists():
        shifted.parent.mkdir(parents=True, exist_ok=True)
        write_shifted_audio(video, shifted, -float(truth_frames / fps))
    result = sync_file(model, shifted, options)
    return {"clip": shifted.name, "truth_frames": truth_frames, "found_frames": result.offset_frames,
            "error_frames": result.offset_frames - truth_frames, "scores": result.scores,
            "offsets": result.offsets_frames, "windows": len(result.windows), "result": result}


def fit_temperature(scans: list[np.ndarray], truth_index: list[int]) -> float:
    """The softmax temperature that maximises the likelihood of the true offsets (index into
    each scan) over held-out scans: a grid search on a log scale, then a local refinement."""
    def nll(t: float) -> float:
        total = 0.0
        for scores, k in zip(scans, truth_index):
            z = np.asarray(scores, np.float64) / t
            total -= z[k] - (z.max() + math.log(np.exp(z - z.max()).sum()))
        return total
    grid = np.exp(np.linspace(math.log(0.02), math.log(50.0), 61))
    best = float(grid[int(np.argmin([nll(t) for t in grid]))])
    fine = best * np.exp(np.linspace(-0.15, 0.15, 31))
    return float(fine[int(np.argmin([nll(t) for t in fine]))])
