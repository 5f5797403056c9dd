"""Scripted experts for the sim scenes, acting in the policy's own action space.

An expert is a callable ``obs: ArmObservation -> action (7,) float32`` in [-1, 1]. It reads the
arm observation plus privileged object poses from the scene, steers the end effector with a
proportional controller towards waypoints of a small state machine, and adds Gaussian noise
(std ``noise``, in normalised action units) to the translation and rotation entries, so demos
and prior data cover recoveries. Because it outputs the normalised delta action, its demos go
through exactly the same safety/IK path as a policy's actions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from hardware import geometry
from hardware.arm import ArmObservation

OPEN, CLOSED = 1.0, -1.0
#: opening used around the cube: wide enough for it, narrow enough to clear a bowl wall
PARTLY_OPEN = 0.3
#: how far (m, at object scale 1) the grasp point stays inside the bowl wall: half a WidowX 250
#: finger pad (1.2 cm) plus 6 mm, measured so the pads clear the wall's inside
WALL_CLEARANCE = 0.018
#: how far (m, at object scale 1) each finger sits from the grasp point along the closing axis
#: when partly open; the curved wall comes this much closer there
FINGER_REACH = 0.025


@dataclass(frozen=True)
class DescentGate:
    """When the pick expert starts down from its hover point onto the cube."""

    xy_m: float  # hand-to-grasp-point distance (m, at object scale 1) under which it descends
    yaw_rad: float  # grasp-yaw error under which it descends (pi: any; it turns on the way down)

    def __post_init__(self) -> None:
        if not (self.xy_m > 0 and self.yaw_rad > 0):
            raise ValueError(f"descent gate tolerances must be > 0, got {self}")


#: "strict" lines up over the cube and turns before it descends (8 mm, 8.6 degrees): exact, but a
#: learner from 64 px images cannot see when that fine gate opens, so its policy learns to hover
#: (bench/session_runs.md, "DAgger"). "loose" descends once within 2 cm and finishes the turn on
#: the way down, a rule a learner can follow.
DESCENT_GATES = {"strict": DescentGate(0.008, 0.15), "loose": DescentGate(0.02, math.pi)}


class _Expert:
    def __init__(self, scene, task_id: str, noise: float, rng: np.random.Generator):
        if not (0.0 <= noise <= 1.0):
            raise ValueError(f"expert noise must be in [0, 1], got {noise!r}")
        self.scene = scene
        self.task_id = task_id
        self.noise = float(noise)
        self.rng = rng
        self.cfg = scene.arm.config
        self.s = scene.robot.object_scale
        # gripper-down orientation of the reset pose: experts keep it, turning only about z
        self.down_quat = _reset_quat(scene)
        self.phase = "start"
        self.steps = 0
        self.done = False

    def _move(self, obs: ArmObservation, target_xyz: np.ndarray, yaw: float = 0.0, gain: float = 1.0) -> np.ndarray:
        """Normalised translation/rotation toward ``target_xyz`` with the gripper down at ``yaw``."""
        a = np.zeros(7)
        a[:3] = gain * (np.asarray(target_xyz) - obs.ee_pose[:3]) / self.cfg.max_translation_m
        a[3:6] = geometry.quat_error(self._down_at(yaw), obs.ee_pose[3:]) / self.cfg.max_rotation_rad
        return a

    def _down_at(self, yaw: float) -> np.ndarray:
        """Tool quaternion (4,) of the gripper pointing down, turned ``yaw`` rad about z from reset."""
        return geometry.quat_mul(geometry.rotvec_to_quat([0.0, 0.0, yaw]), self.down_quat)

    def yaw_error(self, obs: ArmObservation, yaw: float) -> float:
        """Signed turn (rad) about z from the tool's orientation in ``obs`` to gripper-down at ``yaw``."""
        return float(geometry.quat_error(self._down_at(yaw), obs.ee_pose[3:])[2])

    def _travel(self, obs: ArmObservation, target_xy: np.ndarray, z: float, yaw: float = 0.0) -> np.ndarray:
        """Go to ``(target_xy, z)`` at height ``z``: rise first when below it, so nothing is swept over."""
        ee = obs.ee_pose[:3]
        if ee[2] < z - 0.015 and np.linalg.norm(ee[:2] - target_xy) > 0.01 * self.s:
            return self._move(obs, np.array([ee[0], ee[1], z]), yaw)
        return self._move(obs, np.array([target_xy[0], target_xy[1], z]), yaw)

    def _finish(self, a: np.ndarray) -> np.ndarray:
        a = a.copy()
        if self.noise > 0:
            a[:6] += self.rng.normal(0.0, self.noise, 6)
        self.steps += 1
        return np.clip(a, -1.0, 1.0).astype(np.float32)


