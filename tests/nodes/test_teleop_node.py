"""The teleop node: a real device file (Linux evdev key events through a FIFO), and the simulated operator."""

import json
import os
import struct
import time

import numpy as np
import pytest

from robot_stack.nodes.teleop import TeleopNode
from robot_stack.runtime import Node, msgs, qos

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


def test_sim_operator_follows_the_world_and_the_session_over_dds(runtime):
    """The simulated operator on the graph: it mirrors sim/world_state, takes over once
    session/state reports the episode at its step, answers each world state at once with the
    expert's action (closing the loop here finishes the task), and lets go when the episode ends."""
    from hardware.sim.scenes import make_scene

    task = "put_cube_in_bowl"
    world = make_scene("widowx250_cube_bowl", seed=5, image_size=16)
    world.randomize(np.random.default_rng(1), task_id=task)
    # a slow timer: the actions counted below are the answers to world states
    runtime.create_node(TeleopNode, params={"device": "sim_operator", "rate_hz": 1.0, "device_config": json.dumps(
        {"take_over_at": 3, "noise": 0.0, "gate": "loose", "scene": "widowx250_cube_bowl"})})
    probe = runtime.create_node(Node, name="probe")
    got = {"action": [], "intervening": []}
    probe.create_subscription(msgs.Float32MultiArray, "teleop/action", lambda m: got["action"].append(m.to_numpy()))
    probe.create_subscription(msgs.Bool, "teleop/intervening", lambda m: got["intervening"].append(m.data))
    pub_world = probe.create_publisher(msgs.Float64MultiArray, "sim/world_state", qos.SENSOR_DATA)
    pub_state = probe.create_publisher(msgs.String, "session/state", qos.DEFAULT)
    pub_events = probe.create_publisher(msgs.String, "session/events", qos.DEFAULT)
    runtime.spin_until(lambda: False, timeout_s=0.5)  # discovery

    def status(step):
        pub_state.publish(msgs.String(data=json.dumps({"mode": "running", "task_id": task, "episode": 7, "step": step,
                                                       "eval": False, "paused": False})))

    hold = np.array([0, 0, 0, 0, 0, 0, 1.0], dtype=np.float32)
    for step in range(3):
        status(step)
        pub_world.publish(msgs.Float64MultiArray.from_numpy(world.state()))
        runtime.spin_until(lambda: False, timeout_s=0.1)
        world.step(hold)
    assert got["action"] == [] and True not in got["intervening"]

    for step in range(3, 60):
        status(step)
        runtime.spin_until(lambda: False, timeout_s=0.05)
        n = len(got["action"])
        pub_world.publish(msgs.Float64MultiArray.from_numpy(world.state()))
        assert runtime.spin_until(lambda: len(got["action"]) > n, timeout_s=5), f"no answer to the world state of step {step}"
        world.step(got["action"][-1])
        if world.success(task):
            break
    assert world.success(task), "the operator's corrections, carried over DDS, finish the task"
    assert got["intervening"][-1] is True

    pub_events.publish(msgs.String(data=json.dumps({"event": "episode_committed", "task": task})))
    assert runtime.spin_until(lambda: got["intervening"][-1] is False, timeout_s=5)
    world.close()
