"""The actor's control-step logic, free of ROS: what to send, what to record, when an episode ends.

Each control tick the node hands :meth:`ActorLoop.tick` the freshest observation, classifier
output and teleop state; the loop returns the action to publish. Recording follows the usual
RL convention: the step recorded at tick ``t`` holds ``obs_t`` and ``action_t``; its reward and
terminal flag are only known at tick ``t+1``, from the classifier's verdict on ``obs_{t+1}``.
An episode ends when the classifier says the current task is done (terminal, reward 1) or at
the horizon (truncated, never terminal: the learner must still bootstrap there). With
``confirm_success`` a "done" counts only once the classifier still says so with the arm back at
its reset pose, gripper open, and an episode at its horizon is a success if it says so from there:
the arm in the goal region hides what the classifier must see, and policies learn to find arm
poses it misjudges there (see ``ActorConfig.confirm_success``).

The action stored is the one the controller reports it actually applied (after safety
clipping), matched by sequence number; if that report has not arrived by the next tick the
clipped command is stored and the mismatch is counted.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

import numpy as np

from robot_stack.session.scheduler import EpisodePlan, ResetFreeScheduler


class PolicyFn(Protocol):
    """A policy as the actor sees it: observation in, normalised 7-D action out."""

    version: int

    def act(self, images: dict[str, np.ndarray], proprio: np.ndarray, task_id: str, deterministic: bool) -> np.ndarray:
        """images: {camera: (H, W, 3) uint8}; proprio: (S,) float32 -> action (7,) float32 in [-1, 1]."""
        ...

    def reset(self) -> None:
        """Drop any actions planned ahead (an action chunk): the next ``act`` looks afresh."""
        ...


@dataclass
class ActorConfig:
    """Episode handling of the actor."""

    horizon: int = 60  # control steps before an episode is truncated
    control_hz: float = 10.0  # control rate; also the rate at which steps are recorded
    teleop_timeout_s: float = 0.5  # teleop input older than this no longer counts as intervening
    reward_timeout_s: float = 1.0  # classifier output older than this is ignored (no success)
    observation_timeout_s: float = 1.0  # a camera frame or proprio older than this pauses stepping
    recovery_steps: int = 20  # ticks given to the scripted reset motion before a recovery episode
    success_ticks: int = 2  # consecutive classifier "done" ticks that end an episode (1 = the first; 2 rides out a one-frame glimpse, e.g. the gripper over the bowl hiding a cube beside it)
    home_steps: int = 10  # ticks given to moving the arm to its reset pose, gripper opening, before each episode (objects stay where they are, as in RoboFuME); 0 = start where the last episode left the arm
    release_steps: int = 2  # ticks of "hold still, gripper open" before the arm goes home, so a held object is put down where it is rather than carried home and dropped from there
    lift_steps: int = 2  # then ticks raising the open gripper straight up at full speed, so the joint-space move home starts clear of the table: from a low, twisted pose that move swept a cube off the table (a human reset in a session)
    confirm_success: bool = True  # success is judged from the reset pose (arm out of the way, gripper open): a classifier "done" counts only if it holds from there, and an episode at its horizon succeeds if the task is seen done from there. Online, 37 of 38 credited successes were arm poses the classifier misjudged (gripper in the bowl beside the cube, wrist camera turned away), and all 20 such we recorded were judged not done from the reset pose
    record_eval: bool = True  # store evaluation episodes (flagged eval, excluded from training)
    exploration_noise: float = 0.0  # training episodes: 0 = sample the policy's own action distribution; > 0 = its mean action plus N(0, this) per dimension, clipped to [-1, 1] (self-imitation: a BC policy's std is not trained for exploring, bench/session_runs.md)

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        if not 0.1 <= self.control_hz <= 1000:
            raise ValueError(f"control_hz must be in [0.1, 1000], got {self.control_hz}")
        for name in ("teleop_timeout_s", "reward_timeout_s", "observation_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.success_ticks < 1:
            raise ValueError(f"success_ticks must be >= 1, got {self.success_ticks}")
        for name in ("recovery_steps", "home_steps", "release_steps", "lift_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.exploration_noise <= 1.0:
            raise ValueError(f"exploration_noise must be in [0, 1] (actions are normalised to [-1, 1]), got {self.exploration_noise}")


@dataclass
class Observation:
    images: dict[str, np.ndarray]  # {camera: (H, W, 3) uint8}
    proprio: np.ndarray  # (S,) float32
    stamp: float  # seconds, time of the older of the two sources


@dataclass
class ClassifierOutput:
    task_id: str
    prob: float  # success probability in [0, 1]
    decision: bool  # prob above the calibrated threshold
    stamp: float


@dataclass
class TeleopInput:
    action: np.ndarray  # (7,) normalised
    intervening: bool
    stamp: float


class Mode(enum.Enum):
    IDLE = "idle"  # not started, or stopped
    PAUSED = "paused"  # a person paused, or an alert paused the session
    RECOVERING = "recovering"  # running the scripted reset motion
    CONFIRMING = "confirming"  # the classifier said done: re-checking from the reset pose
    RUNNING = "running"


#: normalised action that keeps the arm where it is and opens the gripper (+1 = open): sent before
#: and after the arm goes to its reset pose, so episodes start, and successes are re-checked, as
#: the demos start: gripper open
HOLD_OPEN = np.array([0, 0, 0, 0, 0, 0, 1], dtype=np.float32)
#: normalised action that raises the tool straight up at full speed, gripper open
LIFT_OPEN = np.array([0, 0, 1, 0, 0, 0, 1], dtype=np.float32)
#: the step that sends the arm to its "reset" named pose while homing
HOME_POSE = "pose"


def homing_steps(config: "ActorConfig", ticks: int) -> list:
    """What going home sends, in order: ``HOLD_OPEN`` for ``release_steps`` ticks (whatever the
    gripper holds is put down where it is), ``LIFT_OPEN`` for ``lift_steps`` (the open gripper
    clear of the table), ``HOME_POSE``, then ``HOLD_OPEN`` for ``ticks`` ticks at the reset pose."""
    return [HOLD_OPEN] * config.release_steps + [LIFT_OPEN] * config.lift_steps + [HOME_POSE] + [HOLD_OPEN] * ticks


@dataclass
class TickResult:
    action: np.ndarray | None  # (7,) to publish, or None to publish nothing (the arm holds)
    seq: int  # sequence number of the published action (echoed by the controller)
    named_pose: str | None = None  # a named pose to request from the controller ("reset")
    events: list[dict] = field(default_factory=list)  # episode committed, task flipped, alerts


class EpisodeSink(Protocol):
    """Where episodes go, step by step (the store's episode recorder, through a small adapter).

    Steps are streamed rather than buffered here so the store's periodic flush bounds what a
    crash of the actor can lose to the last few seconds.
    """

    def begin(self, plan: EpisodePlan, policy_version: int) -> None: ...

    def add_step(self, step: dict[str, Any]) -> None:
        """step: images {camera: (H, W, 3) uint8}, state (S,), action (7,), reward, success_prob,
        intervention, policy_version, timestamp, terminal, truncated."""
        ...

    def commit(self, outcome: str, extra: dict) -> str:
        """Make the episode visible; returns its id."""
        ...

    def discard(self) -> None: ...


class LockstepGate:
    """In lockstep sim, holds the next action until the observation shows the last one's effect.

    Lockstep sim advances the world only when a command arrives, so the policy must act on the
    world *after* its previous action, as in the scripted demos (otherwise it acts on a frame
    one or two actions old). The proprio carries the sequence number of the last command the
    controller applied; sim frames carry the simulated time of the world they show, which moves
    on with every applied command. If that never comes (a controller restarted with a fresh
    count, say) the gate opens after ``timeout_s`` rather than stopping the robot.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._seq = 0  # the last action sent
        self._stamps: dict[str, float] = {}  # simulated time of each camera's frame it was chosen on
        self._sent_at: float | None = None
        self.timeouts = 0  # times the gate opened without seeing the action's effect

    def sent(self, seq: int, frame_stamps: Mapping[str, float], now: float) -> None:
        """An action went out, chosen on frames of these simulated times."""
        self._seq, self._stamps, self._sent_at = seq, dict(frame_stamps), now

    def ready(self, applied_seq: int, frame_stamps: Mapping[str, float], now: float) -> bool:
        """True when the proprio (``applied_seq``) and every camera frame show the world after the last action."""
        if self._sent_at is None:
            return True
        if applied_seq >= self._seq and all(frame_stamps.get(c, float("-inf")) > t for c, t in self._stamps.items()):
            self._sent_at = None
            return True
        if now - self._sent_at > self.timeout_s:
            self.timeouts += 1
            self._sent_at = None
            return True
        return False


def explore_action(policy: PolicyFn, images, proprio, task_id: str, noise: float, rng: np.random.Generator) -> np.ndarray:
    """(7,) float32 action of a training episode: a sample of the policy's own distribution
    (``noise`` 0), or its mean plus N(0, ``noise``) per dimension (self-imitation: a BC policy's std
    is not trained for exploring); clipping to [-1, 1] is left to the caller's action guard."""
    action = np.asarray(policy.act(images, proprio, task_id, noise > 0), dtype=np.float32)
    if noise > 0:
        action = action + rng.normal(0.0, noise, action.shape).astype(np.float32)
    return action


def policy_members(policy: PolicyFn) -> list[int]:
    """The versions of the networks acting as ``policy``: an ensemble's members (``PolicyEnsemble``,
    oldest first), else its own version. Recorded with each episode: the stamped version alone does
    not say which networks acted."""
    members = getattr(policy, "members", None)
    return [int(m.version) for m in members] if members else [int(policy.version)]


def _output_for(reward: ClassifierOutput | Mapping[str, ClassifierOutput] | None, task_id: str) -> ClassifierOutput | None:
    """The classifier's output for ``task_id`` among what the node handed over (one output, or one per task)."""
    if isinstance(reward, Mapping):
        reward = reward.get(task_id)
    return reward if reward is not None and reward.task_id == task_id else None


class ActorLoop:
    """Runs reset-free episodes one control tick at a time."""

    def __init__(self, config: ActorConfig, scheduler: ResetFreeScheduler, policy: PolicyFn,
                 sink: EpisodeSink, policy_source: Callable[[], PolicyFn | None] | None = None,
                 rng: np.random.Generator | None = None) -> None:
        self.config = config
        self.rng = rng or np.random.default_rng()  # exploration noise
        self.scheduler = scheduler
        self.policy = policy
        self.sink = sink
        # Returns a newer policy when one is available; consulted only at episode boundaries so
        # an episode is never recorded under two policy versions.
        self.policy_source = policy_source
        self.mode = Mode.IDLE
        self.plan: EpisodePlan | None = None
        self._n_steps = 0
        self._interventions = 0
        self._recording = False
        self._pending: dict[str, Any] | None = None
        self._seq = 0
        self._sent: dict[int, np.ndarray] = {}
        self._homing: list = []  # what the next RECOVERING/CONFIRMING ticks send (homing_steps): an action, or HOME_POSE (go to reset)
        self._observed = False  # this tick came with an observation (in lockstep: one showing the last action applied)
        self._done_ticks = 0  # consecutive ticks the classifier has called the current task done
        self._must_undo = False  # a recovery whose task already held: "done" counts once it has been undone
        self._homed = False  # the arm was sent home since the last episode ended (a success check did it)
        self._confirm_since: float | None = None  # CONFIRMING: when the arm got home (None: still going)
        self._confirm_last = float("-inf")  # stamp of the last classifier output counted in the check
        self._checking_horizon = False  # the check runs because the episode reached its horizon
        self.sent_mismatches = 0
        self.unconfirmed_successes = 0  # classifier successes that did not hold from the reset pose
        self.last_ground_truth: dict[str, Any] = {}

    def _policy_action(self, obs: Observation, task_id: str) -> np.ndarray:
        """(7,) float32: eval episodes the policy's mean; training ones as ``explore_action``."""
        if self.plan.eval:
            return np.asarray(self.policy.act(obs.images, obs.proprio, task_id, True), dtype=np.float32)
        return explore_action(self.policy, obs.images, obs.proprio, task_id, self.config.exploration_noise, self.rng)

    # -- session commands -------------------------------------------------------------------
    def start(self) -> None:
        """Start or resume; a person starting the session also acknowledges a raised alert."""
        if self.scheduler.alert:
            self.scheduler.acknowledge()
        if self.mode in (Mode.IDLE, Mode.PAUSED):
            self.mode = Mode.RUNNING

    def pause(self) -> list[dict]:
        """Pause; a success check cut short does not count (the episode is committed as a failure)."""
        events = []
        if self.mode in (Mode.RUNNING, Mode.RECOVERING, Mode.CONFIRMING):
            if self.mode is Mode.CONFIRMING:
                events = self._end_check(confirmed=False, reason="paused")
            self.mode = Mode.PAUSED
        return events

    def stop(self) -> list[dict]:
        """Stop: the episode in progress is committed as truncated so nothing recorded is lost."""
        events = self._finish(success=False, truncated=True, reason="stopped") if self.plan is not None else []
        self.mode = Mode.IDLE
        return events

    def on_action_sent(self, seq: int, action: np.ndarray) -> None:
        """The controller's report of what it applied for command ``seq``."""
        self._sent[seq] = np.asarray(action, dtype=np.float32)
        if len(self._sent) > 64:
            for k in sorted(self._sent)[:-32]:
                del self._sent[k]

    # -- the control tick -------------------------------------------------------------------
    def tick(self, obs: Observation | None, reward: ClassifierOutput | Mapping[str, ClassifierOutput] | None,
             teleop: TeleopInput | None, now: float, ground_truth: dict[str, Any] | None = None) -> TickResult:
        """One control step. ``now`` is on the same clock as the inputs' stamps.

        ``reward``: the classifier's newest output, or the newest output per task id (the reward
        node scores both tasks of the pair on every frame; only the current task's counts).
        """
        if ground_truth:
            self.last_ground_truth = dict(ground_truth)
        self._observed = obs is not None
        events: list[dict] = []
        if self.mode in (Mode.IDLE, Mode.PAUSED):
            return TickResult(None, self._seq, events=events)
        if self.plan is None:
            events += self._begin_episode()
            if self.mode is Mode.PAUSED:
                return TickResult(None, self._seq, events=events)
            if self.plan is not None:
                # Only the objects are left where they are: an arm that starts each episode wherever
                # the last one left it (a workspace corner, say) starts far outside the demos.
                wait = self.config.recovery_steps if self.plan.recovery else (0 if self._homed else self.config.home_steps)
                self._homed = False
                if wait > 0:
                    return self._go_home(Mode.RECOVERING, wait, events)
        if self.mode is Mode.RECOVERING:
            result = self._homing_tick(events)
            if not self._homing:
                self.mode = Mode.RUNNING
            return result
        if self.mode is Mode.CONFIRMING:
            return self._confirm_tick(reward, now, events)
        if obs is None or now - obs.stamp > self.config.observation_timeout_s:
            # Without a fresh observation no action is sent; the controller's watchdog holds the arm.
            return TickResult(None, self._seq, events=events)

        assert self.plan is not None
        task_id = self.plan.task.id
        reward = _output_for(reward, task_id)
        fresh_reward = reward is not None and now - reward.stamp <= self.config.reward_timeout_s
        says_done = bool(fresh_reward and reward.decision)
        prob = float(reward.prob) if fresh_reward else float("nan")

        if says_done and self._pending is None and self._n_steps == 0 and not self._must_undo:
            if not self.plan.recovery:
                return TickResult(None, self._seq, events=events + self._skip_already_done(prob))
            # A recovery re-stages the scene: run the task anyway (e.g. move the cube that the
            # forward task keeps failing on somewhere else); it succeeds only once undone and redone.
            self._must_undo = True
            events.append({"event": "restaging", "episode": self.plan.index, "task": task_id, "success_prob": prob})
        if self._must_undo:
            self._must_undo = not (fresh_reward and not reward.decision)
            says_done = False
        self._done_ticks = self._done_ticks + 1 if says_done else 0
        success = self._done_ticks >= self.config.success_ticks
        if self._pending is not None:
            at_horizon = not success and self._n_steps + 1 >= self.config.horizon
            # A re-staging recovery that never undid its task would pass the check from the reset
            # pose (the task still holds) and credit doing nothing: it fails at the horizon unchecked.
            check_horizon = at_horizon and not self._must_undo
            if (success or check_horizon) and self.config.confirm_success:
                # The last step keeps its verdict open until the check from the reset pose; at the
                # horizon too: a task done late, the arm still in the way, counts once seen from there.
                events.append({"event": "checking_success", "episode": self.plan.index, "task": task_id,
                               "success_prob": prob, "at_horizon": at_horizon})
                self._confirm_since, self._confirm_last, self._done_ticks = None, float("-inf"), 0
                self._checking_horizon = at_horizon
                return self._go_home(Mode.CONFIRMING, self.config.home_steps, events)
            self._close_pending(success, truncated=at_horizon)
            if success or at_horizon:
                return TickResult(None, self._seq, events=events + self._finish(success=success, truncated=at_horizon))

        intervening = bool(teleop is not None and teleop.intervening
                           and now - teleop.stamp <= self.config.teleop_timeout_s)
        if intervening:
            action = np.asarray(teleop.action, dtype=np.float32)
            self.policy.reset()  # when the person lets go, the policy plans from where they left the arm
        else:
            action = self._policy_action(obs, task_id)
        if action.shape != (7,) or not np.all(np.isfinite(action)):
            # Never publish a bad action: the controller would hold the arm anyway, but a NaN
            # policy output is a bug worth surfacing loudly rather than recording.
            events.append({"event": "bad_action", "source": "teleop" if intervening else "policy",
                           "detail": f"shape {action.shape}, finite={bool(np.all(np.isfinite(action)))}"})
            return TickResult(None, self._seq, events=events)
        action = np.clip(action, -1.0, 1.0)
        self._seq += 1
        self._pending = {
            "seq": self._seq,
            "images": {k: np.asarray(v) for k, v in obs.images.items()},
            "state": np.asarray(obs.proprio, dtype=np.float32),
            "command": action,
            "success_prob": prob,
            "intervention": intervening,
            "policy_version": int(self.policy.version),
            "timestamp": float(obs.stamp),
        }
        return TickResult(action, self._seq, events=events)

    # -- internals --------------------------------------------------------------------------
    def _go_home(self, mode: Mode, ticks: int, events: list[dict]) -> TickResult:
        """Put down what the gripper holds where it is (``release_steps`` ticks), lift the open
        gripper clear of the table (``lift_steps``), send the arm to its reset pose, then give it
        ``ticks`` ticks there, gripper open; this tick is the first."""
        self.mode = mode
        self._homing = homing_steps(self.config, ticks)
        return self._homing_tick(events)

    def _homing_tick(self, events: list[dict]) -> TickResult:
        if not self._homing or (self._homing[0] is HOME_POSE and not self._observed):
            # The named pose goes out on its own topic, unordered against the actions: only once
            # an observation shows the last lift applied (the lockstep gate) may it follow, or the
            # lift could land after the move home and start the episode above the reset pose.
            return TickResult(None, self._seq, events=events)
        step = self._homing.pop(0)
        if step is HOME_POSE:
            return TickResult(None, self._seq, named_pose="reset", events=events)
        self._seq += 1
        return TickResult(step.copy(), self._seq, events=events)

    def _confirm_tick(self, reward, now: float, events: list[dict]) -> TickResult:
        """CONFIRMING: wait for the arm to get home, then count the classifier's fresh verdicts on
        the current task: ``success_ticks`` "done" in a row confirm, one "not done" (or none within
        the reward and observation timeouts) rejects."""
        if self._confirm_since is None:
            if self._homing:
                return self._homing_tick(events)
            self._confirm_since = now  # verdicts arriving from here on are on frames of the arm home
            return TickResult(None, self._seq, events=events)
        assert self.plan is not None
        task_id = self.plan.task.id
        reward = _output_for(reward, task_id)
        if reward is not None and reward.stamp > max(self._confirm_since, self._confirm_last):
            self._confirm_last = reward.stamp
            if not reward.decision:
                return TickResult(None, self._seq, events=events + self._end_check(False, f"p={reward.prob:.2f} from the reset pose"))
            self._done_ticks += 1
            if self._done_ticks >= self.config.success_ticks:
                return TickResult(None, self._seq, events=events + self._end_check(True))
        elif now - self._confirm_since > self.config.reward_timeout_s + self.config.observation_timeout_s:
            return TickResult(None, self._seq, events=events + self._end_check(False, "no classifier output"))
        return TickResult(None, self._seq, events=events)

    def _end_check(self, confirmed: bool, reason: str = "") -> list[dict]:
        """Finish the episode whose success was being checked (the arm is home for the next one)."""
        assert self.plan is not None
        self.mode, self._homed, self._done_ticks = Mode.RUNNING, True, 0
        if confirmed:
            self._close_pending(True)
            return self._finish(success=True, truncated=False)
        if self._checking_horizon:
            return self._finish(success=False, truncated=True)
        self.unconfirmed_successes += 1
        event = {"event": "success_not_confirmed", "episode": self.plan.index, "task": self.plan.task.id, "why": reason}
        return [event] + self._finish(success=False, truncated=True, reason="success_not_confirmed")

    def _begin_episode(self) -> list[dict]:
        events = []
        newer = self.policy_source() if self.policy_source is not None else None
        if newer is not None and newer.version != self.policy.version:
            events.append({"event": "policy_swapped", "from": int(self.policy.version), "to": int(newer.version),
                           "members": policy_members(newer)})
            self.policy = newer
        try:
            self.plan = self.scheduler.next_episode()
        except RuntimeError as exc:
            self.mode = Mode.PAUSED
            return events + [{"event": "alert", "message": str(exc)}]
        self.policy.reset()  # a chunk planned in the last episode belongs to another scene
        self._n_steps = 0
        self._interventions = 0
        self._done_ticks = 0
        self._must_undo = False
        self._pending = None
        self._recording = self.config.record_eval or not self.plan.eval
        if self._recording:
            self.sink.begin(self.plan, int(self.policy.version))
        return events + [{"event": "episode_started", "episode": self.plan.index, "task": self.plan.task.id,
                          "phase": self.plan.task.phase, "eval": self.plan.eval, "recovery": self.plan.recovery,
                          "policy_version": int(self.policy.version)}]

    def _close_pending(self, success: bool, truncated: bool = False) -> None:
        """Give the pending step its reward/terminal/truncated flags and the action actually sent."""
        p = self._pending
        assert p is not None
        self._pending = None
        sent = self._sent.pop(p.pop("seq"), None)
        command = p.pop("command")
        if sent is None:
            self.sent_mismatches += 1
            sent = command
        p.update(action=sent, reward=1.0 if success else 0.0, terminal=success, truncated=truncated)
        self._n_steps += 1
        self._interventions += int(p["intervention"])
        if self._recording:
            self.sink.add_step(p)

    def _finish(self, success: bool, truncated: bool, reason: str = "") -> list[dict]:
        assert self.plan is not None
        if self._pending is not None:
            self._close_pending(False, truncated=truncated)
        plan, events = self.plan, []
        if self._recording:
            if self._n_steps:
                extra = {"ground_truth": self.last_ground_truth.get(plan.task.id),
                         "out_of_workspace": self.last_ground_truth.get("out_of_workspace"),
                         "end_reason": reason or ("success" if success else "horizon"),
                         "sent_mismatches": self.sent_mismatches, "policy_members": policy_members(self.policy)}
                episode_id = self.sink.commit("success" if success else "failure", extra)
                events.append({"event": "episode_committed", "episode_id": episode_id, "task": plan.task.id,
                               "phase": plan.task.phase, "eval": plan.eval, "success": success,
                               "steps": self._n_steps, "interventions": self._interventions})
            else:
                self.sink.discard()
        if reason != "stopped":
            out_of_ws = bool(self.last_ground_truth.get("out_of_workspace", False))
            self.scheduler.episode_finished(success, out_of_workspace=out_of_ws)
            if not self._pause_on_alert(events) and success:
                events.append({"event": "task_flipped", "to": self.scheduler.state.phase})
        self.plan = None
        self._n_steps = 0
        return events

    def _skip_already_done(self, prob: float) -> list[dict]:
        """The classifier says the task is done before the first action: record nothing (a
        one-step "success" would teach that any action succeeds) and let the scheduler move on."""
        assert self.plan is not None
        plan = self.plan
        if self._recording:
            self.sink.discard()
        self.scheduler.task_already_done()
        self.plan = None
        events = [{"event": "task_already_done", "episode": plan.index, "task": plan.task.id,
                   "phase": plan.task.phase, "success_prob": prob}]
        self._pause_on_alert(events)
        return events

    def _pause_on_alert(self, events: list[dict]) -> bool:
        """Pause (and report it in ``events``) when the scheduler has raised an alert."""
        if not self.scheduler.alert:
            return False
        self.mode = Mode.PAUSED
        events.append({"event": "alert", "message": self.scheduler.alert})
        return True

    def status(self) -> dict[str, Any]:
        plan = self.plan
        return {"mode": self.mode.value, "task_id": plan.task.id if plan else None,
                "phase": plan.task.phase if plan else None, "episode": plan.index if plan else None,
                "step": self._n_steps, "eval": plan.eval if plan else False,
                "policy_version": int(self.policy.version), "policy_members": policy_members(self.policy),
                "paused": self.mode is Mode.PAUSED,
                "alert": self.scheduler.alert, "unconfirmed_successes": self.unconfirmed_successes}
