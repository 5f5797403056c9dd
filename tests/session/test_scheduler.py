import pytest

from robot_stack.session.scheduler import (
    ResetFreeScheduler,
    SchedulerConfig,
    TaskSpec,
)

FWD = TaskSpec("cube_into_bowl", "put the cube in the bowl", "forward")
BWD = TaskSpec("cube_out_of_bowl", "take the cube out of the bowl", "backward")


def run(sched, outcomes):
    plans = []
    for ok in outcomes:
        plan = sched.next_episode()
        plans.append(plan)
        sched.episode_finished(ok)
    return plans


def test_success_flips_phase_and_failure_retries_same_task():
    s = ResetFreeScheduler(FWD, BWD, SchedulerConfig(eval_every=0, switch_after_failures=3))
    plans = run(s, [True, False, True, True])
    assert [p.task.phase for p in plans] == ["forward", "backward", "backward", "forward"]
    assert [p.index for p in plans] == [0, 1, 2, 3]


def test_switches_task_after_repeated_failures():
    s = ResetFreeScheduler(FWD, BWD, SchedulerConfig(eval_every=0, switch_after_failures=2, stuck_after=100))
    plans = run(s, [False, False, False])
    assert [p.task.phase for p in plans] == ["forward", "forward", "backward"]


def test_every_nth_episode_is_eval():
    s = ResetFreeScheduler(FWD, BWD, SchedulerConfig(eval_every=3))
    plans = run(s, [True] * 9)
    assert [p.eval for p in plans] == [False, False, True] * 3


def test_stuck_triggers_recovery_then_alert():
    cfg = SchedulerConfig(eval_every=0, switch_after_failures=100, stuck_after=2, max_recoveries=1)
    s = ResetFreeScheduler(FWD, BWD, cfg)
    plans = run(s, [False, False])
    assert not plans[-1].recovery
    recovery = s.next_episode()
    assert recovery.recovery and recovery.task.phase == "backward"
    s.episode_finished(False)
    s.next_episode()
    s.episode_finished(False)
    assert "stuck" in s.alert and "person" in s.alert
    with pytest.raises(RuntimeError, match="alert"):
        s.next_episode()
    s.acknowledge()
    assert not s.next_episode().recovery


def test_out_of_workspace_recovers_immediately_and_success_resets_counts():
    s = ResetFreeScheduler(FWD, BWD, SchedulerConfig(eval_every=0, stuck_after=50, max_recoveries=2))
    s.next_episode()
    s.episode_finished(False, out_of_workspace=True)
    plan = s.next_episode()
    assert plan.recovery
    s.episode_finished(True)
    assert s.state.recoveries_in_row == 0 and s.state.episodes_since_success == 0


def test_one_task_failing_while_the_other_succeeds_counts_as_stuck():
    """Backward keeps succeeding, forward never does (a start its demos never had): the global
    counter keeps resetting, the per-task one triggers a recovery, then an alert; a success of the
    other task in between does not end being stuck."""
    cfg = SchedulerConfig(eval_every=0, switch_after_failures=1, stuck_after=100, stuck_task_after=3,
                          max_recoveries=1)
    s = ResetFreeScheduler(FWD, BWD, cfg)
    plans = run(s, [False, True, False, True])  # forward fails, backward succeeds, twice
    assert [p.task.phase for p in plans] == ["forward", "backward", "forward", "backward"]
    assert s.state.task_failures == {"forward": 2, "backward": 0} and not s.state.recovery_pending
    run(s, [False])  # forward's third failure since it last succeeded
    st = s.state
    assert st.recovery_pending and st.stuck_phase == "forward" and st.recoveries_in_row == 1
    recovery = s.next_episode()
    assert recovery.recovery and recovery.task.phase == "backward"
    s.episode_finished(True)  # the re-staging backward episode succeeds: forward is still the stuck one
    assert st.recoveries_in_row == 1 and st.stuck_phase == "forward"
    run(s, [False, True, False, True, False])
    assert "'put the cube in the bowl' failed 3 times" in s.alert and "person" in s.alert
    s.acknowledge()
    assert s.state.task_failures == {} and s.state.stuck_phase == ""


def test_the_per_task_rule_wins_when_both_counts_run_out_together():
    """Forward fails stuck_after times right after a backward success: both rules fire on the same
    episode. The re-staging backward recovery is then credited every time; that must not reset the
    recovery count (a session looped through five recoveries this way instead of calling a person)."""
    cfg = SchedulerConfig(eval_every=0, switch_after_failures=100, stuck_after=3, stuck_task_after=3,
                          max_recoveries=2)
    s = ResetFreeScheduler(FWD, BWD, cfg)
    s.state.phase = "backward"
    run(s, [True, False, False, False])  # backward succeeds, forward fails three times
    assert s.state.stuck_phase == "forward" and s.state.recoveries_in_row == 1
    run(s, [True, False, False, False])  # credited recovery, three more forward failures
    assert s.state.recoveries_in_row == 2 and not s.alert
    run(s, [True, False, False, False])
    assert "'put the cube in the bowl' failed 3 times" in s.alert


