"""Smoke test of bench/dashboard.py --quick (it drives chromium)."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.browser
@pytest.mark.processes
def test_bench_quick_prints_json_metrics():
    if not shutil.which("/usr/bin/chromium"):
        pytest.skip("Debian chromium is not installed")
    r = subprocess.run([sys.executable, str(REPO / "bench" / "dashboard.py"), "--quick", "--seconds", "1.5",
                        "--loads", "1"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["frames_drawn"] > 0 and result["live_frame_latency_p95_ms"] > 0
    assert 0 < result["page_load_ms"] < 30000
