import numpy as np
import pytest

from robot_stack.session.actor_loop import (
    HOLD_OPEN,
    LIFT_OPEN,
    ActorConfig,
    ActorLoop,
    ClassifierOutput,
    LockstepGate,
    Mode,
    Observation,
    TeleopInput,
)
from robot_stack.session.scheduler import ResetFreeScheduler, SchedulerConfig, TaskSpec

FWD = TaskSpec("in", "put the cube in the bowl", "forward")
BWD = TaskSpec("out", "take the cube out of the bowl", "backward")


class ConstPolicy:
    def __init__(self, value, version=1):
        self.value, self.version, self.calls, self.resets = value, version, [], 0

    def act(self, images, proprio, task_id, deterministic):
        self.calls.append((task_id, deterministic))
        return np.full(7, self.value, np.float32)

    def reset(self):
        self.resets += 1


class Sink:
    """Collects streamed steps into time-major arrays per committed episode."""

    def __init__(self):
        self.episodes, self.discarded, self._steps, self._plan = [], 0, None, None

    def begin(self, plan, policy_version):
        assert self._steps is None, "begin without commit/discard"
        self._plan, self._steps = plan, []

    def add_step(self, step):
        self._steps.append(step)

    def commit(self, outcome, extra):
        s = self._steps
        steps = {"images": {c: np.stack([x["images"][c] for x in s]) for c in s[0]["images"]}}
        for k in ("state", "action", "reward", "success_prob", "intervention", "policy_version", "terminal", "truncated"):
            steps[k] = np.array([x[k] for x in s])
        self.episodes.append((self._plan, steps, outcome, extra))
        self._steps = None
        return f"r:{len(self.episodes) - 1}"

    def discard(self):
        self.discarded += 1
        self._steps = None


def verdict(task, done, t):
    """The reward node's output for ``task`` alone, stamped ``t``."""
    return {task: ClassifierOutput(task, 0.99 if done else 0.01, done, float(t))}


def obs(t):
    return Observation({"front": np.full((4, 4, 3), t % 255, np.uint8)}, np.full(3, t, np.float32), float(t))


def make(horizon=5, eval_every=0, policy=None, **kw):
    kw.setdefault("home_steps", 0)  # most tests count ticks from the first action
    kw.setdefault("success_ticks", 1)  # ... and end an episode on the first "done"
    kw.setdefault("confirm_success", False)  # ... without re-checking it from the reset pose
    kw.setdefault("release_steps", 0)  # ... and go home without first opening the gripper in place
    kw.setdefault("lift_steps", 0)  # ... or lifting it
    sink = Sink()
    loop = ActorLoop(ActorConfig(horizon=horizon, **kw), ResetFreeScheduler(FWD, BWD, SchedulerConfig(eval_every=eval_every)),
                     policy or ConstPolicy(0.5), sink)
    loop.start()
    return loop, sink


def test_truncates_at_horizon_and_records_what_the_controller_sent():
    loop, sink = make(horizon=3)
    for t in range(4):
        r = loop.tick(obs(t), None, None, now=float(t))
        if r.action is not None:
            loop.on_action_sent(r.seq, r.action * 0.5)  # the controller clipped it
    plan, steps, outcome, _ = sink.episodes[0]
    assert outcome == "failure" and plan.task.phase == "forward"
    assert steps["action"].shape == (3, 7) and np.allclose(steps["action"], 0.25)
    assert steps["truncated"].tolist() == [False, False, True]
    assert not steps["terminal"].any() and steps["reward"].sum() == 0
    assert steps["images"]["front"].dtype == np.uint8 and steps["images"]["front"].shape == (3, 4, 4, 3)


