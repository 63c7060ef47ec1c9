"""A TensorFlow reference of the graphs of the authors' TF1 release (github.com/andrewowens/multisensory).

The release's networks written again in ``tf.compat.v1`` graph mode with plain ``variable_scope`` /
``get_variable`` / ``tf.nn`` ops (no tf-slim, no Keras layers), with the variable scopes, names,
shapes and ops of the release, at inference (``train=False``). It lets tests write TF V2
checkpoints laid out like the released ones (``nets/shift/net.tf-650000``, ``nets/cam/net.tf-675000``,
``nets/sep/full/net.tf-160000``, ``nets/sep/unet-pit/net.tf-160000``) with random weights, together
with the outputs the release's graph gives for them, to check that avscene loads them exactly.

Kinds (``KINDS``):

* ``"shift"``: ``shift_params.shift_v1`` (``shift_net.make_net``), no BN gamma.
* ``"cam"``: ``shift_params.cam_v1``, the same with ``im/conv5_1`` of spatial stride 1.
* ``"sep"``: ``sep_params.full`` (``sourcesep.make_net``, net_style ``'full'``): the U-Net with the
  shift net inside (three feature taps); ``bn_scale=True`` so every BN has gamma.
* ``"unet-pit"``: ``sep_params.unet_pit`` (net_style ``'no-im'``): the U-Net alone.

``width_div`` divides every channel width (not the two output channels of the U-Net heads) and keeps
every variable name, so tests can run small; ``width_div=1`` is the release.

Release facts reproduced here (file names refer to the release's ``src/``):

* slim naming: a conv with a normalizer has ``<scope>/weights`` and ``<scope>/BatchNorm/{beta,
  gamma?, moving_mean, moving_variance}``, a conv without one ``<scope>/weights`` and
  ``<scope>/biases``; a standalone ``slim.batch_norm(scope=s)`` has ``s/{beta, gamma?, ...}``.
  Weights are ``[kh, kw, in, out]`` (2-D), ``[kt, kh, kw, in, out]`` (3-D), ``[kh, kw, out, in]``
  (``conv2d_transpose``).
* Batch renormalization (``renorm=True``, training only) adds ``renorm_mean``, ``renorm_stddev`` and,
  in the TF 1.x releases of 2017-2018 (up to about 1.12), the scalars ``renorm_mean_weight`` and
  ``renorm_stddev_weight``: on the standalone BNs of the shift net (``*_bn``, ``im/merge_block_bn``)
  and on every BN of the U-Net (``unet_arg_scope``). The conv-attached BNs of the shift net are
  ``renorm=False`` (``arg_scope_2d/3d`` copy the BN params with ``renorm=False``). They are unused at
  inference. ``renorm_weights`` (default True) chooses whether the two scalars are made.
* BN at inference: ``(x - moving_mean) / sqrt(moving_variance + eps) * gamma + beta`` computed as
  ``tf.nn.batch_normalization``; eps 1e-3 in the shift net, 1e-5 in the U-Net.
* A training checkpoint also holds ``global_step`` (int64) and the optimizer's variables:
  ``<var>/Momentum`` (shift/cam, ``MomentumOptimizer``), ``<var>/Adam``, ``<var>/Adam_1``,
  ``beta1_power``, ``beta2_power`` (sep/unet-pit, ``AdamOptimizer``), for every trainable variable
  that gets a gradient. In the sep model ``joint/logits`` does not reach the loss, so TF1's
  ``apply_gradients`` (which drops variables whose gradient is None) makes no Adam slots for it.

API: :data:`KINDS`, :func:`variable_shapes`, :func:`make_reference`.
"""

from __future__ import annotations

import math
import os
import zlib
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Plain Eigen kernels (no oneDNN): no log line at import and the usual TF CPU numerics.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")
v1 = tf.compat.v1

KINDS = ("shift", "cam", "sep", "unet-pit")

