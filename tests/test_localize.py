"""Sound-source maps: where a CAM value lands (time, space, every fit), eval mode, windows that
cross-fade, the heat-map video with its sound, the .npy/.json/.png, bad inputs, the CLI.

No trained network is needed: a "blur" ShiftNet (the real tiny architecture with every conv set
to an average and zero biases) responds where the picture is bright, symmetrically around each
cell's centre, so the place of its peak tests the geometry end to end.
"""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

from avscene import cli
from avscene.checkpoints import save_checkpoint
from avscene.constants import frame_to_sample
from avscene.infer.localize import (
    LocalizeOptions,
    cam_batch,
    cam_clip,
    cam_stride,
    cam_to_frame,
    fit_frames,
    localize_clip,
    localize_file,
    write_cam_outputs,
)
from avscene.media import ClipRangeError, MediaError, NoStreamError, probe, read_clip, write_video
from avscene.media.geometry import FitGeometry
from avscene.media.writer import VideoWriter
from avscene.models import ShiftNet, get_preset
from avscene.windows import plan_windows

FPS = Fraction(25)  # the test video's rate; the model runs at 29.97 fps
RATE = 44100
FRAME_HW = (72, 128)  # a wide frame: 'crop' cuts its sides
CELL = (2, 1)  # the CAM cell (row, col) the square is centred on
HALF = 5.0  # half side of the square in model pixels (a cell is 16 px)


def blur_net(**overrides) -> ShiftNet:
    """The tiny ShiftNet with every conv an average (positive constant weights, zero biases) and
    the stem's max-pool an average pool of the same shape (max-pool ties pick the first element,
    which moves the centre by a pixel): a symmetric blur through the real architecture."""
    cfg = get_preset("tiny", **{"cam": True, "crop_size": 64, "n_frames": 16, **overrides})
    net = ShiftNet(cfg).eval()
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                mod.weight.fill_(1.0 / mod.weight[0].numel())
                if mod.bias is not None:
                    mod.bias.zero_()
    net.stem.pool = nn.AvgPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
    return net


def square_box(fit: str, size: int = 64) -> tuple[float, float, float, float]:
    """(y0, y1, x0, x1) in frame pixels of a square centred on cell CELL's centre, for ``fit``."""
    geo = FitGeometry.of(FRAME_HW, size, fit)
    stride = cam_stride(get_preset("tiny", cam=True))[1]
    v, u = stride * CELL[0], stride * CELL[1]
    y0, x0 = geo.to_frame(v - HALF, u - HALF)
    y1, x1 = geo.to_frame(v + HALF, u + HALF)
    return float(y0), float(y1), float(x0), float(x1)


def square_frames(fit: str, n_frames: int) -> np.ndarray:
    """Grey frames with a white square flashing (on 2 frames of 3) on ``square_box(fit)``."""
    frames = np.full((n_frames, *FRAME_HW, 3), 128, np.uint8)
    y0, y1, x0, x1 = square_box(fit)
    ys, xs = slice(int(np.ceil(y0)), int(np.floor(y1)) + 1), slice(int(np.ceil(x0)), int(np.floor(x1)) + 1)
    for t in range(n_frames):
        if t % 3 != 2:
            frames[t, ys, xs] = 255
    return frames


def make_square_video(path, fit: str, n_frames: int = 60, channels: int = 1):
    t = np.arange(round(n_frames / FPS * RATE)) / RATE
    tones = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 1000 * t)  # AAC keeps tones well
    audio = np.repeat(tones[:, None], channels, 1).astype(np.float32)
    return write_video(path, square_frames(fit, n_frames), FPS, audio, RATE)


def in_box(x, y, box, slack: float = 0.75) -> np.ndarray:
    y0, y1, x0, x1 = box
    return (x >= x0 - slack) & (x <= x1 + slack) & (y >= y0 - slack) & (y <= y1 + slack)


@pytest.fixture(scope="module")
def crop_outputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("localize")
    video = make_square_video(folder / "square.mp4", "crop")
    result = localize_file(blur_net(), video)
    return video, result, write_cam_outputs(result, folder / "out", model_name="blur")


# -- geometry --------------------------------------------------------------------------------------

