"""Franka FR3 + Franka Hand as a registered ``Arm`` ("franka"), driven through `franky`.

Usage::

    from hardware.arm import make_arm
    with make_arm("franka", hostname="172.16.0.2") as arm:
        arm.move_to("home")
        sent = arm.send_action(np.array([0.5, 0, 0, 0, 0, 0, 1], np.float32))
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from hardware.arm import Arm, ArmConfig, ArmObservation, register_arm
from hardware.franka.client import HOME_JOINTS, FrankyClient
from hardware.safety import SafetyLimits
from hardware.validation import require_positive_finite


def _franka_limits() -> SafetyLimits:
    # A table-top box in front of the FR3 base, well inside its 0.855 m reach.
    return SafetyLimits(workspace_min=(0.25, -0.45, 0.05), workspace_max=(0.75, 0.45, 0.75))


@dataclass
class FrankaConfig(ArmConfig):
    """Connection and motion settings of a Franka FR3 driven through franky."""

    # FCI address of the robot (the simulator: its 127.0.0.N loopback address)
    hostname: str = "172.16.0.2"
    # franky relative dynamics factor (0..1] scaling velocity/acceleration/jerk limits
    dynamics_factor: float = 0.2
    # gripper finger speed (m/s) for moves and grasps
    gripper_speed_mps: float = 0.05
    # grasp force (N)
    gripper_force_n: float = 20.0
    # seconds to wait for the robot to accept the connection
    connect_timeout_s: float = 5.0
    # seconds a blocking move (move_to) may take before it is stopped and reported
    motion_timeout_s: float = 30.0
    # hard safety limits applied to every command
    safety: SafetyLimits = field(default_factory=_franka_limits)
    # control rate (Hz) the policy/actor runs this arm at
    control_hz: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.hostname:
            raise ValueError(f"FrankaConfig.hostname must be a host name or IP, got {self.hostname!r}")
        if not (0.0 < self.dynamics_factor <= 1.0):
            raise ValueError(f"FrankaConfig.dynamics_factor must be in (0, 1], got {self.dynamics_factor!r}")
        require_positive_finite(self, "gripper_speed_mps", "gripper_force_n", "motion_timeout_s", "connect_timeout_s")


@register_arm("franka")
class FrankaArm(Arm):
    """FR3 through franky: absolute Cartesian targets per step, grasp-style closing, stop on hold."""

    Config = FrankaConfig
    config: FrankaConfig

    def __init__(self, config: FrankaConfig | None = None):
        super().__init__(config)
        self.client = FrankyClient(
            self.config.hostname,
            dynamics_factor=self.config.dynamics_factor,
            gripper_speed_mps=self.config.gripper_speed_mps,
            gripper_force_n=self.config.gripper_force_n,
            connect_timeout_s=self.config.connect_timeout_s,
        )

    def _connect(self) -> None:
        self.client.connect()

    def _disconnect(self) -> None:
        self.client.close()

    def _read_observation(self) -> ArmObservation:
        joints, pose, grip = self.client.read()
        return ArmObservation(joint_positions=joints, ee_pose=pose, gripper=grip, timestamp=time.monotonic())

    def _command_pose(self, target_pose: np.ndarray, gripper_target: float) -> None:
        self.client.command_pose(target_pose, asynchronous=True)
        self.client.command_gripper(gripper_target)

    def _move_to_joints(self, q: np.ndarray) -> None:
        self.client.move_joints(q, timeout_s=self.config.motion_timeout_s)

    def _hold(self) -> None:
        self.client.hold()

    def default_named_poses(self) -> dict[str, np.ndarray]:
        return {"home": np.array(HOME_JOINTS), "reset": np.array(HOME_JOINTS)}

    def move_to_pose(self, pose: np.ndarray, gripper: float | None = None) -> None:
        """Blocking absolute move to ``pose (7,)`` (base frame), bypassing the per-step limits but
        not the workspace box (a target outside it raises ValueError). For set-up and tests."""
        pose = np.asarray(pose, dtype=np.float64).reshape(7)
        lo, hi = np.array(self.config.safety.workspace_min), np.array(self.config.safety.workspace_max)
        if np.any(pose[:3] < lo) or np.any(pose[:3] > hi) or not np.all(np.isfinite(pose)):
            raise ValueError(f"FrankaArm.move_to_pose: {pose[:3].round(4).tolist()} outside the workspace box {lo}..{hi}")
        with self._lock:
            self._require_connected("move_to_pose")
            if self.guard.estopped:
                raise RuntimeError(f"FrankaArm.move_to_pose refused, e-stop latched ({self.guard.estop_reason})")
            self.client.command_pose(pose, asynchronous=False, timeout_s=self.config.motion_timeout_s)
            if gripper is not None:
                self.client.command_gripper(gripper, wait=True)
            self.guard.mark_alive(self._now())
