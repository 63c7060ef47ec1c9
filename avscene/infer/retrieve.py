"""Cross-modal retrieval with a two-tower correspondence network (``avscene retrieve``).

By sound: the query's sound against the gallery videos' pictures (which videos look like they
make this sound?); by picture: the query's picture against the gallery's sounds. A file's
embedding of each kind is the mean of its windows' L2-normalised embeddings (up to
``max_windows`` windows of the model's length spread over the file by :func:`plan_windows`),
normalised again; a score is the cosine of two of them, in [-1, 1].

A gallery file that cannot be read, or lacks the stream the query needs, is listed with its
reason and skipped; the rest are ranked.
"""

from __future__ import annotations

import dataclasses
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from avscene.constants import frames_in
from avscene.data.shift_pairs import frames_to_video
from avscene.files import write_json
from avscene.media import ClipRangeError, MediaError, probe, read_clip
from avscene.models.two_tower import TwoTowerNet
from avscene.windows import model_device, plan_windows

BY = ("sound", "picture")
#: The files :func:`write_retrieval_outputs` makes for a query: ``<stem><suffix>``.
RETRIEVE_OUTPUTS = {"json": "_retrieve.json", "sheet": "_retrieve.png"}


@dataclasses.dataclass(frozen=True, eq=False)
class MediaEmbedding:
    """A file's embeddings (D,) each, None for a stream it lacks, and a picture to show: the
    middle frame of its middle window at the model's crop (uint8 (H, W, 3)), or None."""

    path: str
    picture: np.ndarray | None
    sound: np.ndarray | None
    frame: np.ndarray | None
    windows: int


@dataclasses.dataclass(frozen=True)
class Match:
    path: str
    score: float


@dataclasses.dataclass(frozen=True, eq=False)
class RetrievalResult:
    """The gallery ranked for one query, best first, and the gallery files skipped with why."""

    query: MediaEmbedding
    by: str
    matches: tuple[Match, ...]
    skipped: tuple[tuple[str, str], ...]
    gallery_frames: dict

    def top(self, k: int) -> tuple[Match, ...]:
        return self.matches[:k]

    def to_dict(self, k: int) -> dict:
        other = "picture" if self.by == "sound" else "sound"
        return {"query": self.query.path, "by": self.by,
                "score": f"cosine of the query's {self.by} embedding with each gallery video's {other} embedding",
                "k": k, "gallery_size": len(self.matches) + len(self.skipped),
                "matches": [{"rank": i + 1, "path": m.path, "score": round(m.score, 6)}
                            for i, m in enumerate(self.top(k))],
                "skipped": [{"path": p, "error": e} for p, e in self.skipped]}


def _window_starts(model: TwoTowerNet, path, info, max_windows: int) -> list[int]:
    """Model-frame starts of up to ``max_windows`` windows spread over the file."""
    cfg = model.config
    n_model = frames_in(Fraction(info.duration_s).limit_denominator(10**6), cfg.fps)
    if n_model < cfg.n_frames:
        raise ClipRangeError(path, f"too short for the model: {info.duration_s:.2f} s, needs "
                                   f"{float(cfg.n_frames / cfg.fps):.2f} s")
    return plan_windows(n_model, cfg.n_frames, cfg.n_frames, max_windows=max_windows, align="cover")