def test_classifier_success_ends_episode_with_terminal_reward_and_flips_task():
    loop, sink = make(horizon=50)
    loop.tick(obs(0), None, None, 0.0)
    loop.tick(obs(1), ClassifierOutput("in", 0.2, False, 1.0), None, 1.0)
    r = loop.tick(obs(2), ClassifierOutput("in", 0.95, True, 2.0), None, 2.0)
    assert r.action is None and any(e["event"] == "task_flipped" for e in r.events)
    _, steps, outcome, _ = sink.episodes[0]
    assert outcome == "success" and steps["reward"].tolist() == [0.0, 1.0]
    assert steps["terminal"].tolist() == [False, True] and not steps["truncated"].any()
    assert np.isnan(steps["success_prob"][0]) and steps["success_prob"][1] == pytest.approx(0.2)
    loop.tick(obs(3), None, None, 3.0)
    assert loop.plan.task.phase == "backward"


def test_per_task_classifier_outputs_use_the_current_tasks_only():
    """The reward node scores both tasks on every frame; the other task's "done" must not end this
    episode, and this task's output counts whichever of the two arrived last."""
    loop, sink = make(horizon=50)
    loop.tick(obs(0), None, None, 0.0)
    both = {"out": ClassifierOutput("out", 0.99, True, 1.0), "in": ClassifierOutput("in", 0.3, False, 1.0)}
    assert loop.tick(obs(1), both, None, 1.0).action is not None  # "out" is done, "in" (current) is not
    both = {"in": ClassifierOutput("in", 0.96, True, 2.0), "out": ClassifierOutput("out", 0.01, False, 2.0)}
    r = loop.tick(obs(2), both, None, 2.0)
    assert r.action is None and any(e["event"] == "task_flipped" for e in r.events)
    _, steps, outcome, _ = sink.episodes[0]
    assert outcome == "success" and steps["success_prob"].tolist() == pytest.approx([float("nan"), 0.3], nan_ok=True)


def test_task_already_done_at_the_start_records_nothing_and_plans_the_other_task():
    """A failed "put in" leaves the cube out: "take out" is done before it starts. That must not
    become a one-step success (reward 1 for any action); the loop skips to the other task."""
    loop, sink = make(horizon=50)
    r = loop.tick(obs(0), ClassifierOutput("in", 0.97, True, 0.0), None, 0.0)
    assert r.action is None and sink.episodes == [] and sink.discarded == 1
    assert [e["event"] for e in r.events] == ["episode_started", "task_already_done"]
    assert loop.scheduler.state.episodes == 0 and loop.scheduler.state.episodes_since_success == 0
    r = loop.tick(obs(1), ClassifierOutput("out", 0.1, False, 1.0), None, 1.0)
    assert r.action is not None and loop.plan.task.phase == "backward" and loop.plan.index == 0
    # once an action was taken, success ends the episode as usual
    loop.tick(obs(2), ClassifierOutput("out", 0.99, True, 2.0), None, 2.0)
    assert sink.episodes[0][2] == "success" and sink.episodes[0][1]["reward"].tolist() == [1.0]


def test_both_tasks_already_done_pauses_with_an_alert():
    loop, sink = make(horizon=50)
    loop.tick(obs(0), ClassifierOutput("in", 0.97, True, 0.0), None, 0.0)
    r = loop.tick(obs(1), ClassifierOutput("out", 0.97, True, 1.0), None, 1.0)
    assert loop.mode is Mode.PAUSED and sink.episodes == []
    assert any(e["event"] == "alert" and "both tasks" in e["message"] for e in r.events)


def test_success_for_another_task_or_stale_output_does_not_end_episode():
    loop, sink = make(horizon=50, reward_timeout_s=0.5)
    loop.tick(obs(0), None, None, 0.0)
    loop.tick(obs(1), ClassifierOutput("out", 0.99, True, 1.0), None, 1.0)
    loop.tick(obs(2), ClassifierOutput("in", 0.99, True, 0.0), None, 2.0)
    assert sink.episodes == []


def test_teleop_replaces_policy_and_is_flagged():
    policy = ConstPolicy(0.1)
    loop, sink = make(horizon=2, policy=policy)
    tele = TeleopInput(np.full(7, -0.3, np.float32), True, 0.0)
    r0 = loop.tick(obs(0), None, tele, 0.0)
    assert np.allclose(r0.action, -0.3) and policy.calls == []
    loop.tick(obs(1), None, TeleopInput(tele.action, True, -5.0), 1.0)  # stale: policy again
    loop.tick(obs(2), None, None, 2.0)
    steps = sink.episodes[0][1]
    assert steps["intervention"].tolist() == [True, False]


