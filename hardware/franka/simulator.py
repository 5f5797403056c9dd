"""Start `franky-sim` (libfranka network protocol + MuJoCo) in its own process for tests and benches.

The simulator binds a fixed set of libfranka ports, so each instance gets its own loopback address
(all of 127/8 is loopback on Linux): ``FrankySimProcess("127.0.0.21")``. Run it as
``python -m hardware.franka.simulator --hostname 127.0.0.21``; it prints ``READY <host>`` once the
server accepts connections, and exits by itself if its parent process dies.

Measured here: the server steps MuJoCo at 1 kHz in Python and runs slower than real time under
CPU load (motions then take longer in wall-clock time).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time

READY_PREFIX = "READY "


class SimulatorStartError(RuntimeError):
    """The simulator process exited or did not become ready in time."""


class FrankySimProcess:
    """A franky-sim server in a child process; context manager. ``kill()`` simulates a lost link."""

    def __init__(self, hostname: str = "127.0.0.21", start_timeout_s: float = 60.0):
        self.hostname = hostname
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen | None = None
        self._log: list[str] = []

    def start(self) -> "FrankySimProcess":
        env = dict(os.environ)
        env.setdefault("MUJOCO_GL", "egl")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hardware.franka.simulator", "--hostname", self.hostname],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,  # a test's Ctrl-C must not reach it before we clean up
        )
        ready = threading.Event()

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self._log.append(line.rstrip())
                if line.startswith(READY_PREFIX):
                    ready.set()

        threading.Thread(target=pump, daemon=True, name=f"franky-sim-log-{self.hostname}").start()
        deadline = time.monotonic() + self.start_timeout_s
        while not ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SimulatorStartError(
                    f"franky-sim on {self.hostname} did not start within {self.start_timeout_s} s; "
                    f"log tail: {self._log[-10:]}"
                )
        return self

    @property
    def log(self) -> list[str]:
        return list(self._log)

    def kill(self) -> None:
        """SIGKILL the simulator (a pulled network cable, as far as the client can tell)."""
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

    def __enter__(self) -> "FrankySimProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="franky-sim (MuJoCo) bound to one loopback address")
    parser.add_argument("--hostname", default="127.0.0.21", help="loopback address to bind")
    args = parser.parse_args(argv)
    # franky_sim's own CLI picks the Genesis backend first under "auto" and dies without it,
    # so build the MuJoCo simulator directly.
    import franky_sim
    from franky_sim.mujoco_simulator import MujocoSimulator

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    parent = os.getppid()
    with MujocoSimulator(enable_visualization=False) as sim:
        sim.add_robot()
        with franky_sim.SimulationServer(sim, hostname_candidates=[args.hostname]) as server:
            server.run_async()
            print(f"{READY_PREFIX}{args.hostname}", flush=True)
            try:
                while not stop.wait(0.2):
                    if os.getppid() != parent:  # whoever started us died: no orphans
                        break
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
