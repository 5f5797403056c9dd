"""The threaded Camera base: read / async_read / read_latest semantics, errors, registry."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest

from hardware.camera import CAMERA_REGISTRY, Camera, CameraConfig, CameraError, StaleFrameError, make_camera, register_camera


@dataclasses.dataclass
class CounterCameraConfig(CameraConfig):
    # frames to produce before _grab starts failing (0 = never fail)
    fail_after: int = 0


@register_camera("test_counter")
class CounterCamera(Camera):
    """Paced renderer-like camera: pixel value = frame number; can be gated to stop producing."""

    Config = CounterCameraConfig
    pace_to_fps = True

    def _open(self):
        self.n = 0
        self.gate = threading.Event()
        self.gate.set()
        self.closed = False

    def _grab(self):
        while not self.gate.wait(0.01):
            if self._stop.is_set():
                raise RuntimeError("stopping")
        if self.config.fail_after and self.n >= self.config.fail_after:
            raise OSError("device unplugged")
        self.n += 1
        img = np.full((self.config.height, self.config.width, 3), self.n % 256, dtype=np.uint8)
        return img, time.monotonic()

    def _close(self):
        self.closed = True


def test_read_blocks_for_a_new_frame():
    with make_camera("test_counter", width=8, height=6, fps=200) as cam:
        f1 = cam.read(timeout=2.0)
        assert f1.image.shape == (6, 8, 3) and f1.image.dtype == np.uint8
        f2 = cam.read(timeout=2.0)
        assert f2.seq > f1.seq and f2.timestamp >= f1.timestamp
        assert int(f2.image[0, 0, 0]) == f2.seq % 256


def test_async_read_returns_each_frame_once_and_waits_when_none_is_new():
    with make_camera("test_counter", width=4, height=4, fps=50) as cam:
        f1 = cam.async_read(timeout=2.0)
        cam.gate.clear()  # the device stops producing
        time.sleep(0.1)
        latest = cam.read_latest()  # counts as returned
        assert latest.seq >= f1.seq
        with pytest.raises(CameraError, match="no new frame"):
            cam.async_read(timeout=0.1)
        cam.gate.set()
        f3 = cam.async_read(timeout=2.0)
        assert f3.seq > latest.seq


def test_read_latest_peeks_and_raises_stale():
    with make_camera("test_counter", width=4, height=4, fps=100) as cam:
        cam.read(timeout=2.0)
        f = cam.read_latest(max_age=1.0)
        assert f.seq >= 1
        cam.gate.clear()
        time.sleep(0.2)
        with pytest.raises(StaleFrameError, match="old"):
            cam.read_latest(max_age=0.05)
        assert cam.read_latest().seq >= f.seq  # without max_age it still peeks


def test_read_latest_before_any_frame_is_stale():
    cam = make_camera("test_counter", width=4, height=4, fps=100)
    cam._open = lambda: (CounterCamera._open(cam), cam.gate.clear())  # device that produces nothing yet
    with cam:
        with pytest.raises(StaleFrameError, match="no frame"):
            cam.read_latest()


def test_capture_errors_surface_after_max_consecutive():
    with make_camera("test_counter", width=4, height=4, fps=500, fail_after=2, max_consecutive_errors=3) as cam:
        deadline = time.monotonic() + 3.0
        with pytest.raises(CameraError, match="unplugged"):
            while time.monotonic() < deadline:
                cam.read(timeout=0.5)


def test_bad_image_from_driver_is_an_error():
    class BadCamera(CounterCamera):
        def _grab(self):
            return np.zeros((4, 4), dtype=np.float32), time.monotonic()

    with BadCamera(CounterCameraConfig(fps=500, max_consecutive_errors=2)) as cam:
        with pytest.raises(CameraError, match="uint8"):
            cam.read(timeout=1.0)
            cam.read(timeout=1.0)


def test_not_connected_and_disconnect_closes():
    cam = make_camera("test_counter")
    with pytest.raises(CameraError, match="connect"):
        cam.read()
    cam.connect()
    cam.disconnect()
    assert cam.closed and not cam.connected


def test_registry_and_config_validation():
    assert CAMERA_REGISTRY["test_counter"][1] is CounterCamera
    with pytest.raises(KeyError, match="unknown camera"):
        make_camera("no_such_camera")
    with pytest.raises(ValueError, match="width"):
        make_camera("test_counter", width=0)
    with pytest.raises(ValueError, match="fps"):
        CameraConfig(fps=float("nan"))
