"""One MuJoCo world: a table, lights, cameras, an attached robot model and task objects.

Owns ``model``/``data``, steps physics in SIMULATED time (never wall time: the sim may run slower
than real time under load), solves IK with MuJoCo's own site Jacobian (damped least squares),
renders offscreen, and packs the whole world into one state vector so another process can
mirror it (physics state from ``mj_getState`` + the appearance parameters randomisation changes).

Rendering is kept cheap: no shadows, no MSAA, simple geoms, one directional light.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

import mujoco
import numpy as np

from hardware import geometry
from hardware.sim.robots import RobotModel

ROBOT_PREFIX = "robot/"
#: Everything that evolves in time or is set by the user: qpos, qvel, act, ctrl, mocap, warmstart...
STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION


def state_time(x: np.ndarray) -> float:
    """Simulated time (s) of a ``SimWorld.state()`` vector: MuJoCo puts time first in the state."""
    return float(np.asarray(x).reshape(-1)[0])


def look_at_quat(pos: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Quaternion of a MuJoCo camera at ``pos`` looking at ``target`` (camera looks along its -z)."""
    pos, target, up = (np.asarray(v, dtype=np.float64) for v in (pos, target, up))
    back = pos - target
    back /= np.linalg.norm(back)
    right = np.cross(up, back)
    right /= np.linalg.norm(right)
    cam_up = np.cross(back, right)
    return geometry.mat_to_quat(np.stack([right, cam_up, back], axis=1))


@dataclass
class AppearanceParam:
    """One model array slice that randomisation changes and the state vector carries."""

    attr: str  # MjModel attribute, e.g. "geom_rgba", "light_diffuse"
    index: int  # row
    cols: slice  # columns within the row


