"""Teleop event -> action mapping, replaying device byte streams through the real read paths.

The fixtures below are byte streams in each device's wire format (linux/joystick.h js_event,
linux/input.h input_event, 3Dconnexion HID reports), written out by hand from those formats —
no physical device is attached to this machine.
"""

from __future__ import annotations

import os
import struct
import time

import numpy as np
import pytest

from hardware.teleop import TELEOP_REGISTRY, TeleopConfig, make_teleop

pytestmark = pytest.mark.timeout(30, method="thread")

# SpaceNavigator-style reports: id 1 translation (x, y, z int16 LE), id 2 rotation, id 3 buttons.
SPACEMOUSE_PUSH_FORWARD = bytes.fromhex("01 0000 a2fe 0000")  # y = -350: cap pushed away from operator
SPACEMOUSE_TWIST = bytes.fromhex("02 0000 0000 af00")  # rz = +175 (half scale)
SPACEMOUSE_LEFT_DOWN = bytes.fromhex("03 01000000")
SPACEMOUSE_RELEASED = bytes.fromhex("01 000000000000") + bytes.fromhex("02 000000000000") + bytes.fromhex("03 00000000")
SPACEMOUSE_BOTH_BUTTONS = bytes.fromhex("03 03000000")
# SpaceMouse Compact style: one report 1 with all six axes: x=+350 (right), z=-350 (pulled up), rx=0.
SPACEMOUSE_COMBINED = bytes.fromhex("01 5e01 0000 a2fe 0000 0000 0000")

# Joystick API (js_event: u32 ms, s16 value, u8 type, u8 number); 0x81/0x82 = initial state.
JS_INIT = b"".join(struct.pack("<IhBB", 0, 0, 0x82, n) for n in range(8)) + b"".join(
    struct.pack("<IhBB", 0, 0, 0x81, n) for n in range(8)
)
JS_LEFT_STICK_UP = struct.pack("<IhBB", 1000, -32767, 0x02, 1)
JS_RIGHT_STICK_DOWN_SMALL = struct.pack("<IhBB", 1010, 2000, 0x02, 4)  # inside the deadzone
JS_A_PRESS = struct.pack("<IhBB", 1020, 1, 0x01, 0)
JS_A_RELEASE = struct.pack("<IhBB", 1030, 0, 0x01, 0)
JS_LEFT_STICK_CENTER = struct.pack("<IhBB", 1040, 0, 0x02, 1)
JS_B_PRESS = struct.pack("<IhBB", 1050, 1, 0x01, 1)

# evdev (input_event: s64 sec, s64 usec, u16 type, u16 code, s32 value); EV_SYN separators.
def _ev(t, etype, code, value):
    return struct.pack("<qqHHi", 100, t, etype, code, value)


SYN = _ev(0, 0, 0, 0)
EVDEV_PAD_RIGHT_STICK_UP_AND_RB = _ev(1, 3, 4, -32768) + _ev(2, 1, 311, 1) + SYN
EVDEV_KEYBOARD_W_DOWN_C_TAP = _ev(1, 1, 17, 1) + SYN + _ev(2, 1, 46, 1) + SYN + _ev(3, 1, 46, 0) + SYN
EVDEV_KEYBOARD_W_REPEAT_UP = _ev(4, 1, 17, 2) + SYN + _ev(5, 1, 17, 0) + SYN


