"""MuJoCo sim arms behind the same ``Arm`` interface as the real drivers.

``send_action`` goes through the shared validation + ``SafetyGuard``; the safe end-effector target
is turned into joint position targets with damped-least-squares IK on MuJoCo's site Jacobian,
and then physics advances one control period (``1 / control_hz`` SIMULATED seconds). The arm's
clock is the simulated time, so the command watchdog fires in simulated time too (checked every
20 ms of sim time while physics steps, and on every ``scene.step()`` without an action).

Registered names: ``sim_widowx250``, ``sim_franka``, ``sim_widowx_ai`` (an arm on an empty table;
task scenes in ``hardware.sim.scenes`` build the same class around their own world).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hardware.arm import ActionSent, Arm, ArmConfig, ArmObservation, apply_overrides, register_arm
from hardware.safety import SafetyLimits
from hardware.sim.robots import ROBOTS, RobotModel
from hardware.sim.world import SimWorld


@dataclass
class SimArmConfig(ArmConfig):
    """A MuJoCo sim arm; unset scales/limits come from the robot model's defaults."""

    # sim robot model: widowx250, franka or widowx_ai
    robot: str = "widowx250"
    # physics timestep in simulated seconds
    timestep: float = 0.004
    # advance physics one control period on every send_action (False: the caller steps the world)
    auto_step: bool = True
    # simulated seconds allowed for a move_to() to settle
    move_timeout_s: float = 4.0
    # the sim never runs a wall-clock watchdog thread: the watchdog runs in simulated time
    watchdog_thread: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.robot not in ROBOTS:
            raise ValueError(f"SimArmConfig.robot must be one of {sorted(ROBOTS)}, got {self.robot!r}")
        if not (0 < self.timestep <= 0.01):
            raise ValueError(f"SimArmConfig.timestep must be in (0, 0.01] s, got {self.timestep!r}")
        if not self.move_timeout_s > 0:
            raise ValueError(f"SimArmConfig.move_timeout_s must be positive, got {self.move_timeout_s!r}")


def default_config(robot: RobotModel, cls: type[SimArmConfig] = SimArmConfig, **overrides) -> SimArmConfig:
    """Config with the robot model's action scales, control rate and workspace box."""
    cfg = cls(
        robot=robot.name,
        max_translation_m=robot.max_translation_m,
        max_rotation_rad=robot.max_rotation_rad,
        control_hz=robot.control_hz,
        safety=SafetyLimits(workspace_min=robot.workspace_min, workspace_max=robot.workspace_max),
    )
    # nested overrides ({"safety": {...}} or "safety.x") keep the robot's other safety limits
    return apply_overrides(cfg, overrides) if overrides else cfg


class SimArm(Arm):
    """An arm in a ``SimWorld`` (built on ``connect()`` if none is given)."""

    Config = SimArmConfig
    uses_wall_clock = False
    #: robot model used when no config is given
    default_robot = "widowx250"

    def __init__(self, config: SimArmConfig | None = None, world: SimWorld | None = None):
        if config is None:
            config = default_config(ROBOTS[self.default_robot], cls=self.Config)
        super().__init__(config)
        if world is not None and world.robot.name != config.robot:
            raise ValueError(f"world has robot {world.robot.name!r} but config.robot is {config.robot!r}")
        self.world = world
        self.robot = ROBOTS[config.robot]
        self.last_ik_error: tuple[float, float] = (0.0, 0.0)

    # ---- driver primitives --------------------------------------------------------------------
    def _connect(self) -> None:
        if self.world is None:
            self.world = SimWorld(self.robot, timestep=self.config.timestep)
        if self._on_substep not in self.world.substep_hooks:
            self.world.substep_hooks.append(self._on_substep)

    def _disconnect(self) -> None:
        if self.world is not None and self._on_substep in self.world.substep_hooks:
            self.world.substep_hooks.remove(self._on_substep)

    def _now(self) -> float:
        return float(self.world.data.time) if self.world is not None else 0.0

    def _read_observation(self) -> ArmObservation:
        w = self.world
        with w.lock:
            return ArmObservation(
                joint_positions=w.joints(),
                ee_pose=w.ee_pose(),
                gripper=w.gripper_opening(),
                timestamp=float(w.data.time),
            )

    def _command_pose(self, target_pose: np.ndarray, gripper_target: float) -> None:
        w = self.world
        with w.lock:
            q, pos_err, rot_err = w.solve_ik(target_pose)
            self.last_ik_error = (pos_err, rot_err)
            w.set_joint_targets(q)
            w.set_gripper_target(gripper_target)

    def _hold(self) -> None:
        # Hold: joint targets = where the joints are now; the gripper keeps its target (no drop).
        w = self.world
        with w.lock:
            w.set_joint_targets(w.joints())

    def _move_to_joints(self, q: np.ndarray) -> None:
        """Ramp the joint targets to ``q`` over ~1 s of sim time, then settle (simulated time)."""
        w = self.world
        q = np.clip(np.asarray(q, dtype=np.float64), w.joint_range[:, 0], w.joint_range[:, 1])
        if q.shape != (w.n_joints,):
            raise ValueError(f"{self.robot.name}: joint pose must have shape ({w.n_joints},), got {q.shape}")
        with w.lock:
            start = w.joints()
            ramp = 1.0
            n = 25
            for i in range(1, n + 1):
                w.set_joint_targets(start + (q - start) * i / n)
                w.step(ramp / n)
                self.guard.mark_alive(self._now())  # a deliberate move is not a stalled command stream
            t_end = w.data.time + self.config.move_timeout_s
            while w.data.time < t_end:
                w.step(0.1)
                self.guard.mark_alive(self._now())
                if np.max(np.abs(w.joints() - q)) < 2e-3 and np.max(np.abs(w.data.qvel[w.arm_dofadr])) < 1e-2:
                    break

    def default_named_poses(self) -> dict[str, np.ndarray]:
        return {"home": np.asarray(self.robot.home_q), "reset": np.asarray(self.robot.reset_q)}

    # ---- sim-specific -------------------------------------------------------------------------
    @property
    def control_period(self) -> float:
        return 1.0 / self.config.control_hz

    def send_action(self, action: np.ndarray) -> ActionSent:
        """Shared safety path, then (``auto_step``) one control period of simulated physics."""
        sent = super().send_action(action)
        if self.config.auto_step:
            self.world.step(self.control_period)
        return sent

    def idle(self) -> None:
        """One control period with no command (the watchdog keeps running in sim time)."""
        self._require_connected("idle")
        self.world.step(self.control_period)

    def _on_substep(self, now: float) -> None:
        if self._connected:
            self.watchdog_check(now)


