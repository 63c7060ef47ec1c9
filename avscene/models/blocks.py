"""Building blocks of the shift network, written once for 1D (audio) and 3D (video) tensors.

Every block takes ``dim`` (1 or 3) and works on channels-first tensors ``(B, C, *spatial)``:
``(B, C, N)`` for audio, ``(B, C, T, H, W)`` for video. A stride-``s`` conv maps length ``n`` to
``ceil(n / s)`` under either of two paddings (:data:`PADDINGS`):

* ``"symmetric"`` (avscene's presets): ``kernel // 2`` on both sides (all kernels are odd), so
  output ``i`` is centred on input ``s * i``, consistent with the subsampling shortcut ``x[::s]``.
* ``"tf-same"`` (networks imported from the release): TensorFlow's ``SAME``, which puts the odd
  sample of the total padding ``(out - 1) * s + k - n`` at the end. It differs from symmetric only
  for strided convs and pools, and it is what the release's weights were trained with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
#: How strided convolutions and pools are padded (see the module docstring).
PADDINGS = ("symmetric", "tf-same")
#: How the audio features are pooled to the video rate (see :func:`fractional_pool_bounds`).
FRACTIONAL_POOLS = ("graham", "tf-release")


def _ntuple(value: int | Sequence[int], dim: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * dim
    value = tuple(int(v) for v in value)
    if len(value) != dim:
        raise ValueError(f"expected {dim} values, got {value}")
    return value


def tf_same_pads(sizes: Sequence[int], kernel: Sequence[int], stride: Sequence[int]) -> list[int]:
    """``F.pad`` amounts (last axis first) of TF ``SAME`` padding for input ``sizes``: the total
    ``max((ceil(n / s) - 1) * s + k - n, 0)``, its larger half at the end."""
    pads: list[int] = []
    for n, k, s in reversed(list(zip(sizes, kernel, stride))):
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return pads


class _TFSamePadding:
    """Mixin for ``nn.ConvNd``: pad as TF ``SAME`` for each input size, then convolve unpadded.
    Parameters keep the plain conv's names, so weights move between the two paddings."""

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, *n) -> (B, C_out, *ceil(n / s))
        pads = tf_same_pads(x.shape[2:], self.kernel_size, self.stride)
        return super().forward(F.pad(x, pads) if any(pads) else x)


_TF_SAME_CONV = {dim: type(f"TFSame{cls.__name__}", (_TFSamePadding, cls), {}) for dim, cls in _CONV.items()}


def conv(
    dim: int,
    in_channels: int,
    out_channels: int,
    kernel: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    *,
    bias: bool,
    padding: str = "symmetric",
) -> nn.Module:
    """``dim``-D convolution padded "same" (odd kernels only): symmetric ``kernel // 2``, or TF's
    ``SAME`` where it differs (strided convs, ``padding="tf-same"``)."""
    kernel, stride = _ntuple(kernel, dim), _ntuple(stride, dim)
    if any(k % 2 == 0 for k in kernel):
        raise ValueError(f"kernels must be odd for same padding, got {kernel}")
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    if padding == "tf-same" and any(s != 1 for s in stride):
        return _TF_SAME_CONV[dim](in_channels, out_channels, kernel, stride=stride, padding=0, bias=bias)
    return _CONV[dim](in_channels, out_channels, kernel, stride=stride, padding=tuple(k // 2 for k in kernel),
                      bias=bias)


class BatchNorm(nn.Module):
    """Batch norm over channel dim 1 of any ``(B, C, *)`` tensor, with β always and γ optional.

    The released shift net has ``scale=False`` (β only); the separation and action configs add γ.
    ``momentum`` is PyTorch's (weight of the new batch), i.e. ``1 - decay`` in TF terms.
    """

    def __init__(self, channels: int, *, eps: float, momentum: float, scale: bool) -> None:
        super().__init__()
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(channels)) if scale else None
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        # A fixed γ = 1 where the net has none: CUDA's batch-norm backward computes β's gradient only
        # when γ is given (with γ None it fails); x * 1 is exact, so outputs match γ None bit for bit.
        self.register_buffer("unit_scale", None if scale else torch.ones(channels), persistent=False)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, *) -> (B, C, *)
        if self.training:
            self.num_batches_tracked.add_(1)
        scale = self.unit_scale if self.weight is None else self.weight
        return F.batch_norm(
            x, self.running_mean, self.running_var, scale, self.bias,
            training=self.training, momentum=self.momentum, eps=self.eps,
        )

    def extra_repr(self) -> str:
        return (f"{self.bias.shape[0]}, eps={self.eps}, momentum={self.momentum}, "
                f"scale={self.weight is not None}")


