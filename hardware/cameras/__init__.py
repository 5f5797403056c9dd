"""Real camera drivers: "realsense" (pyrealsense2) and "opencv" (cv2.VideoCapture / V4L2).

Each registers itself on import; a driver whose SDK is missing is skipped, the other still loads.
"""

import logging

log = logging.getLogger(__name__)

try:
    from hardware.cameras.opencv import OpenCVCamera, OpenCVCameraConfig  # noqa: F401
except ImportError as exc:  # opencv-python(-headless) not installed
    log.debug("opencv camera unavailable: %r", exc)

try:
    from hardware.cameras.realsense import RealSenseCamera, RealSenseConfig  # noqa: F401
except ImportError as exc:  # pyrealsense2 not installed
    log.debug("realsense camera unavailable: %r", exc)
