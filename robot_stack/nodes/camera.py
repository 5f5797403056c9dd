"""Camera node: publishes one camera's frames on ``camera/<name>/image``.

The driver (any registered ``hardware.camera`` driver) owns its capture thread; this node only
forwards each new frame once, stamped with its capture time. A sim camera builds its own copy
of the scene and mirrors the world state the controller publishes on ``sim/world_state``, so
rendering costs the controller nothing and the camera is a separate process as on a real robot.

In lockstep sim (``lockstep``) the camera renders each world state as it arrives and publishes
the frame at once, stamped with the simulated time of that world state (ROS's sim-time
convention): the actor can then tell a frame of the world after its last action from an older
one, as the scripted demos saw it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from robot_stack.config import json_object
from robot_stack.runtime import Node, msgs, qos


@dataclass
class CameraNodeConfig:
    """One camera and how often its frames are published."""

    driver: str = "sim"  # registered camera driver: sim, realsense, opencv
    name: str = "front"  # camera name in topics and the store: camera/<name>/image
    fps: float = 10.0  # frames per second to publish (and to capture)
    width: int = 64  # image width in pixels
    height: int = 64  # image height in pixels
    scene: str = "widowx250_cube_bowl"  # sim only: scene to mirror
    seed: int = 0  # sim only: scene seed (the layout shown until a world state arrives)
    sim_camera: str = "front"  # sim only: scene camera to render
    driver_config: str = ""  # JSON object of extra driver-config fields, e.g. {"serial": "0123"}
    max_age_s: float = 0.5  # frames older than this are not published
    lockstep: bool = False  # sim only: one frame per world state, at once, stamped with simulated time

    def __post_init__(self) -> None:
        if self.lockstep and self.driver != "sim":
            raise ValueError(f"lockstep needs the sim driver, not {self.driver!r}")
        if not 0.1 <= self.fps <= 240:
            raise ValueError(f"fps must be in [0.1, 240], got {self.fps}")
        if not (8 <= self.width <= 4096 and 8 <= self.height <= 4096):
            raise ValueError(f"width/height must be in [8, 4096], got {self.width}x{self.height}")
        if not self.name.replace("_", "").isalnum():
            raise ValueError(f"name must be letters, digits and '_', got {self.name!r}")
        json_object("driver_config", self.driver_config)


class CameraNode(Node):
    name = "camera"
    Config = CameraNodeConfig

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        from hardware.camera import make_camera

        cfg: CameraNodeConfig = self.cfg
        overrides = {"width": cfg.width, "height": cfg.height, "fps": cfg.fps,
                     **json_object("driver_config", cfg.driver_config)}
        if cfg.driver == "sim":
            overrides.update(scene=cfg.scene, seed=cfg.seed, camera=cfg.sim_camera, render_on_state=cfg.lockstep)
        self.camera = make_camera(cfg.driver, **overrides)
        self.camera.connect()
        self._last_seq = 0
        self.published = 0
        self.pub = self.create_publisher(msgs.Image, f"camera/{cfg.name}/image", qos.SENSOR_DATA)
        if cfg.driver == "sim":
            self.create_subscription(msgs.Float64MultiArray, "sim/world_state", self.on_world_state, qos.SENSOR_DATA)
        self.create_timer(1.0 / cfg.fps, self.tick)
        self.get_logger().info(f"camera '{cfg.name}' up: driver={cfg.driver} {cfg.width}x{cfg.height}@{cfg.fps:g}")

    def on_world_state(self, msg: msgs.Float64MultiArray) -> None:
        from hardware.camera import CameraError
        from hardware.sim.world import state_time

        state = np.asarray(msg.data)
        self.camera.set_state(state)
        if not self.cfg.lockstep:
            return
        # Wait the few milliseconds the render takes (the world stands still until the next
        # action, and that waits for this frame), then publish it; the timer catches stragglers.
        world_time, deadline = state_time(state), time.monotonic() + self.cfg.max_age_s
        while time.monotonic() < deadline:
            try:
                frame = self.camera.async_read(timeout=max(1e-3, deadline - time.monotonic()))
            except CameraError:
                return
            if frame.world_time is not None and frame.world_time >= world_time:
                self._publish(frame)
                return

    def tick(self) -> None:
        from hardware.camera import StaleFrameError

        try:
            frame = self.camera.read_latest(max_age=self.cfg.max_age_s)
        except StaleFrameError:
            return
        self._publish(frame)

    def _publish(self, frame) -> None:
        if frame.seq <= self._last_seq:
            return
        self._last_seq = frame.seq
        if self.cfg.lockstep:
            stamp = msgs.Time.from_sec(frame.world_time)
        else:
            # Frames carry time.monotonic(); messages carry wall time, so map by the current offset.
            stamp = msgs.Time.from_sec(time.time() - (time.monotonic() - frame.timestamp))
        self.pub.publish(msgs.Image.from_numpy(frame.image, encoding="rgb8",
                                               header=msgs.Header(stamp=stamp, frame_id=self.cfg.name)))
        self.published += 1

    def on_shutdown(self) -> None:
        self.camera.disconnect()
