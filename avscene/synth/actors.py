"""Behaviours: how one object moves and what it sounds like, generated together so the sound is
caused by the motion.

=========  ==================================================  ================================
motion     visual event (at an integer frame ``k``)            sounds it can make
=========  ==================================================  ================================
bounce     touches its floor (one of the 4 image borders)      impact ``clink``/``knock``/``thud``
pulse      starts to grow and brighten                         ``tone`` or ``hiss`` burst
talk       a face's mouth starts to open (syllable onset)      ``babble`` (mouth = envelope)
shake      starts a bout of fast shaking                       ``rattle`` (click train)
roll       is pushed along its floor (speed jumps, decays)     ``rumble`` (loudness ~ speed)
=========  ==================================================  ================================

The sound of an event starts at sample ``frame_to_sample(k) + lag`` where ``lag`` is 0 except
for behaviours with a ``lag_s`` range (the action class ``bounce_late``). A silent actor has
the same kind of motion (its envelopes come from a sound that is synthesized and thrown away).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avscene.synth.motion import (GRAVITY_DIRECTIONS, Motion, bounce_axis, decaying_pushes,
                                  draw_event_frames, smooth_path)
from avscene.synth.render import circumradius, support
from avscene.synth.sounds import (band_noise, burst_envelope, draw_impact_timbre, impact_sound,
                                  lowpass_noise, place, rattle_track, tone_track)
from avscene.synth.timebase import Timebase
from avscene.synth.voices import VOICES, Voice, babble, syllable_gaps_s

MOTIONS = ("bounce", "pulse", "talk", "shake", "roll")
#: Sounds each motion can cause.
MOTION_SOUNDS = {
    "bounce": ("clink", "knock", "thud"),
    "pulse": ("tone", "hiss"),
    "talk": ("babble",),
    "shake": ("rattle",),
    "roll": ("rumble",),
}
SOUND_KINDS = tuple(s for v in MOTION_SOUNDS.values() for s in v)
#: Longest sound lag a behaviour may have (s).
MAX_LAG_S = 0.3


@dataclass(frozen=True)
class Behaviour:
    """A motion kind, the sound it causes, and the range (s) of the sound's delay after each
    visual event (``(0, 0)``: sound exactly at the event)."""

    motion: str
    sound: str
    lag_s: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if self.motion not in MOTION_SOUNDS:
            raise ValueError(f"unknown motion {self.motion!r}; expected one of {MOTIONS}")
        if self.sound not in MOTION_SOUNDS[self.motion]:
            raise ValueError(f"motion {self.motion!r} cannot make sound {self.sound!r}")
        if not 0.0 <= self.lag_s[0] <= self.lag_s[1] <= MAX_LAG_S:
            # A longer lag would reach the next event (minimum gaps are 0.45-0.9 s).
            raise ValueError(f"lag_s must be an ordered range within [0, {MAX_LAG_S}], got {self.lag_s}")


#: Behaviours used by the sync and localisation tasks (all with sound at the visual event).
PLAIN_BEHAVIOURS = tuple(Behaviour(m, s) for m, sounds in MOTION_SOUNDS.items() for s in sounds)


@dataclass(frozen=True, eq=False)
class Actor:
    """One object (or off-screen source) with its motion and its own sound.

    ``sound`` (N,) float64 mono, unit RMS, or None when silent; ``sound_onsets`` int64 samples
    of the sound events inside the clip (empty when silent); ``voice`` for talkers.
    """

    behaviour: Behaviour
    shape: str
    radius: float
    colour: tuple[int, int, int]
    motion: Motion
    sound: np.ndarray | None
    sound_onsets: np.ndarray
    voice: Voice | None


def _shift(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` delayed by ``n`` samples (advanced when negative), zero-filled."""
    if n == 0:
        return x
    out = np.zeros_like(x)
    if n > 0:
        out[n:] = x[:-n]
    else:
        out[:n] = x[-n:]
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def build_actor(behaviour: Behaviour, shape: str, radius: float, colour: tuple[int, int, int],
                tb: Timebase, width: int, height: int, rng: np.random.Generator, *,
                sounding: bool = True, voice: Voice | None = None, salience: float = 0.0) -> Actor:
    """Generate the motion (inside a ``width`` x ``height`` image) and, when ``sounding``, the
    sound of one object. ``voice`` picks the talker of a ``talk`` behaviour (random if None);
    ``salience`` in [0, 1] strengthens a pulse (growth 30 % -> 80 %, brightening 56 % -> 70 %
    of the way to white) and makes pulses more frequent (mean gap 0.9 s -> 0.55 s)."""
    lag = tb.samples(rng.uniform(*behaviour.lag_s)) if behaviour.lag_s[1] > 0 else 0
    lag_frames = tb.frames(behaviour.lag_s[1])
    size = np.array([width, height], np.float64)
    builder = {"bounce": _bounce, "pulse": _pulse, "talk": _talk, "shake": _shake, "roll": _roll}
    extra = {"salience": salience} if behaviour.motion == "pulse" else {}
    motion, sound, onsets, voice = builder[behaviour.motion](
        behaviour, shape, radius, tb, size, rng, sounding, voice, lag, lag_frames, **extra)
    if not sounding:
        sound, onsets = None, np.zeros(0, np.int64)
    else:
        onsets = np.asarray(onsets, np.int64)
        onsets = onsets[(onsets >= 0) & (onsets < tb.n_samples)]
        sound = _unit(sound)
    return Actor(behaviour, shape, float(radius), tuple(int(c) for c in colour), motion, sound,
                 onsets, voice)