def test_policy_swaps_only_at_episode_boundary_and_versions_are_stamped():
    from robot_stack.session.adapters import PolicyEnsemble

    newer = PolicyEnsemble([ConstPolicy(0.2, version=6), ConstPolicy(0.2, version=7)])  # the mean of the newest two
    offered = []
    loop, sink = make(horizon=2)
    loop.policy_source = lambda: offered[-1] if offered else None
    loop.tick(obs(0), None, None, 0.0)
    offered.append(newer)  # arrives mid-episode
    loop.tick(obs(1), None, None, 1.0)
    r = loop.tick(obs(2), None, None, 2.0)  # horizon: commit
    assert set(sink.episodes[0][1]["policy_version"].tolist()) == {1}
    r = loop.tick(obs(3), None, None, 3.0)
    assert any(e["event"] == "policy_swapped" and e["to"] == 7 and e["members"] == [6, 7] for e in r.events)
    assert loop.status()["policy_version"] == 7 and loop.status()["policy_members"] == [6, 7]
    loop.tick(obs(4), None, None, 4.0)
    loop.tick(obs(5), None, None, 5.0)
    assert set(sink.episodes[1][1]["policy_version"].tolist()) == {7}  # stamped with the newest member
    # the episode's metadata says which networks acted
    assert sink.episodes[0][3]["policy_members"] == [1] and sink.episodes[1][3]["policy_members"] == [6, 7]


def test_eval_episodes_use_deterministic_policy():
    policy = ConstPolicy(0.0)
    loop, sink = make(horizon=1, eval_every=2, policy=policy)
    for t in range(6):
        loop.tick(obs(t), None, None, float(t))
    assert [ep[0].eval for ep in sink.episodes] == [False, True, False]
    assert (FWD.id, True) in policy.calls and (FWD.id, False) in policy.calls


def test_exploration_noise_perturbs_the_mean_of_training_episodes_only():
    policy = ConstPolicy(0.95)
    loop, sink = make(horizon=200, eval_every=2, policy=policy, exploration_noise=0.2)
    loop.rng = np.random.default_rng(0)
    sent = {}
    for t in range(401):
        r = loop.tick(obs(t), None, None, float(t))
        if r.action is not None:
            sent.setdefault(loop.plan.eval, []).append(r.action)
            loop.on_action_sent(r.seq, r.action)
    assert {c[1] for c in policy.calls} == {True}  # the mean, also in training episodes
    train, evaluation = np.array(sent[False]), np.array(sent[True])
    assert np.all(evaluation == np.float32(0.95))  # eval episodes stay deterministic
    assert np.all(np.abs(train) <= 1.0)  # clipped like any action
    below = train[train < 0.95]  # what clipping at 1 leaves of N(0.95, 0.2)
    assert len(below) > 0.5 * train.size and abs(np.std(below - 0.95) - 0.2 * 0.6) < 0.03  # half-normal's std
    assert np.allclose(np.array(sink.episodes[0][1]["action"]), train[:200])  # what was sent is what is recorded
    with pytest.raises(ValueError, match="exploration_noise"):
        ActorConfig(exploration_noise=-0.1)


def test_nan_policy_output_is_never_published():
    loop, sink = make(policy=ConstPolicy(float("nan")))
    r = loop.tick(obs(0), None, None, 0.0)
    assert r.action is None and r.events[-1]["event"] == "bad_action"


def test_stale_observation_sends_nothing_and_pause_stops_stepping():
    loop, sink = make()
    assert loop.tick(obs(0), None, None, now=10.0).action is None
    loop.pause()
    assert loop.mode is Mode.PAUSED and loop.tick(obs(1), None, None, 1.0).action is None


def test_stop_commits_partial_episode_as_truncated():
    loop, sink = make(horizon=100)
    for t in range(3):
        loop.tick(obs(t), None, None, float(t))
    loop.stop()
    steps = sink.episodes[0][1]
    assert len(steps["action"]) == 3 and steps["truncated"][-1] and loop.mode is Mode.IDLE


