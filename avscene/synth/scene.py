"""Scenes of the synthetic audio-visual world: configuration, ground truth and the five tasks.

``generate_scene(config, seed)`` returns a :class:`Scene`: frames, stereo audio and everything
that made them. Tasks (``SceneConfig.task``):

* ``'sync'``: 1-3 objects (``n_objects``), ``n_sounding`` of them sounding (random >= 1 by
  default), plus ``n_offscreen`` off-screen sources at ``offscreen_db`` relative level.
* ``'localize'``: exactly one sounding object and 1-2 (``n_distractors``) SILENT distractors with
  the same motion kind and the same shape family (disc/ring, square/triangle or faces), so only
  audio-visual co-occurrence (and stereo) tells which one sounds; off-screen sources as in sync.
* ``'separation'``: one on-screen talking face whose mouth follows its own babble, and one
  off-screen talker at a similar level (+-3 dB each); ``voice_pairing`` picks the off-screen
  voice from the same group (``'within'``, hard) or the other group (``'across'``, easier), or
  at random; with probability ``difficulty`` a silent non-talking distractor is added. With
  ``motions`` set, the world of those motions instead: one sounding object, with probability
  ``difficulty`` a silent look-alike, and off-screen sources of the same kinds of sound at the
  same level (the demo's separation world, made of what its shift network learnt).
* ``'action'``: one object performing action class ``label`` (random if None; see
  :mod:`avscene.synth.actions`); with probability ``difficulty`` a silent distractor with a
  random motion and, with probability ``difficulty / 2``, an off-screen source;
  with probability ``unseen_action_sound`` (0 by default) the soundtrack also carries an
  off-screen source making *another* class's sound as loud as the action's (real footage's
  music, commentary and off-camera action), so the sound alone names two candidate classes
  and only its agreement with the visible motion says which one is on screen.
* ``'objects'``: ``n_objects`` (at least 2) on-screen objects, ALL sounding, each pulsing or
  talking (``motions`` among ``pulse``, ``talk``) only during its own turns of activity
  (:mod:`avscene.synth.activity`: spells of 0.8-2 s between pauses of 0.6-1.6 s, at random
  phases, so turns overlap), plus off-screen sources as in sync; ``Scene.activity`` holds the
  turns. With ``object_offset_s`` one object's sound is delayed by that much (``offset_object``,
  its ``lag_s``), the dubbed speaker that a per-object sync check must find.

``difficulty`` in [0, 1] scales the visual clutter: background texture contrast
(12 + 40 d), sensor noise std (2 + 8 d, 0-255 units), smaller objects (x (1 - 0.25 d)), object
colours closer to the background (min RGB distance 100 - 60 d) and the distractor probabilities
above. Audio SNR is set separately by ``snr_db``.

``motions`` restricts the motion kinds of sync/localize objects; ``salience`` in [0, 1] makes
events easier to see at low resolution: non-face objects 1 + 0.5 s times larger, pulses growing
by 30 + 50 s % and brightening further. The CPU-scale shift benchmark trains on salient pulse
scenes (``benchmarks/shift.py`` says why); the defaults keep the full world.

``layout``: objects wander around the middle of the picture they share (``'shared'``, the
default), so salient ones, whose paths keep a full pulse inside the picture, mostly overlap:
in 56 % of the ``localize`` windows of the salient pulse world at 96 px a look-alike covers more
than half of the sounding object's box. With ``'apart'`` each on-screen object lives in its own
cell of a 2 x 2 grid (cells drawn at random), sized and moving as in a picture of the cell's
size, so boxes never overlap: a 192-px picture holds up to four objects of the 96-px world.

Audio levels: every source is normalised to RMS 0.1 (mono, before constant-power panning) times
a random +-3 dB, off-screen sources of sync/localize/action get ``offscreen_db`` more; pink
stereo noise (inter-channel correlation 0.5) is added at ``snr_db`` below the sum of the
sources; finally one gain brings the mixture peak to 0.9 and is applied to ``sources`` and
``noise`` too, so ``audio == sources.sum(0) + noise`` exactly (float32) and nothing clips.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from avscene.constants import PAPER_FPS, PAPER_SAMPLE_RATE, as_fps
from avscene.synth.actions import ACTION_CLASSES, ACTIONS
from avscene.synth.activity import GATED_MOTIONS, draw_gate, gate_actor, offset_actor
from avscene.synth.actors import MOTION_SOUNDS, PLAIN_BEHAVIOURS, Actor, Behaviour, build_actor
from avscene.synth.render import (SHAPE_FAMILIES, SHAPES, SKIN_TONES, composite, draw_sprite,
                                  render_background, shape_family, sprite_mask_and_boxes)
from avscene.synth.sounds import pan, pink_noise, rms
from avscene.synth.timebase import Timebase
from avscene.synth.voices import VOICE_GROUPS, voices_in_group

TASKS = ("sync", "localize", "separation", "action", "objects")
LAYOUTS = ("shared", "apart")
VOICE_PAIRINGS = ("random", "within", "across")
_REF_RMS = 0.1   # mono RMS of a source at 0 dB
_PEAK = 0.9      # peak of the final mixture


@dataclass(frozen=True)
class SceneConfig:
    """Options of :func:`generate_scene`. Ranges are inclusive ``(lo, hi)`` integer pairs.

    Sizes in pixels, ``fps`` in frames/s (any type :func:`avscene.constants.as_fps` accepts;
    stored as a Fraction), ``sample_rate`` in Hz, ``duration_s`` in seconds, levels in dB.
    """

    task: str = "sync"
    width: int = 96
    height: int = 96
    fps: Fraction = PAPER_FPS
    sample_rate: int = PAPER_SAMPLE_RATE
    duration_s: float = 6.0
    n_objects: tuple[int, int] = (1, 3)      # sync: on-screen objects
    n_sounding: int | None = None            # sync: sounding objects (None: random 1..n)
    n_distractors: tuple[int, int] = (1, 2)  # localize: silent distractors
    n_offscreen: tuple[int, int] = (0, 1)    # sync/localize: extra off-screen sources
    offscreen_db: float = -10.0              # level of those sources relative to on-screen ones
    snr_db: float = 20.0                     # sources-to-background-noise ratio
    difficulty: float = 0.5
    voice_pairing: str = "random"            # separation: 'within' | 'across' | 'random'
    label: int | None = None                 # action: class label (None: random)
    unseen_action_sound: float = 0.0         # action: probability of another class's sound off-screen
    motions: tuple[str, ...] | None = None   # sync/localize/separation: motion kinds (None: all; talk)
    salience: float = 0.0                    # 0..1: larger objects, stronger pulses (see above)
    layout: str = "shared"                   # 'shared' picture | 'apart': one 2 x 2 grid cell each
    object_offset_s: float = 0.0             # objects: one object's sound delayed by this (s; < 0 leads)

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("fps", as_fps(self.fps))
        set_("sample_rate", int(self.sample_rate))
        for name in ("n_objects", "n_distractors", "n_offscreen"):
            set_(name, tuple(int(v) for v in getattr(self, name)))
        if self.motions is not None:
            set_("motions", tuple(str(m) for m in self.motions))
            unknown = [m for m in self.motions if m not in MOTION_SOUNDS]
            if unknown or not self.motions:
                raise ValueError(f"motions must be a non-empty subset of {tuple(MOTION_SOUNDS)}, got {self.motions}")
        if not 0.0 <= self.salience <= 1.0:
            raise ValueError(f"salience must be in [0, 1], got {self.salience}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if min(self.width, self.height) < 32:
            raise ValueError(f"frames must be at least 32x32 px, got {self.width}x{self.height}")
        if self.duration_s <= 0:
            raise ValueError(f"duration_s must be positive, got {self.duration_s}")
        if not 0.0 <= self.difficulty <= 1.0:
            raise ValueError(f"difficulty must be in [0, 1], got {self.difficulty}")
        if not 0.0 <= self.unseen_action_sound <= 1.0:
            raise ValueError(f"unseen_action_sound must be in [0, 1], got {self.unseen_action_sound}")
        if self.voice_pairing not in VOICE_PAIRINGS:
            raise ValueError(f"voice_pairing must be one of {VOICE_PAIRINGS}, got {self.voice_pairing!r}")
        if not 1 <= self.n_objects[0] <= self.n_objects[1] <= 4:
            raise ValueError(f"n_objects must be a range within 1..4, got {self.n_objects}")
        if not 1 <= self.n_distractors[0] <= self.n_distractors[1] <= 3:
            raise ValueError(f"n_distractors must be a range within 1..3, got {self.n_distractors}")
        if not 0 <= self.n_offscreen[0] <= self.n_offscreen[1] <= 3:
            raise ValueError(f"n_offscreen must be a range within 0..3, got {self.n_offscreen}")
        if self.task == "objects" and self.motions is not None and not set(self.motions) <= set(GATED_MOTIONS):
            raise ValueError(f"objects scenes take motions among {GATED_MOTIONS}, got {self.motions}")
        if self.object_offset_s and self.task != "objects":
            raise ValueError(f"object_offset_s applies to the objects task only, not {self.task!r}")
        if abs(self.object_offset_s) > 2.0:
            raise ValueError(f"object_offset_s must be within +-2 s, got {self.object_offset_s}")
        if self.n_sounding is not None and self.n_sounding < 1:
            raise ValueError(f"n_sounding must be >= 1 or None, got {self.n_sounding}")
        if self.label is not None and not 0 <= self.label < len(ACTION_CLASSES):
            raise ValueError(f"label must be in 0..{len(ACTION_CLASSES) - 1}, got {self.label}")

    def to_dict(self) -> dict:
        """JSON-friendly dict (fps as ``"num/den"``)."""
        d = dataclasses.asdict(self)
        d["fps"] = f"{self.fps.numerator}/{self.fps.denominator}"
        for k in ("n_objects", "n_distractors", "n_offscreen"):
            d[k] = list(d[k])
        if d["motions"] is not None:
            d["motions"] = list(d["motions"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SceneConfig":
        """Inverse of :meth:`to_dict` (unknown keys are an error)."""
        return cls(**d)


@dataclass(frozen=True, eq=False)
class ObjectInfo:
    """Ground truth of one on-screen object.

    ``kind`` motion kind; ``sound`` its sound kind or None when silent; ``colour`` RGB 0-255 of
    its body; ``radius_px`` its size; ``boxes`` (T, 4) float32 (x0, y0, x1, y1) pixel edges;
    ``event_frames`` / ``events_s`` its visual events; ``sound_events_s`` the onsets of its
    sound (equal to ``events_s`` except for lagged behaviours, empty when silent); ``source``
    its index in ``Scene.sources`` or None; ``mouth`` (T,) in [0, 1] for faces; ``voice``.
    """

    kind: str
    sound: str | None
    shape: str
    colour: tuple[int, int, int]
    radius_px: float
    sounding: bool
    boxes: np.ndarray
    event_frames: tuple[int, ...]
    events_s: tuple[float, ...]
    sound_events_s: tuple[float, ...]
    source: int | None
    mouth: np.ndarray | None = None
    voice: str | None = None
    lag_s: float = 0.0


@dataclass(frozen=True, eq=False)
class Scene:
    """A generated scene and its ground truth.

    ``frames`` (T, H, W, 3) uint8; ``audio`` (N, 2) float32 in [-1, 1];
    ``masks`` (n_objects, T, H, W) bool amodal silhouettes; ``sources`` (n_sources, N, 2) float32
    each source as it appears in the mix; ``noise`` (N, 2) float32 background noise;
    ``audio == sources.sum(0) + noise``. Per source: ``source_onscreen``, ``source_object``
    (object index or -1), ``source_kinds``, ``voice_groups`` (-1 for non-speech), ``voices``.
    ``label`` / ``label_name`` the action class (-1 / '' for other tasks); ``voice_pairing``
    'within' / 'across' for separation scenes else None; ``gain`` the final gain applied.
    Objects scenes: ``activity`` (n_objects, T) bool, the frames where each object is active
    (sounds and shows its cue; an offset object's sound comes ``lag_s`` later), and
    ``offset_object`` the index of the object whose sound is offset (-1: none); else None / -1.
    """

    frames: np.ndarray
    audio: np.ndarray
    fps: Fraction
    sample_rate: int
    objects: tuple[ObjectInfo, ...]
    masks: np.ndarray
    sources: np.ndarray
    source_onscreen: tuple[bool, ...]
    source_object: tuple[int, ...]
    source_kinds: tuple[str, ...]
    voice_groups: tuple[int, ...]
    voices: tuple[str | None, ...]
    noise: np.ndarray
    label: int
    label_name: str
    task: str
    seed: int
    config: SceneConfig = field(repr=False)
    gain: float = 1.0
    voice_pairing: str | None = None
    activity: np.ndarray | None = None
    offset_object: int = -1

    @property
    def n_frames(self) -> int:
        return self.frames.shape[0]

    @property
    def n_samples(self) -> int:
        return self.audio.shape[0]

    @property
    def duration_s(self) -> float:
        """Duration of the video (s)."""
        return float(self.n_frames / self.fps)

    @property
    def boxes(self) -> np.ndarray:
        """All objects' boxes, (n_objects, T, 4) float32."""
        if not self.objects:
            return np.zeros((0, self.n_frames, 4), np.float32)
        return np.stack([o.boxes for o in self.objects])

    def onscreen_audio(self) -> np.ndarray:
        """Sum of the on-screen sources (N, 2) float32 (separation target, without noise)."""
        keep = np.asarray(self.source_onscreen, bool)
        return self.sources[keep].sum(0, dtype=np.float32) if keep.any() else np.zeros_like(self.noise)

    def offscreen_audio(self) -> np.ndarray:
        """Sum of the off-screen sources (N, 2) float32 (without noise)."""
        keep = ~np.asarray(self.source_onscreen, bool)
        return self.sources[keep].sum(0, dtype=np.float32) if keep.any() else np.zeros_like(self.noise)


@dataclass(frozen=True)
class _Spec:
    """What to generate for one actor (on-screen object or off-screen source)."""

    behaviour: Behaviour
    shape: str
    sounding: bool
    onscreen: bool
    level_db: float
    voice: object = None  # Voice or None


def _random_behaviour(rng: np.random.Generator, exclude_motion: str | None = None,
                      allowed: tuple[str, ...] | None = None) -> Behaviour:
    """A plain behaviour: a uniform motion kind (among ``allowed``), then a uniform sound it can make."""
    motions = [m for m in (allowed or MOTION_SOUNDS) if m != exclude_motion]
    motion = motions[rng.integers(len(motions))]
    sounds = MOTION_SOUNDS[motion]
    return Behaviour(motion, sounds[rng.integers(len(sounds))])


def _random_shape(rng: np.random.Generator, behaviour: Behaviour, family: str | None = None) -> str:
    if behaviour.motion == "talk":
        return "face"
    pool = SHAPE_FAMILIES[family] if family is not None else SHAPES
    return str(pool[rng.integers(len(pool))])


def _offscreen_specs(rng: np.random.Generator, n: int, level_db: float) -> list[_Spec]:
    specs = []
    for _ in range(n):
        b = PLAIN_BEHAVIOURS[rng.integers(len(PLAIN_BEHAVIOURS))]
        specs.append(_Spec(b, _random_shape(rng, b), True, False, level_db + rng.uniform(-3, 3)))
    return specs


def _plan(config: SceneConfig, rng: np.random.Generator) -> tuple[list[_Spec], int, str | None]:
    """Actors of the scene (on-screen first, in drawing order), the label and the pairing."""
    task, d = config.task, config.difficulty
    gain = lambda: float(rng.uniform(-3, 3))  # noqa: E731
    label, pairing = -1, None
    if task == "sync":
        n = int(rng.integers(config.n_objects[0], config.n_objects[1] + 1))
        n_snd = int(rng.integers(1, n + 1)) if config.n_sounding is None else min(config.n_sounding, n)
        sounding = np.zeros(n, bool)
        sounding[rng.permutation(n)[:n_snd]] = True
        specs = []
        for s in sounding:
            b = _random_behaviour(rng, allowed=config.motions)
            specs.append(_Spec(b, _random_shape(rng, b), bool(s), True, gain()))
        n_off = int(rng.integers(config.n_offscreen[0], config.n_offscreen[1] + 1))
        specs += _offscreen_specs(rng, n_off, config.offscreen_db)
    elif task == "localize":
        b = _random_behaviour(rng, allowed=config.motions)
        shape = _random_shape(rng, b)
        fam = shape_family(shape)
        n_dis = int(rng.integers(config.n_distractors[0], config.n_distractors[1] + 1))
        specs = [_Spec(b, shape, True, True, gain())]
        specs += [_Spec(b, _random_shape(rng, b, fam), False, True, 0.0) for _ in range(n_dis)]
        specs = [specs[i] for i in rng.permutation(len(specs))]  # the sounding one is not always first
        n_off = int(rng.integers(config.n_offscreen[0], config.n_offscreen[1] + 1))
        specs += _offscreen_specs(rng, n_off, config.offscreen_db)
    elif task == "separation" and config.motions is not None:
        specs = _motion_separation_specs(config, rng, gain)
    elif task == "separation":
        pairing = config.voice_pairing
        if pairing == "random":
            pairing = ("within", "across")[rng.integers(2)]
        g_on = int(rng.integers(len(VOICE_GROUPS)))
        g_off = g_on if pairing == "within" else 1 - g_on
        on_pool = voices_in_group(g_on)
        v_on = on_pool[rng.integers(len(on_pool))]
        off_pool = [v for v in voices_in_group(g_off) if v != v_on]
        v_off = off_pool[rng.integers(len(off_pool))]
        talk = Behaviour("talk", "babble")
        specs = [_Spec(talk, "face", True, True, gain(), v_on)]
        if rng.random() < d:
            b = _random_behaviour(rng, exclude_motion="talk")
            specs.append(_Spec(b, _random_shape(rng, b), False, True, 0.0))
            specs = [specs[i] for i in rng.permutation(len(specs))]
        specs.append(_Spec(talk, "face", True, False, gain(), v_off))
    elif task == "objects":
        specs = _objects_specs(config, rng, gain)
    else:  # action
        label = int(rng.integers(len(ACTIONS))) if config.label is None else int(config.label)
        b = ACTIONS[label].behaviour
        specs = [_Spec(b, _random_shape(rng, b), True, True, gain())]
        if rng.random() < d:
            db = _random_behaviour(rng)
            specs.append(_Spec(db, _random_shape(rng, db), False, True, 0.0))
            specs = [specs[i] for i in rng.permutation(len(specs))]
        if rng.random() < d / 2:
            specs += _offscreen_specs(rng, 1, config.offscreen_db)
        # drawn last and only when enabled: with the option off, no draw of the plan depends on it
        if config.unseen_action_sound > 0 and rng.random() < config.unseen_action_sound:
            other = ACTIONS[(label + 1 + int(rng.integers(len(ACTIONS) - 1))) % len(ACTIONS)].behaviour
            specs.append(_Spec(other, _random_shape(rng, other), True, False, gain()))
    return specs, label, pairing


def _motion_separation_specs(config: SceneConfig, rng: np.random.Generator, gain) -> list[_Spec]:
    """Separation scenes of a ``motions`` world: one sounding on-screen object and, with
    probability ``difficulty``, a silent look-alike of the same motion (so the picture must say
    *which* object sounds), plus ``max(1, n_offscreen)`` off-screen sources making the same
    world's sounds at the on-screen level (+-3 dB each), which are the off-screen target."""
    b = _random_behaviour(rng, allowed=config.motions)
    specs = [_Spec(b, _random_shape(rng, b), True, True, gain())]
    if rng.random() < config.difficulty:
        specs.append(_Spec(b, _random_shape(rng, b, shape_family(specs[0].shape)), False, True, 0.0))
        specs = [specs[i] for i in rng.permutation(len(specs))]
    n_off = max(1, int(rng.integers(config.n_offscreen[0], config.n_offscreen[1] + 1)))
    for _ in range(n_off):
        ob = _random_behaviour(rng, allowed=config.motions)
        specs.append(_Spec(ob, _random_shape(rng, ob), True, False, gain()))
    return specs


def _objects_specs(config: SceneConfig, rng: np.random.Generator, gain) -> list[_Spec]:
    """Objects task: ``n_objects`` (at least 2) on-screen objects, all sounding, with pulse or
    talk behaviours (``motions``), plus the off-screen sources of ``n_offscreen``."""
    n = int(rng.integers(max(2, config.n_objects[0]), max(2, config.n_objects[1]) + 1))
    allowed = config.motions or GATED_MOTIONS
    specs = []
    for _ in range(n):
        b = _random_behaviour(rng, allowed=allowed)
        specs.append(_Spec(b, _random_shape(rng, b), True, True, gain()))
    n_off = int(rng.integers(config.n_offscreen[0], config.n_offscreen[1] + 1))
    return specs + _offscreen_specs(rng, n_off, config.offscreen_db)


def _turns(actors: list[Actor], onscreen: list[int], config: SceneConfig, tb: Timebase,
           rng: np.random.Generator) -> tuple[list[Actor], np.ndarray, int]:
    """Objects task: every on-screen actor gated by its own turns of activity, and one of them
    (when ``object_offset_s``) offset. Returns the actors, the gates (n_objects, T) bool and the
    index of the offset object (-1: none)."""
    actors = list(actors)
    gates = np.stack([draw_gate(rng, tb) for _ in onscreen]) if onscreen else np.zeros((0, tb.n_frames), bool)
    for gate, i in zip(gates, onscreen):
        actors[i] = gate_actor(actors[i], gate, tb)
    offset_object = -1
    if config.object_offset_s and onscreen:
        offset_object = int(rng.integers(len(onscreen)))
        i = onscreen[offset_object]
        actors[i] = offset_actor(actors[i], config.object_offset_s, tb)
    return actors, gates, offset_object


def _pick_colour(rng: np.random.Generator, spec: _Spec, bg: np.ndarray, taken: list[np.ndarray],
                 min_bg: float) -> np.ndarray:
    """Body colour: a jittered skin tone for faces, else a random RGB far enough from the
    background mean and from the other objects (best of 30 tries)."""
    best, best_score = None, -np.inf
    for _ in range(30):
        if spec.shape == "face":
            c = np.asarray(SKIN_TONES[rng.integers(len(SKIN_TONES))], np.float64) + rng.normal(0, 8, 3)
        else:
            c = rng.uniform(0, 255, 3)
        c = np.clip(c, 0, 255)
        score = min(np.linalg.norm(c - bg) / min_bg, min((np.linalg.norm(c - t) / 40.0 for t in taken), default=9.0))
        if score >= 1.0:
            return np.round(c)
        if score > best_score:
            best, best_score = c, score
    return np.round(best)


def _placement(specs: list[_Spec], config: SceneConfig, rng: np.random.Generator
               ) -> tuple[int, tuple[int, int], dict[int, np.ndarray]]:
    """Where on-screen objects live: the side that sizes them (px), the ``(width, height)`` area
    they move in, and per spec index the pixel origin of that area (none for ``'shared'``, where
    the area is the whole picture; with ``'apart'`` a random cell of a 2 x 2 grid each)."""
    W, H = config.width, config.height
    if config.layout != "apart":
        return min(W, H), (W, H), {}
    placed = [i for i, s in enumerate(specs) if s.onscreen]
    assert len(placed) <= 4, "the config's bounds allow at most 4 on-screen objects"
    area = (W // 2, H // 2)
    # drawn after every draw of the plan, so the plan of a scene does not depend on its layout
    cells = rng.permutation(4)[: len(placed)]
    origins = {i: np.array([(c % 2) * (W - area[0]), (c // 2) * (H - area[1])], np.float64)
               for i, c in zip(placed, cells)}
    return min(area), area, origins


def _build_actors(specs: list[_Spec], config: SceneConfig, tb: Timebase, actor_ss: np.random.SeedSequence,
                  bg_mean: np.ndarray, side: int, area: tuple[int, int],
                  origins: dict[int, np.ndarray]) -> list[Actor]:
    """Each spec's actor (motion and own sound), from its own random stream spawned from
    ``actor_ss``: size from ``side`` (px), colour apart from the background mean ``bg_mean`` and
    from the on-screen objects before it, moving in ``area`` shifted to its origin."""
    d = config.difficulty
    actors: list[Actor] = []
    taken: list[np.ndarray] = []
    for k, (spec, ss) in enumerate(zip(specs, actor_ss.spawn(len(specs)))):
        arng = np.random.default_rng(ss)
        if spec.shape == "face":
            radius = arng.uniform(0.14, 0.2) * side * (1 - 0.15 * d)
        else:
            radius = arng.uniform(0.07, 0.12) * side * (1 - 0.25 * d) * (1 + 0.5 * config.salience)
        colour = _pick_colour(arng, spec, bg_mean, taken, 100.0 - 60.0 * d)
        if spec.onscreen:
            taken.append(colour)
        actor = build_actor(spec.behaviour, spec.shape, radius, colour, tb, *area, arng,
                            sounding=spec.sounding, voice=spec.voice, salience=config.salience)
        if k in origins:  # into its grid cell
            actor = dataclasses.replace(actor, motion=dataclasses.replace(
                actor.motion, centre=actor.motion.centre + origins[k]))
        actors.append(actor)
    return actors


def _render(actors: list[Actor], onscreen: list[int], background: np.ndarray, bg_rng: np.random.Generator,
            config: SceneConfig, tb: Timebase) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Frames uint8 (T, H, W, 3) of the ``onscreen`` actors over ``background`` with sensor noise
    from ``bg_rng``, their masks bool (n_objects, T, H, W) and boxes (T, 4) per object."""
    H, W = config.height, config.width
    sprites = [draw_sprite(actors[i].shape, actors[i].radius, np.asarray(actors[i].colour, np.float32),
                           actors[i].motion, H, W) for i in onscreen]
    frames = composite(background, sprites, bg_rng, 2.0 + 8.0 * config.difficulty)
    mb = [sprite_mask_and_boxes(sp, H, W) for sp in sprites]
    masks = np.stack([m for m, _ in mb]) if mb else np.zeros((0, tb.n_frames, H, W), bool)
    return frames, masks, [b for _, b in mb]


def _mix(specs: list[_Spec], actors: list[Actor], config: SceneConfig, tb: Timebase,
         audio_rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float, list[tuple[int, _Spec, Actor]]]:
    """The sounding actors' sources as they appear in the mix, float32 (n_sources, N, 2), the
    background noise float32 (N, 2), the final gain and per source ``(spec index, spec, actor)``
    (levels: see the module docstring)."""
    src_list, src_info = [], []
    for i, (spec, actor) in enumerate(zip(specs, actors)):
        if actor.sound is None:
            continue
        mono = actor.sound * (_REF_RMS * 10 ** (spec.level_db / 20))
        if spec.onscreen:
            position = tb.to_samples(actor.motion.centre[:, 0] / config.width)  # follows the object
        else:
            position = float(audio_rng.uniform(0.0, 1.0))  # a fixed direction off screen
        src_list.append(pan(mono, position))
        src_info.append((i, spec, actor))
    sources = np.stack(src_list) if src_list else np.zeros((0, tb.n_samples, 2))
    signal_power = rms(sources.sum(0)) ** 2 if src_list else 0.0
    signal_power = signal_power if signal_power > 0 else _REF_RMS**2  # silent scene: noise at 0 dB
    noise = pink_noise(tb.n_samples, audio_rng) * np.sqrt(signal_power / 10 ** (config.snr_db / 10))
    peak = np.abs(sources.sum(0) + noise).max()
    gain = _PEAK / peak if peak > 0 else 1.0
    return (sources * gain).astype(np.float32), (noise * gain).astype(np.float32), gain, src_info


def _object_infos(actors: list[Actor], onscreen: list[int], boxes: list[np.ndarray],
                  source_of_spec: dict[int, int], tb: Timebase) -> tuple[ObjectInfo, ...]:
    """Ground truth of the on-screen objects (``onscreen``: their spec indices, in drawing
    order); ``source_of_spec`` maps the spec index of a sounding actor to its source index."""
    objects = []
    for obj_i, spec_i in enumerate(onscreen):
        a = actors[spec_i]
        ev = a.motion.event_frames
        src = source_of_spec.get(spec_i)
        lag_s = 0.0
        if src is not None and len(a.sound_onsets) and len(ev):
            lag_s = float(a.sound_onsets[0] - tb.sample_of(ev[0])) / tb.sample_rate
        objects.append(ObjectInfo(
            kind=a.behaviour.motion,
            sound=a.behaviour.sound if src is not None else None,
            shape=a.shape,
            colour=a.colour,
            radius_px=a.radius,
            sounding=src is not None,
            boxes=boxes[obj_i],
            event_frames=tuple(ev),
            events_s=tuple(float(k / tb.fps) for k in ev),
            sound_events_s=tuple(float(s) / tb.sample_rate for s in a.sound_onsets),
            source=src,
            mouth=a.motion.mouth,
            voice=a.voice.name if (a.voice is not None and src is not None) else None,
            lag_s=lag_s,
        ))
    return tuple(objects)


def generate_scene(config: SceneConfig, seed: int) -> Scene:
    """Generate one scene of ``config.task`` deterministically from ``seed`` (a non-negative int).

    Independent random streams (plan, background, each actor, noise) are spawned from
    ``SeedSequence(seed)``, so e.g. adding an off-screen source does not change the pixels.
    """
    seed = int(seed)
    plan_ss, bg_ss, actor_ss, audio_ss = np.random.SeedSequence(seed).spawn(4)
    rng = np.random.default_rng(plan_ss)
    tb = Timebase.create(config.duration_s, config.fps, config.sample_rate)
    specs, label, pairing = _plan(config, rng)

    bg_rng = np.random.default_rng(bg_ss)
    background, bg_mean = render_background(bg_rng, tb.frame_times_s, config.height, config.width, config.difficulty)
    side, area, origins = _placement(specs, config, rng)
    actors = _build_actors(specs, config, tb, actor_ss, bg_mean, side, area, origins)
    onscreen = [i for i, s in enumerate(specs) if s.onscreen]
    activity, offset_object = None, -1
    if config.task == "objects":  # drawn after every other draw of the plan
        actors, activity, offset_object = _turns(actors, onscreen, config, tb, rng)
    frames, masks, boxes = _render(actors, onscreen, background, bg_rng, config, tb)
    sources, noise, gain, src_info = _mix(specs, actors, config, tb, np.random.default_rng(audio_ss))
    audio = sources.sum(0, dtype=np.float32) + noise

    obj_index = {spec_i: obj_i for obj_i, spec_i in enumerate(onscreen)}
    objects = _object_infos(actors, onscreen, boxes, {i: k for k, (i, _, _) in enumerate(src_info)}, tb)
    if offset_object >= 0:  # its sound lags by the offset, whichever events are left in the clip
        objects = tuple(dataclasses.replace(o, lag_s=float(tb.samples(config.object_offset_s) / tb.sample_rate))
                        if k == offset_object else o for k, o in enumerate(objects))
    return Scene(
        frames=frames,
        audio=audio,
        fps=tb.fps,
        sample_rate=tb.sample_rate,
        objects=objects,
        masks=masks,
        sources=sources,
        source_onscreen=tuple(s.onscreen for _, s, _ in src_info),
        source_object=tuple(obj_index.get(i, -1) for i, _, _ in src_info),
        source_kinds=tuple(a.behaviour.sound for _, _, a in src_info),
        voice_groups=tuple(a.voice.group if a.voice is not None else -1 for _, _, a in src_info),
        voices=tuple(a.voice.name if a.voice is not None else None for _, _, a in src_info),
        noise=noise,
        label=label,
        label_name=ACTION_CLASSES[label] if label >= 0 else "",
        task=config.task,
        seed=seed,
        config=config,
        gain=float(gain),
        voice_pairing=pairing,
        activity=activity,
        offset_object=offset_object,
    )
