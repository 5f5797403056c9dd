"""Where the dashboard's commands go: session commands, e-stop, e-stop clear and web teleop.

The ROS side implements :class:`ControlSink` by publishing ``session/command``, ``arm/estop``,
``arm/estop_clear``, ``sim/reset_scene``, ``teleop/action`` and ``teleop/intervening``
(TOPICS.md). The web app has already checked the operator's token before any of these methods
is called.
"""

from __future__ import annotations

import abc
import hashlib
import threading
import time
from typing import Literal

import numpy as np

SessionCommand = Literal["start", "pause", "resume", "stop"]
SESSION_COMMANDS: tuple[str, ...] = ("start", "pause", "resume", "stop")


class ControlUnavailable(RuntimeError):
    """No robot is connected (e.g. ``robot-stack monitor --store PATH`` without a ROS graph)."""


def token_hash(token: str) -> str:
    """SHA-256 hex digest of the session token, as sent on ``arm/estop_clear`` ({"token_hash": ...})."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ControlSink(abc.ABC):
    """Receives authenticated operator commands; the ROS side turns them into topic messages."""

    @abc.abstractmethod
    def session_command(self, cmd: SessionCommand) -> None:
        """``session/command`` {"cmd": cmd}, cmd one of start/pause/resume/stop."""

    @abc.abstractmethod
    def estop(self) -> None:
        """``arm/estop`` true: stop the arm now (the controller latches it)."""

    @abc.abstractmethod
    def clear_estop(self, token_hash: str) -> None:
        """``arm/estop_clear`` {"token_hash": token_hash}; the controller clears only with the session's hash."""

    @abc.abstractmethod
    def reset_scene(self, token_hash: str, task: str = "", keep_layout: bool = False) -> None:
        """``sim/reset_scene`` {"token_hash": ..., "task": task, "keep_layout": keep_layout}: a sim
        controller re-stages its scene for a start of ``task`` ('' = the forward task), only the
        task's object moved if ``keep_layout``; real controllers do not listen."""

    @abc.abstractmethod
    def teleop(self, action: np.ndarray) -> None:
        """``teleop/action``: one web-teleop action, float32 (7,) in [-1, 1] (already validated)."""

    @abc.abstractmethod
    def set_intervening(self, intervening: bool) -> None:
        """``teleop/intervening``: true while the web operator has control, false when released."""


class NullControlSink(ControlSink):
    """No robot: every command raises :class:`ControlUnavailable` (the API answers 503)."""

    def _refuse(self, *_args, **_kwargs) -> None:
        raise ControlUnavailable("no robot is connected to this dashboard (store browser only)")

    session_command = estop = clear_estop = reset_scene = teleop = set_intervening = _refuse  # type: ignore[assignment]


class RecordingControlSink(ControlSink):
    """Keeps every call as ``(time.time(), kind, value)``; for tests and for a dry-run dashboard."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[tuple[float, str, object]] = []
        self.estopped = False
        self.intervening = False

    def _add(self, kind: str, value: object) -> None:
        with self._lock:
            self.calls.append((time.time(), kind, value))

    def session_command(self, cmd: SessionCommand) -> None:
        self._add("session_command", cmd)

    def estop(self) -> None:
        self.estopped = True
        self._add("estop", True)

    def clear_estop(self, token_hash: str) -> None:
        self.estopped = False
        self._add("clear_estop", token_hash)

    def reset_scene(self, token_hash: str, task: str = "", keep_layout: bool = False) -> None:
        self._add("reset_scene", (token_hash, task, keep_layout))

    def teleop(self, action: np.ndarray) -> None:
        self._add("teleop", np.asarray(action, dtype=np.float32).copy())

    def set_intervening(self, intervening: bool) -> None:
        self.intervening = bool(intervening)
        self._add("intervening", bool(intervening))

    def kinds(self) -> list[str]:
        with self._lock:
            return [k for _, k, _ in self.calls]


class WebTeleop:
    """Turns web teleop requests into an intervention: the first action raises ``intervening``;
    a release, or no action for ``deadman_s``, sends a zero action (gripper unchanged) and lowers it.

    The page repeats the action while a key/button is held, so a closed tab or lost network
    cannot leave the arm driven by a stale command.
    """

    def __init__(self, sink: ControlSink, deadman_s: float = 0.5) -> None:
        if deadman_s <= 0:
            raise ValueError(f"deadman_s must be > 0, got {deadman_s!r}")
        self.sink = sink
        self.deadman_s = float(deadman_s)
        self._lock = threading.Lock()
        self._active = False
        self._last = 0.0
        self._last_gripper = 0.0

    @property
    def active(self) -> bool:
        with self._lock:
            return self._active

    def act(self, action: np.ndarray) -> None:
        """Forward one validated (7,) action; raises ControlUnavailable without a robot."""
        with self._lock:
            if not self._active:
                self.sink.set_intervening(True)
                self._active = True
            self.sink.teleop(action)
            self._last = time.monotonic()
            self._last_gripper = float(action[6])

    def release(self) -> bool:
        """End the intervention now; returns whether one was active."""
        with self._lock:
            return self._release_locked()

    def _release_locked(self) -> bool:
        if not self._active:
            return False
        stop = np.zeros(7, dtype=np.float32)
        stop[6] = self._last_gripper
        try:
            self.sink.teleop(stop)
        finally:
            self._active = False
            self.sink.set_intervening(False)
        return True

    def check_deadman(self, now: float | None = None) -> bool:
        """Release if the last action is older than ``deadman_s``; returns whether it released."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._active and now - self._last > self.deadman_s:
                return self._release_locked()
            return False
