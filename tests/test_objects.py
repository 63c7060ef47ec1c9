"""Audio-visual objects: peaks, NMS and tracking on hand-made maps, the activity timeline of a known
track, the objects task of the synthetic world, and ``avscene objects`` on one tiny scene with
tiny random-weight networks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avscene import cli
from avscene.checkpoints import save_checkpoint
from avscene.infer.objects import (ObjectsOptions, activity, box_mask, detect, find_tracks, grey_where, object_view,
                                   offset_gain, sound_share, step_motion, sync_verdict)
from avscene.infer.sync import SyncResult
from avscene.infer.tracks import (Peak, Track, activity_segments, box_values, find_peaks, link_tracks, merge_tracks,
                                  peak_box, snap_peak, track_boxes)
from avscene.models import SeparationNet, ShiftNet, get_preset
from avscene.models.separation_net import get_preset as get_separation_preset
from avscene.synth import SceneConfig, generate_scene
from avscene.synth.activity import gate_samples
from avscene.synth.timebase import Timebase


def blob(hw: tuple[int, int], x: float, y: float, value: float, sigma: float = 3.0) -> np.ndarray:
    ys, xs = np.mgrid[: hw[0], : hw[1]]
    return value * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))


# -- peaks and NMS ---------------------------------------------------------------------------------

def test_peaks_are_the_blobs_above_threshold_strongest_first():
    heat = blob((40, 60), 10, 12, 1.0) + blob((40, 60), 45, 30, 0.7) + blob((40, 60), 30, 5, 0.2)
    peaks = find_peaks(heat, threshold=0.5, radius=5)
    assert [(p.x, p.y) for p in peaks] == [(10.0, 12.0), (45.0, 30.0)]  # the 0.2 blob is below threshold
    assert peaks[0].value == pytest.approx(1.0) and peaks[1].value == pytest.approx(0.7)


def test_nms_keeps_the_stronger_of_two_close_peaks_and_max_peaks_caps():
    heat = blob((40, 60), 20, 20, 1.0, sigma=2) + blob((40, 60), 26, 20, 0.8, sigma=2)
    assert len(find_peaks(heat, 0.5, radius=3)) == 2  # 6 px apart: both kept with a 3-px radius
    close = find_peaks(heat, 0.5, radius=8)
    assert [(p.x, p.y) for p in close] == [(20.0, 20.0)]
    far = blob((40, 60), 10, 10, 1.0) + blob((40, 60), 50, 30, 0.9)
    assert len(find_peaks(far, 0.5, radius=5, max_peaks=1)) == 1


def test_nms_within_blobs_drops_a_bump_on_a_large_blob_and_keeps_a_separate_one():
    large = blob((60, 90), 30, 30, 1.0, sigma=12)  # one object many pixels wide ...
    heat = large + blob((60, 90), 38, 30, 0.1, sigma=1.0) + blob((60, 90), 75, 30, 0.8, sigma=3)  # ... a bump, another
    by_radius = find_peaks(heat, 0.5, radius=5, box_fraction=0.75)
    xs = sorted(round(p.x) for p in by_radius)
    assert len(xs) == 3 and xs[0] == 30 and abs(xs[1] - 38) <= 1 and xs[2] == 75  # the bump 8 px away survives
    by_blob = find_peaks(heat, 0.5, radius=5, box_fraction=0.75, within_blobs=True)
    assert sorted(round(p.x) for p in by_blob) == [30, 75]


def test_a_peak_snaps_onto_the_motion_near_it_and_stays_where_nothing_moves():
    peak = Peak(24.0, 24.0, 1.0, (12.0, 12.0, 36.0, 36.0))  # a coarse map's cell centre, on the rim
    motion = blob((64, 64), 31, 17, 5.0, sigma=2.0) + blob((64, 64), 56, 56, 9.0, sigma=2.0)  # near one, far one
    snapped = snap_peak(peak, motion, radius=12)
    assert (snapped.x, snapped.y) == (31.0, 17.0) and snapped.box == (19.0, 5.0, 43.0, 29.0)  # box moved along
    assert snap_peak(peak, motion, radius=12, floor=6.0) == peak  # the near motion is below the floor
    assert snap_peak(peak, np.zeros((64, 64)), radius=12) == peak


def test_step_motion_is_where_the_picture_changes_and_detect_snaps_to_it():
    frames = np.full((16, 48, 48, 3), 100, np.uint8)
    frames[1::2, 30:34, 10:14] = 200  # a small thing flickering at (11.5, 31.5) every frame
    motion = step_motion(frames, 8, cell_px=3.0)
    assert motion.shape == (2, 48, 48)
    assert np.unravel_index(motion[1].argmax(), (48, 48)) in {(31, 11), (31, 12), (32, 11), (32, 12)}
    heat = np.stack([blob((48, 48), 18, 24, 1.0, sigma=4.0)] * 2)  # the map's peak 11 px off the thing
    plain = detect(heat, ObjectsOptions(threshold=0.5, snap_cells=0), cell_px=8.0, motion=motion)
    assert [(p.x, p.y) for p in plain[1]] == [(18.0, 24.0)]
    snapped = detect(heat, ObjectsOptions(threshold=0.5, snap_cells=1.5), cell_px=8.0, motion=motion)[1][0]
    assert abs(snapped.x - 11.5) <= 1 and abs(snapped.y - 31.5) <= 1


def _scan(scores: dict[int, float]) -> SyncResult:
    offsets = np.arange(-5, 6)
    values = np.array([scores.get(int(k), 0.0) for k in offsets])
    best = int(offsets[values.argmax()])
    return SyncResult(path=None, fps=30, offsets_frames=offsets, scores=values, aligned_probability=0.5,
                      offset_frames=best, confidence=0.5, windows=())


def test_an_object_is_out_of_sync_only_when_its_offset_beats_zero_clearly():
    options = ObjectsOptions(min_offset_gain=1.0)
    clear, faint, near = _scan({4: 2.5, 0: 0.5}), _scan({4: 1.2, 0: 0.5}), _scan({1: 3.0, 0: 0.0})
    assert offset_gain(clear) == pytest.approx(2.0) and not sync_verdict(clear, options)
    assert offset_gain(faint) == pytest.approx(0.7) and sync_verdict(faint, options)  # a peak, not evidence
    assert sync_verdict(near, options)  # within a frame of 0
    assert offset_gain(_scan({0: 1.0})) == 0.0


def test_nan_pixels_are_never_peaks_and_a_blob_box_covers_it():
    heat = blob((30, 30), 15, 15, 1.0, sigma=2.0)
    heat[:, :5] = np.nan
    heat[3, 2] = np.nan
    peaks = find_peaks(heat, 0.5, 3)
    assert len(peaks) == 1
    x0, y0, x1, y1 = peak_box(np.where(np.isnan(heat), -np.inf, heat), 15, 15, 0.5)
    # half maximum of a Gaussian with sigma 2 is at 2.35 px: pixels 13..17 on both axes
    assert (x0, y0, x1, y1) == (13.0, 13.0, 18.0, 18.0)


# -- linking peaks over time -----------------------------------------------------------------------

def _peak(x: float, y: float, value: float = 1.0) -> Peak:
    return Peak(x, y, value, (x - 2, y - 2, x + 3, y + 3))


def test_two_moving_objects_become_two_tracks_and_a_pause_is_bridged():
    steps = []
    for k in range(12):
        step = [_peak(10 + k, 10, 2.0)]  # moves right, always found
        if not 4 <= k <= 6:  # pauses for 3 steps
            step.append(_peak(50, 40 - k, 1.0))
        steps.append(step)
    steps[9].append(_peak(80, 5, 0.5))  # a one-off: dropped (min_detections 2)
    tracks = link_tracks(steps, max_distance=5, max_gap=4)
    assert len(tracks) == 2
    assert tracks[0].steps == tuple(range(12)) and [p.x for p in tracks[0].peaks] == list(range(10, 22))
    assert tracks[1].steps == (0, 1, 2, 3, 7, 8, 9, 10, 11)
    assert len(link_tracks(steps, max_distance=5, max_gap=1)) == 3  # gap too long: the pauser splits


def test_links_take_the_least_total_distance_not_the_nearest_first():
    """Objects at x 0 and 4 move to 3 and 7: linking the nearest pair first (4 -> 3) would leave
    0 -> 7, too far, and break a track; the assignment links 0 -> 3 and 4 -> 7."""
    steps = [[_peak(0, 10), _peak(4, 10)], [_peak(3, 10), _peak(7, 10)]]
    tracks = link_tracks(steps, max_distance=5, max_gap=0)
    assert sorted([p.x for p in t.peaks] for t in tracks) == [[0, 3], [4, 7]]


def test_tracks_on_one_object_merge_and_a_neighbour_stays_apart():
    """A large object lit on its top rim for a while, then on its left rim (two tracks 12 px
    apart, each inside the other's blob), and a neighbour 40 px away."""
    def rim(x, y, value):
        return Peak(x, y, value, (20.0, 20.0, 50.0, 50.0))  # the object's blob
    top = Track((0, 1, 2, 3), tuple(rim(35, 24, 1.0) for _ in range(4)))
    left = Track((3, 4, 5), (rim(24, 33, 2.0), rim(24, 33, 0.8), rim(25, 33, 0.8)))
    neighbour = Track((0, 1), (_peak(80, 35, 1.5), _peak(80, 35, 1.5)))
    merged = merge_tracks([top, left, neighbour])
    assert len(merged) == 2 and merged[1] is neighbour
    assert merged[0].steps == (0, 1, 2, 3, 4, 5)
    assert merged[0].peaks[3].value == 2.0  # the stronger peak of the step both found


def test_track_boxes_interpolate_between_detections_and_hold_at_the_ends():
    track = Track(steps=(1, 3), peaks=(_peak(10, 20), _peak(30, 20)))
    centres = np.array([0.0, 10.0, 20.0, 30.0, 40.0])  # step k centred on frame 10 k
    boxes = track_boxes(track, centres, 50, (60, 80))
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 - 0.5
    assert cx[:11] == pytest.approx(10.0) and cx[20] == pytest.approx(20.0) and cx[30:] == pytest.approx(30.0)
    assert (boxes[:, 2] - boxes[:, 0]) == pytest.approx(5.0)


# -- activity timeline ----------------------------------------------------------------------------

def test_timeline_of_a_known_track_says_when_it_sounds():
    """A map with an object at (20, 20) lit on frames 10-29 and one at (60, 30) lit on 25-44:
    two tracks, each active exactly when its blob is lit."""
    T, hw = 48, (48, 80)
    maps = np.zeros((T, *hw), np.float32)
    maps[10:30] += blob(hw, 20, 20, 1.0)
    maps[25:45] += blob(hw, 60, 30, 1.0)
    options = ObjectsOptions(threshold=0.5, activity_threshold=0.5, max_gap_steps=2)
    tracks = find_tracks(maps, options, cell_px=4.0, step_frames=4)
    assert len(tracks) == 2
    by_x = sorted(tracks, key=lambda t: t.boxes[0, 0])
    assert np.flatnonzero(by_x[0].active).tolist() == list(range(10, 30))
    assert np.flatnonzero(by_x[1].active).tolist() == list(range(25, 45))
    assert activity_segments(by_x[0].active, fps=10.0) == [(1.0, 3.0)]
    assert all(0 < t.confidence <= 1 for t in tracks)


def test_sound_share_is_the_objects_part_of_the_mixture_per_frame():
    """30 frames at 10 fps, 100 samples a frame: the object is the whole mixture for frames
    0-9, half its amplitude for 10-19 (a quarter of its energy), silent for 20-29."""
    rng = np.random.default_rng(0)
    mixture = rng.standard_normal((3000, 2)).astype(np.float32)
    sound = mixture.mean(1).copy()
    sound[1000:2000] *= 0.5
    sound[2000:] = 0
    share = sound_share(sound[:2900], mixture, n_frames=30, fps=10, sample_rate=1000)  # a short sound is padded
    assert share.shape == (30,) and share.dtype == np.float32
    assert share[:8] == pytest.approx(1.0, abs=1e-6) and share[12:18] == pytest.approx(0.25, abs=1e-6)
    assert share[22:] == pytest.approx(0.0, abs=1e-6)


def test_activity_joins_map_and_sound_and_drops_flicker():
    strength = np.zeros(40)
    strength[5:15] = 1.0  # a spell ...
    strength[9:11] = 0.0  # ... with a 2-frame pause: filled
    strength[35:37] = 1.0  # a 2-frame blip: dropped
    share = np.zeros(40)
    share[20:27] = 0.5  # heard, not seen
    active = activity(strength, 0.5, share, 0.1)
    assert np.flatnonzero(active).tolist() == list(range(5, 15)) + list(range(20, 27))
    assert np.flatnonzero(activity(strength, 0.5)).tolist() == list(range(5, 15))


def test_box_values_box_mask_and_grey_where():
    maps = np.zeros((2, 10, 10), np.float32)
    maps[0, 2, 3], maps[1, 8, 8] = 5.0, 7.0
    boxes = np.array([[2, 1, 5, 4], [2, 1, 5, 4]], np.float32)
    assert box_values(maps, boxes).tolist() == [5.0, 0.0]
    mask = box_mask(boxes, (10, 10))
    assert mask[0, 1:4, 2:5].all() and mask[0].sum() == 9
    frames = np.zeros((2, 10, 10, 3), np.uint8)
    assert (grey_where(frames, mask)[0, 2, 3] == 128).all() and (frames == 0).all()
    view = object_view(np.arange(2 * 10 * 10 * 3, dtype=np.uint8).reshape(2, 10, 10, 3), boxes, 4, 4)
    assert view.shape == (2, 4, 4, 3)


# -- the synthetic world's objects task -------------------------------------------------------------

def test_objects_scenes_have_sounding_objects_taking_turns_and_one_offset():
    config = SceneConfig(task="objects", duration_s=3.0, n_objects=(2, 4), motions=("pulse",), salience=1.0,
                         object_offset_s=0.3, width=64, height=64)
    scene = generate_scene(config, 3)
    tb = Timebase.create(3.0, scene.fps, scene.sample_rate)
    assert 2 <= len(scene.objects) <= 4 and all(o.sounding for o in scene.objects)
    assert scene.activity.shape == (len(scene.objects), scene.n_frames) and scene.activity.any(1).all()
    assert not scene.activity.all(1).any()  # every object pauses at least once in 3 s
    assert 0 <= scene.offset_object < len(scene.objects)
    for k, o in enumerate(scene.objects):
        assert o.lag_s == pytest.approx(0.3 if k == scene.offset_object else 0.0, abs=1e-4)
        assert all(scene.activity[k, f] for f in o.event_frames)  # events only while active
        if k != scene.offset_object:  # its sound is silent outside its turns
            off = gate_samples(~scene.activity[k], tb) > 0.999
            assert np.abs(scene.sources[o.source][off]).max() < 1e-6
    with pytest.raises(ValueError, match="objects task only"):
        SceneConfig(task="sync", object_offset_s=0.2)


def test_cli_synth_objects_writes_activity(tmp_path):
    assert cli.main(["synth", str(tmp_path / "set"), "--task", "objects", "--n", "1", "--size", "64",
                     "--duration-s", "1.5", "--object-offset-s", "0.2", "--quiet"]) == 0
    with np.load(tmp_path / "set" / "scene_00000.npz") as z:
        assert z["activity"].dtype == bool and z["activity"].shape[0] >= 2
    record = json.loads((tmp_path / "set" / "scene_00000.json").read_text())
    assert record["offset_object"] >= 0 and record["config"]["object_offset_s"] == 0.2


# -- the command -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_networks(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("nets")
    shift = ShiftNet(get_preset("tiny", cam=True))
    sep = SeparationNet(get_separation_preset("tiny"))
    shift_ckpt = save_checkpoint(folder / "shift.pt", {"task": "shift", "model_config": shift.config.to_dict(),
                                                      "model": shift.state_dict()})
    sep_ckpt = save_checkpoint(folder / "sep.pt", {"task": "separation", "model_config": sep.config.to_dict(),
                                                  "model": sep.state_dict()})
    return shift_ckpt, sep_ckpt


def test_cli_objects_writes_every_output_and_goes_on_after_a_bad_file(tiny_networks, tmp_path, capsys):
    shift_ckpt, sep_ckpt = tiny_networks
    assert cli.main(["synth", str(tmp_path / "set"), "--task", "objects", "--n", "1", "--size", "64",
                     "--duration-s", "1.2", "--quiet"]) == 0
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    out = tmp_path / "out"
    argv = ["objects", str(tmp_path / "set" / "scene_00000.mp4"), str(bad), "-o", str(out), "--model", str(shift_ckpt),
            "--separation-model", str(sep_ckpt), "--threshold", "0.3", "--max-objects", "2", "--device", "cpu"]
    code = cli.main(argv)
    stdout, stderr = capsys.readouterr()
    assert code == cli.EXIT_SOME_FAILED and "bad.mp4" in stderr and "scene_00000.mp4:" in stdout
    meta = json.loads((out / "scene_00000_objects.json").read_text())
    assert meta["network"]["name"].endswith("shift.pt") and meta["separation_network"]["name"].endswith("sep.pt")
    assert 1 <= len(meta["objects"]) <= 2
    names = {p.name for p in out.iterdir()}
    assert {"scene_00000_objects.json", "scene_00000_objects.mp4", "scene_00000_timeline.png"} <= names
    for obj in meta["objects"]:
        assert len(obj["boxes"]) == meta["n_frames"] and len(obj["active"]) == meta["n_frames"]
        assert obj["sync"]["sign"].startswith("positive")
        assert {f"scene_00000_obj{obj['id']}.wav", f"scene_00000_obj{obj['id']}.mp4"} <= names
        assert isinstance(obj["sync"]["in_sync"], bool) and "gain_over_zero" in obj["sync"]
        assert len(obj["sound_share"]) == meta["n_frames"]
    assert meta["options"]["signed"] is False and meta["options"]["box_cells"] == 2.0
    again = argv[:2] + argv[3:] + ["--no-sync", "--no-separation", "--signed", "--box-cells", "3", "--snap-cells",
                                   "0", "--min-offset-gain", "2", "--sound-share", "0"]
    assert cli.main(again) == 0  # never overwrites: _2
    meta = json.loads((out / "scene_00000_2_objects.json").read_text())
    assert meta["options"]["signed"] is True and meta["options"]["box_cells"] == 3.0
    assert meta["options"]["snap_cells"] == 0.0 and meta["options"]["min_offset_gain"] == 2.0
    assert meta["options"]["sound_share"] is None


def test_a_silent_map_gives_no_object_and_still_a_timeline(tmp_path):
    from fractions import Fraction

    from avscene.infer.objects import ObjectsResult
    from avscene.infer.objects_output import plot_timeline

    maps = np.zeros((24, 32, 32), np.float32)
    options = ObjectsOptions()
    assert find_tracks(maps, options, cell_px=8.0, step_frames=8) == []
    result = ObjectsResult(path=None, fps=Fraction(30000, 1001), sample_rate=21000, frame_hw=(32, 32), tracks=(),
                           maps=maps, map_scale=1.0, step_frames=8, options=options)
    assert result.to_dict()["objects"] == [] and result.describe() == "0 object(s)"
    assert plot_timeline(result, tmp_path / "t.png").stat().st_size > 0


def test_the_timeline_names_its_network_and_its_caveat():
    from avscene.infer.objects_output import _timeline_title

    plain = _timeline_title("talk", {"network": {"name": "/runs/a/checkpoint.pt", "sha256": "abc123"}})
    assert plain == "talk: who sounds when\nnetwork checkpoint.pt [abc123]"
    warned = _timeline_title("talk", {"network": {"name": "x.pt", "sha256": "f"}, "caveat": "synthetic only"})
    assert warned.endswith("not meaningful on real video")


def test_the_cli_states_the_tuning_defaults_objects_options_has():
    for name, help_text in cli._OBJECTS_TUNING:
        assert f"default {getattr(ObjectsOptions, name):g}" in help_text, name
