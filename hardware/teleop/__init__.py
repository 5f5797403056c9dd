"""Teleop devices -> normalised 7-D actions + intervening / e-stop flags; registry ``make_teleop``.

Registered names: "spacemouse" (hidraw / hidapi), "gamepad" (joystick API / evdev),
"keyboard" (evdev or fed key events), "web" (dashboard-fed key states), and, for sim
sessions, "sim_operator" (``hardware.sim.operator``: a simulated person who takes over
unfinished episodes with the scripted expert).
"""

from hardware.teleop.base import (
    TELEOP_REGISTRY,
    TeleopCommand,
    TeleopConfig,
    TeleopDevice,
    TeleopError,
    make_teleop,
    register_teleop,
)
from hardware.teleop.gamepad import GamepadConfig, GamepadTeleop
from hardware.teleop.keyboard import KeyboardConfig, KeyboardTeleop, WebTeleop, WebTeleopConfig
from hardware.teleop.spacemouse import SpaceMouseConfig, SpaceMouseTeleop

__all__ = [
    "TELEOP_REGISTRY",
    "GamepadConfig",
    "GamepadTeleop",
    "KeyboardConfig",
    "KeyboardTeleop",
    "SpaceMouseConfig",
    "SpaceMouseTeleop",
    "TeleopCommand",
    "TeleopConfig",
    "TeleopDevice",
    "TeleopError",
    "WebTeleop",
    "WebTeleopConfig",
    "make_teleop",
    "register_teleop",
]
