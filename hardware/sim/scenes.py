"""Sim task scenes for reset-free learning: each is a forward task and its reverse, with
ground-truth success, randomised object / distractor placement and lighting, and a scripted
expert per task.

    scene = make_scene("widowx250_cube_bowl", seed=0, image_size=128)
    fwd, bwd = scene.tasks                      # TaskSpec(id, instruction, phase)
    scene.randomize(task_id=fwd.id)             # a start where the forward task is not yet done
    expert = scene.expert(fwd.id, noise=0.1)
    for _ in range(scene.max_episode_steps):
        sent = scene.step(expert(scene.observe()))   # one control period of simulated time
        if scene.success(fwd.id): break
    image = scene.render("front")               # (H, W, 3) uint8

Scenes (see ``SCENES``): ``widowx250_cube_bowl``, ``widowx250_push_block``, ``franka_cube_bowl``,
``widowx_ai_cube_bowl``. Static things (bowl, target squares, distractors) are mocap bodies, so
their placement is part of the physics state; colours, lights and camera jitter are model
parameters carried in the appearance part of ``state()``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import mujoco
import numpy as np

from hardware import geometry
from hardware.arm import ActionSent, ArmObservation
from hardware.sim.arms import SIM_ARM_CLASSES, SimArm, default_config
from hardware.sim.robots import ROBOTS, RobotModel
from hardware.sim.world import SimWorld
from hardware.tasks import TaskSpec  # noqa: F401  (re-exported: scenes.TaskSpec)

SCENES: dict[str, type["SimScene"]] = {}


def register_scene(name: str) -> Callable[[type["SimScene"]], type["SimScene"]]:
    """Class decorator: register a ``SimScene`` subclass under ``name``."""

    def deco(cls: type[SimScene]) -> type[SimScene]:
        if name in SCENES and SCENES[name].__qualname__ != cls.__qualname__:
            raise ValueError(f"scene {name!r} already registered by {SCENES[name].__qualname__}")
        cls.name = name
        SCENES[name] = cls
        return cls

    return deco


def make_scene(name: str, seed: int = 0, image_size: int = 128, **kwargs: Any) -> "SimScene":
    """Build a registered scene, randomised from ``seed``; its arm is connected."""
    if name not in SCENES:
        raise KeyError(f"unknown scene {name!r}; registered: {sorted(SCENES)}")
    return SCENES[name](seed=seed, image_size=image_size, **kwargs)


PALETTE = np.array(
    [
        [0.15, 0.35, 0.85],  # blue
        [0.1, 0.65, 0.3],  # green
        [0.95, 0.8, 0.1],  # yellow
        [0.6, 0.3, 0.75],  # purple
        [0.95, 0.55, 0.1],  # orange
        [0.2, 0.75, 0.8],  # cyan
        [0.9, 0.9, 0.9],  # white
        [0.4, 0.25, 0.15],  # brown
    ]
)


class SimScene:
    """Base of the task scenes: a ``SimWorld`` with a robot, objects, tasks and experts."""

    name = "base"
    robot_name = "widowx250"
    tasks: tuple[TaskSpec, TaskSpec]
    #: a scripted expert finishes well within this many control steps
    max_episode_steps = 60
    n_distractors = 2
    #: PALETTE rows distractors may take
    distractor_colors: tuple[int, ...] = tuple(range(len(PALETTE)))
    #: what kind of start the last ``randomize`` staged (a scene with kinds of hard start names them,
    #: so an evaluation can say where a policy fails; "random": the scene tells none apart)
    start_kind = "random"

    def __init__(
        self,
        seed: int = 0,
        image_size: int = 128,
        cameras: tuple[str, ...] = ("front",),
        arm_overrides: dict[str, Any] | None = None,
        timestep: float = 0.004,
        fast_render: bool = True,
    ):
        if image_size < 16 or image_size > 1024:
            raise ValueError(f"image_size must be in [16, 1024], got {image_size!r}")
        self.robot: RobotModel = ROBOTS[self.robot_name]
        self.image_size = int(image_size)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self._appearance_names: list[tuple[str, str, int, slice]] = []
        self.world = SimWorld(
            self.robot, add_objects=self._add_objects, timestep=timestep, max_image_size=self.image_size, fast_render=fast_render
        )
        for attr, name, obj, cols in self._appearance_names:
            idx = mujoco.mj_name2id(self.world.model, obj, name)
            self.world.add_appearance(attr, idx, cols)
        self._default_appearance = self.world.appearance_vector()
        for cam in cameras:
            if cam not in self.world.camera_names:
                raise ValueError(f"scene {self.name}: unknown camera {cam!r}; known: {sorted(self.world.camera_names)}")
        self.cameras = tuple(cameras)
        arm_cls = SIM_ARM_CLASSES[self.robot.name]
        cfg = default_config(self.robot, cls=arm_cls.Config, timestep=timestep, **(arm_overrides or {}))
        self.arm: SimArm = arm_cls(cfg, world=self.world)
        self.arm.connect()
        self.randomize(self.rng)

    # ---- subclass hooks -----------------------------------------------------------------------
    def _add_objects(self, spec: mujoco.MjSpec, world: SimWorld) -> None:
        """Add task bodies to ``spec`` (before compile)."""

    def _place_objects(self, rng: np.random.Generator, task_id: str) -> None:
        """Place task objects for a start of ``task_id`` (the task not yet solved)."""

    def _replace_task_object(self, rng: np.random.Generator, task_id: str) -> None:
        """Move only the task's object to a start of ``task_id``, the rest of the layout kept."""
        raise NotImplementedError(f"scene {self.name} cannot re-stage its task object within a layout")

    def success(self, task_id: str) -> bool:
        """Ground-truth success of ``task_id`` in the current world state."""
        raise NotImplementedError

    def privileged(self) -> dict[str, np.ndarray]:
        """Object poses etc. in the robot base frame, for scripted experts and tests."""
        return {}

    def expert(self, task_id: str, noise: float = 0.1, rng: np.random.Generator | None = None,
               gate: str = "strict") -> Callable[[ArmObservation], np.ndarray]:
        """A scripted expert for ``task_id``: ``obs -> action (7,)`` in [-1, 1], with Gaussian ``noise``.

        ``gate``: a pick expert's descent gate (``hardware.sim.experts.DESCENT_GATES``); experts
        that grasp nothing ignore it.
        """
        raise NotImplementedError

    def stage_near_miss(self, task_id: str, rng: np.random.Generator) -> np.ndarray | None:
        """Move the task's object to just short of ``task_id``'s goal (the task not done) and return
        the goal's base-frame xy, for a success classifier's hard negatives; None if the scene has none.

        An arm reaching empty-handed into the goal beside the object is what a policy that failed
        its grasp does, and what fools a classifier that has only seen demos.
        """
        return None

    # ---- helpers for subclasses ---------------------------------------------------------------
    def randomize_appearance_of(self, attr: str, name: str, obj: mujoco.mjtObj, cols: slice = slice(0, 3)) -> None:
        """Declare (while building) a named element's model parameter as randomised appearance."""
        self._appearance_names.append((attr, name, obj, cols))

    def set_mocap(self, body: str, xy: np.ndarray, yaw: float = 0.0, z: float = 0.0) -> None:
        m, d = self.world.model, self.world.data
        bid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, body)
        mid = m.body_mocapid[bid]
        d.mocap_pos[mid] = [xy[0] + self.world.base_pos[0], xy[1] + self.world.base_pos[1], z]
        d.mocap_quat[mid] = geometry.rotvec_to_quat([0.0, 0.0, yaw])

    def mocap_xy(self, body: str) -> np.ndarray:
        m = self.world.model
        mid = m.body_mocapid[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, body)]
        return self.world.data.mocap_pos[mid, :2] - self.world.base_pos[:2]

    def set_free_body(self, joint: str, pos: np.ndarray, yaw: float = 0.0) -> None:
        m, d = self.world.model, self.world.data
        jid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, joint)
        adr, dadr = m.jnt_qposadr[jid], m.jnt_dofadr[jid]
        d.qpos[adr : adr + 3] = np.asarray(pos) + self.world.base_pos
        d.qpos[adr + 3 : adr + 7] = geometry.rotvec_to_quat([0.0, 0.0, yaw])
        d.qvel[dadr : dadr + 6] = 0.0

    def move_free_body(self, joint: str, pos: np.ndarray, yaw: float = 0.0) -> None:
        """``set_free_body`` on the running world: under its lock, derived quantities updated at once."""
        with self.world.lock:
            self.set_free_body(joint, pos, yaw)
            mujoco.mj_forward(self.world.model, self.world.data)

    def free_body_pose(self, joint: str) -> np.ndarray:
        """``(7,)`` pose of a free body in the base frame."""
        m, d = self.world.model, self.world.data
        adr = m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, joint)]
        pose = d.qpos[adr : adr + 7].copy()
        pose[:3] -= self.world.base_pos
        return pose

    def sample_points(
        self, rng: np.random.Generator, n: int, radii: list[float], fixed: list[tuple[np.ndarray, float]], area: tuple[np.ndarray, np.ndarray]
    ) -> list[np.ndarray]:
        """``n`` xy points in the ``area`` box, point i keeping ``radii[i] + r`` clear of each fixed (xy, r)."""
        lo, hi = area
        out: list[np.ndarray] = []
        placed = list(fixed)
        for i in range(n):
            for _ in range(500):
                p = rng.uniform(lo, hi)
                if _clear_of(p, placed, radii[i]):
                    break
            else:
                raise RuntimeError(f"scene {self.name}: could not place object {i} without overlap")
            out.append(p)
            placed.append((p, radii[i]))
        return out

    def area(self, margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Object area (base frame xy box) around the workspace centre, shrunk by ``margin``."""
        s = self.robot.object_scale
        c = np.asarray(self.robot.workspace_center)
        half = np.array([0.1, 0.17]) * s - margin
        return c - half, c + half

    def objects_in_workspace(self, tolerance: float = 0.03) -> bool:
        """Every object is still where the robot can work on it: inside the object area grown by
        ``tolerance`` (metres, scaled with the robot) and not below the table top. False is what a
        reset-free session cannot recover from by itself (an object pushed off to a corner or onto
        the floor): its scheduler then tries a recovery and asks for a person."""
        lo, hi = self.area(margin=-tolerance * self.robot.object_scale)
        for value in self.privileged().values():
            v = np.asarray(value, dtype=np.float64)
            if np.any(v[:2] < lo) or np.any(v[:2] > hi) or (v.shape[0] >= 3 and v[2] < -0.01):
                return False
        return True

    # ---- public API ---------------------------------------------------------------------------
    @property
    def control_hz(self) -> float:
        return self.arm.config.control_hz

    @property
    def proprio_dim(self) -> int:
        """Length of ``proprio()``: n_joints + 7 (ee pose) + 1 (gripper)."""
        return self.world.n_joints + 8

    def task(self, task_id: str) -> TaskSpec:
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise KeyError(f"scene {self.name} has no task {task_id!r}; tasks: {[t.id for t in self.tasks]}")

    def reverse(self, task_id: str) -> TaskSpec:
        """The other task of the pair."""
        self.task(task_id)
        return self.tasks[1] if self.tasks[0].id == task_id else self.tasks[0]

    def randomize(self, rng: np.random.Generator | None = None, task_id: str | None = None,
                  keep_layout: bool = False) -> None:
        """New object/distractor placement, colours, lighting and camera jitter; the arm goes to "reset".

        ``task_id``: place objects for a start of that task (it is not solved yet); default: a
        random task of the pair. ``keep_layout``: only the task's object moves (a new start in the
        same room, as a person re-stages a lab scene); fixtures, distractors, colours, lighting and
        cameras stay as they are.
        """
        rng = self.rng if rng is None else rng
        if task_id is None:
            task_id = self.tasks[int(rng.integers(2))].id
        self.task(task_id)
        self.start_kind = "random"  # the placement hooks below may name it
        with self.world.lock:
            if not keep_layout:
                self.world.set_appearance_vector(self._default_appearance)
                self._randomize_appearance(rng)
            self.world.set_joints(np.asarray(self.robot.reset_q), gripper=1.0)
            self.world.data.qvel[:] = 0.0
            if keep_layout:
                self._replace_task_object(rng, task_id)
            else:
                self._place_objects(rng, task_id)
            mujoco.mj_forward(self.world.model, self.world.data)
            # a scene reset is not a stalled command stream: without this the settle below trips the
            # sim-time watchdog whenever the last command was more than watchdog_timeout_s - 0.3 s ago
            self.arm.guard.mark_alive(self.arm._now())
            self.world.step(0.3)  # let objects settle on the table
        self.arm.guard.mark_alive(self.arm._now())

    def _randomize_appearance(self, rng: np.random.Generator) -> None:
        m = self.world.model
        base = self._default_appearance
        i = 0
        for p in self.world.appearance:
            row = getattr(m, p.attr)[p.index]
            n = len(row[p.cols])
            v = base[i : i + n].copy()
            if p.attr == "light_diffuse":
                v = np.full(n, rng.uniform(0.35, 0.85)) * rng.uniform(0.9, 1.1, n)
            elif p.attr == "light_dir":
                v = np.array([rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4), -1.0])
                v /= np.linalg.norm(v)
            elif p.attr == "cam_pos":
                v = v + rng.uniform(-0.015, 0.015, n) * self.robot.object_scale
            elif p.attr in ("geom_rgba", "mat_rgba"):
                v = np.clip(v * rng.uniform(0.8, 1.2) + rng.uniform(-0.06, 0.06, n), 0.0, 1.0)
            row[p.cols] = v
            i += n

    def step(self, action: np.ndarray | None = None) -> ActionSent | None:
        """One control period of simulated time: ``send_action(action)``, or idle if None."""
        if action is None:
            self.arm.idle()
            return None
        return self.arm.send_action(action)

    def observe(self) -> ArmObservation:
        return self.arm.get_observation()

    def proprio(self) -> np.ndarray:
        """``(proprio_dim,)`` float32: joints (rad), ee pose [x,y,z,qw,qx,qy,qz] (base frame), gripper 0..1."""
        return self.observe().state_vector()

    def render(self, camera: str = "front", size: int | None = None) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB from "front" (fixed, over the shoulder) or "wrist"."""
        return self.world.render(camera, self.image_size if size is None else size)

    def images(self) -> dict[str, np.ndarray]:
        """One render per configured camera: ``{camera: (H, W, 3) uint8}``."""
        return {cam: self.render(cam) for cam in self.cameras}

    def state(self) -> np.ndarray:
        """Full world state ``(state_dim,)`` float64 (physics + appearance), for ``set_state`` elsewhere."""
        return self.world.state()

    def set_state(self, x: np.ndarray) -> None:
        self.world.set_state(x)

    @property
    def state_dim(self) -> int:
        return len(self.world.state())

    def close(self) -> None:
        self.arm.disconnect()
        self.world.close()

    def __enter__(self) -> "SimScene":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ==============================================================================================
