"""Trossen WidowX AI as a registered ``Arm`` ("widowx_ai"), driven through `trossen_arm`.

Usage::

    from hardware.arm import make_arm
    with make_arm("widowx_ai", host="192.168.1.2") as arm:
        arm.move_to("home")
        sent = arm.send_action(np.array([0, 0, -0.5, 0, 0, 0, -1], np.float32))
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from hardware.arm import Arm, ArmConfig, ArmObservation, register_arm
from hardware.safety import SafetyLimits
from hardware.validation import require_positive_finite
from hardware.widowx_ai.client import TrossenClient

# Elbow up, gripper pitched down in front of the base (EE ~[0.35, 0, 0.21] m).
HOME_JOINTS = (0.0, 1.0, 0.8, -0.3, 0.0, 0.0)
# All zeros: the arm's folded rest pose.
SLEEP_JOINTS = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def _widowx_ai_limits() -> SafetyLimits:
    return SafetyLimits(workspace_min=(0.12, -0.4, 0.03), workspace_max=(0.6, 0.4, 0.5))


@dataclass
class WidowXAIConfig(ArmConfig):
    """Connection and motion settings of a Trossen WidowX AI arm."""

    # IP address of the arm controller (the simulator: its 127.0.0.N loopback address)
    host: str = "192.168.1.2"
    # seconds to wait for the controller's TCP server on connect / reconfigure
    connect_timeout_s: float = 5.0
    # fraction of the control period over which each pose step is interpolated
    goal_time_fraction: float = 0.7
    # seconds a joint move (move_to) takes
    move_time_s: float = 2.0
    # seconds a blocking move may take before it is reported as failed
    motion_timeout_s: float = 15.0
    # hard safety limits applied to every command
    safety: SafetyLimits = field(default_factory=_widowx_ai_limits)
    # control rate (Hz) the policy/actor runs this arm at
    control_hz: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.host:
            raise ValueError(f"WidowXAIConfig.host must be an IP address, got {self.host!r}")
        if not (0.0 < self.goal_time_fraction <= 1.0):
            raise ValueError(f"WidowXAIConfig.goal_time_fraction must be in (0, 1], got {self.goal_time_fraction!r}")
        require_positive_finite(self, "connect_timeout_s", "move_time_s", "motion_timeout_s")


@register_arm("widowx_ai")
class WidowXAIArm(Arm):
    """WidowX AI through trossen_arm: joint-interpolated pose steps, position-mode gripper."""

    Config = WidowXAIConfig
    config: WidowXAIConfig

    def __init__(self, config: WidowXAIConfig | None = None):
        super().__init__(config)
        self.client = TrossenClient(self.config.host, connect_timeout_s=self.config.connect_timeout_s)
        self._gripper_commanded: float | None = None

    def _connect(self) -> None:
        self.client.connect()
        self._gripper_commanded = None

    def _disconnect(self) -> None:
        self.client.close()

    def _read_observation(self) -> ArmObservation:
        joints, pose, grip = self.client.read()
        return ArmObservation(joint_positions=joints, ee_pose=pose, gripper=grip, timestamp=time.monotonic())

    def _command_pose(self, target_pose: np.ndarray, gripper_target: float) -> None:
        goal_time = self.config.goal_time_fraction / self.config.control_hz
        self.client.command_pose(target_pose, goal_time_s=goal_time)
        if self._gripper_commanded is None or abs(gripper_target - self._gripper_commanded) > 0.02:
            self.client.command_gripper(gripper_target, goal_time_s=max(goal_time, 0.2))
            self._gripper_commanded = float(gripper_target)

    def _move_to_joints(self, q: np.ndarray) -> None:
        self.client.move_joints(q, goal_time_s=self.config.move_time_s, timeout_s=self.config.motion_timeout_s)

    def _hold(self) -> None:
        self.client.hold()

    def default_named_poses(self) -> dict[str, np.ndarray]:
        return {"home": np.array(HOME_JOINTS), "reset": np.array(HOME_JOINTS), "sleep": np.array(SLEEP_JOINTS)}

    def move_to_pose(self, pose: np.ndarray, gripper: float | None = None, duration_s: float = 1.0) -> None:
        """Blocking absolute move to ``pose (7,)``; must lie in the workspace box (else ValueError).
        Raises UnreachableTargetError if the arm's IK has no solution. For set-up and tests."""
        pose = np.asarray(pose, dtype=np.float64).reshape(7)
        lo, hi = np.array(self.config.safety.workspace_min), np.array(self.config.safety.workspace_max)
        if np.any(pose[:3] < lo) or np.any(pose[:3] > hi) or not np.all(np.isfinite(pose)):
            raise ValueError(f"WidowXAIArm.move_to_pose: {pose[:3].round(4).tolist()} outside the workspace box {lo}..{hi}")
        with self._lock:
            self._require_connected("move_to_pose")
            if self.guard.estopped:
                raise RuntimeError(f"WidowXAIArm.move_to_pose refused, e-stop latched ({self.guard.estop_reason})")
            self.client.command_pose(pose, goal_time_s=duration_s, blocking=True, timeout_s=self.config.motion_timeout_s)
            if gripper is not None:
                self.client.command_gripper(gripper, blocking=True)
                self._gripper_commanded = float(gripper)
            self.guard.mark_alive(self._now())
