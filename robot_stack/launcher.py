"""``robot-stack up graph.yaml``: start a graph of nodes as separate processes, without ROS 2.

Graph YAML (the same file ``launch/graph.launch.py`` reads under ``ros2 launch``)::

    env: {MUJOCO_GL: egl}            # optional, for every node
    nodes:
      - name: camera                 # unique node name (-r __node:=camera)
        node: camera                 # registered node name or module:Class
        namespace: /robot1           # optional
        params: {fps: 10}            # optional, ROS parameters (-p)
        params_file: camera.yaml     # optional (or params_files: [...]); relative to the graph file
        remaps: {image: /cam/image}  # optional topic remaps
        env: {CAMERA_ID: "0"}        # optional, extra environment for this node
        required: true               # if it exits, stop everything and fail (default false, as in ROS)
        respawn: false               # restart it when it exits (true, or a max number of restarts)
        respawn_delay: 1.0           # seconds before a respawn

Every child's stdout/stderr lines are prefixed with ``[name]``. Ctrl-C (or SIGTERM) stops all
children: SIGINT, then SIGTERM, then SIGKILL after timeouts. When a required node dies the
others are stopped the same way and ``up`` exits 1 naming the dead node. If the launcher itself
dies without stopping them (SIGKILL, a crash), Linux sends every child SIGTERM: no node outlives
it to keep commanding an arm, or to hold the arm's connection that a restart needs.

Python API (used by session code)::

    with Launcher("graph.yaml", env=isolated_env()) as launcher:   # start() on enter, stop() on exit
        launcher.poll()            # {name: returncode or None}
        launcher.kill("camera", signal.SIGKILL); launcher.restart("camera")
        launcher.check()           # one supervision step: respawns, required-node failures
        code = launcher.wait()     # supervise until all exit or a required node dies

The parent-death signal is tied to the thread that started a child: call ``start``, ``restart``
and ``check`` from threads that live until ``stop`` (the main thread, or a supervising thread that
calls ``stop`` itself before it ends, as ``Session.supervise`` does).
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any, Mapping

import yaml

from robot_stack.runtime.params import RosArgsError, validate_name
from robot_stack.runtime.process import node_command, stop_process


PR_SET_PDEATHSIG = 1  # linux/prctl.h
try:
    # Bound now, in the parent: between fork and exec the child should only make this one call.
    _prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
except (OSError, AttributeError):
    _prctl = None


def _terminate_with(parent_pid: int):
    """preexec_fn: the child gets SIGTERM when the thread that started it dies (Linux; elsewhere
    a no-op). Children are started and restarted from the launcher's long-lived threads."""

    def preexec() -> None:
        if _prctl is not None:
            _prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
            if os.getppid() != parent_pid:  # the launcher died before prctl took effect
                os._exit(1)

    return preexec


class GraphError(ValueError):
    """An invalid graph description; the message names the node entry and key."""


@dataclasses.dataclass
class NodeSpec:
    """One node of a graph (see the module docstring for the YAML keys)."""

    name: str
    node: str
    namespace: str | None = None
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    params_files: list[str] = dataclasses.field(default_factory=list)
    remaps: dict[str, str] = dataclasses.field(default_factory=dict)
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    required: bool = False
    respawn: bool | int = False
    respawn_delay: float = 1.0

    def command(self, python: str | None = None) -> list[str]:
        return node_command(self.node, name=self.name, namespace=self.namespace, params=self.params,
                            params_files=self.params_files, remaps=self.remaps, python=python)


NODE_KEYS = {"name", "node", "namespace", "params", "params_file", "params_files", "remaps", "env",
             "required", "respawn", "respawn_delay"}
GRAPH_KEYS = {"nodes", "env"}


