"""Smoke test: bench/store.py --quick runs end to end and reports every metric."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[2] / "bench" / "store.py"


@pytest.mark.processes
@pytest.mark.slow
def test_bench_store_quick():
    r = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("write_frames_per_s", "commit_to_visible_p99_s", "bytes_per_frame", "sample_per_s", "sample_over_update_ratio"):
        assert key in result, key
    assert result["write_frames_per_s"] > 0 and result["sample_per_s"] > 0
    assert 0 < result["commit_to_visible_p99_s"] < 30
    assert 0 < result["bytes_per_frame"] < 2 * 2 * 128 * 128 * 3  # compressed below raw size
