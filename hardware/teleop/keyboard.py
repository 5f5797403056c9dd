"""Key-state teleop: a keyboard (evdev device or fed key events) and the dashboard's WebTeleop.

Keys (held = move at full rate on that axis, base frame): w/s +x/-x, a/d +y/-y, r/f +z/-z,
j/l roll -/+, i/k pitch +/-, q/e yaw +/-; c = close gripper, o = open gripper (latched);
escape = e-stop. Intervening while any motion key is down.

``WebTeleop`` takes whole key/button states from the dashboard (``update(keys, timestamp)``);
each update replaces the previous state and input older than ``stale_timeout_s`` (a closed tab,
a dropped socket) stops counting as intervening, so a lost browser never keeps the arm moving.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from hardware.teleop.base import TeleopCommand, TeleopConfig, TeleopDevice, register_teleop
from hardware.teleop.reader import DeviceFileReader

# key -> (action index, sign)
MOTION_KEYS: dict[str, tuple[int, float]] = {
    "w": (0, 1.0), "s": (0, -1.0),
    "a": (1, 1.0), "d": (1, -1.0),
    "r": (2, 1.0), "f": (2, -1.0),
    "l": (3, 1.0), "j": (3, -1.0),
    "i": (4, 1.0), "k": (4, -1.0),
    "q": (5, 1.0), "e": (5, -1.0),
}  # fmt: skip
CLOSE_KEY, OPEN_KEY, ESTOP_KEY = "c", "o", "escape"
# Linux input key codes (linux/input-event-codes.h) of the keys above.
EVDEV_KEYS = {
    17: "w", 31: "s", 30: "a", 32: "d", 19: "r", 33: "f", 38: "l", 36: "j", 23: "i", 37: "k",
    16: "q", 18: "e", 46: "c", 24: "o", 1: "escape",
}  # fmt: skip
EVDEV_EVENT = struct.Struct("<qqHHi")
EV_KEY = 1


@dataclass
class KeyboardConfig(TeleopConfig):
    """Keyboard source."""

    # /dev/input/eventN of a keyboard to read ('' = keys are fed with press()/release())
    device_path: str = ""


class _KeyState(TeleopDevice):
    """Shared key-state -> action mapping."""

    def __init__(self, config=None):
        super().__init__(config)
        self._down: set[str] = set()

    def _set_key(self, key: str, down: bool) -> None:
        key = key.lower()
        if down and key not in self._down:
            if key == CLOSE_KEY:
                self._gripper = -1.0
            elif key == OPEN_KEY:
                self._gripper = 1.0
        (self._down.add if down else self._down.discard)(key)

    def _compute(self, now: float) -> TeleopCommand:
        motion = np.zeros(6)
        for key in self._down:
            if key in MOTION_KEYS:
                idx, sign = MOTION_KEYS[key]
                motion[idx] += sign
        motion = np.clip(motion, -1.0, 1.0)
        return TeleopCommand(
            action=self._make_action(motion[:3], motion[3:]),
            intervening=bool(np.any(motion != 0)),
            estop=ESTOP_KEY in self._down,
            buttons={k: True for k in sorted(self._down)},
            timestamp=self._last_input or 0.0,
        )


@register_teleop("keyboard")
class KeyboardTeleop(_KeyState):
    """Keyboard: from an evdev device file, or fed with ``press``/``release`` by the caller."""

    Config = KeyboardConfig
    config: KeyboardConfig

    def __init__(self, config: KeyboardConfig | None = None):
        super().__init__(config)
        self._reader: DeviceFileReader | None = None
        self._buf = b""

    def press(self, key: str, t: float | None = None) -> None:
        with self._lock:
            self._set_key(key, True)
            self._mark_input(t)

    def release(self, key: str, t: float | None = None) -> None:
        with self._lock:
            self._set_key(key, False)
            self._mark_input(t)

    def feed_bytes(self, data: bytes, t: float | None = None) -> None:
        """Decode evdev ``input_event`` records (key down = 1, autorepeat = 2, up = 0)."""
        with self._lock:
            self._buf += data
            while len(self._buf) >= EVDEV_EVENT.size:
                raw, self._buf = self._buf[: EVDEV_EVENT.size], self._buf[EVDEV_EVENT.size :]
                _s, _us, etype, code, value = EVDEV_EVENT.unpack(raw)
                if etype == EV_KEY and code in EVDEV_KEYS:
                    self._set_key(EVDEV_KEYS[code], value != 0)
            self._mark_input(t)

    def _open(self) -> None:
        if self.config.device_path:
            self._reader = DeviceFileReader(self.config.device_path, self.feed_bytes, name="keyboard-reader")
            self._reader.start()

    def _close(self) -> None:
        if self._reader is not None:
            self._reader.stop()
            self._reader = None

    def _holds_state(self) -> bool:
        return True  # a held key sends nothing new (autorepeat aside) and stays held


@dataclass
class WebTeleopConfig(TeleopConfig):
    """Dashboard-fed teleop."""

    # input older than this (seconds) no longer counts as intervening (the page sends ~10-20 Hz)
    stale_timeout_s: float = 0.3


@register_teleop("web")
class WebTeleop(_KeyState):
    """Key/button states pushed by the dashboard; stale input -> not intervening."""

    Config = WebTeleopConfig
    config: WebTeleopConfig

    def __init__(self, config: WebTeleopConfig | None = None):
        super().__init__(config)
        self._last_sender_ts: float | None = None

    def update(self, keys: Iterable[str], timestamp: float, received: float | None = None) -> bool:
        """Replace the key state with ``keys`` (names as in MOTION_KEYS / 'c' / 'o' / 'escape').

        ``timestamp`` is the sender's clock: an update older than the newest one seen is dropped
        (returns False) so a delayed packet cannot resurrect released keys. Staleness is judged
        on ``received`` (time.monotonic() on arrival, default now).
        """
        if not np.isfinite(timestamp):
            raise ValueError(f"WebTeleop.update: timestamp must be finite, got {timestamp!r}")
        keys = {str(k).lower() for k in keys}
        unknown = keys - set(MOTION_KEYS) - {CLOSE_KEY, OPEN_KEY, ESTOP_KEY}
        if unknown:
            raise ValueError(f"WebTeleop.update: unknown keys {sorted(unknown)}")
        with self._lock:
            if self._last_sender_ts is not None and timestamp < self._last_sender_ts:
                return False
            self._last_sender_ts = float(timestamp)
            for key in list(self._down):
                if key not in keys:
                    self._set_key(key, False)
            for key in keys:
                self._set_key(key, True)
            self._mark_input(time.monotonic() if received is None else received)
        return True
