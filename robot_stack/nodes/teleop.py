"""Teleop node: a physical teleop device (SpaceMouse, gamepad, keyboard) on the graph.

While the operator steers, it publishes ``teleop/intervening`` = true and the device's action on
``teleop/action`` at ``rate_hz``; the actor then sends those actions instead of the policy's and
flags the steps as interventions. When the operator lets go it publishes ``intervening`` = false
once. The device's e-stop button latches the controller's e-stop (``arm/estop``). The dashboard's
web teleop publishes the same topics itself, so either can take over.
"""

from __future__ import annotations

from dataclasses import dataclass

from robot_stack.config import json_object
from robot_stack.runtime import Node, msgs, qos


@dataclass
class TeleopNodeConfig:
    """Which teleop device and how often it is read."""

    device: str = "spacemouse"  # registered teleop device: spacemouse, gamepad, keyboard
    device_config: str = ""  # JSON object of device-config fields, e.g. {"device_path": "/dev/input/event3"}
    rate_hz: float = 20.0  # reads (and published actions) per second

    def __post_init__(self) -> None:
        if not 1 <= self.rate_hz <= 500:
            raise ValueError(f"rate_hz must be in [1, 500], got {self.rate_hz}")
        json_object("device_config", self.device_config)


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

    def on_shutdown(self) -> None:
        if self._intervening:
            self.pub_intervening.publish(msgs.Bool(data=False))
        self.device.disconnect()