def test_recovery_requests_reset_pose_before_episode():
    sink = Sink()
    sched = ResetFreeScheduler(FWD, BWD, SchedulerConfig(eval_every=0, stuck_after=1, max_recoveries=3))
    loop = ActorLoop(ActorConfig(horizon=1, recovery_steps=2, home_steps=0, confirm_success=False, release_steps=0, lift_steps=0), sched, ConstPolicy(0.0), sink)
    loop.start()
    loop.tick(obs(0), None, None, 0.0)
    loop.tick(obs(1), None, None, 1.0)  # horizon -> failure -> stuck -> recovery pending
    r = loop.tick(obs(2), None, None, 2.0)
    assert r.named_pose == "reset" and loop.mode is Mode.RECOVERING
    loop.tick(obs(3), None, None, 3.0)
    loop.tick(obs(4), None, None, 4.0)
    assert loop.mode is Mode.RUNNING and loop.tick(obs(5), None, None, 5.0).action is not None


def test_every_episode_starts_with_the_arm_sent_home():
    """Reset-free means the objects are not reset; the arm goes to its reset pose before each
    episode (it could otherwise start in a workspace corner no demo ever started from)."""
    loop, sink = make(horizon=2, home_steps=2)
    results = [loop.tick(obs(t), None, None, now=float(t)) for t in range(10)]
    homes = [t for t, r in enumerate(results) if r.named_pose == "reset"]
    opening = [t for t, r in enumerate(results) if r.action is not None and np.array_equal(r.action, HOLD_OPEN)]
    acted = [t for t, r in enumerate(results) if r.action is not None and np.allclose(r.action, 0.5)]
    # home at 0, 2 ticks holding still with the gripper opening (as demos start), act at 3 and 4,
    # close at 5 -> next episode homes at 6, opens at 7 and 8, acts at 9
    assert homes == [0, 6] and opening == [1, 2, 7, 8] and acted == [3, 4, 9], (homes, opening, acted)
    assert len(sink.episodes) == 1 and len(sink.episodes[0][1]["action"]) == 2
    with pytest.raises(ValueError, match="home_steps"):
        ActorConfig(home_steps=-1)


def test_a_one_tick_glimpse_of_done_does_not_end_the_episode():
    loop, sink = make(horizon=50, success_ticks=2)
    def out(decision, t):
        return ClassifierOutput("in", 0.95 if decision else 0.1, decision, float(t))

    loop.tick(obs(0), None, None, 0.0)
    for t, decision in enumerate([True, False, True], start=1):  # glimpses, never two in a row
        assert loop.tick(obs(t), out(decision, t), None, float(t)).action is not None
    r = loop.tick(obs(4), out(True, 4), None, 4.0)  # the second "done" in a row ends it
    assert r.action is None and any(e["event"] == "task_flipped" for e in r.events)
    _, steps, outcome, _ = sink.episodes[0]
    assert outcome == "success" and steps["reward"].tolist() == [0.0, 0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="success_ticks"):
        ActorConfig(success_ticks=0)


def test_an_object_out_of_the_workspace_triggers_a_recovery_at_once():
    """The sim controller's ground truth says when an object left the workspace; the episode
    then ends in a recovery, without waiting for `stuck_after` failures."""
    sink = Sink()
    sched = ResetFreeScheduler(FWD, BWD, SchedulerConfig(eval_every=0, stuck_after=100))
    loop = ActorLoop(ActorConfig(horizon=1, recovery_steps=1, home_steps=0, confirm_success=False, release_steps=0, lift_steps=0), sched, ConstPolicy(0.0), sink)
    loop.start()
    loop.tick(obs(0), None, None, 0.0, ground_truth={"in": False, "out": False, "out_of_workspace": False})
    loop.tick(obs(1), None, None, 1.0, ground_truth={"in": False, "out": False, "out_of_workspace": True})
    r = loop.tick(obs(2), None, None, 2.0)
    assert r.named_pose == "reset" and loop.mode is Mode.RECOVERING and loop.plan.recovery
    assert sink.episodes[0][3]["ground_truth"] is False  # the episode records its own task's truth
    assert sink.episodes[0][3]["out_of_workspace"] is True


