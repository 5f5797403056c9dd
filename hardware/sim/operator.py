"""``SimOperator``: a simulated person at a teleop device ("sim_operator"), for sim sessions.

It watches its own mirror of the simulated world (the world states the controller publishes
for the cameras, given with ``set_state``) and the session's progress (``set_episode``), and
takes over a training episode that the policy has not finished by step ``take_over_at``,
finishing it with the scene's scripted expert, as a person correcting the robot would
(HIL-SERL). Its actions go out as any teleop device's do, flagged intervening, so the actor
records them as interventions and the learner's demo buffer gets them: this is how a sim
session exercises and measures the correction path end to end.

It picks up where the policy left the arm (the expert infers its phase from the world: a held
cube is carried on, a lined-up open hand goes on down), and it computes one expert action per
world state, so the expert's step counters advance once per control step as in its demos.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hardware.teleop.base import TeleopCommand, TeleopConfig, TeleopDevice, register_teleop


@dataclass
class SimOperatorConfig(TeleopConfig):
    """A simulated operator: when it takes over and how its expert acts."""

    # registered sim scene whose world states it mirrors (the session's scene)
    scene: str = "widowx250_cube_bowl"
    # episode step from which a training episode not yet done is taken over and finished
    take_over_at: int = 30
    # Gaussian noise of the expert's actions (normalised units; the prior demos' noise)
    noise: float = 0.1
    # the pick expert's descent gate (hardware.sim.experts.DESCENT_GATES; the prior demos' gate)
    gate: str = "strict"
    # seed of the mirror's layout before a world state arrives, and of the expert's noise
    seed: int = 0
    # also take over evaluation episodes (they measure the policy alone, so by default not)
    correct_eval: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        from hardware.sim.experts import DESCENT_GATES
        from hardware.sim.scenes import SCENES

        if self.scene not in SCENES:
            raise ValueError(f"SimOperatorConfig.scene: unknown sim scene {self.scene!r}; known: {sorted(SCENES)}")
        if self.take_over_at < 1:
            raise ValueError(f"SimOperatorConfig.take_over_at must be >= 1, got {self.take_over_at!r}")
        if not 0.0 <= self.noise <= 1.0:
            raise ValueError(f"SimOperatorConfig.noise must be in [0, 1], got {self.noise!r}")
        if self.gate not in DESCENT_GATES:
            raise ValueError(f"SimOperatorConfig.gate must be one of {sorted(DESCENT_GATES)}, got {self.gate!r}")


@register_teleop("sim_operator")
class SimOperator(TeleopDevice):
    """Takes over unfinished training episodes of a sim session with the scripted expert."""

    Config = SimOperatorConfig

    def __init__(self, config: SimOperatorConfig | None = None, scene=None):
        super().__init__(config)
        self.scene = scene
        self._owns_scene = scene is None
        self._rng = np.random.default_rng(self.config.seed)
        self._episode: tuple[int, str] | None = None  # (index, task id) of the episode it watches
        self._released: tuple[int, str] | None = None  # an episode it must not take over again
        self._running = False  # the actor is stepping that episode (not homing or checking success)
        self._expert = None  # the expert finishing the current episode, once taken over
        # no motion, the gripper as configured; never mutated (``_act`` replaces, ``_compute`` copies)
        self._idle = self._make_action(np.zeros(3), np.zeros(3))
        self._action = self._idle
        self.takeovers = 0  # episodes taken over so far

    def _open(self) -> None:
        if self.scene is None:
            from hardware.sim.scenes import make_scene

            # the expert reads object poses, not pixels: the smallest render size will do
            self.scene = make_scene(self.config.scene, seed=self.config.seed, image_size=16)

    def _close(self) -> None:
        if self._owns_scene and self.scene is not None:
            self.scene.close()
            self.scene = None

    def _holds_state(self) -> bool:
        # A takeover lasts until the episode ends, even if world states pause (a busy learner).
        return True

    # -- what it watches --------------------------------------------------------------------
    def set_state(self, x: np.ndarray) -> None:
        """Mirror the world state ``x`` (from ``scene.state()``); while in control, act on it."""
        with self._lock:
            self.scene.set_state(np.asarray(x, dtype=np.float64))
            self._mark_input()
            if self._in_control():
                self._act()

    def set_episode(self, index: int, task_id: str, step: int, running: bool, eval: bool = False) -> None:
        """The session's progress: episode ``index`` on ``task_id`` has recorded ``step`` steps;
        ``running``: the actor is stepping it (False while it homes the arm or checks success)."""
        with self._lock:
            key = (int(index), str(task_id))
            if key != self._episode:
                self._episode, self._expert, self._action = key, None, self._idle
            self._running = bool(running)
            if (self._expert is None and self._running and key != self._released and step >= self.config.take_over_at
                    and (self.config.correct_eval or not eval) and not self.scene.success(task_id)):
                self._expert = self.scene.expert(task_id, noise=self.config.noise, rng=self._rng, gate=self.config.gate)
                self.takeovers += 1
                self._act()

    def release(self) -> None:
        """The episode ended (or its success is being checked): let go, and stay off it."""
        with self._lock:
            self._released = self._episode
            self._expert, self._running, self._action = None, False, self._idle

    # -- the device -------------------------------------------------------------------------
    def _in_control(self) -> bool:
        """It steers the arm (called with ``self._lock`` held)."""
        return self._expert is not None and self._running

    def _act(self) -> None:
        self._action = np.asarray(self._expert(self.scene.observe()), dtype=np.float64)

    def _compute(self, now: float) -> TeleopCommand:
        return TeleopCommand(self._action.copy(), intervening=self._in_control(), estop=False,
                             timestamp=self._last_input if self._last_input is not None else now)
