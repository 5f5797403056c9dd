"""rclpy backend: used when a ROS 2 install is sourced (the lab robot, the Docker image).

Kept deliberately thin: nodes become real ``rclpy`` nodes (so ``ros2 node/param/topic``, rqt,
``ros2 bag`` and ``ros2 launch`` work natively) and messages cross as serialized CDR bytes —
rclpy publishes ``bytes`` as a serialized message and ``raw=True`` subscriptions hand bytes
back — so the same :mod:`cdr` codec and :mod:`msgs` classes serve both backends and no
conversion to rosidl classes is written by hand. rclpy parses ``--ros-args`` itself
(``-p``, ``--params-file``, ``-r __node:=``); parameters are declared from overrides and then
mapped onto the node's Config exactly as in the Cyclone backend.

Not exercised by the test-suite (rclpy is not installable from PyPI); see README.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from robot_stack.runtime import msgs
from robot_stack.runtime.qos import QoSProfile

if TYPE_CHECKING:
    from robot_stack.runtime.backend import Runtime
    from robot_stack.runtime.node import Node, Subscription, Timer

_SKIP_PARAMS = {"use_sim_time"}  # declared by rclpy on every node


def rosidl_class(msg_type: type[msgs.Message]) -> Any:
    """The generated rosidl Python class for one of our message types (``sensor_msgs.msg.Image``)."""
    pkg, sub, name = msg_type._type.split("/")
    return getattr(importlib.import_module(f"{pkg}.{sub}"), name)


def rclpy_qos(q: QoSProfile) -> Any:
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile as RclQoS, ReliabilityPolicy

    return RclQoS(
        depth=q.depth,
        history=HistoryPolicy.KEEP_LAST if q.history == "keep_last" else HistoryPolicy.KEEP_ALL,
        reliability=ReliabilityPolicy.RELIABLE if q.reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if q.durability == "transient_local" else DurabilityPolicy.VOLATILE,
    )


class _Pub:
    def __init__(self, impl: "RclpyNodeImpl", pub: Any, fqn: str):
        self.impl, self.pub, self.fqn = impl, pub, fqn

    def publish(self, data: bytes | bytearray) -> None:
        self.pub.publish(bytes(data))  # bytes = an already-serialized message for rclpy

    def matched_count(self) -> int:
        return self.pub.get_subscription_count()


class _Sub:
    def __init__(self, impl: "RclpyNodeImpl", sub: Any, fqn: str):
        self.impl, self.sub, self.fqn = impl, sub, fqn

    def matched_count(self) -> int:
        return self.impl.rcl.count_publishers(self.fqn)


class RclpyNodeImpl:
    def __init__(self, backend: "RclpyBackend", node: "Node"):
        from rclpy.node import Node as RclNode

        self.backend, self.node = backend, node
        ctx = node.ctx
        self.rcl = RclNode(
            ctx.name, namespace=ctx.namespace, context=backend.context,
            allow_undeclared_parameters=True, automatically_declare_parameters_from_overrides=True,
        )
        self.readers: list[_Sub] = []
        self.writers: list[_Pub] = []
        backend.executor.add_node(self.rcl)

    def parameter_overrides(self) -> dict[str, Any]:
        given = {n: p.value for n, p in self.rcl._parameters.items() if n not in _SKIP_PARAMS}
        return {**given, **self.node.ctx.params}

    def declare_parameters(self, values: dict[str, Any]) -> None:
        """Declare every Config field (with its effective value) so ``ros2 param list/get`` show them."""
        for name, value in values.items():
            if value is None or self.rcl.has_parameter(name):
                continue
            try:
                self.rcl.declare_parameter(name, value)
            except Exception:  # noqa: BLE001 - e.g. mixed-type lists have no ROS parameter type
                pass

    def create_publisher(self, msg_type, fqn: str, qos: QoSProfile) -> _Pub:
        w = _Pub(self, self.rcl.create_publisher(rosidl_class(msg_type), fqn, rclpy_qos(qos)), fqn)
        self.writers.append(w)
        return w

    def create_subscription(self, msg_type, fqn: str, qos: QoSProfile, sub: "Subscription") -> _Sub:
        s = self.rcl.create_subscription(rosidl_class(msg_type), fqn, sub.on_bytes, rclpy_qos(qos), raw=True)
        r = _Sub(self, s, fqn)
        self.readers.append(r)
        return r

    def add_timer(self, timer: "Timer") -> None:
        rcl_timer = self.rcl.create_timer(timer.period_s, timer.callback)
        timer._backend_cancel = rcl_timer.cancel

    def now(self) -> msgs.Time:
        return msgs.Time.from_ns(self.rcl.get_clock().now().nanoseconds)  # honours use_sim_time

    def destroy(self) -> None:
        self.backend.executor.remove_node(self.rcl)
        self.rcl.destroy_node()


class RclpyBackend:
    """An rclpy context (args parsed by rcl) and a single-threaded executor for all nodes."""

    name = "rclpy"

    def __init__(self, runtime: "Runtime", ros_args: list[str]):
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        self.runtime = runtime
        self._rclpy = rclpy
        self.context = Context()
        rclpy.init(args=["robot-stack", *ros_args], context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)

    def create_node_impl(self, node: "Node") -> RclpyNodeImpl:
        return RclpyNodeImpl(self, node)

    def spin_once(self, timeout_s: float) -> None:
        self.executor.spin_once(timeout_sec=max(0.0, min(timeout_s, 0.1)))

    def wake(self) -> None:
        self.executor.wake()

    def close(self) -> None:
        self.executor.shutdown()
        self._rclpy.try_shutdown(context=self.context)
