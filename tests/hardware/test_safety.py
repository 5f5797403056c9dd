"""Every SafetyGuard rule, one test each (the sim-arm tests repeat them through each arm)."""

from __future__ import annotations

import numpy as np
import pytest

from hardware import geometry
from hardware.safety import SafetyGuard, SafetyLimits

POSE = np.array([0.3, 0.0, 0.2, 1.0, 0.0, 0.0, 0.0])


def make_guard(**limits) -> SafetyGuard:
    return SafetyGuard(SafetyLimits(**limits), max_translation_m=0.02, max_rotation_rad=0.1)


def test_in_range_action_passes_unchanged_and_scales():
    g = make_guard()
    a = np.array([0.5, -0.25, 1.0, 0.0, 0.0, 0.5, 0.2], dtype=np.float32)
    d = g.check(a, POSE, 1.0, now=0.0)
    assert not d.clipped and not d.held and d.reason == ""
    np.testing.assert_allclose(d.action, a, atol=1e-6)
    np.testing.assert_allclose(d.target_pose[:3], POSE[:3] + [0.01, -0.005, 0.02], atol=1e-9)
    np.testing.assert_allclose(geometry.quat_error(d.target_pose[3:], POSE[3:]), [0, 0, 0.05], atol=1e-9)
    assert d.gripper_target == pytest.approx(0.6)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("index", [0, 4, 6])
def test_non_finite_action_is_held_and_does_not_feed_watchdog(bad, index):
    g = make_guard(watchdog_timeout_s=0.5)
    g.mark_alive(0.0)
    a = np.zeros(7)
    a[index] = bad
    d = g.check(a, POSE, 0.3, now=0.4)
    assert d.held and not d.clipped
    assert "non-finite" in d.reason and str(index) in d.reason
    np.testing.assert_array_equal(d.target_pose, POSE)
    assert np.all(np.isfinite(d.action)) and d.action[6] == pytest.approx(2 * 0.3 - 1)
    # the rejected command did not count as fresh: the watchdog still expires at 0.5 s after 0.0
    assert g.watchdog_expired(0.6)


def test_out_of_range_action_is_clipped_to_unit_box():
    g = make_guard()
    d = g.check(np.array([3.0, 0, 0, 0, 0, -7.0, 2.0]), POSE, 1.0, now=0.0)
    assert d.clipped and not d.held and "outside [-1, 1]" in d.reason
    assert np.all(np.abs(d.action) <= 1.0)
    np.testing.assert_allclose(d.action, [1, 0, 0, 0, 0, -1, 1], atol=1e-6)
    np.testing.assert_allclose(d.target_pose[0], POSE[0] + 0.02)
    assert d.gripper_target == 1.0


@pytest.mark.parametrize("shape", [(6,), (8,), (1, 7), ()])
def test_wrong_shape_raises_naming_the_action(shape):
    with pytest.raises(ValueError, match="action must have shape"):
        make_guard().check(np.zeros(shape), POSE, 1.0, now=0.0)


def test_non_numeric_raises():
    with pytest.raises(ValueError, match="action"):
        make_guard().check(["a"] * 7, POSE, 1.0, now=0.0)


def test_per_step_translation_limit_caps_the_norm():
    g = SafetyGuard(SafetyLimits(max_step_translation_m=0.01), max_translation_m=0.05, max_rotation_rad=0.1)
    d = g.check(np.array([1.0, 1.0, 0, 0, 0, 0, 1]), POSE, 1.0, now=0.0)
    step = d.target_pose[:3] - POSE[:3]
    assert d.clipped and "translation step capped" in d.reason
    assert np.linalg.norm(step) == pytest.approx(0.01)
    np.testing.assert_allclose(step[0], step[1])  # direction kept
    np.testing.assert_allclose(d.action[:3] * 0.05, step, atol=1e-7)  # applied action says what happened


