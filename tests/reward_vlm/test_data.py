import numpy as np
import pytest

from reward_vlm import Episode, LabelRule, RewardInputError, UnknownTaskError, build_labelled_frames, tile_views

TASKS = [("fwd", "put the cube in the bowl"), ("bwd", "take the cube out of the bowl")]


def frames(t, value=0):
    f = np.zeros((t, 8, 8, 3), np.uint8)
    f[:, 0, 0, 0] = np.arange(t)  # frame index readable from the pixels
    f[:, 0, 0, 1] = value
    return f


def test_success_failure_and_human_override():
    human = np.full(10, -1, np.int8)
    human[2], human[9] = 1, 0  # human says frame 2 already done, frame 9 not
    eps = [
        Episode(frames(10, 1), "fwd", True, "scripted"),
        Episode(frames(6, 2), "bwd", False, "classifier"),
        Episode(frames(10, 3), 0, True, "human", frame_labels=human),
        Episode(frames(5, 4), "fwd", None, "classifier"),  # unknown outcome, no human labels: skipped
    ]
    rule = LabelRule(positive_frames=3, margin_frames=2)
    d = build_labelled_frames(eps, TASKS, rule)
    e0 = d.episode == 0
    assert list(d.frame[e0]) == [0, 1, 2, 3, 4, 7, 8, 9]  # frames 5, 6 fall in the margin
    assert list(d.labels[e0]) == [0, 0, 0, 0, 0, 1, 1, 1]
    assert np.all(d.weights[e0] == 1.0)
    e1 = d.episode == 1
    assert list(d.frame[e1]) == list(range(6)) and np.all(d.labels[e1] == 0) and np.all(d.task_ids[e1] == 1)
    assert np.all(d.weights[e1] == 0.5)
    e2 = d.episode == 2
    lab = dict(zip(d.frame[e2], d.labels[e2]))
    assert lab[2] == 1 and lab[9] == 0 and lab[8] == 1 and lab[0] == 0
    assert d.human[e2].sum() == 2 and np.all(d.weights[e2][d.human[e2]] == rule.human_frame_weight)
    assert not np.any(d.episode == 3)
    # images really are the frames they claim to be
    assert np.all(d.images[:, 0, 0, 0] == d.frame) and np.all(d.images[:, 0, 0, 1] == d.episode + 1)


def test_negative_stride_and_subset_concat():
    d = build_labelled_frames([Episode(frames(20), "fwd", False)], TASKS, LabelRule(negative_stride=5))
    assert list(d.frame) == [0, 5, 10, 15]
    both = type(d).concat([d, d.subset(d.frame > 5)])
    assert len(both) == 6


def test_errors():
    with pytest.raises(UnknownTaskError):
        build_labelled_frames([Episode(frames(3), "nope", True)], TASKS)
    with pytest.raises(RewardInputError, match="frame_labels"):
        Episode(frames(3), "fwd", True, frame_labels=np.zeros(4))
    with pytest.raises(RewardInputError, match="label_source"):
        Episode(frames(3), "fwd", True, "robot")
    with pytest.raises(RewardInputError, match="no labelled frames"):
        build_labelled_frames([Episode(frames(3), "fwd", None)], TASKS)
    with pytest.raises(ValueError, match="positive_frames"):
        LabelRule(positive_frames=0)


def test_tile_views_puts_cameras_side_by_side():
    front = np.zeros((5, 4, 6, 3), np.uint8)
    wrist = np.full((5, 4, 6, 3), 200, np.uint8)
    tiled = tile_views([front, wrist])
    assert tiled.shape == (5, 4, 12, 3)
    assert (tiled[:, :, :6] == 0).all() and (tiled[:, :, 6:] == 200).all()  # first camera on the left
    assert tile_views([front[0], wrist[0]]).shape == (4, 12, 3)  # one frame per camera
    assert tile_views([front]) is front
    with pytest.raises(RewardInputError, match="one shape"):
        tile_views([front, wrist[:, :, :5]])
    with pytest.raises(RewardInputError, match="at least one"):
        tile_views([])