def _bounce(b, shape, radius, tb, size, rng, sounding, voice, lag, lag_frames):
    g = str(rng.choice(list(GRAVITY_DIRECTIONS)))
    d = np.array(GRAVITY_DIRECTIONS[g])
    axis = 0 if d[0] != 0 else 1
    angle0 = rng.uniform(0, 2 * np.pi)
    sup = float(support(shape, radius, np.array(angle0), tuple(d)))
    margin = circumradius(shape, radius) + 1.0
    wall = size[axis] if d[axis] > 0 else 0.0
    floor = wall - d[axis] * sup  # centre coordinate at contact: the shape touches the border
    room = max(size[axis] - margin - sup - 1.0, 2.0)  # floor-to-apex travel that stays inside
    # Same gap statistics with or without a lag, so bounce_late is not told apart by its motion.
    min_gap = tb.frames(0.55)
    mean_extra = float(tb.frames(0.35))
    max_gap = min_gap + 4 * int(mean_extra) + 1
    contacts = draw_event_frames(rng, -min_gap - 1, 2 * tb.n_frames + 3 * max_gap, min_gap, mean_extra, max_gap)
    # In a short clip, make sure one contact (and its possibly lagged sound) falls inside.
    last_heard = max(1, tb.n_frames - lag_frames - 1)
    if not ((contacts >= 0) & (contacts < last_heard)).any():
        i = int(np.searchsorted(contacts, 0))
        contacts = contacts + (int(rng.integers(0, last_heard)) - contacts[i])
    tau = np.diff(contacts) * tb.frame_period_s
    tau_mean = (min_gap + mean_extra) * tb.frame_period_s
    gravity = 0.6 * room * 8 / tau_mean**2  # px/s^2 such that an average gap uses 60 % of the room
    heights = np.minimum(gravity * tau**2 / 8, 0.95 * room)
    centre = np.empty((tb.n_frames, 2))
    centre[:, axis] = bounce_axis(tb, contacts, floor, -d[axis], heights)
    lo, hi = np.full(2, margin), size - margin
    centre[:, 1 - axis] = smooth_path(rng, tb, lo, hi, rng.uniform(0.4, 1.0))[:, 1 - axis]
    inside = (contacts >= 0) & (contacts < tb.n_frames)
    events = contacts[inside]
    motion = Motion(centre, np.full(tb.n_frames, angle0), np.ones(tb.n_frames),
                    np.zeros(tb.n_frames), None, tuple(int(k) for k in events))
    if not sounding:
        return motion, None, None, None
    # Impact speed grows with the height of the arc that ends at the contact.
    strength = np.sqrt(heights[np.flatnonzero(inside) - 1] / room)
    timbre = draw_impact_timbre(rng, b.sound, tb.sample_rate)
    onsets = np.array([tb.sample_of(int(k)) + lag for k in events], np.int64)
    sounds = [impact_sound(timbre, tb.sample_rate, rng, 0.4 + 0.6 * s) for s in strength]
    return motion, place(tb.n_samples, onsets, sounds), onsets, None


