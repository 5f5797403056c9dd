"""Thin, testable layer over `franky` (franky-control 2.x): absolute Cartesian targets, gripper, state.

Everything vendor-specific for the Franka lives here; `hardware.franka.arm.FrankaArm` adds the
`Arm` contract (safety, named poses) on top.

Facts this code is built on (measured against franky-sim 1.0.4):
- without a real-time kernel libfranka refuses to run unless ``RealtimeConfig.Ignore``;
- ``ReferenceType.Relative`` motions are expressed in the END-EFFECTOR frame, not the base frame,
  so every command here is an ABSOLUTE base-frame target computed by the caller;
- franky quaternions are ``[x, y, z, w]``; the stack's poses are ``[x, y, z, qw, qx, qy, qz]``;
- the simulator enforces no workspace or reach limit, so targets out of the arm's reach are
  rejected here before they are sent;
- a grasp succeeds only if the final width lies in [width - eps_inner, width + eps_outer], so
  closing is commanded as a grasp at width 0 with a wide outer tolerance (narrower than any object);
- a killed server surfaces as ``franky.NetworkException`` on the next call (within ~0.5 s).
"""

from __future__ import annotations

import logging
import math
import threading

import franky
import numpy as np

from hardware import geometry

from hardware.arm import ArmConnectionError, ArmNotConnectedError, ArmError, UnreachableTargetError


log = logging.getLogger(__name__)

# FR3 reach: shoulder (joint 2 axis) 0.333 m above the base, 0.855 m maximum reach of the flange.
SHOULDER_HEIGHT_M = 0.333
MAX_REACH_M = 0.855
# Joint-space home of the FR3 (elbow up, hand pointing down).
HOME_JOINTS = (0.0, -math.pi / 4, 0.0, -3 * math.pi / 4, 0.0, math.pi / 2, math.pi / 4)

_FRANKY_ERRORS = tuple(
    getattr(franky, name)
    for name in (
        "NetworkException",
        "ControlException",
        "CommandException",
        "RealtimeException",
        "InvalidOperationException",
        "IncompatibleVersionException",
        "ProtocolException",
        "GripperException",
        "FrankaException",
    )
    if hasattr(franky, name)
)


def to_franky_affine(pose: np.ndarray) -> "franky.Affine":
    """Stack pose ``(7,)`` [x, y, z, qw, qx, qy, qz] -> franky Affine (quaternion [x, y, z, w])."""
    pose = np.asarray(pose, dtype=np.float64).reshape(7)
    qw, qx, qy, qz = pose[3:]
    return franky.Affine(pose[:3].tolist(), [qx, qy, qz, qw])


def from_franky_affine(affine: "franky.Affine") -> np.ndarray:
    """franky Affine -> stack pose ``(7,)`` [x, y, z, qw, qx, qy, qz] with qw >= 0."""
    qx, qy, qz, qw = np.asarray(affine.quaternion, dtype=np.float64)
    q = geometry.normalize_quat([qw, qx, qy, qz])
    return np.concatenate([np.asarray(affine.translation, dtype=np.float64), q])


def check_reachable(pose: np.ndarray, margin_m: float = 0.02) -> None:
    """Raise UnreachableTargetError if ``pose (7,)`` lies beyond the FR3's reach sphere."""
    p = np.asarray(pose, dtype=np.float64)[:3]
    dist = float(np.linalg.norm(p - np.array([0.0, 0.0, SHOULDER_HEIGHT_M])))
    if not np.all(np.isfinite(p)) or dist > MAX_REACH_M - margin_m:
        raise UnreachableTargetError(
            f"Franka target position {np.round(p, 4).tolist()} is {dist:.3f} m from the shoulder, "
            f"beyond the reach of {MAX_REACH_M - margin_m:.3f} m; nothing was sent"
        )


