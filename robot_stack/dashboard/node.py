"""The dashboard as a ROS 2 node: subscribes to the topics of TOPICS.md into a LiveState,
publishes the operator's commands (ControlSink), and serves the web app from its own thread.

Register as ``"dashboard": "robot_stack.dashboard.node:DashboardNode"`` and start with
``robot-stack node dashboard --ros-args -p store:=episodes.zarr -p cameras:="[front, wrist]"``.
The token comes from ``-p dashboard.token:=...`` or ``$ROBOT_STACK_DASHBOARD_TOKEN`` (else a random one,
logged); ``arm/estop_clear`` carries its SHA-256, which the controller compares with its own.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np

from robot_stack.runtime import Node, msgs, qos

from .config import DashboardConfig
from .control import ControlSink
from .live import CAMERA_NAME, LiveState

TOKEN_ENV = "ROBOT_STACK_DASHBOARD_TOKEN"


@dataclasses.dataclass
class DashboardNodeConfig:
    store: str = ""  # episode store to browse and label ("" = live view only)
    cameras: tuple[str, ...] = ("front",)  # cameras shown live: subscribes camera/<name>/image
    dashboard: DashboardConfig = dataclasses.field(default_factory=DashboardConfig)  # the web app's settings

    def __post_init__(self) -> None:
        self.cameras = tuple(self.cameras)
        for cam in self.cameras:
            if not CAMERA_NAME.fullmatch(cam):
                raise ValueError(f"cameras: invalid camera name {cam!r}")


class RosControlSink(ControlSink):
    """Publishes the dashboard's commands on the topics of TOPICS.md (publish is thread-safe)."""

    def __init__(self, node: Node) -> None:
        self.session = node.create_publisher(msgs.String, "session/command", qos.DEFAULT)
        self.estop_pub = node.create_publisher(msgs.Bool, "arm/estop", qos.DEFAULT)
        self.estop_clear_pub = node.create_publisher(msgs.String, "arm/estop_clear", qos.DEFAULT)
        self.reset_scene_pub = node.create_publisher(msgs.String, "sim/reset_scene", qos.DEFAULT)
        self.teleop_pub = node.create_publisher(msgs.Float32MultiArray, "teleop/action", qos.DEFAULT)
        self.intervening_pub = node.create_publisher(msgs.Bool, "teleop/intervening", qos.DEFAULT)

    def session_command(self, cmd) -> None:
        self.session.publish(msgs.String(data=json.dumps({"cmd": cmd})))

    def estop(self) -> None:
        self.estop_pub.publish(msgs.Bool(data=True))

    def clear_estop(self, token_hash: str) -> None:
        self.estop_clear_pub.publish(msgs.String(data=json.dumps({"token_hash": token_hash})))

    def reset_scene(self, token_hash: str, task: str = "", keep_layout: bool = False) -> None:
        body = {"token_hash": token_hash, "task": task, "keep_layout": keep_layout}
        self.reset_scene_pub.publish(msgs.String(data=json.dumps(body)))

    def teleop(self, action: np.ndarray) -> None:
        self.teleop_pub.publish(msgs.Float32MultiArray.from_numpy(np.asarray(action, dtype=np.float32)))

    def set_intervening(self, intervening: bool) -> None:
        self.intervening_pub.publish(msgs.Bool(data=bool(intervening)))


def _diag_value(text: str):
    """DiagnosticStatus values are strings: give booleans and numbers back their type."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        v = float(text)
        return v if math.isfinite(v) else text
    except ValueError:
        return text


class DashboardNode(Node):
    name = "dashboard"
    Config = DashboardNodeConfig

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        from .app import create_app
        from .server import DashboardServer

        cfg: DashboardNodeConfig = self.cfg
        web = cfg.dashboard
        if not web.token and os.environ.get(TOKEN_ENV):
            web = dataclasses.replace(web, token=os.environ[TOKEN_ENV])
        self.live = LiveState(jpeg_quality=web.jpeg_quality)
        self.control = RosControlSink(self)
        store = None
        if cfg.store:
            from .store_source import PendingStoreSource

            store = PendingStoreSource(cfg.store)  # the actor may create the store after we start
        for cam in cfg.cameras:
            self.create_subscription(msgs.Image, f"camera/{cam}/image", self._on_image(cam), qos.SENSOR_DATA)
        self.create_subscription(msgs.Float32MultiArray, "reward/success", self._guard(self._on_success), qos.SENSOR_DATA)
        self.create_subscription(msgs.Bool, "teleop/intervening",
                                 self._guard(lambda m: self.live.publish_intervening(m.data)), qos.DEFAULT)
        self.create_subscription(msgs.String, "session/state",
                                 self._guard(lambda m: self.live.publish_session_state(json.loads(m.data))), qos.DEFAULT)
        self.create_subscription(msgs.String, "session/events",
                                 self._guard(lambda m: self.live.publish_session_event(json.loads(m.data))), qos.DEFAULT)
        self.create_subscription(msgs.String, "learner/metrics",
                                 self._guard(lambda m: self.live.publish_learner_metrics(json.loads(m.data))), qos.DEFAULT)
        self.create_subscription(msgs.Int32, "learner/policy_version",
                                 self._guard(lambda m: self.live.publish_policy_version(m.data)), qos.DEFAULT)
        self.create_subscription(msgs.DiagnosticArray, "arm/status", self._guard(self._on_arm_status), qos.DEFAULT)
        self.create_subscription(msgs.String, "sim/ground_truth",
                                 self._guard(lambda m: self.live.publish_ground_truth(json.loads(m.data))), qos.DEFAULT)
        self.app = create_app(web, store=store, live=self.live, control=self.control)
        self.server = DashboardServer(self.app, web.host, web.port).start()
        self.get_logger().info(f"dashboard at {self.server.url}/#token={self.app.state.token}")

    def _guard(self, handler):
        """A bad message from another node is logged and dropped; it must not crash the dashboard."""
        def callback(msg) -> None:
            try:
                handler(msg)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                self.get_logger().warning(f"dropped a bad {type(msg).__name__} message: {exc}")
        return callback

    def _on_image(self, cam: str):
        def handler(msg: msgs.Image) -> None:
            stamp = msg.header.stamp.to_sec() or None
            image = msg.to_numpy()
            if msg.encoding in ("bgr8", "bgra8"):
                image = image[..., 2::-1]
            elif msg.encoding == "rgba8":
                image = image[..., :3]
            self.live.publish_frame(cam, np.ascontiguousarray(image), stamp=stamp)
        return self._guard(handler)

    def _on_success(self, msg: msgs.Float32MultiArray) -> None:
        label = msg.layout.dim[0].label if msg.layout.dim else ""
        self.live.publish_success_array(label, np.asarray(msg.data))

    def _on_arm_status(self, msg: msgs.DiagnosticArray) -> None:
        status: dict = {}
        for st in msg.status:
            status["level"] = int(st.level)
            status["message"] = st.message
            status.update({kv.key: _diag_value(kv.value) for kv in st.values})
        self.live.publish_arm_status(status)

    def on_shutdown(self) -> None:
        server = getattr(self, "server", None)  # absent when start-up failed before serving
        if server is not None:
            server.stop()
