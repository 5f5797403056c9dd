"""SimCamera: the registered "sim" camera renders scenes through the threaded Camera base, and
mirrors a world simulated in ANOTHER process from its state vector."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from hardware.camera import CAMERA_REGISTRY, make_camera
from hardware.sim import make_scene
from hardware.sim.camera import SimCamera
from hardware.sim.world import state_time


def test_registered_and_reads_configured_size():
    cam = make_camera("sim", width=64, height=48, fps=50)
    assert CAMERA_REGISTRY["sim"][1] is SimCamera
    with cam:
        f1 = cam.read(timeout=10)
        f2 = cam.async_read(timeout=5)
        assert f1.image.shape == (48, 64, 3) and f1.image.dtype == np.uint8
        assert f2.seq > f1.seq
        assert cam.read_latest(max_age=1.0).seq >= f2.seq


def test_in_process_scene_frames_follow_the_world():
    scene = make_scene("widowx250_cube_bowl", seed=4)
    with SimCamera(SimCamera.Config(fps=50), scene=scene) as cam:
        before = cam.read(timeout=10).image
        for _ in range(4):
            scene.step(np.array([0.0, 1.0, 0.0, 0, 0, 0, -1.0], dtype=np.float32))
        after = cam.read(timeout=5).image
        assert np.abs(after.astype(int) - before.astype(int)).mean() > 0.5  # the arm moved in view
        np.testing.assert_array_equal(after, scene.render())
    scene.close()


def test_bad_camera_name_is_a_clear_error():
    with pytest.raises(ValueError, match="no camera 'ceiling'"):
        make_camera("sim", camera="ceiling").connect()


@pytest.mark.processes
def test_mirrors_a_world_simulated_in_another_process(tmp_path):
    """A controller process simulates and saves state + its own render; the camera here mirrors it."""
    script = textwrap.dedent(
        f"""
        import numpy as np
        from hardware.sim import make_scene
        scene = make_scene("widowx250_cube_bowl", seed=21, image_size=96)
        rng = np.random.default_rng(0)
        expert = scene.expert("put_cube_in_bowl", noise=0.0, rng=rng)
        for _ in range(8):
            scene.step(expert(scene.observe()))
        np.save({str(tmp_path / 'state.npy')!r}, scene.state())
        np.save({str(tmp_path / 'image.npy')!r}, scene.render())
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    state = np.load(tmp_path / "state.npy")  # allow_pickle stays False
    reference = np.load(tmp_path / "image.npy")
    cam = make_camera("sim", scene="widowx250_cube_bowl", seed=0, width=96, height=96, fps=30)
    with cam:
        first = cam.read(timeout=10).image
        assert not np.array_equal(first, reference)  # a different seed looks different
        cam.set_state(state)
        cam.read(timeout=5)
        mirrored = cam.read(timeout=5).image
    assert cam.states_applied == 1
    np.testing.assert_array_equal(mirrored, reference)


def test_render_on_state_gives_one_frame_per_world_state_with_its_simulated_time():
    scene = make_scene("widowx250_cube_bowl", seed=4, image_size=48)
    with SimCamera(SimCamera.Config(width=48, height=48, fps=50, render_on_state=True)) as cam:
        with pytest.raises(Exception, match="no frame captured yet"):
            cam.read_latest()  # nothing rendered before a world state arrives, unlike the fps mode
        for i in range(3):
            scene.step(np.array([0.0, 1.0, 0.0, 0, 0, 0, -1.0], dtype=np.float32))
            state = scene.state()
            assert state_time(state) == scene.world.data.time > 0
            cam.set_state(state)
            frame = cam.async_read(timeout=10)
            assert frame.world_time == pytest.approx(scene.world.data.time)
            np.testing.assert_array_equal(frame.image, scene.render())
        last = frame.seq
        time.sleep(0.3)  # 15 frame periods at fps=50, and no new state: no new frame
        assert cam.read_latest().seq == last
    scene.close()


def test_render_on_state_needs_a_mirrored_camera():
    scene = make_scene("widowx250_cube_bowl", seed=4, image_size=48)
    with pytest.raises(ValueError, match="mirrored"):
        SimCamera(SimCamera.Config(render_on_state=True), scene=scene)
    scene.close()
