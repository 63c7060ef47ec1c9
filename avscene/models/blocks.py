"""Building blocks of the shift network, written once for 1D (audio) and 3D (video) tensors.

Every block takes ``dim`` (1 or 3) and works on channels-first tensors ``(B, C, *spatial)``:
``(B, C, N)`` for audio, ``(B, C, T, H, W)`` for video. Convolutions are padded symmetrically with
``kernel // 2`` (all kernels are odd), so a stride-``s`` conv maps length ``n`` to ``ceil(n / s)``,
the same sizes as TF ``SAME`` padding (see the departures list in :mod:`avscene.models.shift_net`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def _ntuple(value: int | Sequence[int], dim: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * dim
    value = tuple(int(v) for v in value)
    if len(value) != dim:
        raise ValueError(f"expected {dim} values, got {value}")
    return value


def conv(
    dim: int,
    in_channels: int,
    out_channels: int,
    kernel: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    *,
    bias: bool,
) -> nn.Module:
    """``dim``-D convolution with symmetric "same" padding ``kernel // 2`` (odd kernels only)."""
    kernel = _ntuple(kernel, dim)
    if any(k % 2 == 0 for k in kernel):
        raise ValueError(f"kernels must be odd for symmetric same padding, got {kernel}")
    return _CONV[dim](
        in_channels,
        out_channels,
        kernel,
        stride=_ntuple(stride, dim),
        padding=tuple(k // 2 for k in kernel),
        bias=bias,
    )


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

    def forward(self, x: Tensor) -> Tensor:  # (B, C, *) -> (B, C, *)
        if self.training:
            self.num_batches_tracked.add_(1)
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias,
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
    ) -> None:
        super().__init__()
        self.conv = conv(dim, in_channels, out_channels, kernel, stride, bias=False)
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
    ) -> None:
        super().__init__()
        stride = _ntuple(stride, dim)
        if in_channels != out_channels:
            self.shortcut = nn.Sequential(conv(dim, in_channels, out_channels, 1, stride, bias=False),
                                          bn(out_channels))
        elif any(s != 1 for s in stride):
            self.shortcut = Subsample(stride)
        else:
            self.shortcut = nn.Identity()
        self.c1 = ConvUnit(dim, in_channels, out_channels, kernel, stride, bn=bn)
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


class FractionalMaxPool1d(nn.Module):
    """Max pooling along the last axis to a given length with non-overlapping 2-3 wide regions.

    Region boundaries come from :func:`fractional_pool_bounds`: random (shared by the batch, drawn
    from torch's global RNG) in training mode, fixed in eval mode, so evaluation is deterministic.
    """

    def forward(self, x: Tensor, n_out: int) -> Tensor:  # (B, C, n_in) -> (B, C, n_out)
        bounds = fractional_pool_bounds(x.shape[-1], n_out, randomize=self.training)
        width = max(b - a for a, b in zip(bounds[:-1], bounds[1:]))
        # Pad short regions by repeating their last element: duplicates don't change a max.
        idx = [[min(a + j, b - 1) for j in range(width)] for a, b in zip(bounds[:-1], bounds[1:])]
        idx = torch.tensor(idx, dtype=torch.long, device=x.device)  # (n_out, width)
        return x[..., idx].amax(dim=-1)  # (B, C, n_out)


def init_weights(module: nn.Module) -> None:
    """He init (normal, fan-in, ReLU gain) for every conv, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
