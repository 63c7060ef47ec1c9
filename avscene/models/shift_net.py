"""The fused audio-visual shift network (Owens & Efros 2018, section 3): a 3D ResNet-18 that says
whether a clip's audio is aligned with its video, with the audio fused into the video trunk early.

Inputs (the data layer prepares them; the net never touches files):

* ``video``: float ``(B, 3, T, H, W)``, RGB in [-1, 1] (uint8 pixels mapped by ``x * 2 / 255 - 1``).
* ``audio``: float ``(B, C, N)`` raw waveform in [-1, 1] (int16 / 32767), ``N = config.n_samples``
  for ``T = config.n_frames``; the net applies the mu-law-style compression itself.

Dataflow (channel widths and sizes of the ``paper`` preset, 125 x 224 x 224 frames, 87588 samples)::

    audio (B, 2, 87588)                           video (B, 3, 125, 224, 224)
      | mu-law compress                             | conv1 5x7x7 /2           (B, 64, 63, 112, 112)
      | sf/conv1_1 k65 /4     (B, 64, 21897)        | max-pool 1x3x3 /(1,2,2)  (B, 64, 63, 56, 56)
      | max-pool 4 /4         (B, 64, 5474)         | conv2_1 3x3x3            (B, 64, 63, 56, 56)
      | sf/conv2_1 k15 /4     (B, 128, 1369)        | conv2_2 3x3x3 /2         (B, 64, 32, 28, 28)  scale0
      | sf/conv3_1 k15 /4     (B, 128, 343)         |
      | sf/conv4_1 k15 /4     (B, 256, 86)          |
      | fractional max-pool   (B, 256, 32)          |
      | sf/conv5_1 k3         (B, 128, 32)          |
      | tile over 28 x 28 ----------------------> concat                   (B, 192, 32, 28, 28)
                                                    | merge block 1x1x1        (B, 128, 32, 28, 28)
                                                    | conv3_1, conv3_2         (B, 128, 32, 28, 28)  scale1
                                                    | conv4_1 /2, conv4_2      (B, 256, 16, 14, 14)
                                                    | conv5_1 /(1,2,2), conv5_2 (B, 512, 16, 7, 7)   scale2
                                                    | head 1x1x1 conv + bias   (B, 16, 7, 7)  = cam
                                                    | mean over (T', H', W')   (B,)          = logit

With ``cam=True`` conv5_1 has no spatial stride and the last map is 16 x 14 x 14; ``fine_cam=True``
also drops conv4_1's (28 x 28, beyond the paper). The head is
"project, then pool": the logit is exactly the mean of the class activation map.

Departures from the release
---------------------------
The presets depart from the release as listed here. Networks imported from the release
(``avscene import-tf``) set ``padding="tf-same"``, ``fractional_pool="tf-release"``,
``bn_momentum=3e-4`` and ``profile="release"``, which undo the first two and the preprocessing
differences, so they compute what the release's graph computes (``tests/test_tf_import.py``).

* Padding: symmetric ``kernel // 2`` (all kernels are odd) instead of TF ``SAME``, which pads one
  more sample at the end for strided convs on even inputs. Output sizes are identical (``ceil(n /
  stride)``); outputs are centred on input ``stride * i``, which is consistent with the subsampling
  shortcut ``x[::s]``. ``padding="tf-same"`` restores TF's.
* Batch renormalization (release: post-addition BNs in training) -> plain BatchNorm everywhere.
  At inference both use moving statistics, as here.
* BN momentum: the release's decay 0.9997 (momentum 3e-4) only settles after ~10K steps; the
  presets use 0.01 (``paper``) and 0.1 (``small``/``tiny``) so short runs have usable eval-mode
  statistics. ``bn_momentum=3e-4`` restores the release. eps 1e-3 as the release.
* BN gamma: off by default (``bn_affine_scale=False``, as the pretrained shift net); the separation
  and action configs of the release turn it on.
* Fractional pooling: Graham's pseudo-random boundaries (regions 2-3 wide, each boundary within one
  step of its ideal place) drawn fresh per call in training; fixed boundaries (u = 1/2) in eval,
  so evaluation is deterministic (the paper's test runs were random; the release's own fixed
  regions are ``fractional_pool="tf-release"``).
* Init: He normal (fan-in, ReLU gain) instead of a truncated normal; weight decay is the
  optimizer's job, not the model's.
* Spectrogram input (Table 1 variant, not in the release): see :class:`SpectrogramFrontEnd`.
* ``use_sound=False`` skips the audio branch instead of computing and zeroing it: the fused
  features are exactly as in the release, but the audio parameters get no gradient (under DDP use
  ``find_unused_parameters=True`` or freeze them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avscene.constants import PAPER_CROP_SIZE, PAPER_FPS, PAPER_SAMPLE_RATE, PROFILES, as_fps, frame_to_sample
from avscene.models.blocks import (
    FRACTIONAL_POOLS,
    PADDINGS,
    BNSettings,
    ConvUnit,
    FractionalMaxPool1d,
    ResBlock,
    conv,
    init_weights,
    tf_same_pads,
)

AUDIO_INPUTS = ("waveform", "spectrogram")


@dataclass(frozen=True)
class ShiftNetConfig:
    """Everything needed to rebuild a :class:`ShiftNet` (stored in checkpoints via ``to_dict``)."""

    #: Frames per clip and side of the square crop (px).
    n_frames: int = 125
    crop_size: int = PAPER_CROP_SIZE
    #: Video frame rate (exact) and audio sample rate (Hz); fix the audio length per clip.
    fps: Fraction = PAPER_FPS
    sample_rate: int = PAPER_SAMPLE_RATE
    #: Input audio channels (2 = stereo, fed as conv input channels).
    audio_channels: int = 2
    #: Widths of the visual stem (conv1, conv2_1, conv2_2) and the fused trunk stages 3, 4, 5.
    stem_width: int = 64
    trunk_widths: tuple[int, int, int] = (128, 256, 512)
    #: Hidden width of the 1x1x1 merge block (``im/merge1``).
    merge_width: int = 512
    #: Widths of sf/conv1_1, sf/conv2_1, sf/conv3_1, sf/conv4_1, and of sf/conv5_1 (fused audio).
    audio_widths: tuple[int, int, int, int] = (64, 128, 128, 256)
    audio_fused_width: int = 128
    #: conv5_1 without spatial stride: last map 2x finer (the release's ``cam_v1`` model).
    cam: bool = False
    #: With ``cam``, conv4_1 without spatial stride too: last map 4x finer than the release's
    #: (one cell per 8 input pixels). Not in the paper: for small inputs, whose 16-px cells are as
    #: big as the objects. Same parameters as the strided layouts, so weights move between them.
    fine_cam: bool = False
    #: 'waveform' (the paper) or 'spectrogram' (Table 1 variant).
    audio_input: str = "waveform"
    #: False = vision-only: the tiled audio features are zeros.
    use_sound: bool = True
    bn_momentum: float = 0.01
    bn_eps: float = 1e-3
    #: Learn a BN scale (gamma); the pretrained shift net has beta only.
    bn_affine_scale: bool = False
    #: Padding of strided convs and pools: 'symmetric' (avscene) or 'tf-same' (the release's
    #: weights), see :mod:`avscene.models.blocks`.
    padding: str = "symmetric"
    #: Audio-to-video-rate pooling at inference: 'graham' (regions centred on u = 1/2) or
    #: 'tf-release' (the release's deterministic regions, for its weights).
    fractional_pool: str = "graham"
    #: Input preparation the weights expect, one of :data:`avscene.constants.PROFILES`:
    #: 'avscene' (aspect-keeping centre crop) or 'release' (the release's squash 256 -> crop 224).
    profile: str = "avscene"

    def __post_init__(self) -> None:
        object.__setattr__(self, "fps", as_fps(self.fps))
        object.__setattr__(self, "trunk_widths", tuple(int(w) for w in self.trunk_widths))
        object.__setattr__(self, "audio_widths", tuple(int(w) for w in self.audio_widths))
        if self.audio_input not in AUDIO_INPUTS:
            raise ValueError(f"audio_input must be one of {AUDIO_INPUTS}, got {self.audio_input!r}")
        if len(self.trunk_widths) != 3 or len(self.audio_widths) != 4:
            raise ValueError("trunk_widths needs 3 widths (stages 3-5), audio_widths 4 (conv1-4)")
        n_audio_skip = self.trunk_widths[0] - self.stem_width
        if not 0 <= n_audio_skip <= self.audio_fused_width:
            raise ValueError(
                "the merge shortcut is concat(video, last audio channels), so trunk_widths[0] - "
                f"stem_width must be in [0, audio_fused_width]; got {self.trunk_widths[0]} - "
                f"{self.stem_width} with audio_fused_width={self.audio_fused_width}")
        if self.fine_cam and not self.cam:
            raise ValueError("fine_cam removes conv4_1's spatial stride on top of cam's conv5_1: set cam=True too")
        if self.padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {self.padding!r}")
        if self.fractional_pool not in FRACTIONAL_POOLS:
            raise ValueError(f"fractional_pool must be one of {FRACTIONAL_POOLS}, got {self.fractional_pool!r}")
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {self.profile!r}")
        if self.n_frames < 1 or self.crop_size < 1:
            raise ValueError(f"need n_frames, crop_size >= 1, got {self.n_frames}, {self.crop_size}")

    @property
    def n_samples(self) -> int:
        """Audio samples per clip, ``frame_to_sample(n_frames)`` (87588 for the paper)."""
        return frame_to_sample(self.n_frames, self.fps, self.sample_rate)

    @property
    def video_shape(self) -> tuple[int, int, int, int]:
        """``(3, T, H, W)`` of one input clip."""
        return (3, self.n_frames, self.crop_size, self.crop_size)

    @property
    def audio_shape(self) -> tuple[int, int]:
        """``(C, N)`` of one input clip's waveform."""
        return (self.audio_channels, self.n_samples)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (fps as ``"num/den"``); inverse of :meth:`from_dict`."""
        d = dataclasses.asdict(self)
        d["fps"] = f"{self.fps.numerator}/{self.fps.denominator}"
        d["trunk_widths"], d["audio_widths"] = list(self.trunk_widths), list(self.audio_widths)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ShiftNetConfig":
        return cls(**d)


PRESETS: dict[str, ShiftNetConfig] = {
    # The release's shift_v1: 4.2 s clips, ~36.0 M parameters.
    "paper": ShiftNetConfig(),
    # The release's cam_v1: 14x14 last map for sound-source localization.
    "paper-cam": ShiftNetConfig(cam=True),
    # Trains on CPU: 1.07 s clips at 64x64, ~2.7 M parameters. Uses the cam_v1 layout: with a
    # spatial stride in conv5 a 64x64 crop ends in a 2x2 map, too coarse to tell two objects
    # apart; without it the map is 4x4 at the same cost (0.38 s per batch of 16 either way).
    "small": ShiftNetConfig(
        n_frames=32, crop_size=64, stem_width=32, trunk_widths=(64, 96, 96), merge_width=128,
        audio_widths=(16, 32, 32, 64), audio_fused_width=64, bn_momentum=0.1, cam=True,
    ),
    # ``small`` with 8-px CAM cells (``fine_cam``) for sound-source localization: 8x8 map on the
    # 64x64 crop, 12x12 on a whole 96x96 frame; ~1.4x the compute of ``small``.
    "small-cam": ShiftNetConfig(
        n_frames=32, crop_size=64, stem_width=32, trunk_widths=(64, 96, 96), merge_width=128,
        audio_widths=(16, 32, 32, 64), audio_fused_width=64, bn_momentum=0.1, cam=True, fine_cam=True,
    ),
    # For unit tests: forward + backward in well under 0.2 s.
    "tiny": ShiftNetConfig(
        n_frames=8, crop_size=32, stem_width=8, trunk_widths=(16, 16, 32), merge_width=16,
        audio_widths=(8, 16, 16, 16), audio_fused_width=16, bn_momentum=0.1,
    ),
}


def get_preset(name: str, **overrides: Any) -> ShiftNetConfig:
    """The named preset's config with ``overrides`` (config field names) applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown shift-net preset {name!r}; choose from {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


