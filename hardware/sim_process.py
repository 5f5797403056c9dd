"""A protocol simulator in a child process, for tests and benchmarks of the real drivers.

Simulators of real controllers (franky-sim, trossen-arm-sim) bind fixed ports, so each instance
gets its own loopback address (all of 127/8 is loopback on Linux). The child prints
``READY <address>`` once it accepts connections and exits by itself when its parent dies, so a
crashed test never leaves simulators running on a shared machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import Callable

READY_PREFIX = "READY "
LOG_LINES = 2000  # some simulators log every command: keep memory bounded


class SimulatorStartError(RuntimeError):
    """The simulator process exited or did not become ready in time."""


class SimulatorProcess:
    """Base of the simulator launchers; subclasses give ``name`` and ``command()``. Context manager;
    ``kill()`` simulates a pulled network cable."""

    name = "simulator"

    def __init__(self, address: str, start_timeout_s: float = 60.0):
        self.address = address
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen | None = None
        self._log: list[str] = []

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> "SimulatorProcess":
        env = dict(os.environ)
        env.setdefault("MUJOCO_GL", "egl")
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=env, start_new_session=True)  # a test's Ctrl-C must not reach it first
        ready = threading.Event()

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                if len(self._log) < LOG_LINES:
                    self._log.append(line.rstrip())
                if line.startswith(READY_PREFIX):
                    ready.set()

        threading.Thread(target=pump, daemon=True, name=f"{self.name}-log-{self.address}").start()
        deadline = time.monotonic() + self.start_timeout_s
        while not ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SimulatorStartError(f"{self.name} on {self.address} did not start within "
                                          f"{self.start_timeout_s} s; log tail: {self._log[-10:]}")
        return self

    @property
    def log(self) -> list[str]:
        return list(self._log)

    def kill(self) -> None:
        """SIGKILL the simulator (a pulled network cable, as far as the driver can tell)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_until_stopped(address: str, poll_s: float = 0.2, on_stop: Callable[[], None] | None = None) -> None:
    """In the child: announce readiness, then block until SIGTERM/SIGINT or the parent's death."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    parent = os.getppid()
    print(f"{READY_PREFIX}{address}", flush=True)
    try:
        while not stop.wait(poll_s):
            if os.getppid() != parent:  # whoever started us died: no orphans
                break
    finally:
        if on_stop is not None:
            on_stop()