def test_per_step_rotation_limit_caps_the_angle():
    g = SafetyGuard(SafetyLimits(max_step_rotation_rad=0.05), max_translation_m=0.02, max_rotation_rad=0.3)
    d = g.check(np.array([0, 0, 0, 1.0, 0, 0, 1]), POSE, 1.0, now=0.0)
    err = geometry.quat_error(d.target_pose[3:], POSE[3:])
    assert d.clipped and "rotation step capped" in d.reason
    np.testing.assert_allclose(err, [0.05, 0, 0], atol=1e-9)
    np.testing.assert_allclose(d.action[3], 0.05 / 0.3, atol=1e-6)


def test_workspace_box_clamps_target():
    g = make_guard(workspace_min=(0.1, -0.2, 0.05), workspace_max=(0.305, 0.2, 0.4))
    d = g.check(np.array([1.0, 0, -0.5, 0, 0, 0, 1]), POSE, 1.0, now=0.0)
    assert d.clipped and "workspace" in d.reason
    np.testing.assert_allclose(d.target_pose[:3], [0.305, 0.0, 0.19], atol=1e-9)
    np.testing.assert_allclose(d.action[0], 0.25, atol=1e-6)


def test_outside_workspace_walks_back_at_step_limit():
    g = make_guard(workspace_min=(0.0, -0.2, 0.05), workspace_max=(0.2, 0.2, 0.4), max_step_translation_m=0.03)
    far = POSE.copy()
    far[0] = 0.5  # 0.3 m outside the box
    d = g.check(np.zeros(7), far, 1.0, now=0.0)
    assert d.clipped and not d.held
    assert np.linalg.norm(d.target_pose[:3] - far[:3]) == pytest.approx(0.03)
    assert d.target_pose[0] < far[0]


def test_estop_latches_until_cleared():
    g = make_guard()
    g.estop("operator")
    assert g.estopped
    for _ in range(3):
        d = g.check(np.array([1.0, 0, 0, 0, 0, 0, 1]), POSE, 0.5, now=0.0)
        assert d.held and "e-stop" in d.reason and "operator" in d.reason
        np.testing.assert_array_equal(d.target_pose, POSE)
    g.estop("second")  # latching again keeps the first reason
    assert g.estop_reason == "operator"
    g.clear_estop()
    assert not g.estopped
    d = g.check(np.array([1.0, 0, 0, 0, 0, 0, 1]), POSE, 0.5, now=0.0)
    assert not d.held


def test_watchdog_expires_without_fresh_commands_and_trips_once():
    g = make_guard(watchdog_timeout_s=0.2)
    assert not g.watchdog_expired(100.0)  # never started
    g.mark_alive(0.0)
    assert not g.watchdog_expired(0.2)
    assert g.watchdog_expired(0.21)
    assert g.watchdog_trip(0.25) is True
    assert g.watchdog_trip(0.3) is False  # once per stall
    g.check(np.zeros(7), POSE, 1.0, now=0.35)  # fresh command re-arms it
    assert not g.watchdog_expired(0.5) and not g.watchdog_tripped
    assert g.watchdog_trip(0.6) is True


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(workspace_min=(0, 0, 1), workspace_max=(1, 1, 1)), "workspace_min"),
        (dict(workspace_min=(0, 0)), "workspace_min"),
        (dict(workspace_max=(1, float("nan"), 1)), "workspace_max"),
        (dict(max_step_translation_m=0), "max_step_translation_m"),
        (dict(max_step_rotation_rad=-1), "max_step_rotation_rad"),
        (dict(watchdog_timeout_s=float("inf")), "watchdog_timeout_s"),
    ],
)
def test_limits_validate_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SafetyLimits(**kwargs)


def test_guard_rejects_bad_scales():
    with pytest.raises(ValueError, match="max_translation_m"):
        SafetyGuard(SafetyLimits(), max_translation_m=0.0, max_rotation_rad=0.1)