@register_arm("sim_widowx250")
class SimWidowX250(SimArm):
    """WidowX 250 6-DoF in MuJoCo (our MJCF from public dimensions), 5 Hz like RoboFuME."""

    default_robot = "widowx250"

    @dataclass
    class Config(SimArmConfig):
        """Sim WidowX 250 defaults."""

        # sim robot model
        robot: str = "widowx250"
        # metres of end-effector translation per unit action per control step
        max_translation_m: float = ROBOTS["widowx250"].max_translation_m
        # radians of end-effector rotation per unit action per control step
        max_rotation_rad: float = ROBOTS["widowx250"].max_rotation_rad
        # control rate (Hz)
        control_hz: float = ROBOTS["widowx250"].control_hz
        # hard safety limits applied to every command
        safety: SafetyLimits = field(
            default_factory=lambda: SafetyLimits(ROBOTS["widowx250"].workspace_min, ROBOTS["widowx250"].workspace_max)
        )


@register_arm("sim_franka")
class SimFranka(SimArm):
    """Franka FR3 in MuJoCo (model from the franky-sim wheel), 10 Hz."""

    default_robot = "franka"

    @dataclass
    class Config(SimArmConfig):
        """Sim Franka FR3 defaults."""

        # sim robot model
        robot: str = "franka"
        # metres of end-effector translation per unit action per control step
        max_translation_m: float = ROBOTS["franka"].max_translation_m
        # radians of end-effector rotation per unit action per control step
        max_rotation_rad: float = ROBOTS["franka"].max_rotation_rad
        # control rate (Hz)
        control_hz: float = ROBOTS["franka"].control_hz
        # hard safety limits applied to every command
        safety: SafetyLimits = field(
            default_factory=lambda: SafetyLimits(ROBOTS["franka"].workspace_min, ROBOTS["franka"].workspace_max)
        )


@register_arm("sim_widowx_ai")
class SimWidowXAI(SimArm):
    """Trossen WidowX AI in MuJoCo (model from the trossen-arm-sim wheel), 10 Hz."""

    default_robot = "widowx_ai"

    @dataclass
    class Config(SimArmConfig):
        """Sim WidowX AI defaults."""

        # sim robot model
        robot: str = "widowx_ai"
        # metres of end-effector translation per unit action per control step
        max_translation_m: float = ROBOTS["widowx_ai"].max_translation_m
        # radians of end-effector rotation per unit action per control step
        max_rotation_rad: float = ROBOTS["widowx_ai"].max_rotation_rad
        # control rate (Hz)
        control_hz: float = ROBOTS["widowx_ai"].control_hz
        # hard safety limits applied to every command
        safety: SafetyLimits = field(
            default_factory=lambda: SafetyLimits(ROBOTS["widowx_ai"].workspace_min, ROBOTS["widowx_ai"].workspace_max)
        )


SIM_ARM_CLASSES: dict[str, type[SimArm]] = {"widowx250": SimWidowX250, "franka": SimFranka, "widowx_ai": SimWidowXAI}
