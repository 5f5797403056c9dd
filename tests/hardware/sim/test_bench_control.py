"""Smoke test of bench/control.py --quick: runs the real sim loop and prints one JSON line."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]


@pytest.mark.processes
def test_bench_quick_prints_json_metrics():
    r = subprocess.run(
        [sys.executable, str(REPO / "bench" / "control.py"), "--quick", "--skip-experts"],
        capture_output=True, text=True, timeout=240, cwd=REPO,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["sim_steps_per_s_render128"] > 0
    assert result["sim_steps_per_s_no_render"] > 0
    for key in ("franky_loop_missed_ticks", "franky_tracking_p95_mm", "trossen_loop_missed_ticks", "trossen_tracking_p95_mm"):
        assert key in result  # null until bench/control_drivers.py exists


def test_bench_expert_success_takes_the_descent_gate():
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import control
    finally:
        sys.path.remove(str(REPO / "bench"))
    success, steps = control.expert_success(quick=True, gate="loose")
    assert set(success) == set(steps) and "widowx250_cube_bowl/put_cube_in_bowl" in success
    assert all(0.0 <= v <= 1.0 for v in success.values())
    assert all(v > 5 for v in steps.values() if v == v)  # mean steps to success (nan: none succeeded)
    with pytest.raises(ValueError, match="descent gate"):
        control.expert_success(quick=True, gate="lose")
