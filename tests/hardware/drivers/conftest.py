"""Fixtures for driver tests: the Dynamixel Protocol 2.0 emulator (tests/emulators/dynamixel.py)."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

_EMULATOR_PATH = pathlib.Path(__file__).resolve().parents[2] / "emulators" / "dynamixel.py"


def load_dynamixel_emulator_module():
    """Import tests/emulators/dynamixel.py by path (tests are not a package under importlib mode)."""
    name = "robot_stack_tests_dynamixel_emulator"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _EMULATOR_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def dxl_emulator_module():
    return load_dynamixel_emulator_module()


def wait_until_settled(arm, since=None, timeout_s: float = 10.0, still_mm: float = 0.1, still_s: float = 0.2) -> None:
    """Block until the end-effector has moved less than ``still_mm`` for ``still_s``.

    With ``since`` (the position before a command), first wait until the arm has left it by more
    than 1 mm: a simulator under CPU load can start a motion late, and a next command sent before
    it started would preempt it (the step would be lost, not merely slow).
    """
    import time

    import numpy as np

    deadline = time.monotonic() + timeout_s
    if since is not None:
        while np.linalg.norm(arm.get_observation().ee_pose[:3] - np.asarray(since)[:3]) < 1e-3:
            if time.monotonic() > deadline:
                raise AssertionError(f"arm did not start moving within {timeout_s} s")
            time.sleep(0.02)
    last = arm.get_observation().ee_pose[:3]
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now_pos = arm.get_observation().ee_pose[:3]
        if np.linalg.norm(now_pos - last) * 1000 > still_mm:
            still_since = time.monotonic()
        elif time.monotonic() - still_since >= still_s:
            return
        last = now_pos
    raise AssertionError(f"arm did not settle within {timeout_s} s")


@pytest.fixture
def settle():
    """``settle(arm, since=pose_before_command)``: wait until the arm has finished that step."""
    return wait_until_settled
