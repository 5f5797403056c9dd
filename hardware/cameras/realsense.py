"""Intel RealSense colour stream as a registered ``Camera`` ("realsense"), via `pyrealsense2`.

One code path for a live camera, a recorded ``.db3`` file (librealsense 2.59 records rosbag2/
sqlite3; older SDKs wrote ``.bag``) and an ``rs.software_device`` (tests feed it frames): the
driver opens the colour sensor directly (``sensor.open(profile)`` + ``sensor.start(frame_queue)``)
instead of a pipeline, so all three are the same ``rs.device`` to it.

Timestamps: frames in the ``system_time`` / ``global_time`` domains carry the host wall clock
(ms since the epoch) at capture; they are mapped to ``time.monotonic()`` by the current offset
between the two clocks. Other domains (hardware clock, playback of old recordings) fall back
to the arrival time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyrealsense2 as rs

from hardware.camera import Camera, CameraConfig, CameraError, register_camera

_WALL_CLOCK_DOMAINS = {rs.timestamp_domain.system_time, rs.timestamp_domain.global_time}


@dataclass
class RealSenseConfig(CameraConfig):
    """Which RealSense (or recording) to open and which colour profile to stream."""

    # serial number of the device ('' = the first one found)
    serial: str = ""
    # a .db3/.bag recording to play back instead of a live device ('' = live)
    playback_file: str = ""
    # play the recording at its recorded pace (False: as fast as it decodes)
    playback_real_time: bool = True
    # milliseconds to wait for one frame before counting a capture error
    frame_timeout_ms: int = 1000

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (isinstance(self.frame_timeout_ms, int) and self.frame_timeout_ms > 0):
            raise ValueError(f"RealSenseConfig.frame_timeout_ms must be a positive integer, got {self.frame_timeout_ms!r}")


def _color_profiles(sensor) -> list:
    return [p for p in sensor.get_stream_profiles() if p.stream_type() == rs.stream.color and p.is_video_stream_profile()]


@register_camera("realsense")
class RealSenseCamera(Camera):
    """Colour frames from a RealSense device, a recording, or an injected ``rs.device``."""

    Config = RealSenseConfig
    config: RealSenseConfig

    def __init__(self, config: RealSenseConfig | None = None, device: "rs.device | None" = None):
        """``device``: an already-built ``rs.device`` (e.g. ``rs.software_device``) to use instead of
        looking one up; live devices and recordings are found from the config."""
        super().__init__(config)
        self._injected = device
        self._device = None
        self._sensor = None
        self._queue = None
        self._ctx = None
        self._format = None

    # ---- device selection -----------------------------------------------------------------------
    def _find_device(self):
        if self._injected is not None:
            return self._injected
        self._ctx = rs.context()
        if self.config.playback_file:
            try:
                dev = self._ctx.load_device(self.config.playback_file)
            except RuntimeError as exc:
                raise CameraError(f"cannot open RealSense recording {self.config.playback_file!r}: {exc}") from exc
            dev.as_playback().set_real_time(self.config.playback_real_time)
            return dev
        devices = list(self._ctx.query_devices())
        serials = [d.get_info(rs.camera_info.serial_number) for d in devices]
        if not devices:
            raise CameraError("no RealSense device connected (is the USB cable in a USB 3 port? libusb present?)")
        if not self.config.serial:
            return devices[0]
        if self.config.serial not in serials:
            raise CameraError(f"RealSense serial {self.config.serial!r} not found; connected: {serials}")
        return devices[serials.index(self.config.serial)]

    def _pick_profile(self, sensor):
        cfg = self.config
        profiles = _color_profiles(sensor)
        for fmt in (rs.format.rgb8, rs.format.bgr8):
            for p in profiles:
                v = p.as_video_stream_profile()
                if p.format() == fmt and v.width() == cfg.width and v.height() == cfg.height and abs(p.fps() - cfg.fps) < 0.5:
                    return p
        available = sorted({f"{p.as_video_stream_profile().width()}x{p.as_video_stream_profile().height()}@{p.fps()} {p.format()}" for p in profiles})
        raise CameraError(f"RealSense has no colour profile {cfg.width}x{cfg.height}@{cfg.fps} rgb8/bgr8; available: {available}")

    # ---- Camera primitives ----------------------------------------------------------------------
    def _open(self) -> None:
        dev = self._find_device()
        sensors = [s for s in dev.query_sensors() if _color_profiles(s)]
        if not sensors:
            raise CameraError(f"RealSense {dev} has no colour sensor")
        sensor = sensors[0]
        profile = self._pick_profile(sensor)
        queue = rs.frame_queue(2)  # the capture thread drains it; a slow reader never stalls the SDK
        sensor.open(profile)
        try:
            sensor.start(queue)
        except RuntimeError:
            sensor.close()
            raise
        self._device, self._sensor, self._queue, self._format = dev, sensor, queue, profile.format()

    def _grab(self) -> tuple[np.ndarray, float]:
        try:
            frame = self._queue.wait_for_frame(self.config.frame_timeout_ms)
        except RuntimeError as exc:
            raise CameraError(f"RealSense: no frame within {self.config.frame_timeout_ms} ms") from exc
        arrival = time.monotonic()
        vf = frame.as_video_frame()
        image = np.asanyarray(vf.get_data()).reshape(vf.get_height(), vf.get_width(), 3).copy()
        if self._format == rs.format.bgr8:
            image = image[:, :, ::-1].copy()
        ts = arrival
        # A recording's wall-clock stamps are from when it was made: only live stamps map.
        if not self.config.playback_file and frame.get_frame_timestamp_domain() in _WALL_CLOCK_DOMAINS:
            ts = frame.get_timestamp() / 1000.0 - time.time() + arrival
        # a capture time cannot be in the future nor older than the queue can hold
        ts = float(np.clip(ts, arrival - 1.0, arrival))
        return image, ts

    def _close(self) -> None:
        sensor, self._sensor = self._sensor, None
        if sensor is not None:
            for fn in (sensor.stop, sensor.close):
                try:
                    fn()
                except RuntimeError:
                    pass
        self._queue = None
        self._device = None