def test_a_recovery_whose_task_already_holds_runs_and_must_undo_it_first():
    """Stuck on forward with backward already done: the recovery runs backward anyway (moving the
    cube re-stages the scene) and its success needs the task undone, then done again."""
    sink = Sink()
    sched = ResetFreeScheduler(FWD, BWD, SchedulerConfig(eval_every=0, stuck_after=1, max_recoveries=3))
    loop = ActorLoop(ActorConfig(horizon=4, recovery_steps=0, home_steps=0, success_ticks=1, confirm_success=False), sched, ConstPolicy(0.0), sink)
    loop.start()

    for t in range(-4, 1):  # forward fails at the horizon -> stuck -> a recovery on backward
        loop.tick(obs(t), verdict("in", False, t), None, float(t))
    assert sink.episodes[0][2] == "failure" and sched.state.recovery_pending
    r = loop.tick(obs(2), verdict("out", True, 2), None, 2.0)  # backward already holds: not skipped
    assert r.action is not None and loop.plan.recovery and loop.plan.task.id == "out"
    assert any(e["event"] == "restaging" for e in r.events)
    assert loop.tick(obs(3), verdict("out", True, 3), None, 3.0).action is not None  # still done: not a success yet
    assert loop.tick(obs(4), verdict("out", False, 4), None, 4.0).action is not None  # cube lifted: undone
    r = loop.tick(obs(5), verdict("out", True, 5), None, 5.0)  # put down elsewhere: done again
    assert r.action is None and any(e["event"] == "task_flipped" for e in r.events)
    plan, steps, outcome, _ = sink.episodes[-1]
    assert plan.recovery and outcome == "success" and steps["reward"].tolist() == [0.0, 0.0, 1.0]
    # an ordinary episode whose task already holds is still skipped
    r = loop.tick(obs(6), verdict("in", True, 6), None, 6.0)
    assert any(e["event"] == "task_already_done" for e in r.events)


def test_a_restaging_recovery_that_never_undid_its_task_fails_at_the_horizon():
    """The recovery's task held all along (the arm never moved the cube): at the horizon the check
    from the reset pose would see it "done" and credit the episode, which teaches that doing
    nothing from that scene succeeds. It is a failure without the check."""
    sink = Sink()
    sched = ResetFreeScheduler(FWD, BWD, SchedulerConfig(eval_every=0, stuck_after=1, max_recoveries=3))
    loop = ActorLoop(ActorConfig(horizon=3, recovery_steps=0, home_steps=0, success_ticks=1, confirm_success=True,
                                 release_steps=0, lift_steps=0), sched, ConstPolicy(0.0), sink)
    loop.start()

    for t in range(12):  # forward fails at the horizon -> stuck -> a recovery on backward
        loop.tick(obs(t), verdict("in", False, t), None, float(t))
        if sched.state.recovery_pending:
            break
    assert sched.state.recovery_pending
    t += 1
    events = []
    for _ in range(12):  # backward holds on every frame, the policy never undoes it
        events += loop.tick(obs(t), verdict("out", True, t), None, float(t)).events
        t += 1
        if len(sink.episodes) == 2:
            break
    plan, steps, outcome, _ = sink.episodes[-1]
    assert plan.recovery and plan.task.id == "out" and any(e["event"] == "restaging" for e in events)
    assert outcome == "failure" and steps["reward"].sum() == 0 and steps["truncated"][-1]
    assert not any(e["event"] == "checking_success" for e in events)


def test_lockstep_gate_waits_for_the_last_actions_effect_on_proprio_and_every_camera():
    gate = LockstepGate(timeout_s=1.0)
    assert gate.ready(0, {}, now=0.0)  # nothing sent yet
    gate.sent(7, {"front": 2.0, "wrist": 2.0}, now=10.0)
    assert not gate.ready(6, {"front": 2.2, "wrist": 2.2}, now=10.1)  # proprio from before the action
    assert not gate.ready(7, {"front": 2.2, "wrist": 2.0}, now=10.1)  # the wrist frame is the old world
    assert gate.ready(7, {"front": 2.2, "wrist": 2.2}, now=10.1)
    assert gate.ready(7, {"front": 2.2, "wrist": 2.2}, now=10.2)  # stays open until the next action
    assert gate.timeouts == 0


