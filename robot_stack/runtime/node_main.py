"""``robot-stack node <name | module:Class> [--ros-args ...]``: run one node in this process.

Standard lifecycle: build the runtime (backend, DDS participant), construct the node (typed
parameters validated into ``node.cfg``), spin until SIGINT/SIGTERM or ``request_shutdown``, then
``on_shutdown`` and release DDS. Exit codes: 0 clean stop, 1 the node crashed (message names
the node), 2 bad command line or parameters (message names node and parameter).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import traceback

from robot_stack.config import ConfigError
from robot_stack.runtime.params import RosArgsError


class NodeLookupError(LookupError):
    """An unknown node name or an unloadable ``module:Class``."""


def load_node_class(spec: str) -> type:
    """Registered name (``robot_stack.nodes.NODES``) or ``module:Class`` → the Node subclass."""
    from robot_stack.nodes import NODES
    from robot_stack.runtime.node import Node

    target = NODES.get(spec, spec)
    if ":" not in target:
        raise NodeLookupError(f"unknown node {spec!r}; registered: {sorted(NODES)} (or give module:Class)")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise NodeLookupError(f"node {spec!r}: cannot import module {module_name!r}: {exc}") from exc
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Node)):
        raise NodeLookupError(f"node {spec!r}: {target} is not a robot_stack.runtime.Node subclass")
    return cls


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("node", help="registered node name (robot_stack/nodes/__init__.py) or module:Class")
    parser.add_argument("--backend", default="auto", choices=["auto", "rclpy", "cyclonedds"],
                        help="runtime backend (default: rclpy if ROS 2 is sourced, else cyclonedds)")
    parser.add_argument("ros_args", nargs=argparse.REMAINDER,
                        help="--ros-args -p name:=value --params-file f.yaml -r __node:=name -r __ns:=/ns")


def run(args: argparse.Namespace) -> int:
    from robot_stack.runtime.backend import Runtime

    ros_args = list(args.ros_args or [])
    if ros_args and ros_args[0] != "--ros-args":
        print(f"robot-stack node: error: unexpected {ros_args[0]!r}; ROS arguments go after --ros-args",
              file=sys.stderr)
        return 2
    try:
        cls = load_node_class(args.node)
    except NodeLookupError as exc:
        print(f"robot-stack node: error: {exc}", file=sys.stderr)
        return 2
    label = args.node
    runtime = None
    try:
        runtime = Runtime(backend=args.backend, ros_args=ros_args)
        label = runtime.ros_args.node_name or getattr(cls, "name", label)

        def stop(signum, _frame):
            runtime.request_shutdown()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        node = runtime.create_node(cls)
        label = node.ctx.fqn
        node.get_logger().info(f"started ({runtime.backend_name} backend)")
        runtime.spin()
    except (ConfigError, RosArgsError) as exc:
        text = str(exc) if "node '" in str(exc) else f"node '{label}': {exc}"
        print(f"robot-stack node: error: {text}", file=sys.stderr)
        _close(runtime, label)
        return 2
    except Exception as exc:  # noqa: BLE001 - a crashing node must say which node it was
        traceback.print_exc()
        print(f"robot-stack node: node '{label}' crashed: {type(exc).__name__}: {exc}", file=sys.stderr)
        _close(runtime, label)
        return 1
    ok = _close(runtime, label)
    if runtime.error:
        print(f"robot-stack node: {runtime.error}", file=sys.stderr)
        return 1
    return 0 if ok else 1


def _close(runtime, label: str) -> bool:
    if runtime is None:
        return True
    try:
        runtime.shutdown()
    except Exception as exc:  # noqa: BLE001
        print(f"robot-stack node: node '{label}' shutdown failed: {exc}", file=sys.stderr)
        return False
    return True
