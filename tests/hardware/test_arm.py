"""The Arm base: validation + safety before the driver, e-stop, watchdog (thread and explicit),
named poses, registry. Uses a small kinematic arm (the pose follows the command) registered
through the real registry; the MuJoCo sim arms repeat these rules in tests/hardware/sim."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from hardware.arm import ARM_REGISTRY, ActionSent, Arm, ArmConfig, ArmNotConnectedError, ArmObservation, make_arm, register_arm


@dataclasses.dataclass
class KinematicArmConfig(ArmConfig):
    # starting ee position, metres
    start_xyz: tuple[float, float, float] = (0.3, 0.0, 0.2)


@register_arm("test_kinematic")
class KinematicArm(Arm):
    """Pose jumps to each commanded target; records every driver call."""

    Config = KinematicArmConfig

    def _connect(self):
        self.pose = np.array([*self.config.start_xyz, 1.0, 0.0, 0.0, 0.0])
        self.gripper = 1.0
        self.q = np.zeros(6)
        self.calls: list[tuple] = []

    def _disconnect(self):
        self.calls.append(("disconnect",))

    def _read_observation(self):
        return ArmObservation(self.q.copy(), self.pose.copy(), self.gripper, time.monotonic())

    def _command_pose(self, target_pose, gripper_target):
        assert target_pose.shape == (7,) and np.all(np.isfinite(target_pose))
        assert 0.0 <= gripper_target <= 1.0
        self.calls.append(("command", target_pose.copy(), gripper_target))
        self.pose = target_pose.copy()
        self.gripper = gripper_target

    def _move_to_joints(self, q):
        self.calls.append(("joints", np.asarray(q).copy()))
        self.q = np.asarray(q, dtype=float).copy()

    def default_named_poses(self):
        return {"home": np.zeros(6), "reset": np.full(6, 0.1)}


def commands(arm):
    return [c for c in arm.calls if c[0] == "command"]


def test_send_action_applies_scaled_delta_and_returns_action_sent():
    with make_arm("test_kinematic", watchdog_thread=False) as arm:
        sent = arm.send_action(np.array([1.0, 0, 0, 0, 0, 0, -1.0], dtype=np.float32))
        assert isinstance(sent, ActionSent)
        assert not sent.held and not sent.clipped
        assert sent.action.dtype == np.float32 and sent.action.shape == (7,)
        np.testing.assert_allclose(arm.get_observation().ee_pose[:3], [0.32, 0.0, 0.2])
        assert arm.get_observation().gripper == 0.0
        assert arm.last_sent is sent


def test_nan_action_never_reaches_driver_and_holds():
    with make_arm("test_kinematic", watchdog_thread=False) as arm:
        before = arm.get_observation().ee_pose
        sent = arm.send_action(np.array([np.nan, 0, 0, 0, 0, 0, 1]))
        assert sent.held and "non-finite" in sent.reason
        for c in commands(arm):  # only the hold (current pose) was commanded
            np.testing.assert_array_equal(c[1], before)


def test_wrong_shape_raises_and_commands_nothing():
    with make_arm("test_kinematic", watchdog_thread=False) as arm:
        with pytest.raises(ValueError, match="shape"):
            arm.send_action(np.zeros(6))
        assert commands(arm) == []


def test_clipped_action_is_reported():
    with make_arm("test_kinematic", watchdog_thread=False, **{"safety.workspace_max": (0.31, 1.0, 1.0)}) as arm:
        sent = arm.send_action(np.array([5.0, 0, 0, 0, 0, 0, 1]))
        assert sent.clipped and "workspace" in sent.reason and "outside [-1, 1]" in sent.reason
        assert arm.get_observation().ee_pose[0] == pytest.approx(0.31)


def test_estop_latches_and_refuses_moves_until_cleared():
    with make_arm("test_kinematic", watchdog_thread=False) as arm:
        arm.estop("test")
        assert arm.estopped
        n = len(commands(arm))
        sent = arm.send_action(np.array([1.0, 0, 0, 0, 0, 0, 1]))
        assert sent.held and "e-stop" in sent.reason
        assert len(commands(arm)) == n  # nothing reached the driver
        with pytest.raises(RuntimeError, match="e-stop"):
            arm.move_to("home")
        arm.clear_estop()
        assert not arm.send_action(np.array([1.0, 0, 0, 0, 0, 0, 1])).held


def test_watchdog_thread_holds_when_commands_stop():
    with make_arm("test_kinematic", safety={"watchdog_timeout_s": 0.05}) as arm:
        arm.send_action(np.array([1.0, 0, 0, 0, 0, 0, 1]))
        n = len(commands(arm))
        deadline = time.monotonic() + 2.0
        while len(commands(arm)) == n and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(commands(arm)) == n + 1, "watchdog did not hold the arm"
        np.testing.assert_array_equal(commands(arm)[-1][1], arm.get_observation().ee_pose)
        assert arm.watchdog_check()
        time.sleep(0.2)
        assert len(commands(arm)) == n + 1  # holds once per stall, does not spam the driver
        arm.send_action(np.zeros(7))
        assert not arm.watchdog_check()


def test_explicit_watchdog_check_with_given_clock():
    with make_arm("test_kinematic", watchdog_thread=False, safety={"watchdog_timeout_s": 0.5}) as arm:
        t0 = time.monotonic()
        arm.send_action(np.zeros(7))
        n = len(commands(arm))
        assert not arm.watchdog_check(t0 + 0.1)
        assert arm.watchdog_check(t0 + 10.0)
        assert len(commands(arm)) == n + 1


def test_named_poses_and_config_override():
    with make_arm("test_kinematic", watchdog_thread=False, reset_joints=(0.5,) * 6) as arm:
        arm.move_to("home")
        np.testing.assert_array_equal(arm.get_observation().joint_positions, np.zeros(6))
        arm.move_to("reset")
        np.testing.assert_array_equal(arm.get_observation().joint_positions, np.full(6, 0.5))
        with pytest.raises(KeyError, match="nowhere"):
            arm.move_to("nowhere")


def test_not_connected_raises():
    arm = make_arm("test_kinematic", watchdog_thread=False)
    with pytest.raises(ArmNotConnectedError, match="connect"):
        arm.send_action(np.zeros(7))
    with pytest.raises(ArmNotConnectedError):
        arm.get_observation()


def test_context_manager_disconnects():
    arm = make_arm("test_kinematic", watchdog_thread=False)
    with arm:
        assert arm.connected
    assert not arm.connected and arm.calls[-1] == ("disconnect",)


def test_registry_and_overrides_validate():
    assert ARM_REGISTRY["test_kinematic"] == (KinematicArmConfig, KinematicArm)
    with pytest.raises(KeyError, match="unknown arm"):
        make_arm("no_such_arm")
    with pytest.raises(ValueError, match="no field 'bogus'"):
        make_arm("test_kinematic", bogus=1)
    with pytest.raises(ValueError, match="control_hz"):
        make_arm("test_kinematic", control_hz=0)
    with pytest.raises(ValueError, match="watchdog_timeout_s"):
        make_arm("test_kinematic", **{"safety.watchdog_timeout_s": -1})
    with pytest.raises(TypeError):
        register_arm("x")(object)


def test_state_vector_layout():
    obs = ArmObservation(np.arange(6.0), np.arange(7.0), 0.5, 0.0)
    v = obs.state_vector()
    assert v.dtype == np.float32 and v.shape == (14,)
    assert v[-1] == 0.5 and v[6] == 0.0 and v[12] == 6.0
