"""Safety at the device edge, shared by every arm (real and sim) through ``Arm.send_action``.

Rules, applied in this order to each normalised action ``(7,)`` ``[dx, dy, dz, droll, dpitch,
dyaw, gripper]``:

1. e-stop latched -> held (nothing executed) until ``clear_estop()``;
2. NaN / inf anywhere -> held (the command is rejected and does not feed the watchdog);
3. entries outside [-1, 1] -> clipped to [-1, 1];
4. the scaled delta (``action * max_translation_m / max_rotation_rad``) is capped to the hard
   per-step limits ``max_step_translation_m`` / ``max_step_rotation_rad`` (norms);
5. the target position is clamped into the workspace box (and the step re-capped, so an arm
   that starts outside the box walks back in at the per-step limit);
6. watchdog: no accepted command within ``watchdog_timeout_s`` -> the arm holds its position.

The guard only computes; the ``Arm`` executes (holding, stopping). It is thread-safe.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from dataclasses import dataclass, field

import numpy as np

from hardware import geometry
from hardware.validation import require_positive_finite

ACTION_DIM = 7


@dataclass
class SafetyLimits:
    """Hard limits enforced on every command, whatever the policy or teleop asks for."""

    # lower corner [x, y, z] of the allowed end-effector box, base frame, metres
    workspace_min: tuple[float, float, float] = (-1.0, -1.0, 0.0)
    # upper corner [x, y, z] of the allowed end-effector box, base frame, metres
    workspace_max: tuple[float, float, float] = (1.0, 1.0, 1.0)
    # hard cap on the end-effector translation per control step (norm, metres)
    max_step_translation_m: float = 0.05
    # hard cap on the end-effector rotation per control step (angle, radians)
    max_step_rotation_rad: float = 0.35
    # no accepted command for this long (seconds) -> the arm holds its position
    watchdog_timeout_s: float = 0.5

    def __post_init__(self) -> None:
        for name in ("workspace_min", "workspace_max"):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 3 or not all(math.isfinite(v) for v in value):
                raise ValueError(f"SafetyLimits.{name} must be 3 finite numbers, got {getattr(self, name)!r}")
            setattr(self, name, value)
        lo, hi = np.array(self.workspace_min), np.array(self.workspace_max)
        if np.any(lo >= hi):
            raise ValueError(
                f"SafetyLimits.workspace_min {self.workspace_min} must be below workspace_max {self.workspace_max} on every axis"
            )
        require_positive_finite(self, "max_step_translation_m", "max_step_rotation_rad", "watchdog_timeout_s")


@dataclass
class SafetyDecision:
    """What the guard decided for one action (``Arm.send_action`` turns it into an ``ActionSent``)."""

    action: np.ndarray  # (7,) normalised action actually applied (zeros + current gripper if held)
    target_pose: np.ndarray  # (7,) commanded end-effector pose [x, y, z, qw, qx, qy, qz]
    gripper_target: float  # 0 (closed) .. 1 (open)
    clipped: bool  # the requested action was changed
    held: bool  # nothing executed
    reason: str = ""  # '; '-joined reasons for clipping / holding
    reasons: list[str] = field(default_factory=list)


class SafetyGuard:
    """Applies ``SafetyLimits`` to actions and keeps the e-stop latch and the watchdog clock.

    ``max_translation_m`` / ``max_rotation_rad`` are the arm config's action scales (metres /
    radians per unit action per step); the hard per-step caps come from the limits.
    """

    def __init__(self, limits: SafetyLimits, max_translation_m: float, max_rotation_rad: float):
        if not (max_translation_m > 0 and max_rotation_rad > 0):
            raise ValueError(
                f"action scales must be positive, got max_translation_m={max_translation_m!r}, "
                f"max_rotation_rad={max_rotation_rad!r}"
            )
        self.limits = limits
        self.max_translation_m = float(max_translation_m)
        self.max_rotation_rad = float(max_rotation_rad)
        self._lock = threading.Lock()
        self._estop_reason: str | None = None
        self._last_command_time: float | None = None
        self._watchdog_tripped = False

    # ---- e-stop latch -------------------------------------------------------------------------
    @property
    def estopped(self) -> bool:
        return self._estop_reason is not None

    @property
    def estop_reason(self) -> str:
        return self._estop_reason or ""

    def estop(self, reason: str = "e-stop") -> None:
        """Latch the e-stop: every action is held until ``clear_estop()``."""
        with self._lock:
            if self._estop_reason is None:
                self._estop_reason = reason or "e-stop"

    def clear_estop(self) -> None:
        """Release the latch; the watchdog restarts from the next ``mark_alive``/command."""
        with self._lock:
            self._estop_reason = None

    # ---- watchdog -----------------------------------------------------------------------------
    def mark_alive(self, now: float) -> None:
        """Start (or restart) the watchdog clock, e.g. on connect, without a command."""
        with self._lock:
            self._last_command_time = float(now)
            self._watchdog_tripped = False

    def watchdog_expired(self, now: float) -> bool:
        """True when no accepted command arrived within ``watchdog_timeout_s`` before ``now``."""
        with self._lock:
            if self._last_command_time is None:
                return False
            return float(now) - self._last_command_time > self.limits.watchdog_timeout_s

    def watchdog_trip(self, now: float) -> bool:
        """True exactly once per stall: the first call that finds the watchdog expired."""
        if not self.watchdog_expired(now):
            return False
        with self._lock:
            if self._watchdog_tripped:
                return False
            self._watchdog_tripped = True
            return True

    @property
    def watchdog_tripped(self) -> bool:
        return self._watchdog_tripped

    # ---- the rules ----------------------------------------------------------------------------
    def held_decision(self, current_pose: np.ndarray, current_gripper: float, reason: str) -> SafetyDecision:
        """A decision that executes nothing: zero deltas, the current pose and gripper."""
        g = float(np.clip(current_gripper, 0.0, 1.0))
        action = np.zeros(ACTION_DIM, dtype=np.float32)
        action[6] = 2.0 * g - 1.0
        return SafetyDecision(
            action=action,
            target_pose=np.asarray(current_pose, dtype=np.float64).copy(),
            gripper_target=g,
            clipped=False,
            held=True,
            reason=reason,
            reasons=[reason],
        )

    def check(self, action: np.ndarray, current_pose: np.ndarray, current_gripper: float, now: float) -> SafetyDecision:
        """Apply every rule to ``action (7,)`` from ``current_pose (7,)``; feeds the watchdog if accepted.

        Raises ValueError for a wrong shape or non-numeric input (a programming error, never
        executed); NaN/inf and the e-stop give a held decision instead.
        """
        try:
            a = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"action must be numeric with shape ({ACTION_DIM},): {exc}") from None
        if a.shape != (ACTION_DIM,):
            raise ValueError(f"action must have shape ({ACTION_DIM},), got {a.shape}")
        current_pose = np.asarray(current_pose, dtype=np.float64).reshape(7)
        if self.estopped:
            return self.held_decision(current_pose, current_gripper, f"e-stop latched ({self.estop_reason})")
        if not np.all(np.isfinite(a)):
            bad = [i for i in range(ACTION_DIM) if not math.isfinite(a[i])]
            return self.held_decision(current_pose, current_gripper, f"rejected non-finite action entries {bad}")

        reasons: list[str] = []
        if np.any(np.abs(a) > 1.0):
            reasons.append("action outside [-1, 1] clipped")
            a = np.clip(a, -1.0, 1.0)

        dpos = a[:3] * self.max_translation_m
        drot = a[3:6] * self.max_rotation_rad
        dpos, capped = _cap_norm(dpos, self.limits.max_step_translation_m)
        if capped:
            reasons.append(f"translation step capped at {self.limits.max_step_translation_m} m")
        drot, capped = _cap_norm(drot, self.limits.max_step_rotation_rad)
        if capped:
            reasons.append(f"rotation step capped at {self.limits.max_step_rotation_rad} rad")

        lo, hi = np.array(self.limits.workspace_min), np.array(self.limits.workspace_max)
        target_pos = current_pose[:3] + dpos
        clamped = np.clip(target_pos, lo, hi)
        if np.any(clamped != target_pos):
            reasons.append("target clamped to workspace box")
            dpos, _ = _cap_norm(clamped - current_pose[:3], self.limits.max_step_translation_m)

        target = geometry.apply_delta(current_pose, dpos, drot)
        applied = np.empty(ACTION_DIM, dtype=np.float32)
        applied[:3] = dpos / self.max_translation_m
        applied[3:6] = drot / self.max_rotation_rad
        applied[6] = a[6]
        # Rounding can push a re-derived entry a hair past 1: keep the contract exact.
        applied = np.clip(applied, -1.0, 1.0)
        with self._lock:
            self._last_command_time = float(now)
            self._watchdog_tripped = False
        return SafetyDecision(
            action=applied,
            target_pose=target,
            gripper_target=float((a[6] + 1.0) / 2.0),
            clipped=bool(reasons),
            held=False,
            reason="; ".join(reasons),
            reasons=reasons,
        )


def _cap_norm(v: np.ndarray, limit: float) -> tuple[np.ndarray, bool]:
    n = float(np.linalg.norm(v))
    if n > limit * (1.0 + 1e-9):
        return v * (limit / n), True
    return v, False


def replace_limits(limits: SafetyLimits, **changes) -> SafetyLimits:
    """A copy of ``limits`` with ``changes`` applied (validated again)."""
    return dataclasses.replace(limits, **changes)
