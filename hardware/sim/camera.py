"""``SimCamera``: a registered camera ("sim") that renders a MuJoCo scene camera offscreen.

Two ways to feed it:
- in-process: ``SimCamera(cfg, scene=scene)`` renders the caller's scene (under its lock);
- mirrored: ``SimCamera(cfg)`` builds its own copy of ``cfg.scene`` and renders whatever world
  state it was last given with ``set_state(x)`` (``x`` from ``scene.state()`` in the process that
  simulates, e.g. carried over a topic). Until a state arrives it renders its own seeded layout.

Rendering uses MuJoCo's offscreen GL (MUJOCO_GL=egl by default, osmesa as fallback, see
``hardware.geometry``); each capture thread owns its GL context.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from hardware.camera import Camera, CameraConfig, register_camera


@dataclass
class SimCameraConfig(CameraConfig):
    """A camera of a MuJoCo sim scene."""

    # image width in pixels
    width: int = 128
    # image height in pixels
    height: int = 128
    # frames per second the capture thread renders at
    fps: float = 10.0
    # registered sim scene to render (see hardware.sim.SCENES)
    scene: str = "widowx250_cube_bowl"
    # seed of the scene layout shown until a mirrored state arrives
    seed: int = 0
    # scene camera: "front" (fixed, over the shoulder) or "wrist"
    camera: str = "front"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.scene:
            raise ValueError("SimCameraConfig.scene must name a registered sim scene")
        if not self.camera:
            raise ValueError("SimCameraConfig.camera must name a scene camera")


@register_camera("sim")
class SimCamera(Camera):
    """Renders ``config.camera`` of a sim scene at ``config.fps`` (simulated world, wall-clock frames)."""

    Config = SimCameraConfig
    pace_to_fps = True  # rendering returns at once: the base paces to fps

    def __init__(self, config: SimCameraConfig | None = None, scene=None):
        super().__init__(config)
        self.scene = scene
        self._owns_scene = scene is None
        self._pending_state: np.ndarray | None = None
        self._state_lock = threading.Lock()
        self.states_applied = 0

    def set_state(self, x: np.ndarray) -> None:
        """Mirror a world state from ``scene.state()`` (applied before the next render; latest wins)."""
        x = np.asarray(x, dtype=np.float64).copy()
        with self._state_lock:
            self._pending_state = x

    def _open(self) -> None:
        if self.scene is None:
            from hardware.sim.scenes import make_scene

            self.scene = make_scene(self.config.scene, seed=self.config.seed, image_size=max(self.config.width, self.config.height))
        if self.config.camera not in self.scene.world.camera_names:
            raise ValueError(f"SimCamera: scene {self.scene.name} has no camera {self.config.camera!r}; known: {sorted(self.scene.world.camera_names)}")

    def _grab(self) -> tuple[np.ndarray, float]:
        with self._state_lock:
            x, self._pending_state = self._pending_state, None
        if x is not None:
            self.scene.set_state(x)
            self.states_applied += 1
        # timestamp = when the world was snapshotted, so read() never returns a frame of a world
        # state older than the call
        return self.scene.world.render_with_time(self.config.camera, (self.config.height, self.config.width))

    def _capture_thread_exit(self) -> None:
        if self.scene is not None:
            self.scene.world.close_renderers()

    def _close(self) -> None:
        if self._owns_scene and self.scene is not None:
            self.scene.close()
            self.scene = None
