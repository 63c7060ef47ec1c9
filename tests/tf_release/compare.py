"""avscene's forward on a reference's inputs, in the reference's units, and the errors between
the two (shared by tests/test_tf_import.py and benchmarks/import_tf.py)."""

from __future__ import annotations

import math

import numpy as np
import torch

from avscene.audio.stft import unit_to_db
from avscene.data.shift_pairs import frames_to_video
from avscene.models.separation_net import LOG_MAG, PHASE, release_waveforms


def rel_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    """Max absolute difference relative to the reference's largest magnitude."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-12))


def avscene_outputs(model, kind: str, ims, samples) -> dict[str, np.ndarray]:
    """avscene's forward on the reference's inputs, in the reference's units and layout."""
    audio = torch.from_numpy(samples).permute(0, 2, 1)  # (B, 2, N)
    with torch.no_grad():
        if kind in ("shift", "cam"):
            video = frames_to_video(torch.from_numpy(ims))
            cam = model.cam(video, audio)  # (B, T', H', W')
            return {"cam": cam.numpy(), "logits": model(video, audio).numpy()}
        video = frames_to_video(torch.from_numpy(ims)) if kind == "sep" else None
        out = model(video, audio)  # (B, 2, 2, F, T)
        db = unit_to_db(out[:, :, LOG_MAG]).numpy()  # (B, 2, F, T)
        phase = (out[:, :, PHASE] * math.pi).numpy()
        wav = release_waveforms(out, audio).numpy()  # (B, 2, N')
    result = {}
    for i, src in enumerate(("fg", "bg")):
        result[f"spec_{src}"] = db[:, i].transpose(0, 2, 1)  # (B, T, F)
        result[f"phase_{src}"] = phase[:, i].transpose(0, 2, 1)
        result[f"wav_{src}"] = wav[:, i]
    return result


def compare(kind: str, ours: dict, theirs: dict) -> dict[str, float]:
    if kind in ("shift", "cam"):
        return {"logits": rel_error(ours["logits"], theirs["logits"]), "cam": rel_error(ours["cam"], theirs["cam"])}
    errors = {}
    for src in ("fg", "bg"):
        errors[f"spec_{src}"] = rel_error(ours[f"spec_{src}"], theirs[f"spec_{src}"][..., :-1])
        # phase: compare as unit phasors (a value near +-pi may come out on the other side)
        errors[f"phase_{src}"] = float(np.abs(np.exp(1j * ours[f"phase_{src}"])
                                              - np.exp(1j * theirs[f"phase_{src}"][..., :-1])).max())
        errors[f"wav_{src}"] = rel_error(ours[f"wav_{src}"], theirs[f"wav_{src}"])
    return errors


