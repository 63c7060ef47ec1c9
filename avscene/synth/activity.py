"""Turns of activity for the ``objects`` task: each object sounds (and shows the motion that causes
its sound) only during its own active spells, so several objects overlap in time as speakers do.

A *gate* is one bool per frame. Gating an actor multiplies its sound by the gate (with 5 ms ramps
at the spells' edges, so no click) and stills the visual cue of its events outside the spells:
a pulse's growth and glow, a face's mouth. Events and sound onsets outside the spells are dropped.
Only pulse and talk behaviours can be gated (their cue is a per-frame amplitude); the others keep
moving while silent, which would be a silent object, not an inactive one.

An *offset* delays one actor's sound (negative: advances it) against its picture, the dubbed
speaker of the per-object sync check.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from avscene.synth.actors import Actor
from avscene.synth.timebase import Timebase

#: Motions whose cue can be switched off frame by frame.
GATED_MOTIONS = ("pulse", "talk")
#: Lengths (s) of active spells and of the pauses between them, drawn uniformly.
SPELL_S = (0.8, 2.0)
PAUSE_S = (0.6, 1.6)
_RAMP_S = 0.005


def draw_gate(rng: np.random.Generator, tb: Timebase) -> np.ndarray:
    """Alternating active spells and pauses over the clip, starting in either state at a random
    phase; at least one spell inside the clip. Returns bool (n_frames,)."""
    gate = np.zeros(tb.n_frames, bool)
    active = bool(rng.random() < 0.5)
    t = -float(rng.uniform(0.0, SPELL_S[1]))  # start before the clip: a random phase
    while t < tb.n_frames / tb.fps:
        length = float(rng.uniform(*(SPELL_S if active else PAUSE_S)))
        if active:
            k0, k1 = (min(max(0, round(x * tb.fps)), tb.n_frames) for x in (t, t + length))
            gate[k0:k1] = True  # (empty when the spell ends before the clip starts)
        t, active = t + length, not active
    if not gate.any():  # a whole clip of pause: one spell in its middle
        k0 = max(0, tb.n_frames // 2 - tb.frames(SPELL_S[0]) // 2)
        gate[k0 : k0 + max(1, tb.frames(SPELL_S[0]))] = True
    return gate


def gate_samples(gate: np.ndarray, tb: Timebase) -> np.ndarray:
    """A per-frame gate (n_frames,) as a per-sample gain (n_samples,) float64 with short linear
    ramps at its edges."""
    per_sample = np.repeat(gate.astype(np.float64), np.diff(tb.frame_starts))  # (N,)
    ramp = max(1, tb.samples(_RAMP_S))
    kernel = np.ones(ramp) / ramp
    return np.convolve(per_sample, kernel, mode="same")


def gate_actor(actor: Actor, gate: np.ndarray, tb: Timebase) -> Actor:
    """``actor`` active only where ``gate`` (n_frames,) bool is True (see the module docstring)."""
    motion = actor.motion
    if motion.mouth is None and actor.behaviour.motion not in GATED_MOTIONS:
        raise ValueError(f"a {actor.behaviour.motion} object cannot be gated; use one of {GATED_MOTIONS}")
    g = gate.astype(np.float64)
    motion = dataclasses.replace(
        motion, scale=1.0 + (motion.scale - 1.0) * g, glow=motion.glow * g,
        mouth=None if motion.mouth is None else motion.mouth * g,
        event_frames=tuple(k for k in motion.event_frames if gate[k]))
    if actor.sound is None:
        return dataclasses.replace(actor, motion=motion)
    frame_of = np.searchsorted(tb.frame_starts, actor.sound_onsets, side="right") - 1
    onsets = actor.sound_onsets[gate[np.clip(frame_of, 0, tb.n_frames - 1)]]
    return dataclasses.replace(actor, motion=motion, sound=actor.sound * gate_samples(gate, tb), sound_onsets=onsets)


def offset_actor(actor: Actor, offset_s: float, tb: Timebase) -> Actor:
    """``actor`` with its sound delayed by ``offset_s`` seconds (negative: advanced), zero-filled;
    onsets that leave the clip are dropped."""
    n = tb.samples(offset_s)
    if actor.sound is None or n == 0:
        return actor
    sound = np.zeros_like(actor.sound)
    if n > 0:
        sound[n:] = actor.sound[:-n]
    else:
        sound[:n] = actor.sound[-n:]
    onsets = actor.sound_onsets + n
    return dataclasses.replace(actor, sound=sound, sound_onsets=onsets[(onsets >= 0) & (onsets < tb.n_samples)])
