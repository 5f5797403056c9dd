"""Every sim arm through the shared Arm interface: reaching, gripper, named poses, and every
safety rule (NaN, range clip, per-step cap, workspace box, e-stop latch, watchdog in SIMULATED time)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from hardware import geometry
from hardware.arm import ARM_REGISTRY, make_arm
from hardware.sim.arms import SimArm

ARMS = ["sim_widowx250", "sim_franka", "sim_widowx_ai"]


@pytest.fixture(scope="module", params=ARMS)
def arm(request):
    a = make_arm(request.param)
    a.connect()
    yield a
    a.disconnect()


@pytest.fixture
def fresh(arm: SimArm):
    """The module's arm back at "reset", e-stop cleared, watchdog re-armed."""
    arm.clear_estop()
    arm.world.set_joints(np.asarray(arm.robot.reset_q), gripper=1.0)
    arm.guard.mark_alive(arm._now())
    return arm


def drive_to(arm: SimArm, target_xyz: np.ndarray, target_quat: np.ndarray, steps: int = 40) -> None:
    """Servo the tool to a pose with delta actions, as a policy would."""
    for _ in range(steps):
        obs = arm.get_observation()
        a = np.zeros(7)
        a[:3] = (target_xyz - obs.ee_pose[:3]) / arm.config.max_translation_m
        a[3:6] = geometry.quat_error(target_quat, obs.ee_pose[3:]) / arm.config.max_rotation_rad
        a[6] = 1.0
        arm.send_action(np.clip(a, -1, 1))


def test_registered_and_sim_clock(fresh):
    assert type(fresh) in [ARM_REGISTRY[n][1] for n in ARMS]
    assert fresh.uses_wall_clock is False
    t0 = fresh.get_observation().timestamp
    fresh.send_action(np.zeros(7))
    assert fresh.get_observation().timestamp == pytest.approx(t0 + 1.0 / fresh.config.control_hz, abs=1e-6)


def test_reaches_pose_within_few_mm(fresh):
    start = fresh.get_observation().ee_pose
    target = start[:3] + np.array([0.05, -0.04, -0.03])
    target_quat = geometry.quat_mul(geometry.rotvec_to_quat([0, 0, 0.3]), start[3:])
    drive_to(fresh, target, target_quat)
    for _ in range(3):
        fresh.idle()
    obs = fresh.get_observation()
    assert np.linalg.norm(obs.ee_pose[:3] - target) < 0.003
    assert np.linalg.norm(geometry.quat_error(target_quat, obs.ee_pose[3:])) < 0.02
    assert obs.joint_positions.shape == (fresh.world.n_joints,)


def test_rotation_action_turns_the_tool(fresh):
    start = fresh.get_observation().ee_pose
    for _ in range(3):
        fresh.send_action(np.array([0, 0, 0, 0, 0, 1.0, 1.0]))
    for _ in range(5):
        fresh.idle()
    turn = geometry.quat_error(fresh.get_observation().ee_pose[3:], start[3:])
    # deltas apply to the MEASURED pose, so servo lag within each period costs a few percent
    commanded = 3 * fresh.config.max_rotation_rad
    assert 0.9 * commanded < turn[2] < 1.03 * commanded
    assert np.linalg.norm(turn[:2]) < 0.01


def test_gripper_closes_and_opens(fresh):
    for _ in range(8):
        fresh.send_action(np.array([0, 0, 0, 0, 0, 0, -1.0]))
    assert fresh.get_observation().gripper < 0.05
    for _ in range(8):
        fresh.send_action(np.array([0, 0, 0, 0, 0, 0, 1.0]))
    assert fresh.get_observation().gripper > 0.95


def test_named_poses(fresh):
    for name in ("home", "reset"):
        fresh.move_to(name)
        np.testing.assert_allclose(fresh.get_observation().joint_positions, fresh.named_poses()[name], atol=0.01)


def test_nan_action_is_held_and_arm_stays(fresh):
    before = fresh.get_observation().ee_pose
    sent = fresh.send_action(np.array([0.5, np.nan, 0, 0, 0, 0, 1]))
    assert sent.held and "non-finite" in sent.reason
    np.testing.assert_allclose(fresh.get_observation().ee_pose[:3], before[:3], atol=0.001)