def _pulse(b, shape, radius, tb, size, rng, sounding, voice, lag, lag_frames, salience=0.0):
    sr = tb.sample_rate
    # Salient pulses also come more often (mean gap 0.9 s -> 0.55 s), so that a 1 s window
    # nearly always holds one to tell aligned from shifted audio.
    min_gap = tb.frames(0.45 - 0.15 * salience)
    events = draw_event_frames(rng, 1, tb.n_frames, min_gap, float(tb.frames(0.45 - 0.2 * salience)))
    starts = np.array([tb.sample_of(int(k)) for k in events], np.int64)
    gap = np.diff(np.append(starts, tb.n_samples + sr))
    hold = np.minimum(rng.uniform(0.08, 0.25, len(events)) * sr, gap - 0.12 * sr).clip(0.02 * sr)
    peaks = rng.uniform(0.6, 1.0, len(events))
    env = burst_envelope(tb.n_samples, starts, hold, sr, 0.003, 0.06, peaks)  # visual timing
    vis = tb.per_frame(env, "max")  # a pulse shows on the frame its burst starts
    growth = 0.3 + 0.5 * salience
    scale = 1.0 + growth * vis
    margin = circumradius(shape, radius) * (1.0 + growth) + 1.0
    centre = smooth_path(rng, tb, np.full(2, margin), size - margin, rng.uniform(0.2, 0.8))
    angle = rng.uniform(0, 2 * np.pi) + rng.uniform(-0.6, 0.6) * tb.frame_times_s
    motion = Motion(centre, angle, scale, (0.8 + 0.2 * salience) * vis, None, tuple(int(k) for k in events))
    if not sounding:
        return motion, None, None, None
    env_audio = _shift(env, lag)
    if b.sound == "tone":
        carrier = tone_track(tb.n_samples, starts + lag, sr, rng, float(np.exp(rng.uniform(np.log(250), np.log(900)))))
    else:
        lo = rng.uniform(800.0, 3000.0)
        carrier = band_noise(tb.n_samples, sr, rng, lo, lo * rng.uniform(1.8, 3.0))
    return motion, env_audio * carrier, starts + lag, None


def _talk(b, shape, radius, tb, size, rng, sounding, voice, lag, lag_frames):
    voice = voice if voice is not None else VOICES[rng.integers(len(VOICES))]
    # Syllable onsets on frame boundaries, so the mouth starts to open on the onset frame.
    gaps = np.maximum([tb.frames(g) for g in syllable_gaps_s(rng, voice, int(tb.n_frames / 2) + 2)],
                      max(1, tb.frames(0.1)))
    frames = rng.integers(1, max(2, tb.frames(0.3))) + np.concatenate([[0], np.cumsum(gaps)])
    frames = frames[frames < tb.n_frames]
    samples = np.array([tb.sample_of(int(k)) for k in frames], np.int64)
    bab = babble(voice, tb.n_samples, tb.sample_rate, rng, onsets=samples + lag)
    kept = np.isin(samples + lag, bab.onsets)
    events = frames[kept]
    mouth = tb.per_frame(_shift(bab.envelope, -lag), "mean")
    mouth = np.clip(mouth / (mouth.max() + 1e-9), 0.0, 1.0)
    margin = radius + 1.0
    centre = smooth_path(rng, tb, np.full(2, margin), size - margin, rng.uniform(0.1, 0.4))
    scale = 1.0 + 0.03 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * tb.frame_times_s)
    scale = scale / scale.max()  # never larger than ``radius``: the margin holds
    motion = Motion(centre, np.zeros(tb.n_frames), scale, np.zeros(tb.n_frames), mouth,
                    tuple(int(k) for k in events))
    return motion, bab.signal, samples[kept] + lag, voice


