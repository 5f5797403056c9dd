"""RealSense (software_device + .db3 recording/playback) and OpenCV (video file) cameras."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from hardware.camera import CAMERA_REGISTRY, CameraError, StaleFrameError, make_camera

pytestmark = pytest.mark.timeout(60, method="thread")

W, H = 64, 48


# ---- RealSense -----------------------------------------------------------------------------------
rs = pytest.importorskip("pyrealsense2")


class SoftwareRealSense:
    """An rs.software_device with one RGB8 colour stream and a thread pushing numbered frames."""

    def __init__(self, fps: float = 30.0):
        self.dev = rs.software_device()
        self.sensor = self.dev.add_sensor("Color")
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid = rs.stream.color, 0, 1
        vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = W, H, int(fps), 3, rs.format.rgb8
        intr = rs.intrinsics()
        intr.width, intr.height, intr.fx, intr.fy, intr.ppx, intr.ppy = W, H, 50.0, 50.0, W / 2, H / 2
        vs.intrinsics = intr
        self.profile = self.sensor.add_video_stream(vs)
        self.dev.register_info(rs.camera_info.serial_number, "SW0001")
        self.dev.register_info(rs.camera_info.name, "software colour")
        self.fps = fps
        self.pushed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def frame_image(self, i: int) -> np.ndarray:
        img = np.zeros((H, W, 3), np.uint8)
        img[..., 0] = i % 256  # R carries the frame number
        img[..., 1] = 7
        img[..., 2] = 200
        return img

    def push(self, i: int, wall_ms: float | None = None) -> None:
        f = rs.software_video_frame()
        f.pixels = self.frame_image(i)
        f.stride, f.bpp = W * 3, 3
        f.timestamp = time.time() * 1000.0 if wall_ms is None else wall_ms
        f.domain = rs.timestamp_domain.system_time
        f.frame_number = i
        f.profile = self.profile.as_video_stream_profile()
        self.sensor.on_video_frame(f)
        self.pushed = i + 1

    def start(self, n: int | None = None) -> None:
        def run():
            i = 0
            while not self._stop.is_set() and (n is None or i < n):
                self.push(i)
                i += 1
                time.sleep(1.0 / self.fps)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(2)


def _realsense_camera(device, **cfg):
    from hardware.cameras.realsense import RealSenseCamera, RealSenseConfig

    return RealSenseCamera(RealSenseConfig(width=W, height=H, fps=30, **cfg), device=device)


def test_realsense_software_device_frames_and_reads():
    sw = SoftwareRealSense()
    cam = _realsense_camera(sw.dev)
    with cam:
        sw.start()
        try:
            t_call = time.monotonic()
            f1 = cam.read(timeout=2.0)
            assert f1.image.shape == (H, W, 3) and f1.image.dtype == np.uint8
            assert f1.timestamp >= t_call - 0.05  # captured after the call (wall-clock mapping)
            np.testing.assert_array_equal(f1.image[0, 0, 1:], [7, 200])  # RGB order preserved
            f2 = cam.async_read(timeout=2.0)
            assert f2.seq > f1.seq and f2.timestamp >= f1.timestamp
            assert int(f2.image[0, 0, 0]) != int(f1.image[0, 0, 0])  # a different pushed frame
            latest = cam.read_latest(max_age=0.5)
            assert latest.seq >= f2.seq
            assert abs(latest.timestamp - time.monotonic()) < 0.5
        finally:
            sw.stop()
        time.sleep(0.3)
        with pytest.raises(StaleFrameError):
            cam.read_latest(max_age=0.1)  # the feed stopped: the newest frame ages out


def test_realsense_wall_clock_stamp_maps_to_monotonic():
    sw = SoftwareRealSense()
    cam = _realsense_camera(sw.dev)
    with cam:
        sw.push(0, wall_ms=(time.time() - 0.2) * 1000.0)  # exposure 200 ms before delivery
        f = cam.async_read(timeout=2.0)
        assert 0.15 < time.monotonic() - f.timestamp < 0.5


def test_realsense_missing_profile_names_available():
    sw = SoftwareRealSense()
    from hardware.cameras.realsense import RealSenseCamera, RealSenseConfig

    cam = RealSenseCamera(RealSenseConfig(width=1280, height=720, fps=30), device=sw.dev)
    with pytest.raises(CameraError, match="64x48"):
        cam.connect()


def test_realsense_db3_recording_plays_back(tmp_path):
    """Record frames from a software device with the SDK's recorder, then play the file back."""
    path = str(tmp_path / "colour.db3")
    sw = SoftwareRealSense()
    recorder = rs.recorder(path, sw.dev)
    sensor = recorder.query_sensors()[0]
    queue = rs.frame_queue(50)
    sensor.open(sensor.get_stream_profiles()[0])
    sensor.start(queue)
    for i in range(6):
        sw.push(40 + i)
        queue.wait_for_frame(1000)
        time.sleep(1 / 30)
    sensor.stop()
    sensor.close()
    del sensor, recorder  # the recorder writes the file on destruction

    cam = make_camera("realsense", playback_file=path, width=W, height=H, fps=30)
    seen = []
    with cam:
        for _ in range(6):
            seen.append(int(cam.async_read(timeout=3.0).image[0, 0, 0]))
    assert seen == list(range(40, 46))


def test_realsense_no_device_clear_error():
    cam = make_camera("realsense", serial="123456789")
    with pytest.raises(CameraError, match="RealSense"):
        cam.connect()
    assert not cam.connected


# ---- OpenCV --------------------------------------------------------------------------------------
cv2 = pytest.importorskip("cv2")


@pytest.fixture
def video_file(tmp_path):
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (W, H))
    assert writer.isOpened()
    for i in range(10):
        bgr = np.zeros((H, W, 3), np.uint8)
        bgr[..., 2] = 20 * i  # red channel (BGR index 2) encodes the frame number
        bgr[..., 0] = 250  # strong blue
        writer.write(bgr)
    writer.release()
    return path


def test_opencv_file_frames_rgb_paced_and_looping(video_file):
    cam = make_camera("opencv", source=video_file, width=W, height=H, fps=50.0)
    with cam:
        frames = [cam.async_read(timeout=2.0) for _ in range(14)]
    reds = [int(f.image[H // 2, W // 2, 0]) for f in frames]
    blues = [int(f.image[H // 2, W // 2, 2]) for f in frames]
    assert all(b > 200 for b in blues)  # converted BGR -> RGB: blue is channel 2
    # Each read advances by a whole number of frames (a loaded reader may skip one: only the
    # latest frame is kept), in order, and the clip loops: frame k has red = 20 * (k mod 10).
    steps = [((b - a) % 200) / 20.0 for a, b in zip(reds, reds[1:])]
    assert all(abs(st - round(st)) < 0.4 and round(st) >= 1 for st in steps), reds
    assert sum(round(st) for st in steps) >= 10, reds  # went past the last frame: looped
    dt = np.diff([f.timestamp for f in frames])
    assert np.all(dt > 0) and np.median(dt) > 0.012  # paced to ~50 fps, not decoded flat out
    assert [f.seq for f in frames] == sorted({f.seq for f in frames})


def test_opencv_missing_source_clear_error(tmp_path):
    cam = make_camera("opencv", source=str(tmp_path / "nope.avi"))
    with pytest.raises(CameraError, match="nope.avi"):
        cam.connect()


def test_registered_names():
    make_camera("opencv", source="0")  # building does not open anything
    assert {"realsense", "opencv"} <= set(CAMERA_REGISTRY)
