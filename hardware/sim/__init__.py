"""MuJoCo sim arms, task scenes, scripted experts and a sim camera.

    from hardware.sim import make_scene, SCENES
    scene = make_scene("widowx250_cube_bowl", seed=0, image_size=128)

Importing this package registers the sim arms (``sim_widowx250``, ``sim_franka``,
``sim_widowx_ai``) and the ``sim`` camera.
"""

from hardware.sim.arms import SimArm, SimArmConfig, SimFranka, SimWidowX250, SimWidowXAI
from hardware.sim.camera import SimCamera, SimCameraConfig
from hardware.sim.robots import ROBOTS, RobotModel
from hardware.sim.scenes import SCENES, SimScene, TaskSpec, make_scene, register_scene
from hardware.sim.world import SimWorld

__all__ = [
    "ROBOTS",
    "RobotModel",
    "SCENES",
    "SimArm",
    "SimArmConfig",
    "SimCamera",
    "SimCameraConfig",
    "SimFranka",
    "SimScene",
    "SimWidowX250",
    "SimWidowXAI",
    "SimWorld",
    "TaskSpec",
    "make_scene",
    "register_scene",
]