@pytest.mark.parametrize("fit", ["crop", "pad", "squash"])
def test_fit_geometry_is_the_readers(tmp_path, fit):
    frames = np.zeros((2, *FRAME_HW, 3), np.uint8)
    frames[:, 20:30, 90:100] = 255  # a block centred on frame pixel (24.5, 94.5)
    path = write_video(tmp_path / "block.mp4", frames, 25)
    read = read_clip(path, size=64, fit=fit, audio=False).frames[0].mean(-1)  # (64, 64)
    mem = fit_frames(frames, 64, fit)[0].mean(-1)
    v, u = FitGeometry.of(FRAME_HW, 64, fit).to_model(24.5, 94.5)
    # swscale's FAST_BILINEAR (the reader's choice for downscaling up to 2x) shifts the picture by
    # up to ~1 output pixel towards the top-left; a CAM cell is 16 pixels
    for image, tolerance in ((read, 1.25), (mem, 0.25)):
        weights = image / image.sum()
        centre = ((weights.sum(1) * np.arange(64)).sum(), (weights.sum(0) * np.arange(64)).sum())
        assert np.hypot(centre[0] - v, centre[1] - u) < tolerance, (fit, centre, (v, u))


@pytest.mark.parametrize("fine_cam", [False, True])
def test_cam_cells_are_centred_where_the_strides_say(fine_cam):
    """The gradient of one cell of the (linear, symmetric) blur net is centred on frame 8 j and
    pixel (s i, s k) (s = 16, or 8 with ``fine_cam``), not on (j + 1/2) T / T' or (i + 1/2) crop / h."""
    net = blur_net(crop_size=128, n_frames=64, fine_cam=fine_cam)  # large enough that the borders cut the field evenly
    video = torch.full((1, 3, 64, 128, 128), 0.5, requires_grad=True)  # every ReLU active: linear
    cam = net.cam(video, torch.zeros(1, 2, net.config.n_samples))
    side = 16 if fine_cam else 8
    assert cam.shape == (1, 8, side, side)
    (grad,) = torch.autograd.grad(cam[0, 4, side // 2, side // 2], video)  # the central cell
    g = grad[0].abs().sum(0)  # (T, H, W)
    axes = (((1, 2), 64), ((0, 2), 128), ((0, 1), 128))  # (dims summed out, length) for t, y, x
    centroid = [float((g.sum(dims) * torch.arange(n)).sum() / g.sum()) for dims, n in axes]
    st, sh, sw = cam_stride(net.config)
    assert (sh, sw) == ((8, 8) if fine_cam else (16, 16))
    assert abs(centroid[0] - st * 4) < 1.0 and abs(centroid[1] - 64) < 1.0 and abs(centroid[2] - 64) < 1.0


@pytest.mark.parametrize("fit", ["crop", "pad", "squash"])
def test_heat_map_peaks_on_the_flashing_square(tmp_path, fit):
    video = make_square_video(tmp_path / f"square_{fit}.mp4", fit)
    result = localize_file(blur_net(), video, LocalizeOptions(fit=fit))
    box = square_box(fit)
    assert result.cam.shape == (60, *FRAME_HW) and result.scale == 1.0
    assert in_box(result.peaks[:, 0], result.peaks[:, 1], box).all(), (box, result.peaks[:5])
    average = np.nan_to_num(result.time_average(), nan=-1)
    y, x = np.unravel_index(np.argmax(average), average.shape)
    assert in_box(x, y, box)
    # the same map from in-memory frames at the model's rate (the benchmark's path) ...
    net = blur_net()
    frames = square_frames(fit, 48)
    audio = np.zeros((net.config.n_samples * 3, 2), np.float32)
    mem = localize_clip(net, frames, audio, LocalizeOptions(fit=fit))
    assert in_box(mem.peaks[:, 0], mem.peaks[:, 1], box).all()
    # ... and from one clip: cam_clip, averaged over time, put on the frame's pixels
    clip_map = cam_to_frame(cam_clip(net, fit_frames(frames[:16], 64, fit), audio[: net.config.n_samples]).mean(0),
                            FRAME_HW, net.config, fit=fit)
    y, x = np.unravel_index(np.nanargmax(clip_map), clip_map.shape)
    assert clip_map.shape == FRAME_HW and in_box(x, y, box)


def test_a_larger_input_maps_the_whole_picture(tmp_path):
    """The net is fully convolutional: squashed to a 128 square (twice the crop) the whole wide
    frame is seen, in 8 x 8 cells of the same 16 model pixels, and the peak is still on the square."""
    box = square_box("squash", 128)
    frames = np.full((48, *FRAME_HW, 3), 128, np.uint8)
    y0, y1, x0, x1 = box
    frames[::3, int(np.ceil(y0)) : int(np.floor(y1)) + 1, int(np.ceil(x0)) : int(np.floor(x1)) + 1] = 255
    net = blur_net()
    audio = np.zeros((net.config.n_samples * 3, 2), np.float32)
    result = localize_clip(net, frames, audio, LocalizeOptions(fit="squash", size=128))
    assert result.cam_shape[1:] == (8, 8) and not np.isnan(result.cam).any()
    assert in_box(result.peaks[:, 0], result.peaks[:, 1], box).all(), (box, result.peaks[:5])
    cropped = localize_clip(net, frames, audio, LocalizeOptions(fit="crop"))
    assert np.isnan(cropped.cam).any()  # the default crop does not see the sides
    with pytest.raises(ValueError, match="size"):
        LocalizeOptions(size=8)


def test_a_reduced_map_keeps_its_scale_and_peaks(crop_outputs):
    video, full, _ = crop_outputs
    small = localize_file(blur_net(), video, LocalizeOptions(max_map_bytes=60 * 36 * 64 * 4))
    assert small.cam.shape == (60, 36, 64) and small.scale == 0.5
    assert in_box(small.peaks[:, 0], small.peaks[:, 1], square_box("crop"), slack=1.5).all()
    np.testing.assert_allclose(full.frame_map(7), full.cam[7], atol=1e-4)


# -- eval mode -------------------------------------------------------------------------------------

def test_the_map_of_a_clip_does_not_depend_on_its_batch():
    torch.manual_seed(0)
    model = ShiftNet(get_preset("tiny")).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(0)
    cfg = model.config
    frames = rng.integers(0, 256, (3, cfg.n_frames, cfg.crop_size, cfg.crop_size, 3), dtype=np.uint8)
    audio = (0.3 * rng.standard_normal((3, cfg.n_samples, 2))).astype(np.float32)
    alone = cam_clip(model, frames[0], audio[0])
    in_batch = cam_batch(model, frames, audio)[0]
    np.testing.assert_allclose(alone, in_batch, rtol=1e-5, atol=1e-6)
    assert model.training  # the mode is restored ...
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # ... and BN stats untouched
    video = torch.from_numpy(frames).permute(0, 4, 1, 2, 3).float() * 2 / 255 - 1  # (B, 3, T, H, W)
    sound = torch.from_numpy(audio).permute(0, 2, 1)  # (B, C, N)
    with torch.no_grad():
        signed = model.eval().cam(video[:1], sound[:1])[0].numpy()
        train_batch = model.train().cam(video, sound)[0].abs().numpy()  # batch statistics
    np.testing.assert_allclose(alone, np.abs(signed), rtol=1e-5, atol=1e-6)
    assert np.abs(train_batch - alone).max() > 1e-3  # with them the same clip would get another map


# -- windows ---------------------------------------------------------------------------------------

class StandIn(nn.Module):
    """The ShiftNet interface (the tiny preset, 16-px CAM cells) for maps made up by hand."""

    def __init__(self, n_frames: int = 16):
        super().__init__()
        self.config = get_preset("tiny", cam=True, n_frames=n_frames)
        self.dummy = nn.Parameter(torch.zeros(1))

    @staticmethod
    def cells(video) -> tuple[int, int, int]:
        """(T', h, w) of the map of ``video`` (B, 3, T, H, W)."""
        _, _, t, h, w = video.shape
        return -(-t // 8), -(-h // 16), -(-w // 16)


class WindowMean(StandIn):
    """Stand-in whose map is the window's mean brightness in every cell: on a brightening video
    consecutive windows disagree, and only a cross-fade joins them without a step."""

    def cam(self, video, audio):
        value = video.mean(dim=(1, 2, 3, 4)) + 2  # (B,)
        return value[:, None, None, None].expand(len(video), *self.cells(video))


class SliceIndex(StandIn):
    """Stand-in whose CAM slice j is j + 1 everywhere: the map over time shows where the slices sit."""

    def cam(self, video, audio):
        slices, h, w = self.cells(video)
        index = torch.arange(slices, dtype=torch.float32) + 1  # (T',)
        return index[None, :, None, None].expand(len(video), -1, h, w)


class LeftAgainst(StandIn):
    """Stand-in whose CAM is -1 on the left half of the cells and +1 on the right: evidence against
    sync on one side, for it on the other."""

    def cam(self, video, audio):
        slices, h, w = self.cells(video)
        side = torch.where(torch.arange(w) < w // 2, -1.0, 1.0)  # (w',)
        return side.expand(len(video), slices, h, -1)


def test_signed_maps_keep_evidence_against_sync_negative():
    model = LeftAgainst()
    frames = np.zeros((32, 64, 64, 3), np.uint8)
    audio = np.zeros((frame_to_sample(32, model.config.fps, model.config.sample_rate), 2), np.float32)
    release = localize_clip(model, frames, audio)
    signed = localize_clip(model, frames, audio, LocalizeOptions(signed=True))
    assert (release.value, signed.value) == ("|CAM|", "CAM")
    np.testing.assert_allclose(release.cells, 1.0, atol=1e-6)  # |CAM| lights both sides alike
    assert signed.cells.shape[-1] == 2  # the tiny net's 32-px crop: 2 x 2 cells
    np.testing.assert_allclose(signed.cells[..., 0], -1.0, atol=1e-6)
    np.testing.assert_allclose(signed.cells[..., 1], 1.0, atol=1e-6)
    assert signed.to_dict()["map"]["value"].startswith("CAM: ")
    assert signed.peaks[:, 0].min() > 32  # the strongest point is on the side that is in sync


def test_map_over_time_follows_the_slice_centres(tmp_path):
    """Slice j is centred on model frame 8 j; video frame k is model frame k * model_fps / fps."""
    model = SliceIndex(32)
    frames = np.zeros((32, 32, 32, 3), np.uint8)
    result = localize_clip(model, frames, np.zeros((model.config.n_samples, 2), np.float32))
    assert result.window_starts == (0,) and result.cam_shape == (4, 2, 2)
    np.testing.assert_allclose(result.cells[:, 0, 0], 1 + np.clip(np.arange(32) / 8, 0, 3), atol=1e-6)
    model = SliceIndex(16)
    video = write_video(tmp_path / "short.mp4", np.zeros((14, 32, 32, 3), np.uint8), FPS,
                        np.zeros((round(14 / FPS * RATE), 2), np.float32), RATE)  # 0.56 s: one window
    result = localize_file(model, video)
    assert result.window_starts == (0,) and result.n_frames == 14 and result.fps == FPS
    model_frame = np.arange(14) * float(model.config.fps / FPS)
    np.testing.assert_allclose(result.cells[:, 0, 0], 1 + np.clip(model_frame / 8, 0, 1), atol=1e-6)


def test_window_plan_covers_the_video():
    assert plan_windows(16, 16, 8) == [0]
    starts = plan_windows(100, 16, 8)
    assert starts[0] == 0 and starts[-1] == 84 and max(np.diff(starts)) <= 8
    assert plan_windows(100, 16, 8, max_windows=3) == [0, 42, 84]
    assert plan_windows(100, 16, 8, max_windows=1) == [42]
    with pytest.raises(ValueError):
        plan_windows(10, 16, 8)


def test_windows_cross_fade_continuously():
    model = WindowMean()
    frames = np.repeat(np.linspace(0, 255, 100).round().astype(np.uint8), 32 * 32 * 3).reshape(100, 32, 32, 3)
    audio = np.zeros((model.config.n_samples * 7, 2), np.float32)
    result = localize_clip(model, frames, audio)
    values = result.cells[:, 0, 0]
    window_step = 8 * 2 / 99  # brightness change (model units) between windows 8 frames apart
    assert len(result.window_starts) == 12
    assert (np.diff(values) >= -1e-6).all()  # no step back at a seam ...
    assert np.abs(np.diff(values)).max() < 0.3 * window_step  # ... and no jump: a hard cut would be window_step
    sparse = localize_clip(model, frames, audio, LocalizeOptions(max_windows=3)).cells[:, 0, 0]
    np.testing.assert_allclose(np.diff(sparse[16:42], 2), 0, atol=1e-5)  # gaps: linear in time
    assert np.abs(np.diff(sparse)).max() < 0.05


# -- outputs ---------------------------------------------------------------------------------------

def test_overlay_video_keeps_frames_size_duration_and_sound(crop_outputs):
    video, result, paths = crop_outputs
    src, out = probe(video), probe(paths["video"])
    assert (out.n_frames, out.width, out.height, out.fps) == (src.n_frames, src.width, src.height, src.fps)
    assert abs(out.duration_s - src.duration_s) < 0.05
    assert out.has_audio and out.channels == src.channels == 1
    sound_in, sound_out = read_clip(video, video=False).audio, read_clip(paths["video"], video=False).audio
    n = min(len(sound_in), len(sound_out))
    assert abs(len(sound_in) - len(sound_out)) < 0.02 * RATE
    assert np.abs(sound_in[:n] - sound_out[:n]).mean() < 0.008  # one sample late would be 0.019
    before, after = read_clip(video).frames.astype(int), read_clip(paths["video"]).frames.astype(int)
    unseen = np.isnan(result.cam[0]).all(0)  # columns 'crop' cut away: no colour
    assert unseen[:20].all() and unseen[-20:].all() and not unseen[40:90].any()
    assert np.abs(after[:, :, unseen] - before[:, :, unseen]).mean() < 2
    y0, y1, x0, x1 = (int(round(c)) for c in square_box("crop"))
    around = (slice(None), slice(y0 - 6, y1 + 6), slice(x0 - 6, x1 + 6))
    assert np.abs(after[around] - before[around]).mean() > 5  # the source is coloured


def test_overlay_colours_each_pixel_by_its_level_and_leaves_the_unlit_ones_alone():
    from avscene.report.plots import _colour_table, heatmap_overlay

    rng = np.random.default_rng(4)
    frames = rng.integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    heat = rng.uniform(-1, 3, (2, 5, 7)).astype(np.float32)
    heat[0, 0, :3] = np.nan  # unseen
    lo, hi, alpha = 0.5, 2.0, 0.35
    out = heatmap_overlay(frames, heat, lo, hi, max_alpha=alpha)
    colours = np.round(_colour_table("jet"))
    for i in np.ndindex(heat.shape):  # the documented blend, one pixel at a time
        if np.isnan(heat[i]):
            assert np.array_equal(out[i], frames[i])
            continue
        shade = int(np.round(np.clip((heat[i] - lo) * 255 / (hi - lo), 0, 255)))
        a = int(np.round(256 * alpha * shade / 255))
        want = (frames[i].astype(int) * (256 - a) + a * colours[shade].astype(int) + 128) >> 8
        assert np.array_equal(out[i], want), i
    assert np.array_equal(out[heat < lo], frames[heat < lo]) and not np.array_equal(out, frames)


def test_overlay_batches_draw_each_frame_as_alone(crop_outputs, monkeypatch):
    """Heat maps computed a batch of frames at a time (a short last batch too) colour every frame
    exactly as that frame's own map does."""
    from avscene.infer import localize
    from avscene.report.plots import heatmap_overlay

    video, result, _ = crop_outputs
    frames = read_clip(video, 0.0, 0.6, fps=result.fps).frames[:13]  # (13, H, W, 3)
    lo, hi = localize.overlay_thresholds(result.cam)
    monkeypatch.setattr(localize, "OVERLAY_BATCH_PIXELS", 5 * FRAME_HW[0] * FRAME_HW[1])  # batches of 5, 5, 3
    drawn = localize.render_overlay(result, frames, 2, lo, hi)
    for i, frame in enumerate(frames):
        expected = heatmap_overlay(frame, result.frame_map(2 + i, FRAME_HW), lo, hi)
        assert np.array_equal(drawn[i], expected), i


def test_npy_json_and_sheet(crop_outputs):
    video, result, paths = crop_outputs
    cells = np.load(paths["map"])  # the map on the CAM's own grid, one per video frame
    assert cells.dtype == np.float32 and cells.shape == (probe(video).n_frames, *result.cells.shape[1:])
    np.testing.assert_array_equal(cells, result.cells)
    assert result.cam.shape == (60, *FRAME_HW) and result.scale == 1.0  # pixels rendered on demand
    np.testing.assert_allclose(result.maps(10, 12), result.cam[10:12])
    meta = json.loads(paths["json"].read_text())
    assert meta["fps"] == "25/1" and meta["n_frames"] == 60 and meta["model_name"] == "blur"
    assert meta["map"]["shape"] == list(cells.shape) and meta["map"]["peaks_grid"] == list(FRAME_HW)
    assert len(meta["peaks"]) == 60 and meta["peaks"][10]["x"] == pytest.approx(float(result.peaks[10, 0]), abs=0.01)
    assert meta["windows"]["starts_frames"][0] == 0 and meta["windows"]["window_frames"] == 16
    assert paths["sheet"].stat().st_size > 5000
    assert sorted(p.name for p in paths["map"].parent.iterdir()) == sorted(p.name for p in paths.values())


def test_streaming_writer_matches_write_video_and_is_atomic(tmp_path):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (20, 16, 24, 3), dtype=np.uint8)
    audio = (0.5 * np.sin(np.arange(16000) / 10))[:, None].astype(np.float32)
    write_video(tmp_path / "whole.mp4", frames, 25, audio, 20000)
    with VideoWriter(tmp_path / "chunks.mp4", 25, (16, 24), sample_rate=20000, channels=1) as out:
        for a, b, c, d in ((0, 7, 0, 999), (7, 8, 999, 5000), (8, 20, 5000, 16000)):
            out.write(frames[a:b], audio[c:d])
    whole, chunks = read_clip(tmp_path / "whole.mp4"), read_clip(tmp_path / "chunks.mp4")
    np.testing.assert_array_equal(whole.frames, chunks.frames)
    np.testing.assert_allclose(whole.audio, chunks.audio, atol=1e-4)
    dest = tmp_path / "kept.mp4"
    dest.write_bytes(b"previous result")
    with pytest.raises(RuntimeError):
        with VideoWriter(dest, 25, (16, 24)) as out:
            out.write(frames[:3])
            raise RuntimeError("crash mid-way")
    assert dest.read_bytes() == b"previous result"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


# -- bad input and the CLI -------------------------------------------------------------------------

def test_bad_inputs_name_the_file(tmp_path):
    net = blur_net()
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    with pytest.raises(MediaError, match="bad.mp4"):
        localize_file(net, bad)
    short = make_square_video(tmp_path / "short.mp4", "crop", n_frames=10)
    with pytest.raises(ClipRangeError, match="short.mp4: too short"):
        localize_file(net, short)
    silent = write_video(tmp_path / "silent.mp4", np.zeros((40, 32, 32, 3), np.uint8), 25)
    with pytest.raises(NoStreamError, match="silent.mp4: has no audio"):
        localize_file(net, silent)


def test_cli_localize_writes_outputs_and_goes_on_after_a_bad_file(crop_outputs, tmp_path, capsys):
    video = crop_outputs[0]
    torch.manual_seed(0)
    model = ShiftNet(get_preset("tiny", cam=True))
    ckpt = save_checkpoint(tmp_path / "tiny.pt", {"task": "shift", "model_config": model.config.to_dict(),
                                                  "model": model.state_dict()})
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    code = cli.main(["localize", str(video), str(bad), "-o", str(tmp_path / "out"), "--model", str(ckpt),
                     "--max-windows", "3", "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == cli.EXIT_SOME_FAILED
    assert "square.mp4:" in out and "bad.mp4" in err
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["square_cam.json", "square_cam.mp4", "square_cam.npy", "square_sheet.png"]
    meta = json.loads((tmp_path / "out" / "square_cam.json").read_text())
    assert len(meta["windows"]["starts_frames"]) == 3 and meta["map"]["value"].startswith("|CAM|")
    assert cli.main(["localize", str(video), "-o", str(tmp_path / "signed"), "--model", str(ckpt), "--signed",
                     "--max-windows", "1", "--device", "cpu"]) == 0
    assert json.loads((tmp_path / "signed" / "square_cam.json").read_text())["map"]["value"].startswith("CAM: ")


def test_fit_frames_pads_a_picture_that_fills_one_side_exactly():
    """50 x 51 frames padded to 32: the width fills the square (no border there) while the height
    leaves a border of one pixel or less; the in-memory fit must place it like the reader does."""
    frames = np.full((2, 50, 51, 3), 200, np.uint8)
    out = fit_frames(frames, 32, "pad")
    geo = FitGeometry.of((50, 51), 32, "pad")
    assert out.shape == (2, 32, 32, 3)
    top = -geo.offset[0]
    assert out[:, top : top + geo.scaled_hw[0]].min() > 150