def mu_law_compress(audio: Tensor) -> Tensor:
    """``sign(x) log(1 + 255 |x|) / log(256)``: maps [-1, 1] to [-1, 1], boosting quiet sounds."""
    return torch.sign(audio) * torch.log1p(255.0 * audio.abs()) / math.log(256.0)


def _autocast_off(x: Tensor) -> contextlib.AbstractContextManager:
    """Disable autocast for ``x``'s device (a no-op on devices without autocast, e.g. meta)."""
    if x.device.type in ("cpu", "cuda", "xpu", "mps"):
        return torch.autocast(x.device.type, enabled=False)
    return contextlib.nullcontext()


class WaveformFrontEnd(nn.Module):
    """The release's raw-waveform convs sf/conv1_1 .. sf/conv4_1: 1024x downsampling."""

    def __init__(self, cfg: ShiftNetConfig, bn: BNSettings) -> None:
        super().__init__()
        w1, w2, w3, w4 = cfg.audio_widths
        pad = cfg.padding
        self.conv1_1 = ConvUnit(1, cfg.audio_channels, w1, 65, 4, bn=bn, padding=pad)
        self.pool = nn.MaxPool1d(4, 4)
        self.conv2_1 = ResBlock(1, w1, w2, 15, 4, bn=bn, padding=pad)
        self.conv3_1 = ResBlock(1, w2, w3, 15, 4, bn=bn, padding=pad)
        self.conv4_1 = ResBlock(1, w3, w4, 15, 4, bn=bn, padding=pad)

    def forward(self, audio: Tensor) -> Tensor:
        x = mu_law_compress(audio)  # (B, C, N)
        x = self.pool(self.conv1_1(x))  # (B, w1, ceil(N / 4) // 4)
        x = self.conv2_1(x)  # (B, w2, /4)
        x = self.conv3_1(x)  # (B, w3, /4)
        return self.conv4_1(x)  # (B, w4, ~N / 1024)


