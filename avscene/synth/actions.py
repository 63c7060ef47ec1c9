"""Action-like classes of the synthetic world: each is a pattern of motion and sound.

Shapes, colours, sizes, positions, floors (which border an object bounces or rolls on), event
timing and timbres are random within every class, so a class is defined only by the columns
below. Three groups of classes are built so that one modality alone is not enough:

==  ================  =======  =========================================  ===============================
id  name              motion   sound                                      confusable with (and why)
==  ================  =======  =========================================  ===============================
0   ``bounce_clink``  bounce   high modal impact (1.4-3.2 kHz) at contact  1 (same motion), 2 (same sound)
1   ``bounce_thud``   bounce   low thud (55-160 Hz) at contact             0 (differs only in sound)
2   ``bounce_late``   bounce   the clink of 0, 0.2-0.3 s *after* contact   0 (differs only in timing)
3   ``pulse_tone``    pulse    harmonic tone burst (250-900 Hz) per pulse  4 (differs only in sound)
4   ``pulse_hiss``    pulse    band-pass noise burst per pulse             3 (differs only in sound)
5   ``talk``          talk     babble; mouth follows its envelope          -
6   ``shake_rattle``  shake    click-train rattle during each shake bout   4 (noisy bursts), 7
7   ``roll_rumble``   roll     low rumble, loudness follows rolling speed  6, 1 (low noisy sound)
==  ================  =======  =========================================  ===============================

Pairs (0, 1) and (3, 4) differ mainly in their sound; pair (0, 2) differs only in the timing
between sound and motion (same motion statistics, same sound family), so it needs both streams.
"""

from __future__ import annotations

from dataclasses import dataclass

from avscene.synth.actors import Behaviour


@dataclass(frozen=True)
class ActionClass:
    """One class: its ``name``, the ``behaviour`` its main object performs and a description."""

    name: str
    behaviour: Behaviour
    description: str


ACTIONS: tuple[ActionClass, ...] = (
    ActionClass("bounce_clink", Behaviour("bounce", "clink"), "bounces; high clink at each contact"),
    ActionClass("bounce_thud", Behaviour("bounce", "thud"), "bounces; low thud at each contact"),
    ActionClass("bounce_late", Behaviour("bounce", "clink", (0.2, 0.3)),
                "bounces; clink 0.2-0.3 s after each contact"),
    ActionClass("pulse_tone", Behaviour("pulse", "tone"), "pulses; tone burst per pulse"),
    ActionClass("pulse_hiss", Behaviour("pulse", "hiss"), "pulses; noise burst per pulse"),
    ActionClass("talk", Behaviour("talk", "babble"), "a face talks; mouth follows the babble"),
    ActionClass("shake_rattle", Behaviour("shake", "rattle"), "shakes in bouts; rattles meanwhile"),
    ActionClass("roll_rumble", Behaviour("roll", "rumble"), "is pushed and rolls; rumbles with speed"),
)

#: Class names, index = label.
ACTION_CLASSES: tuple[str, ...] = tuple(a.name for a in ACTIONS)

#: Pairs of labels that differ mainly in their sound / in sound-motion timing.
SOUND_PAIRS: tuple[tuple[int, int], ...] = ((0, 1), (3, 4))
TIMING_PAIRS: tuple[tuple[int, int], ...] = ((0, 2),)


def action_class_names() -> tuple[str, ...]:
    """Names of the action classes, index = label."""
    return ACTION_CLASSES


def action_index(name: str) -> int:
    """Label of the class called ``name``."""
    try:
        return ACTION_CLASSES.index(name)
    except ValueError:
        raise KeyError(f"no action class {name!r}; have {ACTION_CLASSES}") from None