def _wait_for(pred, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "device"
    os.mkfifo(path)
    return str(path)


def _writer(path):
    # O_RDWR on our side would keep the FIFO open; a plain writer mimics a device node.
    return os.open(path, os.O_WRONLY)


def test_registry_names():
    for name in ("spacemouse", "gamepad", "keyboard", "web"):
        dev = make_teleop(name)
        assert isinstance(dev.config, TeleopConfig)
    assert {"spacemouse", "gamepad", "keyboard", "web"} <= set(TELEOP_REGISTRY)
    with pytest.raises(KeyError, match="nope"):
        make_teleop("nope")
    with pytest.raises(ValueError, match="deadzone"):
        make_teleop("gamepad", deadzone=1.5)


def test_spacemouse_reports_through_hidraw_reader(fifo):
    dev = make_teleop("spacemouse", hidraw_path=fifo)
    with dev:
        w = _writer(fifo)
        try:
            os.write(w, SPACEMOUSE_PUSH_FORWARD + SPACEMOUSE_TWIST)
            assert _wait_for(lambda: dev.read().intervening)
            cmd = dev.read()
            # forward push -> +x at full scale; twist +rz (counter-clockwise seen from above the
            # device, z down) -> negative yaw in the z-up base frame, half scale after the deadzone.
            np.testing.assert_allclose(cmd.action[:6], [1, 0, 0, 0, 0, -(0.5 - 0.1) / 0.9], atol=1e-3)
            assert cmd.action[6] == 1.0 and not cmd.estop
            os.write(w, SPACEMOUSE_LEFT_DOWN)
            assert _wait_for(lambda: dev.read().action[6] == -1.0)
            assert dev.read().buttons == {"left": True, "right": False}
            os.write(w, SPACEMOUSE_RELEASED)
            assert _wait_for(lambda: not dev.read().intervening)
            cmd = dev.read()
            assert np.all(cmd.action[:6] == 0) and cmd.action[6] == -1.0  # gripper stays latched
            os.write(w, SPACEMOUSE_BOTH_BUTTONS)
            assert _wait_for(lambda: dev.read().estop)
        finally:
            os.close(w)


def test_spacemouse_combined_axes_report():
    dev = make_teleop("spacemouse", combined_axes_report=True, deadzone=0.0)
    dev.feed_report(SPACEMOUSE_COMBINED)
    cmd = dev.read()
    # x right -> -y base; z = -350 (pulled up) -> +z base
    np.testing.assert_allclose(cmd.action[:6], [0, -1, 1, 0, 0, 0], atol=1e-6)


def test_spacemouse_stale_input_stops_intervening():
    dev = make_teleop("spacemouse", stale_timeout_s=0.2)
    t0 = time.monotonic()
    dev.feed_report(SPACEMOUSE_PUSH_FORWARD, t=t0)
    assert dev.read(now=t0 + 0.1).intervening
    cmd = dev.read(now=t0 + 0.5)  # the device went silent while deflected: unplugged
    assert not cmd.intervening and np.all(cmd.action[:6] == 0)


def test_gamepad_joystick_api_stream(fifo):
    dev = make_teleop("gamepad", device_path=fifo, protocol="js")
    with dev:
        w = _writer(fifo)
        try:
            os.write(w, JS_INIT + JS_LEFT_STICK_UP + JS_RIGHT_STICK_DOWN_SMALL)
            assert _wait_for(lambda: dev.state.events >= 18)
            cmd = dev.read()
            np.testing.assert_allclose(cmd.action[:6], [1, 0, 0, 0, 0, 0], atol=1e-4)
            assert cmd.intervening and not cmd.estop
            os.write(w, JS_A_PRESS + JS_A_RELEASE + JS_LEFT_STICK_CENTER)
            assert _wait_for(lambda: dev.state.events >= 21)
            cmd = dev.read()
            assert cmd.action[6] == -1.0 and not cmd.intervening
            # held sticks send no events: the state stays valid past the stale timeout
            os.write(w, JS_LEFT_STICK_UP)
            assert _wait_for(lambda: dev.state.events >= 22)
            assert dev.read(now=time.monotonic() + 5.0).intervening
            os.write(w, JS_B_PRESS)
            assert _wait_for(lambda: dev.read().estop)
        finally:
            os.close(w)


def test_gamepad_evdev_partial_reads():
    dev = make_teleop("gamepad", device_path="/dev/input/event7")
    assert dev.config.resolved_protocol == "evdev"
    stream = EVDEV_PAD_RIGHT_STICK_UP_AND_RB
    dev.feed_bytes(stream[:30])  # events split across reads must still decode
    dev.feed_bytes(stream[30:])
    cmd = dev.read()
    np.testing.assert_allclose(cmd.action[:6], [0, 0, 1, 1, 0, 0], atol=1e-4)
    assert cmd.buttons["rb"] and cmd.intervening


def test_keyboard_evdev_stream_and_autorepeat(fifo):
    dev = make_teleop("keyboard", device_path=fifo)
    with dev:
        w = _writer(fifo)
        try:
            os.write(w, EVDEV_KEYBOARD_W_DOWN_C_TAP)
            assert _wait_for(lambda: dev.read().intervening)
            cmd = dev.read()
            np.testing.assert_allclose(cmd.action, [1, 0, 0, 0, 0, 0, -1])
            os.write(w, EVDEV_KEYBOARD_W_REPEAT_UP)
            assert _wait_for(lambda: not dev.read().intervening)
        finally:
            os.close(w)


def test_keyboard_opposite_keys_cancel_and_estop():
    dev = make_teleop("keyboard")
    dev.press("w")
    dev.press("a")
    dev.press("q")
    np.testing.assert_allclose(dev.read().action[:6], [1, 1, 0, 0, 0, 1])
    dev.press("s")
    assert dev.read().action[0] == 0
    dev.press("escape")
    assert dev.read().estop


def test_web_teleop_stale_and_out_of_order():
    dev = make_teleop("web", stale_timeout_s=0.2)
    t0 = time.monotonic()
    assert dev.update(["w", "r"], timestamp=10.0, received=t0)
    cmd = dev.read(now=t0 + 0.05)
    assert cmd.intervening
    np.testing.assert_allclose(cmd.action[:3], [1, 0, 1])
    assert not dev.update(["w", "r", "d"], timestamp=9.5, received=t0 + 0.06)  # late packet dropped
    assert dev.read(now=t0 + 0.07).action[1] == 0
    stale = dev.read(now=t0 + 0.5)  # the page stopped sending (tab closed)
    assert not stale.intervening and np.all(stale.action[:6] == 0)
    assert dev.update([], timestamp=11.0, received=t0 + 0.6)
    assert not dev.read(now=t0 + 0.61).intervening
    with pytest.raises(ValueError, match="unknown keys"):
        dev.update(["rm -rf"], timestamp=12.0)
    with pytest.raises(ValueError, match="finite"):
        dev.update(["w"], timestamp=float("nan"))


def test_missing_device_names_path():
    dev = make_teleop("gamepad", device_path="/dev/input/js-missing")
    with pytest.raises(OSError, match="js-missing"):
        dev.connect()
    assert not dev.connected
