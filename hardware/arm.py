"""The arm interface every driver (real or sim) implements, and the registry that builds them by name.

A driver subclasses ``Arm`` and implements five primitives; the base class owns validation,
safety (``SafetyGuard``), the e-stop latch, the command watchdog, named poses and locking::

    @register_arm("my_arm")
    class MyArm(Arm):
        Config = MyArmConfig                              # subclass of ArmConfig
        def _connect(self): ...
        def _disconnect(self): ...
        def _read_observation(self) -> ArmObservation: ...
        def _command_pose(self, target_pose, gripper_target): ...   # (7,) base frame, 0..1
        def _move_to_joints(self, q): ...                 # blocking joint move, (n_joints,) rad

Optional overrides: ``_hold()`` (default: command the current pose), ``_estop()`` (default:
``_hold()``), ``default_named_poses()``, ``_now()`` (default ``time.monotonic``; sim arms return
simulated seconds) and ``uses_wall_clock`` (False for sim arms: no watchdog thread, the scene
checks the watchdog in simulated time).
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from hardware.safety import ACTION_DIM, SafetyDecision, SafetyGuard, SafetyLimits
from hardware.validation import require_positive_finite

log = logging.getLogger(__name__)

__all__ = [
    "ACTION_DIM",
    "ActionSent",
    "Arm",
    "ArmConfig",
    "ArmConnectionError",
    "ArmError",
    "ArmNotConnectedError",
    "ArmObservation",
    "ARM_REGISTRY",
    "make_arm",
    "register_arm",
    "UnreachableTargetError",
]


@dataclass
class ArmObservation:
    """One proprioceptive reading."""

    joint_positions: np.ndarray  # (n_joints,) rad
    ee_pose: np.ndarray  # (7,) base frame [x, y, z, qw, qx, qy, qz], metres
    gripper: float  # opening fraction 0 (closed) .. 1 (open)
    timestamp: float  # time.monotonic() seconds (sim: simulated seconds)

    def state_vector(self) -> np.ndarray:
        """Proprio ``(n_joints + 8,)`` float32: joints, ee pose (7), gripper."""
        return np.concatenate(
            [np.asarray(self.joint_positions, dtype=np.float32), np.asarray(self.ee_pose, dtype=np.float32), [np.float32(self.gripper)]]
        ).astype(np.float32)


@dataclass
class ActionSent:
    """What actually reached the arm for one ``send_action`` call (record this, not the request)."""

    action: np.ndarray  # (7,) the normalised action actually applied after safety
    target_pose: np.ndarray  # (7,) commanded ee pose
    gripper_target: float  # 0..1
    clipped: bool  # safety changed the requested action
    held: bool  # nothing was executed: arm held (e-stop, watchdog, rejected)
    reason: str  # '' or why it was clipped/held


@dataclass
class ArmConfig:
    """Settings every arm shares; drivers subclass it to add connection fields."""

    # metres of end-effector translation per unit action per control step
    max_translation_m: float = 0.02
    # radians of end-effector rotation per unit action per control step
    max_rotation_rad: float = 0.1
    # control rate (Hz) the policy/actor runs this arm at
    control_hz: float = 5.0
    # hard safety limits applied to every command
    safety: SafetyLimits = field(default_factory=SafetyLimits)
    # joint positions (rad) of the "home" pose; empty = the driver's default
    home_joints: tuple[float, ...] = ()
    # joint positions (rad) of the "reset" pose; empty = the driver's default
    reset_joints: tuple[float, ...] = ()
    # run a background thread that checks the command watchdog (wall-clock arms only)
    watchdog_thread: bool = True

    def __post_init__(self) -> None:
        require_positive_finite(self, "max_translation_m", "max_rotation_rad", "control_hz")
        if isinstance(self.safety, Mapping):
            self.safety = SafetyLimits(**self.safety)
        if not isinstance(self.safety, SafetyLimits):
            raise ValueError(f"{type(self).__name__}.safety must be SafetyLimits, got {type(self.safety).__name__}")
        for name in ("home_joints", "reset_joints"):
            value = tuple(float(v) for v in getattr(self, name))
            if not all(math.isfinite(v) for v in value):
                raise ValueError(f"{type(self).__name__}.{name} must be finite, got {value!r}")
            setattr(self, name, value)


class ArmError(RuntimeError):
    """Base of the arm errors every driver raises (so callers can catch one family)."""


class ArmConnectionError(ArmError):
    """The link to the arm is lost or could not be opened."""


class ArmNotConnectedError(ArmConnectionError):
    """An operation that needs the arm was called before ``connect()`` / after ``disconnect()``."""


class UnreachableTargetError(ArmError, ValueError):
    """The target pose is outside what the arm can reach; nothing was executed."""


class Arm(abc.ABC):
    """Base of every arm: safety, e-stop latch, watchdog, named poses; drivers add the I/O."""

    Config: type[ArmConfig] = ArmConfig
    #: False for sim arms: their clock is simulated time and the scene checks the watchdog.
    uses_wall_clock: bool = True

    def __init__(self, config: ArmConfig | None = None):
        self.config = config if config is not None else self.Config()
        if not isinstance(self.config, ArmConfig):
            raise TypeError(f"{type(self).__name__} needs an ArmConfig, got {type(self.config).__name__}")
        self.guard = SafetyGuard(self.config.safety, self.config.max_translation_m, self.config.max_rotation_rad)
        self._lock = threading.RLock()
        self._connected = False
        self._watchdog_stop = threading.Event()
        self._watchdog_thread: threading.Thread | None = None
        self.last_sent: ActionSent | None = None
        self._last_gripper_target: float | None = None

    # ---- driver primitives --------------------------------------------------------------------
    @abc.abstractmethod
    def _connect(self) -> None:
        """Open the connection to the device (or build the sim)."""

    @abc.abstractmethod
    def _disconnect(self) -> None:
        """Close the connection; must not raise if already closed."""

    @abc.abstractmethod
    def _read_observation(self) -> ArmObservation:
        """The current joints / ee pose / gripper."""

    @abc.abstractmethod
    def _command_pose(self, target_pose: np.ndarray, gripper_target: float) -> None:
        """Send a safe end-effector target ``(7,)`` (base frame) and gripper opening ``0..1``; non-blocking."""

    @abc.abstractmethod
    def _move_to_joints(self, q: np.ndarray) -> None:
        """Move to joint positions ``(n_joints,)`` rad and return when there (blocking)."""

    def _hold(self) -> None:
        """Stop moving and hold the current pose (default: command where the arm is now).

        The gripper keeps its last commanded target: re-commanding the measured opening would
        relax the grip on a held object and drop it.
        """
        obs = self._read_observation()
        gripper = self._last_gripper_target if self._last_gripper_target is not None else float(obs.gripper)
        self._command_pose(np.asarray(obs.ee_pose, dtype=np.float64), gripper)

    def _estop(self) -> None:
        """Stop as fast as the device allows (default: ``_hold``)."""
        self._hold()

    def _now(self) -> float:
        """The arm's clock: time.monotonic() for real arms, simulated seconds for sim arms."""
        return time.monotonic()

    def default_named_poses(self) -> dict[str, np.ndarray]:
        """Driver defaults for named joint poses, e.g. {"home": q, "reset": q}."""
        return {}

    # ---- public API ---------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected

    def connect(self) -> "Arm":
        with self._lock:
            if self._connected:
                return self
            self._connect()
            self._connected = True
            self.guard.mark_alive(self._now())
        if self.uses_wall_clock and self.config.watchdog_thread:
            self._watchdog_stop.clear()
            self._watchdog_thread = threading.Thread(target=self._watchdog_loop, name=f"{type(self).__name__}-watchdog", daemon=True)
            self._watchdog_thread.start()
        return self

    def disconnect(self) -> None:
        self._watchdog_stop.set()
        if self._watchdog_thread is not None:
            self._watchdog_thread.join(timeout=2.0)
            self._watchdog_thread = None
        with self._lock:
            if not self._connected:
                return
            self._connected = False
            self._disconnect()

    def __enter__(self) -> "Arm":
        return self.connect()

    def __exit__(self, *exc) -> None:
        self.disconnect()

    def get_observation(self) -> ArmObservation:
        with self._lock:
            self._require_connected("get_observation")
            return self._read_observation()

    def send_action(self, action: np.ndarray) -> ActionSent:
        """Validate ``action (7,)`` in [-1, 1], apply the safety guard, command the safe target.

        Raises ValueError for a wrong shape / non-numeric action (nothing executed). NaN/inf
        actions, and any action while the e-stop is latched, come back ``held=True``.
        """
        with self._lock:
            self._require_connected("send_action")
            obs = self._read_observation()
            decision = self.guard.check(action, obs.ee_pose, obs.gripper, self._now())
            if not decision.held:
                self._command_pose(decision.target_pose, decision.gripper_target)
                self._last_gripper_target = decision.gripper_target
            elif not self.guard.estopped:
                # A rejected command must not leave an old motion running: stop where we are.
                self._hold()
            sent = _to_action_sent(decision)
            if sent.held or sent.clipped:
                log.debug("%s: %s", type(self).__name__, sent.reason)
            self.last_sent = sent
            return sent

    def named_poses(self) -> dict[str, np.ndarray]:
        """Named joint poses: the driver's defaults overridden by ``config.home_joints/reset_joints``."""
        poses = {k: np.asarray(v, dtype=np.float64) for k, v in self.default_named_poses().items()}
        if self.config.home_joints:
            poses["home"] = np.asarray(self.config.home_joints, dtype=np.float64)
        if self.config.reset_joints:
            poses["reset"] = np.asarray(self.config.reset_joints, dtype=np.float64)
        return poses

    def move_to(self, name: str) -> None:
        """Blocking move to a named joint pose ("home", "reset", ...); refused while e-stopped."""
        poses = self.named_poses()
        if name not in poses:
            raise KeyError(f"{type(self).__name__} has no named pose {name!r}; known: {sorted(poses)}")
        with self._lock:
            self._require_connected("move_to")
            if self.guard.estopped:
                raise RuntimeError(f"{type(self).__name__}: move_to({name!r}) refused, e-stop latched ({self.guard.estop_reason})")
            self._move_to_joints(poses[name])
            self.guard.mark_alive(self._now())

    def hold(self) -> None:
        """Hold the current pose now."""
        with self._lock:
            self._require_connected("hold")
            self._hold()

    def estop(self, reason: str = "e-stop") -> None:
        """Stop and latch: every later action is held until ``clear_estop()``."""
        with self._lock:
            self.guard.estop(reason)
            if self._connected:
                self._estop()

    def clear_estop(self) -> None:
        """Release the e-stop latch (an explicit operator decision)."""
        with self._lock:
            self.guard.clear_estop()
            self.guard.mark_alive(self._now())

    @property
    def estopped(self) -> bool:
        return self.guard.estopped

    def watchdog_check(self, now: float | None = None) -> bool:
        """True while no fresh command arrived within the watchdog timeout; holds once per stall."""
        now = self._now() if now is None else float(now)
        if not self._connected:
            return False
        if self.guard.watchdog_trip(now):
            with self._lock:
                if self._connected:
                    log.info("%s: watchdog expired, holding position", type(self).__name__)
                    self._hold()
        return self.guard.watchdog_expired(now)

    # ---- helpers ------------------------------------------------------------------------------
    def _require_connected(self, what: str) -> None:
        if not self._connected:
            raise ArmNotConnectedError(f"{type(self).__name__}.{what}() needs connect() first")

    def _watchdog_loop(self) -> None:
        period = max(0.005, self.config.safety.watchdog_timeout_s / 4.0)
        while not self._watchdog_stop.wait(period):
            try:
                self.watchdog_check()
            except Exception:  # a failing driver must not kill the watchdog silently
                log.exception("%s: watchdog check failed", type(self).__name__)


