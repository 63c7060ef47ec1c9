"""Which TensorFlow variable of the release becomes which avscene parameter, and how.

The release builds its graphs with tf-slim (``shift_net.make_net``, ``sourcesep.make_net``), so
its variable names follow slim's scopes::

    sf/conv1_1/weights                   conv unit (no bias)          [k, 1, in, out]
    sf/conv1_1/BatchNorm/beta ...        its BN (beta, gamma?, moving_mean, moving_variance)
    im/conv2_1_1/... im/conv2_1_2/{weights,biases}  im/conv2_1_short/...  im/conv2_1_bn/...
                                         residual block: c1, c2 (bias, no BN), 1x1 shortcut,
                                         post-addition BN
    im/merge1, im/merge2, im/merge_block_bn   early fusion
    joint/logits/{weights,biases}        the 1x1x1 sync head (also the CAM)
    gen/conv1..9, gen/deconv1..8         the separation U-Net (BN after each)
    gen/fg, gen/bg                       its two heads (bias, no BN)

Kernels are channels-last in TF and channels-first here; the U-Net's TF tensors are (B, T, F, C)
where avscene's are (B, C, F, T), so its kernels also swap their two spatial axes. Everything else
a checkpoint holds is either mapped here or ignored for a stated reason (:data:`IGNORED`).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable

import numpy as np

#: Variables a release checkpoint holds that no avscene parameter takes, with the reason.
IGNORED: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"^global_step$"), "the training step counter (kept in the model card as the iterations)"),
    (re.compile(r"/(Momentum|Adam|Adam_1)$"), "optimizer slot (SGD momentum or Adam moments): training state"),
    (re.compile(r"^beta[12]_power$"), "Adam's bias-correction state: training state"),
    (re.compile(r"/renorm_(mean|stddev)(_weight)?$"),
     "batch renormalization's training-time statistics; inference uses moving_mean and moving_variance"),
    (re.compile(r"^discrim/"), "the spectrogram GAN discriminator (gan_weight 0 in every released config)"),
    (re.compile(r"cache"), "accumulator of the release's multi-pass optimizer: training state"),
)


def ignored_reason(name: str) -> str | None:
    """Why variable ``name`` is not imported, or None if it should be."""
    for pattern, reason in IGNORED:
        if pattern.search(name):
            return reason
    return None


# -- weight layouts ------------------------------------------------------------------------------


def _conv3d(w: np.ndarray) -> np.ndarray:  # [kt, kh, kw, in, out] -> [out, in, kt, kh, kw]
    return w.transpose(4, 3, 0, 1, 2)


def _conv1d(w: np.ndarray) -> np.ndarray:  # [k, 1, in, out] (a [k, 1] conv2d) -> [out, in, k]
    if w.ndim != 4 or w.shape[1] != 1:
        raise ValueError(f"expected a [k, 1, in, out] kernel, got shape {w.shape}")
    return w[:, 0].transpose(2, 1, 0)


def _spectrogram_kernel(w: np.ndarray) -> np.ndarray:
    # conv [kT, kF, in, out] -> [out, in, kF, kT]; transposed conv [kT, kF, out, in] -> [in, out, kF, kT]
    return w.transpose(3, 2, 1, 0)


def _same(w: np.ndarray) -> np.ndarray:
    return w


@dataclasses.dataclass(frozen=True)
class Entry:
    """avscene parameter ``key`` is ``convert(*tensors)`` of the TF variables ``sources``
    (concatenated on ``concat_dim`` when there are several)."""

    key: str
    sources: tuple[str, ...]
    convert: Callable[[np.ndarray], np.ndarray] = _same
    concat_dim: int = 0


def _bn(key: str, scope: str, scale: bool) -> list[Entry]:
    entries = [Entry(f"{key}.bias", (f"{scope}/beta",)),
               Entry(f"{key}.running_mean", (f"{scope}/moving_mean",)),
               Entry(f"{key}.running_var", (f"{scope}/moving_variance",))]
    if scale:
        entries.append(Entry(f"{key}.weight", (f"{scope}/gamma",)))
    return entries


def _conv_unit(key: str, scope: str, convert: Callable, scale: bool) -> list[Entry]:
    return [Entry(f"{key}.conv.weight", (f"{scope}/weights",), convert), *_bn(f"{key}.bn", f"{scope}/BatchNorm", scale)]


def _res_block(key: str, scope: str, convert: Callable, scale: bool, conv_shortcut: bool) -> list[Entry]:
    entries = [*_conv_unit(f"{key}.c1", f"{scope}_1", convert, scale),
               Entry(f"{key}.c2.weight", (f"{scope}_2/weights",), convert),
               Entry(f"{key}.c2.bias", (f"{scope}_2/biases",)),
               *_bn(f"{key}.bn", f"{scope}_bn", scale)]
    if conv_shortcut:
        entries += [Entry(f"{key}.shortcut.0.weight", (f"{scope}_short/weights",), convert),
                    *_bn(f"{key}.shortcut.1", f"{scope}_short/BatchNorm", scale)]
    return entries


def shift_net_entries(*, scale: bool, prefix: str = "") -> list[Entry]:
    """The release's shift net (``shift_net.make_net``) -> :class:`avscene.models.ShiftNet`
    (``prefix``: where the ShiftNet sits in a bigger model, e.g. ``"shift."``). ``scale``: the BNs
    have gamma (the separation model's do, the pretrained shift net's do not)."""
    p = prefix
    audio = [*_conv_unit(f"{p}audio.frontend.conv1_1", "sf/conv1_1", _conv1d, scale),
             *_res_block(f"{p}audio.frontend.conv2_1", "sf/conv2_1", _conv1d, scale, conv_shortcut=True),
             *_res_block(f"{p}audio.frontend.conv3_1", "sf/conv3_1", _conv1d, scale, conv_shortcut=False),
             *_res_block(f"{p}audio.frontend.conv4_1", "sf/conv4_1", _conv1d, scale, conv_shortcut=True),
             *_conv_unit(f"{p}audio.conv5_1", "sf/conv5_1", _conv1d, scale)]
    video = [*_conv_unit(f"{p}stem.conv1", "im/conv1", _conv3d, scale),
             *_res_block(f"{p}stem.conv2_1", "im/conv2_1", _conv3d, scale, conv_shortcut=False),
             *_res_block(f"{p}stem.conv2_2", "im/conv2_2", _conv3d, scale, conv_shortcut=False),
             *_conv_unit(f"{p}merge.merge1", "im/merge1", _conv3d, scale),
             Entry(f"{p}merge.merge2.weight", ("im/merge2/weights",), _conv3d),
             Entry(f"{p}merge.merge2.bias", ("im/merge2/biases",)),
             *_bn(f"{p}merge.bn", "im/merge_block_bn", scale)]
    for stage, shortcut in ((3, False), (4, True), (5, True)):
        for block in (1, 2):
            video += _res_block(f"{p}stage{stage}.{block - 1}", f"im/conv{stage}_{block}", _conv3d, scale,
                                conv_shortcut=shortcut and block == 1)
    head = [Entry(f"{p}head.weight", ("joint/logits/weights",), _conv3d),
            Entry(f"{p}head.bias", ("joint/logits/biases",))]
    return audio + video + head


def unet_entries(*, n_layers: int = 9, prefix: str = "unet.") -> list[Entry]:
    """The release's separation U-Net (``sourcesep.make_net``) -> :class:`SpectrogramUNet`: encoder
    ``gen/conv1..9``, decoder ``gen/deconv1..8``, and the two heads ``gen/fg``, ``gen/bg`` stacked
    as one 4-channel transposed conv (fg's [log_mag, phase], then bg's)."""
    entries: list[Entry] = []
    for i in range(n_layers):
        entries += _conv_unit(f"{prefix}down.{i}", f"gen/conv{i + 1}", _spectrogram_kernel, scale=True)
    for k in range(n_layers - 1):
        entries += _conv_unit(f"{prefix}up.{k}", f"gen/deconv{k + 1}", _spectrogram_kernel, scale=True)
    entries += [Entry(f"{prefix}head.conv.weight", ("gen/fg/weights", "gen/bg/weights"), _spectrogram_kernel, 1),
                Entry(f"{prefix}head.conv.bias", ("gen/fg/biases", "gen/bg/biases"))]
    return entries
