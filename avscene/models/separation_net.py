"""On/off-screen source separation (Owens & Efros 2018, section 5): a spectrogram U-Net that
hears a mixture and sees the video through the shift network's features at three scales, and
predicts the on-screen and the off-screen sound.

Inputs (the data layer prepares them; the net never touches files):

* ``video``: float ``(B, 3, T, H, W)`` in [-1, 1], ``T = config.n_frames`` (``None`` for the
  audio-only variant).
* ``audio``: float ``(B, C, N)`` waveform of the *mixture* (sources RMS-normalised, see
  :mod:`avscene.data.mixtures`), ``N = config.n_samples``. The U-Net hears the channel mean (the
  release's training input; its inference used the left channel only, a train/test mismatch not
  reproduced here); the shift net hears all channels (the mono variant: the mean, duplicated).

Output: ``(B, 2, 2, F, T_spec)`` in [-1, 1] (a ``mixture-residual`` or ``mask`` log magnitude may leave it).
Axis 1 is the source (:data:`ON` = 0, on-screen; :data:`OFF` = 1, off-screen; unordered for PIT
variants), axis 2 the component (:data:`LOG_MAG` = 0, the log magnitude normalised from
[-100, 80] dB; :data:`PHASE` = 1, phase / pi), exactly the normalised format of
:func:`avscene.audio.stft.analyze`, so losses compare with :func:`target_spectrograms` directly
and :func:`synthesize_sources` turns it into waveforms.

How the heads' 4 channels ``h`` become that output is ``config.output``:

* ``"spectrogram"`` (the release, the ``paper`` preset): ``tanh(h)``, the net regresses both
  spectrograms from nothing (no mask).
* ``"mixture-residual"`` (the CPU presets; not in the release): the log magnitude is the
  mixture's plus ``2 tanh(h)`` (a correction of up to +-180 dB, i.e. a mask in the log domain)
  and the phase the mixture's plus ``tanh(h)`` (wrapped to [-1, 1)). Same loss, same targets,
  still a spectrogram regression; but at init the output *is* the mixture, so the fine harmonic
  detail that a small net cannot regress in a few hundred steps comes for free. Measured on the
  synthetic talking scenes (``benchmarks/separation.py``): the ``small`` preset regressing
  spectrograms from nothing learned the on/off timing but predicted magnitudes 20-30 dB too low
  between harmonics (on-screen SDR -8.8 dB with its own phase, +1.1 dB with the mixture's); see
  benchmarks/README.md for the residual form's figures. The magnitude lies in [-3, 3]:
  below -1 decodes to silence and :func:`avscene.audio.stft.synthesize` clips it above 1.
* ``"mask"`` (the demo's ``small-lite``; not in the release): the mixture split by one soft
  mask, on-screen ``m |X|``, off-screen ``(1 - m) |X|``, both with the mixture's phase, where
  ``m = (1 + tanh(h_on + g)) / 2``. ``g`` is a per-STFT-frame logit from the video taps (a 1x1
  conv over the three taps resized to the spectrogram's frames, initialised to zero): a direct
  path from "the visible talker's mouth moves now" to the mask, which the U-Net alone, seeing the
  taps only tiled over frequency deep in its encoder, takes thousands of steps to learn. The two
  outputs sum to the mixture by construction, so the net only decides a split per bin. With an
  oracle per-frame gain (the on-screen share of each frame's energy) the demo's test mixtures go
  from 1.6 to 7.3 dB on-screen SDR (benchmarks/results/separation_recipes.json).

Dataflow (``paper`` preset, 63 frames of 224 x 224, 44144 samples; spectrograms are
``(B, C, F, T)``, strides are written (f, t))::

    audio (B, 2, 44144)                                        video (B, 3, 63, 224, 224)
      | channel mean, STFT: [log_mag, phase]                     | shift net (B, 2, 44144 audio)
    spec (B, 2, 1024, 128)                                       |   scale0 conv2_2 (B, 64, 16, 28, 28)
      | conv1 4x4 /(2,1)  (B, 64, 512, 128)                      |   scale1 conv3_2 (B, 128, 16, 28, 28)
      | conv2 4x4 /(2,1)  (B, 128, 256, 128)                     |   scale2 conv5_2 (B, 512, 8, 7, 7)
      | conv3 4x4 /(2,2)  (B, 256, 128, 64)  ++ tap(scale0) ->  (B, 320, 128, 64)
      | conv4 4x4 /(2,2)  (B, 512, 64, 32)   ++ tap(scale1) ->  (B, 640, 64, 32)
      | conv5 4x4 /(2,2)  (B, 512, 32, 16)   ++ tap(scale2) ->  (B, 1024, 32, 16)
      | conv6 .. conv9 /(2,2)                (B, 512, 2, 1)
      | deconv1 /(2,2)                        (B, 512, 4, 2)      no skip
      | deconv2 .. deconv8 on ReLU(concat(x, skip of the mirrored conv))  (B, 64, 512, 128)
      | head: ReLU(concat(x, conv1)) -> transposed conv /(2,1), 4 ch, tanh
    out (B, 2 sources, 2 [log_mag, phase], 1024, 128)

``tap(scale)``: the map averaged over (H, W), resized linearly along time to the U-Net level's
length, tiled over frequency and concatenated on channels (it also becomes that level's skip).
Encoder layer = conv (no bias) -> BN -> LeakyReLU(0.2); decoder layer = ReLU(concat(x, skip)) ->
transposed conv (no bias) -> BN. No dropout. 77.6 M U-Net + 36.0 M shift net = 113.6 M
parameters (67.0 M audio-only), as the release.

Variants (Table 2; ``config.variant``)
--------------------------------------
* ``full``: on/off outputs, L1 loss against (on, off) in that order.
* ``full-pit``: the same net trained with the PIT loss (Table 2's "On/off + PIT"; not in the
  release, this is the design doc's reading).
* ``audio-only``: the release's ``unet_pit``: no shift net and no taps (the U-Net loses the tap
  channels), PIT loss, outputs unordered, trained from scratch.
* ``mono``: the shift net hears the mixture's channel mean on every channel.
* ``single-frame``: the shift net sees the middle frame ``T // 2`` repeated over all ``T``
  (the audio still enters through the shift net's fusion).
* ``no-early-fusion`` (not in the release): the shift net runs vision-only (``use_sound=False``,
  the tiled audio features are zeros, the release's "vision only" mode), so the video features
  carry no audio and audio and video meet only in the U-Net. The shift net's audio branch is
  frozen (``requires_grad=False``), as is its sync-logit head in every variant: neither is used,
  so every trainable parameter gets a gradient and DDP needs no unused-parameter search.
* ``scratch``: the ``full`` architecture; only says "do not initialise from a shift checkpoint"
  (``config.init_from_shift`` is False), which the training code honours.

Departures from the release
---------------------------
* Batch renormalization -> plain BatchNorm (as the shift net); momentum 0.01 (``paper``) /
  0.1 (CPU presets) instead of decay 0.9997, eps 1e-5, gamma ~ N(1, 0.02), convs ~ N(0, 0.02).
* Spectrogram lengths that are not a multiple of the U-Net's time reduction (128 for ``paper``)
  are padded at the end by repeating the last frame and the output is cropped back; the release
  required multiples of 128 (44144 samples give exactly 128 frames, so ``paper`` is unchanged).
* The taps are resized at source positions ``j * T_v / T_level`` (TF1's legacy ``resize_images``,
  no half-pixel offset), with ``T_level`` the level's *unpadded* length; this is the release's
  resize when nothing is padded, and it is also the better-aligned choice: U-Net step ``j`` of the
  first tap is centred at ``0.032 j + 0.056`` s, video feature ``i`` at ``0.1335 i`` s, i.e. at
  source position ``0.24 j + 0.42``; legacy gives ``0.25 j``, half-pixel centres
  ``0.25 j - 0.375``.
* Skips store the LeakyReLU output instead of the pre-activation: the decoder applies ReLU to
  every skip and ReLU(LeakyReLU(x)) = ReLU(x), so nothing changes.
* Padding: TF ``SAME`` for the 4x4 kernels, i.e. (1, 1) on stride-2 axes and (1, 2) on the
  stride-1 time axis; the matching transposed convs crop the extra step.
* The two heads are one transposed conv with 4 output channels (same parameters and values).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avscene.audio.stft import (PAPER_SPECTROGRAM, SpectrogramConfig, analyze, release_istft, stft, synthesize,
                                unit_to_db)
from avscene.models.blocks import BatchNorm, BNSettings
from avscene.models.shift_net import PRESETS as SHIFT_PRESETS
from avscene.models.shift_net import ShiftNet, ShiftNetConfig

#: Indices of the output's source axis (1) and component axis (2).
ON, OFF = 0, 1
LOG_MAG, PHASE = 0, 1
#: How the heads' outputs become spectrograms (``SeparationNetConfig.output``).
OUTPUTS = ("spectrogram", "mixture-residual", "mask")
#: Training losses (``SeparationNetConfig.loss``; :mod:`avscene.train.separation_losses`).
LOSSES = ("log", "compressed")

#: Key under which a separation checkpoint's ``model_config`` records the shift checkpoint its
#: shift net started from (None: from scratch); provenance, not architecture.
SHIFT_INIT_KEY = "shift_init"

#: Encoder layers (0-based) after which the shift-net features scale0, scale1, scale2 are added.
TAP_LAYERS = (2, 3, 4)
N_LAYERS = 9


@dataclass(frozen=True)
class _VariantSpec:
    uses_video: bool = True
    shift_audio: str = "stereo"  # 'stereo' | 'mono'
    single_frame: bool = False
    early_fusion: bool = True
    pit_loss: bool = False
    init_from_shift: bool = True


VARIANTS: dict[str, _VariantSpec] = {
    "full": _VariantSpec(),
    "full-pit": _VariantSpec(pit_loss=True),
    "audio-only": _VariantSpec(uses_video=False, pit_loss=True, init_from_shift=False),
    "mono": _VariantSpec(shift_audio="mono"),
    "single-frame": _VariantSpec(single_frame=True),
    "no-early-fusion": _VariantSpec(early_fusion=False),
    "scratch": _VariantSpec(init_from_shift=False),
}


def _paper_shift() -> ShiftNetConfig:
    # 2.1 s separation clips (63 frames, 44144 samples); BN gamma on, as the release's sep configs.
    return dataclasses.replace(SHIFT_PRESETS["paper"], n_frames=63, bn_affine_scale=True)


@dataclass(frozen=True)
class SeparationNetConfig:
    """Everything needed to rebuild a :class:`SeparationNet` (stored in checkpoints via ``to_dict``)."""

    #: The shift net inside (its n_frames, crop and sample rate fix the clip).
    shift: ShiftNetConfig = field(default_factory=_paper_shift)
    #: STFT front end (the release's 21 kHz, 1344/336/2048, 1024 bins).
    spectrogram: SpectrogramConfig = PAPER_SPECTROGRAM
    #: Output channels of the 9 encoder layers; decoder layer k mirrors encoder layer 8 - k.
    widths: tuple[int, ...] = (64, 128, 256, 512, 512, 512, 512, 512, 512)
    #: Time stride (1 or 2) of each encoder layer; every layer halves frequency.
    time_strides: tuple[int, ...] = (1, 1, 2, 2, 2, 2, 2, 2, 2)
    #: One of :data:`VARIANTS` (Table 2's rows).
    variant: str = "full"
    #: One of :data:`OUTPUTS`: how the heads become spectrograms (see the module docstring).
    output: str = "spectrogram"
    #: One of :data:`LOSSES`: the training loss (:mod:`avscene.train.separation_losses`).
    loss: str = "log"
    bn_momentum: float = 0.01
    bn_eps: float = 1e-5
    #: False: the shift net's weights stay as the shift checkpoint left them (a fixed feature
    #: extractor; its batch statistics still follow the data in training mode) and training
    #: updates the U-Net alone, about a quarter faster per step. Pays off when the shift net was
    #: trained on the world it separates (the demo); fine-tuning it (True, the release) when not.
    train_shift: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "time_strides", tuple(int(s) for s in self.time_strides))
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown separation variant {self.variant!r}; choose from {sorted(VARIANTS)}")
        if self.output not in OUTPUTS:
            raise ValueError(f"unknown separation output {self.output!r}; choose from {list(OUTPUTS)}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown separation loss {self.loss!r}; choose from {list(LOSSES)}")
        if len(self.widths) != N_LAYERS or len(self.time_strides) != N_LAYERS:
            raise ValueError(f"widths and time_strides need {N_LAYERS} entries (one per encoder layer), "
                             f"got {len(self.widths)} and {len(self.time_strides)}")
        if any(s not in (1, 2) for s in self.time_strides):
            raise ValueError(f"time strides must be 1 or 2, got {self.time_strides}")
        if self.spectrogram.n_bins % 2**N_LAYERS:
            raise ValueError(f"every U-Net layer halves frequency: n_bins must be a multiple of "
                             f"{2**N_LAYERS}, got {self.spectrogram.n_bins}")
        if self.spectrogram.sample_rate != self.shift.sample_rate:
            raise ValueError(f"spectrogram and shift net sample rates differ: "
                             f"{self.spectrogram.sample_rate} vs {self.shift.sample_rate}")
        if not self.shift.use_sound:
            raise ValueError("shift.use_sound=False: use variant='no-early-fusion' for a vision-only shift net")
        self.spectrogram.n_frames(self.n_samples)  # raises if the clip is shorter than one window

    # -- variant ----------------------------------------------------------------------------------

    @property
    def uses_video(self) -> bool:
        """False for ``audio-only``: no shift net, no taps, ``video`` may be None."""
        return VARIANTS[self.variant].uses_video

    @property
    def pit_loss(self) -> bool:
        """Train with the permutation-invariant loss (outputs unordered)."""
        return VARIANTS[self.variant].pit_loss

    @property
    def init_from_shift(self) -> bool:
        """Training should start the shift net from a shift checkpoint (False: ``scratch``, ``audio-only``)."""
        return VARIANTS[self.variant].init_from_shift

    @property
    def shift_net_config(self) -> ShiftNetConfig:
        """The shift net as built: vision-only for ``no-early-fusion``."""
        return dataclasses.replace(self.shift, use_sound=VARIANTS[self.variant].early_fusion)

    # -- sizes ------------------------------------------------------------------------------------

    @property
    def n_frames(self) -> int:
        return self.shift.n_frames

    @property
    def n_samples(self) -> int:
        """Mixture samples per clip (44144 for the paper's 63 frames)."""
        return self.shift.n_samples

    @property
    def spec_frames(self) -> int:
        """STFT frames of one clip (128 for the paper)."""
        return self.spectrogram.n_frames(self.n_samples)

    @property
    def time_reduction(self) -> int:
        """Product of the time strides: spectrogram lengths are padded to a multiple of it."""
        return math.prod(self.time_strides)

    @property
    def video_shape(self) -> tuple[int, int, int, int]:
        return self.shift.video_shape

    @property
    def audio_shape(self) -> tuple[int, int]:
        return self.shift.audio_shape

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """``(2, 2, F, T)`` of one example's output."""
        return (2, 2, self.spectrogram.n_bins, self.spec_frames)

    # -- serialisation ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict; inverse of :meth:`from_dict`."""
        return {
            "shift": self.shift.to_dict(),
            "spectrogram": self.spectrogram.to_dict(),
            "widths": list(self.widths),
            "time_strides": list(self.time_strides),
            "variant": self.variant,
            "output": self.output,
            "loss": self.loss,
            "bn_momentum": self.bn_momentum,
            "bn_eps": self.bn_eps,
            "train_shift": self.train_shift,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SeparationNetConfig":
        """Inverse of :meth:`to_dict`; also reads a separation checkpoint's ``model_config``,
        whose :data:`SHIFT_INIT_KEY` entry (where the weights started) is not part of the config."""
        d = {k: v for k, v in d.items() if k != SHIFT_INIT_KEY}
        d["shift"] = ShiftNetConfig.from_dict(d["shift"])
        d["spectrogram"] = SpectrogramConfig.from_dict(d["spectrogram"])
        return cls(**d)


PRESETS: dict[str, SeparationNetConfig] = {
    # The release's sep model: 2.1 s clips, 128 x 1024 spectrograms, ~113.6 M parameters.
    "paper": SeparationNetConfig(),
    # Pairs with the shift preset 'small' (32 frames = 1.07 s at 64 x 64): 63 STFT frames, padded
    # to 64 for a time reduction of 64; U-Net 3.9 M + shift net 2.7 M parameters. Narrow early
    # layers: they run on 1024 frequency bins and dominate the cost (~0.5 s per training step of
    # 4 clips on one CPU thread).
    "small": SeparationNetConfig(
        shift=dataclasses.replace(SHIFT_PRESETS["small"], bn_affine_scale=True),
        widths=(8, 16, 32, 64, 128, 128, 128, 128, 128),
        time_strides=(1, 1, 2, 2, 2, 2, 2, 2, 1),
        output="mixture-residual",
        bn_momentum=0.1,
    ),
    # The demo's separator (``avscene demo``): 'small' on half the frequency bins, 512 (a 1024-point
    # FFT of 48 ms windows, 20.5 Hz per bin, still resolving the synthetic voices' harmonics),
    # and 64 STFT frames (hop 16 ms as the release). The U-Net's early layers, which dominate its
    # cost, run on half the bins. A mask with the video gate and the compressed loss: what learns
    # in the demo's minutes (benchmarks/results/separation_recipes.json).
    "small-lite": SeparationNetConfig(
        shift=dataclasses.replace(SHIFT_PRESETS["small"], bn_affine_scale=True),
        spectrogram=SpectrogramConfig(sample_rate=SHIFT_PRESETS["small"].sample_rate, win_length=1008,
                                      hop_length=336, n_fft=1024, n_bins=512),
        widths=(8, 16, 32, 64, 128, 128, 128, 128, 128),
        time_strides=(1, 1, 2, 2, 2, 2, 2, 2, 1),
        output="mask",
        loss="compressed",
        bn_momentum=0.1,
    ),
    # For unit tests: 8 frames of 32 x 32, 13 STFT frames padded to 16.
    "tiny": SeparationNetConfig(
        shift=dataclasses.replace(SHIFT_PRESETS["tiny"], bn_affine_scale=True),
        widths=(4, 8, 8, 8, 8, 8, 8, 8, 8),
        time_strides=(1, 1, 2, 2, 2, 1, 1, 1, 1),
        output="mixture-residual",
        bn_momentum=0.1,
    ),
}


def get_preset(name: str, **overrides: Any) -> SeparationNetConfig:
    """The named preset's config with ``overrides`` (config field names, e.g. ``variant``) applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown separation-net preset {name!r}; choose from {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


# -- spectrogram helpers -------------------------------------------------------------------------


def input_spectrogram(audio: Tensor, cfg: SpectrogramConfig = PAPER_SPECTROGRAM) -> Tensor:
    """``(B, 2, F, T)`` = [log_mag, phase] of the channel mean of ``audio`` ``(B, C, N)``."""
    return torch.stack(analyze(audio.mean(dim=1), cfg), dim=1)  # (B, 2, F, T)


def target_spectrograms(on: Tensor, off: Tensor, cfg: SpectrogramConfig = PAPER_SPECTROGRAM) -> Tensor:
    """Training targets ``(B, 2, 2, F, T)`` (source, component) from the on- and off-screen
    waveforms ``(B, C, N)`` (each averaged over channels, as the release)."""
    return torch.stack([input_spectrogram(on, cfg), input_spectrogram(off, cfg)], dim=1)


#: Whose phase the separated waveforms take: the mixture's (the release's ``phase_type='orig'``)
#: or the net's prediction (the release's default, ``'pred'``). The toolkit's default is the
#: mixture's: on the synthetic benchmark the full model gains +7.0 dB On-SDR with it against +1.4
#: with its own phase (``benchmarks/results/separation_lr1e3_drop*.json``).
PHASE_SOURCES = ("mixture", "pred")
DEFAULT_PHASE = "mixture"


def synthesize_sources(spec: Tensor, n_samples: int | None = None, cfg: SpectrogramConfig = PAPER_SPECTROGRAM,
                       *, mixture: Tensor | None = None) -> Tensor:
    """Waveforms ``(B, 2, N)`` (mono, one per source) from an output ``(B, 2, 2, F, T)``: with the
    predicted phase, or with the phase of ``mixture`` ``(B, C, N)`` (its channel mean) if given."""
    phase = spec[:, :, PHASE]  # (B, 2, F, T)
    if mixture is not None:
        phase = input_spectrogram(mixture, cfg)[:, None, PHASE].to(spec.dtype).expand_as(phase)
    return synthesize(spec[:, :, LOG_MAG], phase, n_samples, cfg)


def release_waveforms(spec: Tensor, mixture: Tensor, cfg: SpectrogramConfig = PAPER_SPECTROGRAM) -> Tensor:
    """The waveforms ``(B, 2, (T - 1) * hop + win)`` the release makes from an output ``(B, 2, 2,
    F, T)`` (its ``process`` with ``phase_type='pred'``): the Nyquist bin added back at -100 dB
    with the phase of the ``mixture`` ``(B, C, N)`` (channel mean), then :func:`release_istft`.
    For comparisons with the release; :func:`synthesize_sources` is avscene's inverse."""
    mix = stft(mixture.float().mean(dim=1), dataclasses.replace(cfg, n_bins=cfg.n_fft // 2 + 1))  # (B, F+1, T)
    mix = mix[:, None, -1:, : spec.shape[-1]].expand(-1, 2, -1, -1)  # (B, 2, 1, T): Nyquist bin
    mag = 10.0 ** (unit_to_db(spec[:, :, LOG_MAG].float(), cfg) / 20.0)  # (B, 2, F, T)
    floor = torch.full_like(mag[:, :, :1], cfg.amp_floor)  # (B, 2, 1, T)
    full = torch.cat([torch.polar(mag, spec[:, :, PHASE].float() * math.pi),
                      torch.polar(floor, torch.angle(mix))], dim=2)  # (B, 2, F + 1, T)
    return release_istft(full, cfg)


def resize_time(x: Tensor, n_out: int, scale: float) -> Tensor:
    """``(B, C, T_in) -> (B, C, n_out)``: linear interpolation at source positions ``j * scale``
    (TF1's legacy resize: no half-pixel offset), clamped to the last input step."""
    n_in = x.shape[-1]
    pos = torch.arange(n_out, device=x.device, dtype=torch.float64) * scale  # (n_out,)
    lo = pos.floor()
    i0 = lo.long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    frac = (pos - lo).to(x.dtype)  # irrelevant where i0 == i1
    return torch.lerp(x[..., i0], x[..., i1], frac)  # (B, C, n_out)


# -- the U-Net -----------------------------------------------------------------------------------


class _Down(nn.Module):
    """Encoder layer: TF-``SAME`` 4x4 conv with stride (2, t) -> BN -> LeakyReLU(0.2)."""

    def __init__(self, in_channels: int, out_channels: int, t_stride: int, bn: BNSettings) -> None:
        super().__init__()
        self.t_stride = t_stride
        self.conv = nn.Conv2d(in_channels, out_channels, 4, stride=(2, t_stride), bias=False)
        self.bn = bn(out_channels)

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, F, T) -> (B, C_out, F/2, T/t)
        x = F.pad(x, (1, 2 if self.t_stride == 1 else 1, 1, 1))  # (t_left, t_right, f_top, f_bottom)
        return F.leaky_relu(self.bn(self.conv(x)), 0.2)


class _Up(nn.Module):
    """Decoder layer on an already ReLU'd input: 4x4 transposed conv with stride (2, t), the
    adjoint of :class:`_Down`'s padding, then BN (``bn=None``: a bias instead, for the head)."""

    def __init__(self, in_channels: int, out_channels: int, t_stride: int, bn: BNSettings | None) -> None:
        super().__init__()
        self.t_stride = t_stride
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, 4, stride=(2, t_stride), padding=1,
                                       bias=bn is None)
        self.bn = bn(out_channels) if bn is not None else None

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, F, T) -> (B, C_out, 2F, tT)
        y = self.conv(x)
        if self.t_stride == 1:
            y = y[..., :-1]  # padding 1 of a stride-1 kernel 4 gives T + 1
        return self.bn(y) if self.bn is not None else y


class SpectrogramUNet(nn.Module):
    """The release's 9 + 8 layer pix2pix U-Net over ``(B, 2, F, T)`` spectrograms, with optional
    video taps after encoder layers :data:`TAP_LAYERS`; returns ``(B, 2, 2, F, T)`` in [-1, 1]."""

    def __init__(self, cfg: SeparationNetConfig, tap_widths: Sequence[int] | None) -> None:
        super().__init__()
        self.time_strides = cfg.time_strides
        self.output = cfg.output
        self.db_range = cfg.spectrogram.db_max - cfg.spectrogram.db_min
        self.tap_widths = tuple(tap_widths) if tap_widths is not None else None
        bn = BNSettings(eps=cfg.bn_eps, momentum=cfg.bn_momentum, scale=True)
        extra = dict(zip(TAP_LAYERS, self.tap_widths or (0, 0, 0)))
        skip_widths = [w + extra.get(i, 0) for i, w in enumerate(cfg.widths)]  # encoder outputs
        self.down = nn.ModuleList()
        in_ch = 2
        for i, (w, s) in enumerate(zip(cfg.widths, cfg.time_strides)):
            self.down.append(_Down(in_ch, w, s, bn))
            in_ch = skip_widths[i]
        self.up = nn.ModuleList()
        x_ch = cfg.widths[-1]  # the bottleneck (no taps at the last layer)
        for k in range(N_LAYERS - 1):  # decoder layer k mirrors encoder layer 8 - k
            mirror = N_LAYERS - 1 - k
            in_ch = x_ch if k == 0 else x_ch + skip_widths[mirror]
            self.up.append(_Up(in_ch, cfg.widths[mirror - 1], cfg.time_strides[mirror], bn))
            x_ch = cfg.widths[mirror - 1]
        # Both heads (on, off) x (log_mag, phase) as one transposed conv with bias.
        self.head = _Up(x_ch + skip_widths[0], 4, cfg.time_strides[0], None)
        # mask output with video: a direct path from the taps to the mask, one logit per STFT frame
        self.gate = (nn.Conv1d(sum(self.tap_widths), 1, 1)
                     if self.output == "mask" and self.tap_widths is not None else None)
        self._init_weights()

    def _init_weights(self) -> None:
        if self.gate is not None:
            nn.init.zeros_(self.gate.weight)
            nn.init.zeros_(self.gate.bias)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, BatchNorm) and m.weight is not None:
                nn.init.normal_(m.weight, 1.0, 0.02)

    @property
    def time_reduction(self) -> int:
        return math.prod(self.time_strides)

    def forward(self, spec: Tensor, taps: Sequence[Tensor] | None = None) -> Tensor:
        """``spec`` (B, 2, F, T) = [log_mag, phase] in [-1, 1]; ``taps``: three ``(B, C_k, T_k)``
        video features (time-resized here), required iff the net was built with tap widths."""
        if (taps is None) != (self.tap_widths is None):
            raise ValueError("taps must be given exactly when the U-Net was built with tap widths")
        b, _, n_freq, n_time = spec.shape
        pad = -n_time % self.time_reduction
        x = F.pad(spec, (0, pad, 0, 0), mode="replicate") if pad else spec  # (B, 2, F, T_pad)
        skips = []
        reduction = 1
        for i, layer in enumerate(self.down):
            x = layer(x)  # (B, w_i, F_i, T_i)
            reduction *= self.time_strides[i]
            if taps is not None and i in TAP_LAYERS:
                tap = taps[TAP_LAYERS.index(i)]  # (B, C, T_v)
                # source step per U-Net step, from the *unpadded* length of this level
                tap = resize_time(tap, x.shape[-1], tap.shape[-1] * reduction / n_time)  # (B, C, T_i)
                tap = tap.to(x.dtype)[:, :, None, :].expand(-1, -1, x.shape[2], -1)  # (B, C, F_i, T_i)
                x = torch.cat([x, tap], dim=1)  # (B, w_i + C, F_i, T_i)
            skips.append(x)
        x = skips.pop()  # bottleneck (B, w_8, F/512, T_pad / reduction)
        for k, layer in enumerate(self.up):
            x = layer(F.relu(x if k == 0 else torch.cat([x, skips.pop()], dim=1)))
        out = self.head(F.relu(torch.cat([x, skips.pop()], dim=1)))  # (B, 4, F, T_pad)
        out = out[..., :n_time]  # (B, 4, F, T)
        if self.output == "mask":
            logit = out[:, 0]  # (B, F, T): the on-screen mask's (the other 3 channels are unused)
            if self.gate is not None:
                frames = torch.cat([resize_time(t, n_time, t.shape[-1] / n_time) for t in taps], dim=1)  # (B, C, T)
                logit = logit + self.gate(frames.to(logit.dtype))  # + (B, 1, T), the same for every bin
            return self._apply_mask(spec, logit)
        out = torch.tanh(out).reshape(b, 2, 2, n_freq, n_time)  # (B, source, component, F, T)
        if self.output == "mixture-residual":
            mix = spec[:, None].to(out.dtype)  # (B, 1, 2, F, T)
            log_mag = mix[:, :, LOG_MAG] + 2.0 * out[:, :, LOG_MAG]  # (B, 2, F, T)
            phase = torch.remainder(mix[:, :, PHASE] + out[:, :, PHASE] + 1.0, 2.0) - 1.0  # (B, 2, F, T)
            out = torch.stack([log_mag, phase], dim=2)  # (B, 2, 2, F, T)
        return out

    def _apply_mask(self, spec: Tensor, logit: Tensor) -> Tensor:
        """The mixture split by a soft mask: the on-screen magnitude is the mixture's times
        ``m = (1 + tanh(logit)) / 2 = sigmoid(2 logit)`` (``logit``: the on head's ``(B, F, T)``),
        the off-screen one times ``1 - m``; both keep the mixture's phase. The log gains are taken
        in float32 as log-sigmoids: exact where m rounds to 0 or 1 (bf16 has no 0.9999).
        Returns ``(B, 2, 2, F, T)``."""
        x = 2.0 * logit.float()  # (B, F, T)
        log10_gains = torch.stack([F.logsigmoid(x), F.logsigmoid(-x)], dim=1) / math.log(10.0)  # (B, 2, F, T)
        log_mag = spec[:, None, LOG_MAG].float() + 40.0 * log10_gains / self.db_range  # (B, 2, F, T)
        phase = spec[:, None, PHASE].float().expand_as(log_mag)  # (B, 2, F, T)
        return torch.stack([log_mag, phase], dim=2)  # (B, 2, 2, F, T)


