"""Teleop node: a physical teleop device (SpaceMouse, gamepad, keyboard) on the graph.

While the operator steers, it publishes ``teleop/intervening`` = true and the device's action on
``teleop/action`` at ``rate_hz``; the actor then sends those actions instead of the policy's and
flags the steps as interventions. When the operator lets go it publishes ``intervening`` = false
once. The device's e-stop button latches the controller's e-stop (``arm/estop``). The dashboard's
web teleop publishes the same topics itself, so either can take over.

The simulated operator (device ``sim_operator``, sim sessions) also watches the world and the
session: it mirrors ``sim/world_state`` and follows ``session/state`` and ``session/events``.
It publishes its action as soon as each world state arrives, so in lockstep sim the actor,
which acts once that state's camera frames are in, gets the correction for the same state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from robot_stack.config import json_object
from robot_stack.runtime import Node, msgs, qos


@dataclass
class TeleopNodeConfig:
    """Which teleop device and how often it is read."""

    device: str = "spacemouse"  # registered teleop device: spacemouse, gamepad, keyboard; sim_operator in sim sessions
    device_config: str = ""  # JSON object of device-config fields, e.g. {"device_path": "/dev/input/event3"}
    rate_hz: float = 20.0  # reads (and published actions) per second

    def __post_init__(self) -> None:
        if not 1 <= self.rate_hz <= 500:
            raise ValueError(f"rate_hz must be in [1, 500], got {self.rate_hz}")
        json_object("device_config", self.device_config)


SIM_OPERATOR = "sim_operator"
#: session events after which the simulated operator lets go of the episode
_EPISODE_OVER = ("checking_success", "episode_committed")


class TeleopNode(Node):
    name = "teleop"
    Config = TeleopNodeConfig

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        from hardware.teleop import make_teleop

        cfg: TeleopNodeConfig = self.cfg
        self.device = make_teleop(cfg.device, **json_object("device_config", cfg.device_config))
        self.device.connect()
        self._intervening = False
        self._estop_sent = False
        self.pub_action = self.create_publisher(msgs.Float32MultiArray, "teleop/action", qos.DEFAULT)
        self.pub_intervening = self.create_publisher(msgs.Bool, "teleop/intervening", qos.DEFAULT)
        self.pub_estop = self.create_publisher(msgs.Bool, "arm/estop", qos.DEFAULT)
        if cfg.device == SIM_OPERATOR:
            self.create_subscription(msgs.Float64MultiArray, "sim/world_state", self.on_world_state, qos.SENSOR_DATA)
            self.create_subscription(msgs.String, "session/state", self.on_session_state, qos.DEFAULT)
            self.create_subscription(msgs.String, "session/events", self.on_session_event, qos.DEFAULT)
        self.create_timer(1.0 / cfg.rate_hz, self.tick)
        self.get_logger().info(f"teleop up: {cfg.device}")

    def tick(self) -> None:
        cmd = self.device.read()
        if cmd.estop and not self._estop_sent:
            self.pub_estop.publish(msgs.Bool(data=True))
            self.get_logger().warning("E-STOP pressed on the teleop device")
        self._estop_sent = cmd.estop
        if cmd.intervening:
            self.pub_action.publish(msgs.Float32MultiArray.from_numpy(cmd.action))
        if cmd.intervening != self._intervening or cmd.intervening:
            self.pub_intervening.publish(msgs.Bool(data=bool(cmd.intervening)))
        self._intervening = cmd.intervening

    # -- the simulated operator's inputs ---------------------------------------------------------
    def on_world_state(self, msg: msgs.Float64MultiArray) -> None:
        self.device.set_state(np.asarray(msg.data))
        self.tick()

    def on_session_state(self, msg: msgs.String) -> None:
        try:
            s = json.loads(msg.data)
            if s.get("episode") is None or not s.get("task_id"):
                return
            self.device.set_episode(int(s["episode"]), str(s["task_id"]), int(s.get("step") or 0),
                                    running=s.get("mode") == "running" and not s.get("paused"), eval=bool(s.get("eval")))
        except (ValueError, TypeError, AttributeError):
            self.get_logger().error(f"session/state: not the actor's JSON status: {msg.data[:200]!r}")

    def on_session_event(self, msg: msgs.String) -> None:
        try:
            event = json.loads(msg.data).get("event")
        except (ValueError, AttributeError):
            return
        if event in _EPISODE_OVER:
            self.device.release()
            self.tick()

    def on_shutdown(self) -> None:
        if self._intervening:
            self.pub_intervening.publish(msgs.Bool(data=False))
        self.device.disconnect()
