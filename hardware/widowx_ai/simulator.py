"""Start `trossen-arm-sim` (WidowX AI controller wire protocol + MuJoCo) in its own process.

The simulated controller binds fixed ports (TCP 50001, UDP 50000, WebSocket 50002), so each
instance gets its own loopback address (all of 127/8 is loopback on Linux):
``TrossenSimProcess("127.0.0.31")``. The child runs ``python -m hardware.widowx_ai.simulator``
(the simulator's controller server without its collision WebSocket), prints ``READY <host>``
when it accepts connections and exits by itself if its parent dies (no orphans on a shared box).
"""

from __future__ import annotations

import argparse
import sys

from hardware.sim_process import SimulatorProcess, SimulatorStartError, serve_until_stopped

__all__ = ["TrossenSimProcess", "SimulatorStartError"]


class TrossenSimProcess(SimulatorProcess):
    """A trossen-arm-sim controller in a child process; context manager. ``kill()`` = link lost."""

    name = "trossen-arm-sim"

    def __init__(self, host: str = "127.0.0.31", scene: str | None = None, start_timeout_s: float = 60.0):
        super().__init__(host, start_timeout_s)
        self.host = host
        self.scene = scene

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "hardware.widowx_ai.simulator", "--host", self.host]
        return cmd + (["--scene", self.scene] if self.scene else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="trossen-arm-sim controller bound to one loopback address")
    parser.add_argument("--host", default="127.0.0.31", help="address to bind (TCP 50001, UDP 50000)")
    parser.add_argument("--scene", default="", help="MJCF scene including WIDOWX_XML ('' = empty scene)")
    args = parser.parse_args(argv)
    from trossen_arm_sim.server import TrossenArmSimServer
    from trossen_arm_sim.sim import DEFAULT_SCENE, WidowXSim

    sim = WidowXSim(args.scene or DEFAULT_SCENE)
    sim.start()
    server = TrossenArmSimServer(sim, host=args.host)
    server.start()

    def shut_down() -> None:
        server.stop()
        sim.stop()

    serve_until_stopped(args.host, poll_s=0.5, on_stop=shut_down)
    return 0


if __name__ == "__main__":
    sys.exit(main())