class FrankyClient:
    """One FR3 + Franka Hand through franky. Not thread-safe by itself: the arm serialises calls."""

    def __init__(
        self,
        hostname: str,
        dynamics_factor: float = 0.2,
        gripper_speed_mps: float = 0.05,
        gripper_force_n: float = 20.0,
        use_gripper: bool = True,
        connect_timeout_s: float = 5.0,
    ):
        self.connect_timeout_s = connect_timeout_s
        self.hostname = hostname
        self.dynamics_factor = dynamics_factor
        self.gripper_speed_mps = gripper_speed_mps
        self.gripper_force_n = gripper_force_n
        self.use_gripper = use_gripper
        self.robot: franky.Robot | None = None
        self.gripper: franky.Gripper | None = None
        self._gripper_future = None
        self._gripper_commanded: float | None = None
        self._lock = threading.RLock()

    # ---- lifecycle ------------------------------------------------------------------------------
    def connect(self) -> None:
        """Open robot + gripper links. libfranka blocks (GIL released) while another client holds
        the robot, so the connection is made on a worker thread and given up after a deadline."""
        result: dict = {}

        def _open() -> None:
            try:
                robot = franky.Robot(self.hostname, realtime_config=franky.RealtimeConfig.Ignore)
                robot.relative_dynamics_factor = self.dynamics_factor
                robot.recover_from_errors()
                gripper = franky.Gripper(self.hostname) if self.use_gripper else None
                result["ok"] = (robot, gripper)
            except _FRANKY_ERRORS as exc:
                result["error"] = exc

        worker = threading.Thread(target=_open, daemon=True, name=f"franky-connect-{self.hostname}")
        worker.start()
        worker.join(self.connect_timeout_s)
        if worker.is_alive():
            raise ArmConnectionError(
                f"Franka at {self.hostname} did not accept a connection within {self.connect_timeout_s} s "
                "(is another client connected, or FCI disabled?)"
            )
        if "error" in result:
            raise ArmConnectionError(f"cannot connect to Franka at {self.hostname}: {result['error']}") from result["error"]
        self.robot, self.gripper = result["ok"]

    def close(self) -> None:
        with self._lock:
            robot, self.robot, self.gripper = self.robot, None, None
            if robot is not None:
                try:
                    robot.stop()
                except Exception as exc:  # the link may already be gone: closing must not raise
                    log.debug("franka stop on close failed: %s", exc)

    @property
    def connected(self) -> bool:
        return self.robot is not None

    def _require(self) -> franky.Robot:
        if self.robot is None:
            raise ArmNotConnectedError(f"Franka at {self.hostname} is not connected")
        return self.robot

    def _lost(self, exc: Exception, what: str) -> ArmError:
        """Map a franky failure: network errors close the client (ArmConnectionError); control
        errors are recovered with ``recover_from_errors`` (ArmError, the client stays usable)."""
        if isinstance(exc, getattr(franky, "NetworkException", ())):
            self.robot = self.gripper = None
            return ArmConnectionError(f"Franka at {self.hostname}: connection lost during {what}: {exc}")
        try:
            if self.robot is not None:
                self.robot.recover_from_errors()
        except _FRANKY_ERRORS as again:
            self.robot = self.gripper = None
            return ArmConnectionError(f"Franka at {self.hostname}: {what} failed ({exc}) and recovery failed ({again})")
        return ArmError(f"Franka at {self.hostname}: {what} failed, errors recovered: {exc}")

    # ---- state ----------------------------------------------------------------------------------
    def read(self) -> tuple[np.ndarray, np.ndarray, float]:
        """``(joint_positions (7,), ee_pose (7,), gripper_fraction)`` from the latest robot state."""
        with self._lock:
            robot = self._require()
            try:
                joints = np.asarray(robot.current_joint_positions, dtype=np.float64).reshape(7)
                pose = from_franky_affine(robot.current_cartesian_state.pose.end_effector_pose)
                grip = 1.0
                if self.gripper is not None:
                    grip = float(np.clip(self.gripper.width / max(self.gripper.max_width, 1e-6), 0.0, 1.0))
            except _FRANKY_ERRORS as exc:
                raise self._lost(exc, "state read") from exc
            return joints, pose, grip

    # ---- commands -------------------------------------------------------------------------------
    def command_pose(self, target_pose: np.ndarray, asynchronous: bool = True, timeout_s: float = 10.0) -> None:
        """Send an ABSOLUTE base-frame target ``(7,)``; the new motion replaces the running one."""
        check_reachable(target_pose)
        with self._lock:
            robot = self._require()
            motion = franky.CartesianMotion(to_franky_affine(target_pose), franky.ReferenceType.Absolute)
            try:
                try:
                    robot.move(motion, asynchronous=True)
                except franky.ControlException as exc:
                    # A motion stopped by hold() reports "preempted" on the NEXT move: that error
                    # belongs to the old motion, so send the new one again.
                    if "preempted" not in str(exc):
                        raise
                    robot.move(motion, asynchronous=True)
                if not asynchronous:
                    self._join(robot, timeout_s, "Cartesian motion")
            except _FRANKY_ERRORS as exc:
                raise self._lost(exc, "Cartesian motion") from exc

    def move_joints(self, joints: np.ndarray, timeout_s: float = 30.0) -> None:
        """Blocking joint-space move to ``joints (7,)`` rad."""
        with self._lock:
            robot = self._require()
            motion = franky.JointWaypointMotion([franky.JointWaypoint(np.asarray(joints, dtype=np.float64).tolist())])
            try:
                robot.move(motion, asynchronous=True)
                self._join(robot, timeout_s, "joint motion")
            except _FRANKY_ERRORS as exc:
                raise self._lost(exc, "joint motion") from exc

    def _join(self, robot: franky.Robot, timeout_s: float, what: str) -> None:
        if not robot.join_motion(timeout=timeout_s):
            robot.stop()
            raise TimeoutError(f"Franka at {self.hostname}: {what} did not finish within {timeout_s} s")

    def hold(self) -> None:
        """Stop the running motion (the robot holds where it is)."""
        with self._lock:
            if self.robot is None:
                return
            try:
                self.robot.stop()
            except _FRANKY_ERRORS as exc:
                raise self._lost(exc, "stop") from exc
            try:  # collect the stopped motion's "preempted" result so the next move starts clean
                self.robot.join_motion(timeout=1.0)
            except franky.ControlException:
                pass
            except _FRANKY_ERRORS as exc:
                raise self._lost(exc, "stop") from exc

    def command_gripper(self, fraction: float, wait: bool = False, timeout_s: float = 5.0) -> None:
        """Gripper target 0 (closed) .. 1 (open). Closing is a grasp narrower than any object."""
        if self.gripper is None:
            return
        fraction = float(np.clip(fraction, 0.0, 1.0))
        with self._lock:
            if self._gripper_commanded is not None and abs(fraction - self._gripper_commanded) < 0.05 and not wait:
                return  # re-sending the same width every tick would restart the motion
            try:
                self.gripper.stop()  # pre-empt a running move/grasp so the new target wins
                if fraction < 0.05:
                    max_w = self.gripper.max_width
                    fut = self.gripper.grasp_async(0.0, self.gripper_speed_mps, self.gripper_force_n, 0.005, max_w)
                else:
                    fut = self.gripper.move_async(fraction * self.gripper.max_width, self.gripper_speed_mps)
            except _FRANKY_ERRORS as exc:
                raise self._lost(exc, "gripper command") from exc
            self._gripper_future, self._gripper_commanded = fut, fraction
        if wait:
            if not fut.wait(timeout_s):
                raise TimeoutError(f"Franka gripper at {self.hostname} did not settle within {timeout_s} s")
            try:
                fut.get()
            except _FRANKY_ERRORS as exc:
                raise self._lost(exc, "gripper command") from exc

    def wait_until_still(self, timeout_s: float = 5.0) -> None:
        """Block until the running motion (if any) finished."""
        with self._lock:
            robot = self._require()
            self._join(robot, timeout_s, "motion")

