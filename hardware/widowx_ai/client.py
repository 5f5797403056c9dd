"""Thin, testable layer over `trossen_arm` (WidowX AI): pose targets, gripper, state, error recovery.

Facts this code is built on (measured against trossen-arm-sim 0.2.3 with trossen_arm 1.11):
- only position mode is simulated, so every command is a position goal;
- with ``InterpolationSpace.cartesian`` an unreachable target does not raise: the driver's
  daemon fails later and EVERY following call raises the same ``LogicError`` until
  ``cleanup()`` + ``configure(clear_error=True)``; with ``InterpolationSpace.joint`` the inverse
  kinematics runs inside the call, which raises at once and leaves the driver usable. Commands
  here use joint-space interpolation (short 10 Hz steps are near-straight lines anyway) and any
  late failure is still caught and recovered from;
- Cartesian positions are ``[x, y, z, rx, ry, rz]`` (rotation vector) in the base frame;
- a dead controller surfaces as ``RuntimeError('Failed to read UDP message ...')`` within ~1 ms;
- ``configure`` raises ``Failed to receive initial joint outputs`` when the TCP handshake worked
  but the first UDP replies missed the driver's 1 ms windows: seen against the simulator on a
  loaded 2-core host, and a busy real controller link can do the same, so ``connect`` and the
  recovery's reconfigure try that handshake again (``HANDSHAKE_ATTEMPTS``) before giving up;
- the controller ports are fixed, so each instance needs its own IP (127.0.0.N in tests).
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import trossen_arm as ta

from hardware import geometry

from hardware.arm import ArmConnectionError, ArmNotConnectedError, UnreachableTargetError


log = logging.getLogger(__name__)

GRIPPER_MAX_M = 0.044  # carriage travel of the wxai_v0 follower gripper (joint limit)
_IK_MARKER = "inverse kinematics"
_VENDOR_ERRORS = (ta.LogicError, ta.RuntimeError, RuntimeError)
_HANDSHAKE_MARKER = "Failed to receive initial joint outputs"
HANDSHAKE_ATTEMPTS = 3  # configure attempts when only the UDP handshake failed (an unreachable host fails at once)


def pose_to_cartesian(pose: np.ndarray) -> list[float]:
    """Stack pose ``(7,)`` [x, y, z, qw, qx, qy, qz] -> trossen ``[x, y, z, rx, ry, rz]``."""
    pose = np.asarray(pose, dtype=np.float64).reshape(7)
    return [*pose[:3].tolist(), *geometry.quat_to_rotvec(pose[3:]).tolist()]


def cartesian_to_pose(cart) -> np.ndarray:
    """trossen ``[x, y, z, rx, ry, rz]`` -> stack pose ``(7,)``."""
    c = np.asarray(list(cart), dtype=np.float64).reshape(6)
    return np.concatenate([c[:3], geometry.rotvec_to_quat(c[3:])])


class TrossenClient:
    """One WidowX AI arm (6 joints + gripper) through `trossen_arm`; calls are serialised."""

    def __init__(self, host: str, connect_timeout_s: float = 5.0, end_effector: str = "wxai_v0_follower"):
        self.host = host
        self.connect_timeout_s = connect_timeout_s
        self.end_effector = getattr(ta.StandardEndEffector, end_effector)
        self.driver: ta.TrossenArmDriver | None = None
        self._lock = threading.RLock()
        self.recoveries = 0  # how often a stale driver error forced cleanup + configure

    # ---- lifecycle ------------------------------------------------------------------------------
    def connect(self) -> None:
        with self._lock:
            driver = ta.TrossenArmDriver()
            try:
                self._configure(driver)
            except _VENDOR_ERRORS as exc:
                _quiet_cleanup(driver)
                raise ArmConnectionError(f"cannot connect to WidowX AI controller at {self.host}: {exc}") from exc
            self.driver = driver

    def _configure(self, driver: ta.TrossenArmDriver) -> None:
        """configure(clear_error) + position mode, tried again (after cleanup) while only the UDP
        handshake is missed, up to ``HANDSHAKE_ATTEMPTS``; raises the vendor's last error."""
        for attempt in range(1, HANDSHAKE_ATTEMPTS + 1):
            try:
                driver.configure(ta.Model.wxai_v0, self.end_effector, self.host, True, self.connect_timeout_s)
                driver.set_all_modes(ta.Mode.position)
                return
            except _VENDOR_ERRORS as exc:
                if _HANDSHAKE_MARKER not in str(exc) or attempt == HANDSHAKE_ATTEMPTS:
                    raise
                log.warning("WidowX AI at %s: UDP handshake missed (attempt %d of %d), trying again",
                            self.host, attempt, HANDSHAKE_ATTEMPTS)
                _quiet_cleanup(driver)

    def close(self) -> None:
        with self._lock:
            driver, self.driver = self.driver, None
            if driver is not None:
                _quiet_cleanup(driver)

    @property
    def connected(self) -> bool:
        return self.driver is not None

    def _require(self) -> ta.TrossenArmDriver:
        if self.driver is None:
            raise ArmNotConnectedError(f"WidowX AI at {self.host} is not connected")
        return self.driver

    def _reconfigure(self) -> None:
        """cleanup + configure(clear_error) + position mode: the documented way out of a stale error."""
        driver = self._require()
        _quiet_cleanup(driver)
        try:
            self._configure(driver)
        except _VENDOR_ERRORS as exc:
            self.driver = None
            raise ArmConnectionError(f"WidowX AI at {self.host}: reconfigure failed: {exc}") from exc
        self.recoveries += 1

    def _call(self, what: str, fn, *args):
        """Run one vendor call; classify failures into unreachable (recovered) or connection lost."""
        with self._lock:
            self._require()
            try:
                return fn(*args)
            except _VENDOR_ERRORS as exc:
                msg = str(exc)
                if _IK_MARKER in msg:
                    # Either this call's own IK failed (driver still fine) or an earlier
                    # trajectory failed in the daemon (driver wedged): probe, recover if wedged.
                    first = msg.splitlines()[0]
                    try:
                        self.driver.get_all_positions()
                    except _VENDOR_ERRORS:
                        self._reconfigure()
                        raise UnreachableTargetError(
                            f"WidowX AI at {self.host}: an earlier trajectory failed ({first}); "
                            f"the driver was cleaned up and reconfigured during {what}"
                        ) from exc
                    raise UnreachableTargetError(f"WidowX AI at {self.host}: {what}: {first}") from exc
                self.close()
                raise ArmConnectionError(f"WidowX AI at {self.host}: {what} failed, driver closed: {msg.splitlines()[0]}") from exc

    # ---- state ----------------------------------------------------------------------------------
    def read(self) -> tuple[np.ndarray, np.ndarray, float]:
        """``(joint_positions (6,), ee_pose (7,), gripper_fraction)``."""

        def _read(d):
            return list(d.get_all_positions()), list(d.get_cartesian_positions())

        joints, cart = self._call("state read", _read, self._require())
        grip = float(np.clip(joints[-1] / GRIPPER_MAX_M, 0.0, 1.0))
        return np.asarray(joints[:-1], dtype=np.float64), cartesian_to_pose(cart), grip

    # ---- commands -------------------------------------------------------------------------------
    def command_pose(self, target_pose: np.ndarray, goal_time_s: float = 0.1, blocking: bool = False,
                     timeout_s: float = 10.0) -> None:
        """Move the end effector to the absolute base-frame ``target_pose (7,)`` in ``goal_time_s``."""
        goal = pose_to_cartesian(target_pose)
        self._call(
            f"pose target {np.round(goal, 4).tolist()}",
            lambda: self.driver.set_cartesian_positions(goal, ta.InterpolationSpace.joint, goal_time_s, False),
        )
        if blocking:
            self._wait(goal_time_s, timeout_s)

    def move_joints(self, joints: np.ndarray, goal_time_s: float = 2.0, timeout_s: float = 10.0) -> None:
        """Joint-space move of the 6 arm joints (rad), blocking with a deadline."""
        goal = np.asarray(joints, dtype=np.float64).reshape(6).tolist()
        self._call("joint move", lambda: self.driver.set_arm_positions(goal, goal_time_s, False))
        self._wait(goal_time_s, timeout_s)

    def command_gripper(self, fraction: float, goal_time_s: float = 0.3, blocking: bool = False,
                        timeout_s: float = 5.0) -> None:
        """Gripper 0 (closed) .. 1 (open); position mode (the simulated controller has no effort mode)."""
        pos = float(np.clip(fraction, 0.0, 1.0)) * GRIPPER_MAX_M
        self._call("gripper move", lambda: self.driver.set_gripper_position(pos, goal_time_s, False))
        if blocking:
            self._wait(goal_time_s, timeout_s)

    def hold(self) -> None:
        """Re-command the present joint positions (stops any running trajectory)."""
        if self.driver is None:
            return
        joints = self._call("hold", lambda: list(self.driver.get_arm_positions()))
        self._call("hold", lambda: self.driver.set_arm_positions(joints, 0.0, False))

    def _wait(self, goal_time_s: float, timeout_s: float) -> None:
        """Wait for a goal: sleep its duration, then until joint velocities settle (with a deadline)."""
        deadline = time.monotonic() + timeout_s
        time.sleep(goal_time_s)
        while True:
            vel = np.asarray(self._call("state read", lambda: list(self.driver.get_all_velocities())))
            if np.all(np.abs(vel) < 0.02):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"WidowX AI at {self.host}: motion did not settle within {timeout_s} s")
            time.sleep(0.02)


def _quiet_cleanup(driver: "ta.TrossenArmDriver") -> None:
    try:
        driver.cleanup()
    except _VENDOR_ERRORS as exc:  # the controller may already be gone
        log.debug("trossen cleanup failed: %s", exc)
