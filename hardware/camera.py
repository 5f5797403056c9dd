"""The camera interface: a shared threaded capture base that every camera driver subclasses.

A driver implements three primitives; the base runs the capture thread, numbers frames and
serves the three read styles (blocking next frame, next-unseen frame, latest-with-age)::

    @register_camera("my_cam")
    class MyCamera(Camera):
        Config = MyCameraConfig                # subclass of CameraConfig
        def _open(self): ...                   # open the device
        def _grab(self) -> tuple[np.ndarray, float]:   # BLOCK until a frame: (H,W,3) uint8 RGB,
            ...                                # time.monotonic() of capture[, sim world time]
        def _close(self): ...

Set ``pace_to_fps = True`` on drivers whose ``_grab`` does not block on the device (a renderer,
a file): the base then sleeps to ``config.fps``.
"""

from __future__ import annotations

import abc
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from hardware.arm import import_registry_modules, apply_overrides

log = logging.getLogger(__name__)

__all__ = [
    "CAMERA_REGISTRY",
    "Camera",
    "CameraConfig",
    "CameraError",
    "Frame",
    "StaleFrameError",
    "make_camera",
    "register_camera",
]


@dataclass
class Frame:
    """One captured image."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    timestamp: float  # time.monotonic() of capture, seconds
    seq: int  # 1, 2, 3, ... per connection, in capture order
    world_time: float | None = None  # sim cameras: simulated time of the world state shown; None for real ones


class CameraError(RuntimeError):
    """The camera failed (not connected, capture thread died, no frame within the timeout)."""


class StaleFrameError(CameraError):
    """``read_latest(max_age)`` found no frame, or only one older than ``max_age``."""


@dataclass
class CameraConfig:
    """Settings every camera shares; drivers subclass it."""

    # image width in pixels
    width: int = 640
    # image height in pixels
    height: int = 480
    # frames per second requested from the device (or paced to, for renderers)
    fps: float = 30.0
    # consecutive capture errors after which the capture thread gives up
    max_consecutive_errors: int = 10

    def __post_init__(self) -> None:
        for name in ("width", "height", "max_consecutive_errors"):
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
                raise ValueError(f"{type(self).__name__}.{name} must be a positive integer, got {value!r}")
        if not (isinstance(self.fps, (int, float)) and math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"{type(self).__name__}.fps must be a positive finite number, got {self.fps!r}")


class Camera(abc.ABC):
    """Threaded capture base: one thread calls ``_grab()`` in a loop and keeps the latest frame."""

    Config: type[CameraConfig] = CameraConfig
    #: True when ``_grab`` returns immediately (renderer, file) and the base must pace to fps.
    pace_to_fps: bool = False

    def __init__(self, config: CameraConfig | None = None):
        self.config = config if config is not None else self.Config()
        if not isinstance(self.config, CameraConfig):
            raise TypeError(f"{type(self).__name__} needs a CameraConfig, got {type(self.config).__name__}")
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._seq = 0
        self._last_returned_seq = 0
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected = False

    # ---- driver primitives --------------------------------------------------------------------
    @abc.abstractmethod
    def _open(self) -> None:
        """Open the device."""

    @abc.abstractmethod
    def _grab(self) -> tuple[np.ndarray, float] | tuple[np.ndarray, float, float]:
        """Block until the next frame; return ``(image (H,W,3) uint8 RGB, time.monotonic() of capture)``.

        Sim drivers may add a third value: the simulated time of the world they rendered.
        """

    @abc.abstractmethod
    def _close(self) -> None:
        """Release the device; must not raise if already closed."""

    def _capture_thread_exit(self) -> None:
        """Runs in the capture thread as it ends: free per-thread resources (e.g. a GL context)."""

    # ---- public API ---------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected

    def connect(self) -> "Camera":
        if self._connected:
            return self
        self._open()
        with self._cond:
            self._latest, self._seq, self._last_returned_seq, self._error = None, 0, 0, None
        self._stop.clear()
        self._thread = threading.Thread(target=self._capture_loop, name=f"{type(self).__name__}-capture", daemon=True)
        self._connected = True
        self._thread.start()
        return self

    def disconnect(self) -> None:
        if not self._connected:
            return
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            if self._thread.is_alive():
                log.warning("%s: capture thread did not stop within 5 s", type(self).__name__)
            self._thread = None
        self._connected = False
        self._close()

    def __enter__(self) -> "Camera":
        return self.connect()

    def __exit__(self, *exc) -> None:
        self.disconnect()

    def read(self, timeout: float = 1.0) -> Frame:
        """Block until a frame CAPTURED after this call arrives (at most ``timeout`` s).

        "Captured" is the frame timestamp, not its arrival: a frame whose exposure (or sim
        snapshot) began before the call is skipped even if it is delivered afterwards.
        """
        called = time.monotonic()
        with self._cond:
            self._check_alive("read")
            return self._wait_newer(self._seq, timeout, "read", not_before=called)

    def async_read(self, timeout: float = 1.0) -> Frame:
        """The next frame newer than the last one returned: immediate if one is waiting, else wait."""
        with self._cond:
            self._check_alive("async_read")
            return self._wait_newer(self._last_returned_seq, timeout, "async_read")

    def read_latest(self, max_age: float | None = None) -> Frame:
        """Peek at the newest frame without waiting; StaleFrameError if none or older than ``max_age`` s."""
        with self._cond:
            self._check_alive("read_latest")
            frame = self._latest
            if frame is None:
                raise StaleFrameError(f"{type(self).__name__}: no frame captured yet")
            if max_age is not None:
                age = time.monotonic() - frame.timestamp
                if age > max_age:
                    raise StaleFrameError(f"{type(self).__name__}: newest frame is {age:.3f} s old (max_age {max_age} s)")
            self._last_returned_seq = max(self._last_returned_seq, frame.seq)
            return frame

    # ---- internals ----------------------------------------------------------------------------
    def _check_alive(self, what: str) -> None:
        if not self._connected:
            raise CameraError(f"{type(self).__name__}.{what}() needs connect() first")
        if self._error is not None:
            raise CameraError(f"{type(self).__name__}: capture failed: {self._error!r}") from self._error

    def _wait_newer(self, after_seq: int, timeout: float, what: str, not_before: float | None = None) -> Frame:
        deadline = time.monotonic() + timeout

        def fresh(f: Frame | None) -> bool:
            return f is not None and f.seq > after_seq and (not_before is None or f.timestamp >= not_before)

        while not fresh(self._latest):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CameraError(f"{type(self).__name__}.{what}(): no new frame within {timeout} s")
            self._cond.wait(remaining)
            self._check_alive(what)
        frame = self._latest
        self._last_returned_seq = max(self._last_returned_seq, frame.seq)
        return frame

    def _validate(self, image: Any, timestamp: Any, world_time: Any = None) -> tuple[np.ndarray, float, float | None]:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise CameraError(f"{type(self).__name__}._grab() must return (H,W,3) uint8, got {image.shape} {image.dtype}")
        ts = float(timestamp)
        if not math.isfinite(ts):
            raise CameraError(f"{type(self).__name__}._grab() returned a non-finite timestamp {timestamp!r}")
        return image, ts, None if world_time is None else float(world_time)

    def _capture_loop(self) -> None:
        try:
            self._capture_frames()
        finally:
            try:
                self._capture_thread_exit()
            except Exception:
                log.exception("%s: capture thread cleanup failed", type(self).__name__)

    def _capture_frames(self) -> None:
        errors = 0
        period = 1.0 / self.config.fps
        next_due = time.monotonic()
        while not self._stop.is_set():
            if self.pace_to_fps:
                delay = next_due - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                next_due = max(next_due + period, time.monotonic() - period)
            try:
                image, ts, world_time = self._validate(*self._grab())
            except Exception as exc:  # keep going through transient errors, give up after many
                if self._stop.is_set():
                    break
                errors += 1
                log.warning("%s: capture error %d/%d: %r", type(self).__name__, errors, self.config.max_consecutive_errors, exc)
                if errors >= self.config.max_consecutive_errors:
                    with self._cond:
                        self._error = exc
                        self._cond.notify_all()
                    return
                continue
            errors = 0
            with self._cond:
                self._seq += 1
                self._latest = Frame(image=image, timestamp=ts, seq=self._seq, world_time=world_time)
                self._cond.notify_all()


# ---- registry -------------------------------------------------------------------------------
CAMERA_REGISTRY: dict[str, tuple[type[CameraConfig], type[Camera]]] = {}

#: Modules imported on a registry miss (a module whose SDK is missing is skipped).
CAMERA_MODULES: tuple[str, ...] = ("hardware.sim.camera", "hardware.cameras")


def register_camera(name: str) -> Callable[[type[Camera]], type[Camera]]:
    """Class decorator: register a ``Camera`` subclass (and its ``Config``) under ``name``."""

    def deco(cls: type[Camera]) -> type[Camera]:
        if not (isinstance(cls, type) and issubclass(cls, Camera)):
            raise TypeError(f"register_camera({name!r}) decorates Camera subclasses, got {cls!r}")
        existing = CAMERA_REGISTRY.get(name)
        if existing is not None and existing[1] is not cls and existing[1].__qualname__ != cls.__qualname__:
            raise ValueError(f"camera name {name!r} already registered by {existing[1].__module__}.{existing[1].__qualname__}")
        CAMERA_REGISTRY[name] = (cls.Config, cls)
        return cls

    return deco


def make_camera(name: str, config: CameraConfig | None = None, **overrides: Any) -> Camera:
    """Build the camera registered as ``name`` with config ``overrides``; not connected yet."""
    if name not in CAMERA_REGISTRY:
        import_registry_modules(CAMERA_MODULES, CAMERA_REGISTRY, name)
    if name not in CAMERA_REGISTRY:
        raise KeyError(f"unknown camera {name!r}; registered: {sorted(CAMERA_REGISTRY)}")
    config_cls, cam_cls = CAMERA_REGISTRY[name]
    cfg = config if config is not None else config_cls()
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    return cam_cls(cfg)

