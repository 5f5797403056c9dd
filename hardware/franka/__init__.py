"""Franka FR3 through `franky` (franky-control); registers the "franka" arm. Imports franky."""

from hardware.franka.arm import FrankaArm, FrankaConfig

__all__ = ["FrankaArm", "FrankaConfig"]
