"""WidowXAIArm (trossen_arm) against trossen-arm-sim (controller wire protocol, MuJoCo)."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("trossen_arm")
pytest.importorskip("trossen_arm_sim")

import trossen_arm as ta  # noqa: E402

from hardware import geometry  # noqa: E402
from hardware.arm import make_arm  # noqa: E402
from hardware.widowx_ai.arm import HOME_JOINTS  # noqa: E402
from hardware.widowx_ai.client import ArmConnectionError, UnreachableTargetError  # noqa: E402
from hardware.widowx_ai.simulator import TrossenSimProcess  # noqa: E402

pytestmark = [pytest.mark.processes, pytest.mark.timeout(90, method="thread")]

HOST = "127.0.0.51"  # the controller's ports are fixed: one loopback address per simulator


@pytest.fixture(scope="module")
def sim():
    with TrossenSimProcess(HOST) as proc:
        yield proc


@pytest.fixture(scope="module")
def arm(sim):
    arm = make_arm("widowx_ai", host=HOST, **{"safety.watchdog_timeout_s": 0.4})
    arm.connect()
    arm.move_to("home")
    yield arm
    arm.disconnect()


def _pos_err_mm(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a)[:3] - np.asarray(b)[:3]) * 1000)


def test_home_and_state(arm):
    obs = arm.get_observation()
    assert obs.joint_positions.shape == (6,)
    np.testing.assert_allclose(obs.joint_positions, HOME_JOINTS, atol=0.01)
    assert obs.ee_pose.shape == (7,) and abs(np.linalg.norm(obs.ee_pose[3:]) - 1) < 1e-6
    assert 0.25 < obs.ee_pose[0] < 0.45 and 0.1 < obs.ee_pose[2] < 0.3
    assert 0.0 <= obs.gripper <= 1.0


def test_reaches_absolute_pose_within_millimetres(arm):
    start = arm.get_observation().ee_pose
    target = start.copy()
    target[:3] += [0.04, 0.05, -0.05]
    target[3:] = geometry.normalize_quat(geometry.quat_mul(geometry.rotvec_to_quat([0, 0, 0.15]), start[3:]))
    arm.move_to_pose(target)
    reached = arm.get_observation().ee_pose
    assert _pos_err_mm(reached, target) < 3.0
    assert np.linalg.norm(geometry.quat_error(target[3:], reached[3:])) < 0.02


def test_send_action_moves_in_base_frame(arm, settle):
    arm.move_to("home")
    settle(arm)
    start = arm.get_observation().ee_pose
    step = arm.config.max_translation_m
    for _ in range(5):
        before = arm.get_observation().ee_pose
        assert not arm.send_action(np.array([0, 1.0, -0.5, 0, 0, 0, 1], np.float32)).held
        settle(arm, since=before)  # deltas apply to the measured pose: let each step finish
    moved = arm.get_observation().ee_pose[:3] - start[:3]
    expected = np.array([0, 5 * step, -2.5 * step])
    assert moved @ expected / (np.linalg.norm(moved) * np.linalg.norm(expected)) > 0.995, moved
    # Each step starts from the MEASURED pose; the sim's position servos lag/overshoot a little
    # under CPU load, so the distance is checked loosely and the direction tightly.
    assert 0.8 < np.linalg.norm(moved) / np.linalg.norm(expected) < 1.25, moved


def test_gripper_open_close(arm):
    arm.client.command_gripper(0.0, blocking=True)
    closed = arm.get_observation().gripper
    arm.client.command_gripper(1.0, blocking=True)
    opened = arm.get_observation().gripper
    assert closed < 0.05 and opened > 0.95
    # and through send_action: the gripper entry is an absolute target (-1 closed)
    arm.send_action(np.array([0, 0, 0, 0, 0, 0, -1], np.float32))
    time.sleep(0.6)
    assert arm.get_observation().gripper < 0.1


def test_nan_action_is_held(arm):
    before = arm.get_observation().ee_pose
    sent = arm.send_action(np.array([0, np.inf, 0, 0, 0, 0, 1], np.float32))
    assert sent.held and "non-finite" in sent.reason
    time.sleep(0.3)
    assert _pos_err_mm(arm.get_observation().ee_pose, before) < 1.0


def test_estop_latches_until_cleared(arm):
    before = arm.get_observation().ee_pose
    arm.estop("test")
    for _ in range(3):
        sent = arm.send_action(np.array([1, 0, 0, 0, 0, 0, 1], np.float32))
        assert sent.held and "e-stop" in sent.reason
    time.sleep(0.3)
    assert _pos_err_mm(arm.get_observation().ee_pose, before) < 1.0
    with pytest.raises(RuntimeError, match="e-stop"):
        arm.move_to("home")
    arm.clear_estop()
    assert not arm.send_action(np.array([1, 0, 0, 0, 0, 0, 1], np.float32)).held
    time.sleep(0.4)
    assert _pos_err_mm(arm.get_observation().ee_pose, before) > 0.5 * arm.config.max_translation_m * 1000


def test_watchdog_holds_when_commands_stop(arm):
    arm.send_action(np.array([0.5, 0, 0, 0, 0, 0, 1], np.float32))
    time.sleep(arm.config.safety.watchdog_timeout_s + 0.4)
    assert arm.guard.watchdog_tripped and arm.watchdog_check()
    p0 = arm.get_observation().ee_pose
    time.sleep(0.3)
    assert _pos_err_mm(arm.get_observation().ee_pose, p0) < 0.5
    assert not arm.send_action(np.zeros(7, np.float32)).held


def test_unreachable_target_clear_error_and_still_usable(arm):
    home = arm.get_observation().ee_pose
    far = home.copy()
    far[:3] = [1.2, 0.0, 0.3]
    with pytest.raises(UnreachableTargetError, match="inverse kinematics"):
        arm.client.command_pose(far)  # the controller's IK refuses it at once (joint interpolation)
    target = home.copy()
    target[0] += 0.03
    arm.move_to_pose(target)
    assert _pos_err_mm(arm.get_observation().ee_pose, target) < 3.0


def test_late_ik_failure_is_recovered(arm):
    """A Cartesian-interpolated goal fails inside the driver daemon; the NEXT call raises. The
    client must clean up + reconfigure and say what happened, and the arm must work afterwards."""
    before = arm.client.recoveries
    arm.send_action(np.zeros(7, np.float32))  # restarts the watchdog clock (0.4 s)
    arm.client.driver.set_cartesian_positions([1.2, 0, 0.3, 0, 0, 0], ta.InterpolationSpace.cartesian, 0.1, False)
    time.sleep(0.25)  # the daemon fails mid-trajectory; still before the watchdog's own hold
    with pytest.raises(UnreachableTargetError, match="reconfigured"):
        arm.get_observation()
    assert arm.client.recoveries == before + 1
    arm.move_to("home")
    np.testing.assert_allclose(arm.get_observation().joint_positions, HOME_JOINTS, atol=0.01)


def test_killed_simulator_gives_clear_error_no_hang():
    with TrossenSimProcess("127.0.0.52") as sim2:
        arm = make_arm("widowx_ai", host="127.0.0.52")
        arm.connect()
        sim2.kill()
        t0 = time.monotonic()
        with pytest.raises(ArmConnectionError, match="127.0.0.52"):
            for _ in range(20):
                arm.send_action(np.zeros(7, np.float32))
                time.sleep(0.05)
        assert time.monotonic() - t0 < 5
        with pytest.raises(ArmConnectionError, match="not connected"):
            arm.get_observation()
        arm.disconnect()
        assert not arm.connected


def test_connect_to_absent_controller_fails_fast():
    arm = make_arm("widowx_ai", host="127.0.0.53", connect_timeout_s=1.0)
    t0 = time.monotonic()
    with pytest.raises(ArmConnectionError, match="127.0.0.53"):
        arm.connect()
    assert time.monotonic() - t0 < 5 and not arm.connected


def test_a_missed_udp_handshake_is_tried_again_and_a_lasting_one_fails(monkeypatch):
    """The driver's first UDP replies have 1 ms windows; a loaded host can miss them once.
    (Its own simulator: the module's serves the module's arm, one driver at a time.)"""
    import trossen_arm as ta

    from hardware.widowx_ai import client

    calls = []

    class FlakyHandshake(ta.TrossenArmDriver):
        def configure(self, *args):
            calls.append(args)
            if len(calls) <= failures:
                raise RuntimeError("Failed to receive initial joint outputs")
            return super().configure(*args)

    monkeypatch.setattr(client.ta, "TrossenArmDriver", FlakyHandshake)
    host = "127.0.0.54"
    with TrossenSimProcess(host):
        failures = client.HANDSHAKE_ATTEMPTS - 1
        arm = make_arm("widowx_ai", host=host)
        arm.connect()  # the last attempt reaches the simulator for real
        try:
            assert arm.connected and len(calls) == client.HANDSHAKE_ATTEMPTS
            assert np.isfinite(arm.get_observation().joint_positions).all()
        finally:
            arm.disconnect()
        calls.clear()
        failures = client.HANDSHAKE_ATTEMPTS
        with pytest.raises(ArmConnectionError, match="initial joint outputs"):
            make_arm("widowx_ai", host=host).connect()
        assert len(calls) == client.HANDSHAKE_ATTEMPTS