@dataclass(frozen=True)
class BNSettings:
    """Settings shared by every :class:`BatchNorm` of a network; call it to build one."""

    eps: float = 1e-3
    momentum: float = 0.01
    scale: bool = False

    def __call__(self, channels: int) -> BatchNorm:
        return BatchNorm(channels, eps=self.eps, momentum=self.momentum, scale=self.scale)


class ConvUnit(nn.Sequential):
    """conv (no bias) -> BatchNorm -> ReLU, in ``dim`` dimensions."""

    def __init__(
        self,
        dim: int,
        in_channels: int,
        out_channels: int,
        kernel: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        *,
        bn: BNSettings,
        padding: str = "symmetric",
    ) -> None:
        super().__init__()
        self.conv = conv(dim, in_channels, out_channels, kernel, stride, bias=False, padding=padding)
        self.bn = bn(out_channels)
        self.relu = nn.ReLU(inplace=True)


class Subsample(nn.Module):
    """``x[:, :, ::s1, ::s2, ...]``: the release's 1x1 max-pool-with-stride shortcut."""

    def __init__(self, stride: Sequence[int]) -> None:
        super().__init__()
        self.stride = tuple(stride)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, *n) -> (B, C, *ceil(n / s))
        return x[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in self.stride)]

    def extra_repr(self) -> str:
        return f"stride={self.stride}"


class ResBlock(nn.Module):
    """The release's residual block (``block2``/``block3``), with a post-addition BN.

    ``out = ReLU(BN(c2(c1(x)) + shortcut(x)))`` where ``c1`` is a conv unit with the stride, ``c2``
    a conv of the same kernel with bias and no BN/ReLU, and the shortcut is the identity (same
    channels, stride 1), plain subsampling (same channels, stride > 1), or a strided 1x1 conv + BN
    (channels change).
    """

    def __init__(
        self,
        dim: int,
        in_channels: int,
        out_channels: int,
        kernel: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        *,
        bn: BNSettings,
        padding: str = "symmetric",
    ) -> None:
        super().__init__()
        stride = _ntuple(stride, dim)
        if in_channels != out_channels:  # a 1x1 conv needs no padding under either rule
            self.shortcut = nn.Sequential(conv(dim, in_channels, out_channels, 1, stride, bias=False),
                                          bn(out_channels))
        elif any(s != 1 for s in stride):
            self.shortcut = Subsample(stride)
        else:
            self.shortcut = nn.Identity()
        self.c1 = ConvUnit(dim, in_channels, out_channels, kernel, stride, bn=bn, padding=padding)
        self.c2 = conv(dim, out_channels, out_channels, kernel, bias=True)
        self.bn = bn(out_channels)

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, *n) -> (B, C_out, *ceil(n / stride))
        y = self.c2(self.c1(x)) + self.shortcut(x)  # (B, C_out, *n')
        return F.relu(self.bn(y))  # (B, C_out, *n')


def fractional_pool_bounds(
    n_in: int, n_out: int, *, randomize: bool, generator: torch.Generator | None = None
) -> list[int]:
    """Boundaries ``b_0 = 0 < b_1 < ... < b_{n_out} = n_in`` of non-overlapping pooling regions.

    Graham's "pseudo-random" fractional pooling with ``alpha = n_in / n_out``:
    ``b_i = ceil(alpha * (i + u)) - ceil(alpha * u)``, so every region is ``floor(alpha)`` or
    ``ceil(alpha)`` wide (2 or 3 for the paper's 86 -> 32) and every boundary lies within one step of
    ``alpha * i``. ``u`` is uniform in (0, 1) when ``randomize`` (training) and 1/2 otherwise
    (deterministic evaluation). Computed in exact rational arithmetic.
    """
    if not 1 <= n_out <= n_in:
        raise ValueError(
            f"fractional pooling needs 1 <= output length <= input length, got {n_in} -> {n_out}; "
            "the audio is too short for the video (pass about config.n_samples samples)")
    alpha = Fraction(n_in, n_out)
    if randomize:
        k = int(torch.randint(0, 1 << 20, (), generator=generator, device="cpu"))
        u = Fraction(2 * k + 1, 1 << 21)
    else:
        u = Fraction(1, 2)
    offset = math.ceil(alpha * u)
    return [math.ceil(alpha * (i + u)) - offset for i in range(n_out)] + [n_in]


def _philox4x32(key: tuple[int, int], counter: tuple[int, int, int, int]) -> list[int]:
    """One block of the Philox4x32-10 counter-based generator (Salmon et al. 2011), as TF's."""
    mask = 0xFFFFFFFF
    k0, k1 = key
    c = list(counter)
    for _ in range(10):
        p0, p1 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]
        c = [((p1 >> 32) ^ c[1] ^ k0) & mask, p1 & mask, ((p0 >> 32) ^ c[3] ^ k1) & mask, p0 & mask]
        k0, k1 = (k0 + 0x9E3779B9) & mask, (k1 + 0xBB67AE85) & mask
    return c


