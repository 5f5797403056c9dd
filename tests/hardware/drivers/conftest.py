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
