"""Self-check of the TF reference graphs (a script, not collected by pytest).

    .venv/bin/python tests/tf_release/selfcheck.py [--keep DIR]

1. Each kind at ``width_div=8`` on small inputs: output shapes and ranges, the time of
   :func:`make_reference`, and checks: finite outputs; the U-Net heads' tanh not saturated; the
   fractional max-pool gives the video's time length; ``logits == mean(cam)`` (the head is linear);
   the checkpoint written holds exactly :func:`variable_shapes`' names and shapes, with
   ``global_step`` the release's iteration; the same seed gives the same outputs.
2. ISTFT gain: ``_istft(_stft(x))`` is 1.5 x inside the clip (Hann analysis and synthesis windows at
   75 % overlap, no window-sum normalisation, as the release's ``inverse_stft`` without a window_fn).
3. Each kind at ``width_div=1`` at the paper's sizes (graph only): variable count and parameters
   (conv/deconv weights and biases; paper-design.md §2.8: ~36.0 M shift, ~113.6 M full sep with a
   ~77.6 M U-Net, ~67.0 M unet-pit), and the shift model's variable list.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, so `tf_release` imports

from tf_release import graphs  # noqa: E402
from tf_release.graphs import KINDS, make_reference, variable_shapes  # noqa: E402

SAMPLES_PER_FRAME = 21000 / 29.97
OPT_SUFFIXES = ("/Momentum", "/Adam", "/Adam_1")
TRAINING_STATE = ("global_step", "beta1_power", "beta2_power")


def clip(batch, n_frames, crop, n_samples, seed=0):
    """Structured inputs that differ between examples: moving sinusoid gratings plus noise, and
    stereo tones plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames)[:, None, None, None]
    y = np.arange(crop)[None, :, None, None]
    x = np.arange(crop)[None, None, :, None]
    ims, sounds = [], []
    n = np.arange(n_samples)[:, None]
    for _ in range(batch):
        f, ph = rng.uniform(0.05, 0.3, 3), rng.uniform(0, 2 * np.pi, 3)
        im = 128 + 100 * np.sin(f[0] * x + f[1] * y + f[2] * t + ph) + rng.normal(0, 20, (n_frames, crop, crop, 3))
        ims.append(np.clip(im, 0, 255).astype(np.uint8))
        tone = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * n / 21000) * rng.uniform(0.2, 1, (1, 2))
        sounds.append(tone + rng.normal(0, 0.05, (n_samples, 2)))
    return np.stack(ims), np.stack(sounds).astype(np.float32)


def model_vars(shapes):
    return {k: v for k, v in shapes.items() if not k.endswith(OPT_SUFFIXES) and k not in TRAINING_STATE}


def n_params(shapes, pred):
    return sum(math.prod(s) for k, s in shapes.items() if pred(k))


def is_conv(k):
    return k.endswith("/weights") or k.endswith("/biases")


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what)
    if not cond:
        check.failed += 1


check.failed = 0


