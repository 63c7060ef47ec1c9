"""The release's TensorFlow networks imported with ``avscene import-tf`` compute what the release's
graphs compute.

``tests/tf_release/graphs.py`` writes the release's graphs again in ``tf.compat.v1`` with its
variable names, saves TF checkpoints of random weights laid out as ``multisensory-nets.zip``, and
runs TF's forward. These tests import those checkpoints and compare avscene's forward with TF's
(max error relative to the output's scale <= 1e-4 in fp32). TensorFlow comes with the ``[tf]``
extra, which CI installs: there a missing TensorFlow fails these tests instead of skipping them.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest

from avscene.constants import frame_to_sample

if os.environ.get("CI"):
    from tf_release import graphs  # noqa: E402  (CI installs the [tf] extra: no silent skip)
else:
    graphs = pytest.importorskip("tf_release.graphs", reason="needs TensorFlow (pip install -e '.[tf]')")

from tf_release.compare import avscene_outputs, compare  # noqa: E402

from avscene import cli  # noqa: E402
from avscene.checkpoints import load_checkpoint, load_model  # noqa: E402
from avscene.models.blocks import tf_release_pool_bounds  # noqa: E402
from avscene.release.convert import ReleaseImportError, convert, plan_variables  # noqa: E402
from avscene.release.tf_checkpoint import TFCheckpoint  # noqa: E402
from avscene.release.variables import IGNORED  # noqa: E402
from avscene.store import store_path  # noqa: E402

#: Where each kind sits in the release's zip, and the clip the tests feed it.
LAYOUT = {"shift": "nets/shift/net.tf-650000", "cam": "nets/cam/net.tf-675000",
          "sep": "nets/sep/full/net.tf-160000", "unet-pit": "nets/sep/unet-pit/net.tf-160000"}
STORE_NAMES = {"shift": "paper-shift", "cam": "paper-cam", "sep": "paper-sep", "unet-pit": "paper-unet-pit"}
SIZES = {"shift": (16, 48), "cam": (16, 48), "sep": (63, 32), "unet-pit": (63, 32)}  # frames, crop
WIDTH_DIV = 8
TOLERANCE = 1e-4


def reference_inputs(kind: str, seed: int = 0) -> tuple[np.ndarray | None, np.ndarray]:
    """uint8 frames (B, T, H, W, 3) and stereo samples (B, N, 2): noise with some structure."""
    rng = np.random.default_rng(seed)
    n_frames, crop = SIZES[kind]
    n_samples = frame_to_sample(n_frames, 30000 / 1001, 21000) if kind in ("shift", "cam") else 44144
    t = np.arange(n_samples) / 21000
    tone = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000, (2, 1, 2)) * t[None, :, None])
    samples = (tone + 0.1 * rng.standard_normal((2, n_samples, 2))).astype(np.float32)
    ims = rng.integers(0, 256, (2, n_frames, crop, crop, 3), dtype=np.uint8)
    return ims, samples


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A release-like folder of reference checkpoints (and its zip), with TF's outputs."""
    root = tmp_path_factory.mktemp("release")
    outputs = {}
    for kind, prefix in LAYOUT.items():
        ims, samples = reference_inputs(kind)
        outputs[kind] = graphs.make_reference(kind, root / prefix, ims, samples, width_div=WIDTH_DIV)
        outputs[kind]["inputs"] = (ims, samples)
    with zipfile.ZipFile(root / "multisensory-nets.zip", "w") as archive:
        for path in sorted((root / "nets").rglob("*")):
            if path.is_file() and path.name != "checkpoint":
                archive.write(path, path.relative_to(root).as_posix())
    return root, outputs


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("AVSCENE_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "models"


def test_release_pooling_regions_are_tfs():
    """The release's deterministic test-time fractional pooling, for many lengths."""
    import tensorflow as tf

    pairs = [(86, 32), (44, 16), (170, 62), (43, 2), (11, 4), (10, 3)] + [(n, m) for n in range(5, 120, 7)
                                                                            for m in range(1, n - 1, 5)]
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        for n_in, n_out in pairs:
            x = tf.constant(np.arange(n_in, dtype=np.float32)[None, :, None, None])
            _, rows, _ = tf.compat.v1.nn.fractional_max_pool(x, [1, (n_in - 1) / n_out, 1, 1], pseudo_random=True,
                                                             deterministic=True, seed=1, seed2=2)
            assert sess.run(rows).tolist() == tf_release_pool_bounds(n_in, n_out), (n_in, n_out)


@pytest.mark.parametrize("kind", list(LAYOUT))
def test_imported_network_computes_the_release_graph(release, store, kind, capsys):
    root, outputs = release
    assert cli.main(["import-tf", str(root / LAYOUT[kind]), "--quiet"]) == 0
    assert STORE_NAMES[kind] in capsys.readouterr().out
    model = load_model(store_path(STORE_NAMES[kind]))
    ims, samples = outputs[kind]["inputs"]
    errors = compare(kind, avscene_outputs(model, kind, ims, samples), outputs[kind])
    assert max(errors.values()) <= TOLERANCE, errors
    if kind in ("shift", "cam"):  # the maps are not flat: the comparison means something
        assert outputs[kind]["cam"].std() > 1e-3


def test_import_of_the_zip_converts_every_network_with_a_card(release, store, capsys):
    root, outputs = release
    assert cli.main(["import-tf", str(root / "multisensory-nets.zip"), "--quiet"]) == 0
    assert sorted(p.stem for p in store.glob("*.pt")) == sorted(STORE_NAMES.values())
    payload = load_checkpoint(store / "paper-shift.pt")
    card = payload["model_card"]
    assert card["trained_on"] == "AudioSet, Owens & Efros 2018 release (multisensory-nets.zip), 650K iterations"
    assert card["steps"] == 650000 and card["synthetic_only"] is False
    assert set(payload["source"]["files_sha256"]) == {"net.tf-650000.index", "net.tf-650000.data-00000-of-00001"}
    assert len(payload["source"]["input_sha256"]) == 64
    ignored = payload["source"]["variables_ignored"]
    assert {"global_step", "im/conv1/weights/Momentum", "im/conv2_1_bn/renorm_mean"} <= set(ignored)
    assert set(ignored.values()) <= {reason for _, reason in IGNORED}
    model = load_model(store / "paper-cam.pt")  # the zip's copy computes as the folder's
    ims, samples = outputs["cam"]["inputs"]
    assert max(compare("cam", avscene_outputs(model, "cam", ims, samples), outputs["cam"]).values()) <= TOLERANCE
    capsys.readouterr()
    assert cli.main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "paper-sep" in listing and "VoxCeleb" in listing and "multisensory-nets.zip:nets/sep/full" in listing
    # importing again changes nothing and says so; a different network under a taken name is refused
    assert cli.main(["import-tf", str(root / "multisensory-nets.zip"), "--quiet"]) == 0
    assert "already in the store" in capsys.readouterr().out
    code = cli.main(["import-tf", str(root / LAYOUT["sep"]), "--name", "paper-shift", "--quiet"])
    assert code == cli.EXIT_ERROR and "paper-shift.pt exists" in capsys.readouterr().err


def test_a_checkpoint_of_another_network_is_refused_and_nothing_written(release, store, capsys):
    root, _ = release
    assert cli.main(["import-tf", str(root / LAYOUT["unet-pit"]), "--kind", "shift", "--quiet"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "net.tf-160000" in err and "no variable 'im/conv1/weights'" in err
    assert not list(store.glob("*"))


class _Edited:
    """A checkpoint with one variable added, removed or reshaped (duck-types TFCheckpoint)."""

    def __init__(self, checkpoint: TFCheckpoint, *, add=None, drop=None, reshape=None):
        self.prefix, self._ckpt = checkpoint.prefix, checkpoint
        self._shapes = {n: i.shape for n, i in checkpoint.tensors().items() if n != drop}
        if add:
            self._shapes[add] = (3,)
        if reshape:
            self._shapes[reshape] = self._shapes[reshape][:-1] + (self._shapes[reshape][-1] + 1,)

    def tensors(self):
        return {n: type("Info", (), {"shape": s})() for n, s in self._shapes.items()}

    def read(self, name):
        return self._ckpt.read(name)


@pytest.mark.parametrize("edit, message", [
    ({"add": "im/conv9/weights"}, "1 unknown variables: im/conv9/weights"),
    ({"drop": "im/conv3_2_bn/moving_variance"}, "1 missing variables: im/conv3_2_bn/moving_variance"),
    ({"reshape": "joint/logits/biases"}, "mis-shaped variables: joint/logits/biases (2,)"),
])
def test_unknown_missing_or_misshaped_variables_are_named(release, edit, message):
    root, _ = release
    with pytest.raises(ReleaseImportError, match="net.tf-650000") as err:
        convert(_Edited(TFCheckpoint(root / LAYOUT["shift"]), **edit), "shift")
    assert message in str(err.value)


@pytest.mark.parametrize("kind", list(LAYOUT))
def test_full_size_release_graphs_are_mapped_completely(kind):
    """The full-size graphs (no data): every variable used or ignored for a reason."""
    shapes = graphs.variable_shapes(kind)
    plan = plan_variables(kind, shapes)
    assert set(plan.used) | set(plan.ignored) == set(shapes)
    params = sum(p.numel() for p in plan.model.parameters())
    expected = {"shift": 36.0e6, "cam": 36.0e6, "sep": 113.6e6, "unet-pit": 67.0e6}[kind]  # paper-design.md 2.8
    assert abs(params - expected) / expected < 0.01, params


@pytest.fixture()
def imported_store(release, store):
    root, _ = release
    assert cli.main(["import-tf", str(root / "nets"), "--quiet"]) == 0
    return store


def test_commands_run_the_imported_networks_by_default_on_a_real_clip(imported_store, real_clips, tmp_path, capsys):
    clip = next(c for c in real_clips if c.name == "tennis_30fps_stereo44k.mp4")
    out = tmp_path / "out"
    assert cli.main(["sync", str(clip), "--max-windows", "1", "--max-offset", "0.3",
                     "--json", str(out / "sync.json")]) == 0
    assert "using the paper's network 'paper-shift'" in capsys.readouterr().err
    assert (out / "sync.json").stat().st_size > 0
    assert cli.main(["localize", str(clip), "--max-windows", "1", "--out-dir", str(out / "cam")]) == 0
    assert "'paper-cam'" in capsys.readouterr().err
    assert list((out / "cam").glob("*.mp4"))
    assert cli.main(["separate", str(clip), "--out-dir", str(out / "sep"), "--no-plot"]) == 0
    assert "'paper-sep'" in capsys.readouterr().err
    assert len(list((out / "sep").glob("*.wav"))) >= 2