class SpectrogramFrontEnd(nn.Module):
    """Log-magnitude STFT front end (the paper's Table 1 "spectrogram" variant, not released).

    STFT with a 512-sample Hann window and hop 256 (24 ms / 12 ms at 21 kHz, centred frames), then
    ``log(|X| + 1e-3)`` with the frequency bins of every audio channel as conv channels, then a
    conv unit (k3, /2) and a residual block (k3, /2) to the same ~N/1024 rate and width as the
    waveform front end's conv4_1 (86 steps for 87588 samples), so fusion is unchanged.
    """

    n_fft = 512
    hop = 256

    def __init__(self, cfg: ShiftNetConfig, bn: BNSettings) -> None:
        super().__init__()
        _, _, w3, w4 = cfg.audio_widths
        n_bins = self.n_fft // 2 + 1
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.conv1 = ConvUnit(1, cfg.audio_channels * n_bins, w3, 3, 2, bn=bn)
        self.conv2 = ResBlock(1, w3, w4, 3, 2, bn=bn)

    def forward(self, audio: Tensor) -> Tensor:
        b, c, n = audio.shape
        with _autocast_off(audio):  # the FFT wants float32
            spec = torch.stft(audio.float().reshape(b * c, n), self.n_fft, self.hop,
                              window=self.window, center=True, return_complex=True)  # (B*C, F, S)
            spec = torch.log(spec.abs() + 1e-3)  # (B*C, F, S)
        x = spec.reshape(b, c * spec.shape[1], spec.shape[2])  # (B, C*F, S), S = N // 256 + 1
        return self.conv2(self.conv1(x))  # (B, w4, ceil(S / 4))