def test_out_of_range_is_clipped_to_one_step(fresh):
    before = fresh.get_observation().ee_pose
    sent = fresh.send_action(np.array([0, 5.0, 0, 0, 0, 0, 1]))
    assert sent.clipped and sent.action[1] == pytest.approx(1.0)
    fresh.idle()
    moved = fresh.get_observation().ee_pose[1] - before[1]
    assert moved == pytest.approx(fresh.config.max_translation_m, abs=0.003)


def test_per_step_caps(fresh):
    fresh.guard.limits = dataclasses.replace(fresh.guard.limits, max_step_translation_m=0.01, max_step_rotation_rad=0.05)
    try:
        before = fresh.get_observation().ee_pose
        sent = fresh.send_action(np.array([1.0, 0, 0, 0, 0, 1.0, 1]))
        for _ in range(3):
            fresh.idle()
        after = fresh.get_observation().ee_pose
        assert sent.clipped and "translation step capped" in sent.reason and "rotation step capped" in sent.reason
        assert np.linalg.norm(after[:3] - before[:3]) == pytest.approx(0.01, abs=0.003)
        assert geometry.quat_error(after[3:], before[3:])[2] == pytest.approx(0.05, abs=0.01)
    finally:
        fresh.guard.limits = fresh.config.safety


def test_workspace_box_holds_at_the_floor(fresh):
    floor = fresh.config.safety.workspace_min[2]
    reasons = []
    for _ in range(25):
        reasons.append(fresh.send_action(np.array([0, 0, -1.0, 0, 0, 0, 1])).reason)
        assert fresh.get_observation().ee_pose[2] > floor - 0.003
    assert any("workspace" in r for r in reasons)
    assert fresh.get_observation().ee_pose[2] < floor + 0.01  # it did get down to the floor


def test_estop_latches_until_cleared(fresh):
    fresh.estop("test")
    before = fresh.get_observation().ee_pose
    for _ in range(3):
        assert fresh.send_action(np.array([1.0, 0, 0, 0, 0, 0, 1])).held
    np.testing.assert_allclose(fresh.get_observation().ee_pose[:3], before[:3], atol=0.001)
    with pytest.raises(RuntimeError, match="e-stop"):
        fresh.move_to("home")
    fresh.clear_estop()
    fresh.send_action(np.array([1.0, 0, 0, 0, 0, 0, 1]))
    fresh.idle()
    assert fresh.get_observation().ee_pose[0] - before[0] > 0.5 * fresh.config.max_translation_m


def test_watchdog_holds_in_simulated_time_when_commands_stop(fresh):
    timeout = fresh.config.safety.watchdog_timeout_s
    fresh.send_action(np.array([0, 1.0, 0, 0, 0, 0, 1]))
    t_cmd = fresh._now()
    time.sleep(timeout + 0.1)  # wall time passing does not matter: the sim clock did not move
    assert not fresh.watchdog_check()
    periods = 0
    while not fresh.watchdog_check():
        fresh.idle()  # commands stopped; simulated time goes on
        periods += 1
        assert periods < 50
    assert fresh._now() - t_cmd == pytest.approx(timeout, abs=1.0 / fresh.config.control_hz + 0.03)
    # held: joint targets are where the joints were when it tripped, and the arm stays there
    held_pose = fresh.get_observation().ee_pose
    for _ in range(5):
        fresh.idle()
    assert np.linalg.norm(fresh.get_observation().ee_pose[:3] - held_pose[:3]) < 0.001
    # a fresh command re-arms it
    fresh.send_action(np.zeros(7))
    assert not fresh.watchdog_check()


def test_watchdog_stops_a_motion_mid_way(fresh):
    """A command whose motion outlasts the timeout is cut short by the hold."""
    fresh.guard.limits = dataclasses.replace(fresh.guard.limits, watchdog_timeout_s=0.02)
    try:
        fresh.world.set_joints(np.asarray(fresh.robot.reset_q), gripper=1.0)
        fresh.guard.mark_alive(fresh._now())
        before = fresh.get_observation().ee_pose
        fresh.send_action(np.array([0, 1.0, 0, 0, 0, 0, 1]))  # wants max_translation_m along y
        fresh.idle()
        moved = fresh.get_observation().ee_pose[1] - before[1]
        assert fresh.watchdog_check()
        assert moved < 0.8 * fresh.config.max_translation_m
    finally:
        fresh.guard.limits = fresh.config.safety


def test_wrong_shape_raises(fresh):
    with pytest.raises(ValueError, match="shape"):
        fresh.send_action(np.zeros(3))