def small_runs(root: Path):
    import tensorflow as tf

    cases = [("shift", 8, 32), ("cam", 8, 32), ("shift", 16, 48), ("cam", 16, 48), ("sep", 8, 32),
             ("sep", 63, 32), ("unet-pit", 0, 0)]
    for kind, n_frames, crop in cases:
        n_samples = 44144 if kind in ("sep", "unet-pit") else round(n_frames * SAMPLES_PER_FRAME)
        ims, samples = clip(2, max(n_frames, 1), max(crop, 8), n_samples)
        if kind == "unet-pit":
            ims = None
        step = graphs.GLOBAL_STEPS[kind]
        prefix = root / kind / f"{n_frames}x{crop}" / f"net.tf-{step}"
        t0 = time.perf_counter()
        out = make_reference(kind, prefix, ims, samples, width_div=8, seed=0)
        dt = time.perf_counter() - t0
        print(f"\n{kind} width_div=8, ims {None if ims is None else ims.shape}, samples {samples.shape}: "
              f"make_reference {dt:.2f} s")
        for k, v in out.items():
            print(f"  {k:15s} {str(v.shape):22s} {str(v.dtype):8s} min {v.min():10.4g} max {v.max():10.4g} "
                  f"std {v.std():9.4g}")
        check(all(np.isfinite(v).all() for v in out.values()), "all outputs finite")
        if kind in ("shift", "cam", "sep"):
            t_v = math.ceil(math.ceil(n_frames / 2) / 2)  # im/conv1 and im/conv2_2 stride 2 in time
            rows = out["frac_pool_rows"]
            check(len(rows) - 1 == t_v, f"fractional max-pool: {rows[-1]} audio steps -> {len(rows) - 1} "
                                        f"= T_v {t_v} (regions {np.diff(rows).tolist()})")
        if kind in ("shift", "cam"):
            check(np.allclose(out["logits"], out["cam"].mean((1, 2, 3)), rtol=1e-5, atol=1e-6),
                  "logits == mean(cam)")
            check(abs(out["logits"][0] - out["logits"][1]) > 1e-2, f"logits differ between examples: {out['logits']}")
        if kind in ("sep", "unet-pit"):
            for h in ("fg", "bg"):
                th = np.tanh(out[f"net_{h}"])
                sat = float((np.abs(th) > 0.99).mean())
                check(sat < 0.01 and th.std() > 0.05, f"{h} head: tanh std {th.std():.3f}, saturated {sat:.4f}")
            check(out["wav_fg"].shape[1] == (out["spec_fg"].shape[1] - 1) * 336 + 1344, "wav length (T-1)*336+1344")
            check(np.allclose(out["spec_fg"][..., -1], -100, atol=1e-3),
                  "Nyquist bin padded with db_from_amp(0) = -100 dB")
            check(np.array_equal(out["phase_fg"][..., -1], out["phase_mix"][..., -1]), "last phase bin = the mixture's")
        # checkpoint == variable_shapes
        shapes = variable_shapes(kind, width_div=8, n_frames=n_frames or None, crop=crop or None,
                                 n_samples=n_samples)
        reader = tf.train.load_checkpoint(str(prefix))
        stored = {k: tuple(v) for k, v in reader.get_variable_to_shape_map().items()}
        check(stored == shapes, f"checkpoint holds exactly variable_shapes(): {len(stored)} variables")
        check(int(reader.get_tensor("global_step")) == step, f"global_step = {step}")
        if (kind, n_frames) in (("shift", 8), ("sep", 8)):
            t0 = time.perf_counter()
            again = make_reference(kind, root / "again" / f"net.tf-{step}", ims, samples, width_div=8, seed=0)
            check(all(np.array_equal(out[k], again[k]) for k in out),
                  f"same seed, same outputs ({time.perf_counter() - t0:.2f} s)")


def istft_gain():
    import tensorflow as tf

    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.1, (1, 44144)).astype(np.float32)
    with tf.Graph().as_default():
        xt = tf.constant(x)
        spec, phase = graphs._stft(xt)
        y = graphs._istft(spec, phase)
        with tf.compat.v1.Session() as sess:
            y = sess.run(y)
    inner = slice(1344, y.shape[1] - 1344)
    gain = float(np.median(y[0, inner] / x[0, inner]))
    print(f"\nISTFT(STFT(x)): length {y.shape[1]}, gain inside the clip {gain:.5f}, "
          f"max |y - 1.5 x| inside {np.abs(y[0, inner] - 1.5 * x[0, inner]).max():.2e}")
    check(abs(gain - 1.5) < 1e-3, "inverse_stft with the default (Hann) window: gain 1.5, not normalised")


def paper_sizes():
    print()
    for kind in KINDS:
        t0 = time.perf_counter()
        shapes = variable_shapes(kind)
        dt = time.perf_counter() - t0
        model = model_vars(shapes)
        conv = n_params(model, is_conv)
        gen = n_params(model, lambda k: k.startswith("gen/") and is_conv(k))
        bn = n_params(model, lambda k: k.endswith(("/beta", "/gamma")))
        slots = {s: sum(k.endswith(s) for k in shapes) for s in OPT_SUFFIXES}
        print(f"{kind:9s} width_div=1 {graphs.PAPER_SIZES[kind]}: {len(shapes)} variables "
              f"({len(model)} model, slots {slots}); conv params {conv / 1e6:.3f} M "
              f"(U-Net {gen / 1e6:.3f} M), BN beta/gamma {bn}; graph {dt:.2f} s")
    shapes = model_vars(variable_shapes("shift"))
    print(f"\nshift model variables ({len(shapes)}):")
    for k in sorted(shapes):
        print(f"  {k} {list(shapes[k])}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="write the checkpoints here (default: a temp dir)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.keep:
        small_runs(args.keep)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            small_runs(Path(tmp))
    istft_gain()
    paper_sizes()
    print(f"\n{check.failed} failed checks; {time.perf_counter() - t0:.1f} s in all")
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