class AudioBranch(nn.Module):
    """Front end -> fractional max-pool to the video feature rate -> sf/conv5_1."""

    def __init__(self, cfg: ShiftNetConfig, bn: BNSettings) -> None:
        super().__init__()
        front = WaveformFrontEnd if cfg.audio_input == "waveform" else SpectrogramFrontEnd
        self.frontend = front(cfg, bn)
        self.pool = FractionalMaxPool1d(cfg.fractional_pool)
        self.conv5_1 = ConvUnit(1, cfg.audio_widths[3], cfg.audio_fused_width, 3, bn=bn)

    def forward(self, audio: Tensor, n_steps: int) -> Tensor:
        x = self.frontend(audio)  # (B, w4, T_a)
        x = self.pool(x, n_steps)  # (B, w4, T_v)
        return self.conv5_1(x)  # (B, C_a, T_v)


class VisualStem(nn.Module):
    """im/conv1 .. im/conv2_2: the video-only layers, shared by both passes of a pair."""

    def __init__(self, cfg: ShiftNetConfig, bn: BNSettings) -> None:
        super().__init__()
        w = cfg.stem_width
        self.tf_same = cfg.padding == "tf-same"
        self.conv1 = ConvUnit(3, 3, w, (5, 7, 7), 2, bn=bn, padding=cfg.padding)
        self.pool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), 0 if self.tf_same else (0, 1, 1))
        self.conv2_1 = ResBlock(3, w, w, 3, 1, bn=bn, padding=cfg.padding)
        self.conv2_2 = ResBlock(3, w, w, 3, 2, bn=bn, padding=cfg.padding)

    def forward(self, video: Tensor) -> Tensor:
        x = self.conv1(video)  # (B, w, T/2, H/2, W/2)
        if self.tf_same:  # TF pads a max-pool with -inf, the odd one at the end
            x = F.pad(x, tf_same_pads(x.shape[2:], (1, 3, 3), (1, 2, 2)), value=-math.inf)
        x = self.pool(x)  # (B, w, T/2, H/4, W/4)
        x = self.conv2_1(x)  # (B, w, T/2, H/4, W/4)
        return self.conv2_2(x)  # (B, w, T/4, H/8, W/8)


