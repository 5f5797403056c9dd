"""Real driver control loops against their protocol simulators: missed ticks and tracking error.

For Franka (franky -> franky-sim) and WidowX AI (trossen_arm -> trossen-arm-sim), each in its own
simulator process on its own loopback address, runs a 10 Hz loop of small end-effector deltas
(a 4 mm/step circle in the horizontal plane, gripper open) for 60 s (``--quick``: 5 s) and reports

- ``<arm>_loop_missed_ticks``: ticks whose work (observe + send_action) ended after the tick's
  deadline (the loop then skips to the next future deadline);
- ``<arm>_tracking_p95_mm``: 95th percentile of |reached - commanded| end-effector position,
  the reached one read at the NEXT tick.

Targets on an idle machine: 0 missed ticks, p95 <= 3 mm. The simulators step physics in Python
and fall behind real time under CPU load, which shows up directly in both figures.

    python bench/control_drivers.py [--quick] [--only franky|trossen]

``measure(quick) -> dict`` is what bench/control.py imports. Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
from tqdm import tqdm

CONTROL_HZ = 10.0
STEP_FRACTION = 0.2  # of max_translation_m (0.02 m) per step -> 4 mm/step


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _loop(arm, duration_s: float, label: str) -> dict[str, float]:
    """Run the 10 Hz delta loop on a connected arm; returns missed ticks and tracking stats."""
    period = 1.0 / CONTROL_HZ
    n_ticks = int(round(duration_s * CONTROL_HZ))
    errors_mm: list[float] = []
    missed = 0
    last_target: np.ndarray | None = None
    t0 = time.monotonic()
    k = 0
    bar = tqdm(total=n_ticks, desc=label, file=sys.stderr, leave=False)
    while k < n_ticks:
        deadline = t0 + (k + 1) * period
        obs = arm.get_observation()
        if last_target is not None:
            errors_mm.append(float(np.linalg.norm(obs.ee_pose[:3] - last_target[:3]) * 1000.0))
        phase = 2 * math.pi * k / (4 * CONTROL_HZ)  # one circle every 4 s
        action = np.array([STEP_FRACTION * math.cos(phase), STEP_FRACTION * math.sin(phase), 0, 0, 0, 0, 1], np.float32)
        sent = arm.send_action(action)
        last_target = None if sent.held else sent.target_pose
        now = time.monotonic()
        if now > deadline:
            missed += 1
            skip = int((now - deadline) // period)  # deadlines already gone are skipped, not replayed
            k += 1 + skip
            bar.update(1 + skip)
            continue
        time.sleep(deadline - now)
        k += 1
        bar.update(1)
    bar.close()
    errs = np.asarray(errors_mm) if errors_mm else np.asarray([float("nan")])
    return {
        "missed_ticks": int(missed),
        "ticks": int(n_ticks),
        "tracking_p50_mm": round(float(np.percentile(errs, 50)), 3),
        "tracking_p95_mm": round(float(np.percentile(errs, 95)), 3),
        "wall_s": round(time.monotonic() - t0, 2),
    }


def measure_franky(duration_s: float, host: str = "127.0.0.61") -> dict[str, float]:
    from hardware.arm import make_arm
    from hardware.franka.simulator import FrankySimProcess

    with FrankySimProcess(host) as _sim:
        arm = make_arm("franka", hostname=host, control_hz=CONTROL_HZ)
        with arm:
            arm.move_to("home")
            return _loop(arm, duration_s, "franky")


def measure_trossen(duration_s: float, host: str = "127.0.0.62") -> dict[str, float]:
    from hardware.arm import make_arm
    from hardware.widowx_ai.simulator import TrossenSimProcess

    with TrossenSimProcess(host) as _sim:
        arm = make_arm("widowx_ai", host=host, control_hz=CONTROL_HZ)
        with arm:
            arm.move_to("home")
            return _loop(arm, duration_s, "trossen")


def measure(quick: bool = False, only: str | None = None) -> dict[str, object]:
    """Figures for bench/control.py: ``{franky,trossen}_{loop_missed_ticks,tracking_p95_mm}`` + details."""
    duration = 5.0 if quick else 60.0
    out: dict[str, object] = {}
    for name, fn in (("franky", measure_franky), ("trossen", measure_trossen)):
        if only and name != only:
            continue
        try:
            r = fn(duration)
        except Exception as exc:  # report the failure in the JSON instead of losing the other arm
            log(f"{name}: failed: {exc!r}")
            out[f"{name}_loop_missed_ticks"] = None
            out[f"{name}_tracking_p95_mm"] = None
            out[f"{name}_error"] = repr(exc)
            continue
        log(f"{name}: {r}")
        out[f"{name}_loop_missed_ticks"] = r["missed_ticks"]
        out[f"{name}_tracking_p95_mm"] = r["tracking_p95_mm"]
        out[f"{name}_tracking_p50_mm"] = r["tracking_p50_mm"]
        out[f"{name}_ticks"] = r["ticks"]
    out["load_avg_1min"] = round(os.getloadavg()[0], 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 s per arm instead of 60 s")
    parser.add_argument("--only", choices=("franky", "trossen"), help="measure one arm")
    args = parser.parse_args(argv)
    result = {"quick": args.quick, **measure(quick=args.quick, only=args.only)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
