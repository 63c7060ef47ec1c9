"""A procedural audio-visual world with exact ground truth: the default data of avscene.

Scenes are textured, noisy, slowly drifting backgrounds with 1-3 moving objects (discs,
squares, triangles, rings, talking faces). A *sounding* object's sounds are caused by its
visual events (impacts when it bounces, bursts when it pulses, babble while its mouth moves,
rattles while it shakes, rumble while it rolls), at exactly the sample of the event's frame;
*silent* objects move the same way without sound. Audio is stereo, each source panned by its
object's horizontal position, with optional off-screen sources and background noise at a set
SNR. See :mod:`avscene.synth.scene` for the tasks (sync, localize, separation, action),
:mod:`avscene.synth.actions` for the action classes, :mod:`avscene.synth.voices` for the
voice groups and :mod:`avscene.synth.worlds` for the named sync worlds and the writers of each
task's training sets.

>>> from avscene.synth import SceneConfig, generate_scene
>>> scene = generate_scene(SceneConfig(task="localize", duration_s=2.0), seed=0)
>>> scene.frames.shape, scene.audio.shape
((59, 96, 96, 3), (41341, 2))
"""

from avscene.synth.actions import (ACTION_CLASSES, ACTIONS, SOUND_PAIRS, TIMING_PAIRS, ActionClass,
                                   action_class_names, action_index)
from avscene.synth.actors import MOTION_SOUNDS, MOTIONS, SOUND_KINDS, Actor, Behaviour, build_actor
from avscene.synth.dataset import (ensure_dataset, load_ground_truth, load_manifest, scene_record, scene_seed,
                                   write_dataset)
from avscene.synth.render import SHAPE_FAMILIES, SHAPES
from avscene.synth.scene import LAYOUTS, TASKS, VOICE_PAIRINGS, ObjectInfo, Scene, SceneConfig, generate_scene
from avscene.synth.timebase import Timebase
from avscene.synth.voices import VOICE_GROUPS, VOICES, Babble, Voice, babble, voices_in_group

__all__ = [
    "ensure_dataset", "LAYOUTS",
    "ACTIONS", "ACTION_CLASSES", "ActionClass", "Actor", "Babble", "Behaviour", "MOTIONS",
    "MOTION_SOUNDS", "ObjectInfo", "SHAPES", "SHAPE_FAMILIES", "SOUND_KINDS", "SOUND_PAIRS",
    "Scene", "SceneConfig", "TASKS", "TIMING_PAIRS", "Timebase", "VOICES", "VOICE_GROUPS",
    "VOICE_PAIRINGS", "Voice", "action_class_names", "action_index", "babble", "build_actor",
    "generate_scene", "load_ground_truth", "load_manifest", "scene_record", "scene_seed",
    "voices_in_group", "write_dataset",
]
