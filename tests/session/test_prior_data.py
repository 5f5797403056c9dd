"""Scripted prior data (demos per task) and simulator-labelled classifier snapshots: varied states,
both cameras tiled, ground-truth labels."""

import numpy as np
import pytest

from robot_stack.session.prior_data import PriorDataConfig, collect_prior_data, labelled_sim_snapshots

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


def test_near_miss_snapshots_are_negatives_with_the_arm_at_the_goal():
    """All near misses: each task one step short of done (its reverse still holds), the scenes varied."""
    eps = labelled_sim_snapshots("widowx250_cube_bowl", TASKS, 12, seed=4, image_size=32, cameras=("front",),
                                 frames_per_group=12, near_miss_share=1.0, progress=False)
    fwd, bwd = eps[0].frame_labels, eps[1].frame_labels
    # even frames stage "put in" (cube beside the bowl), odd ones "take out" (cube inside the rim)
    assert not fwd[0::2].any() and bwd[0::2].all()
    assert fwd[1::2].all() and not bwd[1::2].any()
    assert np.abs(eps[0].frames.astype(np.float32) - eps[0].frames.mean(axis=0)).mean() > 3


def test_session_layout_snapshots_show_the_sessions_own_scene():
    """Snapshots in the session's layout share its look (table, light, camera); fresh ones do not."""
    from hardware.sim.scenes import make_scene

    with make_scene("widowx250_cube_bowl", seed=8, image_size=32) as session_scene:  # what the session's controller builds
        table = np.median(session_scene.images()["front"].reshape(-1, 3), axis=0)

    def tables(share):
        eps = labelled_sim_snapshots("widowx250_cube_bowl", TASKS, 8, seed=8, image_size=32, cameras=("front",),
                                     session_layout_share=share, progress=False)
        return np.median(eps[0].frames.reshape(8, -1, 3), axis=1)  # (8, 3) the table's colour in each

    assert np.abs(tables(1.0) - table).max() <= 2
    assert np.abs(tables(0.0) - table).max(axis=1).min() > 2


def test_home_snapshots_show_the_view_the_actor_confirms_from():
    """The arm put home like the actor does: the cube left where the expert had it, the arm at its reset pose."""
    from hardware.sim.scenes import make_scene
    from robot_stack.session.prior_data import home_like_the_actor

    with make_scene("widowx250_cube_bowl", seed=5, image_size=32, cameras=("front", "wrist")) as scene:
        home_wrist = scene.images()["wrist"].astype(np.float32)  # the session's scene, arm at reset
        scene.randomize(np.random.default_rng(0), task_id=TASKS[0])
        expert = scene.expert(TASKS[0], noise=0.0, rng=np.random.default_rng(0))
        while expert.phase not in ("carry", "lower") and expert.steps < 40:
            scene.step(expert(scene.observe()))
        assert expert.phase in ("carry", "lower"), "the expert should hold the cube by now"
        home_like_the_actor(scene)
        np.testing.assert_allclose(scene.observe().joint_positions, scene.robot.reset_q, atol=0.02)
        assert scene.observe().gripper > 0.9  # open: the cube was put down, not carried home
        assert scene.privileged()["cube_pose"][2] < 2 * scene.cube_half + 0.01

    def wrist_offset(home_share):
        eps = labelled_sim_snapshots("widowx250_cube_bowl", TASKS, 6, seed=5, image_size=32, cameras=("front", "wrist"),
                                     session_layout_share=1.0, home_share=home_share, progress=False)
        wrist = eps[0].frames[:, :, 32:].astype(np.float32)
        return np.abs(wrist - home_wrist).mean(axis=(1, 2, 3))  # per snapshot, vs the reset pose's view

    assert wrist_offset(1.0).max() < 0.5 * wrist_offset(0.0).mean()


def test_the_forward_task_can_have_fewer_demos_than_its_reset_partner(tmp_path):
    from robot_stack.store import EpisodeStore

    store = EpisodeStore.create(tmp_path / "prior.zarr")
    cfg = PriorDataConfig(demos_per_task=3, forward_demos=1, failures_per_task=0)
    counts = collect_prior_data(store, "widowx250_cube_bowl", "sim", cfg, image_size=16, progress=False)
    assert counts["demos"] == 4
    successes = {t: len(store.episodes("sim", task_id=t, outcome="success")) for t in TASKS}
    assert successes == {"put_cube_in_bowl": 1, "take_cube_out_of_bowl": 3}
    assert PriorDataConfig(demos_per_task=3).demos_for(0) == 3  # -1: the forward task gets demos_per_task too
    with pytest.raises(ValueError, match="forward_demos"):
        PriorDataConfig(forward_demos=-2)


def test_the_prior_datas_expert_gate_reaches_the_expert_and_is_recorded(tmp_path):
    from robot_stack.store import EpisodeStore

    store = EpisodeStore.create(tmp_path / "prior.zarr")
    cfg = PriorDataConfig(demos_per_task=1, failures_per_task=1, expert_gate="loose")
    collect_prior_data(store, "widowx250_cube_bowl", "sim", cfg, image_size=16, progress=False)
    infos = store.episodes("sim")
    assert len(infos) >= 4 and {i.extra["expert_gate"] for i in infos} == {"loose"}
    with pytest.raises(ValueError, match="expert_gate"):
        PriorDataConfig(expert_gate="lose")
    from typing import get_args

    from hardware.sim.experts import DESCENT_GATES
    from robot_stack.session.prior_data import ExpertGate

    assert set(get_args(ExpertGate)) == set(DESCENT_GATES)  # the config names every gate the expert has
