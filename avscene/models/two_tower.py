"""Two-tower audio-visual correspondence networks: L3-Net, AVE-Net and Objects that Sound.

"Does this sound belong to this picture?" is learnt by two towers that never meet before their
embeddings (Arandjelovic & Zisserman, "Look, Listen and Learn", ICCV 2017; "Objects that
Sound", ECCV 2018), unlike the paper's early-fused shift network::

    frames (B, 3, T, H, W) --> visual tower: 2D convs over the window's middle frame
                               (or 3D convs over the whole window)
                           --> 1x1 projection --> per-location embeddings (B, D, t, h, w)  --+
                           --> pooled (mean or max), L2-normalised     --> v (B, D)          |
    audio (B, C, N) --> mono --> log-mel (B, 1, n_mels, frames) --> audio tower              |
                           --> pooled, projected, L2-normalised        --> a (B, D)          |
    similarity map = cos(a, each location's embedding) (B, t, h, w) <-------------------------+

The projection is applied before pooling, so each location's embedding lives in the same space
as ``v``: the map is the same comparison with the pooling skipped. Heads on top of ``(v, a)``
(see :meth:`TwoTowerNet.score`):

* ``l3``: L3-Net's fused head, an MLP on ``concat(v, a)`` giving one logit;
* ``avenet``: AVE-Net's distance head, ``w * |v - a|^2 + b`` (one learnt scale and bias);
* ``infonce``: the scaled cosine ``exp(s) * <v, a>`` (learnt temperature, CLIP's init 1/0.07),
  compared across the batch by the InfoNCE loss.

With ``mil=True`` (Objects that Sound's AVOL-Net) the distance and contrastive heads score the
*best location* instead of the pooled picture: ``max`` over the similarity map (multiple
instance learning), so training itself teaches the map to find the sounding object.

Departures from the papers, for every preset: the audio is the waveform at the shift network's
rates (21 kHz, mixed to mono) turned into a log-mel spectrogram here (L3 and AVE-Net used a
257-bin log spectrogram of 48 kHz audio); convs are the project's conv + BN + ReLU units; the
embedding is L2-normalised for every head (L3's fused head saw unnormalised 512-d features).
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avscene.audio.stft import SpectrogramConfig, stft
from avscene.constants import PAPER_CROP_SIZE, PAPER_FPS, PAPER_SAMPLE_RATE, as_fps, frame_to_sample
from avscene.models.blocks import BNSettings, ConvUnit, init_weights

OBJECTIVES = ("l3", "avenet", "infonce")
VISUAL_KINDS = ("2d", "3d")
POOLS = ("mean", "max")
#: Frames between the slices of a map in time (the 3D tower's stride; the 2D tower's map takes
#: one frame out of this many), as the shift network's CAM.
MAP_STRIDE_T = 8


@dataclasses.dataclass(frozen=True)
class TwoTowerConfig:
    """Everything needed to rebuild a :class:`TwoTowerNet` (stored in checkpoints via ``to_dict``)."""

    #: Frames of one example's window (the audio covers the same span) and its square crop (px).
    n_frames: int = 30
    crop_size: int = PAPER_CROP_SIZE
    fps: Fraction = PAPER_FPS
    sample_rate: int = PAPER_SAMPLE_RATE
    #: Input audio channels (mixed to mono before the spectrogram).
    audio_channels: int = 2
    #: '2d': the window's middle frame (AVE-Net); '3d': every frame of the window.
    visual: str = "2d"
    #: Widths of the visual blocks; each halves the picture (and, in 3D, time for the first 3).
    visual_widths: tuple[int, ...] = (64, 128, 256, 512)
    #: Convs per block (AVE-Net and L3: 2).
    convs_per_block: int = 2
    audio_widths: tuple[int, ...] = (64, 128, 256, 512)
    embed_dim: int = 128
    n_mels: int = 64
    #: STFT window and hop (ms) of the log-mel spectrogram.
    win_ms: float = 25.0
    hop_ms: float = 10.0
    #: How the picture's per-location embeddings become one: 'mean' or 'max' (L3's max-pool).
    pool: str = "max"
    objective: str = "infonce"
    #: Score the best location (max over the similarity map) instead of the pooled picture.
    mil: bool = False
    #: Hidden width of L3's fused head.
    fusion_width: int = 128
    bn_momentum: float = 0.01
    profile: str = "avscene"

    def __post_init__(self) -> None:
        object.__setattr__(self, "fps", as_fps(self.fps))
        object.__setattr__(self, "visual_widths", tuple(int(w) for w in self.visual_widths))
        object.__setattr__(self, "audio_widths", tuple(int(w) for w in self.audio_widths))
        for name, value, allowed in (("objective", self.objective, OBJECTIVES), ("visual", self.visual, VISUAL_KINDS),
                                     ("pool", self.pool, POOLS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if self.mil and self.objective == "l3":
            raise ValueError("mil scores the similarity map, which L3's fused head does not use: "
                             "choose objective 'avenet' or 'infonce'")
        if not self.visual_widths or not self.audio_widths or self.n_frames < 1:
            raise ValueError("need visual_widths, audio_widths and n_frames >= 1")
        if self.visual == "3d" and len(self.visual_widths) < 3:
            raise ValueError("the 3D tower halves time in its first 3 blocks (one map slice per 8 frames): "
                             f"give at least 3 visual_widths, got {len(self.visual_widths)}")

    @property
    def n_samples(self) -> int:
        """Audio samples per window, ``frame_to_sample(n_frames)``."""
        return frame_to_sample(self.n_frames, self.fps, self.sample_rate)

    @property
    def map_stride(self) -> tuple[int, int, int]:
        """(t, h, w) input steps between the similarity map's cells; cell ``(j, i, k)`` is centred
        on frame ``8 j`` and pixel ``(s i, s k)`` of the crop (as the shift network's CAM)."""
        spatial = 2 ** len(self.visual_widths)
        return (MAP_STRIDE_T, spatial, spatial)

    def spectrogram(self) -> SpectrogramConfig:
        """The STFT of the log-mel front end (``n_fft`` the next power of two above the window)."""
        win = round(self.win_ms * self.sample_rate / 1000)
        n_fft = 2 ** math.ceil(math.log2(win + 1))
        return SpectrogramConfig(sample_rate=self.sample_rate, win_length=win,
                                 hop_length=round(self.hop_ms * self.sample_rate / 1000), n_fft=n_fft,
                                 n_bins=n_fft // 2 + 1)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["fps"] = f"{self.fps.numerator}/{self.fps.denominator}"
        d["visual_widths"], d["audio_widths"] = list(self.visual_widths), list(self.audio_widths)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TwoTowerConfig":
        return cls(**d)


PRESETS: dict[str, TwoTowerConfig] = {
    # As in the papers: AVE-Net / Objects-that-Sound towers (4 blocks of 2 3x3 convs, 64-512
    # wide) on a 224-px frame (14 x 14 map, 16-px cells) and 1 s of audio (30 frames), 128-d
    # embeddings, 64 mel bands; 9.5 M parameters (18.9 M with the 3D tower). Departures: see the
    # module docstring.
    "paper": TwoTowerConfig(),
    # Trains on a CPU beside the shift net's ``small`` presets: the same 1.07 s windows (32
    # frames) and 64-px crops, 3 blocks of one conv (8 x 8 map, 8-px cells as ``small-cam``),
    # 32-d embeddings, 40 mel bands; 0.20 M parameters (0.39 M in 3D).
    "small": TwoTowerConfig(n_frames=32, crop_size=64, visual_widths=(32, 64, 128), convs_per_block=1,
                            audio_widths=(16, 32, 64, 128), embed_dim=32, n_mels=40, bn_momentum=0.1),
    # For unit tests: a forward and backward pass in milliseconds.
    "tiny": TwoTowerConfig(n_frames=8, crop_size=32, visual_widths=(8, 16), convs_per_block=1,
                           audio_widths=(8, 16), embed_dim=8, n_mels=16, bn_momentum=0.1),
}


def get_preset(name: str, **overrides: Any) -> TwoTowerConfig:
    """The named preset's config with ``overrides`` (config field names) applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown two-tower preset {name!r}; choose from {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


def mel_filterbank(n_bins: int, n_fft: int, sample_rate: int, n_mels: int) -> np.ndarray:
    """Triangular mel filters (n_bins, n_mels) on the HTK mel scale, 0 Hz to Nyquist, each peak
    1: ``tf.signal.linear_to_mel_weight_matrix(n_mels, n_bins, sample_rate, 0, sample_rate / 2)``
    to 3e-6 (checked for 20 bands of a 1024-point FFT at 21 kHz). Written here because the
    libraries that ship one (torchaudio, librosa) are not dependencies and TensorFlow is too big
    to be one."""
    def mel(hz):
        return 1127.0 * np.log1p(np.asarray(hz, np.float64) / 700.0)

    bin_mel = mel(np.arange(n_bins) * sample_rate / n_fft)  # (n_bins,)
    edges = np.linspace(mel(0.0), mel(sample_rate / 2), n_mels + 2)  # (n_mels + 2,)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel[:, None] - lower) / (centre - lower)
    falling = (upper - bin_mel[:, None]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


class LogMel(nn.Module):
    """Waveform (B, C, N) in [-1, 1] -> log-mel spectrogram (B, 1, n_mels, frames): channels
    averaged to mono, magnitude STFT, mel filters, ``log(mel + 1e-5)``."""

    def __init__(self, cfg: TwoTowerConfig):
        super().__init__()
        self.spec_cfg = cfg.spectrogram()
        bank = mel_filterbank(self.spec_cfg.n_bins, self.spec_cfg.n_fft, cfg.sample_rate, cfg.n_mels)
        self.register_buffer("mel_bank", torch.from_numpy(bank), persistent=False)

    def forward(self, audio: Tensor) -> Tensor:
        magnitude = stft(audio.float().mean(dim=1), self.spec_cfg).abs()  # (B, F, frames)
        mel = torch.einsum("bft,fm->bmt", magnitude, self.mel_bank)  # (B, n_mels, frames)
        return torch.log(mel + 1e-5).unsqueeze(1)  # (B, 1, n_mels, frames)


def _conv_blocks(dim: int, in_channels: int, widths, convs_per_block: int, bn: BNSettings,
                 time_strides: int = 0) -> nn.Sequential:
    """Blocks of 3x3(x3) conv units, the first conv of each with stride 2 (in 3D, in time too for
    the first ``time_strides`` blocks)."""
    layers, channels = [], in_channels
    for k, width in enumerate(widths):
        stride = (2 if k < time_strides else 1, 2, 2) if dim == 3 else 2
        for j in range(convs_per_block):
            layers.append(ConvUnit(dim, channels, width, 3, stride if j == 0 else 1, bn=bn))
            channels = width
    return nn.Sequential(*layers)


class TwoTowerNet(nn.Module):
    """Visual and audio towers with L2-normalised embeddings and the objective's head."""

    def __init__(self, config: TwoTowerConfig = PRESETS["small"]):
        super().__init__()
        self.config = cfg = config
        bn = BNSettings(momentum=cfg.bn_momentum, scale=True)
        dim = 3 if cfg.visual == "3d" else 2
        self.visual = _conv_blocks(dim, 3, cfg.visual_widths, cfg.convs_per_block, bn,
                                   time_strides=int(math.log2(MAP_STRIDE_T)))
        self.visual_proj = nn.Conv3d(cfg.visual_widths[-1], cfg.embed_dim, 1)
        self.log_mel = LogMel(cfg)
        self.audio_norm = bn(1)
        self.audio = _conv_blocks(2, 1, cfg.audio_widths, cfg.convs_per_block, bn)
        self.audio_proj = nn.Linear(cfg.audio_widths[-1], cfg.embed_dim)
        # Only the objective's head has parameters, so every parameter takes part in every step
        # (DistributedDataParallel needs no search for unused ones).
        if cfg.objective == "l3":
            self.fusion = nn.Sequential(nn.Linear(2 * cfg.embed_dim, cfg.fusion_width), nn.ReLU(inplace=True),
                                        nn.Linear(cfg.fusion_width, 1))
        elif cfg.objective == "avenet":  # |v - a|^2 is in [0, 4]: a match near 0 starts at logit +2
            self.distance_scale = nn.Parameter(torch.tensor(-2.0))
            self.distance_bias = nn.Parameter(torch.tensor(2.0))
        else:  # the contrastive temperature, CLIP's initial 0.07
            self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        init_weights(self)

    def frames_for_tower(self, video: Tensor, every: int | None = None) -> Tensor:
        """(B, 3, T, H, W) -> what the visual tower sees: the whole clip (3D), or (2D) the middle
        frame as (B, 3, 1, H, W), or with ``every`` one frame in ``every`` (B, 3, ceil(T/every), H, W)."""
        if self.config.visual == "3d":
            return video
        middle = video.shape[2] // 2
        return video[:, :, ::every] if every else video[:, :, middle : middle + 1]

    def embed_locations(self, video: Tensor, every: int | None = None) -> Tensor:
        """Per-location embeddings, unnormalised: video (B, 3, T, H, W) -> (B, D, t, h, w); ``every``
        as :meth:`frames_for_tower` (2D: one slice per ``every`` frames; 3D: always stride 8)."""
        frames = self.frames_for_tower(video, every)
        if self.config.visual == "3d":
            return self.visual_proj(self.visual(frames))  # (B, D, t, h, w)
        b, c, t, h, w = frames.shape
        flat = frames.transpose(1, 2).reshape(b * t, c, h, w)  # (B t, 3, H, W)
        feats = self.visual(flat).unsqueeze(2)  # (B t, C, 1, h', w')
        out = self.visual_proj(feats).squeeze(2)  # (B t, D, h', w')
        return out.reshape(b, t, *out.shape[1:]).transpose(1, 2)  # (B, D, t, h', w')

    def embed_video(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """video (B, 3, T, H, W) in [-1, 1] -> (v (B, D), locations (B, D, t, h, w)), both
        L2-normalised over D."""
        locations = self.embed_locations(video)  # (B, D, t, h, w)
        flat = locations.flatten(2)  # (B, D, t h w)
        pooled = flat.amax(dim=2) if self.config.pool == "max" else flat.mean(dim=2)  # (B, D)
        return F.normalize(pooled, dim=1), F.normalize(locations, dim=1)

    def embed_audio(self, audio: Tensor) -> Tensor:
        """audio (B, C, N) waveform in [-1, 1] -> a (B, D), L2-normalised."""
        spec = self.audio_norm(self.log_mel(audio))  # (B, 1, n_mels, frames)
        feats = self.audio(spec).amax(dim=(2, 3))  # (B, C_a)
        return F.normalize(self.audio_proj(feats), dim=1)

    @staticmethod
    def similarity_map(audio_embedding: Tensor, locations: Tensor) -> Tensor:
        """Cosine of each location with the audio: a (B, D), locations (B, D, t, h, w) -> (B, t, h, w)."""
        return torch.einsum("bd,bdthw->bthw", audio_embedding, locations)

    def score(self, v: Tensor, a: Tensor, locations: Tensor | None = None) -> Tensor:
        """Correspondence logit of each pair ``(v[i], a[i])``: (B, D), (B, D) -> (B,). With
        ``config.mil``, ``locations`` (B, D, t, h, w) are scored through the map's maximum."""
        cfg = self.config
        if cfg.objective == "l3":
            return self.fusion(torch.cat([v, a], dim=1)).squeeze(1)
        cosine = self.similarity_map(a, locations).flatten(1).amax(1) if cfg.mil else (v * a).sum(1)  # (B,)
        return self.logit_from_cosine(cosine)

    def logit_from_cosine(self, cosine: Tensor) -> Tensor:
        """The distance or contrastive head on cosines (any shape): |v - a|^2 = 2 - 2 cos."""
        if self.config.objective == "l3":
            raise ValueError("L3's fused head scores embeddings, not cosines")
        if self.config.objective == "avenet":
            return self.distance_scale * (2 - 2 * cosine) + self.distance_bias
        return self.logit_scale.clamp(max=math.log(100)).exp() * cosine

    def forward(self, video: Tensor, audio: Tensor) -> Tensor:
        """Correspondence logits of aligned pairs: video (B, 3, T, H, W), audio (B, C, N) -> (B,)."""
        v, locations = self.embed_video(video)
        return self.score(v, self.embed_audio(audio), locations)
