"""Teleop devices: the command they produce, their shared base and the registry.

Every device turns operator input into the stack's normalised 7-D action
``[dx, dy, dz, droll, dpitch, dyaw, gripper]`` (each in [-1, 1], base frame; gripper absolute,
-1 closed / +1 open) plus an ``intervening`` flag (the operator is in control right now), an
``estop`` flag and the raw button states. Devices that read a device file run their own reader
thread and keep the latest state; ``read()`` never blocks::

    with make_teleop("spacemouse") as dev:
        cmd = dev.read()          # TeleopCommand
        if cmd.estop: arm.estop("operator")
        elif cmd.intervening: arm.send_action(cmd.action)
"""

from __future__ import annotations

import abc
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from hardware.arm import apply_overrides, import_registry_modules
from hardware.validation import require_positive_finite

__all__ = [
    "TELEOP_REGISTRY",
    "TeleopCommand",
    "TeleopConfig",
    "TeleopDevice",
    "TeleopError",
    "make_teleop",
    "register_teleop",
]


class TeleopError(RuntimeError):
    """The teleop device failed (cannot open, reader thread died)."""


@dataclass
class TeleopCommand:
    """One reading of a teleop device."""

    action: np.ndarray  # (7,) float32 in [-1, 1]: [dx, dy, dz, droll, dpitch, dyaw, gripper]
    intervening: bool  # the operator is steering the arm right now
    estop: bool  # the operator asks for an emergency stop (latch it on the arm)
    buttons: dict[str, bool] = field(default_factory=dict)  # raw button states by name
    timestamp: float = 0.0  # time.monotonic() of the newest input this command reflects


@dataclass
class TeleopConfig:
    """Settings every teleop device shares."""

    # |axis| below this fraction of full scale counts as zero (springy sticks never rest at 0)
    deadzone: float = 0.1
    # multiplies the translation part of the action (before clipping to [-1, 1])
    translation_gain: float = 1.0
    # multiplies the rotation part of the action (before clipping to [-1, 1])
    rotation_gain: float = 1.0
    # input older than this (seconds) no longer counts as intervening
    stale_timeout_s: float = 0.5
    # gripper target (-1 closed .. +1 open) before the operator touches a gripper button
    initial_gripper: float = 1.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.deadzone < 1.0):
            raise ValueError(f"{type(self).__name__}.deadzone must be in [0, 1), got {self.deadzone!r}")
        require_positive_finite(self, "translation_gain", "rotation_gain", "stale_timeout_s")
        if not (-1.0 <= self.initial_gripper <= 1.0):
            raise ValueError(f"{type(self).__name__}.initial_gripper must be in [-1, 1], got {self.initial_gripper!r}")


def apply_deadzone(values: np.ndarray, deadzone: float) -> np.ndarray:
    """Zero entries with |v| < deadzone and rescale the rest so output stays continuous in [-1, 1]."""
    v = np.clip(np.asarray(values, dtype=np.float64), -1.0, 1.0)
    mag = np.maximum(np.abs(v) - deadzone, 0.0) / (1.0 - deadzone)
    return np.sign(v) * mag


class TeleopDevice(abc.ABC):
    """Base: holds the latest command under a lock; subclasses feed it (thread or calls)."""

    Config: type[TeleopConfig] = TeleopConfig

    def __init__(self, config: TeleopConfig | None = None):
        self.config = config if config is not None else self.Config()
        if not isinstance(self.config, TeleopConfig):
            raise TypeError(f"{type(self).__name__} needs a TeleopConfig, got {type(self.config).__name__}")
        self._lock = threading.Lock()
        self._gripper = float(self.config.initial_gripper)
        self._last_input: float | None = None
        self._connected = False

    # ---- driver primitives ----------------------------------------------------------------------
    def _open(self) -> None:
        """Open the device (default: nothing to open)."""

    def _close(self) -> None:
        """Release the device; must not raise if already closed."""

    @abc.abstractmethod
    def _compute(self, now: float) -> TeleopCommand:
        """The command for the current input state (called with ``self._lock`` held)."""

    # ---- public API -----------------------------------------------------------------------------
    def connect(self) -> "TeleopDevice":
        if not self._connected:
            self._open()
            self._connected = True
        return self

    def disconnect(self) -> None:
        if self._connected:
            self._connected = False
            self._close()

    @property
    def connected(self) -> bool:
        return self._connected

    def __enter__(self) -> "TeleopDevice":
        return self.connect()

    def __exit__(self, *exc) -> None:
        self.disconnect()

    def read(self, now: float | None = None) -> TeleopCommand:
        """The latest command (non-blocking); stale input gives zero motion, not intervening."""
        now = time.monotonic() if now is None else float(now)
        with self._lock:
            cmd = self._compute(now)
        stale = self._last_input is None or now - self._last_input > self.config.stale_timeout_s
        if stale and cmd.intervening and not self._holds_state():
            cmd.intervening = False
            cmd.action[:6] = 0.0
        cmd.action = np.clip(cmd.action, -1.0, 1.0).astype(np.float32)
        return cmd

    def _holds_state(self) -> bool:
        """True for devices whose input is a held state (a key stays down without new events)."""
        return False

    def _mark_input(self, t: float | None = None) -> None:
        self._last_input = time.monotonic() if t is None else float(t)

    def _make_action(self, trans: np.ndarray, rot: np.ndarray) -> np.ndarray:
        a = np.zeros(7, dtype=np.float64)
        a[:3] = np.asarray(trans, dtype=np.float64) * self.config.translation_gain
        a[3:6] = np.asarray(rot, dtype=np.float64) * self.config.rotation_gain
        a[6] = self._gripper
        return np.clip(a, -1.0, 1.0)


# ---- registry -------------------------------------------------------------------------------
TELEOP_REGISTRY: dict[str, tuple[type[TeleopConfig], type[TeleopDevice]]] = {}
TELEOP_MODULES: tuple[str, ...] = ("hardware.teleop", "hardware.sim.operator")


def register_teleop(name: str) -> Callable[[type[TeleopDevice]], type[TeleopDevice]]:
    """Class decorator: register a ``TeleopDevice`` subclass (and its ``Config``) under ``name``."""

    def deco(cls: type[TeleopDevice]) -> type[TeleopDevice]:
        if not (isinstance(cls, type) and issubclass(cls, TeleopDevice)):
            raise TypeError(f"register_teleop({name!r}) decorates TeleopDevice subclasses, got {cls!r}")
        existing = TELEOP_REGISTRY.get(name)
        if existing is not None and existing[1].__qualname__ != cls.__qualname__:
            raise ValueError(f"teleop name {name!r} already registered by {existing[1].__qualname__}")
        TELEOP_REGISTRY[name] = (cls.Config, cls)
        return cls

    return deco


def make_teleop(name: str, config: TeleopConfig | None = None, **overrides: Any) -> TeleopDevice:
    """Build the teleop device registered as ``name`` with config ``overrides``; not connected."""
    if name not in TELEOP_REGISTRY:
        import_registry_modules(TELEOP_MODULES, TELEOP_REGISTRY, name)
    if name not in TELEOP_REGISTRY:
        raise KeyError(f"unknown teleop device {name!r}; registered: {sorted(TELEOP_REGISTRY)}")
    config_cls, cls = TELEOP_REGISTRY[name]
    cfg = config if config is not None else config_cls()
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    return cls(cfg)
