"""Gamepad (Xbox-style) from the Linux joystick API (/dev/input/jsN) or evdev (/dev/input/eventN).

Wire formats (linux/joystick.h, linux/input.h), little-endian:
- joystick: ``struct js_event { u32 time_ms; s16 value; u8 type; u8 number; }`` (8 bytes);
  type 0x01 button, 0x02 axis, OR 0x80 for the synthetic initial-state events sent on open;
  axes span -32767..32767.
- evdev: ``struct input_event { s64 sec; s64 usec; u16 type; u16 code; s32 value; }`` (24 bytes
  on 64-bit); EV_KEY 1, EV_ABS 3, EV_SYN 0; xpad sticks span -32768..32767, triggers 0..1023
  (or 0..255).

Mapping (robot base frame, operator facing the robot): left stick up/down -> +x/-x, left stick
left/right -> +y/-y, right stick up/down -> +z/-z, right stick left/right -> yaw, bumpers LB/RB
-> roll -/+, D-pad up/down -> pitch; A = close gripper, Y = open gripper (latched);
B = e-stop. Intervening while any axis is outside the deadzone or a motion button is held.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from hardware.teleop.base import TeleopCommand, TeleopConfig, TeleopDevice, apply_deadzone, register_teleop
from hardware.teleop.reader import DeviceFileReader

JS_EVENT = struct.Struct("<IhBB")
JS_BUTTON, JS_AXIS, JS_INIT = 0x01, 0x02, 0x80
EVDEV_EVENT = struct.Struct("<qqHHi")
EV_SYN, EV_KEY, EV_ABS = 0, 1, 3

# Logical controls -> joystick-API numbers (xpad driver order) and evdev codes.
JS_AXES = {"lx": 0, "ly": 1, "lt": 2, "rx": 3, "ry": 4, "rt": 5, "dpad_x": 6, "dpad_y": 7}
JS_BUTTONS = {"a": 0, "b": 1, "x": 2, "y": 3, "lb": 4, "rb": 5, "back": 6, "start": 7}
EV_ABS_CODES = {"lx": 0, "ly": 1, "lt": 2, "rx": 3, "ry": 4, "rt": 5, "dpad_x": 16, "dpad_y": 17}
EV_KEY_CODES = {"a": 304, "b": 305, "x": 307, "y": 308, "lb": 310, "rb": 311, "back": 314, "start": 315}


@dataclass
class GamepadConfig(TeleopConfig):
    """Which event device to read and in which format."""

    # /dev/input/jsN (joystick API) or /dev/input/eventN (evdev)
    device_path: str = "/dev/input/js0"
    # "js" or "evdev"; "" = from the path (".../event*" -> evdev)
    protocol: str = ""
    # full-scale magnitude of a stick axis
    axis_full_scale: float = 32767.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.protocol not in ("", "js", "evdev"):
            raise ValueError(f"GamepadConfig.protocol must be 'js', 'evdev' or '', got {self.protocol!r}")
        if not self.axis_full_scale > 0:
            raise ValueError(f"GamepadConfig.axis_full_scale must be positive, got {self.axis_full_scale!r}")

    @property
    def resolved_protocol(self) -> str:
        if self.protocol:
            return self.protocol
        return "evdev" if "event" in self.device_path.rsplit("/", 1)[-1] else "js"


class GamepadState:
    """Axis/button state from decoded events; pure, so recorded streams replay without a device."""

    def __init__(self, protocol: str, axis_full_scale: float = 32767.0):
        self.protocol = protocol
        self.full = axis_full_scale
        self.axes = {name: 0.0 for name in JS_AXES}  # normalised -1..1 (triggers 0..1)
        self.buttons = {name: False for name in JS_BUTTONS}
        self._buf = b""
        self._axis_by_num = {v: k for k, v in (JS_AXES if protocol == "js" else EV_ABS_CODES).items()}
        self._btn_by_num = {v: k for k, v in (JS_BUTTONS if protocol == "js" else EV_KEY_CODES).items()}
        self.events = 0

    def feed(self, data: bytes) -> list[tuple[str, str, float]]:
        """Decode whole events from ``data`` (partial ones are kept); returns (kind, name, value)."""
        self._buf += data
        size = JS_EVENT.size if self.protocol == "js" else EVDEV_EVENT.size
        out = []
        while len(self._buf) >= size:
            raw, self._buf = self._buf[:size], self._buf[size:]
            self.events += 1
            if self.protocol == "js":
                _t, value, etype, number = JS_EVENT.unpack(raw)
                etype &= ~JS_INIT
                kind = "button" if etype == JS_BUTTON else "axis" if etype == JS_AXIS else ""
            else:
                _s, _us, etype, number, value = EVDEV_EVENT.unpack(raw)
                kind = "button" if etype == EV_KEY else "axis" if etype == EV_ABS else ""
            if kind == "button" and number in self._btn_by_num:
                name = self._btn_by_num[number]
                self.buttons[name] = bool(value)
                out.append(("button", name, float(bool(value))))
            elif kind == "axis" and number in self._axis_by_num:
                name = self._axis_by_num[number]
                if name.startswith("dpad"):
                    v = float(np.sign(value))  # hat: -1/0/+1 (js reports +-32767)
                elif name in ("lt", "rt") and self.protocol == "evdev":
                    v = float(np.clip(value / 1023.0, 0.0, 1.0))
                else:
                    v = float(np.clip(value / self.full, -1.0, 1.0))
                self.axes[name] = v
                out.append(("axis", name, v))
        return out


@register_teleop("gamepad")
class GamepadTeleop(TeleopDevice):
    """Xbox-style gamepad on a Linux event device."""

    Config = GamepadConfig
    config: GamepadConfig

    def __init__(self, config: GamepadConfig | None = None):
        super().__init__(config)
        self.state = GamepadState(self.config.resolved_protocol, self.config.axis_full_scale)
        self._reader: DeviceFileReader | None = None

    def feed_bytes(self, data: bytes, t: float | None = None) -> None:
        """Decode raw device bytes (the reader thread calls this; tests replay recordings)."""
        with self._lock:
            for kind, name, value in self.state.feed(data):
                if kind == "button" and value:
                    if name == "a":
                        self._gripper = -1.0
                    elif name == "y":
                        self._gripper = 1.0
            self._mark_input(t)

    def _open(self) -> None:
        self._reader = DeviceFileReader(self.config.device_path, self.feed_bytes, name="gamepad-reader")
        self._reader.start()

    def _close(self) -> None:
        if self._reader is not None:
            self._reader.stop()
            self._reader = None

    def _holds_state(self) -> bool:
        # Event devices report changes only: a stick held still sends nothing, so the held state
        # stays valid until the device disappears (reader error).
        return self._reader is None or self._reader.error is None

    def _compute(self, now: float) -> TeleopCommand:
        ax, bt = self.state.axes, self.state.buttons
        trans = apply_deadzone([-ax["ly"], -ax["lx"], -ax["ry"]], self.config.deadzone)
        rot = np.array([float(bt["rb"]) - float(bt["lb"]), -ax["dpad_y"], 0.0])
        rot[2] = apply_deadzone([-ax["rx"]], self.config.deadzone)[0]
        intervening = bool(np.any(trans != 0) or np.any(rot != 0))
        return TeleopCommand(
            action=self._make_action(trans, rot),
            intervening=intervening,
            estop=bt["b"],
            buttons=dict(bt),
            timestamp=self._last_input or 0.0,
        )
