"""Start and stop node processes (used by the launcher, the session code and tests).

    env = {**os.environ, **isolated_env()}                 # loopback DDS, random domain
    proc = start_node("talker", params={"rate_hz": 20}, env=env)
    ...
    stop_process(proc)                                     # SIGINT, then SIGTERM, then SIGKILL

Children run ``python -m robot_stack.cli node <node> --ros-args ...`` with this interpreter,
so they work from a checkout without the ``robot-stack`` script on PATH.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any, Iterable, Mapping


def param_arg(name: str, value: Any) -> str:
    """``name:=value`` with the value written as JSON (valid YAML), so types survive rcl's YAML parse."""
    if isinstance(value, tuple):
        value = list(value)
    if hasattr(value, "__fspath__"):
        value = os.fspath(value)
    return f"{name}:={json.dumps(value)}"


def node_command(
    node: str,
    name: str | None = None,
    namespace: str | None = None,
    params: Mapping[str, Any] | None = None,
    params_files: Iterable[str] = (),
    remaps: Mapping[str, str] | None = None,
    backend: str | None = None,
    python: str | None = None,
) -> list[str]:
    """The argv that runs one node: registered name or ``module:Class``; params files first, ``-p`` after (wins)."""
    cmd = [python or sys.executable, "-m", "robot_stack.cli", "node", node]
    if backend:
        cmd[4:4] = ["--backend", backend]
    ros: list[str] = []
    if name:
        ros += ["-r", f"__node:={name}"]
    if namespace:
        ros += ["-r", f"__ns:={namespace}"]
    for src, dst in (remaps or {}).items():
        ros += ["-r", f"{src}:={dst}"]
    for f in params_files:
        ros += ["--params-file", os.fspath(f)]
    for k, v in (params or {}).items():
        ros += ["-p", param_arg(k, v)]
    return cmd + (["--ros-args", *ros] if ros else [])


def start_node(node: str, env: Mapping[str, str] | None = None, **kwargs: Any) -> subprocess.Popen:
    """Start one node process (own process group, so a terminal Ctrl-C does not hit it twice).

    ``kwargs`` go to :func:`node_command`, except ``stdout``/``stderr``/``cwd`` (to Popen).
    """
    popen = {k: kwargs.pop(k) for k in ("stdout", "stderr", "cwd") if k in kwargs}
    full_env = dict(os.environ if env is None else env)
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    return subprocess.Popen(node_command(node, **kwargs), env=full_env, start_new_session=True, **popen)


def stop_process(proc: subprocess.Popen, sigint_timeout: float = 5.0, sigterm_timeout: float = 3.0) -> int:
    """Stop ``proc`` politely: SIGINT, then SIGTERM, then SIGKILL after the timeouts; returns its exit code."""
    for sig, timeout in ((signal.SIGINT, sigint_timeout), (signal.SIGTERM, sigterm_timeout), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()


def wait_for(predicate, timeout_s: float, interval_s: float = 0.05) -> bool:
    """Poll ``predicate()`` until true or ``timeout_s``; returns the last result."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())
