"""The synthetic audio-visual world: determinism, exact ground truth, sync of sound and motion,
and the structure of each task."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import time
from fractions import Fraction

import numpy as np
import pytest
from scipy.ndimage import binary_erosion

from avscene.constants import frame_to_sample, seconds_to_frames
from avscene.synth import (ACTION_CLASSES, ACTIONS, SOUND_PAIRS, TIMING_PAIRS, VOICE_GROUPS, VOICES,
                           SceneConfig, Timebase, action_class_names, action_index, babble,
                           build_actor, ensure_dataset, generate_scene, load_ground_truth, scene_seed,
                           voices_in_group, write_dataset)
from avscene.synth.actors import PLAIN_BEHAVIOURS
from avscene.synth.dataset import default_workers
from avscene.synth.render import shape_family

DUR = 2.0  # seconds: short scenes keep the file fast


def short(task: str, **kw) -> SceneConfig:
    return SceneConfig(task=task, duration_s=kw.pop("duration_s", DUR), **kw)


@pytest.fixture(scope="module")
def scenes() -> dict[str, list]:
    """Four short scenes of every task (seeds 0-3)."""
    return {task: [generate_scene(short(task), seed) for seed in range(4)]
            for task in ("sync", "localize", "separation", "action")}


def all_scenes(scenes):
    return [s for group in scenes.values() for s in group]


def onset_near(x: np.ndarray, sr: int, expected: int, search_ms: float = 15.0, win_ms: float = 3.0):
    """Sample in ``expected +- search_ms`` where the energy of the next ``win_ms`` most exceeds
    that of the previous ``win_ms`` (log ratio), and that ratio (decades)."""
    d = max(2, int(sr * win_ms / 1000))
    c = np.concatenate([[0.0], np.cumsum(np.square(x, dtype=np.float64))])
    r = int(sr * search_ms / 1000)
    n = np.arange(max(d, expected - r), min(len(x) - d, expected + r))
    ratio = np.log10((c[n + d] - c[n]) / d + 1e-12) - np.log10((c[n] - c[n - d]) / d + 1e-12)
    i = int(np.argmax(ratio))
    return int(n[i]), float(ratio[i])


def frame_rms(x: np.ndarray, fps, sr: int, n_frames: int) -> np.ndarray:
    b = [frame_to_sample(k, fps, sr) for k in range(n_frames + 1)]
    return np.array([np.sqrt(np.mean(x[b[k]:b[k + 1]] ** 2)) for k in range(n_frames)])


def estimate_f0(x: np.ndarray, sr: int) -> float:
    """Median autocorrelation pitch (Hz) of the loud 40 ms windows of ``x``."""
    n, hop, level = int(0.04 * sr), int(0.02 * sr), np.sqrt(np.mean(x**2))
    lo, hi = int(sr / 400), int(sr / 70)
    est = []
    for i in range(0, len(x) - n, hop):
        w = x[i:i + n]
        if np.sqrt(np.mean(w**2)) < 0.5 * level:
            continue
        ac = np.correlate(w, w, "full")[n - 1:]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.3 * ac[0]:
            est.append(sr / lag)
    return float(np.median(est))


# --- configuration, shapes, determinism -----------------------------------------------------------

def test_config_normalises_fps_and_rejects_bad_values():
    assert SceneConfig(fps=29.97).fps == Fraction(30000, 1001)
    assert SceneConfig(fps="30000/1001").fps == Fraction(30000, 1001)
    assert SceneConfig(fps=Fraction(25)).fps == 25
    cfg = SceneConfig(task="action", label=3, n_objects=[1, 2])
    assert SceneConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    for bad in (dict(task="dance"), dict(difficulty=1.5), dict(voice_pairing="x"), dict(width=8),
                dict(label=99), dict(n_objects=(0, 2))):
        with pytest.raises(ValueError):
            SceneConfig(**bad)


def test_shapes_dtypes_and_lengths(scenes):
    fps, sr = Fraction(30000, 1001), 21000
    T = seconds_to_frames(DUR, fps)
    N = frame_to_sample(T, fps, sr)
    for s in all_scenes(scenes):
        S, O = len(s.sources), len(s.objects)
        assert s.frames.shape == (T, 96, 96, 3) and s.frames.dtype == np.uint8
        assert s.audio.shape == (N, 2) and s.audio.dtype == np.float32
        assert s.sources.shape == (S, N, 2) and s.sources.dtype == np.float32
        assert s.noise.shape == (N, 2) and s.noise.dtype == np.float32
        assert s.masks.shape == (O, T, 96, 96) and s.masks.dtype == bool
        assert s.boxes.shape == (O, T, 4) and s.boxes.dtype == np.float32
        assert len(s.source_onscreen) == len(s.source_object) == len(s.voice_groups) == len(s.voices) == S
        assert s.fps == fps and s.sample_rate == sr and s.n_frames == T and s.n_samples == N
        for o in s.objects:
            assert list(o.event_frames) == sorted(o.event_frames)
            assert all(0 <= k < T for k in o.event_frames)
            assert o.events_s == pytest.approx([k / float(fps) for k in o.event_frames])


def test_other_rates_and_sizes():
    s = generate_scene(SceneConfig(task="sync", width=64, height=48, fps=25, sample_rate=16000,
                                   duration_s=1.5), 3)
    assert s.frames.shape == (seconds_to_frames(1.5, 25), 48, 64, 3)
    assert s.audio.shape == (frame_to_sample(s.n_frames, 25, 16000), 2)


@pytest.mark.parametrize("task", ["sync", "localize", "separation", "action"])
def test_same_seed_same_scene_other_seed_other_scene(task):
    a, b, c = (generate_scene(short(task, duration_s=1.0), seed) for seed in (7, 7, 8))
    for name in ("frames", "audio", "sources", "noise", "masks"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert [o.event_frames for o in a.objects] == [o.event_frames for o in b.objects]
    assert not np.array_equal(a.frames, c.frames)
    assert a.audio.shape != c.audio.shape or not np.array_equal(a.audio, c.audio)


def test_scene_seed_is_deterministic_and_distinct():
    assert scene_seed(1, 2) == scene_seed(1, 2)
    assert len({scene_seed(s, i) for s in range(5) for i in range(50)}) == 250


# --- exact ground truth ---------------------------------------------------------------------------

def test_audio_is_exactly_sources_plus_noise_without_clipping(scenes):
    for s in all_scenes(scenes):
        assert np.array_equal(s.audio, s.sources.sum(0, dtype=np.float32) + s.noise)
        np.testing.assert_allclose(s.audio, s.onscreen_audio() + s.offscreen_audio() + s.noise, atol=1e-6)
        assert np.abs(s.audio).max() <= 0.91
        assert np.abs(s.audio).max() > 0.5  # normalised, not silent
        # Noise sits at the configured SNR below the sources.
        snr = 10 * np.log10(np.mean(s.sources.sum(0) ** 2) / np.mean(s.noise**2))
        assert snr == pytest.approx(s.config.snr_db, abs=0.1)


def test_masks_and_boxes_agree_with_pixels(scenes):
    for s in all_scenes(scenes):
        T = s.n_frames
        for i, o in enumerate(s.objects):
            m = s.masks[i]
            assert m.any(axis=(1, 2)).all(), "every object is visible (amodally) in every frame"
            for t in range(0, T, 7):
                x0, y0, x1, y1 = o.boxes[t]
                ty, tx = np.nonzero(m[t])
                assert tx.min() >= x0 and tx.max() < x1 and ty.min() >= y0 and ty.max() < y1
                # The box is tight: at most a couple of anti-aliased pixels beyond the mask
                # (two at the sharp corners of triangles).
                assert max(tx.min() - x0, x1 - 1 - tx.max(), ty.min() - y0, y1 - 1 - ty.max()) <= 2
            if o.shape == "face" or o.kind == "pulse":
                continue  # features / brightening change the colour
            later = s.masks[i + 1:].any(0) if i + 1 < len(s.objects) else np.zeros_like(m)
            inner = np.stack([binary_erosion(f) for f in (m & ~later)])
            if inner.sum() < 20:
                continue
            inside = s.frames[inner].astype(np.float64).mean(0)
            assert np.abs(inside - np.array(o.colour)).max() < 20, (o.shape, inside, o.colour)


def test_silent_objects_have_no_source_and_sources_point_back(scenes):
    for s in all_scenes(scenes):
        for i, o in enumerate(s.objects):
            assert o.sounding == (o.source is not None)
            if not o.sounding:
                assert o.sound is None and o.sound_events_s == ()
            else:
                assert s.source_onscreen[o.source] and s.source_object[o.source] == i
        for k, (on, obj) in enumerate(zip(s.source_onscreen, s.source_object)):
            assert (obj >= 0) == on
            if on:
                assert s.objects[obj].source == k


# --- sound is caused by motion --------------------------------------------------------------------

@pytest.mark.parametrize("behaviour", PLAIN_BEHAVIOURS, ids=lambda b: f"{b.motion}-{b.sound}")
def test_every_sound_kind_starts_at_its_visual_event(behaviour):
    tb = Timebase.create(3.0, Fraction(30000, 1001), 21000)
    actor = build_actor(behaviour, "face" if behaviour.motion == "talk" else "disc", 9.0,
                        (200, 50, 50), tb, 96, 96, np.random.default_rng(5))
    frames = actor.motion.event_frames
    assert len(frames) >= 2
    expected = [frame_to_sample(k, tb.fps, tb.sample_rate) for k in frames]
    assert list(actor.sound_onsets) == expected
    for e in expected:
        if e < 100:
            continue
        got, strength = onset_near(actor.sound, tb.sample_rate, e)
        assert abs(got - e) <= 0.003 * tb.sample_rate, (behaviour, e, got)
        assert strength > 0.5  # a clear rise in energy, > 3x


@pytest.mark.parametrize("label", [action_index("bounce_thud"), action_index("pulse_tone")])
def test_visual_events_show_in_the_pixels_on_their_frame(label):
    s = generate_scene(short("action", label=label, difficulty=0.0, duration_s=4.0), 21)
    i = next(i for i, o in enumerate(s.objects) if o.sounding)
    o, H, W = s.objects[i], *s.frames.shape[1:3]
    x0, y0, x1, y1 = o.boxes.T
    gap = np.minimum.reduce([x0, y0, W - x1, H - y1])  # distance of the box to the nearest border
    area = s.masks[i].sum(axis=(1, 2))
    assert len(o.event_frames) >= 3
    for k in o.event_frames:
        if o.kind == "bounce":  # touches its floor exactly on the event frame, not one frame off
            assert gap[k] == 0 and (k == 0 or gap[k - 1] > 0) and (k + 1 == s.n_frames or gap[k + 1] > 0)
        else:  # a pulse has grown on its onset frame
            assert k == 0 or area[k] > 1.2 * area[k - 1]


def test_sounding_objects_onsets_coincide_with_their_events_in_the_mix_sources():
    n_checked = 0
    for seed in range(3):
        s = generate_scene(short("sync", n_objects=(3, 3), n_sounding=3, n_offscreen=(1, 1)), seed)
        for o in s.objects:
            assert o.sound_events_s == pytest.approx(o.events_s, abs=1e-4)
            mono = s.sources[o.source].sum(1)
            for k in o.event_frames:
                e = frame_to_sample(k, s.fps, s.sample_rate)
                if e < 100:
                    continue
                got, _ = onset_near(mono, s.sample_rate, e)
                assert abs(got - e) <= 0.003 * s.sample_rate, (o.kind, o.sound, k)
                n_checked += 1
    assert n_checked > 20


def test_stereo_follows_the_object():
    s = generate_scene(short("localize", duration_s=3.0, n_offscreen=(0, 0)), 11)
    o = next(o for o in s.objects if o.sounding)
    src = s.sources[o.source]
    centre_x = (o.boxes[:, 0] + o.boxes[:, 2]) / 2 / s.frames.shape[2]
    fr = lambda c: frame_rms(src[:, c], s.fps, s.sample_rate, s.n_frames)  # noqa: E731
    left, right = fr(0), fr(1)
    loud = (left + right) > 0.2 * (left + right).max()
    balance = (right**2 / (left**2 + right**2 + 1e-12))[loud]  # constant power: = sin^2(pan)
    expected = np.sin(centre_x[loud] * np.pi / 2) ** 2
    assert np.abs(balance - expected).max() < 0.1


# --- tasks ----------------------------------------------------------------------------------------

def test_localize_has_one_sounding_object_and_look_alike_silent_distractors(scenes):
    for s in scenes["localize"]:
        sounding = [o for o in s.objects if o.sounding]
        silent = [o for o in s.objects if not o.sounding]
        assert len(sounding) == 1 and 1 <= len(silent) <= 2
        assert {o.kind for o in s.objects} == {sounding[0].kind}
        assert {shape_family(o.shape) for o in s.objects} == {shape_family(sounding[0].shape)}
        assert sum(s.source_onscreen) == 1
        assert all(len(o.event_frames) >= 1 for o in silent)  # distractors move too


def test_apart_layout_gives_each_object_its_own_grid_cell_with_the_shared_scenes_objects():
    kw = dict(motions=("pulse",), salience=1.0)
    for seed in range(4):
        shared = generate_scene(short("localize", **kw), seed)  # 96 px, objects crowd the middle
        apart = generate_scene(short("localize", width=192, height=192, layout="apart", **kw), seed)
        assert [o.radius_px for o in apart.objects] == [o.radius_px for o in shared.objects]  # sized for a cell
        assert [o.event_frames for o in apart.objects] == [o.event_frames for o in shared.objects]
        power = lambda s: (s.sources.astype(np.float64) ** 2).sum(2) / s.gain ** 2  # noqa: E731 (pan-free)
        assert np.allclose(power(apart), power(shared), rtol=1e-4, atol=1e-9)  # same sounds, panned elsewhere
        cells = []
        for o in apart.objects:
            lo, hi = o.boxes[:, :2].min(0), o.boxes[:, 2:].max(0)  # over the whole scene, pulses included
            cell = (lo // 96).astype(int)
            assert np.all(hi <= (cell + 1) * 96 + 0.5), "an object leaves its cell"
            cells.append(tuple(cell))
        assert len(set(cells)) == len(cells), "two objects share a cell"
    with pytest.raises(ValueError, match="layout"):
        short("localize", layout="tiled")
    four = generate_scene(short("sync", n_objects=(4, 4), width=64, height=64, layout="apart"), 0)
    assert len({tuple((o.boxes[:, :2].min(0) // 32).astype(int)) for o in four.objects}) == 4  # the whole grid


@pytest.mark.parametrize("pairing", ["within", "across"])
def test_separation_talkers_pairing_and_lip_motion(pairing):
    for seed in range(3):
        s = generate_scene(short("separation", duration_s=3.0, voice_pairing=pairing), seed)
        assert s.voice_pairing == pairing
        assert sorted(s.source_onscreen) == [False, True]
        assert set(s.source_kinds) == {"babble"}
        on, off = (s.source_onscreen.index(True), s.source_onscreen.index(False))
        assert (s.voice_groups[on] == s.voice_groups[off]) == (pairing == "within")
        assert s.voices[on] != s.voices[off]
        face = s.objects[s.source_object[on]]
        assert face.shape == "face" and face.kind == "talk" and face.voice == s.voices[on]
        own = frame_rms(s.sources[on].sum(1), s.fps, s.sample_rate, s.n_frames)
        other = frame_rms(s.sources[off].sum(1), s.fps, s.sample_rate, s.n_frames)
        r_own = np.corrcoef(face.mouth, own)[0, 1]
        r_other = np.corrcoef(face.mouth, other)[0, 1]
        assert r_own > 0.6 and r_own > r_other + 0.3
        # The mouth pixels really move: frames where it is wide open differ inside the face box.
        assert face.mouth.max() == pytest.approx(1.0) and face.mouth.min() < 0.1


def test_separation_scenes_of_a_motion_world_pair_a_sounding_object_with_off_screen_bursts():
    from avscene.synth.worlds import SYNTHETIC_SEPARATION_WORLDS

    pulses = SYNTHETIC_SEPARATION_WORLDS["pulses"]
    look_alikes = 0
    for seed in range(6):
        s = generate_scene(short("separation", duration_s=3.0, **pulses), seed)
        assert s.voice_pairing is None and "babble" not in s.source_kinds
        on = [i for i, o in enumerate(s.source_onscreen) if o]
        assert len(on) == 1 and len(s.source_onscreen) >= 2, "one on-screen source, off-screen ones besides"
        sounding = [o for o in s.objects if o.sounding]
        assert len(sounding) == 1 and sounding[0].kind == "pulse" and sounding[0].source == on[0]
        silent = [o for o in s.objects if not o.sounding]
        assert all(shape_family(o.shape) == shape_family(sounding[0].shape) for o in silent)
        look_alikes += bool(silent)
        levels = 20 * np.log10([np.sqrt(np.mean(x.astype(np.float64) ** 2)) for x in s.sources])
        assert np.ptp(levels) < 8.0, "off-screen bursts as loud as the on-screen ones (+-3 dB each, bursts vary)"
    assert 0 < look_alikes < 6  # a look-alike in some scenes (difficulty 0.5), not all


def test_action_classes_are_covered_and_differ():
    names = action_class_names()
    assert names == ACTION_CLASSES and len(names) >= 6 and len(set(names)) == len(names)
    assert action_index(names[3]) == 3
    behaviours = [a.behaviour for a in ACTIONS]
    assert len(set(behaviours)) == len(behaviours)
    for a, b in SOUND_PAIRS:  # same motion, different sound
        assert behaviours[a].motion == behaviours[b].motion and behaviours[a].sound != behaviours[b].sound
    for a, b in TIMING_PAIRS:  # same motion and sound, different timing
        assert (behaviours[a].motion, behaviours[a].sound) == (behaviours[b].motion, behaviours[b].sound)
        assert behaviours[a].lag_s != behaviours[b].lag_s

    centroid = {}
    for label, name in enumerate(names):
        s = generate_scene(short("action", label=label, difficulty=0.0, duration_s=2.5), 100 + label)
        assert s.label == label and s.label_name == name
        main = next(o for o in s.objects if o.sounding)
        assert (main.kind, main.sound) == (behaviours[label].motion, behaviours[label].sound)
        lo, hi = behaviours[label].lag_s
        lags = np.array(main.sound_events_s) - np.array(main.events_s[:len(main.sound_events_s)])
        assert np.all((lags >= lo - 1e-3) & (lags <= hi + 1e-3))
        x = s.sources[main.source].sum(1)
        spec = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(len(x), 1 / s.sample_rate)
        centroid[name] = (spec * f).sum() / spec.sum()
    assert centroid["bounce_thud"] < 0.5 * centroid["bounce_clink"]


def test_unseen_action_sound_adds_another_class_sound_off_screen_and_leaves_the_picture():
    for seed in range(6):
        plain = generate_scene(short("action", difficulty=0.0), seed)
        mixed = generate_scene(short("action", difficulty=0.0, unseen_action_sound=1.0), seed)
        assert mixed.label == plain.label and np.array_equal(mixed.frames, plain.frames)
        assert mixed.source_kinds[: len(plain.source_kinds)] == plain.source_kinds
        extra = len(plain.source_kinds)
        assert len(mixed.source_kinds) == extra + 1 and not mixed.source_onscreen[extra]
        others = {a.behaviour.sound for a in ACTIONS if a.behaviour != ACTIONS[plain.label].behaviour}
        assert mixed.source_kinds[extra] in others
        own = next(o.source for o in mixed.objects if o.sounding)
        rms = lambda x: float(np.sqrt(np.mean(x ** 2)))  # noqa: E731
        assert 0.5 < rms(mixed.sources[extra]) / rms(mixed.sources[own]) < 2.0  # +-3 dB each: as loud
    with pytest.raises(ValueError, match="unseen_action_sound"):
        short("action", unseen_action_sound=1.5)


def test_ensure_dataset_reuses_a_set_written_before_a_config_option_existed(tmp_path):
    pytest.importorskip("avscene.media")
    cfg = SceneConfig(task="action", duration_s=0.5, width=32, height=32)
    out = ensure_dataset(tmp_path / "set", 1, 3, config=cfg, progress=False, stems=False)
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["config"]["unseen_action_sound"]  # as written by an older version
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert ensure_dataset(out, 1, 3, config=cfg, progress=False) == out
    with pytest.raises(ValueError, match="another config"):
        ensure_dataset(out, 1, 3, config=dataclasses.replace(cfg, unseen_action_sound=1.0), progress=False)


def test_action_dataset_labels_cycle_through_classes(tmp_path):
    if importlib.util.find_spec("avscene.media") is None:
        pytest.skip("avscene.media not available")
    n = len(ACTION_CLASSES) + 1
    manifest = write_dataset(tmp_path, n, seed=3, task="action",
                             config=SceneConfig(duration_s=0.5, width=32, height=32), progress=False,
                             stems=False)
    labels = [e["label"] for e in json.loads(manifest.read_text())["scenes"]]
    assert labels == [i % len(ACTION_CLASSES) for i in range(n)]


# --- voices ---------------------------------------------------------------------------------------

def test_voice_groups_within_closer_than_across():
    assert len(VOICE_GROUPS) >= 2
    for g in range(len(VOICE_GROUPS)):
        assert len(voices_in_group(g)) >= 3
    assert all(85 <= v.f0_hz <= 150 for v in voices_in_group(0))
    assert all(170 <= v.f0_hz <= 280 for v in voices_in_group(1))
    sr = 21000
    log_f0 = {}
    for v in VOICES:
        b = babble(v, 2 * sr, sr, np.random.default_rng(1))
        assert b.signal.shape == b.envelope.shape == (2 * sr,)
        assert 4 <= len(b.onsets) <= 2 * 7  # 3-6 syllables/s, minus phrase pauses
        log_f0[v.name] = np.log(estimate_f0(b.signal, sr))
        assert np.exp(log_f0[v.name]) == pytest.approx(v.f0_hz, rel=0.2)
    within, across = [], []
    for i, a in enumerate(VOICES):
        for b in VOICES[i + 1:]:
            (within if a.group == b.group else across).append(abs(log_f0[a.name] - log_f0[b.name]))
    assert max(within) < min(across) or np.mean(within) < 0.5 * np.mean(across)


# --- files ----------------------------------------------------------------------------------------

def test_write_dataset_and_load_ground_truth(tmp_path):
    media = pytest.importorskip("avscene.media")
    cfg = SceneConfig(task="separation", duration_s=1.0, width=64, height=64)
    manifest_path = write_dataset(tmp_path / "set", 2, seed=5, config=cfg, progress=False)
    manifest = json.loads(manifest_path.read_text())
    assert manifest_path.name == "manifest.json" and manifest["n"] == 2
    assert manifest["task"] == "separation" and SceneConfig.from_dict(manifest["config"]) == cfg
    assert not list((tmp_path / "set").glob(".*"))  # no temporary files left behind
    for i, entry in enumerate(manifest["scenes"]):
        scene = generate_scene(cfg, scene_seed(5, i))
        gt = load_ground_truth(tmp_path / "set" / entry["video"])
        assert gt["seed"] == entry["seed"] == scene.seed and gt["task"] == "separation"
        assert np.array_equal(gt["masks"], scene.masks) and np.array_equal(gt["boxes"], scene.boxes)
        assert np.array_equal(gt["sources"], scene.sources) and np.array_equal(gt["audio"], scene.audio)
        assert [o["event_frames"] for o in gt["objects"]] == [list(o.event_frames) for o in scene.objects]
        assert [s["voice_group"] for s in gt["source_info"]] == list(scene.voice_groups)
        assert gt["config"] == cfg
        clip = media.read_clip(gt["video"])
        assert clip.frames.shape == scene.frames.shape and clip.audio.shape[1] == 2
        assert abs(clip.audio.shape[0] - scene.n_samples) <= 0.05 * scene.n_samples
        assert np.abs(clip.frames.astype(int) - scene.frames).mean() < 12  # lossy H.264
    same = load_ground_truth(tmp_path / "set" / "scene_00001")
    assert same["stem"] == "scene_00001"


def test_write_dataset_gives_the_same_set_with_worker_processes(tmp_path):
    pytest.importorskip("avscene.media")
    cfg = SceneConfig(task="action", duration_s=0.5, width=32, height=32)
    serial = write_dataset(tmp_path / "one", 3, seed=2, config=cfg, progress=False, workers=1)
    parallel = write_dataset(tmp_path / "two", 3, seed=2, config=cfg, progress=False, workers=2)
    assert serial.read_text() == parallel.read_text()  # same entries, in order, labels cycling
    for entry in json.loads(serial.read_text())["scenes"]:
        one, two = (np.load(m.parent / entry["npz"]) for m in (serial, parallel))
        assert one.files == two.files and all(np.array_equal(one[k], two[k], equal_nan=True) for k in one.files)
        assert (serial.parent / entry["json"]).read_text() == (parallel.parent / entry["json"]).read_text()
    assert default_workers(4) == 1 and default_workers(400) == min(8, os.cpu_count() or 1)


def test_default_scene_is_fast():
    cfg = SceneConfig(task="sync", n_objects=(3, 3), n_sounding=3, n_offscreen=(1, 1))
    generate_scene(cfg, 0)  # warm caches (imports, FFT plans)
    t0 = time.perf_counter()
    generate_scene(cfg, 1)
    assert time.perf_counter() - t0 < 1.0  # ~0.2 s on 2 cores; loose for loaded CI machines