def test_lockstep_gate_opens_after_its_timeout_when_the_effect_never_shows():
    gate = LockstepGate(timeout_s=1.0)
    gate.sent(7, {"front": 2.0}, now=10.0)
    assert not gate.ready(0, {"front": 2.0}, now=10.9)  # e.g. a restarted controller counts from 0
    assert gate.ready(0, {"front": 2.0}, now=11.1)
    assert gate.timeouts == 1


def confirming_loop(success_ticks=1):
    """A loop whose first forward episode (2 steps) the classifier has just called done; the arm
    has gone home and opened. Returns (loop, sink, t): ``t`` is the next tick's time."""
    loop, sink = make(horizon=50, home_steps=2, success_ticks=success_ticks, confirm_success=True)
    run = [loop.tick(obs(t), None, None, float(t)) for t in range(3)]  # home, open, open
    assert [r.named_pose for r in run] == ["reset", None, None] and loop.mode is Mode.RUNNING
    loop.tick(obs(3), ClassifierOutput("in", 0.2, False, 3.0), None, 3.0)  # policy steps
    t = 4
    for k in range(success_ticks):  # "done" seen with the arm in the goal region
        r = loop.tick(obs(t), ClassifierOutput("in", 0.97, True, float(t)), None, float(t))
        t += 1
    assert r.action is None and r.named_pose == "reset" and loop.mode is Mode.CONFIRMING
    assert [e["event"] for e in r.events] == ["checking_success"] and sink.episodes == []
    for _ in range(2):  # the arm goes home and opens; the verdict from the goal region does not count
        r = loop.tick(obs(t), ClassifierOutput("in", 0.97, True, float(t - 1)), None, float(t))
        assert np.array_equal(r.action, HOLD_OPEN) and loop.mode is Mode.CONFIRMING
        t += 1
    return loop, sink, t


def test_a_success_counts_once_it_holds_from_the_reset_pose():
    loop, sink, t = confirming_loop(success_ticks=2)  # steps at 3 and 4, done at 4 and 5
    assert loop.tick(obs(t), ClassifierOutput("in", 0.97, True, t - 0.5), None, t).events == []  # from before it got home
    assert loop.tick(obs(t + 1), ClassifierOutput("in", 0.95, True, t + 0.5), None, t + 1).events == []  # 1 of 2
    r = loop.tick(obs(t + 2), ClassifierOutput("in", 0.96, True, t + 1.5), None, t + 2)
    assert any(e["event"] == "task_flipped" for e in r.events)
    _, steps, outcome, extra = sink.episodes[0]
    assert outcome == "success" and steps["reward"].tolist() == [0.0, 1.0] and steps["terminal"].tolist() == [False, True]
    assert extra["end_reason"] == "success" and loop.unconfirmed_successes == 0
    r = loop.tick(obs(t + 3), None, None, t + 3)  # the arm is home already: the next task starts at once
    assert r.named_pose is None and np.allclose(r.action, 0.5) and loop.plan.task.id == "out"


def test_a_success_that_does_not_hold_from_the_reset_pose_is_a_truncated_failure():
    loop, sink, t = confirming_loop()  # one step (at 3), done at 4
    assert loop.tick(obs(t), None, None, t).action is None  # home: the check starts
    r = loop.tick(obs(t + 1), ClassifierOutput("in", 0.03, False, t + 0.5), None, t + 1)
    assert [e["event"] for e in r.events][:2] == ["success_not_confirmed", "episode_committed"]
    _, steps, outcome, extra = sink.episodes[0]
    assert outcome == "failure" and extra["end_reason"] == "success_not_confirmed"
    assert steps["reward"].tolist() == [0.0] and not steps["terminal"].any() and steps["truncated"].tolist() == [True]
    assert loop.unconfirmed_successes == 1 and loop.status()["unconfirmed_successes"] == 1
    r = loop.tick(obs(t + 2), None, None, t + 2)  # the same task again, from home, without another trip there
    assert r.named_pose is None and loop.plan.task.id == "in" and np.allclose(r.action, 0.5)