@torch.no_grad()
def embed_media(model: TwoTowerNet, path: str | os.PathLike, *, max_windows: int = 4) -> MediaEmbedding:
    """The picture and sound embeddings of a video or audio file (see the module docstring).
    Raises MediaError naming the file when it is unreadable, has neither stream, or is shorter
    than one window."""
    cfg = model.config
    info = probe(path)
    if not (info.has_video or info.has_audio):
        raise MediaError(path, "has neither video nor audio")
    starts = _window_starts(model, path, info, max_windows)
    frames, audio = [], []
    for start in starts:
        clip = read_clip(path, float(start / cfg.fps) + 1e-6, float(cfg.n_frames / cfg.fps) + 1e-6,
                         fps=cfg.fps if info.has_video else None, size=cfg.crop_size, fit="crop",
                         sample_rate=cfg.sample_rate, channels=cfg.audio_channels, video=info.has_video,
                         audio=info.has_audio)
        if info.has_video:
            frames.append(clip.frames[: cfg.n_frames])
        if info.has_audio:
            audio.append(np.pad(clip.audio[: cfg.n_samples], ((0, max(0, cfg.n_samples - len(clip.audio))), (0, 0))))
    device = model_device(model)
    model.eval()
    picture = sound = frame = None
    if frames:
        stacked = np.stack(frames)  # (W, T, crop, crop, 3)
        v, _ = model.embed_video(frames_to_video(torch.from_numpy(stacked).to(device)))  # (W, D)
        picture = F.normalize(v.mean(0), dim=0).cpu().numpy()
        frame = stacked[len(stacked) // 2, cfg.n_frames // 2]
    if audio:
        a = model.embed_audio(torch.from_numpy(np.stack(audio)).permute(0, 2, 1).to(device))  # (W, D)
        sound = F.normalize(a.mean(0), dim=0).cpu().numpy()
    return MediaEmbedding(os.fspath(path), picture, sound, frame, len(starts))


def retrieve(model: TwoTowerNet, query: str | os.PathLike, gallery: list[Path], *, by: str = "sound",
             max_windows: int = 4, progress: bool = False) -> RetrievalResult:
    """Rank the ``gallery`` videos for ``query`` by sound or by picture (see the module docstring)."""
    if by not in BY:
        raise ValueError(f"by must be one of {BY}, got {by!r}")
    wanted, offered = ("sound", "picture") if by == "sound" else ("picture", "sound")
    q = embed_media(model, query, max_windows=max_windows)
    if getattr(q, wanted) is None:
        raise MediaError(query, f"has no {'audio' if wanted == 'sound' else 'video'} stream to retrieve by {by}")
    matches, skipped, frames = [], [], {}
    for path in tqdm(gallery, desc="gallery", unit="file", disable=not progress):
        try:
            g = embed_media(model, path, max_windows=max_windows)
            if getattr(g, offered) is None:
                raise MediaError(path, f"has no {'video' if offered == 'picture' else 'audio'} stream")
        except (MediaError, ValueError) as err:
            skipped.append((os.fspath(path), str(err)))
            continue
        matches.append(Match(os.fspath(path), float(getattr(q, wanted) @ getattr(g, offered))))
        frames[os.fspath(path)] = g.frame
    matches.sort(key=lambda m: -m.score)
    return RetrievalResult(q, by, tuple(matches), tuple(skipped), frames)


def _query_image(result: RetrievalResult, model: TwoTowerNet) -> np.ndarray:
    """The query's picture, or (audio only) its log-mel spectrogram as a grey image."""
    if result.query.frame is not None:
        return result.query.frame
    clip = read_clip(result.query.path, 0.0, float(model.config.n_frames / model.config.fps) + 1e-6,
                     sample_rate=model.config.sample_rate, channels=model.config.audio_channels, video=False)
    with torch.no_grad():
        spec = model.log_mel(torch.from_numpy(clip.audio.T[None].copy()))[0, 0].numpy()  # (n_mels, frames)
    spec = (spec - spec.min()) / max(1e-6, float(spec.max() - spec.min()))
    return np.repeat((255 * spec[::-1])[..., None], 3, axis=2).astype(np.uint8)


def write_retrieval_outputs(result: RetrievalResult, model: TwoTowerNet, out_dir: str | os.PathLike, *, name: str,
                            k: int = 5, network: dict | None = None) -> dict[str, Path]:
    """Write ``<name>_retrieve.json`` (the top ``k`` with scores, the skipped files, ``network``)
    and ``<name>_retrieve.png`` (the query beside its top ``k``), each atomically."""
    from avscene.report.plots import plot_cam_sheet

    out = Path(out_dir)
    paths = {kind: out / f"{name}{suffix}" for kind, suffix in RETRIEVE_OUTPUTS.items()}
    write_json(paths["json"], {**result.to_dict(k), **(network or {})})
    images = [_query_image(result, model)]
    titles = [f"query ({result.by}): {Path(result.query.path).name}"]
    for rank, match in enumerate(result.top(k), 1):
        images.append(result.gallery_frames[match.path])
        titles.append(f"{rank}. {Path(match.path).name} ({match.score:.3f})")
    side = images[1].shape[:2] if len(images) > 1 else images[0].shape[:2]
    images[0] = _resized(images[0], side)
    plot_cam_sheet(images, titles, paths["sheet"], title=f"nearest videos by {result.by}", n_cols=min(6, len(images)))
    return paths


def _resized(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """uint8 (h, w, 3) -> (H, W, 3), bilinear (the sheet's panels share one size)."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()  # (1, 3, h, w)
    x = F.interpolate(x, size=tuple(hw), mode="bilinear", align_corners=False)
    return x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
