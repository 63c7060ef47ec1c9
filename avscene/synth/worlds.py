"""Named synthetic worlds and the writers of the synthetic sets each task trains on.

A writer generates a set once at the rates of the network that will train on it (its frame rate
and sample rate; sizes are the world's) and reuses a finished set on the next call
(:func:`avscene.synth.ensure_dataset`): sync sets for shift pretraining
(:data:`SYNTHETIC_SYNC_WORLDS`, :func:`write_synthetic_sync_data`), separation sets with stems
(:func:`write_synthetic_separation_data`) and action sets (:func:`write_synthetic_action_data`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from avscene.synth.dataset import ensure_dataset
from avscene.synth.scene import SceneConfig

if TYPE_CHECKING:
    from avscene.models import SeparationNetConfig, ShiftNetConfig

#: Synthetic worlds for sync pretraining (``avscene train shift --data synthetic``).
#: ``pulses`` is the CPU-scale default: objects that grow and brighten with each tone or hiss
#: burst, made salient (``SceneConfig.salience``), 1-2 objects with silent ones among them,
#: off-screen sources, background clutter. Measured on this project's 2-core CPU, the ``small``
#: preset learns it in a few hundred steps, while on the ``full`` world (five motion kinds at
#: default salience) it stays at chance for 600 steps: its cues (a bounce's contact, a
#: mouth's opening, a roll's push) take a few pixels at 64 x 64 and need far more training.
#: ``pulses-crowd`` is ``pulses`` with 1-3 look-alike objects of which exactly one sounds: to
#: tell sync apart the net must find *which* object's pulses meet the bursts, the skill its
#: class activation maps show (``benchmarks/localize.py`` fine-tunes on it). ``pulses-lookalikes``
#: always has 2-3 of them, as the localization scenes do: no clip can be told apart without
#: telling the objects apart.
#: ``motions`` has all five motion kinds at the larger size of ``salience`` 1, 1-2 objects: the
#: cues the action classes of ``benchmarks/action.py`` are made of. Slow at CPU scale: the
#: ``small`` net fine-tuned on it from ``pulses`` stays on the pulses it knew for about 1500 steps
#: (0.57 held-out sync accuracy after 1000) and reaches 0.82, every kind learnt, after 4000
#: (``benchmarks/results/shift_small_motions*.json``).
SYNTHETIC_SYNC_WORLDS = {
    "pulses": dict(motions=("pulse",), salience=1.0, n_objects=(1, 2)),
    "pulses-crowd": dict(motions=("pulse",), salience=1.0, n_objects=(1, 3), n_sounding=1),
    "pulses-lookalikes": dict(motions=("pulse",), salience=1.0, n_objects=(2, 3), n_sounding=1),
    "motions": dict(salience=1.0, n_objects=(1, 2)),
    "full": {},
}

#: Synthetic worlds for on/off-screen separation (``SceneConfig`` options of its ``separation``
#: task). ``talk``: a talking face and an off-screen talker (``benchmarks/separation.py``; a few
#: thousand steps before the separator beats the mixture clearly). ``pulses``: the sync world's
#: salient pulsing objects and their tone and hiss bursts, a silent look-alike in half the scenes,
#: off-screen bursts at the same level: the demo's, whose shift network learnt exactly these cues.
SYNTHETIC_SEPARATION_WORLDS = {
    "talk": {},
    "pulses": dict(motions=("pulse",), salience=1.0),
}

#: Length (s) of the scenes of synthetic action sets (a few clips of the small presets each).
SYNTHETIC_ACTION_SCENE_S = 4.0


def write_synthetic_sync_data(root: str | Path, n: int, seed: int, model_cfg: ShiftNetConfig, *,
                              world: str = "pulses", progress: bool = True) -> tuple[Path, Path]:
    """Generate (once; finished sets are reused) ``n`` training scenes of a synthetic sync world
    under ``root/train`` and ``max(8, n // 8)`` held-out ones (other seeds) under ``root/val``, at
    the frame and sample rates of the shift network ``model_cfg``."""
    if world not in SYNTHETIC_SYNC_WORLDS:
        raise ValueError(f"unknown synthetic world {world!r}; choose from {sorted(SYNTHETIC_SYNC_WORLDS)}")
    root = Path(root)
    config = SceneConfig(task="sync", fps=model_cfg.fps, sample_rate=model_cfg.sample_rate,
                         **SYNTHETIC_SYNC_WORLDS[world])
    ensure_dataset(root / "train", n, seed, config=config, progress=progress)
    ensure_dataset(root / "val", max(8, n // 8), seed + 10_000, config=config, progress=progress)
    return root / "train", root / "val"


def write_synthetic_separation_data(root: str | Path, model_cfg: SeparationNetConfig, *, progress: bool = True,
                                    voice_pairing: str = "random", world: str = "talk",
                                    **sets: tuple[int, int]) -> dict[str, Path]:
    """Generate (once; finished sets are reused) synthetic separation sets with stems at the rates of
    ``model_cfg`` (a :class:`~avscene.models.SeparationNetConfig`): ``root/<name>`` with ``count``
    scenes of seed ``seed`` for each ``name=(count, seed)``; returns ``{name: folder}``.
    ``voice_pairing`` (:class:`avscene.synth.SceneConfig`): ``"random"`` (each scene draws within or
    across voice groups), ``"within"`` or ``"across"`` for every scene (``talk`` world only).
    ``world``: a key of :data:`SYNTHETIC_SEPARATION_WORLDS`. A finished set written with another
    count, seed or scene config is an error, not silently reused."""
    if world not in SYNTHETIC_SEPARATION_WORLDS:
        raise ValueError(f"unknown separation world {world!r}; choose from {sorted(SYNTHETIC_SEPARATION_WORLDS)}")
    config = SceneConfig(task="separation", fps=model_cfg.shift.fps, sample_rate=model_cfg.shift.sample_rate,
                         voice_pairing=voice_pairing, **SYNTHETIC_SEPARATION_WORLDS[world])
    return {name: ensure_dataset(Path(root) / name, count, set_seed, config=config, progress=progress)
            for name, (count, set_seed) in sets.items()}


def write_synthetic_action_data(root: str | Path, shift_cfg: ShiftNetConfig, *, progress: bool = True,
                                unseen_action_sound: float = 0.0, **sets: tuple[int, int]) -> dict[str, Path]:
    """Generate (once; finished sets are reused) synthetic action sets at the rates of ``shift_cfg``:
    ``root/<name>`` with ``count`` scenes of seed ``seed`` for each ``name=(count, seed)``; returns
    ``{name: folder}``. Labels cycle over the classes, so ``count = k * len(ACTION_CLASSES)``
    gives k scenes per class. ``unseen_action_sound``: see :class:`avscene.synth.SceneConfig`."""
    config = SceneConfig(task="action", fps=shift_cfg.fps, sample_rate=shift_cfg.sample_rate,
                         duration_s=SYNTHETIC_ACTION_SCENE_S, unseen_action_sound=unseen_action_sound)
    return {name: ensure_dataset(Path(root) / name, count, set_seed, config=config, progress=progress, stems=False)
            for name, (count, set_seed) in sets.items()}
