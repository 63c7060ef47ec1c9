"""How exactly, and how fast, avscene runs the release's networks (issue: ``avscene import-tf``).

For each of the release's networks at its full width and at the paper's own window (shift and
CAM: 125 frames of 224 x 224 with 87588 samples; separation and u-net PIT: 63 frames with 44144
samples; batch 1), ``tests/tf_release/graphs.py`` builds the release's graph in TensorFlow, gives
it random weights (BN statistics included), saves a TF checkpoint laid out as in
``multisensory-nets.zip`` and runs TF's forward. The checkpoint is then imported with
``avscene import-tf`` (no TensorFlow involved) and run by PyTorch on the same inputs. Reported per
network: max absolute and relative error against TF for each output (relative to the output's
largest magnitude), variables mapped / total, parameters, import seconds, and forward seconds per
window of TF and of the imported network (best of ``--repeats`` after a warm-up), on this CPU.

Usage: ``python benchmarks/import_tf.py [--kinds shift cam sep unet-pit] [--repeats 2]``
(needs the ``[tf]`` extra). Writes ``benchmarks/results/import_tf.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import write_result  # noqa: E402
from tf_release import graphs  # noqa: E402
from tf_release.compare import avscene_outputs, compare  # noqa: E402

from avscene.checkpoints import load_model  # noqa: E402
from avscene.constants import frame_to_sample  # noqa: E402
from avscene.data.shift_pairs import frames_to_video  # noqa: E402
from avscene.release.importer import import_release  # noqa: E402
from avscene.release.tf_checkpoint import TFCheckpoint  # noqa: E402

LAYOUT = {"shift": "nets/shift/net.tf-650000", "cam": "nets/cam/net.tf-675000",
          "sep": "nets/sep/full/net.tf-160000", "unet-pit": "nets/sep/unet-pit/net.tf-160000"}
WINDOWS = {"shift": (125, 224), "cam": (125, 224), "sep": (63, 224), "unet-pit": (63, 224)}  # frames, crop
TOLERANCE = 1e-4


def inputs(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One window of uint8 frames (1, T, 224, 224, 3) and stereo samples (1, N, 2): noise and tones."""
    rng = np.random.default_rng(seed)
    n_frames, crop = WINDOWS[kind]
    n_samples = frame_to_sample(n_frames, 30000 / 1001, 21000)
    t = np.arange(n_samples) / 21000
    samples = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000, (1, 1, 2)) * t[None, :, None])
    samples = (samples + 0.1 * rng.standard_normal((1, n_samples, 2))).astype(np.float32)
    return rng.integers(0, 256, (1, n_frames, crop, crop, 3), dtype=np.uint8), samples


def best_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def forward_once(model, kind: str, ims: np.ndarray, samples: np.ndarray):
    """One inference forward of ``model`` on the window (the CAM for shift nets: the logit is its
    mean), as TF's timed run computes its outputs once."""
    audio = torch.from_numpy(samples).permute(0, 2, 1)  # (1, 2, N)
    video = frames_to_video(torch.from_numpy(ims)) if kind != "unet-pit" else None

    def run():
        with torch.inference_mode():
            return model.cam(video, audio) if kind in ("shift", "cam") else model(video, audio)
    return run


def measure(kind: str, root: Path, repeats: int) -> dict:
    ims, samples = inputs(kind)
    prefix = root / LAYOUT[kind]
    print(f"{kind}: TF reference (build, random weights, save, forward)", flush=True)
    theirs = graphs.make_reference(kind, prefix, ims, samples)
    tf_seconds = graphs.forward_seconds(kind, prefix, ims, samples, repeats=repeats)
    start = time.perf_counter()
    (imported,), _ = import_release(prefix, progress=False)
    import_seconds = time.perf_counter() - start
    model = load_model(imported.path)
    ours = avscene_outputs(model, kind, ims, samples)
    errors = compare(kind, ours, theirs)
    abs_errors = {}
    for key in errors:
        if key.startswith("phase"):
            abs_errors[key] = errors[key]  # already an absolute phasor distance
        else:
            ref = theirs[key][..., :-1] if key.startswith("spec") else theirs[key]
            abs_errors[key] = float(np.abs(np.asarray(ours[key], np.float64) - ref).max())
    torch_seconds = best_seconds(forward_once(model, kind, ims, samples), repeats)
    n_total = len(TFCheckpoint(prefix).tensors())
    row = {
        "network": imported.name, "checkpoint": LAYOUT[kind], "window": {"frames": WINDOWS[kind][0],
                                                                          "crop": WINDOWS[kind][1],
                                                                          "samples": int(samples.shape[1])},
        "max_rel_error": errors, "max_abs_error": abs_errors, "worst_rel_error": max(errors.values()),
        "variables_total": n_total, "variables_mapped": imported.used, "variables_ignored": imported.ignored,
        "variables_accounted": (imported.used + imported.ignored) / n_total,
        "parameters": imported.n_parameters, "import_s": round(import_seconds, 2),
        "forward_s_per_window": {"tensorflow": round(tf_seconds, 3), "avscene": round(torch_seconds, 3)},
        "met": max(errors.values()) <= TOLERANCE and imported.used + imported.ignored == n_total,
    }
    print(f"{kind}: worst rel error {row['worst_rel_error']:.2e}, {imported.used} + {imported.ignored} of "
          f"{n_total} variables, {imported.n_parameters / 1e6:.1f} M parameters; forward TF {tf_seconds:.2f} s, "
          f"avscene {torch_seconds:.2f} s", flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", nargs="+", choices=list(LAYOUT), default=list(LAYOUT))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--name", default="import_tf", help="result name (benchmarks/results/NAME.json)")
    args = parser.parse_args(argv)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="avscene-import-bench-") as tmp:
        os.environ["AVSCENE_HOME"] = str(Path(tmp) / "home")
        for kind in args.kinds:
            rows[kind] = measure(kind, Path(tmp), args.repeats)
            for path in (Path(tmp) / LAYOUT[kind]).parent.glob("*"):  # free the disk for the next
                path.unlink()
    write_result(args.name, {
        "what": "release networks at full width imported with avscene import-tf vs the release's graph in "
                "TensorFlow (tests/tf_release), random weights, one window each",
        "errors": "max |avscene - TF| / max |TF| per output; for phases the max distance between unit phasors",
        "tensorflow": graphs.tf.__version__, "tolerance": TOLERANCE, "torch_threads": torch.get_num_threads(), "networks": rows,
        "met": all(r["met"] for r in rows.values()),
    })
    return 0 if all(r["met"] for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
