"""Where does the sound come from, for a two-tower correspondence network: similarity maps.

The map of a clip is the cosine between its sound's embedding and each location's visual
embedding (:class:`~avscene.models.two_tower.TwoTowerNet`), one slice per 8 frames (the 2D tower
sees frames 0, 8, 16 ... of the window; the 3D tower strides 8 in time), in [-1, 1]: high where
the picture looks like what the network learnt goes with that sound. ``avscene localize`` runs it
through the same windows, cross-fades, geometry and writers as the shift network's class
activation maps (:mod:`avscene.infer.localize` dispatches here for a two-tower network), so the
maps come out in the same formats (``_cam.mp4``, ``.npy``, ``.json``, ``_sheet.png``).
"""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F

from avscene.data.shift_pairs import frames_to_video
from avscene.models.two_tower import MAP_STRIDE_T, TwoTowerNet
from avscene.windows import inference, model_device, window_batch


def is_two_tower(model) -> bool:
    """Whether ``model`` is a two-tower correspondence network (its maps are similarity maps)."""
    return isinstance(model, TwoTowerNet)


def similarity_batch(model: TwoTowerNet, frames, audio) -> np.ndarray:
    """Similarity maps of a batch of clips, in eval mode (the model's mode is restored).

    Args:
        frames: uint8 (B, T, H, W, 3) at ``model.config.fps``, fitted to the model's input (any
            side >= 16 px: the visual tower is fully convolutional).
        audio: float32 (B, N, C) in [-1, 1], sample 0 at frame 0, ``N`` about ``frame_to_sample(T)``.
    Returns: float32 (B, ceil(T / 8), h, w), cells as ``model.config.map_stride`` says.
    """
    frames, audio = window_batch(frames, audio, model.config)  # (B, T, H, W, 3), (B, C, N)
    device = model_device(model)
    video = frames_to_video(frames.to(device))  # (B, 3, T, H, W)
    with inference(model):
        locations = F.normalize(model.embed_locations(video, every=MAP_STRIDE_T), dim=1)  # (B, D, T', h, w)
        maps = model.similarity_map(model.embed_audio(audio.to(device)), locations)  # (B, T', h, w)
    return maps.float().cpu().numpy()
