"""Tiny nodes for tests and examples: a talker and an echo that round-trips any message type."""

from __future__ import annotations

import dataclasses

from robot_stack.runtime import Node, msgs, qos


@dataclasses.dataclass
class TalkerConfig:
    topic: str = "chatter"  # topic to publish std_msgs/String on
    rate_hz: float = 10.0  # messages per second
    message: str = "hello"  # text; the sequence number is appended
    count: int = 0  # stop (exit 0) after this many messages; 0 = run until stopped
    crash_after: int = 0  # raise after this many messages (tests crash handling); 0 = never

    def __post_init__(self) -> None:
        if not self.rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0, got {self.rate_hz}")
        if self.count < 0 or self.crash_after < 0:
            raise ValueError(f"count/crash_after must be >= 0, got {self.count}/{self.crash_after}")


class Talker(Node):
    """Publishes ``"<message> <n>"`` on ``topic`` at ``rate_hz``."""

    name = "talker"
    Config = TalkerConfig

    def __init__(self, ctx):
        super().__init__(ctx)
        self.sent = 0
        self.pub = self.create_publisher(msgs.String, self.cfg.topic, qos.DEFAULT)
        self.create_timer(1.0 / self.cfg.rate_hz, self.tick)

    def tick(self) -> None:
        if self.cfg.crash_after and self.sent >= self.cfg.crash_after:
            raise RuntimeError(f"crash_after={self.cfg.crash_after} reached (test crash)")
        self.pub.publish(msgs.String(data=f"{self.cfg.message} {self.sent}"))
        self.sent += 1
        if self.cfg.count and self.sent >= self.cfg.count:
            self.get_logger().info(f"sent {self.sent} messages, stopping")
            self.request_shutdown()


@dataclasses.dataclass
class EchoConfig:
    # ROS type names to echo ("sensor_msgs/msg/Image"); empty = every type in robot_stack.runtime.msgs
    types: list[str] = dataclasses.field(default_factory=list)
    input_prefix: str = "echo_in"  # subscribes to <input_prefix>/<pkg>/<Name>
    output_prefix: str = "echo_out"  # republishes to <output_prefix>/<pkg>/<Name>
    sensor_qos: bool = False  # use SENSOR_DATA QoS instead of DEFAULT

    def __post_init__(self) -> None:
        unknown = [t for t in self.types if t not in msgs.BY_TYPE]
        if unknown:
            raise ValueError(f"types: unknown message types {unknown}")


def echo_topic(prefix: str, ros_type: str) -> str:
    """``prefix/pkg/Name`` for a ROS type ``pkg/msg/Name``."""
    pkg, _, name = ros_type.split("/")
    return f"{prefix}/{pkg}/{name}"


class Echo(Node):
    """Deserializes every message it gets and publishes it again (a full decode/encode round trip)."""

    name = "echo"
    Config = EchoConfig

    def __init__(self, ctx):
        super().__init__(ctx)
        profile = qos.SENSOR_DATA if self.cfg.sensor_qos else qos.DEFAULT
        self.count = 0
        for ros_type in self.cfg.types or sorted(msgs.BY_TYPE):
            cls = msgs.BY_TYPE[ros_type]
            pub = self.create_publisher(cls, echo_topic(self.cfg.output_prefix, ros_type), profile)
            self.create_subscription(cls, echo_topic(self.cfg.input_prefix, ros_type), self._forward(pub), profile)

    def _forward(self, pub):
        def callback(msg) -> None:
            self.count += 1
            pub.publish(msg)

        return callback


class Stubborn(Node):
    """Ignores SIGINT (tests that the launcher escalates to SIGTERM); otherwise idle."""

    name = "stubborn"

    def __init__(self, ctx):
        import signal

        super().__init__(ctx)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.get_logger().info("ignoring SIGINT")