def _shake(b, shape, radius, tb, size, rng, sounding, voice, lag, lag_frames):
    events = draw_event_frames(rng, 1, tb.n_frames, tb.frames(0.9), float(tb.frames(0.5)))
    n_ev = len(events)
    dur = np.array([max(2, tb.frames(s)) for s in rng.uniform(0.25, 0.6, n_ev)], np.int64)
    freq = rng.uniform(6.0, 10.0, n_ev)  # below the Nyquist rate of 30 fps video
    amp = rng.uniform(0.2, 0.35, n_ev) * radius
    theta = rng.uniform(0, np.pi, n_ev)
    t = tb.frame_times_s
    disp = np.zeros((tb.n_frames, 2))
    for k, D, f, a, th in zip(events, dur, freq, amp, theta):  # loop over a few bouts
        j = np.arange(k, min(k + D, tb.n_frames))
        u = (j - k) / D
        w = a * np.clip((1 - u) / 0.3, 0, 1) * np.cos(2 * np.pi * f * (t[j] - t[k]))
        disp[j] += w[:, None] * np.array([np.cos(th), np.sin(th)])
    margin = circumradius(shape, radius) + 0.35 * radius + 1.0
    base = smooth_path(rng, tb, np.full(2, margin), size - margin, rng.uniform(0.2, 0.7))
    angle = rng.uniform(0, 2 * np.pi) + 0.15 * disp[:, 0] / max(radius, 1.0)
    motion = Motion(base + disp, angle, np.ones(tb.n_frames), np.zeros(tb.n_frames), None,
                    tuple(int(k) for k in events))
    if not sounding:
        return motion, None, None, None
    bouts = [(tb.sample_of(int(k)) + lag, tb.sample_of(int(k + D)) - tb.sample_of(int(k)))
             for k, D in zip(events, dur)]
    lo = rng.uniform(1500.0, 3000.0)
    track = rattle_track(tb.n_samples, bouts, tb.sample_rate, rng, list(freq), (lo, lo * rng.uniform(2.0, 3.0)))
    return motion, track, np.array([s for s, _ in bouts], np.int64), None


def _roll(b, shape, radius, tb, size, rng, sounding, voice, lag, lag_frames):
    g = str(rng.choice(list(GRAVITY_DIRECTIONS)))
    d = np.array(GRAVITY_DIRECTIONS[g])
    axis = 0 if d[0] != 0 else 1  # gravity axis; the object rolls along the other one
    lat = 1 - axis
    margin = circumradius(shape, radius) + 1.0
    lo, hi = margin, size[lat] - margin
    pushes = draw_event_frames(rng, max(1, tb.frames(0.1)), tb.n_frames,
                               tb.frames(0.6), float(tb.frames(0.5)))
    if len(pushes) == 0:
        pushes = np.array([max(1, tb.n_frames // 3)], np.int64)
    rate = rng.uniform(4.0, 7.0, len(pushes))  # 1/s: speed decays to < 10 % before the next push
    x0 = rng.uniform(lo, hi)
    dist = np.empty(len(pushes))
    x = x0
    t_push = pushes * tb.frame_period_s
    for j in range(len(pushes)):  # each push heads for the side with more room
        room_plus, room_minus = hi - x, x - lo
        sign = 1.0 if room_plus >= room_minus else -1.0
        dist[j] = sign * rng.uniform(0.35, 0.85) * max(room_plus, room_minus)
        dt = (t_push[j + 1] - t_push[j]) if j + 1 < len(pushes) else np.inf
        x = x + dist[j] * (1 - np.exp(-rate[j] * dt))
    pos, _ = decaying_pushes(tb, pushes, dist, rate, x0, tb.frame_times_s)
    angle = rng.uniform(0, 2 * np.pi) + (pos - x0) / radius * (1 if lat == 0 else -1) * d[axis]
    wall = size[axis] if d[axis] > 0 else 0.0
    centre = np.empty((tb.n_frames, 2))
    centre[:, lat] = pos
    centre[:, axis] = wall - d[axis] * support(shape, radius, angle, tuple(d))
    motion = Motion(centre, angle, np.ones(tb.n_frames), np.zeros(tb.n_frames), None,
                    tuple(int(k) for k in pushes))
    if not sounding:
        return motion, None, None, None
    times = (np.arange(tb.n_samples) - lag) / tb.sample_rate
    _, speed = decaying_pushes(tb, pushes, dist, rate, x0, times)
    loud = np.minimum(speed / (np.abs(dist) * rate).max(), 1.0) ** 0.8
    carrier = lowpass_noise(tb.n_samples, tb.sample_rate, rng, rng.uniform(250.0, 500.0)) \
        + 0.3 * band_noise(tb.n_samples, tb.sample_rate, rng, 1000.0, 3000.0)
    onsets = np.array([tb.sample_of(int(k)) + lag for k in pushes], np.int64)
    return motion, loud * carrier, onsets, None