class MergeBlock(nn.Module):
    """Early fusion: tile audio over space, concat, 1x1x1 residual block (``merge``).

    Shortcut = concat(all video channels, the last ``out - C_v`` audio channels); main path =
    1x1x1 conv unit (``im/merge1``) -> 1x1x1 conv with bias (``im/merge2``); post-addition BN.
    """

    def __init__(self, video_width: int, audio_width: int, hidden: int, out: int,
                 bn: BNSettings) -> None:
        super().__init__()
        self.n_audio_skip = out - video_width
        self.merge1 = ConvUnit(3, video_width + audio_width, hidden, 1, bn=bn)
        self.merge2 = conv(3, hidden, out, 1, bias=True)
        self.bn = bn(out)

    def forward(self, v: Tensor, a: Tensor) -> Tensor:
        # v: (B, C_v, T, H, W); a: (B, C_a, T)
        a = a[:, :, :, None, None].expand(-1, -1, -1, v.shape[3], v.shape[4])  # (B, C_a, T, H, W)
        a = a.to(v.dtype)  # under autocast the audio convs may leave another dtype
        x = torch.cat([v, a], dim=1)  # (B, C_v + C_a, T, H, W)
        shortcut = torch.cat([v, a[:, a.shape[1] - self.n_audio_skip:]], dim=1)  # (B, out, T, H, W)
        y = self.merge2(self.merge1(x)) + shortcut  # (B, out, T, H, W)
        return F.relu(self.bn(y))  # (B, out, T, H, W)


