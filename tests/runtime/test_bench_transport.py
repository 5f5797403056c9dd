"""Smoke test: bench/transport.py --quick runs end to end and prints its JSON (no timing asserts)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.processes

BENCH = pathlib.Path(__file__).resolve().parents[2] / "bench" / "transport.py"


def test_transport_bench_quick(dds_env):
    out = subprocess.run([sys.executable, str(BENCH), "--quick"], env=dds_env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("image128_p50_ms", "image128_p99_ms", "image640_p50_ms", "image640_p99_ms"):
        assert isinstance(result[key], float) and 0 < result[key] < 5000, (key, result)
    assert result["image128_p50_ms"] <= result["image128_p99_ms"]
    assert result["image640_received"] > 0.5 * result["image640_sent"]
    assert result["jointstate_msgs_per_s"] > 0
    assert 0 <= result["jointstate_lost"] < result["jointstate_sent"]
