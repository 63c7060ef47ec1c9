"""The window engine: every plan the tasks used before it had one planner, and the cross-fade."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from avscene.constants import frame_to_sample
from avscene.infer.separate import last_window_start, output_length
from avscene.models.separation_net import get_preset
from avscene.windows import OverlapAdd, crossfade_weights, plan_windows

MAX_WINDOWS = (None, 0, 1, 2, 3, 5, 8)


# The four planners the engine replaced, as they were written: the sync scan's centred grid, the
# localization's covering spread, the action clips' uniform spread and the separation's grid with
# a window flush with the end of the track.

def _sync_plan(total, n, hop, max_windows):
    if total < n:
        raise ValueError
    hop = max(1, hop)
    count = (total - n) // hop + 1
    first = (total - n - (count - 1) * hop) // 2
    starts = [first + i * hop for i in range(count)]
    if max_windows and len(starts) > max_windows:
        starts = [starts[round(i * (len(starts) - 1) / (max_windows - 1))] for i in range(max_windows)] \
            if max_windows > 1 else [starts[len(starts) // 2]]
    return starts


def _localize_plan(total, n, hop, max_windows):
    if total < n:
        raise ValueError
    span = total - n
    count = 1 + -(-span // max(1, hop))
    if max_windows:
        count = min(count, max_windows)
    if count == 1:
        return [span // 2]
    return [round(i * span / (count - 1)) for i in range(count)]


def _action_plan(total, n, n_clips):
    last = total - n
    if last <= 0:
        return [0]
    if n_clips == 1:
        return [last // 2]
    return [round(i * last / (n_clips - 1)) for i in range(n_clips)]


def _separation_plan(n_samples, model, hop):
    cfg = model.config
    fps, rate = cfg.shift.fps, cfg.shift.sample_rate
    need = n_samples - output_length(model)
    if need <= 0:
        return [0]
    last = math.ceil(need * fps / rate)
    while frame_to_sample(last, fps, rate) < need:
        last += 1
    while last > 0 and frame_to_sample(last - 1, fps, rate) >= need:
        last -= 1
    return list(range(0, last, hop)) + [last]


def _same(plan, reference) -> bool:
    try:
        expected = reference()
    except ValueError:
        with pytest.raises(ValueError):
            plan()
        return True
    return plan() == expected


@pytest.mark.parametrize("align, reference", [("center", _sync_plan), ("cover", _localize_plan)])
def test_grid_plans_equal_the_sync_and_localization_planners(align, reference):
    for total in range(0, 64):
        for n in range(1, 18):
            for hop in range(0, 20):
                for max_windows in MAX_WINDOWS:
                    assert _same(lambda: plan_windows(total, n, hop, max_windows=max_windows, align=align),
                                 lambda: reference(total, n, hop, max_windows)), (total, n, hop, max_windows)


def test_counted_plan_equals_the_action_clips_planner():
    for total in range(0, 120):
        for n in range(1, 30):
            for n_clips in range(1, 14):
                assert plan_windows(max(total, n), n, count=n_clips) == _action_plan(total, n, n_clips)
    with pytest.raises(ValueError):
        plan_windows(40, 8, count=0)


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_start_plan_equals_the_separation_planner(preset):
    model = SimpleNamespace(config=get_preset(preset))
    n = model.config.n_frames
    for n_samples in range(0, 4 * output_length(model), 97):
        last = last_window_start(n_samples, model)
        for hop in range(1, n + 1):
            assert plan_windows(last + n, n, hop, align="start") == _separation_plan(n_samples, model, hop)


def test_plans_need_a_hop_or_a_count():
    with pytest.raises(ValueError):
        plan_windows(40, 8)
    with pytest.raises(ValueError):
        plan_windows(40, 8, align="center")
    with pytest.raises(ValueError):
        plan_windows(40, 8, 4, align="middle")


def test_overlap_add_cross_fades_with_triangles():
    assert crossfade_weights(5).tolist() == [1, 2, 3, 2, 1]
    assert crossfade_weights(5, np.array([0.5, 3.0])).tolist() == [1.5, 2.0]
    blend = OverlapAdd((2, 12), axis=-1)  # two windows of 8 samples at 0 and 4: overlap 4..7
    blend.add(slice(0, 8), np.ones((2, 8)), np.arange(8), 8)
    blend.add(slice(4, 12), np.full((2, 8), 3.0), np.arange(8), 8)
    out, covered = blend.result()
    assert covered.all() and out.shape == (2, 12)
    w_first, w_second = crossfade_weights(8)[4:], crossfade_weights(8)[:4]
    np.testing.assert_array_equal(out[0, 4:8], (w_first + 3 * w_second) / (w_first + w_second))
    assert (out[:, :4] == 1).all() and (out[:, 8:] == 3).all()
    frames = OverlapAdd((6, 2, 2))  # positions along axis 0; position 5 never reached
    frames.add(np.array([0, 1, 2]), np.ones((3, 2, 2)), np.array([0.0, 1.0, 2.0]), 3)
    values, covered = frames.result()
    assert covered.tolist() == [True, True, True, False, False, False] and (values[3:] == 0).all()
