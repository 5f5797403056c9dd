"""WidowX250Arm (dynamixel_sdk) against the Protocol 2.0 servo emulator on a pty."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("dynamixel_sdk")

from hardware.arm import make_arm  # noqa: E402
from hardware.widowx250 import bus as dxl  # noqa: E402
from hardware.widowx250.arm import RESET_JOINTS, UnreachableTargetError  # noqa: E402

pytestmark = pytest.mark.timeout(60, method="thread")

IDS = (1, 2, 4, 6, 7, 8, 9)


@pytest.fixture
def emulator(dxl_emulator_module):
    emu = dxl_emulator_module.DynamixelEmulator(IDS, tau_s=0.03)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def arm(emulator):
    arm = make_arm("widowx250", port=emulator.port, **{"safety.watchdog_timeout_s": 0.4})
    arm.connect()
    arm.move_to("reset")
    yield arm
    arm.disconnect()


def _err_mm(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a)[:3] - np.asarray(b)[:3]) * 1000)


def test_connect_configures_servos(arm, emulator):
    for i in IDS:
        assert emulator.register(i, 64) == 1, f"torque off on servo {i}"
    assert emulator.register(9, 11) == 5  # gripper: current-based position
    assert emulator.register(9, 38) == arm.config.gripper_current_limit
    assert all(emulator.register(i, 11) == 3 for i in IDS[:-1])
    np.testing.assert_allclose(arm.get_observation().joint_positions, RESET_JOINTS, atol=0.02)


def test_reaches_poses_through_sync_write(arm, emulator):
    start = arm.get_observation().ee_pose
    for _ in range(4):
        assert not arm.send_action(np.array([0.5, 0.5, -0.3, 0, 0, 0, 1], np.float32)).held
        time.sleep(0.25)
    obs = arm.get_observation()
    expected = start[:3] + 4 * arm.config.max_translation_m * np.array([0.5, 0.5, -0.3])
    assert _err_mm(obs.ee_pose, expected) < 3.0
    assert emulator.packets_seen.get(0x83, 0) >= 4 and emulator.packets_seen.get(0x82, 0) >= 4


def test_gripper_open_close_current_limited(arm, emulator):
    arm.send_action(np.array([0, 0, 0, 0, 0, 0, 1], np.float32))
    time.sleep(0.3)
    assert arm.get_observation().gripper > 0.95
    # An object between the fingers stops the servo half-way; the squeeze stays under the limit.
    cfg = arm.config
    emulator.set_obstacle(9, (cfg.gripper_closed_ticks + cfg.gripper_open_ticks) / 2)
    arm.send_action(np.array([0, 0, 0, 0, 0, 0, -1], np.float32))
    time.sleep(0.3)
    assert 0.45 < arm.get_observation().gripper < 0.55
    assert 0 < abs(arm.gripper_current()) <= cfg.gripper_current_limit
    emulator.set_obstacle(9, None)
    arm.send_action(np.array([0, 0, 0, 0, 0, 0, -1], np.float32))
    time.sleep(0.3)
    assert arm.get_observation().gripper < 0.05


def test_safety_rules_through_driver(arm, emulator):
    time.sleep(0.2)  # settle after move_to
    before = arm.get_observation().ee_pose
    goals_before = [emulator.register(i, 116) for i in IDS]
    sent = arm.send_action(np.array([np.nan, 0, 0, 0, 0, 0, 1], np.float32))
    assert sent.held and "non-finite" in sent.reason
    arm.estop("test")
    assert arm.send_action(np.array([1, 0, 0, 0, 0, 0, 1], np.float32)).held
    time.sleep(0.2)
    assert _err_mm(arm.get_observation().ee_pose, before) < 1.0
    # held = goal re-written to present: no goal moved away from where the arm is
    assert max(abs(emulator.register(i, 116) - g) for i, g in zip(IDS, goals_before)) <= 3
    arm.clear_estop()
    assert not arm.send_action(np.array([1, 0, 0, 0, 0, 0, 1], np.float32)).held
    # watchdog: stop commanding -> after the timeout the arm holds (goal := present)
    time.sleep(arm.config.safety.watchdog_timeout_s + 0.3)
    assert arm.guard.watchdog_tripped and arm.watchdog_check()
    for i in IDS[:-1]:
        assert abs(emulator.register(i, 116) - emulator.register(i, 132)) <= 3


def test_unreachable_target_raises_and_arm_stays_usable(arm, emulator):
    obs = arm.get_observation()
    goals = [emulator.register(i, 116) for i in IDS]
    far = obs.ee_pose.copy()
    far[:3] = [0.9, 0.0, 0.2]
    with pytest.raises(UnreachableTargetError, match="IK"):
        arm._command_pose(far, 1.0)  # what a too-wide workspace box would let through
    assert [emulator.register(i, 116) for i in IDS] == goals  # nothing was sent
    assert not arm.send_action(np.array([0, 0, 0.5, 0, 0, 0, 1], np.float32)).held


def test_silent_servo_and_lost_bus_give_clear_errors(emulator):
    arm = make_arm("widowx250", port=emulator.port)
    emulator.silent.add(4)
    with pytest.raises(dxl.DynamixelError, match="servo 4"):
        arm.connect()
    assert not arm.connected
    emulator.silent.clear()
    arm.connect()
    emulator.stop()  # the USB adapter is unplugged
    t0 = time.monotonic()
    with pytest.raises(dxl.DynamixelError):
        arm.send_action(np.zeros(7, np.float32))
    assert time.monotonic() - t0 < 2.0
    arm.disconnect()
    assert not arm.connected


def test_missing_port_names_it():
    arm = make_arm("widowx250", port="/dev/does-not-exist-dxl")
    with pytest.raises(dxl.DynamixelError, match="does-not-exist-dxl"):
        arm.connect()


def test_config_validation_names_field():
    with pytest.raises(ValueError, match="joint_signs"):
        make_arm("widowx250", joint_signs=(1, 1, 1, 1, 1, 2))
    with pytest.raises(ValueError, match="gripper_current_limit"):
        make_arm("widowx250", gripper_current_limit=0)
