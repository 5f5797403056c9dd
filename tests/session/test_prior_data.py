"""Simulator-labelled classifier snapshots: varied states, both cameras tiled, ground-truth labels."""

import numpy as np

from robot_stack.session.prior_data import labelled_sim_snapshots

TASKS = ("put_cube_in_bowl", "take_cube_out_of_bowl")


def test_snapshots_are_tiled_and_labelled_for_every_task():
    eps = labelled_sim_snapshots("widowx250_cube_bowl", TASKS, 30, seed=3, image_size=32, cameras=("front", "wrist"),
                                 frames_per_group=20, progress=False)
    assert [(e.task, e.frames.shape) for e in eps] == [(TASKS[0], (20, 32, 64, 3)), (TASKS[1], (20, 32, 64, 3)),
                                                       (TASKS[0], (10, 32, 64, 3)), (TASKS[1], (10, 32, 64, 3))]
    assert eps[0].group == eps[1].group != eps[2].group  # a group's two labellings stay on one side of a split
    assert all(e.outcome is None and e.label_source == "scripted" for e in eps)
    fwd = np.concatenate([eps[0].frame_labels, eps[2].frame_labels])
    bwd = np.concatenate([eps[1].frame_labels, eps[3].frame_labels])
    assert not (fwd & bwd).any(), "the cube cannot be in the bowl and clear of it at once"
    assert 0 < fwd.sum() < 30 and 0 < bwd.sum() < 30, "both outcomes of both tasks should appear"
    # the arm is not always at its reset pose: the wrist views differ beyond lighting noise
    wrist = np.concatenate([eps[0].frames, eps[2].frames])[:, :, 32:].astype(np.float32)
    assert np.abs(wrist - wrist.mean(axis=0)).mean() > 10
