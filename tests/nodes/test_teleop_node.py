"""The teleop node reading a real device file: Linux evdev key events through a FIFO."""

import json
import os
import struct
import time

import numpy as np
import pytest

from robot_stack.nodes.teleop import TeleopNode
from robot_stack.runtime import Node, msgs

pytestmark = pytest.mark.processes
EVENT = struct.Struct("<qqHHi")  # struct input_event: time, type, code, value
KEY_W, KEY_ESC = 17, 1


def key(fd, code, down):
    now = time.time()
    os.write(fd, EVENT.pack(int(now), int(now % 1 * 1e6), 1, code, 1 if down else 0))


def test_keyboard_events_become_intervention_actions_and_estop(runtime, tmp_path):
    fifo = tmp_path / "event0"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # keep a writer so the reader never sees EOF
    try:
        runtime.create_node(TeleopNode, params={"device": "keyboard", "rate_hz": 50.0,
                                                       "device_config": json.dumps({"device_path": str(fifo)})})
        probe = runtime.create_node(Node, name="probe")
        got = {"action": [], "intervening": [], "estop": []}
        probe.create_subscription(msgs.Float32MultiArray, "teleop/action", lambda m: got["action"].append(m.to_numpy()))
        probe.create_subscription(msgs.Bool, "teleop/intervening", lambda m: got["intervening"].append(m.data))
        probe.create_subscription(msgs.Bool, "arm/estop", lambda m: got["estop"].append(m.data))
        runtime.spin_until(lambda: False, timeout_s=0.5)
        assert got["action"] == [] and True not in got["intervening"]

        key(fd, KEY_W, True)  # w = +x
        assert runtime.spin_until(lambda: len(got["action"]) >= 3, timeout_s=5)
        assert got["intervening"][-1] is True
        assert got["action"][-1][0] > 0.5 and np.allclose(got["action"][-1][1:6], 0)
        key(fd, KEY_W, False)
        assert runtime.spin_until(lambda: got["intervening"][-1] is False, timeout_s=5)

        key(fd, KEY_ESC, True)
        assert runtime.spin_until(lambda: got["estop"] == [True], timeout_s=5)
        runtime.spin_until(lambda: False, timeout_s=0.3)
        assert got["estop"] == [True], "e-stop is sent once per press"
    finally:
        os.close(fd)