class SimWorld:
    """A compiled MuJoCo world with one robot; thread-safe through ``lock``."""

    def __init__(
        self,
        robot: RobotModel,
        add_objects: Callable[[mujoco.MjSpec, "SimWorld"], None] | None = None,
        timestep: float = 0.004,
        front_camera: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None,
        max_image_size: int = 256,
        fast_render: bool = True,
    ):
        self.robot = robot
        self.lock = threading.RLock()
        self.appearance: list[AppearanceParam] = []
        spec = self._build_spec(robot, add_objects, timestep, front_camera, max_image_size)
        self.spec = spec
        self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        self._ik_data = mujoco.MjData(self.model)
        self._index_robot()
        self._renderers: dict[tuple[int, int, int], mujoco.Renderer] = {}
        self._scene_option = mujoco.MjvOption()
        if fast_render:
            # Vendor arms draw detailed meshes in geom group 2 and collide with coarse geoms in
            # group 3: drawing the coarse ones is several times faster (FR3: ~45 ms -> ~5 ms at
            # 128x128 on llvmpipe). Task objects and our WidowX 250 live in groups 0 and 1.
            self._scene_option.geomgroup[:] = [1, 1, 0, 1, 0, 0]
        self.substep_hooks: list[Callable[[float], None]] = []  # called every ~20 ms of sim time
        self.set_joints(np.asarray(robot.reset_q), gripper=1.0)

    # ---- building -----------------------------------------------------------------------------
    def _build_spec(self, robot, add_objects, timestep, front_camera, max_image_size) -> mujoco.MjSpec:
        spec = mujoco.MjSpec()
        spec.modelname = f"{robot.name}_world"
        spec.option.timestep = timestep
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
        spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
        spec.option.impratio = 5.0
        spec.visual.quality.shadowsize = 0  # no shadows: rendering stays cheap
        spec.visual.quality.offsamples = 0  # no MSAA
        spec.visual.global_.offwidth = max(640, max_image_size)
        spec.visual.global_.offheight = max(480, max_image_size)
        spec.visual.headlight.ambient = [0.35, 0.35, 0.35]
        spec.visual.headlight.diffuse = [0.45, 0.45, 0.45]
        spec.visual.headlight.specular = [0.0, 0.0, 0.0]
        spec.visual.map.znear = 0.01
        s = robot.object_scale
        cx, cy = robot.workspace_center
        bx, by, bz = robot.base_pos
        wb = spec.worldbody
        self.key_light = wb.add_light(
            name="key", pos=[bx + cx, by, 1.5], dir=[0.0, 0.0, -1.0], diffuse=[0.6, 0.6, 0.6], castshadow=False
        )
        self.key_light.type = mujoco.mjtLightType.mjLIGHT_DIRECTIONAL
        # Table top at z = 0 under the robot base; a floor far below for the background.
        wb.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3, 3, 0.1], pos=[0, 0, -0.75], rgba=[0.35, 0.33, 0.3, 1])
        half = 0.45 * s
        self.table = wb.add_geom(
            name="table",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[half, half, 0.02],
            pos=[bx + cx, by, -0.02],
            rgba=[0.62, 0.5, 0.38, 1],
            friction=[1.0, 0.005, 0.0001],
        )
        # Fixed "front" camera over the shoulder of the robot (BridgeData-like), looking at the workspace.
        if front_camera is None:
            eye = (bx - 0.02 * s, by + 0.24 * s, 0.4 * s)
            target = (bx + cx + 0.02 * s, by - 0.01 * s, 0.0)
        else:
            eye, target = front_camera
        wb.add_camera(name="front", pos=list(eye), quat=list(look_at_quat(eye, target)), fovy=48)
        if add_objects is not None:
            add_objects(spec, self)
        frame = wb.add_frame(pos=list(robot.base_pos))
        spec.attach(robot.load_spec(), prefix=ROBOT_PREFIX, frame=frame)
        return spec

    def _index_robot(self) -> None:
        m, r = self.model, self.robot
        jid = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, ROBOT_PREFIX + j) for j in r.arm_joints]
        if min(jid) < 0:
            raise ValueError(f"robot {r.name}: joints {r.arm_joints} not all found in the MJCF")
        self.arm_qadr = np.array([m.jnt_qposadr[j] for j in jid])
        self.arm_dofadr = np.array([m.jnt_dofadr[j] for j in jid])
        self.joint_range = np.array([m.jnt_range[j] for j in jid])
        self.arm_act = np.array([mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, ROBOT_PREFIX + a) for a in r.arm_actuators])
        self.grip_act = np.array([mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, ROBOT_PREFIX + a) for a in r.gripper_actuators])
        gj = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, ROBOT_PREFIX + r.gripper_joint)
        if min(self.arm_act.min(), self.grip_act.min(), gj) < 0:
            raise ValueError(f"robot {r.name}: actuators or gripper joint not found in the MJCF")
        self.grip_qadr = int(m.jnt_qposadr[gj])
        self.ee_site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, ROBOT_PREFIX + r.ee_site)
        if self.ee_site < 0:
            raise ValueError(f"robot {r.name}: site {r.ee_site!r} not found")
        self.base_pos = np.asarray(r.base_pos, dtype=np.float64)
        self.n_joints = len(jid)
        # Gripper joints and any coupled finger joints: every robot joint that is not an arm joint.
        robot_joints = [
            j for j in range(m.njnt) if (mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, j) or "").startswith(ROBOT_PREFIX)
        ]
        self.finger_qadr = np.array([m.jnt_qposadr[j] for j in robot_joints if j not in jid], dtype=int)
        self.finger_open_qpos = np.array([m.jnt_range[j][1] for j in robot_joints if j not in jid])
        # public camera name -> MJCF camera name
        self.camera_names = {"front": "front"}
        if r.wrist_camera:
            self.camera_names["wrist"] = ROBOT_PREFIX + r.wrist_camera

    # ---- appearance (model parameters that randomisation changes) -----------------------------
    def add_appearance(self, attr: str, index: int, cols: slice = slice(0, 3)) -> None:
        """Declare ``model.<attr>[index, cols]`` as randomised appearance (carried in ``state()``)."""
        self.appearance.append(AppearanceParam(attr, index, cols))

    def appearance_vector(self) -> np.ndarray:
        return np.concatenate([np.ravel(getattr(self.model, p.attr)[p.index, p.cols]) for p in self.appearance] or [np.zeros(0)])

    def set_appearance_vector(self, v: np.ndarray) -> None:
        i = 0
        for p in self.appearance:
            row = getattr(self.model, p.attr)[p.index]
            n = len(row[p.cols])
            row[p.cols] = v[i : i + n]
            i += n

    # ---- state --------------------------------------------------------------------------------
    @property
    def physics_state_size(self) -> int:
        return mujoco.mj_stateSize(self.model, STATE_SPEC)

    def state(self) -> np.ndarray:
        """``(physics_state_size + n_appearance,)`` float64: everything needed to redraw the world."""
        with self.lock:
            phys = np.empty(self.physics_state_size)
            mujoco.mj_getState(self.model, self.data, phys, STATE_SPEC)
            return np.concatenate([phys, self.appearance_vector()])

    def set_state(self, x: np.ndarray) -> None:
        """Restore a vector from ``state()`` (same scene and robot) and recompute derived quantities."""
        x = np.asarray(x, dtype=np.float64).ravel()
        n = self.physics_state_size
        expected = n + len(self.appearance_vector())
        if x.shape != (expected,):
            raise ValueError(f"state vector must have shape ({expected},) for {self.model_name}, got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("state vector contains NaN/inf")
        with self.lock:
            mujoco.mj_setState(self.model, self.data, x[:n], STATE_SPEC)
            self.set_appearance_vector(x[n:])
            mujoco.mj_forward(self.model, self.data)

    @property
    def model_name(self) -> str:
        return self.spec.modelname

    # ---- robot access -------------------------------------------------------------------------
    def joints(self) -> np.ndarray:
        return self.data.qpos[self.arm_qadr].copy()

    def ee_pose(self, data: mujoco.MjData | None = None) -> np.ndarray:
        """``(7,)`` tool pose in the robot base frame."""
        d = self.data if data is None else data
        pose = np.empty(7)
        pose[:3] = d.site_xpos[self.ee_site] - self.base_pos
        pose[3:] = geometry.mat_to_quat(d.site_xmat[self.ee_site])
        return pose

    def gripper_opening(self) -> float:
        lo, hi = self.robot.gripper_qpos
        return float(np.clip((self.data.qpos[self.grip_qadr] - lo) / (hi - lo), 0.0, 1.0))

    def set_gripper_target(self, opening: float) -> None:
        lo, hi = self.robot.gripper_ctrl
        self.data.ctrl[self.grip_act] = lo + float(np.clip(opening, 0.0, 1.0)) * (hi - lo)

    def gripper_target(self) -> float:
        lo, hi = self.robot.gripper_ctrl
        return float((self.data.ctrl[self.grip_act[0]] - lo) / (hi - lo))

    def set_joint_targets(self, q: np.ndarray) -> None:
        self.data.ctrl[self.arm_act] = np.clip(q, self.joint_range[:, 0], self.joint_range[:, 1])

    def set_joints(self, q: np.ndarray, gripper: float | None = None) -> None:
        """Teleport the arm to ``q`` (and fingers to ``gripper`` opening), targets included; zero velocity."""
        with self.lock:
            self.data.qpos[self.arm_qadr] = q
            self.data.qvel[self.arm_dofadr] = 0.0
            self.set_joint_targets(q)
            if gripper is not None:
                lo, hi = self.robot.gripper_qpos
                frac = float(np.clip(gripper, 0.0, 1.0))
                for adr, top in zip(self.finger_qadr, self.finger_open_qpos):
                    # every finger joint opens proportionally within its own range
                    self.data.qpos[adr] = frac * top if top > 0 else 0.0
                self.data.qpos[self.grip_qadr] = lo + frac * (hi - lo)
                self.set_gripper_target(frac)
            mujoco.mj_forward(self.model, self.data)

    # ---- IK -----------------------------------------------------------------------------------
    def solve_ik(
        self,
        target_pose: np.ndarray,
        q_init: np.ndarray | None = None,
        iters: int = 40,
        damping: float = 0.02,
        q_rest: np.ndarray | None = None,
    ) -> tuple[np.ndarray, float, float]:
        """Damped-least-squares IK on MuJoCo's site Jacobian (``mj_jacSite``).

        ``target_pose (7,)`` in the base frame. Returns ``(q (n_joints,), position error m,
        rotation error rad)``; the joints stay inside their limits. Redundant arms (n > 6) pull
        toward ``q_rest`` (default: the reset pose) in the Jacobian's null space.
        """
        m, d = self.model, self._ik_data
        target_pos = np.asarray(target_pose[:3], dtype=np.float64) + self.base_pos
        target_quat = np.asarray(target_pose[3:], dtype=np.float64)
        w = self.robot.rot_weight
        with self.lock:
            d.qpos[:] = self.data.qpos
        q = (self.joints() if q_init is None else np.asarray(q_init, dtype=np.float64)).copy()
        q_rest = np.asarray(self.robot.reset_q if q_rest is None else q_rest, dtype=np.float64)
        jacp = np.zeros((3, m.nv))
        jacr = np.zeros((3, m.nv))
        n = self.n_joints
        lo, hi = self.joint_range[:, 0], self.joint_range[:, 1]
        pos_err = rot_err = np.inf
        for _ in range(iters):
            d.qpos[self.arm_qadr] = q
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            e_p = target_pos - d.site_xpos[self.ee_site]
            e_r = geometry.quat_error(target_quat, geometry.mat_to_quat(d.site_xmat[self.ee_site]))
            pos_err, rot_err = float(np.linalg.norm(e_p)), float(np.linalg.norm(e_r))
            if pos_err < 2e-4 and rot_err < 2e-3:
                break
            mujoco.mj_jacSite(m, d, jacp, jacr, self.ee_site)
            J = np.vstack([jacp[:, self.arm_dofadr], w * jacr[:, self.arm_dofadr]])
            e = np.concatenate([e_p, w * e_r])
            JJt = J @ J.T + (damping**2) * np.eye(6)
            dq = J.T @ np.linalg.solve(JJt, e)
            if n > 6:
                J_pinv = J.T @ np.linalg.inv(JJt)
                dq += (np.eye(n) - J_pinv @ J) @ (0.2 * (q_rest - q))
            step = np.max(np.abs(dq))
            if step > 0.25:
                dq *= 0.25 / step
            q = np.clip(q + dq, lo, hi)
        return q, pos_err, rot_err

    # ---- stepping -----------------------------------------------------------------------------
    def step(self, duration: float, hook_every: float = 0.02) -> None:
        """Advance physics by ``duration`` simulated seconds, calling ``substep_hooks(time)`` every ``hook_every``."""
        m = self.model
        n_total = max(1, int(round(duration / m.opt.timestep)))
        chunk = max(1, int(round(hook_every / m.opt.timestep)))
        with self.lock:
            done = 0
            while done < n_total:
                k = min(chunk, n_total - done)
                mujoco.mj_step(m, self.data, k)
                done += k
                for hook in self.substep_hooks:
                    hook(self.data.time)
            # mj_step leaves positions computed BEFORE its last integration; recompute them so
            # observations and renders match qpos (and a mirror doing set_state) exactly.
            mujoco.mj_forward(m, self.data)

    # ---- rendering ----------------------------------------------------------------------------
    def render(self, camera: str = "front", size: int | tuple[int, int] = 128) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB from a named camera ("front", "wrist" or any MJCF camera)."""
        return self.render_with_time(camera, size)[0]

    def render_with_time(self, camera: str = "front", size: int | tuple[int, int] = 128) -> tuple[np.ndarray, float]:
        """``render()`` plus the ``time.monotonic()`` at which the world was snapshotted for it."""
        h, w = (size, size) if isinstance(size, int) else size
        cam = self.camera_names.get(camera, camera)
        if mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, cam) < 0:
            raise KeyError(f"no camera {camera!r} in {self.model_name}; known: {sorted(self.camera_names)}")
        key = (threading.get_ident(), h, w)
        renderer = self._renderers.get(key)
        if renderer is None:
            # A GL context is current on one thread only: one renderer per thread and size.
            renderer = mujoco.Renderer(self.model, height=h, width=w)
            self._renderers[key] = renderer
        with self.lock:
            snapshot = time.monotonic()
            renderer.update_scene(self.data, camera=cam, scene_option=self._scene_option)
        return renderer.render(), snapshot

    def close_renderers(self) -> None:
        """Free the renderers (GL contexts) the calling thread created; call it from that thread."""
        me = threading.get_ident()
        for key in [k for k in self._renderers if k[0] == me]:
            self._renderers.pop(key).close()

    def close(self) -> None:
        self.close_renderers()