def _to_action_sent(d: SafetyDecision) -> ActionSent:
    return ActionSent(
        action=np.asarray(d.action, dtype=np.float32),
        target_pose=np.asarray(d.target_pose, dtype=np.float64),
        gripper_target=float(d.gripper_target),
        clipped=bool(d.clipped),
        held=bool(d.held),
        reason=d.reason,
    )


# ---- registry -------------------------------------------------------------------------------
ARM_REGISTRY: dict[str, tuple[type[ArmConfig], type[Arm]]] = {}

#: Modules imported on a registry miss, so ``make_arm("sim_widowx250")`` works without an import.
#: A module whose vendor SDK is missing is skipped (its arms just stay unregistered).
ARM_MODULES: tuple[str, ...] = ("hardware.sim.arms", "hardware.franka", "hardware.widowx_ai", "hardware.widowx250")


def register_arm(name: str) -> Callable[[type[Arm]], type[Arm]]:
    """Class decorator: register an ``Arm`` subclass (and its ``Config``) under ``name``."""

    def deco(cls: type[Arm]) -> type[Arm]:
        if not (isinstance(cls, type) and issubclass(cls, Arm)):
            raise TypeError(f"register_arm({name!r}) decorates Arm subclasses, got {cls!r}")
        existing = ARM_REGISTRY.get(name)
        if existing is not None and existing[1] is not cls and existing[1].__qualname__ != cls.__qualname__:
            raise ValueError(f"arm name {name!r} already registered by {existing[1].__module__}.{existing[1].__qualname__}")
        ARM_REGISTRY[name] = (cls.Config, cls)
        return cls

    return deco


