"""The node API nodes are written against, independent of the backend (Cyclone DDS or rclpy).

A node is a subclass of :class:`Node` with a ``name`` and an optional ``Config`` dataclass::

    class Talker(Node):
        name = "talker"
        Config = TalkerConfig          # fields become ROS parameters (-p rate_hz:=10)

        def __init__(self, ctx):
            super().__init__(ctx)      # validates parameters into self.cfg
            self.pub = self.create_publisher(msgs.String, "chatter", qos.DEFAULT)
            self.create_timer(1 / self.cfg.rate_hz, self.tick)

        def tick(self):
            self.pub.publish(msgs.String(data="hi"))

Callbacks (subscriptions, timers) run one at a time on the thread that spins the
:class:`Runtime`, like rclpy's single-threaded executor, so node state needs no locks unless
the node starts threads of its own. ``publish`` may be called from any thread.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from robot_stack.config import ConfigError, flat_fields, from_mapping, to_flat_dict
from robot_stack.runtime import cdr
from robot_stack.runtime.msgs import Message, Time
from robot_stack.runtime.params import resolve_topic, validate_name
from robot_stack.runtime.qos import DEFAULT, QoSProfile

if TYPE_CHECKING:
    from robot_stack.runtime.backend import Runtime


class MessageTypeError(TypeError):
    """A message of the wrong type or with a malformed field; the message names the topic."""


@dataclasses.dataclass
class NodeContext:
    """Everything a node needs to be constructed: the runtime, its names and its parameters."""

    runtime: "Runtime"
    name: str  # node name (after -r __node:=)
    namespace: str = "/"  # node namespace (after -r __ns:=)
    params: dict[str, Any] = dataclasses.field(default_factory=dict)  # flat {dotted.name: value}
    remaps: dict[str, str] = dataclasses.field(default_factory=dict)  # topic remaps

    @property
    def fqn(self) -> str:
        return self.namespace.rstrip("/") + "/" + self.name


class Publisher:
    """Publishes messages of one type on one topic; thread-safe."""

    def __init__(self, node: "Node", msg_type: type[Message], topic: str, qos: QoSProfile, impl: Any):
        self.node, self.msg_type, self.topic, self.qos = node, msg_type, topic, qos
        self._codec = cdr.codec(msg_type)
        self._impl = impl

    def publish(self, msg: Message) -> None:
        """Serialize and send ``msg``; wrong type or malformed fields raise :class:`MessageTypeError`."""
        if type(msg) is not self.msg_type:
            raise MessageTypeError(
                f"topic '{self.topic}': publisher of {self.msg_type._type} got a {type(msg).__module__}."
                f"{type(msg).__name__}"
            )
        try:
            data = self._codec.serialize(msg, copy=False)
        except cdr.CdrError as exc:
            raise MessageTypeError(f"topic '{self.topic}': cannot serialize {self.msg_type._type}: {exc}") from None
        self._impl.publish(data)

    def get_subscription_count(self) -> int:
        """Matched subscriptions (readers) right now."""
        return self._impl.matched_count()


class Subscription:
    """Delivers messages of one type on one topic to a callback (on the spinning thread)."""

    def __init__(self, node: "Node", msg_type: type[Message], topic: str, callback: Callable, qos: QoSProfile):
        self.node, self.msg_type, self.topic, self.callback, self.qos = node, msg_type, topic, callback, qos
        self._codec = cdr.codec(msg_type)
        self.malformed = 0  # samples dropped because they did not parse
        self._impl: Any = None

    def on_bytes(self, data: bytes) -> None:
        """Backend hook: CDR bytes (with header) arrived."""
        try:
            msg = self._codec.deserialize(data)
        except cdr.CdrError as exc:
            # a bad sample from someone else must not crash this node: log it, count it, drop it
            self.malformed += 1
            self.node.get_logger().error(f"topic '{self.topic}': dropped a malformed {self.msg_type._type} sample: {exc}")
            return
        self.callback(msg)

    def get_publisher_count(self) -> int:
        return self._impl.matched_count()


class Timer:
    """A periodic callback; ``cancel()`` stops it."""

    def __init__(self, period_s: float, callback: Callable[[], None]):
        if not period_s > 0:
            raise ValueError(f"timer period must be > 0 s, got {period_s}")
        self.period_s = float(period_s)
        self.callback = callback
        self.next_due = time.monotonic() + self.period_s
        self.cancelled = False
        self._backend_cancel: Callable[[], Any] | None = None  # set by backends with their own timers

    def cancel(self) -> None:
        self.cancelled = True
        if self._backend_cancel is not None:
            self._backend_cancel()


_ROS_RESERVED_PARAMS = {"use_sim_time", "start_type_description_service"}

_LOG_FORMAT = "[%(levelname)s] [%(created).6f] [%(node)s]: %(message)s"
_LOGGER_PREFIX = "robot_stack.node."


class _NodeFormatter(logging.Formatter):
    """rclpy-like lines: ``[INFO] [<unix time>] [<node name>]: message``."""

    def format(self, record: logging.LogRecord) -> str:
        record.node = record.name[len(_LOGGER_PREFIX):] if record.name.startswith(_LOGGER_PREFIX) else record.name
        return super().format(record)


def _setup_logging(level: str | int = "INFO") -> None:
    root = logging.getLogger("robot_stack.node")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_NodeFormatter(_LOG_FORMAT))
        root.addHandler(handler)
        root.propagate = False
    if isinstance(level, str):
        level = {"warn": "WARNING", "fatal": "CRITICAL"}.get(level.lower(), level.upper())
    root.setLevel(level)


class Node:
    """Base class of every node. Subclasses set ``name`` and (optionally) ``Config``."""

    #: default node name (override with ``-r __node:=other``)
    name: ClassVar[str] = "node"
    #: typed parameters: a dataclass whose (flattened) fields are the node's ROS parameters
    Config: ClassVar[type | None] = None

    def __init__(self, ctx: NodeContext):
        self.ctx = ctx
        self.node_name = validate_name(ctx.name, "node name")
        self.namespace = ctx.namespace
        self._logger = logging.getLogger(_LOGGER_PREFIX + ctx.fqn.strip("/").replace("/", "."))
        self._impl = ctx.runtime.backend.create_node_impl(self)
        try:
            self.cfg = self._load_config(self._impl.parameter_overrides())
        except Exception:
            self._impl.destroy()  # e.g. the rclpy node created above
            raise
        self._impl.declare_parameters(to_flat_dict(self.cfg) if self.cfg is not None else {})
        self.publishers: list[Publisher] = []
        self.subscriptions: list[Subscription] = []
        self.timers: list[Timer] = []
        ctx.runtime._register(self)

    def _load_config(self, params: dict[str, Any]):
        source = f"node '{self.ctx.fqn}'"
        # parameters every ROS 2 node accepts (launch files set them): not ours unless Config has them
        own = set(flat_fields(self.Config)) if self.Config is not None else set()
        params = {k: v for k, v in params.items()
                  if k in own or not (k in _ROS_RESERVED_PARAMS or k.startswith("qos_overrides."))}
        if self.Config is None:
            if params:
                raise ConfigError(f"{source}: unknown parameter(s) {sorted(params)}; this node takes no parameters")
            return None
        return from_mapping(self.Config, params, source=source)

    # -- the rclpy-like API -----------------------------------------------------------------

    def resolve_topic(self, topic: str) -> str:
        return resolve_topic(topic, self.namespace, self.node_name, self.ctx.remaps)

    def create_publisher(self, msg_type: type[Message], topic: str, qos: QoSProfile = DEFAULT) -> Publisher:
        """Publisher of ``msg_type`` (a :mod:`msgs` class) on ``topic`` (relative names join the namespace)."""
        self._check_type(msg_type, topic)
        fqn = self.resolve_topic(topic)
        impl = self._impl.create_publisher(msg_type, fqn, qos)
        pub = Publisher(self, msg_type, fqn, qos, impl)
        self.publishers.append(pub)
        self.ctx.runtime._graph_changed()
        return pub

    def create_subscription(
        self, msg_type: type[Message], topic: str, callback: Callable[[Any], None], qos: QoSProfile = DEFAULT
    ) -> Subscription:
        """Call ``callback(msg)`` on the spinning thread for each ``msg_type`` message on ``topic``."""
        self._check_type(msg_type, topic)
        fqn = self.resolve_topic(topic)
        sub = Subscription(self, msg_type, fqn, callback, qos)
        sub._impl = self._impl.create_subscription(msg_type, fqn, qos, sub)
        self.subscriptions.append(sub)
        self.ctx.runtime._graph_changed()
        return sub

    def create_timer(self, period_s: float, callback: Callable[[], None]) -> Timer:
        """Call ``callback()`` every ``period_s`` seconds on the spinning thread (missed periods are skipped)."""
        timer = Timer(period_s, callback)
        self.timers.append(timer)
        self._impl.add_timer(timer)
        return timer

    def get_logger(self) -> logging.Logger:
        return self._logger

    def now(self) -> Time:
        """Current ROS time as a ``builtin_interfaces/Time`` (system clock, shared by all processes)."""
        return self._impl.now()

    def get_name(self) -> str:
        return self.node_name

    def get_namespace(self) -> str:
        return self.namespace

    def request_shutdown(self, error: str | None = None) -> None:
        """Ask the runtime to stop spinning (from any thread); ``error`` makes ``robot-stack node`` exit 1."""
        self.ctx.runtime.request_shutdown(error=f"node '{self.ctx.fqn}': {error}" if error else None)

    def on_shutdown(self) -> None:
        """Override to release resources (stop threads, disconnect hardware); called once at shutdown."""

    # -- internals --------------------------------------------------------------------------

    @staticmethod
    def _check_type(msg_type: Any, topic: str) -> None:
        if not (isinstance(msg_type, type) and issubclass(msg_type, Message)):
            raise MessageTypeError(
                f"topic '{topic}': {msg_type!r} is not a message class from robot_stack.runtime.msgs"
            )

    def destroy_node(self) -> None:
        self._impl.destroy()


__all__ = ["Node", "NodeContext", "Publisher", "Subscription", "Timer", "MessageTypeError", "ConfigError"]