# -- the separation net --------------------------------------------------------------------------


class SeparationNet(nn.Module):
    """Audio-visual on/off-screen separation: ``forward(video, audio) -> (B, 2, 2, F, T)``.

    Owns a :class:`ShiftNet` (``self.shift``; None for ``audio-only``), initialised by
    :meth:`load_shift_weights`, and a :class:`SpectrogramUNet` (``self.unet``).
    """

    def __init__(self, config: SeparationNetConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.shift: ShiftNet | None = None
        tap_widths = None
        if cfg.uses_video:
            self.shift = ShiftNet(cfg.shift_net_config)
            if not cfg.train_shift:
                self.shift.requires_grad_(False)
            # Parts that separation never uses are frozen: no gradient, nothing for DDP to miss.
            self.shift.head.requires_grad_(False)  # the sync logit head
            if not cfg.shift_net_config.use_sound:
                self.shift.audio.requires_grad_(False)  # the audio branch of a vision-only net
            s = cfg.shift
            tap_widths = (s.stem_width, s.trunk_widths[0], s.trunk_widths[2])
        self.unet = SpectrogramUNet(cfg, tap_widths)

    def _check(self, video: Tensor | None, audio: Tensor) -> None:
        if audio.dim() != 3:
            raise ValueError(f"audio must be (B, C, N), got {tuple(audio.shape)}")
        if self.shift is None:
            return
        if video is None:
            raise ValueError(f"variant {self.config.variant!r} needs the video")
        if video.dim() != 5 or video.shape[0] != audio.shape[0]:
            raise ValueError(f"video must be (B, 3, T, H, W) with audio's batch size {audio.shape[0]}, "
                             f"got {tuple(video.shape)}")

    def video_features(self, video: Tensor, audio: Tensor) -> list[Tensor]:
        """The three taps ``(B, C_k, T_k)``: shift-net scale0, scale1, scale2 averaged over (H, W),
        with the variant's input changes (mono audio, a single frame)."""
        if self.shift is None:
            raise ValueError("the audio-only variant has no video features")
        spec = VARIANTS[self.config.variant]
        if spec.shift_audio == "mono":
            audio = audio.mean(dim=1, keepdim=True).expand_as(audio)  # (B, C, N), channels equal
        if spec.single_frame:
            mid = video.shape[2] // 2
            video = video[:, :, mid : mid + 1].expand_as(video)  # (B, 3, T, H, W), one frame
        feats = self.shift.features(video, audio)
        return [feats[k].mean(dim=(3, 4)) for k in ("scale0", "scale1", "scale2")]  # (B, C_k, T_k)

    def forward(self, video: Tensor | None, audio: Tensor) -> Tensor:
        """``video`` (B, 3, T, H, W) in [-1, 1] (None for audio-only), mixture ``audio`` (B, C, N)
        -> ``(B, 2, 2, F, T_spec)``: (on, off) x (normalised log magnitude, phase / pi)."""
        self._check(video, audio)
        spec = input_spectrogram(audio, self.config.spectrogram)  # (B, 2, F, T_spec)
        taps = self.video_features(video, audio) if self.shift is not None else None
        return self.unet(spec, taps)

    def load_shift_weights(self, state_dict: Mapping[str, Tensor]) -> list[str]:
        """Initialise the shift net from a :class:`ShiftNet` state dict (a shift checkpoint's
        ``model``). BN scales (gamma) the source lacks (the pretrained shift net has none) keep their
        init of 1, as the release; any other missing or unexpected key is an error, raised before
        anything is loaded. Returns the names left at their init."""
        if self.shift is None:
            raise ValueError("the audio-only variant has no shift net to initialise")
        own = self.shift.state_dict()
        bn_scales = {f"{name}.weight" for name, m in self.shift.named_modules()
                     if isinstance(m, BatchNorm) and m.weight is not None}
        missing = sorted(set(own) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(own))
        bad = [k for k in missing if k not in bn_scales]
        if bad or unexpected:
            raise ValueError(f"not a matching ShiftNet state dict: missing {bad[:5]}, unexpected "
                             f"{unexpected[:5]} ({len(bad)} and {len(unexpected)} in all)")
        for k in own:
            if k in state_dict and state_dict[k].shape != own[k].shape:
                raise ValueError(f"{k}: shape {tuple(state_dict[k].shape)} in the checkpoint, "
                                 f"{tuple(own[k].shape)} here (different shift-net widths?)")
        self.shift.load_state_dict(dict(state_dict), strict=False)
        return missing
