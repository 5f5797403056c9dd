"""``SimCamera``: a registered camera ("sim") that renders a MuJoCo scene camera offscreen.

Two ways to feed it:
- in-process: ``SimCamera(cfg, scene=scene)`` renders the caller's scene (under its lock);
- mirrored: ``SimCamera(cfg)`` builds its own copy of ``cfg.scene`` and renders whatever world
  state it was last given with ``set_state(x)`` (``x`` from ``scene.state()`` in the process that
  simulates, e.g. carried over a topic). Until a state arrives it renders its own seeded layout.

With ``render_on_state`` a mirrored camera renders once per new world state instead of at
``fps`` (lockstep simulation: one frame per simulated control step, at once, none while the
world stands still). Every frame carries the simulated time of the world it shows
(``Frame.world_time``).

Rendering uses MuJoCo's offscreen GL (MUJOCO_GL=egl by default, osmesa as fallback, see
``hardware.geometry``); each capture thread owns its GL context.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from hardware.camera import Camera, CameraConfig, CameraError, register_camera


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
    # render once per new mirrored world state (lockstep sim) instead of at fps
    render_on_state: bool = False

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

    def __init__(self, config: SimCameraConfig | None = None, scene=None):
        super().__init__(config)
        if self.config.render_on_state and scene is not None:
            raise ValueError("SimCamera: render_on_state needs a mirrored camera (no scene given)")
        # Rendering returns at once, so the base paces to fps, unless frames follow world states.
        self.pace_to_fps = not self.config.render_on_state
        self.scene = scene
        self._owns_scene = scene is None
        self._pending_state: np.ndarray | None = None
        self._state_cond = threading.Condition()
        self.states_applied = 0

    def set_state(self, x: np.ndarray) -> None:
        """Mirror a world state from ``scene.state()`` (applied before the next render; latest wins)."""
        x = np.asarray(x, dtype=np.float64).copy()
        with self._state_cond:
            self._pending_state = x
            self._state_cond.notify_all()

    def _open(self) -> None:
        if self.scene is None:
            from hardware.sim.scenes import make_scene

            self.scene = make_scene(self.config.scene, seed=self.config.seed, image_size=max(self.config.width, self.config.height))
        if self.config.camera not in self.scene.world.camera_names:
            raise ValueError(f"SimCamera: scene {self.scene.name} has no camera {self.config.camera!r}; known: {sorted(self.scene.world.camera_names)}")

    def _grab(self) -> tuple[np.ndarray, float, float]:
        with self._state_cond:
            if self.config.render_on_state:
                while self._pending_state is None and not self._stop.is_set():
                    self._state_cond.wait(0.1)
            x, self._pending_state = self._pending_state, None
        if x is not None:
            self.scene.set_state(x)
            self.states_applied += 1
        elif self.config.render_on_state:
            raise CameraError("SimCamera: stopped while waiting for a world state")
        world_time = float(self.scene.world.data.time)  # only this thread changes the mirror
        # timestamp = when the world was snapshotted, so read() never returns a frame of a world
        # state older than the call
        image, stamp = self.scene.world.render_with_time(self.config.camera, (self.config.height, self.config.width))
        return image, stamp, world_time

    def _capture_thread_exit(self) -> None:
        if self.scene is not None:
            self.scene.world.close_renderers()

    def _close(self) -> None:
        if self._owns_scene and self.scene is not None:
            self.scene.close()
            self.scene = None