def _reset_quat(scene) -> np.ndarray:
    """Tool orientation at the robot's reset pose (gripper pointing down)."""
    w = scene.world
    scratch = mujoco.MjData(w.model)
    scratch.qpos[w.arm_qadr] = scene.robot.reset_q
    mujoco.mj_kinematics(w.model, scratch)
    return geometry.mat_to_quat(scratch.site_xmat[w.ee_site])


def _wrap_quarter(angle: float) -> float:
    """Angle modulo 90 degrees into [-45, 45) degrees (a cube looks the same every quarter turn)."""
    return (angle + math.pi / 4) % (math.pi / 2) - math.pi / 4


class PickPlaceExpert(_Expert):
    """Pick the cube and put it at a place target (in the bowl, or on the table outside it).

    ``gate`` names a ``DESCENT_GATES`` entry: when the hand starts down onto the cube.
    """

    def __init__(self, scene, task_id: str, noise: float, rng: np.random.Generator, gate: str = "strict"):
        super().__init__(scene, task_id, noise, rng)
        if gate not in DESCENT_GATES:
            raise ValueError(f"unknown descent gate {gate!r}; expected one of {sorted(DESCENT_GATES)}")
        self.gate = DESCENT_GATES[gate]
        self.place_xy = scene.place_target(task_id, rng)
        self.hover = 0.08 * self.s
        self.wait = 0
        self.grasp_yaw: float | None = None
        self.grasp_shift = np.zeros(2)  # grasp point minus cube centre (xy), chosen with the yaw
        self.last_gripper = 1.0

    def _cube(self, obs: ArmObservation) -> tuple[np.ndarray, float]:
        """Cube position and the gripper yaw to grasp it with (chosen once per approach).

        The fingers must line up with a pair of cube faces (yaw modulo 90 degrees); of those, pick
        the one whose finger axis is tangential to the bowl, so an open finger never lands on the
        bowl wall when the cube sits near it; ties go to the smallest turn from where the tool is.
        A cube against the inside of the wall is grasped by ``_against_wall`` instead.
        """
        p = self.scene.privileged()
        pose = p["cube_pose"]
        if self.grasp_yaw is None:
            yaw_now = geometry.quat_error(obs.ee_pose[3:], self.down_quat)[2]
            radial = pose[:2] - p["bowl_xy"]
            self.grasp_shift = np.zeros(2)
            if (wall := self._against_wall(radial, yaw_now)) is not None:
                self.grasp_yaw, self.grasp_shift = wall
                return pose[:3], self.grasp_yaw
            base = _wrap_quarter(geometry.yaw_of(pose[3:]))
            near_wall = np.linalg.norm(radial) > 0.5 * self.scene.cube_half
            beside = self._nearest_distractor(pose[:2], abs(np.linalg.norm(radial) - self.scene.bowl_radius))
            if beside is not None:  # closer than the bowl wall: keep the fingers off it instead
                radial, near_wall = pose[:2] - beside, True
            phi = math.atan2(radial[1], radial[0])
            # the finger axis is the tool y axis: at yaw offset d it points along world angle d + 90 deg
            candidates = [base + k * math.pi / 2 for k in (-1, 0, 1)]
            self.grasp_yaw = min(
                candidates,
                key=lambda d: (round(abs(math.sin(d - phi)), 1) if near_wall else 0.0, abs(d - yaw_now)),
            )
        return pose[:3], self.grasp_yaw

    def _against_wall(self, radial: np.ndarray, yaw_now: float) -> tuple[float, np.ndarray] | None:
        """Grasp yaw and shift (xy) for a cube inside the bowl within a cube width of its wall.

        There a face-aligned grasp puts a finger pad on the wall (a forward policy that drops the
        cube against it left "take out" failing 8 times in a row): close the fingers exactly
        tangentially instead, off centre towards the bowl's middle so the pads clear the wall; the
        squeeze turns the cube square to the fingers.
        """
        off, r = float(np.linalg.norm(radial)), self.scene.bowl_radius
        if not (r - 2.0 * self.scene.cube_half < off < r):
            return None
        u = radial / off
        phi = math.atan2(u[1], u[0])  # finger axis tangential: yaw offset phi, modulo a half turn
        yaw = min((phi + k * math.pi for k in (-2, -1, 0, 1, 2)), key=lambda d: abs(d - yaw_now))
        reach = FINGER_REACH * self.s
        grasp_off = min(off, r - WALL_CLEARANCE * self.s - reach**2 / (2 * r))
        return yaw, (grasp_off - off) * u

    def _nearest_distractor(self, cube_xy: np.ndarray, wall_gap: float) -> np.ndarray | None:
        """The distractor nearer the cube than ``wall_gap`` (metres) and within 6 cm, if any (xy)."""
        from hardware.sim.scenes import _distractor_xys

        xys = _distractor_xys(self.scene)
        if not xys:
            return None
        near = min(xys, key=lambda xy: float(np.linalg.norm(xy - cube_xy)))
        gap = float(np.linalg.norm(near - cube_xy)) - 0.02 * self.s
        return near if gap < min(wall_gap, 0.06 * self.s) else None

    def _enter(self, phase: str) -> None:
        self.phase, self.wait = phase, 0
        if phase == "approach":
            self.grasp_yaw = None  # re-choose the grasp yaw at each (re-)approach

    def _holding(self, obs: ArmObservation, cube_xyz: np.ndarray) -> bool:
        """Whether the cube (its centre ``cube_xyz``) sits between the (not fully open) fingers."""
        return bool(np.linalg.norm(cube_xyz - obs.ee_pose[:3]) < 1.5 * self.scene.cube_half and obs.gripper < 0.9)

    def _gripping(self, obs: ArmObservation) -> bool:
        """Whether the hand was told to close and holds the cube: at a takeover, fingers partly
        open around the cube on the way down are not yet a grasp."""
        partly_open = (1.0 + PARTLY_OPEN) / 2.0  # as an opening in [0, 1], as the world reports targets
        cube = self.scene.privileged()["cube_pose"][:3]
        return self._holding(obs, cube) and self.scene.world.gripper_target() < 0.5 * partly_open

    def _lined_up(self, obs: ArmObservation, grasp_xy: np.ndarray, cube_yaw: float) -> bool:
        """Whether the hand is close enough over the grasp point (xy) and turned to the grasp yaw to
        start down, by ``self.gate``."""
        near = np.linalg.norm(obs.ee_pose[:2] - grasp_xy) < self.gate.xy_m * self.s
        return bool(near and abs(self.yaw_error(obs, cube_yaw)) < self.gate.yaw_rad)

    def __call__(self, obs: ArmObservation) -> np.ndarray:
        if self.phase == "start":
            # an expert that takes over from a policy (a simulated operator) may find the cube
            # already held: carry it on rather than open the hand and start the grasp again
            self._enter("carry" if self._gripping(obs) else "approach")
        cube, cube_yaw = self._cube(obs)
        ee = obs.ee_pose[:3]
        c = self.scene.cube_half
        grasp_z = max(cube[2] + 0.2 * c, self.scene.robot.tcp_to_tip + 0.003)
        carry_z = max(self.hover, self.scene.bowl_height + 2.5 * c + 0.02)
        grip = OPEN
        a = np.zeros(7)
        in_hand = self._holding(obs, cube)
        grasp_xy = cube[:2] + self.grasp_shift
        if self.steps == 0 and self.phase == "approach" and ee[2] < cube[2] + self.hover and self._lined_up(obs, grasp_xy, cube_yaw):
            self._enter("descend")  # took over above the cube, hand open and turned right: go on down
        if self.phase in ("carry", "lower") and not in_hand:
            self._enter("approach")  # dropped it: start over
        self.wait += 1
        if self.phase == "approach":
            a = self._travel(obs, grasp_xy, cube[2] + self.hover, cube_yaw)
            if self._lined_up(obs, grasp_xy, cube_yaw):
                self._enter("descend")
        elif self.phase == "descend":
            a = self._move(obs, np.array([grasp_xy[0], grasp_xy[1], grasp_z]), cube_yaw)
            grip = PARTLY_OPEN
            # drift allowance well beyond the gate, so noise alone does not send it back up
            if np.linalg.norm(ee[:2] - grasp_xy) > max(0.02, 1.5 * self.gate.xy_m) * self.s or self.wait > 12:
                self._enter("approach")  # drifted off, or blocked on the way down
            elif abs(ee[2] - grasp_z) < 0.006:
                self._enter("grasp")
        elif self.phase == "grasp":
            a = self._move(obs, np.array([grasp_xy[0], grasp_xy[1], grasp_z]), cube_yaw, gain=0.5)
            grip = CLOSED
            # wait until the fingers stop moving (grippers differ a lot in speed)
            settled = self.wait >= 2 and abs(obs.gripper - self.last_gripper) < 0.01
            if settled and obs.gripper < 0.02:
                self._enter("approach")  # closed on nothing
            elif settled or self.wait > 15:
                self._enter("carry")
        elif self.phase == "carry":
            grip = CLOSED
            target = np.array([self.place_xy[0], self.place_xy[1], carry_z])
            if ee[2] < carry_z - 0.02 and np.linalg.norm(ee[:2] - self.place_xy) > 0.03 * self.s:
                target = np.array([ee[0], ee[1], carry_z])  # lift first, then travel
            a = self._move(obs, target, cube_yaw)
            if np.linalg.norm(ee[:2] - self.place_xy) < 0.01 * self.s:
                self._enter("lower")
        elif self.phase == "lower":
            grip = CLOSED
            drop_z = (0.006 + c + 0.2 * c + 0.01) if self.task_id == "put_cube_in_bowl" else (c + 0.2 * c + 0.004)
            a = self._move(obs, np.array([self.place_xy[0], self.place_xy[1], drop_z]), cube_yaw)
            if ee[2] < drop_z + 0.006 or self.wait > 12:
                self._enter("release")
        elif self.phase == "release":
            if self.wait >= 2:
                self._enter("retreat")
        elif self.phase == "retreat":
            a = self._move(obs, np.array([ee[0], ee[1], carry_z + 0.02]), 0.0)
            if self.scene.success(self.task_id):
                self.done = True
            elif obs.ee_pose[2] > carry_z:
                self._enter("approach")  # missed: try again somewhere else
                self.place_xy = self.scene.place_target(self.task_id, self.rng)
        a[6] = grip
        self.last_gripper = obs.gripper
        return self._finish(a)


