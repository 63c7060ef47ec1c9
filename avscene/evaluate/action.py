"""Action recognition evaluation: video-level top-1 / top-5, per-class accuracy and the confusion
matrix of a classifier on a labelled set, clips averaged per video as at inference."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
from tqdm import tqdm

from avscene.data.action_clips import usable_frames
from avscene.data.labelled import LabelledIndex
from avscene.infer.classify import clip_probabilities, clip_starts, eval_sampling, file_clips
from avscene.media import MediaError


@dataclasses.dataclass(frozen=True)
class EvaluationResult:
    """Video-level accuracy of a classifier on a labelled set.

    ``confusion[i, j]``: videos of class i predicted as j; ``per_class_accuracy`` is NaN for
    classes without videos; ``top5`` is top-min(5, K).
    """

    class_names: tuple[str, ...]
    top1: float
    top5: float
    per_class_accuracy: np.ndarray  # (K,)
    confusion: np.ndarray  # (K, K) int64
    n_clips: int
    predictions: tuple[dict, ...]  # per video: path, label, predicted, probability, top5
    failed: tuple[tuple[str, str], ...]  # (path, reason): unreadable at evaluation, not counted

    @property
    def n_videos(self) -> int:
        return int(self.confusion.sum())

    @property
    def mean_class_accuracy(self) -> float:
        if not np.isfinite(self.per_class_accuracy).any():
            return float("nan")
        return float(np.nanmean(self.per_class_accuracy))

    def describe(self) -> str:
        text = (f"top-1 {100 * self.top1:.1f}%, top-5 {100 * self.top5:.1f}%, mean class accuracy "
                f"{100 * self.mean_class_accuracy:.1f}% over {self.n_videos} videos ({self.n_clips} clips each)")
        return text + (f"; {len(self.failed)} unreadable video(s) skipped" if self.failed else "")

    def to_dict(self) -> dict:
        return {
            "top1": round(self.top1, 6), "top5": round(self.top5, 6),
            "mean_class_accuracy": round(self.mean_class_accuracy, 6),
            "n_videos": self.n_videos, "n_clips": self.n_clips, "class_names": list(self.class_names),
            "per_class_accuracy": {n: (None if np.isnan(a) else round(float(a), 6))
                                   for n, a in zip(self.class_names, self.per_class_accuracy)},
            "confusion": self.confusion.tolist(),
            "predictions": list(self.predictions),
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
        }


def _label_map(model_names: Sequence[str], data_names: Sequence[str]) -> np.ndarray:
    """Model label of each dataset label, matched by class name."""
    if tuple(model_names) == tuple(data_names):
        return np.arange(len(data_names))
    lookup = {n: i for i, n in enumerate(model_names)}
    unknown = [n for n in data_names if n not in lookup]
    if unknown:
        raise ValueError(f"the dataset has classes the model does not know: {unknown[:10]} "
                         f"(model classes: {list(model_names)[:10]}...)")
    return np.array([lookup[n] for n in data_names])


def evaluate(model, dataset: LabelledIndex, *, n_clips: int = 10, batch_size: int = 8,
             progress: bool = False) -> EvaluationResult:
    """Video-level top-1/top-5, per-class accuracy and confusion matrix of ``model`` on
    ``dataset`` (classes matched to the model's by name), averaging ``n_clips`` clips per video.
    A video that fails to decode is reported in ``failed`` and left out."""
    model.eval()
    names = model.config.names()
    k = len(names)
    to_model = _label_map(names, dataset.classes)
    s = eval_sampling(model)
    confusion = np.zeros((k, k), np.int64)
    top5_hits, predictions, failed = 0, [], []
    for video in tqdm(dataset.videos, desc="evaluating", unit="video", disable=not progress):
        starts = clip_starts(usable_frames(video, s.fps), s.n_frames, n_clips)
        try:
            probs = clip_probabilities(model, file_clips(video, s, starts), s.crop_size, batch_size).mean(axis=0)
        except MediaError as err:
            failed.append((video.path, err.reason))
            continue
        truth = int(to_model[video.label])
        order = np.argsort(-probs, kind="stable")
        confusion[truth, order[0]] += 1
        top5_hits += int(truth in order[:5])
        predictions.append({"path": video.path, "label": truth, "name": names[truth], "predicted": int(order[0]),
                            "predicted_name": names[order[0]], "probability": round(float(probs[order[0]]), 6),
                            "top5": [int(i) for i in order[:5]]})
    n = int(confusion.sum())
    per_class = np.full(k, np.nan)
    rows = confusion.sum(axis=1)
    per_class[rows > 0] = np.diag(confusion)[rows > 0] / rows[rows > 0]
    return EvaluationResult(class_names=tuple(names), top1=float(np.trace(confusion) / n) if n else float("nan"),
                            top5=top5_hits / n if n else float("nan"), per_class_accuracy=per_class,
                            confusion=confusion, n_clips=n_clips, predictions=tuple(predictions),
                            failed=tuple(failed))
