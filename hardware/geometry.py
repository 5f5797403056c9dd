"""Pose math shared by arms, safety and sim: thin wrappers over MuJoCo's own quaternion routines.

Conventions (the whole stack uses them): a pose is ``(7,)`` ``[x, y, z, qw, qx, qy, qz]`` in the
robot base frame, metres; quaternions are scalar-first and unit-norm; a rotation delta is a
rotation vector (axis * angle, radians) expressed in the base frame and applied on the left
(``q_new = q(delta) * q``), so ``[droll, dpitch, dyaw]`` of an action rotate about the base axes.
"""

from __future__ import annotations

import ctypes.util
import os
import sys


def _default_headless_gl() -> None:
    """Pick MuJoCo's offscreen GL backend before mujoco is first imported (it reads MUJOCO_GL once).

    This is the first hardware module to import mujoco, so sim rendering works headless without
    the caller knowing: EGL (Mesa or a GPU driver) when libEGL exists, else OSMesa. An explicit
    MUJOCO_GL from the environment always wins.
    """
    if "mujoco" in sys.modules or "MUJOCO_GL" in os.environ:
        return
    backend = "egl" if ctypes.util.find_library("EGL") else ("osmesa" if ctypes.util.find_library("OSMesa") else None)
    if backend:
        os.environ["MUJOCO_GL"] = backend
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)


_default_headless_gl()

import mujoco  # noqa: E402  (after choosing the GL backend)
import numpy as np  # noqa: E402

IDENTITY_QUAT = np.array([1.0, 0.0, 0.0, 0.0])


def normalize_quat(q: np.ndarray) -> np.ndarray:
    """Unit quaternion ``(4,)`` with a non-negative scalar part (one of the two equal signs)."""
    q = np.asarray(q, dtype=np.float64).reshape(4)
    n = np.linalg.norm(q)
    if not np.isfinite(n) or n < 1e-12:
        raise ValueError(f"quaternion {q.tolist()} cannot be normalised")
    q = q / n
    return -q if q[0] < 0 else q


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` of two ``(4,)`` quaternions."""
    out = np.zeros(4)
    mujoco.mju_mulQuat(out, np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    return out


def rotvec_to_quat(rotvec: np.ndarray) -> np.ndarray:
    """``(3,)`` rotation vector (axis * angle, rad) -> ``(4,)`` unit quaternion."""
    rotvec = np.asarray(rotvec, dtype=np.float64).reshape(3)
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return IDENTITY_QUAT.copy()
    out = np.zeros(4)
    mujoco.mju_axisAngle2Quat(out, rotvec / angle, angle)
    return out


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    """``(4,)`` unit quaternion -> ``(3,)`` rotation vector (shortest, angle in [0, pi])."""
    out = np.zeros(3)
    mujoco.mju_quat2Vel(out, normalize_quat(q), 1.0)
    return out


def quat_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Base-frame rotation vector ``(3,)`` that turns ``current`` into ``target``: q(err) * current = target."""
    cur_inv = np.zeros(4)
    mujoco.mju_negQuat(cur_inv, np.asarray(current, dtype=np.float64))
    return quat_to_rotvec(quat_mul(np.asarray(target, dtype=np.float64), cur_inv))


def apply_delta(pose: np.ndarray, dpos: np.ndarray, drot: np.ndarray) -> np.ndarray:
    """Pose ``(7,)`` moved by ``dpos (3,)`` metres and rotated by base-frame rotation vector ``drot (3,)``."""
    pose = np.asarray(pose, dtype=np.float64).reshape(7)
    out = np.empty(7)
    out[:3] = pose[:3] + np.asarray(dpos, dtype=np.float64).reshape(3)
    out[3:] = normalize_quat(quat_mul(rotvec_to_quat(drot), pose[3:]))
    return out


def mat_to_quat(mat: np.ndarray) -> np.ndarray:
    """``(3,3)`` (or flat ``(9,)``) rotation matrix -> ``(4,)`` unit quaternion."""
    out = np.zeros(4)
    mujoco.mju_mat2Quat(out, np.asarray(mat, dtype=np.float64).reshape(9))
    return normalize_quat(out)


def quat_to_mat(q: np.ndarray) -> np.ndarray:
    """``(4,)`` quaternion -> ``(3,3)`` rotation matrix."""
    out = np.zeros(9)
    mujoco.mju_quat2Mat(out, normalize_quat(q))
    return out.reshape(3, 3)


def euler_to_quat(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Extrinsic x-y-z (roll about base x, then pitch about base y, then yaw about base z) -> ``(4,)``."""
    qx = rotvec_to_quat([roll, 0.0, 0.0])
    qy = rotvec_to_quat([0.0, pitch, 0.0])
    qz = rotvec_to_quat([0.0, 0.0, yaw])
    return normalize_quat(quat_mul(qz, quat_mul(qy, qx)))


def yaw_of(q: np.ndarray) -> float:
    """Heading (rad) of the body x axis projected on the base xy plane."""
    m = quat_to_mat(q)
    return float(np.arctan2(m[1, 0], m[0, 0]))