def test_no_verdict_from_the_reset_pose_or_a_pause_rejects_the_success():
    loop, sink, t = confirming_loop()
    assert loop.tick(obs(t), None, None, t).events == []  # home: the check starts
    assert loop.tick(obs(t + 1), None, None, t + 1).events == []
    r = loop.tick(obs(t + 2), None, None, t + 2.5)  # reward + observation timeouts (1 s + 1 s) passed since
    assert r.events[0] == {"event": "success_not_confirmed", "episode": 0, "task": "in", "why": "no classifier output"}
    assert sink.episodes[0][2] == "failure"
    loop, sink, t = confirming_loop()
    events = loop.pause()
    assert [e["event"] for e in events][:2] == ["success_not_confirmed", "episode_committed"] and events[0]["why"] == "paused"
    assert loop.mode is Mode.PAUSED and sink.episodes[0][2] == "failure" and loop.plan is None


@pytest.mark.parametrize("done_from_home", [True, False])
def test_at_the_horizon_the_task_is_judged_from_the_reset_pose(done_from_home):
    """A task finished late with the arm still in the way (no "done" in the episode) is a success
    once seen done from the reset pose; otherwise the episode is truncated as before."""
    loop, sink = make(horizon=2, home_steps=1, confirm_success=True)
    for t in range(2):  # home, open
        loop.tick(obs(t), None, None, float(t))
    loop.tick(obs(2), ClassifierOutput("in", 0.3, False, 2.0), None, 2.0)
    loop.tick(obs(3), ClassifierOutput("in", 0.4, False, 3.0), None, 3.0)
    r = loop.tick(obs(4), ClassifierOutput("in", 0.5, False, 4.0), None, 4.0)  # horizon: never "done" in the episode
    assert r.named_pose == "reset" and r.events[0]["event"] == "checking_success" and r.events[0]["at_horizon"]
    assert np.array_equal(loop.tick(obs(5), None, None, 5.0).action, HOLD_OPEN)
    loop.tick(obs(6), None, None, 6.0)  # home: the check starts
    r = loop.tick(obs(7), ClassifierOutput("in", 0.9 if done_from_home else 0.1, done_from_home, 6.5), None, 7.0)
    _, steps, outcome, extra = sink.episodes[0]
    assert steps["reward"].tolist() == [0.0, float(done_from_home)] and steps["terminal"].tolist() == [False, done_from_home]
    assert steps["truncated"].tolist() == [False, not done_from_home]
    assert (outcome, extra["end_reason"]) == (("success", "success") if done_from_home else ("failure", "horizon"))
    assert loop.unconfirmed_successes == 0 and not any(e["event"] == "success_not_confirmed" for e in r.events)