# put the cube in the bowl / take the cube out of the bowl
# ==============================================================================================
class CubeBowlScene(SimScene):
    """A cube, a bowl and distractors on a table (mocap bowl and distractors, free cube)."""

    tasks = (
        TaskSpec("put_cube_in_bowl", "put the cube in the bowl", "forward"),
        TaskSpec("take_cube_out_of_bowl", "take the cube out of the bowl", "backward"),
    )
    max_episode_steps = 60
    bowl_segments = 12
    beside_distractor_share = 0.25  # "put in" starts with a distractor right beside the cube
    against_wall_share = 0.25  # "take out" starts with the cube against the inside of the bowl wall
    against_outer_wall_share = 0.25  # "put in" starts with the cube against the outside of the bowl wall
    take_out_clearance = 0.04  # "take out" puts the cube's centre this far beyond the bowl's outer wall (m at object scale 1)

    @property
    def cube_half(self) -> float:
        return 0.015 * self.robot.object_scale

    @property
    def cube_footprint_radius(self) -> float:
        """Radius of the circle that holds the cube's footprint on the table, at any yaw (metres)."""
        return math.sqrt(2) * self.cube_half

    @property
    def bowl_radius(self) -> float:
        """Inner radius of the bowl wall, metres."""
        return 0.065 * self.robot.object_scale

    @property
    def bowl_wall(self) -> float:
        """Thickness of the bowl wall, metres."""
        return 0.006 * self.robot.object_scale

    @property
    def bowl_outer_radius(self) -> float:
        """Outer radius of the bowl wall, metres."""
        return self.bowl_radius + self.bowl_wall

    def _cube_reach(self, rel: float) -> float:
        """How far the cube reaches from its centre along a direction ``rel`` rad off its turn, metres."""
        return self.cube_half * (abs(math.cos(rel)) + abs(math.sin(rel)))

    @property
    def _wall_corner_radius(self) -> float:
        """About how far the corners of the bowl wall's flat segments stand from its centre, metres."""
        return self.bowl_outer_radius / math.cos(math.pi / self.bowl_segments)

    @property
    def bowl_height(self) -> float:
        return 0.03 * self.robot.object_scale

    def _add_objects(self, spec: mujoco.MjSpec, world: SimWorld) -> None:
        s = self.robot.object_scale
        wb = spec.worldbody
        spec.add_material(name="bowl_mat", rgba=[0.15, 0.35, 0.85, 1.0])
        self.randomize_appearance_of("mat_rgba", "bowl_mat", mujoco.mjtObj.mjOBJ_MATERIAL)
        bowl = wb.add_body(name="bowl", mocap=True, pos=[0.3, 0, 0])
        r, h, t = self.bowl_radius, self.bowl_height, self.bowl_wall
        bowl.add_geom(name="bowl_floor", type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[r + t, 0.003, 0], pos=[0, 0, 0.003], material="bowl_mat")
        seg = 2 * (r + t / 2) * math.tan(math.pi / self.bowl_segments) + 0.002
        for k in range(self.bowl_segments):
            a = 2 * math.pi * k / self.bowl_segments
            bowl.add_geom(
                name=f"bowl_wall{k}",
                type=mujoco.mjtGeom.mjGEOM_BOX,
                size=[t / 2, seg / 2, h / 2],
                pos=[(r + t / 2) * math.cos(a), (r + t / 2) * math.sin(a), h / 2],
                quat=list(geometry.rotvec_to_quat([0, 0, a])),
                material="bowl_mat",
            )
        c = self.cube_half
        cube = wb.add_body(name="cube", pos=[0.3, 0.1, c])
        cube.add_freejoint(name="cube_joint")
        cube.add_geom(
            name="cube",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[c, c, c],
            rgba=[0.85, 0.12, 0.1, 1],
            mass=0.03 * s**3,
            friction=[1.2, 0.01, 0.001],
            condim=4,
        )
        self.randomize_appearance_of("geom_rgba", "cube", mujoco.mjtObj.mjOBJ_GEOM)
        _add_distractors(self, wb, s)
        _add_common_appearance(self)

    def _place_objects(self, rng: np.random.Generator, task_id: str) -> None:
        s = self.robot.object_scale
        r_out = self.bowl_outer_radius
        lo, hi = self.area(margin=r_out)
        bowl_xy = rng.uniform(lo, hi)
        self.set_mocap("bowl", bowl_xy)
        cube_xy, against_wall = self._place_cube(rng, task_id, bowl_xy, keepouts=[])
        _place_distractors(self, rng, [(bowl_xy, r_out + 0.02 * s), (cube_xy, 2 * self.cube_half + 0.02 * s)])
        # (not both: wedged between the wall and a distractor, even the expert fails 3 in 10)
        if task_id == "put_cube_in_bowl" and rng.random() < self.beside_distractor_share and not against_wall:
            if self._stand_distractor_beside(rng, cube_xy, bowl_xy):
                self.start_kind = "beside_distractor"

    def _replace_task_object(self, rng: np.random.Generator, task_id: str) -> None:
        # clear of the distractors where they stand (a fresh layout places them round the cube instead)
        self._place_cube(rng, task_id, self.mocap_xy("bowl"), keepouts=self._distractor_keepouts(0.02 * self.robot.object_scale))

    def _place_cube(self, rng: np.random.Generator, task_id: str, bowl_xy: np.ndarray,
                    keepouts: list[tuple[np.ndarray, float]]) -> tuple[np.ndarray, bool]:
        """Put the cube at a start of ``task_id`` round the bowl at ``bowl_xy``, a forward start's
        centre farther than r from each keepout (xy, r); returns its xy and whether it stands
        against the bowl's wall (outside for "put in", inside for "take out"), and sets
        ``start_kind`` to ``open`` or ``against_outer_wall``/``against_inner_wall``."""
        s = self.robot.object_scale
        c = self.cube_half
        cube_yaw = rng.uniform(-math.pi, math.pi)
        if task_id == "put_cube_in_bowl":
            # Anywhere "take out" counts as done, right up to the rim: reset-free, the forward task
            # starts wherever the backward policy put the cube down, and a policy that learned to
            # drop it against the rim left forward failing from a start no demo had.
            cube_xy = self._against_outer_wall(rng, bowl_xy, cube_yaw) if rng.random() < self.against_outer_wall_share else None
            if cube_xy is not None and not _clear_of(cube_xy, keepouts):
                cube_xy = None
            against_wall = cube_xy is not None
            if cube_xy is None:
                (cube_xy,) = self.sample_points(rng, 1, [0.0], [(bowl_xy, self.bowl_outer_radius + 1.5 * c)] + keepouts,
                                                self.area(margin=c + 0.01))
            cube_z = c
        else:
            ang = rng.uniform(-math.pi, math.pi)
            against_wall = rng.random() < self.against_wall_share
            if against_wall:
                # Reset-free, "take out" starts wherever "put in" dropped the cube, and a forward
                # policy drops it against the wall too: a millimetre or three short of touching it.
                off = self.bowl_radius - self._cube_reach(ang - cube_yaw) - rng.uniform(0.0005, 0.003) * s
            else:
                off = rng.uniform(0, self.bowl_radius - 1.6 * c)
            cube_xy = bowl_xy + off * np.array([math.cos(ang), math.sin(ang)])
            cube_z = c + 0.006
        self.set_free_body("cube_joint", np.array([cube_xy[0], cube_xy[1], cube_z]), cube_yaw)
        wall = "against_outer_wall" if task_id == "put_cube_in_bowl" else "against_inner_wall"
        self.start_kind = wall if against_wall else "open"
        return cube_xy, against_wall

    def _against_outer_wall(self, rng: np.random.Generator, bowl_xy: np.ndarray, cube_yaw: float) -> np.ndarray | None:
        """A cube centre a millimetre or four outside the bowl wall, at any turn (None: no room in the area).

        Reset-free, "put in" starts where the last episode left the cube: a forward policy that
        drops it short, or a backward one that lets go early, leaves it against the outside of the
        wall, and forward failed from there 24 times in a row in one session and until an alert in
        another: few demos started there (uniform starts seldom touch the wall).
        """
        s = self.robot.object_scale
        lo, hi = self.area(margin=self.cube_half + 0.01)
        wall = self._wall_corner_radius
        for _ in range(20):
            ang = rng.uniform(-math.pi, math.pi)
            off = wall + self._cube_reach(ang - cube_yaw) + rng.uniform(0.001, 0.004) * s
            xy = bowl_xy + off * np.array([math.cos(ang), math.sin(ang)])
            if np.all(xy > lo) and np.all(xy < hi):
                return xy
        return None

    def _stand_distractor_beside(self, rng: np.random.Generator, cube_xy: np.ndarray, bowl_xy: np.ndarray) -> bool:
        """Move a random distractor a few millimetres from the cube, where it fits (False: no room).

        Reset-free, "put in" starts wherever "take out" put the cube down: backward policies put it
        against a distractor (the cylinder in one session, the box in another), and forward, whose
        demos always had the distractors >= 5 cm away, failed from there every time.
        """
        s = self.robot.object_scale
        lo, hi = self.area(margin=-0.03 * s)
        i = int(rng.integers(self.n_distractors))
        others = [xy for k, xy in enumerate(_distractor_xys(self)) if k != i]
        apart = self.cube_footprint_radius + _footprint_radius(self, i)
        for _ in range(20):
            ang = rng.uniform(-math.pi, math.pi)
            d = apart + rng.uniform(0.002, 0.01) * s  # plus a few mm
            xy = cube_xy + d * np.array([math.cos(ang), math.sin(ang)])
            if (np.all(xy > lo) and np.all(xy < hi) and np.linalg.norm(xy - bowl_xy) > self.bowl_radius + 0.05 * s
                    and all(np.linalg.norm(xy - o) > 0.06 * s for o in others)):
                self.set_mocap(f"distractor{i}", xy, yaw=rng.uniform(-math.pi, math.pi))
                return True
        return False

    def _distractor_keepouts(self, gap: float) -> list[tuple[np.ndarray, float]]:
        """Per distractor ``(xy, r)``: a cube centred farther than r from xy stays ``gap`` m off it, however either is turned."""
        return [(xy, _footprint_radius(self, i) + self.cube_footprint_radius + gap) for i, xy in enumerate(_distractor_xys(self))]

    def privileged(self) -> dict[str, np.ndarray]:
        return {"cube_pose": self.free_body_pose("cube_joint"), "bowl_xy": self.mocap_xy("bowl")}

    def stage_near_miss(self, task_id: str, rng: np.random.Generator) -> np.ndarray | None:
        """The cube just outside the bowl wall (put in) or just inside it (take out); returns where
        the expert would put it down (the bowl's centre, or a point on the table beside the bowl)."""
        self.task(task_id)
        c, bowl = self.cube_half, self.mocap_xy("bowl")
        r_out = self.bowl_outer_radius
        ang = rng.uniform(-math.pi, math.pi)
        direction = np.array([math.cos(ang), math.sin(ang)])
        if task_id == "put_cube_in_bowl":
            # clear of the wall segments' corners, which stand out past r_out, at any turn of the cube
            near = self._wall_corner_radius + self.cube_footprint_radius + 0.001 * self.robot.object_scale
            keepouts = self._distractor_keepouts(0.001 * self.robot.object_scale)
            # and of the distractors, which were placed round the reset's cube: one overlapping the
            # staged cube shoved it against the wall on the first step, where "take out" no longer held
            for _ in range(20):
                cube_xy = bowl + rng.uniform(max(near, r_out + 1.5 * c), r_out + 4.0 * c) * direction
                if _clear_of(cube_xy, keepouts):
                    break
                ang = rng.uniform(-math.pi, math.pi)
                direction = np.array([math.cos(ang), math.sin(ang)])
            z, goal = c, bowl
        else:
            cube_xy = bowl + rng.uniform(0.5, 1.0) * (self.bowl_radius - 1.6 * c) * direction
            z, goal = c + 0.006, bowl + (r_out + rng.uniform(2.0, 4.0) * c) * direction
        self.move_free_body("cube_joint", np.array([cube_xy[0], cube_xy[1], z]), rng.uniform(-math.pi, math.pi))
        return goal

    def success(self, task_id: str) -> bool:
        self.task(task_id)
        p = self.privileged()
        cube, bowl = p["cube_pose"][:3], p["bowl_xy"]
        dist = float(np.linalg.norm(cube[:2] - bowl))
        c = self.cube_half
        if task_id == "put_cube_in_bowl":
            # resting inside the wall (not held above the bowl)
            return dist < self.bowl_radius - 0.5 * c and cube[2] < 0.006 + c + 0.012
        # resting on the table, clear of the bowl wall
        return dist > self.bowl_outer_radius + 1.2 * c and cube[2] < c + 0.01

    def expert(self, task_id: str, noise: float = 0.1, rng: np.random.Generator | None = None,
               gate: str = "strict"):
        from hardware.sim.experts import PickPlaceExpert

        self.task(task_id)
        rng = np.random.default_rng() if rng is None else rng
        return PickPlaceExpert(self, task_id, noise=noise, rng=rng, gate=gate)

    def place_target(self, task_id: str, rng: np.random.Generator) -> np.ndarray:
        """Where the expert puts the cube down (base-frame xy)."""
        p = self.privileged()
        bowl = p["bowl_xy"]
        if task_id == "put_cube_in_bowl":
            return bowl + rng.normal(0, 0.005, 2)
        s = self.robot.object_scale
        # 2 cm clear of each distractor, however either is turned: backward demos that put
        # the cube down touching one taught the backward policy to leave it there, and forward
        # then failed from that start in a row (its demos start with open space around the cube).
        distractors = self._distractor_keepouts(0.02 * s)
        lo, hi = area = self.area(margin=self.cube_half + 0.01)
        # One place per scene (a few mm of noise), not anywhere on the table: a policy trained by
        # regression on places spread all round the bowl puts the cube down at their average, just
        # over the rim (every take-out in one session), where forward then failed 25 times in a row.
        # Beside the bowl on the side facing the middle of the area's long (y) axis, where there is
        # always room; turned in 20 degree steps either way while a distractor or the edge is in the way.
        side = 1.0 if bowl[1] <= (lo[1] + hi[1]) / 2 else -1.0
        reach = self.bowl_outer_radius + self.take_out_clearance * s
        jitter = np.clip(rng.normal(0, 0.003 * s, 2), -0.006 * s, 0.006 * s)
        room = 0.009 * s  # >= |jitter|: the place is chosen without it, so noise never flips the side
        for k in range(18):
            ang = side * math.pi / 2 + (1 if k % 2 else -1) * math.radians(20) * ((k + 1) // 2)
            xy = bowl + reach * np.array([math.cos(ang), math.sin(ang)])
            if (np.all(xy > lo + room) and np.all(xy < hi - room)
                    and _clear_of(xy, distractors, room)):
                return xy + jitter
        (xy,) = self.sample_points(rng, 1, [0.0], [(bowl, reach)] + distractors, area)  # boxed in: anywhere clear
        return xy


@register_scene("widowx250_cube_bowl")
class WidowX250CubeBowl(CubeBowlScene):
    """WidowX 250 at 5 Hz, the RoboFuME cube/bowl pair."""

    robot_name = "widowx250"
    max_episode_steps = 60


@register_scene("franka_cube_bowl")
class FrankaCubeBowl(CubeBowlScene):
    """Franka FR3 at 10 Hz, the same pair with larger objects."""

    robot_name = "franka"
    max_episode_steps = 120


@register_scene("widowx_ai_cube_bowl")
class WidowXAICubeBowl(CubeBowlScene):
    """WidowX AI at 10 Hz, the same pair."""

    robot_name = "widowx_ai"
    max_episode_steps = 120


# ==============================================================================================
# push the block onto the blue square / back onto the yellow square
# ==============================================================================================
class PushBlockScene(SimScene):
    """A block between two coloured squares; push it from one to the other with the closed gripper."""

    tasks = (
        TaskSpec("push_block_to_blue", "push the block onto the blue square", "forward"),
        TaskSpec("push_block_to_yellow", "push the block onto the yellow square", "backward"),
    )
    max_episode_steps = 60
    # no blue or yellow distractors: the instruction names those colours
    distractor_colors = (1, 3, 4, 6, 7)

    @property
    def block_half(self) -> float:
        return 0.02 * self.robot.object_scale

    @property
    def square_half(self) -> float:
        return 0.04 * self.robot.object_scale

    def _add_objects(self, spec: mujoco.MjSpec, world: SimWorld) -> None:
        s = self.robot.object_scale
        wb = spec.worldbody
        for name, rgba in (("blue", [0.15, 0.35, 0.9, 1]), ("yellow", [0.95, 0.8, 0.1, 1])):
            sq = wb.add_body(name=f"{name}_square", mocap=True, pos=[0.3, 0, 0])
            sq.add_geom(
                name=f"{name}_square",
                type=mujoco.mjtGeom.mjGEOM_BOX,
                size=[self.square_half, self.square_half, 0.0005],
                pos=[0, 0, 0.0005],
                rgba=rgba,
                contype=0,
                conaffinity=0,
            )
            self.randomize_appearance_of("geom_rgba", f"{name}_square", mujoco.mjtObj.mjOBJ_GEOM)
        b = self.block_half
        block = wb.add_body(name="block", pos=[0.3, 0.0, b])
        block.add_freejoint(name="block_joint")
        block.add_geom(
            name="block",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[b, b, b],
            rgba=[0.85, 0.12, 0.1, 1],
            mass=0.08 * s**3,
            friction=[0.6, 0.01, 0.001],
        )
        self.randomize_appearance_of("geom_rgba", "block", mujoco.mjtObj.mjOBJ_GEOM)
        _add_distractors(self, wb, s)
        _add_common_appearance(self)

    def _place_objects(self, rng: np.random.Generator, task_id: str) -> None:
        s = self.robot.object_scale
        c = np.asarray(self.robot.workspace_center)
        gap = rng.uniform(0.17, 0.22) * s  # centre distance between the squares, along y
        mid = c + np.array([rng.uniform(-0.05, 0.05) * s, rng.uniform(-0.02, 0.02) * s])
        # blue on the left (+y) or right, so the direction is not a constant the policy can memorise
        sign = 1.0 if rng.random() < 0.5 else -1.0
        blue = mid + np.array([rng.uniform(-0.02, 0.02) * s, sign * gap / 2])
        yellow = mid + np.array([rng.uniform(-0.02, 0.02) * s, -sign * gap / 2])
        self.set_mocap("blue_square", blue)
        self.set_mocap("yellow_square", yellow)
        self._place_block(rng, task_id)
        h = self.square_half
        _place_distractors(self, rng, [(blue, 1.5 * h + 0.02 * s), (yellow, 1.5 * h + 0.02 * s), (mid, 0.06 * s)])

    def _replace_task_object(self, rng: np.random.Generator, task_id: str) -> None:
        self._place_block(rng, task_id)

    def _place_block(self, rng: np.random.Generator, task_id: str) -> None:
        """The block on the task's start square (the other one than its goal), a little off centre."""
        start = self.mocap_xy("yellow_square" if task_id == "push_block_to_blue" else "blue_square")
        xy = start + rng.uniform(-0.012, 0.012, 2) * self.robot.object_scale
        self.set_free_body("block_joint", np.array([xy[0], xy[1], self.block_half]), rng.uniform(-0.3, 0.3))

    def privileged(self) -> dict[str, np.ndarray]:
        return {
            "block_pose": self.free_body_pose("block_joint"),
            "blue_xy": self.mocap_xy("blue_square"),
            "yellow_xy": self.mocap_xy("yellow_square"),
        }

    def goal_xy(self, task_id: str) -> np.ndarray:
        p = self.privileged()
        return p["blue_xy"] if task_id == "push_block_to_blue" else p["yellow_xy"]

    def stage_near_miss(self, task_id: str, rng: np.random.Generator) -> np.ndarray | None:
        """The block just off the goal square's edge; returns the square's centre."""
        self.task(task_id)
        goal = self.goal_xy(task_id)
        side = np.zeros(2)
        side[int(rng.integers(2))] = rng.choice([-1.0, 1.0])
        xy = goal + side * (self.square_half + rng.uniform(0.5, 2.0) * self.block_half) + rng.uniform(-0.5, 0.5, 2) * self.block_half * side[::-1]
        self.move_free_body("block_joint", np.array([xy[0], xy[1], self.block_half]), rng.uniform(-0.3, 0.3))
        return goal

    def success(self, task_id: str) -> bool:
        self.task(task_id)
        block = self.privileged()["block_pose"][:3]
        goal = self.goal_xy(task_id)
        # block centre over the square (Chebyshev distance) and still on the table
        return bool(np.max(np.abs(block[:2] - goal)) < self.square_half - 0.2 * self.block_half and block[2] < 2 * self.block_half)

    def expert(self, task_id: str, noise: float = 0.1, rng: np.random.Generator | None = None,
               gate: str = "strict"):
        from hardware.sim.experts import PushExpert

        self.task(task_id)
        rng = np.random.default_rng() if rng is None else rng
        return PushExpert(self, task_id, noise=noise, rng=rng)


@register_scene("widowx250_push_block")
class WidowX250PushBlock(PushBlockScene):
    """WidowX 250 at 5 Hz pushing a block between two squares."""

    robot_name = "widowx250"
    max_episode_steps = 80


# ---- shared distractors and appearance --------------------------------------------------------
def _add_distractors(scene: SimScene, wb, s: float) -> None:
    shapes = [
        (mujoco.mjtGeom.mjGEOM_CYLINDER, [0.018 * s, 0.025 * s, 0]),
        (mujoco.mjtGeom.mjGEOM_BOX, [0.02 * s, 0.012 * s, 0.015 * s]),
        (mujoco.mjtGeom.mjGEOM_SPHERE, [0.018 * s, 0, 0]),
    ]
    for i in range(scene.n_distractors):
        kind, size = shapes[i % len(shapes)]
        body = wb.add_body(name=f"distractor{i}", mocap=True, pos=[0.0, 0.5 + i, 0])
        half_h = size[1] if kind == mujoco.mjtGeom.mjGEOM_CYLINDER else (size[2] if kind == mujoco.mjtGeom.mjGEOM_BOX else size[0])
        body.add_geom(name=f"distractor{i}", type=kind, size=size, pos=[0, 0, half_h], rgba=list(PALETTE[(i + 3) % len(PALETTE)]) + [1])
        scene.randomize_appearance_of("geom_rgba", f"distractor{i}", mujoco.mjtObj.mjOBJ_GEOM)


def _place_distractors(scene: SimScene, rng: np.random.Generator, keep_clear: list[tuple[np.ndarray, float]]) -> None:
    s = scene.robot.object_scale
    lo, hi = scene.area(margin=-0.03 * s)  # distractors may sit a little outside the object area
    pts = scene.sample_points(rng, scene.n_distractors, [0.03 * s] * scene.n_distractors, keep_clear, (lo, hi))
    m = scene.world.model
    for i, xy in enumerate(pts):
        scene.set_mocap(f"distractor{i}", xy, yaw=rng.uniform(-math.pi, math.pi))
        gid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"distractor{i}")
        m.geom_rgba[gid, :3] = np.clip(PALETTE[rng.choice(scene.distractor_colors)] * rng.uniform(0.8, 1.1), 0.0, 1.0)


