"""Control benchmark: sim control-step rate with rendering, scripted-expert success rates, and
(when ``bench/control_drivers.py`` exists) the real-driver loop figures measured against the
franky / trossen protocol simulators.

Sections are separate functions so each owner adds theirs:
- ``sim_steps_per_s_render128`` (here): control steps per second of the WidowX 250 cube/bowl
  scene, each step = one scripted-expert action through the Arm safety path + IK + one control
  period of physics + one 128x128 render of the front camera. Simulated time, so the figure is
  how much faster (or slower) than the 5 Hz real robot the sim runs on this machine.
- ``franky_loop_missed_ticks``, ``franky_tracking_p95_mm``, ``trossen_loop_missed_ticks``,
  ``trossen_tracking_p95_mm``: from ``bench/control_drivers.py`` (``measure(quick) -> dict``) if
  present, else null.

Progress goes to stderr; the last stdout line is one JSON object.

    python bench/control.py            # full run
    python bench/control.py --quick    # smoke-test size
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DRIVER_KEYS = ("franky_loop_missed_ticks", "franky_tracking_p95_mm", "trossen_loop_missed_ticks", "trossen_tracking_p95_mm")


def log(msg: str) -> None:
    print(f"[bench/control] {msg}", file=sys.stderr, flush=True)


def sim_steps_per_s(steps: int, image_size: int | None, scene_name: str = "widowx250_cube_bowl") -> float:
    """Control steps/s of ``scene_name`` with one ``image_size`` render per step (None: no render)."""
    from hardware.sim import make_scene

    scene = make_scene(scene_name, seed=0, image_size=image_size or 128)
    rng = np.random.default_rng(0)
    tasks = [t.id for t in scene.tasks]
    k = 0
    scene.randomize(rng, task_id=tasks[0])
    expert = scene.expert(tasks[0], noise=0.1, rng=rng)
    if image_size:
        scene.render()  # create the GL context outside the timed loop
    t0 = time.perf_counter()
    for i in range(steps):
        scene.step(expert(scene.observe()))
        if image_size:
            scene.render()
        if scene.success(tasks[k % 2]) or (i + 1) % scene.max_episode_steps == 0:
            # reset-free: flip to the reverse task without touching the world
            k += 1
            expert = scene.expert(tasks[k % 2], noise=0.1, rng=rng)
    rate = steps / (time.perf_counter() - t0)
    scene.close()
    return rate


def sim_steps_per_s_render128(quick: bool) -> float:
    return sim_steps_per_s(60 if quick else 600, 128)


def expert_success(quick: bool, gate: str = "strict") -> tuple[dict[str, float], dict[str, float]]:
    """Success rate of each scripted expert (noise 0.1, pick experts with descent ``gate``) from
    randomised starts, and its mean steps to success."""
    from hardware.sim import SCENES, make_scene

    seeds = 3 if quick else 30
    out: dict[str, float] = {}
    steps: dict[str, float] = {}
    for name in sorted(SCENES):
        scene = make_scene(name, seed=0)
        for task in scene.tasks:
            won: list[int] = []
            for s in range(seeds):
                rng = np.random.default_rng(10_000 + s)
                scene.randomize(rng, task_id=task.id)
                expert = scene.expert(task.id, noise=0.1, rng=rng, gate=gate)
                for t in range(scene.max_episode_steps):
                    scene.step(expert(scene.observe()))
                    if scene.success(task.id):
                        won.append(t + 1)
                        break
            key = f"{name}/{task.id}"
            out[key] = len(won) / seeds
            steps[key] = round(float(np.mean(won)), 1) if won else float("nan")
            log(f"expert {key}: {len(won)}/{seeds}, {steps[key]} steps")
        scene.close()
    return out, steps


def driver_figures(quick: bool) -> dict[str, float | None]:
    """Figures from bench/control_drivers.py (owned by the drivers engineer), or nulls."""
    path = REPO / "bench" / "control_drivers.py"
    if not path.exists():
        log("bench/control_drivers.py not present: driver figures are null")
        return {k: None for k in DRIVER_KEYS}
    spec = importlib.util.spec_from_file_location("bench_control_drivers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures = module.measure(quick=quick)
    return {k: figures.get(k) for k in DRIVER_KEYS}


def main(argv: list[str] | None = None) -> int:
    from hardware.sim.experts import DESCENT_GATES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke-test sizes")
    parser.add_argument("--skip-experts", action="store_true", help="skip the expert success rates")
    parser.add_argument("--gate", default="strict", choices=sorted(DESCENT_GATES), help="the pick experts' descent gate")
    args = parser.parse_args(argv)

    result: dict[str, object] = {"quick": args.quick}
    log("sim steps/s with a 128x128 render per step ...")
    result["sim_steps_per_s_render128"] = round(sim_steps_per_s_render128(args.quick), 1)
    log(f"  {result['sim_steps_per_s_render128']} steps/s")
    n = 60 if args.quick else 400
    result["sim_steps_per_s_render64"] = round(sim_steps_per_s(n, 64), 1)
    result["sim_steps_per_s_no_render"] = round(sim_steps_per_s(n, None), 1)
    result["sim_steps_per_s_franka_render128"] = round(sim_steps_per_s(n // 2, 128, "franka_cube_bowl"), 1)
    log(f"  64x64: {result['sim_steps_per_s_render64']}, no render: {result['sim_steps_per_s_no_render']}, "
        f"franka 128: {result['sim_steps_per_s_franka_render128']}")
    if not args.skip_experts:
        result["expert_gate"] = args.gate
        result["expert_success"], result["expert_steps_to_success"] = expert_success(args.quick, args.gate)
    result.update(driver_figures(args.quick))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
