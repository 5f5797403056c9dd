"""The three simulated arm models: where their MJCF comes from and how the sim drives them.

Each ``RobotModel`` names the joints / actuators / sites of one MJCF so the rest of the sim
(IK, gripper mapping, scenes, experts) is model-agnostic:

- ``widowx250``: our MJCF (``assets/widowx250.xml``) from the Interbotix wx250s public dimensions.
- ``franka``: the FR3 model shipped in the ``franky-sim`` wheel (``franky_sim/assets/fr3.xml``).
- ``widowx_ai``: the WidowX AI model shipped in ``trossen-arm-sim``
  (``trossen_arm_sim/assets/wxai_follower.xml``).

The vendor wheels are only read as data files (found with ``importlib.util.find_spec``, never
imported), so no vendor SDK code runs inside the sim.
"""

from __future__ import annotations

import importlib.util
import pathlib
from dataclasses import dataclass
from typing import Callable

import mujoco

ASSETS = pathlib.Path(__file__).resolve().parent / "assets"


def package_dir(package: str) -> pathlib.Path:
    """Folder of an installed package without importing it (vendor wheels ship MJCF as data)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"package {package!r} is not installed; its MJCF assets are needed for this sim arm")
    return pathlib.Path(spec.origin).resolve().parent


@dataclass(frozen=True)
class RobotModel:
    """How the sim drives one MJCF arm (names are before the scene's attach prefix)."""

    name: str
    load_spec: Callable[[], mujoco.MjSpec]  # fresh MjSpec of the arm alone
    arm_joints: tuple[str, ...]  # in action/observation order
    arm_actuators: tuple[str, ...]  # position actuators, same order as arm_joints
    gripper_actuators: tuple[str, ...]  # all driven to the same target
    gripper_ctrl: tuple[float, float]  # actuator ctrl for (closed, open)
    gripper_joint: str  # joint whose qpos measures the opening
    gripper_qpos: tuple[float, float]  # that joint's qpos when (closed, open)
    ee_site: str  # tool centre point
    home_q: tuple[float, ...]  # "home" joint pose (rad)
    reset_q: tuple[float, ...]  # "reset" joint pose: gripper down above the workspace centre (IK-solved)
    workspace_min: tuple[float, float, float]  # base frame safety box, metres
    workspace_max: tuple[float, float, float]
    max_translation_m: float  # action scale per control step
    max_rotation_rad: float
    control_hz: float
    workspace_center: tuple[float, float]  # base-frame xy at the middle of the object area
    object_scale: float = 1.0  # task geometry scale (bigger arm -> bigger spread)
    tcp_to_tip: float = 0.01  # how far the finger tips reach below the TCP site when pointing down
    rot_weight: float = 0.5  # IK weight of orientation error vs position (metres ~ radians)
    base_pos: tuple[float, float, float] = (0.0, 0.0, 0.0)  # where the base sits in the world
    wrist_camera: str | None = None  # camera in the MJCF usable as "wrist"


def _load_widowx250() -> mujoco.MjSpec:
    return mujoco.MjSpec.from_file(str(ASSETS / "widowx250.xml"))


def _load_franka() -> mujoco.MjSpec:
    root = package_dir("franky_sim") / "assets"
    spec = mujoco.MjSpec.from_file(str(root / "fr3.xml"))
    # The wheel's fr3.xml says meshdir="assets" but ships the meshes in assets/meshes.
    spec.meshdir = str(root / "meshes")
    for body in spec.bodies:
        # Gravity compensation, as the real FR3 controller does internally: targets are then
        # tracked to sub-millimetre accuracy instead of sagging under the links' weight.
        body.gravcomp = 1.0
    # The vendor gripper actuator squeezes with ~2 N against ~1 N of finger friction loss: too weak
    # to lift anything. Ten times the gain and bias keeps the same position mapping (ctrl 255 ->
    # 0.04 m per finger) with a ~20 N grasp, closer to the real Franka Hand (70 N).
    hand_act = spec.actuator("hand")
    hand_act.gainprm[0] *= 10.0
    hand_act.biasprm[1] *= 10.0
    hand_act.biasprm[2] *= 10.0
    # The vendor joint servos use kv = kp / 10, a 0.1 s time constant: at 10 Hz every delta
    # command would end only 60 % done. A 20 ms time constant tracks like the real arm does.
    for i in range(1, 8):
        act = spec.actuator(f"fr3_joint{i}")
        act.biasprm[2] = -0.02 * act.gainprm[0]
    hand = spec.body("hand")
    # Tool centre point of the Franka Hand: 0.1034 m along the flange z axis.
    hand.add_site(name="ee_site", pos=[0.0, 0.0, 0.1034], size=[0.004])
    hand.add_camera(name="wrist", pos=[0.06, 0.0, 0.02], quat=[0.0, 0.7071, 0.7071, 0.0], fovy=75)
    return spec


def _load_widowx_ai() -> mujoco.MjSpec:
    root = package_dir("trossen_arm_sim") / "assets"
    spec = mujoco.MjSpec.from_file(str(root / "wxai_follower.xml"))
    spec.meshdir = str(root)
    # As for the FR3: the vendor servo damping (kv = kp / 10 .. kp / 20) lags each 10 Hz delta
    # command by a third; a 50 ms time constant tracks like the real arm's controller, without overshoot.
    for i in range(6):
        act = spec.actuator(f"joint_{i}")
        act.biasprm[2] = -0.05 * act.gainprm[0]
    return spec


WIDOWX250 = RobotModel(
    name="widowx250",
    load_spec=_load_widowx250,
    arm_joints=("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate"),
    arm_actuators=("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate"),
    gripper_actuators=("left_finger", "right_finger"),
    gripper_ctrl=(0.008, 0.037),
    gripper_joint="left_finger",
    gripper_qpos=(0.008, 0.037),
    ee_site="ee_site",
    home_q=(0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    reset_q=(0.0, 0.0284, 0.2063, 0.0, 1.336, 0.0),
    workspace_min=(0.12, -0.3, 0.025),  # z: finger tips stay above the table
    workspace_max=(0.42, 0.3, 0.3),
    max_translation_m=0.03,
    max_rotation_rad=0.2,
    control_hz=5.0,
    workspace_center=(0.28, 0.0),
    object_scale=1.0,
    tcp_to_tip=0.022,
    wrist_camera="wrist",
)

FRANKA = RobotModel(
    name="franka",
    load_spec=_load_franka,
    arm_joints=tuple(f"fr3_joint{i}" for i in range(1, 8)),
    arm_actuators=tuple(f"fr3_joint{i}" for i in range(1, 8)),
    gripper_actuators=("hand",),
    gripper_ctrl=(0.0, 255.0),
    gripper_joint="finger_joint1",
    gripper_qpos=(0.0, 0.04),
    ee_site="ee_site",
    home_q=(0.0, 0.0, 0.0, -1.57079, 0.0, 1.57079, -0.7853),
    reset_q=(0.0, -0.0417, 0.0, -2.3342, 0.0, 2.2925, 0.7854),
    workspace_min=(0.25, -0.4, 0.012),  # z: finger tips stay above the table
    workspace_max=(0.75, 0.4, 0.6),
    max_translation_m=0.03,
    max_rotation_rad=0.2,
    control_hz=10.0,
    workspace_center=(0.5, 0.0),
    object_scale=1.4,
    rot_weight=0.5,
    wrist_camera="wrist",
)

WIDOWX_AI = RobotModel(
    name="widowx_ai",
    load_spec=_load_widowx_ai,
    arm_joints=tuple(f"joint_{i}" for i in range(6)),
    arm_actuators=tuple(f"joint_{i}" for i in range(6)),
    gripper_actuators=("left_gripper",),
    gripper_ctrl=(0.0, 0.044),
    gripper_joint="left_carriage_joint",
    gripper_qpos=(0.0, 0.044),
    ee_site="ee_site",
    home_q=(0.0, 1.0472, 0.5236, 0.5236, 0.0, 0.0),
    reset_q=(0.0, 1.8053, 1.7341, -1.4996, 0.0, 0.0),
    workspace_min=(0.12, -0.35, 0.008),  # z: finger tips stay above the table
    workspace_max=(0.45, 0.35, 0.3),
    max_translation_m=0.03,
    max_rotation_rad=0.2,
    control_hz=10.0,
    workspace_center=(0.33, 0.0),
    object_scale=1.1,
    tcp_to_tip=0.005,
    wrist_camera="cam",
)

ROBOTS: dict[str, RobotModel] = {r.name: r for r in (WIDOWX250, FRANKA, WIDOWX_AI)}