class PushExpert(_Expert):
    """Push the block onto the goal square with the closed gripper, re-approaching when it drifts."""

    def __init__(self, scene, task_id: str, noise: float, rng: np.random.Generator):
        super().__init__(scene, task_id, noise, rng)
        self.hover = 0.07 * self.s
        self.wait = 0

    def __call__(self, obs: ArmObservation) -> np.ndarray:
        p = self.scene.privileged()
        block = p["block_pose"][:3]
        goal = self.scene.goal_xy(self.task_id)
        ee = obs.ee_pose[:3]
        b = self.scene.block_half
        push_z = max(b * 0.7, self.scene.robot.tcp_to_tip + 0.004)
        d = goal - block[:2]
        dist = float(np.linalg.norm(d))
        u = d / max(dist, 1e-6)
        behind = block[:2] - u * (b + 0.02 * self.s)
        # lateral offset of the tool from the push line through the block centre
        rel = ee[:2] - block[:2]
        lateral = float(rel[0] * -u[1] + rel[1] * u[0])
        along = float(rel @ u)
        a = np.zeros(7)
        if self.phase == "start":
            self.phase = "approach"
        if self.scene.success(self.task_id) and self.phase != "approach":
            self.phase = "retreat"
        self.wait += 1
        if self.phase == "approach":
            a = self._travel(obs, behind, self.hover)
            if np.linalg.norm(ee[:2] - behind) < 0.01 * self.s and ee[2] > self.hover - 0.02:
                self.phase, self.wait = "descend", 0
        elif self.phase == "descend":
            a = self._move(obs, np.array([behind[0], behind[1], push_z]))
            if np.linalg.norm(ee[:2] - behind) > 0.025 * self.s or self.wait > 10:
                self.phase, self.wait = "lift", 0  # drifted, or landed on something
            elif ee[2] < push_z + 0.008:
                self.phase = "push"
        elif self.phase == "push":
            # aim a little past the block centre along the line, correcting the lateral offset
            target = block[:2] - u * (b + 0.005) + u * min(dist, 0.03 * self.s)
            a = self._move(obs, np.array([target[0], target[1], push_z]), gain=0.8)
            if abs(lateral) > 0.6 * b or along > -0.5 * b or ee[2] > push_z + 0.03:
                self.phase = "lift"
        elif self.phase == "lift":
            a = self._move(obs, np.array([ee[0] - u[0] * 0.01, ee[1] - u[1] * 0.01, self.hover]))
            if ee[2] > self.hover - 0.01:
                self.phase = "approach"
        elif self.phase == "retreat":
            a = self._move(obs, np.array([ee[0], ee[1], self.hover]))
            if not self.scene.success(self.task_id):
                self.phase = "approach"
            else:
                self.done = True
        a[6] = CLOSED
        return self._finish(a)