def load_graph(graph: str | os.PathLike | Mapping[str, Any]) -> tuple[list[NodeSpec], dict[str, str]]:
    """Parse and validate a graph (path to YAML, or the same structure as a dict)."""
    base = pathlib.Path.cwd()
    if isinstance(graph, Mapping):
        doc, where = graph, "graph"
    else:
        path = pathlib.Path(graph)
        where, base = str(path), path.resolve().parent
        try:
            doc = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise GraphError(f"{path}: no such graph file") from None
        except yaml.YAMLError as exc:
            raise GraphError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("nodes"), list) or not doc["nodes"]:
        raise GraphError(f"{where}: expected a mapping with a non-empty 'nodes' list")
    unknown = set(doc) - GRAPH_KEYS
    if unknown:
        raise GraphError(f"{where}: unknown top-level key(s) {sorted(unknown)}; known: {sorted(GRAPH_KEYS)}")
    specs: list[NodeSpec] = []
    for i, entry in enumerate(doc["nodes"]):
        label = f"{where}: nodes[{i}]"
        if not isinstance(entry, Mapping):
            raise GraphError(f"{label}: expected a mapping")
        label = f"{where}: node '{entry.get('name', i)}'"
        unknown = set(entry) - NODE_KEYS
        if unknown:
            raise GraphError(f"{label}: unknown key(s) {sorted(unknown)}; known: {sorted(NODE_KEYS)}")
        for key in ("name", "node"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise GraphError(f"{label}: '{key}' (a string) is required")
        try:
            validate_name(entry["name"], "node name")
        except RosArgsError as exc:
            raise GraphError(f"{label}: {exc}") from None
        files = entry.get("params_files") or []
        if entry.get("params_file"):
            files = [entry["params_file"], *files]
        for key, kind in (("params", Mapping), ("remaps", Mapping), ("env", Mapping), ("params_files", list)):
            if key in entry and entry[key] is not None and not isinstance(entry[key], kind):
                raise GraphError(f"{label}: '{key}' must be a {'mapping' if kind is Mapping else 'list'}")
        respawn = entry.get("respawn", False)
        if not isinstance(respawn, (bool, int)) or (not isinstance(respawn, bool) and respawn < 0):
            raise GraphError(f"{label}: 'respawn' must be true/false or a number of restarts, got {respawn!r}")
        if not isinstance(entry.get("required", False), bool):
            raise GraphError(f"{label}: 'required' must be true or false")
        spec = NodeSpec(
            name=entry["name"], node=entry["node"], namespace=entry.get("namespace"),
            params=dict(entry.get("params") or {}),
            params_files=[str((base / f).resolve()) for f in files],
            remaps={str(k): str(v) for k, v in (entry.get("remaps") or {}).items()},
            env={str(k): str(v) for k, v in (entry.get("env") or {}).items()},
            required=entry.get("required", False), respawn=respawn,
            respawn_delay=float(entry.get("respawn_delay", 1.0)),
        )
        if any(s.name == spec.name and s.namespace == spec.namespace for s in specs):
            raise GraphError(f"{label}: duplicate node name")
        specs.append(spec)
    env = {str(k): str(v) for k, v in (doc.get("env") or {}).items()}
    return specs, env


class _Child:
    def __init__(self, spec: NodeSpec):
        self.spec = spec
        self.proc: subprocess.Popen | None = None
        self.pump: threading.Thread | None = None
        self.restarts = 0
        self.respawn_at: float | None = None
        self.expected_exit = False  # we stopped it on purpose (stop/restart)


class Launcher:
    """Start, supervise and stop a graph of node processes (see module docstring)."""

    def __init__(
        self,
        graph: str | os.PathLike | Mapping[str, Any],
        env: Mapping[str, str] | None = None,
        output: IO[str] | None = None,
        log_dir: str | os.PathLike | None = None,
        sigint_timeout: float = 5.0,
        sigterm_timeout: float = 3.0,
    ):
        """``env`` is added on top of ``os.environ`` (e.g. ``isolated_env()``); ``output`` gets the
        prefixed child lines (default: stdout); ``log_dir`` also keeps one ``<name>.log`` per node."""
        self.specs, graph_env = load_graph(graph)
        self.env = {**os.environ, **graph_env, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self.output = output if output is not None else sys.stdout
        self.log_dir = pathlib.Path(log_dir) if log_dir else None
        self.timeouts = (sigint_timeout, sigterm_timeout)
        self.children = {s.name: _Child(s) for s in self.specs}
        self.failure: str | None = None
        self._out_lock = threading.Lock()
        self._stopping = False

    # -- output -----------------------------------------------------------------------------

    def _emit(self, name: str, line: str) -> None:
        with self._out_lock:
            self.output.write(f"[{name}] {line}" if line.endswith("\n") else f"[{name}] {line}\n")
            self.output.flush()

    def _pump(self, child: _Child, stream: IO[bytes]) -> None:
        log = (self.log_dir / f"{child.spec.name}.log").open("ab") if self.log_dir else None
        try:
            for raw in iter(stream.readline, b""):
                if log:
                    log.write(raw)
                    log.flush()
                self._emit(child.spec.name, raw.decode("utf-8", errors="replace"))
        finally:
            stream.close()
            if log:
                log.close()

    # -- lifecycle --------------------------------------------------------------------------

    def _spawn(self, child: _Child) -> None:
        env = {**self.env, **child.spec.env}
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        child.proc = subprocess.Popen(
            child.spec.command(), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,  # our Ctrl-C handling decides the order
            preexec_fn=_terminate_with(os.getpid()),
        )
        child.expected_exit = False
        child.respawn_at = None
        child.pump = threading.Thread(target=self._pump, args=(child, child.proc.stdout), daemon=True,
                                      name=f"launcher-{child.spec.name}")
        child.pump.start()
        self._emit("launcher", f"started node '{child.spec.name}' ({child.spec.node}) pid {child.proc.pid}")

    def start(self) -> "Launcher":
        """Start every node, in graph order."""
        for child in self.children.values():
            self._spawn(child)
        return self

    def poll(self) -> dict[str, int | None]:
        """``{name: returncode}`` (None while running)."""
        return {n: (c.proc.poll() if c.proc else None) for n, c in self.children.items()}

    def pid(self, name: str) -> int | None:
        proc = self._child(name).proc
        return proc.pid if proc else None

    def _child(self, name: str) -> _Child:
        if name not in self.children:
            raise KeyError(f"no node named {name!r} in this graph; nodes: {sorted(self.children)}")
        return self.children[name]

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to one node (supervision then treats its exit like any other: respawn/required)."""
        child = self._child(name)
        if child.proc and child.proc.poll() is None:
            child.proc.send_signal(sig)

    def restart(self, name: str) -> None:
        """Stop one node politely (SIGINT → SIGTERM → SIGKILL) and start it again."""
        child = self._child(name)
        if child.proc:
            child.expected_exit = True
            stop_process(child.proc, *self.timeouts)
            if child.pump:
                child.pump.join(2.0)
        child.restarts += 1
        self._spawn(child)

    def check(self) -> str | None:
        """One supervision step: respawn exited nodes that ask for it; if a required node exited,
        stop everything and return (and keep in ``failure``) a message naming it."""
        if self.failure or self._stopping:
            return self.failure
        now = time.monotonic()
        for name, child in self.children.items():
            rc = child.proc.poll() if child.proc else None
            if rc is None or child.expected_exit:
                continue
            spec = child.spec
            budget = spec.respawn if not isinstance(spec.respawn, bool) else (float("inf") if spec.respawn else 0)
            if child.restarts < budget:
                if child.respawn_at is None:
                    self._emit("launcher", f"node '{name}' exited with code {rc}; respawning in {spec.respawn_delay:g} s")
                    child.respawn_at = now + spec.respawn_delay
                elif now >= child.respawn_at:
                    child.restarts += 1
                    self._spawn(child)
                continue
            if spec.required:
                self.failure = f"required node '{name}' exited with code {rc}"
                self._emit("launcher", self.failure + "; stopping all nodes")
                self.stop()
                return self.failure
            if child.respawn_at is None:  # report once
                child.respawn_at = float("inf")
                self._emit("launcher", f"node '{name}' exited with code {rc}")
        return None

    def running(self) -> list[str]:
        return [n for n, rc in self.poll().items() if rc is None]

    def wait(self, timeout: float | None = None, stop_event: threading.Event | None = None) -> int:
        """Supervise until every node exited, a required node died (→ 1), ``stop_event`` is set
        (→ stop all; 0 if they stopped cleanly) or ``timeout`` passed (→ None-like 124, nodes left running)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if stop_event is not None and stop_event.is_set():
                codes = self.stop()
                return 0 if all(rc == 0 for rc in codes.values()) else 1
            if self.check():
                return 1
            pending_respawn = any(c.respawn_at not in (None, float("inf")) for c in self.children.values())
            if not self.running() and not pending_respawn:
                bad = {n: rc for n, rc in self.poll().items() if rc != 0}
                return 1 if bad else 0
            if deadline is not None and time.monotonic() > deadline:
                return 124
            time.sleep(0.05)

    def stop(self) -> dict[str, int | None]:
        """Stop every node: SIGINT to all, SIGTERM to those left after the first timeout, then SIGKILL."""
        self._stopping = True
        live = [c for c in self.children.values() if c.proc and c.proc.poll() is None]
        for c in live:
            c.expected_exit = True
        for sig, timeout in ((signal.SIGINT, self.timeouts[0]), (signal.SIGTERM, self.timeouts[1]), (signal.SIGKILL, 5.0)):
            live = [c for c in live if c.proc.poll() is None]
            if not live:
                break
            if sig != signal.SIGINT:
                self._emit("launcher", f"{', '.join(c.spec.name for c in live)} still running: sending {sig.name}")
            for c in live:
                try:
                    c.proc.send_signal(sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and any(c.proc.poll() is None for c in live):
                time.sleep(0.02)
        for c in self.children.values():
            if c.proc:
                c.proc.wait()
            if c.pump:
                c.pump.join(2.0)
        return self.poll()

    def __enter__(self) -> "Launcher":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --- CLI ---------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("graph", help="graph YAML (nodes: name, node, params, params_file, env, required, respawn)")
    parser.add_argument("--isolated", action="store_true",
                        help="loopback-only DDS on a random ROS_DOMAIN_ID (nothing reaches the lab network)")
    parser.add_argument("--log-dir", default=None, help="also write each node's output to <dir>/<name>.log")
    parser.add_argument("--sigint-timeout", type=float, default=5.0, help="seconds before SIGTERM when stopping")
    parser.add_argument("--sigterm-timeout", type=float, default=3.0, help="seconds before SIGKILL when stopping")


def run(args: argparse.Namespace) -> int:
    from robot_stack.cli import CliError

    env: dict[str, str] = {}
    if args.isolated:
        from robot_stack.runtime.dds import isolated_env

        env = isolated_env()
    try:
        launcher = Launcher(args.graph, env=env, log_dir=args.log_dir,
                            sigint_timeout=args.sigint_timeout, sigterm_timeout=args.sigterm_timeout)
    except GraphError as exc:
        raise CliError(str(exc)) from None
    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    launcher.start()
    try:
        code = launcher.wait(stop_event=stop)
    finally:
        launcher.stop()
    if launcher.failure:
        print(f"robot-stack up: error: {launcher.failure}", file=sys.stderr)
    return code
