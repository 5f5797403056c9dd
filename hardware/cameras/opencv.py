"""OpenCV ``VideoCapture`` (V4L2 webcams, video files, stream URLs) as a registered ``Camera`` ("opencv").

Frames come out BGR from OpenCV and are converted to RGB. A device (``source`` = an index like
"0" or a /dev/videoN path) blocks in ``read()`` until its next frame; a file decodes as fast as
it can, so for files the base class paces the capture thread to ``fps`` (``pace_to_fps``) and
``loop_file`` rewinds at the end. Timestamps are ``time.monotonic()`` when ``read()`` returned.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import cv2
import numpy as np

from hardware.camera import Camera, CameraConfig, CameraError, register_camera


@dataclass
class OpenCVCameraConfig(CameraConfig):
    """What to open with cv2.VideoCapture."""

    # device index ("0"), device path ("/dev/video0"), video file or stream URL
    source: str = "0"
    # rewind a video file at its end instead of failing
    loop_file: bool = True
    # resize frames to width x height when the source delivers another size
    resize: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not str(self.source):
            raise ValueError("OpenCVCameraConfig.source must name a device index, path or URL, got ''")


@register_camera("opencv")
class OpenCVCamera(Camera):
    """cv2.VideoCapture behind the threaded Camera base."""

    Config = OpenCVCameraConfig
    config: OpenCVCameraConfig

    def __init__(self, config: OpenCVCameraConfig | None = None):
        super().__init__(config)
        self._cap: cv2.VideoCapture | None = None
        src = str(self.config.source)
        self._is_file = os.path.isfile(src)
        # A file returns frames immediately: let the base pace the capture thread to fps.
        self.pace_to_fps = self._is_file

    def _open(self) -> None:
        src = str(self.config.source)
        if src.isdigit():
            cap = cv2.VideoCapture(int(src), cv2.CAP_V4L2)
        elif src.startswith("/dev/video"):
            cap = cv2.VideoCapture(src, cv2.CAP_V4L2)
        else:
            cap = cv2.VideoCapture(src)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"OpenCV could not open camera source {src!r}")
        if not self._is_file:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.config.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.config.height)
            cap.set(cv2.CAP_PROP_FPS, self.config.fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a stale queue
        self._cap = cap

    def _grab(self) -> tuple[np.ndarray, float]:
        cap = self._cap
        if cap is None:
            raise CameraError("OpenCV camera is closed")
        ok, bgr = cap.read()
        if not ok and self._is_file and self.config.loop_file:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = cap.read()
        if not ok or bgr is None:
            raise CameraError(f"OpenCV source {self.config.source!r} returned no frame")
        ts = time.monotonic()
        if bgr.ndim == 2:
            bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
        if self.config.resize and (bgr.shape[1], bgr.shape[0]) != (self.config.width, self.config.height):
            bgr = cv2.resize(bgr, (self.config.width, self.config.height), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), ts

    def _close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()