def test_the_gripper_lets_go_where_it_is_and_lifts_before_the_arm_goes_home():
    """A held object is put down in place (release_steps), not carried home and dropped from there;
    then the open gripper rises (lift_steps) so the joint-space move home does not sweep the table."""
    loop, sink = make(horizon=50, home_steps=1, release_steps=2, lift_steps=2, confirm_success=True)
    start = [loop.tick(obs(t), None, None, float(t)) for t in range(6)]
    assert [(r.named_pose, None if r.action is None else r.action.tolist()) for r in start] == [
        (None, HOLD_OPEN.tolist()), (None, HOLD_OPEN.tolist()), (None, LIFT_OPEN.tolist()), (None, LIFT_OPEN.tolist()),
        ("reset", None), (None, HOLD_OPEN.tolist())]
    assert LIFT_OPEN[2] == 1.0 and not LIFT_OPEN[[0, 1, 3, 4, 5]].any()  # straight up, nothing else
    assert loop.tick(obs(6), None, None, 6.0).action is not None and loop.mode is Mode.RUNNING  # the policy's first step
    r = loop.tick(obs(7), ClassifierOutput("in", 0.99, True, 7.0), None, 7.0)  # "done": the check begins by letting go
    assert r.named_pose is None and np.array_equal(r.action, HOLD_OPEN) and loop.mode is Mode.CONFIRMING
    assert [loop.tick(obs(t), None, None, float(t)).named_pose for t in (8, 9, 10, 11, 12)] == [None, None, None, "reset", None]
    # The move home waits for an observation (in lockstep: one showing the lift applied), since
    # it is sent on another topic than the actions and could overtake them.
    loop, sink = make(horizon=50, home_steps=1, lift_steps=1)
    assert np.array_equal(loop.tick(obs(0), None, None, 0.0).action, LIFT_OPEN)
    waiting = [loop.tick(None, None, None, t) for t in (0.1, 0.2)]
    assert all(r.named_pose is None and r.action is None for r in waiting)
    assert loop.tick(obs(1), None, None, 1.0).named_pose == "reset"
    for name in ("release_steps", "lift_steps"):
        with pytest.raises(ValueError, match=name):
            ActorConfig(**{name: -1})


def test_a_chunked_policy_runs_its_chunk_and_plans_afresh_each_episode_and_after_a_person(record_plans):
    """A policy of action chunks (h = 3) plans once per 3 ticks and the loop sends the planned
    actions in order; a new episode, and a person taking over, drop the rest of the chunk."""
    from policies.agent import Agent
    from policies.config import LearnerConfig

    from robot_stack.session.adapters import CheckpointPolicy

    agent = Agent.build(LearnerConfig.state(3, 7, **{"network.action_chunk": 3}))
    plans = record_plans(agent)
    ticks = lambda: [int(p.state[0]) for p in plans]  # noqa: E731 - obs(t) puts the tick in state[0]
    loop, sink = make(horizon=5, policy=CheckpointPolicy(agent, [FWD.id, BWD.id]))
    sent = [loop.tick(obs(t), None, None, float(t)).action for t in range(5)]
    assert ticks() == [0, 3]
    np.testing.assert_allclose(np.stack(sent[:3]), plans[0].actions)
    np.testing.assert_allclose(np.stack(sent[3:]), plans[1].actions[:2])
    loop.tick(obs(5), None, None, 5.0)  # the horizon: the episode is committed
    loop.tick(obs(6), None, None, 6.0)  # a new episode: the last chunk's third action is dropped
    assert ticks() == [0, 3, 6]
    tele = TeleopInput(np.full(7, -0.3, np.float32), True, 7.0)
    assert np.allclose(loop.tick(obs(7), None, tele, 7.0).action, -0.3)
    loop.tick(obs(8), None, None, 8.0)  # the person let go: plan from here, not from tick 6
    assert ticks() == [0, 3, 6, 8]
    np.testing.assert_allclose(sink.episodes[0][1]["action"], np.stack(sent))


def test_a_receding_horizon_chunk_policy_plans_every_tick_and_runs_each_chunks_first_action(record_plans):
    """chunk_steps_run 1: the critic still scores chunks of 3, but the robot runs only the first
    action of each and plans again from the next observation (closed loop)."""
    from policies.agent import Agent
    from policies.config import LearnerConfig

    from robot_stack.session.adapters import CheckpointPolicy

    agent = Agent.build(LearnerConfig.state(3, 7, **{"network.action_chunk": 3, "network.chunk_steps_run": 1}))
    plans = record_plans(agent)
    loop, _ = make(horizon=4, policy=CheckpointPolicy(agent, [FWD.id, BWD.id]))
    sent = [loop.tick(obs(t), None, None, float(t)).action for t in range(4)]
    assert len(plans) == 4 and all(p.actions.shape == (3, 7) for p in plans)
    np.testing.assert_allclose(np.stack(sent), np.stack([p.actions[0] for p in plans]))
    with pytest.raises(ValueError, match="chunk_steps_run must be in"):
        LearnerConfig.state(3, 7, **{"network.action_chunk": 3, "network.chunk_steps_run": 4})
