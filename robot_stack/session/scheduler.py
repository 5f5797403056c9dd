"""Reset-free episode scheduling: which task runs next, when to evaluate, when the robot is stuck.

RoboFuME alternates a forward task and its reverse, flipping when the success classifier says
the current one is done. This scheduler adds what a lab needs to leave the robot alone for hours:

- a failed episode retries the same task (the scene is still in that task's start state), but
  after ``switch_after_failures`` failures in a row the other task is tried, since a half-done
  forward task often leaves the scene closer to the backward task's start;
- being stuck (no success in either direction for ``stuck_after`` episodes, one task failing
  ``stuck_task_after`` of its own episodes in a row while the other one keeps succeeding, or the
  scene leaving the workspace) triggers a recovery episode (the scripted reset motion, then the other task,
  which runs even when it already holds: it then has to undo and redo it, re-staging a scene the
  policy keeps failing in); after ``max_recoveries`` failed recoveries an alert is raised and the
  session pauses;
- every ``eval_every``-th episode is an evaluation episode (deterministic policy, flagged in the
  store and excluded from training by default) so the success curve is not inflated by
  exploration noise or by the classifier's own mistakes on training episodes.

Plain Python with no ROS or hardware imports: the actor node is a thin shell around it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from hardware.tasks import Phase, TaskSpec  # noqa: F401  (re-exported for the session code)


@dataclass
class SchedulerConfig:
    """How the session picks the next episode."""

    eval_every: int = 5  # every Nth episode is an evaluation episode; 0 disables evaluation
    switch_after_failures: int = 3  # failures in a row on one task before trying the other one
    stuck_after: int = 8  # episodes without any success (either task) that count as stuck
    stuck_task_after: int = 8  # failures of one task since its own last success that count as stuck (0: off)
    max_recoveries: int = 2  # recovery attempts in a row before raising an alert and pausing
    start_phase: Phase = "forward"  # the task the session starts with

    def __post_init__(self) -> None:
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be >= 0, got {self.eval_every}")
        if self.switch_after_failures < 1:
            raise ValueError(f"switch_after_failures must be >= 1, got {self.switch_after_failures}")
        if self.stuck_after < 1:
            raise ValueError(f"stuck_after must be >= 1, got {self.stuck_after}")
        if self.stuck_task_after < 0:
            raise ValueError(f"stuck_task_after must be >= 0 (0: off), got {self.stuck_task_after}")
        if self.max_recoveries < 0:
            raise ValueError(f"max_recoveries must be >= 0, got {self.max_recoveries}")
        if self.start_phase not in ("forward", "backward"):
            raise ValueError(f"start_phase must be 'forward' or 'backward', got {self.start_phase!r}")


@dataclass(frozen=True)
class EpisodePlan:
    """What the next episode is."""

    index: int  # 0-based episode counter of this session
    task: TaskSpec  # the task to attempt
    eval: bool  # deterministic policy, flagged as evaluation, excluded from training
    recovery: bool  # run the scripted reset motion before the episode


@dataclass
class SchedulerState:
    """Everything needed to resume scheduling after a restart (JSON-serialisable)."""

    episodes: int = 0  # episodes planned so far
    phase: Phase = "forward"  # phase of the next training episode
    failures_in_row: int = 0  # consecutive failures on the current task
    episodes_since_success: int = 0  # consecutive episodes without success in either direction
    task_failures: dict[str, int] = field(default_factory=dict)  # per phase: its failures since its own last success
    stuck_phase: str = ""  # the phase whose own failures triggered the pending recoveries ("" = either)
    recoveries_in_row: int = 0  # recovery episodes since the last success that ends being stuck
    recovery_pending: bool = False  # the next episode starts with a recovery motion
    already_done_in_row: int = 0  # planned tasks in a row whose goal already held at the start
    alert: str = ""  # non-empty once the scheduler has given up; the session pauses
    history: list[dict] = field(default_factory=list)  # last few outcomes, for the dashboard


class ResetFreeScheduler:
    """Chooses forward/backward/eval/recovery episodes from the outcomes it is told about."""

    HISTORY = 50

    def __init__(self, forward: TaskSpec, backward: TaskSpec, config: SchedulerConfig | None = None,
                 state: SchedulerState | None = None) -> None:
        if forward.phase != "forward" or backward.phase != "backward":
            raise ValueError(f"task pair must be (forward, backward), got ({forward.phase}, {backward.phase})")
        self.tasks = {"forward": forward, "backward": backward}
        self.config = config or SchedulerConfig()
        self.state = state or SchedulerState(phase=self.config.start_phase)
        self._current: EpisodePlan | None = None

    @property
    def alert(self) -> str:
        return self.state.alert

    def next_episode(self) -> EpisodePlan:
        """Plan the next episode. Raises RuntimeError while an alert is raised (call ``acknowledge``)."""
        if self.state.alert:
            raise RuntimeError(f"session paused by alert: {self.state.alert}")
        s = self.state
        n = s.episodes
        every = self.config.eval_every
        is_eval = every > 0 and (n + 1) % every == 0 and not s.recovery_pending
        plan = EpisodePlan(index=n, task=self.tasks[s.phase], eval=is_eval, recovery=s.recovery_pending)
        s.episodes += 1
        s.recovery_pending = False
        self._current = plan
        return plan

    def episode_finished(self, success: bool, out_of_workspace: bool = False) -> None:
        """Record the outcome of the episode returned by the last ``next_episode``.

        ``out_of_workspace``: an object ended outside the area the robot works in (simulator
        ground truth; on hardware a workspace monitor). A success does not undo that: a recovery
        episode can be credited (its task "holds" with the cube on the floor) on a scene it never
        fixed, and counting that as recovered looped forever instead of calling a person.
        """
        plan = self._current
        self._close_current("episode_finished", success=bool(success))
        s, c = self.state, self.config
        s.already_done_in_row = 0
        phase = plan.task.phase
        if success:
            s.task_failures[phase] = 0
            if not out_of_workspace and s.stuck_phase in ("", phase):
                # Only a success of the task that was stuck ends being stuck: the other task
                # succeeding says nothing about the scene its reverse keeps failing in.
                s.recoveries_in_row = 0
                s.stuck_phase = ""
            s.phase = _other(s.phase)
            s.failures_in_row = 0
            s.episodes_since_success = 0
            if out_of_workspace:
                self._stuck("the scene left the workspace", phase, retry_same=True)
            return
        s.failures_in_row += 1
        s.episodes_since_success += 1
        s.task_failures[phase] = s.task_failures.get(phase, 0) + 1
        # The forward task can fail forever from a start the backward policy keeps producing (the
        # cube put down against the bowl's rim) while backward keeps succeeding: count per task too.
        task_stuck = c.stuck_task_after > 0 and s.task_failures[phase] >= c.stuck_task_after
        if out_of_workspace:
            self._stuck("the scene left the workspace", phase)
        elif task_stuck:
            # Before the either-direction rule, which often fires on the same episode (no success
            # at all since the other task's last one): only this task's success ends being stuck.
            self._stuck(f"{plan.task.instruction!r} failed {s.task_failures[phase]} times since it last succeeded",
                        phase, stuck_phase=phase)
        elif s.episodes_since_success >= c.stuck_after:
            self._stuck(f"no success in either direction for {s.episodes_since_success} episodes", phase)
        elif s.failures_in_row >= c.switch_after_failures:
            s.phase = _other(s.phase)
            s.failures_in_row = 0

    def _stuck(self, why: str, phase: str, stuck_phase: str = "", retry_same: bool = False) -> None:
        """Plan a recovery on the other task (``retry_same``: the already chosen next one) or, after
        ``max_recoveries`` in a row, raise the alert. ``stuck_phase``: only this task's success
        ends being stuck ("" = any success)."""
        s = self.state
        if s.recoveries_in_row >= self.config.max_recoveries:
            s.alert = f"stuck: {why}; {s.recoveries_in_row} recovery attempt(s) failed — a person is needed"
            return
        s.recoveries_in_row += 1
        s.stuck_phase = stuck_phase
        s.recovery_pending = True
        s.episodes_since_success = 0
        s.task_failures[phase] = 0
        s.failures_in_row = 0
        if not retry_same:
            s.phase = _other(s.phase)

    def task_already_done(self) -> None:
        """The planned task's goal already holds before any action: its reverse failed short of
        where this one ends (a failed "put in" leaves the cube out). Nothing to learn there, so the
        episode is dropped, not counted as a success or a failure, and the other task is planned.
        Both directions "done" at once means the classifier cannot be trusted: raise an alert."""
        self._close_current("task_already_done", already_done=True)
        s = self.state
        s.episodes -= 1  # the episode never ran: keep indices and the evaluation cadence contiguous
        s.already_done_in_row += 1
        if s.already_done_in_row >= 2:
            s.alert = ("the classifier says both tasks are already done before acting — check the camera "
                       "and the classifier, then resume")
            return
        s.phase = _other(s.phase)
        s.failures_in_row = 0

    def _close_current(self, caller: str, **outcome: bool) -> None:
        """Forget the planned episode and append it, with ``outcome``, to the history."""
        plan = self._current
        if plan is None:
            raise RuntimeError(f"{caller} called without a planned episode")
        self._current = None
        s = self.state
        s.history = (s.history + [{"episode": plan.index, "task": plan.task.id, "eval": plan.eval,
                                   "recovery": plan.recovery, **outcome}])[-self.HISTORY:]

    def acknowledge(self) -> None:
        """A person fixed the scene: clear the alert and start counting afresh."""
        s = self.state
        s.alert = ""
        s.already_done_in_row = 0
        s.recoveries_in_row = 0
        s.episodes_since_success = 0
        s.failures_in_row = 0
        s.task_failures = {}
        s.stuck_phase = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self.state)

    @classmethod
    def from_dict(cls, forward: TaskSpec, backward: TaskSpec, data: dict,
                  config: SchedulerConfig | None = None) -> "ResetFreeScheduler":
        known = {f.name for f in dataclasses.fields(SchedulerState)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"scheduler state has unknown keys {sorted(unknown)}")
        return cls(forward, backward, config, SchedulerState(**data))


def _other(phase: Phase) -> Phase:
    return "backward" if phase == "forward" else "forward"