def _tf_first_uniform(seed: int, seed2: int) -> float:
    """The first ``SimplePhilox::RandDouble()`` of a TF generator seeded ``(seed, seed2)``: 52
    mantissa bits from the first two 32-bit outputs, in [0, 1)."""
    x = _philox4x32((seed & 0xFFFFFFFF, seed >> 32), (0, 0, seed2 & 0xFFFFFFFF, seed2 >> 32))
    mantissa = ((x[0] & 0xFFFFF) << 32) | x[1]
    return mantissa / float(1 << 52)


#: The release pools at test time with ``tf.nn.fractional_max_pool(..., pseudo_random=True,
#: deterministic=True, seed=1, seed2=2)``: TF then draws one u from a Philox generator seeded (1, 2)
#: on every call, so the regions depend only on the lengths. This is that draw (0.25117...).
TF_RELEASE_POOL_U = _tf_first_uniform(1, 2)


def tf_release_pool_bounds(n_in: int, n_out: int) -> list[int]:
    """Region boundaries of the release's deterministic test-time fractional max-pool (TF's
    ``GeneratePseudoRandomSequence`` with u = :data:`TF_RELEASE_POOL_U` scaled to its admissible
    range): ``b_i = ceil(alpha (i + u)) - 1`` for ``0 < i < n_out`` with ``alpha = n_in / n_out``,
    ``b_0 = 0``, ``b_n = n_in``; even regions when ``n_out`` divides ``n_in``. Checked against
    TensorFlow's op in ``tests/test_tf_import.py``."""
    if not 1 <= n_out <= n_in:
        raise ValueError(f"fractional pooling needs 1 <= output length <= input length, got {n_in} -> {n_out}")
    if n_in % n_out == 0:
        return [i * (n_in // n_out) for i in range(n_out + 1)]
    alpha, k = n_in / n_out, n_in // n_out
    u = TF_RELEASE_POOL_U * min((k + 2) / alpha - 1, (n_in + 1 - k) / alpha - (n_out - 1))
    return [0] + [math.ceil(alpha * (i + u)) - 1 for i in range(1, n_out)] + [n_in]


def tf_pool_output_length(n_in: int, n_out: int) -> int:
    """Output length of the release's pool for ``n_in`` audio steps and ``n_out`` video steps: TF
    divides by the float32 ratio ``(n_in - 1) / n_out``, which gives ``n_out`` unless
    ``n_out >= n_in - 1``."""
    ratio = np.float32((n_in - 1) / n_out)
    return int(np.floor(np.float32(n_in) / ratio))


class FractionalMaxPool1d(nn.Module):
    """Max pooling along the last axis to a given length with non-overlapping 2-3 wide regions.

    ``mode="graham"``: boundaries from :func:`fractional_pool_bounds`, random (shared by the batch,
    drawn from torch's global RNG) in training mode, fixed in eval mode, so evaluation is
    deterministic. ``mode="tf-release"``: in eval mode the release's fixed regions
    (:func:`tf_release_pool_bounds`; the lengths must be ones the release's graph accepts), in
    training mode random ones as above (the release also pooled randomly in training).
    """

    def __init__(self, mode: str = "graham") -> None:
        super().__init__()
        if mode not in FRACTIONAL_POOLS:
            raise ValueError(f"fractional pool mode must be one of {FRACTIONAL_POOLS}, got {mode!r}")
        self.mode = mode

    def _bounds(self, n_in: int, n_out: int) -> list[int]:
        if self.mode == "tf-release" and not self.training:
            if tf_pool_output_length(n_in, n_out) != n_out:
                raise ValueError(f"the release's pooling turns {n_in} audio steps into "
                                 f"{tf_pool_output_length(n_in, n_out)}, not the {n_out} video steps: "
                                 "give more audio per video frame")
            return tf_release_pool_bounds(n_in, n_out)
        return fractional_pool_bounds(n_in, n_out, randomize=self.training)

    def forward(self, x: Tensor, n_out: int) -> Tensor:  # (B, C, n_in) -> (B, C, n_out)
        bounds = self._bounds(x.shape[-1], n_out)
        width = max(b - a for a, b in zip(bounds[:-1], bounds[1:]))
        # Pad short regions by repeating their last element: duplicates don't change a max.
        idx = [[min(a + j, b - 1) for j in range(width)] for a, b in zip(bounds[:-1], bounds[1:])]
        idx = torch.tensor(idx, dtype=torch.long, device=x.device)  # (n_out, width)
        return x[..., idx].amax(dim=-1)  # (B, C, n_out)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


def init_weights(module: nn.Module) -> None:
    """He init (normal, fan-in, ReLU gain) for every conv, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
