"""Forward / inverse kinematics of the WidowX 250 6-DoF from the sim's MJCF of its public dimensions.

The model is `hardware/sim/assets/widowx250.xml` (Interbotix wx250s joint origins and limits),
read as data so the real driver and the sim arm share ONE description of the arm. IK is damped
least squares on MuJoCo's site Jacobian, seeded from the current joints (10 Hz steps are small).
"""

from __future__ import annotations

import pathlib

import mujoco
import numpy as np

from hardware import geometry

MJCF_PATH = pathlib.Path(__file__).resolve().parents[1] / "sim" / "assets" / "widowx250.xml"
ARM_JOINTS = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate")
EE_SITE = "ee_site"


class IKError(ValueError):
    """No joint solution within tolerance (target out of reach or beyond joint limits)."""


class WidowX250Kinematics:
    """FK/IK for the 6 arm joints (rad, order ``ARM_JOINTS``); poses ``(7,)`` [x,y,z,qw,qx,qy,qz]."""

    def __init__(self, mjcf_path: pathlib.Path | str = MJCF_PATH):
        self.model = mujoco.MjModel.from_xml_path(str(mjcf_path))
        self.data = mujoco.MjData(self.model)
        jids = [mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in ARM_JOINTS]
        if min(jids) < 0:
            raise ValueError(f"{mjcf_path} lacks one of the joints {ARM_JOINTS}")
        self.qadr = np.array([self.model.jnt_qposadr[j] for j in jids])
        self.dadr = np.array([self.model.jnt_dofadr[j] for j in jids])
        self.lower = np.array([self.model.jnt_range[j][0] for j in jids])
        self.upper = np.array([self.model.jnt_range[j][1] for j in jids])
        self.site = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, EE_SITE)

    def fk(self, q: np.ndarray) -> np.ndarray:
        """End-effector (tool centre point) pose ``(7,)`` for joints ``q (6,)``."""
        self.data.qpos[self.qadr] = np.asarray(q, dtype=np.float64).reshape(6)
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)  # mj_jacSite needs the com-based dof frames
        pos = self.data.site_xpos[self.site].copy()
        return np.concatenate([pos, geometry.mat_to_quat(self.data.site_xmat[self.site])])

    def ik(
        self,
        target: np.ndarray,
        seed: np.ndarray,
        rot_weight: float = 0.5,
        pos_tol_m: float = 0.002,
        rot_tol_rad: float = 0.03,
        iterations: int = 100,
        damping: float = 1e-3,
    ) -> np.ndarray:
        """Joints ``(6,)`` whose FK reaches ``target (7,)``; raises IKError naming the residual.

        The wrist has only 5 useful DoF for an arbitrary pose when it is folded, so orientation
        is weighted by ``rot_weight`` (metres per radian) and both residuals are checked at the end.
        """
        target = np.asarray(target, dtype=np.float64).reshape(7)
        q = np.clip(np.asarray(seed, dtype=np.float64).reshape(6), self.lower, self.upper)
        jacp = np.zeros((3, self.model.nv))
        jacr = np.zeros((3, self.model.nv))
        for _ in range(iterations):
            pose = self.fk(q)
            e_pos = target[:3] - pose[:3]
            e_rot = geometry.quat_error(target[3:], pose[3:])
            if np.linalg.norm(e_pos) < pos_tol_m * 0.1 and np.linalg.norm(e_rot) < rot_tol_rad * 0.1:
                break
            mujoco.mj_jacSite(self.model, self.data, jacp, jacr, self.site)
            J = np.vstack([jacp[:, self.dadr], rot_weight * jacr[:, self.dadr]])
            e = np.concatenate([e_pos, rot_weight * e_rot])
            dq = J.T @ np.linalg.solve(J @ J.T + damping * np.eye(6), e)
            step = np.linalg.norm(dq)
            if step > 0.3:  # trust region: big jumps overshoot on this small arm
                dq *= 0.3 / step
            q = np.clip(q + dq, self.lower, self.upper)
        pose = self.fk(q)
        pos_err = float(np.linalg.norm(target[:3] - pose[:3]))
        rot_err = float(np.linalg.norm(geometry.quat_error(target[3:], pose[3:])))
        if pos_err > pos_tol_m or rot_err > rot_tol_rad:
            raise IKError(
                f"WidowX 250 IK: no solution for position {np.round(target[:3], 4).tolist()} "
                f"(best residual {pos_err * 1000:.1f} mm, {rot_err:.3f} rad)"
            )
        return q