def test_a_success_of_the_stuck_task_ends_being_stuck():
    cfg = SchedulerConfig(eval_every=0, switch_after_failures=1, stuck_after=100, stuck_task_after=2,
                          max_recoveries=1)
    s = ResetFreeScheduler(FWD, BWD, cfg)
    run(s, [False, True, False])  # forward stuck -> recovery pending on backward
    run(s, [True, True])  # recovery (backward) succeeds, then forward succeeds
    assert s.state.recoveries_in_row == 0 and s.state.stuck_phase == "" and not s.alert
    off = ResetFreeScheduler(FWD, BWD, SchedulerConfig(eval_every=0, switch_after_failures=1, stuck_after=100,
                                                       stuck_task_after=0))
    run(off, [False, True] * 10)
    assert not off.state.recovery_pending and not off.alert


def test_a_success_that_leaves_the_scene_outside_the_workspace_is_no_recovery():
    """A recovery credited by the classifier ("take out" holds: the cube is far out on the table)
    on a scene still outside the workspace must not reset the count: a person gets called."""
    cfg = SchedulerConfig(eval_every=0, stuck_after=100, max_recoveries=2)
    s = ResetFreeScheduler(FWD, BWD, cfg)
    s.next_episode()
    s.episode_finished(False, out_of_workspace=True)
    first = s.next_episode()
    assert first.recovery and first.task.phase == "backward"
    s.episode_finished(True, out_of_workspace=True)  # credited, but nothing fixed
    second = s.next_episode()
    assert second.recovery and second.task.phase == "forward" and s.state.recoveries_in_row == 2
    s.episode_finished(False, out_of_workspace=True)
    assert "left the workspace" in s.alert and "2 recovery" in s.alert
    s.acknowledge()
    run(s, [True, True])
    assert s.state.recoveries_in_row == 0 and not s.alert


def test_recovery_episode_is_never_eval():
    cfg = SchedulerConfig(eval_every=2, stuck_after=1, max_recoveries=5, switch_after_failures=10)
    s = ResetFreeScheduler(FWD, BWD, cfg)
    s.next_episode()
    s.episode_finished(False)
    plan = s.next_episode()  # would be the eval slot, but a recovery is pending
    assert plan.recovery and not plan.eval


def test_state_round_trips_for_resume():
    s = ResetFreeScheduler(FWD, BWD, SchedulerConfig(eval_every=4))
    run(s, [True, False, True])
    resumed = ResetFreeScheduler.from_dict(FWD, BWD, s.to_dict(), SchedulerConfig(eval_every=4))
    a, b = s.next_episode(), resumed.next_episode()
    assert (a.index, a.task, a.eval, a.recovery) == (b.index, b.task, b.eval, b.recovery)
    with pytest.raises(ValueError, match="unknown keys"):
        ResetFreeScheduler.from_dict(FWD, BWD, {"bogus": 1})


@pytest.mark.parametrize("kwargs", [{"eval_every": -1}, {"stuck_after": 0}, {"stuck_task_after": -1}, {"start_phase": "sideways"}])
def test_config_validation_names_the_field(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        SchedulerConfig(**kwargs)


def test_task_pair_order_is_checked():
    with pytest.raises(ValueError, match="forward, backward"):
        ResetFreeScheduler(BWD, FWD)


def test_finish_without_plan_is_an_error():
    with pytest.raises(RuntimeError):
        ResetFreeScheduler(FWD, BWD).episode_finished(True)


def test_already_done_is_neither_success_nor_failure_and_a_real_episode_resets_the_count():
    s = ResetFreeScheduler(FWD, BWD, SchedulerConfig(eval_every=0))
    run(s, [False])  # a failed forward episode
    plan = s.next_episode()
    s.task_already_done()  # the cube is already in the bowl: "put it in" holds before acting
    st = s.state
    assert st.phase == "backward" and st.episodes == plan.index == 1 and st.episodes_since_success == 1
    assert st.history[-1]["already_done"] and st.already_done_in_row == 1 and not s.alert
    run(s, [False])  # a real backward attempt
    assert st.already_done_in_row == 0 and st.episodes == 2
    s.next_episode()
    s.task_already_done()
    s.next_episode()
    s.task_already_done()
    assert "both tasks" in s.alert
    with pytest.raises(RuntimeError):
        s.task_already_done()
    # a state file written before this field existed still loads
    old = {k: v for k, v in s.to_dict().items() if k != "already_done_in_row"}
    assert ResetFreeScheduler.from_dict(FWD, BWD, old).state.already_done_in_row == 0