class ShiftNet(nn.Module):
    """Fused audio-visual network that scores whether audio and video are in sync.

    ``forward(video, audio) -> (B,)`` logits (positive = aligned); ``cam`` gives the per-cell map
    of the same head; ``features``/``embed`` expose the trunk for separation and action heads.
    """

    def __init__(self, config: ShiftNetConfig) -> None:
        super().__init__()
        self.config = cfg = config
        bn = BNSettings(eps=cfg.bn_eps, momentum=cfg.bn_momentum, scale=cfg.bn_affine_scale)
        w3, w4, w5 = cfg.trunk_widths
        self.audio = AudioBranch(cfg, bn)
        self.stem = VisualStem(cfg, bn)
        self.merge = MergeBlock(cfg.stem_width, cfg.audio_fused_width, cfg.merge_width, w3, bn)
        pad = cfg.padding
        self.stage3 = nn.Sequential(ResBlock(3, w3, w3, 3, 1, bn=bn), ResBlock(3, w3, w3, 3, 1, bn=bn))
        conv4_stride = (2, 1, 1) if cfg.fine_cam else 2
        self.stage4 = nn.Sequential(ResBlock(3, w3, w4, 3, conv4_stride, bn=bn, padding=pad),
                                    ResBlock(3, w4, w4, 3, 1, bn=bn))
        conv5_stride = (1, 1, 1) if cfg.cam else (1, 2, 2)
        self.stage5 = nn.Sequential(ResBlock(3, w4, w5, 3, conv5_stride, bn=bn, padding=pad),
                                    ResBlock(3, w5, w5, 3, 1, bn=bn))
        self.head = nn.Conv3d(w5, 1, 1, bias=True)
        init_weights(self)

    # -- internals ---------------------------------------------------------------------------

    def _check(self, video: Tensor, *audios: Tensor) -> None:
        if video.dim() != 5 or video.shape[1] != 3:
            raise ValueError(f"video must be (B, 3, T, H, W) in [-1, 1], got {tuple(video.shape)}")
        for audio in audios:
            if audio.dim() != 3 or audio.shape[1] != self.config.audio_channels:
                raise ValueError(
                    f"audio must be (B, {self.config.audio_channels}, N) in [-1, 1], "
                    f"got {tuple(audio.shape)}")
            if audio.shape[0] != video.shape[0]:
                raise ValueError(f"batch sizes differ: video {video.shape[0]}, audio {audio.shape[0]}")

    def _fused(self, v: Tensor, audio: Tensor) -> tuple[Tensor, Tensor]:
        """Fusion + trunk on stem output ``v``; returns (conv3_2, conv5_2) maps."""
        return self._trunk(v, self.audio_features(audio, v.shape[2]))

    def _trunk(self, v: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
        """Fusion + trunk on stem output ``v`` and audio features ``a`` (B, C_a, T_v) (see
        :meth:`audio_features`); returns (conv3_2, conv5_2) maps."""
        x = self.merge(v, a)  # (B, w3, T_v, H_v, W_v)
        scale1 = self.stage3(x)  # (B, w3, T_v, H_v, W_v)
        x = self.stage4(scale1)  # (B, w4, T_v/2, H_v/2, W_v/2)
        return scale1, self.stage5(x)  # (B, w5, T', H', W')

    def _cam(self, last_conv: Tensor) -> Tensor:
        # Head in float32 even under autocast: it is tiny and the logits feed a loss.
        with _autocast_off(last_conv):
            return self.head(last_conv.float())[:, 0]  # (B, T', H', W')

    # -- public ------------------------------------------------------------------------------

    def forward(self, video: Tensor, audio: Tensor) -> Tensor:
        """Sync logits ``(B,)`` (float32) for ``video`` (B, 3, T, H, W) and ``audio`` (B, C, N)."""
        return self.cam(video, audio).mean(dim=(1, 2, 3))  # (B,)

    def cam(self, video: Tensor, audio: Tensor) -> Tensor:
        """Class activation map ``(B, T', H', W')``: the logit head (with its bias) at every cell
        of the last conv map, so ``forward == cam.mean((1, 2, 3))``. Signed (no abs)."""
        self._check(video, audio)
        _, last_conv = self._fused(self.stem(video), audio)  # (B, w5, T', H', W')
        return self._cam(last_conv)  # (B, T', H', W')

    def forward_pair(self, video: Tensor, audio_a: Tensor, audio_b: Tensor) -> tuple[Tensor, Tensor]:
        """Logits ``(B,)`` for the same video with two audio tracks (the release's paired training):
        the visual stem runs once; fusion and trunk run once per track, so BN batch statistics are
        computed per half."""
        self._check(video, audio_a, audio_b)
        v = self.stem(video)  # (B, w, T_v, H_v, W_v)
        logits = []
        for audio in (audio_a, audio_b):
            _, last_conv = self._fused(v, audio)  # (B, w5, T', H', W')
            logits.append(self._cam(last_conv).mean(dim=(1, 2, 3)))  # (B,)
        return logits[0], logits[1]

    def score_audios(self, video: Tensor, audios: Tensor, *, chunk: int = 16) -> Tensor:
        """Logits ``(K,)`` of one clip ``video`` (1, 3, T, H, W) heard with each of ``K`` audio
        tracks ``audios`` (K, C, N): the visual stem runs once (an offset scan). Use in eval mode."""
        self._check(video, audios[:1])
        v = self.stem(video)  # (1, w, T_v, H_v, W_v)
        features = torch.cat([self.audio_features(part, v.shape[2]) for part in audios.split(chunk)])
        return self.score_features(v, features, chunk=chunk)  # (K,)

    def audio_features(self, audio: Tensor, n_steps: int) -> Tensor:
        """The audio branch up to the fusion point: ``(B, C_a, n_steps)`` features of ``audio``
        (B, C, N) at the video feature rate (``n_steps`` = the stem's T_v); zeros when the
        network is vision-only. They depend on the track alone, so an offset scan can compute a
        track's features once and reuse them for every window that hears the same track."""
        if self.config.use_sound:
            return self.audio(audio, n_steps)  # (B, C_a, T_v)
        return audio.new_zeros(audio.shape[0], self.config.audio_fused_width, n_steps)  # (B, C_a, T_v)

    def score_features(self, stem: Tensor, features: Tensor, *, chunk: int = 16) -> Tensor:
        """Logits ``(K,)`` of one clip's stem output ``stem`` (1, w, T_v, H_v, W_v) (``self.stem``)
        fused with each of ``K`` audio feature maps ``features`` (K, C_a, T_v) from
        :meth:`audio_features`: the part of an offset scan that early fusion makes run per track."""
        logits = []
        for part in features.split(chunk):
            _, last_conv = self._trunk(stem.expand(part.shape[0], *stem.shape[1:]), part)  # (k, w5, T', H', W')
            logits.append(self._cam(last_conv).mean(dim=(1, 2, 3)))  # (k,)
        return torch.cat(logits)  # (K,)

    def features(self, video: Tensor, audio: Tensor) -> dict[str, Tensor]:
        """Maps tapped by the separation U-Net: ``scale0`` = conv2_2 (video only, (B, w, T_v, H_v,
        W_v)), ``scale1`` = conv3_2 (fused, (B, w3, T_v, H_v, W_v)), ``scale2`` = conv5_2 (last
        conv, (B, w5, T', H', W'))."""
        self._check(video, audio)
        scale0 = self.stem(video)  # (B, w, T_v, H_v, W_v)
        scale1, scale2 = self._fused(scale0, audio)
        return {"scale0": scale0, "scale1": scale1, "scale2": scale2}

    def embed(self, video: Tensor, audio: Tensor) -> Tensor:
        """Clip embedding ``(B, w5)``: the last conv map averaged over (T', H', W')."""
        self._check(video, audio)
        _, last_conv = self._fused(self.stem(video), audio)  # (B, w5, T', H', W')
        return last_conv.mean(dim=(2, 3, 4))  # (B, w5)

    @property
    def embed_dim(self) -> int:
        return self.config.trunk_widths[2]
