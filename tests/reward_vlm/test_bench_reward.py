"""Smoke test: bench/reward.py --quick runs the real sim -> train -> calibrate -> held-out eval path."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.processes
def test_bench_reward_quick(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "reward.py"), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=280, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("accuracy", "precision", "recall", "fpr", "fnr"):
        assert result[key] is None or 0.0 <= result[key] <= 1.0, (key, result[key])
    assert result["accuracy"] > 0.5
    assert result["frames_per_s"] > 0 and result["model"].startswith("cnn") and result["vlm_frames_per_s_gpu"] is None
    assert result["n_eval"] > 0 and (tmp_path / "reliability.png").is_file()
    assert (pathlib.Path(result["artifact"]) / "classifier.json").is_file()
