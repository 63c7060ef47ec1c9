"""A folder of videos as a training source: found recursively, probed once, unusable files
skipped with their reason (never fatal)."""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from avscene.cards import videos_data
from avscene.media import MediaError, MediaInfo, probe

#: Suffixes of the files a folder's videos are found by (FFmpeg reads them all; the media layer
#: decides, by content, whether one is usable).
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".webm", ".mov", ".m4v", ".ts", ".m2ts", ".mts", ".flv", ".mpg", ".mpeg",
                  ".3gp", ".ogv", ".wmv")


def find_videos(root: str | os.PathLike, suffixes: tuple[str, ...] = VIDEO_SUFFIXES) -> list[Path]:
    """Every file under ``root`` (recursively) with a video suffix, sorted; ``root`` may be a file."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise MediaError(root, "no such file or folder")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in suffixes and p.is_file())


@dataclasses.dataclass(frozen=True)
class VideoIndex:
    """Usable videos of a folder with their :class:`MediaInfo`, and the files skipped and why."""

    videos: tuple[MediaInfo, ...]
    skipped: tuple[tuple[str, str], ...]  # (path, reason)

    def __len__(self) -> int:
        return len(self.videos)

    def training_data(self) -> dict:
        """What a network trained on these videos learnt from (its model card's)."""
        return training_data(self.videos)

    def report(self, max_files: int = 20) -> str:
        """A short human summary: counts of usable and skipped files by reason, then the first
        ``max_files`` skipped files, each with its reason."""
        lines = [f"{len(self.videos)} usable videos, {len(self.skipped)} skipped"]
        for reason, n in Counter(_reason_kind(r) for _, r in self.skipped).most_common():
            lines.append(f"  {n:5d} x {reason}")
        lines += [f"  skipped {path}: {reason}" for path, reason in self.skipped[:max_files]]
        if len(self.skipped) > max_files:
            lines.append(f"  ... and {len(self.skipped) - max_files} more")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"usable": [v.path for v in self.videos],
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped]}


def training_data(videos: Sequence[MediaInfo]) -> dict:
    """What a network trained on ``videos`` learnt from, for its model card
    (:func:`avscene.cards.videos_data`): count, hours, and how many are synthetic scenes."""
    from avscene.synth.dataset import is_synthetic_video

    paths = [v.path for v in videos]
    source = os.path.commonpath(paths) if paths else ""
    return videos_data(source, [v.duration_s for v in videos], [is_synthetic_video(v) for v in videos])


def _reason_kind(reason: str) -> str:
    return reason.split(" (")[0]


def index_videos(root: str | os.PathLike, *, min_duration_s: float, need_audio: bool = True,
                 progress: bool = False) -> VideoIndex:
    """Probe every video under ``root``; keep those with video (and audio if ``need_audio``) that
    last at least ``min_duration_s``."""
    videos, skipped = [], []
    for path in tqdm(find_videos(root), desc="probing videos", unit="file", disable=not progress):
        info, why = screen_video(path, min_duration_s=min_duration_s, need_audio=need_audio)
        if info is None:
            skipped.append((str(path), why))
        else:
            videos.append(info)
    return VideoIndex(tuple(videos), tuple(skipped))


def screen_video(path: Path, *, min_duration_s: float = 0.0, need_audio: bool = True) -> tuple[MediaInfo | None, str]:
    """Probe ``path`` and say whether it is usable: ``(info, "")``, or ``(None, why not)`` when it
    is unreadable, has no video (or no audio, with ``need_audio``) or is shorter than
    ``min_duration_s``."""
    try:
        info = probe(path)
    except MediaError as err:
        return None, err.reason
    if not info.has_video:
        return None, "no video stream"
    if need_audio and not info.has_audio:
        return None, "no audio stream"
    if info.duration_s < min_duration_s:
        return None, f"too short ({info.duration_s:.2f} s < {min_duration_s:.2f} s)"
    return info, ""
