"""The per-process runtime: picks a backend, creates nodes, spins callbacks, shuts down.

Backend choice (``Runtime(backend="auto")``): ``ROBOT_STACK_BACKEND`` if set (``rclpy`` or
``cyclonedds``), else ``rclpy`` when it imports (a sourced ROS 2 install), else ``cyclonedds``.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from typing import Any, Callable, TypeVar

from robot_stack.runtime.params import RosArgs, parse_ros_args, resolve_params

N = TypeVar("N")
BACKENDS = ("rclpy", "cyclonedds")


def _rclpy_importable() -> bool:
    try:
        importlib.import_module("rclpy")
    except ImportError:
        return False
    return True


def select_backend(requested: str = "auto", rclpy_available: Callable[[], bool] = _rclpy_importable) -> str:
    """Resolve ``"auto"`` (or ``$ROBOT_STACK_BACKEND``) to ``"rclpy"`` or ``"cyclonedds"``."""
    if requested == "auto":
        requested = os.environ.get("ROBOT_STACK_BACKEND", "auto") or "auto"
    if requested == "auto":
        return "rclpy" if rclpy_available() else "cyclonedds"
    if requested not in BACKENDS:
        raise ValueError(f"unknown runtime backend {requested!r}; choose one of {list(BACKENDS)} or 'auto'")
    if requested == "rclpy" and not rclpy_available():
        raise RuntimeError("backend 'rclpy' requested but rclpy does not import (source your ROS 2 setup.bash)")
    return requested


class Runtime:
    """One per process: owns the backend (DDS participant or rclpy context) and spins all its nodes.

    Use as a context manager; ``ros_args`` is the ``--ros-args ...`` part of the command line.
    """

    def __init__(self, backend: str = "auto", ros_args: list[str] | None = None, domain_id: int | None = None):
        self.ros_args_list = list(ros_args or [])
        self.ros_args: RosArgs = parse_ros_args(self.ros_args_list)
        from robot_stack.runtime.node import _setup_logging

        _setup_logging(self.ros_args.log_level or os.environ.get("ROBOT_STACK_LOG_LEVEL", "INFO"))
        self.backend_name = select_backend(backend)
        if self.backend_name == "rclpy":
            from robot_stack.runtime.rclpy_backend import RclpyBackend

            self.backend: Any = RclpyBackend(self, self.ros_args_list)
        else:
            from robot_stack.runtime.dds import CycloneBackend

            self.backend = CycloneBackend(self, domain_id=domain_id)
        self.nodes: list[Any] = []
        self._stop = threading.Event()
        self.error: str | None = None
        self._closed = False

    # -- nodes ------------------------------------------------------------------------------

    def create_node(
        self,
        cls: type[N],
        name: str | None = None,
        namespace: str | None = None,
        params: dict[str, Any] | None = None,
        remaps: dict[str, str] | None = None,
    ) -> N:
        """Construct node class ``cls``: names from args > ``--ros-args -r`` > ``cls.name``;
        parameters from ``--ros-args`` / ``--params-file``, then ``params`` on top."""
        from robot_stack.runtime.node import NodeContext

        name = name or self.ros_args.node_name or getattr(cls, "name", None) or cls.__name__.lower()
        namespace = namespace or self.ros_args.namespace or "/"
        if not namespace.startswith("/"):
            namespace = "/" + namespace
        fqn = namespace.rstrip("/") + "/" + name
        merged = resolve_params(self.ros_args, fqn, name)
        merged.update(params or {})
        ctx = NodeContext(runtime=self, name=name, namespace=namespace, params=merged,
                          remaps={**self.ros_args.remaps, **(remaps or {})})
        return cls(ctx)

    def _register(self, node: Any) -> None:
        self.nodes.append(node)
        self._graph_changed()

    def _graph_changed(self) -> None:
        if hasattr(self.backend, "publish_graph"):
            self.backend.publish_graph(self.nodes)

    # -- spinning ---------------------------------------------------------------------------

    def spin_once(self, timeout_s: float = 0.1) -> None:
        self.backend.spin_once(timeout_s)

    def spin(self, timeout_s: float | None = None) -> None:
        """Run callbacks until :meth:`request_shutdown` (or ``timeout_s``). Callback exceptions propagate."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._stop.is_set():
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return
            self.backend.spin_once(left)

    def spin_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Spin until ``predicate()`` is true (returns True) or ``timeout_s`` passes (returns False)."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0 or self._stop.is_set():
                return bool(predicate())
            self.backend.spin_once(min(left, 0.05))
        return True

    def request_shutdown(self, error: str | None = None) -> None:
        """Stop :meth:`spin` (thread-safe, signal-safe); ``error`` is kept for the exit status."""
        if error and not self.error:
            self.error = error
        self._stop.set()
        try:
            self.backend.wake()
        except Exception:  # noqa: BLE001 - waking is best effort (e.g. from a signal during teardown)
            pass

    @property
    def shutdown_requested(self) -> bool:
        return self._stop.is_set()

    def shutdown(self) -> None:
        """Call every node's ``on_shutdown`` (newest first), then release DDS/rclpy resources."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        errors = []
        for node in reversed(self.nodes):
            try:
                node.on_shutdown()
            except Exception as exc:  # noqa: BLE001 - keep shutting the others down
                errors.append(f"node '{node.ctx.fqn}' on_shutdown failed: {exc!r}")
            try:
                node.destroy_node()
            except Exception as exc:  # noqa: BLE001
                errors.append(f"node '{node.ctx.fqn}' destroy failed: {exc!r}")
        self.backend.close()
        if errors:
            raise RuntimeError("; ".join(errors))

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
