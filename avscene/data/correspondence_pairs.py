"""Examples for audio-visual correspondence (the two-tower nets of :mod:`avscene.models.two_tower`).

The shift task's examples serve as they are (:class:`~avscene.data.shift_pairs.ShiftPairs`): a
clip, its aligned audio, and one negative audio, either from another video (``random-pair``,
L3-Net's and AVE-Net's negatives) or from the same video at another time (``shift``: the hard
negatives that bridge correspondence and sync). Correspondence adds one thing: which video each
clip came from, so that a batch's other clips can serve as negatives without ever pairing a
picture with its own video's sound (``video``; -1 where unknown, as for shards).
"""

from __future__ import annotations

import numpy as np

from avscene.data.shift_pairs import ShiftPairs, ShiftSampling

#: ``video`` of an example whose source video is not known.
UNKNOWN_VIDEO = -1


def correspondence_sampling(model_cfg, *, hard_negatives: bool, augment: bool) -> ShiftSampling:
    """How examples for the two-tower config ``model_cfg`` are cut: its window, rates and crop;
    the negative from the same video (``hard_negatives``) or from another one."""
    fields = ShiftSampling.fields_for(model_cfg)
    return ShiftSampling(**fields, negatives="shift" if hard_negatives else "random-pair", augment=augment)


class CorrespondencePairs(ShiftPairs):
    """:class:`ShiftPairs` whose examples also carry ``video``: the index of the video the clip
    (and its aligned audio) came from."""

    def _example(self, rng: np.random.Generator) -> dict:
        # ShiftPairs draws the video first: read that draw from a copy of the generator
        peek = np.random.Generator(type(rng.bit_generator)())
        peek.bit_generator.state = rng.bit_generator.state
        video = int(peek.integers(len(self.index)))
        example = super()._example(rng)
        example["video"] = video
        return example
