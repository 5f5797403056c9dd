"""Start `trossen-arm-sim` (WidowX AI controller wire protocol + MuJoCo) in its own process.

The simulated controller binds fixed ports (TCP 50001, UDP 50000, WebSocket 50002), so each
instance gets its own loopback address (all of 127/8 is loopback on Linux):
``TrossenSimProcess("127.0.0.31")``. The child runs ``python -m hardware.widowx_ai.simulator``
(the simulator's controller server without its collision WebSocket), prints ``READY <host>``
when it accepts connections and exits by itself if its parent dies (no orphans on a shared box).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time


class SimulatorStartError(RuntimeError):
    """The simulator process exited or did not become ready in time."""


class TrossenSimProcess:
    """A trossen-arm-sim controller in a child process; context manager. ``kill()`` = link lost."""

    def __init__(self, host: str = "127.0.0.31", scene: str | None = None, start_timeout_s: float = 60.0):
        self.host = host
        self.scene = scene
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen | None = None
        self._log: list[str] = []

    def start(self) -> "TrossenSimProcess":
        cmd = [sys.executable, "-m", "hardware.widowx_ai.simulator", "--host", self.host]
        if self.scene:
            cmd += ["--scene", self.scene]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ),
            start_new_session=True,
        )
        ready = threading.Event()

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                if len(self._log) < 2000:  # every set_configuration is logged: keep memory bounded
                    self._log.append(line.rstrip())
                if line.startswith("READY "):
                    ready.set()

        threading.Thread(target=pump, daemon=True, name=f"trossen-sim-log-{self.host}").start()
        deadline = time.monotonic() + self.start_timeout_s
        while not ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SimulatorStartError(
                    f"trossen-arm-sim on {self.host} did not start within {self.start_timeout_s} s; "
                    f"log tail: {self._log[-10:]}"
                )
        return self

    @property
    def log(self) -> list[str]:
        return list(self._log)

    def kill(self) -> None:
        """SIGKILL the simulated controller (a pulled cable, as far as the driver can tell)."""
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

    def __enter__(self) -> "TrossenSimProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="trossen-arm-sim controller bound to one loopback address")
    parser.add_argument("--host", default="127.0.0.31", help="address to bind (TCP 50001, UDP 50000)")
    parser.add_argument("--scene", default="", help="MJCF scene including WIDOWX_XML ('' = empty scene)")
    args = parser.parse_args(argv)
    from trossen_arm_sim.server import TrossenArmSimServer
    from trossen_arm_sim.sim import DEFAULT_SCENE, WidowXSim

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    parent = os.getppid()
    sim = WidowXSim(args.scene or DEFAULT_SCENE)
    sim.start()
    server = TrossenArmSimServer(sim, host=args.host)
    server.start()
    print(f"READY {args.host}", flush=True)
    try:
        while not stop.wait(0.5):
            if os.getppid() != parent:  # the test / bench that started us is gone
                break
    finally:
        server.stop()
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
