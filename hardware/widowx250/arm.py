"""Interbotix WidowX 250 6-DoF on its Dynamixel servos as a registered ``Arm`` ("widowx250").

No ROS: the driver talks Protocol 2.0 through `dynamixel_sdk` (one SYNC_READ of present
positions per observation, one SYNC_WRITE of goal positions per command), solves IK on the
arm's public kinematic description (``kinematics.py``) and runs the gripper servo in
current-based position mode under a current limit, so closing on an object squeezes it with a
bounded force instead of stalling at full current. The dual shoulder/elbow servos of the real
arm follow their primaries through the servos' Secondary-ID setting, so only primaries are driven.

Usage::

    with make_arm("widowx250", port="/dev/ttyDXL") as arm:
        arm.move_to("reset")
        arm.send_action(np.array([0.3, 0, 0, 0, 0, 0, 1], np.float32))
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from hardware.arm import Arm, ArmConfig, ArmObservation, UnreachableTargetError, register_arm
from hardware.safety import SafetyLimits
from hardware.widowx250 import bus as dxl
from hardware.widowx250.kinematics import IKError, WidowX250Kinematics



TICKS_PER_REV = 4096
CENTER_TICKS = 2048
# Gripper pointing down above the middle of the table workspace (same as the sim arm's "reset").
RESET_JOINTS = (0.0, 0.0284, 0.2063, 0.0, 1.336, 0.0)
HOME_JOINTS = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def _wx250_limits() -> SafetyLimits:
    return SafetyLimits(workspace_min=(0.12, -0.3, 0.025), workspace_max=(0.42, 0.3, 0.3))


@dataclass
class WidowX250Config(ArmConfig):
    """Serial bus, servo IDs and calibration of a WidowX 250 6-DoF on Dynamixel servos."""

    # serial device of the U2D2 (or the emulator's pty)
    port: str = "/dev/ttyDXL"
    # bus baud rate
    baudrate: int = 1_000_000
    # servo IDs of waist, shoulder, elbow, forearm_roll, wrist_angle, wrist_rotate (primaries only)
    joint_ids: tuple[int, ...] = (1, 2, 4, 6, 7, 8)
    # servo ID of the gripper
    gripper_id: int = 9
    # +1/-1 per arm joint: direction of increasing ticks relative to the kinematic model
    joint_signs: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    # per arm joint: model angle (rad) when the servo reads its centre (2048 ticks)
    joint_offsets_rad: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    # gripper servo ticks when fully closed
    gripper_closed_ticks: int = 1500
    # gripper servo ticks when fully open
    gripper_open_ticks: int = 2600
    # gripper current limit (servo units of 2.69 mA): bounds the squeeze on an object
    gripper_current_limit: int = 300
    # joint-space move (move_to): servo position tolerance in rad that counts as arrived
    position_tolerance_rad: float = 0.02
    # seconds a blocking move may take before it is reported as failed
    motion_timeout_s: float = 10.0
    # torque off on disconnect (the arm then falls: only with it resting)
    torque_off_on_disconnect: bool = False
    # hard safety limits applied to every command
    safety: SafetyLimits = field(default_factory=_wx250_limits)
    # metres of end-effector translation per unit action per control step
    max_translation_m: float = 0.03
    # radians of end-effector rotation per unit action per control step
    max_rotation_rad: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        self.joint_ids = tuple(int(i) for i in self.joint_ids)
        self.joint_signs = tuple(float(s) for s in self.joint_signs)
        self.joint_offsets_rad = tuple(float(s) for s in self.joint_offsets_rad)
        for name in ("joint_ids", "joint_signs", "joint_offsets_rad"):
            if len(getattr(self, name)) != 6:
                raise ValueError(f"WidowX250Config.{name} needs 6 entries (one per arm joint), got {getattr(self, name)!r}")
        ids = list(self.joint_ids) + [self.gripper_id]
        if len(set(ids)) != 7 or not all(0 <= i < 253 for i in ids):
            raise ValueError(f"WidowX250Config.joint_ids/gripper_id must be 7 distinct IDs in 0..252, got {ids}")
        if any(s not in (1.0, -1.0) for s in self.joint_signs):
            raise ValueError(f"WidowX250Config.joint_signs must be +1 or -1, got {self.joint_signs!r}")
        if self.gripper_closed_ticks == self.gripper_open_ticks:
            raise ValueError(f"WidowX250Config.gripper_open_ticks must differ from gripper_closed_ticks ({self.gripper_closed_ticks})")
        if not (0 < self.gripper_current_limit <= 1193):
            raise ValueError(f"WidowX250Config.gripper_current_limit must be in 1..1193, got {self.gripper_current_limit!r}")
        for name in ("position_tolerance_rad", "motion_timeout_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"WidowX250Config.{name} must be a positive finite number, got {value!r}")


@register_arm("widowx250")
class WidowX250Arm(Arm):
    """WidowX 250 on Dynamixel Protocol 2.0: IK in the driver, sync read/write on the bus."""

    Config = WidowX250Config
    config: WidowX250Config

    def __init__(self, config: WidowX250Config | None = None):
        super().__init__(config)
        self.kin = WidowX250Kinematics()
        self.bus: dxl.DynamixelBus | None = None
        self._ids = list(self.config.joint_ids) + [self.config.gripper_id]
        self._last_q: np.ndarray | None = None

    # ---- unit conversion ------------------------------------------------------------------------
    def ticks_to_rad(self, ticks: np.ndarray) -> np.ndarray:
        """Servo ticks ``(6,)`` -> model joint angles ``(6,)`` rad."""
        signs, offs = np.array(self.config.joint_signs), np.array(self.config.joint_offsets_rad)
        return signs * (np.asarray(ticks, dtype=np.float64) - CENTER_TICKS) * (2 * math.pi / TICKS_PER_REV) + offs

    def rad_to_ticks(self, q: np.ndarray) -> np.ndarray:
        """Model joint angles ``(6,)`` rad -> servo ticks ``(6,)`` (int)."""
        signs, offs = np.array(self.config.joint_signs), np.array(self.config.joint_offsets_rad)
        return np.round(signs * (np.asarray(q, dtype=np.float64) - offs) * TICKS_PER_REV / (2 * math.pi) + CENTER_TICKS).astype(int)

    def _gripper_fraction(self, ticks: int) -> float:
        c, o = self.config.gripper_closed_ticks, self.config.gripper_open_ticks
        return float(np.clip((ticks - c) / (o - c), 0.0, 1.0))

    def _gripper_ticks(self, fraction: float) -> int:
        c, o = self.config.gripper_closed_ticks, self.config.gripper_open_ticks
        return int(round(c + float(np.clip(fraction, 0.0, 1.0)) * (o - c)))

    # ---- driver primitives ----------------------------------------------------------------------
    def _connect(self) -> None:
        bus = dxl.DynamixelBus(self.config.port, self.config.baudrate)
        bus.open()
        try:
            for i in self._ids:
                bus.ping(i)  # names the missing servo if one does not answer
            gid = self.config.gripper_id
            # Operating mode and current limit live in EEPROM: writable only with torque off.
            bus.sync_write(dxl.ADDR_TORQUE_ENABLE, 1, {i: 0 for i in self._ids})
            bus.sync_write(dxl.ADDR_OPERATING_MODE, 1, {i: dxl.MODE_POSITION for i in self.config.joint_ids})
            bus.write(gid, dxl.ADDR_OPERATING_MODE, 1, dxl.MODE_CURRENT_BASED_POSITION)
            bus.write(gid, dxl.ADDR_CURRENT_LIMIT, 2, self.config.gripper_current_limit)
            bus.write(gid, dxl.ADDR_GOAL_CURRENT, 2, self.config.gripper_current_limit)
            # Hold where the arm is: goal := present before torque comes on (no jump).
            present = bus.sync_read(dxl.ADDR_PRESENT_POSITION, 4, self._ids)
            bus.sync_write(dxl.ADDR_GOAL_POSITION, 4, present)
            bus.sync_write(dxl.ADDR_TORQUE_ENABLE, 1, {i: 1 for i in self._ids})
        except Exception:
            bus.close()
            raise
        self.bus = bus

    def _disconnect(self) -> None:
        bus, self.bus = self.bus, None
        if bus is None:
            return
        if self.config.torque_off_on_disconnect:
            try:
                bus.sync_write(dxl.ADDR_TORQUE_ENABLE, 1, {i: 0 for i in self._ids})
            except dxl.DynamixelError:
                pass
        bus.close()

    def _require_bus(self) -> dxl.DynamixelBus:
        if self.bus is None:
            raise dxl.DynamixelError(f"WidowX 250 on {self.config.port} is not connected")
        return self.bus

    def _read_ticks(self) -> dict[int, int]:
        return self._require_bus().sync_read(dxl.ADDR_PRESENT_POSITION, 4, self._ids)

    def _read_observation(self) -> ArmObservation:
        ticks = self._read_ticks()
        q = self.ticks_to_rad([ticks[i] for i in self.config.joint_ids])
        self._last_q = q
        return ArmObservation(
            joint_positions=q,
            ee_pose=self.kin.fk(q),
            gripper=self._gripper_fraction(ticks[self.config.gripper_id]),
            timestamp=time.monotonic(),
        )

    def _command_pose(self, target_pose: np.ndarray, gripper_target: float) -> None:
        seed = self._last_q if self._last_q is not None else self.ticks_to_rad(
            [self._read_ticks()[i] for i in self.config.joint_ids]
        )
        try:
            q = self.kin.ik(target_pose, seed)
        except IKError as exc:
            raise UnreachableTargetError(f"WidowX 250 on {self.config.port}: {exc}; nothing was sent") from exc
        goals = dict(zip(self.config.joint_ids, self.rad_to_ticks(q).tolist()))
        goals[self.config.gripper_id] = self._gripper_ticks(gripper_target)
        self._require_bus().sync_write(dxl.ADDR_GOAL_POSITION, 4, goals)

    def _move_to_joints(self, q: np.ndarray) -> None:
        q = np.clip(np.asarray(q, dtype=np.float64).reshape(6), self.kin.lower, self.kin.upper)
        bus = self._require_bus()
        bus.sync_write(dxl.ADDR_GOAL_POSITION, 4, dict(zip(self.config.joint_ids, self.rad_to_ticks(q).tolist())))
        deadline = time.monotonic() + self.config.motion_timeout_s
        while True:
            ticks = self._read_ticks()
            now_q = self.ticks_to_rad([ticks[i] for i in self.config.joint_ids])
            if np.max(np.abs(now_q - q)) < self.config.position_tolerance_rad:
                self._last_q = now_q
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"WidowX 250 on {self.config.port}: joint move not done in {self.config.motion_timeout_s} s "
                    f"(error {np.round(now_q - q, 3).tolist()} rad)"
                )
            time.sleep(0.01)

    def _hold(self) -> None:
        """Goal := present position on every servo (stops any motion in place)."""
        bus = self._require_bus()
        present = bus.sync_read(dxl.ADDR_PRESENT_POSITION, 4, self._ids)
        bus.sync_write(dxl.ADDR_GOAL_POSITION, 4, present)

    def default_named_poses(self) -> dict[str, np.ndarray]:
        return {"home": np.array(HOME_JOINTS), "reset": np.array(RESET_JOINTS)}

    def gripper_current(self) -> int:
        """Present current of the gripper servo (units of 2.69 mA, signed)."""
        gid = self.config.gripper_id
        with self._lock:
            return self._require_bus().sync_read(dxl.ADDR_PRESENT_CURRENT, 2, [gid])[gid]