# Paper/release input sizes: shift_v1/cam_v1 (4.2 s) and sep_params.base (VidDur = 2.135 s).
PAPER_SIZES = {
    "shift": dict(n_frames=125, crop=224, n_samples=87588),
    "cam": dict(n_frames=125, crop=224, n_samples=87588),
    "sep": dict(n_frames=63, crop=224, n_samples=44144),
    "unet-pit": dict(n_frames=63, crop=224, n_samples=44144),
}
# Iteration of the released checkpoint of each kind (its ``global_step``).
GLOBAL_STEPS = {"shift": 650000, "cam": 675000, "sep": 160000, "unet-pit": 160000}

# STFT of the separation model (sep_params.base / soundrep): 64 ms and 16 ms at 21 kHz, FFT 2048.
FRAME_LENGTH, FRAME_STEP, FFT_LENGTH = 1344, 336, 2048
SPEC_MIN, SPEC_MAX, FREQ_LEN = -100.0, 80.0, 1024
SHIFT_BN_EPS, UNET_BN_EPS = 1e-3, 1e-5


# --------------------------------------------------------------------------------------------
# layers (the slim layers the release uses, inference only)


class _Net:
    """Builds one release graph; ``bn_scale`` (gamma on every BN) and ``width_div`` are fixed."""

    def __init__(self, *, bn_scale: bool, width_div: int, renorm_weights: bool) -> None:
        self.bn_scale = bn_scale
        self.d = int(width_div)
        self.renorm_weights = renorm_weights
        self.frac_pool_rows = None  # row pooling sequence of the shift net's fractional max-pool
        self.taps = {}  # scope -> output of each conv unit / block / BN, for the self-check

    def w(self, n: int) -> int:
        """A release channel width divided by ``width_div``."""
        if n % self.d:
            raise ValueError(f"width_div={self.d} does not divide the width {n}")
        return n // self.d

    @staticmethod
    def _get(name, shape, trainable=True, dtype=tf.float32):
        return v1.get_variable(name, shape=list(shape), dtype=dtype, trainable=trainable,
                               initializer=v1.zeros_initializer())

    def batch_norm(self, x, scope, *, eps, renorm, scale=None, relu=False):
        """``slim.batch_norm(x, scope=scope)`` at inference (is_training=False)."""
        scale = self.bn_scale if scale is None else scale
        c = x.shape[-1]
        with v1.variable_scope(scope):
            beta = self._get("beta", [c])
            gamma = self._get("gamma", [c]) if scale else None
            mean = self._get("moving_mean", [c], trainable=False)
            var = self._get("moving_variance", [c], trainable=False)
            if renorm:  # tf.layers.BatchNormalization(renorm=True): used in training only
                self._get("renorm_mean", [c], trainable=False)
                if self.renorm_weights:
                    self._get("renorm_mean_weight", [], trainable=False)
                self._get("renorm_stddev", [c], trainable=False)
                if self.renorm_weights:
                    self._get("renorm_stddev_weight", [], trainable=False)
        y = tf.nn.batch_normalization(x, mean, var, beta, gamma, eps)
        y = tf.nn.relu(y) if relu else y
        outer = v1.get_variable_scope().name
        self.taps[f"{outer}/{scope}" if outer else scope] = y
        return y

    def conv(self, x, n_out, kernel, scope, *, stride=1, bn=True, relu=True, eps=SHIFT_BN_EPS,
             renorm=False, padding="SAME"):
        """``slim.conv2d`` (4-D input) or ``slim.convolution`` (5-D input): conv, then either BN
        (no biases) or biases, then the optional ReLU."""
        nd = len(x.shape) - 2
        kernel = [kernel] * nd if np.ndim(kernel) == 0 else list(kernel)
        stride = [stride] * nd if np.ndim(stride) == 0 else list(stride)
        with v1.variable_scope(scope):
            w = self._get("weights", kernel + [x.shape[-1], n_out])
            op = tf.nn.conv2d if nd == 2 else tf.nn.conv3d
            y = op(x, w, strides=[1] + stride + [1], padding=padding)
            if bn:
                y = self.batch_norm(y, "BatchNorm", eps=eps, renorm=renorm)
            else:
                y = tf.nn.bias_add(y, self._get("biases", [n_out]))
        return tf.nn.relu(y) if relu else y

    def deconv(self, x, n_out, kernel, scope, *, stride, bn=True):
        """``slim.conv2d_transpose`` with padding SAME (output = input * stride), in the U-Net's
        arg scope: BN (eps 1e-5, renorm) or biases; no activation here (the release passes
        ``activation_fn=None``)."""
        stride = [stride] * 2 if np.ndim(stride) == 0 else list(stride)
        b, h, wd, c = x.shape
        with v1.variable_scope(scope):
            w = self._get("weights", [kernel, kernel, n_out, c])
            y = tf.nn.conv2d_transpose(x, w, [b, h * stride[0], wd * stride[1], n_out],
                                       strides=[1] + stride + [1], padding="SAME")
            if bn:
                y = self.batch_norm(y, "BatchNorm", eps=UNET_BN_EPS, renorm=True)
            else:
                y = tf.nn.bias_add(y, self._get("biases", [n_out]))
        return y

    # ------------------------------------------------------------------------------------------
    # shift net (shift_net.py)

    def block2(self, x, nf, dim, scope, stride):
        """``shift_net.block2``: 1-D residual block written with [k, 1] 2-D convs."""
        short = x
        if stride != 1 and x.shape[-1] == nf:
            short = tf.nn.max_pool2d(short, [1, 1], [1] + list(stride) + [1], "VALID")
        elif stride != 1:
            short = self.conv(x, nf, [1, 1], f"{scope}_short", stride=stride, relu=False)
        net = self.conv(x, nf, dim, f"{scope}_1", stride=stride)
        net = self.conv(net, nf, dim, f"{scope}_2", bn=False, relu=False)
        return self.batch_norm(short + net, f"{scope}_bn", eps=SHIFT_BN_EPS, renorm=True, relu=True)

    def block3(self, x, nf, dim, scope, stride=1):
        """``shift_net.block3``: 3-D residual block (no bottleneck, rate 1, use_bn)."""
        short = x
        st = [stride] * 3 if np.ndim(stride) == 0 else list(stride)
        if stride != 1 and x.shape[-1] == nf:
            short = tf.nn.max_pool3d(short, [1, 1, 1, 1, 1], [1] + st + [1], "SAME")
        elif stride != 1 or x.shape[-1] != nf:
            short = self.conv(x, nf, [1, 1, 1], f"{scope}_short", stride=st, relu=False)
        net = self.conv(x, nf, dim, f"{scope}_1", stride=st)
        net = self.conv(net, nf, dim, f"{scope}_2", bn=False, relu=False)
        return self.batch_norm(short + net, f"{scope}_bn", eps=SHIFT_BN_EPS, renorm=True, relu=True)

    def merge(self, sf_net, im_net):
        """``shift_net.merge`` with train=False: deterministic fractional max-pool of the audio
        to the video's time length, ``sf/conv5_1``, tile, concat, residual merge block."""
        t_a, t_v = sf_net.shape[1], im_net.shape[1]
        ratio = float(t_a - 1) / t_v
        pooled, rows, _ = v1.nn.fractional_max_pool(
            sf_net, [1, ratio, 1, 1], pseudo_random=True, deterministic=True, seed=1, seed2=2)
        self.frac_pool_rows = rows
        sf_net = self.conv(pooled, self.w(128), [3, pooled.shape[2]], "sf/conv5_1")
        sf_net = sf_net[:, :, pooled.shape[2] // 2]
        sf_net = sf_net[:, :, None, None, :]
        sf_net = tf.tile(sf_net, [1, 1, im_net.shape[2], im_net.shape[3], 1])
        net = tf.concat([im_net, sf_net], 4)
        k = self.w(64)
        short = tf.concat([net[..., :k], net[..., -k:]], 4)
        net = self.conv(net, self.w(512), [1, 1, 1], "im/merge1")
        net = self.conv(net, self.w(128), [1, 1, 1], "im/merge2", bn=False, relu=False)
        return self.batch_norm(net + short, "im/merge_block_bn", eps=SHIFT_BN_EPS, renorm=True,
                               relu=True)

    def shift_net(self, ims, samples, *, cam: bool):
        """``shift_net.make_net(ims, samples, pr, train=False)``; ``ims`` uint8 (B, T, H, W, 3),
        ``samples`` float32 (B, N, 2)."""
        w = self.w
        # sound subnetwork
        sf = tf.sign(samples) * (tf.math.log(1 + 255.0 * tf.abs(samples)) / tf.math.log(1 + 255.0))
        sf = sf[:, :, None, :]
        sf = self.conv(sf, w(64), [65, 1], "sf/conv1_1", stride=4)
        sf = tf.nn.max_pool2d(sf, [4, 1], [4, 1], "VALID")
        sf = self.block2(sf, w(128), [15, 1], "sf/conv2_1", stride=[4, 1])
        sf = self.block2(sf, w(128), [15, 1], "sf/conv3_1", stride=[4, 1])
        sf = self.block2(sf, w(256), [15, 1], "sf/conv4_1", stride=[4, 1])
        # image subnetwork
        scales = []
        im = -1.0 + (2.0 / 255) * tf.cast(ims, tf.float32)
        im = self.conv(im, w(64), [5, 7, 7], "im/conv1", stride=2)
        im = tf.nn.max_pool3d(im, [1, 1, 3, 3, 1], [1, 1, 2, 2, 1], "SAME")
        im = self.block3(im, w(64), [3, 3, 3], "im/conv2_1", stride=1)
        im = self.block3(im, w(64), [3, 3, 3], "im/conv2_2", stride=2)
        scales.append(im)
        net = self.merge(sf, im)
        net = self.block3(net, w(128), [3, 3, 3], "im/conv3_1", stride=1)
        net = self.block3(net, w(128), [3, 3, 3], "im/conv3_2", stride=1)
        scales.append(net)
        net = self.block3(net, w(256), [3, 3, 3], "im/conv4_1", stride=[2, 2, 2])
        net = self.block3(net, w(256), [3, 3, 3], "im/conv4_2", stride=1)
        s = 1 if cam else 2
        net = self.block3(net, w(512), [3, 3, 3], "im/conv5_1", stride=[1, s, s])
        net = self.block3(net, w(512), [3, 3, 3], "im/conv5_2", stride=1)
        scales.append(net)
        last_conv = net
        pooled = tf.reduce_mean(net, [1, 2, 3], keepdims=True)
        with v1.variable_scope("joint/logits"):
            wl = self._get("weights", [1, 1, 1, net.shape[-1], 1])
            bl = self._get("biases", [1])
        head = lambda x: tf.nn.bias_add(tf.nn.conv3d(x, wl, [1, 1, 1, 1, 1], "SAME"), bl)  # noqa: E731
        logits = head(pooled)[:, 0, 0, 0, :]
        cam_map = head(last_conv)
        return dict(logits=logits, cam=cam_map, last_conv=last_conv, scales=scales)

    # ------------------------------------------------------------------------------------------
    # U-Net (sourcesep.make_net)

    def unet(self, spec, phase, vid_scales):
        """The release's U-Net on the (B, T, 1025) dB spectrogram and phase of the mixture;
        ``vid_scales`` the shift net's three taps, or None (net_style 'no-im'). Returns the raw
        (B, T, 1024, 2) outputs of ``gen/fg`` and ``gen/bg``."""
        w = self.w
        acts = []

        def conv(x, n, scope, stride):
            out = self.conv(x, n, 4, scope, stride=stride, relu=False, eps=UNET_BN_EPS, renorm=True)
            acts.append(out)
            return _lrelu(out, 0.2)

        def deconv(x, n, scope, stride, *, concat=True, do_pop=True, bn=True):
            skip = acts.pop() if do_pop else acts[-1]
            if concat:
                x = tf.concat([x, skip], 3)
            return self.deconv(tf.nn.relu(x), n, 4, scope, stride=stride, bn=bn)

        def merge_level(net, n):
            if vid_scales is None:
                return net
            vid = tf.reduce_mean(vid_scales[n], [2, 3], keepdims=True)[:, :, 0, :, :]  # (B, Tv, 1, C)
            if net.shape[1] != vid.shape[1]:
                vid = v1.image.resize_images(vid, [net.shape[1], 1],
                                             method=v1.image.ResizeMethod.BILINEAR)
            vid = tf.tile(vid, (1, 1, net.shape[2], 1))
            net = tf.concat([net, vid], 3)
            acts[-1] = net
            return net

        net = tf.concat([_norm_range(spec, SPEC_MIN, SPEC_MAX)[..., None],
                         _norm_range(phase, -np.pi, np.pi)[..., None]], 3)
        net = net[:, :, :FREQ_LEN, :]
        net = conv(net, w(64), "gen/conv1", [1, 2])
        net = conv(net, w(128), "gen/conv2", [1, 2])
        net = conv(net, w(256), "gen/conv3", 2)
        net = merge_level(net, 0)
        net = conv(net, w(512), "gen/conv4", 2)
        net = merge_level(net, 1)
        net = conv(net, w(512), "gen/conv5", 2)
        net = merge_level(net, 2)
        for i in (6, 7, 8, 9):
            net = conv(net, w(512), f"gen/conv{i}", 2)
        net = deconv(net, w(512), "gen/deconv1", 2, concat=False)
        for i in (2, 3, 4, 5):
            net = deconv(net, w(512), f"gen/deconv{i}", 2)
        net = deconv(net, w(256), "gen/deconv6", 2)
        net = deconv(net, w(128), "gen/deconv7", 2)
        net = deconv(net, w(64), "gen/deconv8", [1, 2])
        out_fg = deconv(net, 2, "gen/fg", [1, 2], do_pop=False, bn=False)
        out_bg = deconv(net, 2, "gen/bg", [1, 2], do_pop=False, bn=False)
        return out_fg, out_bg


# --------------------------------------------------------------------------------------------
# sound helpers (soundrep.py, sourcesep.py, tfutil.py)


def _lrelu(x, a):
    """``tfutil.lrelu`` (pix2pix's form)."""
    x = tf.identity(x)
    return (0.5 * (1 + a)) * x + (0.5 * (1 - a)) * tf.abs(x)


def _norm_range(x, lo, hi):
    return 2.0 * (x - lo) / float(hi - lo) - 1.0


def _unnorm_range(y, lo, hi):
    return 0.5 * float(hi - lo) * (y + 1) + lo


def _db_from_amp(x):
    """``soundrep.db_from_amp``: 20 log10(max(1e-5, x)) as TF computes it (log(x) / log(10))."""
    return 20.0 * (tf.math.log(tf.maximum(1e-5, x)) / tf.math.log(tf.cast(10, tf.float32)))


def _amp_from_db(x):
    return tf.pow(10.0, x / 20.0)


def _stft(x):
    """``sourcesep.stft`` (pad_stft False, log_spec True): dB magnitude and phase (atan2), (B, T, 1025)."""
    z = tf.signal.stft(x, FRAME_LENGTH, FRAME_STEP, fft_length=FFT_LENGTH, pad_end=False)
    return _db_from_amp(tf.abs(z)), tf.atan2(tf.math.imag(z), tf.math.real(z))


def _istft(spec_db, phase):
    """``sourcesep.istft``: ``contrib.signal.inverse_stft`` with no window_fn given, whose default
    (as ``tf.signal.inverse_stft``'s) is the periodic Hann window: no window-sum normalisation."""
    mag = tf.cast(_amp_from_db(spec_db), tf.complex64)
    phase = tf.cast(phase, tf.complex64)
    j = tf.constant(1j, dtype=tf.complex64)
    z = mag * (tf.cos(phase) + j * tf.sin(phase))
    return tf.signal.inverse_stft(z, FRAME_LENGTH, FRAME_STEP, fft_length=FFT_LENGTH)


def _process(out, phase_mix):
    """``sourcesep.make_net.process`` (phase_type 'pred')."""
    num_freq = phase_mix.shape[2]
    spec = _unnorm_range(tf.tanh(out[..., 0]), SPEC_MIN, SPEC_MAX)
    ph = _unnorm_range(tf.tanh(out[..., 1]), -np.pi, np.pi)
    val = _db_from_amp(0.0)
    spec = tf.pad(spec, [(0, 0), (0, 0), (0, num_freq - spec.shape[2])], constant_values=val)
    ph = tf.concat([ph, phase_mix[..., -1:]], 2)
    return spec, ph, _istft(spec, ph)


def spec_len_for(n_samples: int) -> int:
    """Spectrogram frames the U-Net sees for ``n_samples``: the release's ``spec_len``
    (128 * 2^round(log2(vid_dur / 2.135))) is 128 for 44144 samples and 512 with
    ``--duration_mult 4``; here the largest 128 * 2^k that the STFT's frame count holds."""
    n_frames = 1 + (n_samples - FRAME_LENGTH) // FRAME_STEP
    if n_frames < 128:
        raise ValueError(f"{n_samples} samples give {n_frames} STFT frames; the U-Net needs >= 128 "
                         "(44144 samples)")
    return 128 * 2 ** int(math.floor(math.log2(n_frames / 128)))


# --------------------------------------------------------------------------------------------
# whole models


def _build(kind, ims, samples, width_div, renorm_weights, taps=False):
    """Build the inference graph of ``kind`` in the current graph; ``ims``/``samples`` tensors.
    Returns a dict of output tensors (with ``taps``, also every BN's output under "taps")."""
    outs = _build_outputs(kind, ims, samples, width_div, renorm_weights)
    net = outs.pop("_net")
    if taps:
        outs["taps"] = dict(net.taps)
    return outs


def _build_outputs(kind, ims, samples, width_div, renorm_weights):
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    net = _Net(bn_scale=kind in ("sep", "unet-pit"), width_div=width_div,
               renorm_weights=renorm_weights)
    if kind in ("shift", "cam"):
        out = net.shift_net(ims, samples, cam=kind == "cam")
        return dict(logits=out["logits"][:, 0], cam=out["cam"][..., 0], last_conv=out["last_conv"],
                    frac_pool_rows=net.frac_pool_rows, _net=net)
    outs = {"_net": net}
    vid_scales = None
    if kind == "sep":
        vid = net.shift_net(ims, samples, cam=False)
        vid_scales = vid["scales"]
        outs["frac_pool_rows"] = net.frac_pool_rows
    spec_len = spec_len_for(int(samples.shape[1]))
    mono = tf.reduce_mean(samples, 2)  # sourcesep.make_mono, as mix_sounds feeds the U-Net
    spec_mix, phase_mix = _stft(mono)
    spec_mix, phase_mix = spec_mix[:, :spec_len], phase_mix[:, :spec_len]
    out_fg, out_bg = net.unet(spec_mix, phase_mix, vid_scales)
    for name, out in (("fg", out_fg), ("bg", out_bg)):
        spec, ph, wav = _process(out, phase_mix)
        outs.update({f"spec_{name}": spec, f"phase_{name}": ph, f"wav_{name}": wav, f"net_{name}": out})
    outs.update(spec_mix=spec_mix, phase_mix=phase_mix)
    return outs


def _add_training_state(kind):
    """``global_step`` and the optimizer variables a release training checkpoint holds."""
    v1.get_variable("global_step", [], tf.int64, trainable=False, initializer=v1.zeros_initializer())
    trainable = list(v1.trainable_variables())
    if kind in ("shift", "cam"):
        slots = ["Momentum"]
    else:
        slots = ["Adam", "Adam_1"]
        # joint/logits is not on the sep loss's path: no gradient, so no slots (TF1 apply_gradients)
        trainable = [v for v in trainable if not v.op.name.startswith("joint/")]
    for v in trainable:
        for s in slots:
            v1.get_variable(f"{v.op.name}/{s}", v.shape, tf.float32, trainable=False,
                            initializer=v1.zeros_initializer())
    if kind in ("sep", "unet-pit"):
        for name in ("beta1_power", "beta2_power"):
            v1.get_variable(name, [], tf.float32, trainable=False, initializer=v1.zeros_initializer())


def _placeholders(kind, n_frames, crop, n_samples, batch):
    ims = None
    if kind != "unet-pit":
        ims = v1.placeholder(tf.uint8, [batch, n_frames, crop, crop, 3], name="ims")
    samples = v1.placeholder(tf.float32, [batch, n_samples, 2], name="samples")
    return ims, samples


def variable_shapes(kind: str, *, width_div: int = 1, n_frames: int | None = None,
                    crop: int | None = None, n_samples: int | None = None,
                    renorm_weights: bool = True) -> dict[str, tuple[int, ...]]:
    """Every global variable of the release's training checkpoint of ``kind`` (name without
    ``:0`` -> shape): the model's variables, ``global_step`` and the optimizer's variables. Builds
    the graph in a fresh ``tf.Graph`` (nothing is run). Input sizes default to the paper's
    (:data:`PAPER_SIZES`); the shapes do not depend on them."""
    size = dict(PAPER_SIZES[kind])
    size.update({k: v for k, v in dict(n_frames=n_frames, crop=crop, n_samples=n_samples).items()
                 if v is not None})
    with tf.Graph().as_default():
        ims, samples = _placeholders(kind, size["n_frames"], size["crop"], size["n_samples"], 1)
        _build(kind, ims, samples, width_div, renorm_weights)
        _add_training_state(kind)
        return {v.op.name: tuple(int(d) for d in v.shape) for v in v1.global_variables()}


# --------------------------------------------------------------------------------------------
# random values

# Spreads of the random values. The conv weights are He-normal times a gain; the gains keep the
# activations O(1) through the depth although the BNs use random (not measured) statistics.
_WEIGHT_GAIN = {"shift": 1.0, "shift_res2": 0.85, "unet": 1.2, "unet_head": 0.5}


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _random_value(name: str, shape: tuple[int, ...], seed: int, kind: str) -> np.ndarray:
    r = _rng(seed, name)
    leaf = name.rsplit("/", 1)[-1]
    if name == "global_step":
        return np.array(GLOBAL_STEPS[kind], np.int64)
    if leaf in ("beta1_power", "beta2_power"):
        return np.float32(r.uniform(0.0, 0.1))
    if leaf in ("Momentum", "Adam"):
        return r.normal(0.0, 0.01, shape).astype(np.float32)
    if leaf == "Adam_1":
        return r.uniform(0.0, 1e-4, shape).astype(np.float32)
    if leaf == "weights":
        base = name[: -len("/weights")]
        if base.startswith("gen/"):  # U-Net: conv [4, 4, in, out], transposed conv [4, 4, out, in]
            transposed = base.startswith("gen/deconv") or base in ("gen/fg", "gen/bg")
            fan_in = int(np.prod(shape[:-2])) * shape[-1 if transposed else -2]
            gain = _WEIGHT_GAIN["unet_head" if base in ("gen/fg", "gen/bg") else "unet"]
        else:
            fan_in = int(np.prod(shape[:-1]))
            res = base.endswith("_2") or base.endswith("_short") or base == "im/merge2"
            gain = _WEIGHT_GAIN["shift_res2" if res else "shift"]
        return r.normal(0.0, gain * math.sqrt(2.0 / fan_in), shape).astype(np.float32)
    if leaf in ("biases", "beta"):
        return r.normal(0.0, 0.1, shape).astype(np.float32)
    if leaf == "gamma":
        return r.uniform(0.5, 1.5, shape).astype(np.float32)
    if leaf in ("moving_mean", "renorm_mean"):
        return r.normal(0.0, 0.2, shape).astype(np.float32)
    if leaf == "moving_variance":
        return r.uniform(0.5, 2.0, shape).astype(np.float32)
    if leaf == "renorm_stddev":
        return r.uniform(0.7, 1.4, shape).astype(np.float32)
    if leaf in ("renorm_mean_weight", "renorm_stddev_weight"):
        return np.float32(r.uniform(0.5, 1.0))
    raise AssertionError(f"no random rule for variable {name}")


def make_reference(kind: str, prefix, ims, samples, *, width_div: int = 1, seed: int = 0,
                   renorm_weights: bool = True) -> dict[str, np.ndarray]:
    """Build the release's graph of ``kind`` for these inputs (``ims`` uint8 (B, T, H, W, 3), None
    for unet-pit; ``samples`` float32 (B, N, 2) in [-1, 1]), give every variable a random value
    (numpy, from ``seed`` and the variable's name), save a TF V2 checkpoint at ``prefix`` (e.g.
    ``tmp/nets/shift/net.tf-650000``; folders are made) with ``tf.compat.v1.train.Saver``, run the
    inference forward and return its outputs as numpy arrays:

    * shift/cam: ``logits`` (B,), ``cam`` (B, T', H', W') (the bias included), ``last_conv``
      (B, T', H', W', C), ``frac_pool_rows`` (the fractional max-pool's row boundaries, n_out + 1).
    * sep/unet-pit: ``spec_fg``, ``phase_fg``, ``spec_bg``, ``phase_bg`` (B, T, 1025) in dB and
      radians after ``process()``; ``wav_fg``, ``wav_bg`` (B, (T - 1) * 336 + 1344); ``net_fg``,
      ``net_bg`` the raw head outputs (B, T, 1024, 2) before tanh; ``spec_mix``, ``phase_mix``
      (B, T, 1025) the mixture's STFT (mono = mean of the two channels); sep also ``frac_pool_rows``.
    """
    return _run(kind, prefix, ims, samples, width_div=width_div, seed=seed,
                renorm_weights=renorm_weights)


def _run(kind, prefix, ims, samples, *, width_div=1, seed=0, renorm_weights=True, taps=False):
    """:func:`make_reference`; with ``taps``, also every BN's output under "taps" (a dict)."""
    samples = np.asarray(samples, np.float32)
    if kind != "unet-pit":
        ims = np.asarray(ims)
        if ims.dtype != np.uint8 or ims.ndim != 5 or ims.shape[-1] != 3 or ims.shape[2] != ims.shape[3]:
            raise ValueError("ims must be uint8 (B, T, H, H, 3)")
        if ims.shape[0] != samples.shape[0]:
            raise ValueError("ims and samples differ in batch size")
    if samples.ndim != 3 or samples.shape[-1] != 2:
        raise ValueError("samples must be float32 (B, N, 2)")
    batch, n_samples = samples.shape[:2]
    n_frames, crop = (ims.shape[1], ims.shape[2]) if kind != "unet-pit" else (0, 0)
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with tf.Graph().as_default() as graph:
        ims_ph, samples_ph = _placeholders(kind, n_frames, crop, n_samples, batch)
        outs = _build(kind, ims_ph, samples_ph, width_div, renorm_weights, taps=taps)
        _add_training_state(kind)
        variables = v1.global_variables()
        saver = v1.train.Saver(variables, write_version=v1.train.SaverDef.V2)
        graph.finalize()
        feed = {samples_ph: samples}
        if ims_ph is not None:
            feed[ims_ph] = ims
        with v1.Session(graph=graph) as sess:
            # one run of all initializers, each fed its random initial value
            sess.run([v.initializer for v in variables],
                     {v.initializer.inputs[1]: _random_value(v.op.name, tuple(int(d) for d in v.shape),
                                                             seed, kind) for v in variables})
            saver.save(sess, str(prefix), write_meta_graph=False, write_state=True)
            res = sess.run(outs, feed)
    out = {k: np.asarray(x) for k, x in res.items() if k != "taps"}
    if taps:
        out["taps"] = {k: np.asarray(x) for k, x in res["taps"].items()}
    return out


def forward_seconds(kind: str, prefix, ims, samples, *, width_div: int = 1, repeats: int = 2) -> float:
    """Seconds of TF's inference forward for these inputs with the weights of the checkpoint at
    ``prefix`` (restored, as the release's ``NetClf`` does): the best of ``repeats`` runs after a
    warm-up run."""
    import time

    samples = np.asarray(samples, np.float32)
    n_frames, crop = (ims.shape[1], ims.shape[2]) if kind != "unet-pit" else (0, 0)
    with tf.Graph().as_default() as graph:
        ims_ph, samples_ph = _placeholders(kind, n_frames, crop, samples.shape[1], samples.shape[0])
        outs = _build(kind, ims_ph, samples_ph, width_div, renorm_weights=True)
        saver = v1.train.Saver(v1.global_variables())
        graph.finalize()
        feed = {samples_ph: samples, **({ims_ph: ims} if ims_ph is not None else {})}
        with v1.Session(graph=graph) as sess:
            saver.restore(sess, str(prefix))
            sess.run(outs, feed)
            best = math.inf
            for _ in range(repeats):
                start = time.perf_counter()
                sess.run(outs, feed)
                best = min(best, time.perf_counter() - start)
    return best
