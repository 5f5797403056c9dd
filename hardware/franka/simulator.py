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
import sys

from hardware.sim_process import SimulatorProcess, SimulatorStartError, serve_until_stopped

__all__ = ["FrankySimProcess", "SimulatorStartError"]


class FrankySimProcess(SimulatorProcess):
    """A franky-sim server in a child process; context manager. ``kill()`` simulates a lost link."""

    name = "franky-sim"

    def __init__(self, hostname: str = "127.0.0.21", start_timeout_s: float = 60.0):
        super().__init__(hostname, start_timeout_s)
        self.hostname = hostname

    def command(self) -> list[str]:
        return [sys.executable, "-m", "hardware.franka.simulator", "--hostname", self.hostname]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="franky-sim (MuJoCo) bound to one loopback address")
    parser.add_argument("--hostname", default="127.0.0.21", help="loopback address to bind")
    args = parser.parse_args(argv)
    # franky_sim's own CLI picks the Genesis backend first under "auto" and dies without it,
    # so build the MuJoCo simulator directly.
    import franky_sim
    from franky_sim.mujoco_simulator import MujocoSimulator

    with MujocoSimulator(enable_visualization=False) as sim:
        sim.add_robot()
        with franky_sim.SimulationServer(sim, hostname_candidates=[args.hostname]) as server:
            server.run_async()
            serve_until_stopped(args.hostname)
    return 0


if __name__ == "__main__":
    sys.exit(main())
