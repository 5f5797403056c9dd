"""Ground-truth evaluation in the simulator (``evaluate_in_sim``'s layouts), and what the branching
probe concludes from its branch states (``summarize_branches``); the probe itself runs on the real
simulator in tests/learner/test_pretrain_and_service.py."""

import numpy as np
import pytest

from robot_stack.session.evaluate import evaluate_in_sim, sim_success, summarize_branches


class FirstFrames:
    """A policy that holds still and keeps the front camera's first frame of every start."""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []
        self._new = False

    def reset(self) -> None:
        self._new = True

    def act(self, images, proprio, task_id, deterministic):
        if self._new:
            self.frames.append(images["front"].astype(np.int16))
            self._new = False
        return np.array([0, 0, 0, 0, 0, 0, 1.0], dtype=np.float32)


def changed(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pixels that differ by more than a little between two (H, W, 3) frames."""
    return float((np.abs(a - b).max(axis=-1) > 8).mean())


def test_the_session_layout_evaluation_moves_only_the_cube_in_the_sessions_room():
    """``layout_seed``: every start in the room the session's scene builds from that seed (a lab
    evaluates in the room the robot practised in), only the cube moved; without it every start is
    a new room (bowl, distractors, lighting, cameras): the generalisation figure."""
    from hardware.sim.scenes import make_scene

    kept, new = FirstFrames(), FirstFrames()
    for policy, layout_seed in ((kept, 3), (new, None)):
        out = evaluate_in_sim(policy, "widowx250_cube_bowl", "put_cube_in_bowl", episodes=4, horizon=1,
                              layout_seed=layout_seed)
        assert out["successes"] == 0 and len(policy.frames) == 4
        assert sum(k["episodes"] for k in out["by_start"].values()) == 4  # every start of a kind the scene names
        assert set(out["by_start"]) <= {"open", "against_outer_wall", "beside_distractor"}
    session_scene = make_scene("widowx250_cube_bowl", seed=3, image_size=64)
    try:
        session_view = session_scene.images()["front"].astype(np.int16)
    finally:
        session_scene.close()
    for i, frame in enumerate(kept.frames):
        assert 0.0 < changed(frame, session_view) < 0.05, i  # the cube moved, the room did not
    assert all(changed(a, b) > 0.3 for a, b in zip(new.frames, new.frames[1:]))


def test_sim_success_scores_in_the_session_configs_room_or_in_new_ones():
    """``sim_success(cfg, session_layout=True)`` starts every rollout in the layout the session's
    scene builds from ``cfg.seed``, with its image size and cameras; without it, a new one each time."""
    from hardware.sim.scenes import make_scene

    from robot_stack.session.config import SessionConfig

    cfg = SessionConfig(seed=5, image_size=32)
    kept, new = FirstFrames(), FirstFrames()
    assert sim_success(cfg, 3, session_layout=True, progress=False)(kept, "put_cube_in_bowl") == 0.0
    assert sim_success(cfg, 3, progress=False)(new, "put_cube_in_bowl") == 0.0
    scene = make_scene(cfg.scene, seed=cfg.seed, image_size=cfg.image_size, cameras=tuple(cfg.cameras))
    try:
        room = scene.images()["front"].astype(np.int16)
    finally:
        scene.close()
    assert [f.shape for f in kept.frames] == [(32, 32, 3)] * 3
    assert all(0.0 < changed(frame, room) < 0.05 for frame in kept.frames)
    assert all(changed(frame, room) > 0.3 for frame in new.frames)


class StartFrames(FirstFrames):
    """FirstFrames that ``branch_in_sim`` can branch: it keeps the frame of every branch state."""

    steps_per_plan = 1

    def __init__(self) -> None:
        super().__init__()
        self.branch_frames: list[np.ndarray] = []

    def scored_candidates(self, images, proprio, task_id, k):
        self.branch_frames.append(images["front"].astype(np.int16))
        return np.tile(self.act(images, proprio, task_id, True), (k + 1, 1)), np.zeros(k + 1)


def test_the_branch_probe_starts_where_the_evaluation_does_in_either_room():
    """``branch_in_sim`` draws its starts as ``evaluate_in_sim`` does, the session's room included,
    so its figures speak of the same starts as the success rates beside them."""
    from robot_stack.session.evaluate import branch_in_sim

    for layout_seed in (None, 3):
        evaluated, branched = FirstFrames(), StartFrames()
        evaluate_in_sim(evaluated, "widowx250_cube_bowl", "put_cube_in_bowl", episodes=2, horizon=1, layout_seed=layout_seed)
        # one branch state per start (t = 0): scored_candidates sees the start's first frame
        branch_in_sim(branched, "widowx250_cube_bowl", "put_cube_in_bowl", starts=2, candidates=2, every=10, horizon=1,
                      layout_seed=layout_seed)
        assert len(branched.branch_frames) == 2
        for a, b in zip(evaluated.frames, branched.branch_frames):
            np.testing.assert_array_equal(a, b)
        if layout_seed is None:
            new_room = evaluated.frames[0]
    assert changed(new_room, evaluated.frames[0]) > 0.3  # and the rooms differ


def row(outcomes, q, rollout_success=None):
    replay = bool(outcomes[0]) if rollout_success is None else not rollout_success
    return {"rollout_success": bool(outcomes[0]) if rollout_success is None else rollout_success,
            "replay_success": replay, "outcomes": [float(o) for o in outcomes], "q": q}


def test_a_critic_that_ranks_picks_the_winners_and_one_that_does_not_is_at_chance():
    mixed = [row([False, True, False, False], [0.1, 0.9, 0.2, 0.0]),  # Q's best (index 1) wins
             row([True, True, False, False], [0.5, 0.6, 0.1, 0.2])]  # index 1 again
    decided = [row([True] * 4, [0.0] * 4), row([False] * 4, [1.0, 0.0, 0.0, 0.0]), row([False] * 4, [0.0] * 4)]
    s = summarize_branches(mixed + decided)
    assert s["branch/states"] == 5 and s["branch/mixed"] == 2
    assert s["branch/all_succeed"] == 1 and s["branch/all_fail"] == 2 and s["branch/deterministic"] == 1.0
    assert s["branch/pick_success"] == 1.0 and s["branch/chance"] == pytest.approx((0.25 + 0.5) / 2)
    assert s["branch/mean_success"] == 0.5
    assert s["branch/q_gap"] == pytest.approx(((0.9 - 0.1) + (0.55 - 0.15)) / 2)
    assert s["branch/q_corr"] > 0.8 and "branch/excess_var" not in s

    backwards = summarize_branches([row(r["outcomes"], [-x for x in r["q"]]) for r in mixed])
    assert backwards["branch/pick_success"] == 0.0 and backwards["branch/q_gap"] < 0


def test_a_replay_that_diverges_is_reported_and_no_mixed_states_leave_the_ranking_open():
    s = summarize_branches([row([False, False], [0.0, 1.0], rollout_success=True), row([True, True], [0.0, 0.0])])
    assert s["branch/deterministic"] == 0.5 and s["branch/mixed"] == 0
    assert s["branch/pick_success"] is None and s["branch/q_gap"] is None
    assert summarize_branches([])["branch/states"] == 0


def test_with_several_continuations_rates_are_compared_and_the_coin_flips_discounted():
    """Rates over R stochastic continuations: candidates that truly differ (0 vs 1 every time)
    give a positive excess variance; equal rates, which only coin flips could separate, do not."""
    differ = row([0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.2, 0.8])
    alike = row([0.5, 0.5, 0.5, 0.5], [0.3, 0.1, 0.2, 0.0])
    s = summarize_branches([differ, alike], continuations=6)
    assert s["branch/mixed"] == 2 and s["branch/continuations"] == 6 and "branch/q_gap" not in s
    assert s["branch/pick_success"] == pytest.approx((1.0 + 0.5) / 2) and s["branch/chance"] == 0.5
    expected = ((1 / 3 - 0.0) + (0.0 - 0.25 / 5)) / 2  # per state: variance across candidates minus r(1-r)/(R-1)
    assert s["branch/excess_var"] == pytest.approx(expected)
    assert summarize_branches([alike], continuations=6)["branch/excess_var"] < 0 < summarize_branches([differ], continuations=6)["branch/excess_var"]


def test_chunk_candidates_run_whole_so_the_mean_replays_the_rollout_on_the_simulator(record_plans):
    """A policy of 2-action chunks, branched every 2 steps on the real simulator: the mean chunk
    replayed from a saved state, then finished by the mean, plans from exactly the observations
    the rollout planned from (a chunk cut short or run twice would shift them). Branch points off
    the chunk grid are refused."""
    import numpy as np

    from policies.calql import CalQLLearner
    from policies.config import LearnerConfig
    from robot_stack.session.adapters import CheckpointPolicy
    from robot_stack.session.evaluate import branch_in_sim, evaluate_in_sim

    cfg = LearnerConfig.cpu(**{"network.state_dim": 14, "network.action_chunk": 2, "network.encoder.image_size": 32,
                               "network.hidden_dims": (16, 16), "num_threads": 1})
    agent = CalQLLearner(cfg).agent()
    planned_from = record_plans(agent)
    policy = CheckpointPolicy(agent, ["put_cube_in_bowl", "take_cube_out_of_bowl"])
    kw = {"image_size": 32, "horizon": 6}
    out = branch_in_sim(policy, "widowx250_cube_bowl", "put_cube_in_bowl", starts=1, candidates=3, every=2, **kw)
    assert out["branch/states"] == 3 and out["branch/deterministic"] == 1.0
    rollout = [p.state for p in planned_from[:3]]  # planned at t = 0, 2, 4
    replay_from_0 = [p.state for p in planned_from[3:5]]  # branch t = 0, the mean chunk: the finish plans at t = 2, 4
    assert all(p.deterministic for p in planned_from[:5])
    np.testing.assert_array_equal(np.stack(replay_from_0), np.stack(rollout[1:]))
    assert not np.array_equal(rollout[0], rollout[1])  # the arm moved: equal observations prove something
    np.testing.assert_array_equal(planned_from[9].state, rollout[2])  # branch t = 2, the mean chunk: the finish plans at t = 4
    with pytest.raises(ValueError, match="multiple of the actions the policy runs per plan"):
        branch_in_sim(policy, "widowx250_cube_bowl", "put_cube_in_bowl", starts=1, every=3, **kw)
    planned_from.clear()
    r = evaluate_in_sim(policy, "widowx250_cube_bowl", "put_cube_in_bowl", episodes=2, image_size=32, horizon=5)
    assert r["episodes"] == 2 and len(planned_from) == 6  # 3 chunks per 5-step episode: the second starts afresh


def test_receding_horizon_candidates_run_one_action_as_the_rollout_does(record_plans):
    """chunk_steps_run 1: a candidate chunk runs its first action only, as the rollout runs its
    plans, so the replay of the mean again plans from the rollout's observations."""
    import numpy as np

    from policies.calql import CalQLLearner
    from policies.config import LearnerConfig
    from robot_stack.session.adapters import CheckpointPolicy
    from robot_stack.session.evaluate import branch_in_sim

    cfg = LearnerConfig.cpu(**{"network.state_dim": 14, "network.action_chunk": 3, "network.chunk_steps_run": 1,
                               "network.encoder.image_size": 32, "network.hidden_dims": (16, 16), "num_threads": 1})
    agent = CalQLLearner(cfg).agent()
    planned_from = record_plans(agent)
    out = branch_in_sim(CheckpointPolicy(agent, ["put_cube_in_bowl", "take_cube_out_of_bowl"]), "widowx250_cube_bowl",
                        "put_cube_in_bowl", starts=1, candidates=2, every=3, image_size=32, horizon=3)
    assert out["branch/states"] == 1 and out["branch/deterministic"] == 1.0
    # the rollout plans at t = 0, 1, 2; the mean candidate from t = 0 runs one action, the finish plans at 1, 2
    states = [p.state for p in planned_from]
    np.testing.assert_array_equal(np.stack(states[3:5]), np.stack(states[1:3]))