def _footprint_radius(scene: SimScene, i: int) -> float:
    """Radius of the circle that holds distractor ``i``'s footprint on the table, at any yaw (metres)."""
    m = scene.world.model
    gid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"distractor{i}")
    size = m.geom_size[gid]
    return float(np.hypot(size[0], size[1]) if m.geom_type[gid] == mujoco.mjtGeom.mjGEOM_BOX else size[0])


def _clear_of(xy: np.ndarray, keepouts: list[tuple[np.ndarray, float]], margin: float = 0.0) -> bool:
    """Whether base-frame ``xy`` lies farther than ``r + margin`` from the centre of every keepout (xy, r)."""
    return all(np.linalg.norm(xy - q) > r + margin for q, r in keepouts)


def _distractor_xys(scene: SimScene) -> list[np.ndarray]:
    return [scene.mocap_xy(f"distractor{i}") for i in range(scene.n_distractors)]


def _add_common_appearance(scene: SimScene) -> None:
    scene.randomize_appearance_of("light_diffuse", "key", mujoco.mjtObj.mjOBJ_LIGHT)
    scene.randomize_appearance_of("light_dir", "key", mujoco.mjtObj.mjOBJ_LIGHT)
    scene.randomize_appearance_of("geom_rgba", "table", mujoco.mjtObj.mjOBJ_GEOM)
    scene.randomize_appearance_of("cam_pos", "front", mujoco.mjtObj.mjOBJ_CAMERA)
