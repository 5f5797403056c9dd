"""3Dconnexion SpaceMouse: HID reports -> normalised 6-D motion + gripper buttons.

HID report format (3Dconnexion multi-axis controllers, little-endian int16 values, about
+-350 at full deflection):
- report id 1, 6 data bytes: translation x, y, z. Newer models (SpaceMouse Compact/Wireless,
  "SpaceMouse Pro") send 12 data bytes in report 1: translation x, y, z then rotation rx, ry, rz;
- report id 2, 6 data bytes: rotation rx, ry, rz;
- report id 3: button bitmap (bit 0 = left button, bit 1 = right button).
Device axes: x right, y toward the operator, z down (pressing the cap is +z); rotations about
the same axes. With the operator facing the robot across the table, the device frame maps to
the robot base frame (x forward, y left, z up) by ``dx=-y, dy=-x, dz=-z`` (a proper rotation,
so rotation vectors map the same way).

Buttons: left = close gripper, right = open gripper (latched until the other is pressed);
both together = e-stop.

Reads from ``/dev/hidrawN`` when ``hidraw_path`` is set (plain reads, one report per read),
else through `hidapi` by vendor/product id.
"""

from __future__ import annotations

import logging
import struct
import threading
from dataclasses import dataclass

import numpy as np

from hardware.teleop.base import TeleopCommand, TeleopConfig, TeleopDevice, TeleopError, apply_deadzone, register_teleop
from hardware.teleop.reader import DeviceFileReader

log = logging.getLogger(__name__)

FULL_SCALE = 350.0
# device (x right, y toward operator, z down) -> robot base (x forward, y left, z up)
DEVICE_TO_BASE = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])


@dataclass
class SpaceMouseConfig(TeleopConfig):
    """Which SpaceMouse to open and how its full scale maps to an action."""

    # /dev/hidrawN to read directly ('' = open through hidapi by vendor/product id)
    hidraw_path: str = ""
    # USB vendor id (0x256f 3Dconnexion, older models 0x046d Logitech)
    vendor_id: int = 0x256F
    # USB product id (0xc635 SpaceMouse Compact, 0xc652 universal receiver; 0 = first of the vendor)
    product_id: int = 0
    # raw count that maps to a full action (+-1)
    full_scale: float = FULL_SCALE
    # report 1 carries all six axes (12 data bytes: Compact/Wireless/Pro) instead of translation only
    combined_axes_report: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.full_scale > 0:
            raise ValueError(f"SpaceMouseConfig.full_scale must be positive, got {self.full_scale!r}")


class SpaceMouseState:
    """Accumulates HID reports; pure (no I/O) so recorded report streams can be replayed."""

    def __init__(self) -> None:
        self.translation = np.zeros(3)  # raw device counts
        self.rotation = np.zeros(3)
        self.buttons = 0

    def feed_report(self, report: bytes) -> None:
        """Apply one HID report (first byte = report id). Unknown ids are ignored."""
        if not report:
            return
        rid, data = report[0], bytes(report[1:])
        if rid == 1 and len(data) >= 12:
            vals = struct.unpack_from("<6h", data)
            self.translation[:] = vals[:3]
            self.rotation[:] = vals[3:]
        elif rid == 1 and len(data) >= 6:
            self.translation[:] = struct.unpack_from("<3h", data)
        elif rid == 2 and len(data) >= 6:
            self.rotation[:] = struct.unpack_from("<3h", data)
        elif rid == 3 and len(data) >= 1:
            self.buttons = int.from_bytes(data[: min(4, len(data))], "little")


@register_teleop("spacemouse")
class SpaceMouseTeleop(TeleopDevice):
    """SpaceMouse through hidraw or hidapi; intervening while the cap is deflected or a button is down."""

    Config = SpaceMouseConfig
    config: SpaceMouseConfig
    REPORT_SIZE = 13  # largest report: id + 12 bytes

    def __init__(self, config: SpaceMouseConfig | None = None):
        super().__init__(config)
        self.state = SpaceMouseState()
        self._reader: DeviceFileReader | None = None
        self._hid = None
        self._hid_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._prev_buttons = 0

    # ---- input ----------------------------------------------------------------------------------
    def feed_report(self, report: bytes, t: float | None = None) -> None:
        """Apply one HID report (used by the reader; tests replay recorded reports through it)."""
        with self._lock:
            self.state.feed_report(report)
            b = self.state.buttons
            pressed = b & ~self._prev_buttons
            if (b & 0b11) != 0b11:  # both together is the e-stop chord, not a gripper command
                if pressed & 0b01:
                    self._gripper = -1.0
                elif pressed & 0b10:
                    self._gripper = 1.0
            self._prev_buttons = b
            self._mark_input(t)

    def _on_bytes(self, data: bytes) -> None:
        # hidraw returns one report per read(); a pipe may coalesce several, so split by id size.
        sizes = {1: 13 if self.config.combined_axes_report else 7, 2: 7, 3: 5}
        i = 0
        while i < len(data):
            size = sizes.get(data[i], len(data) - i)
            self.feed_report(data[i : i + size])
            i += size

    def _open(self) -> None:
        self._stop.clear()
        if self.config.hidraw_path:
            self._reader = DeviceFileReader(self.config.hidraw_path, self._on_bytes, chunk=64, name="spacemouse-hidraw")
            self._reader.start()
            return
        try:
            import hid  # hidapi
        except ImportError as exc:
            raise TeleopError("SpaceMouse needs the 'hidapi' package (pip install hidapi)") from exc
        dev = hid.device()
        try:
            dev.open(self.config.vendor_id, self.config.product_id or None)
        except (OSError, IOError) as exc:
            raise TeleopError(
                f"cannot open SpaceMouse {self.config.vendor_id:#06x}:{self.config.product_id:#06x} via hidapi: {exc}"
            ) from exc
        self._hid = dev
        self._hid_thread = threading.Thread(target=self._hid_loop, daemon=True, name="spacemouse-hidapi")
        self._hid_thread.start()

    def _hid_loop(self) -> None:
        while not self._stop.is_set():
            try:
                report = self._hid.read(64, 50)  # ms timeout keeps stop() responsive
            except (OSError, IOError, ValueError) as exc:
                log.warning("SpaceMouse read failed: %s", exc)
                return
            if report:
                self.feed_report(bytes(report))

    def _close(self) -> None:
        self._stop.set()
        if self._reader is not None:
            self._reader.stop()
            self._reader = None
        if self._hid_thread is not None:
            self._hid_thread.join(timeout=1.0)
            self._hid_thread = None
        if self._hid is not None:
            try:
                self._hid.close()
            except Exception:
                pass
            self._hid = None

    # ---- mapping --------------------------------------------------------------------------------
    def _compute(self, now: float) -> TeleopCommand:
        s = self.state
        fs = self.config.full_scale
        trans = apply_deadzone(DEVICE_TO_BASE @ (s.translation / fs), self.config.deadzone)
        rot = apply_deadzone(DEVICE_TO_BASE @ (s.rotation / fs), self.config.deadzone)
        buttons = {"left": bool(s.buttons & 1), "right": bool(s.buttons & 2)}
        moving = bool(np.any(trans != 0) or np.any(rot != 0))
        return TeleopCommand(
            action=self._make_action(trans, rot),
            intervening=moving or any(buttons.values()),
            estop=buttons["left"] and buttons["right"],
            buttons=buttons,
            timestamp=self._last_input or 0.0,
        )

    def _holds_state(self) -> bool:
        # A deflected cap keeps sending reports (~every 8-16 ms); silence means the device is gone.
        return False