def import_registry_modules(modules: tuple[str, ...], registry: Mapping[str, Any], name: str) -> None:
    """Import ``modules`` one by one until ``name`` is registered (skipping ones whose SDK is missing)."""
    for module in modules:
        if name in registry:
            return
        try:
            importlib.import_module(module)
        except ImportError as exc:
            # The package not existing is normal (optional driver); anything else is worth a warning.
            missing_itself = isinstance(exc, ModuleNotFoundError) and exc.name is not None and module.startswith(exc.name)
            (log.debug if missing_itself else log.warning)("skipping %s: %r", module, exc)


def apply_overrides(config: Any, overrides: Mapping[str, Any]) -> Any:
    """A copy of dataclass ``config`` with ``overrides``; nested fields as dicts or dotted keys."""
    nested: dict[str, dict[str, Any]] = {}
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        if "." in key:
            head, rest = key.split(".", 1)
            nested.setdefault(head, {})[rest] = value
        else:
            flat[key] = value
    names = {f.name for f in dataclasses.fields(config)}
    for key in list(flat) + list(nested):
        if key not in names:
            raise ValueError(f"{type(config).__name__} has no field {key!r}; fields: {sorted(names)}")
    for key, value in list(flat.items()):
        current = getattr(config, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            nested.setdefault(key, {}).update(value)
            del flat[key]
    for key, sub in nested.items():
        flat[key] = apply_overrides(getattr(config, key), sub)
    return dataclasses.replace(config, **flat)


def make_arm(name: str, config: ArmConfig | None = None, **overrides: Any) -> Arm:
    """Build the arm registered as ``name``; ``overrides`` replace config fields (``safety={...}`` or
    ``**{"safety.watchdog_timeout_s": 1.0}`` for nested ones). Not connected yet."""
    if name not in ARM_REGISTRY:
        import_registry_modules(ARM_MODULES, ARM_REGISTRY, name)
    if name not in ARM_REGISTRY:
        raise KeyError(f"unknown arm {name!r}; registered: {sorted(ARM_REGISTRY)}")
    config_cls, arm_cls = ARM_REGISTRY[name]
    cfg = config if config is not None else config_cls()
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    return arm_cls(cfg)
