"""Package boundaries and the benchmark's short mode."""

import ast
import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
FORBIDDEN = ("rclpy", "cyclonedds", "hardware", "zarr", "robot_stack", "pickle")


def imported_modules(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_policies_imports_no_ros_hardware_zarr_or_pickle():
    files = sorted((REPO / "policies").rglob("*.py"))
    assert files
    for f in files:
        bad = imported_modules(f) & set(FORBIDDEN)
        assert not bad, f"{f.relative_to(REPO)} imports {bad}"
    replay = imported_modules(REPO / "policies" / "replay.py")
    assert "torch" not in replay, "policies/replay.py must stay numpy-only"


def test_replay_import_does_not_pull_torch():
    code = "import sys; from policies.replay import ReplayBuffer; import policies; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.processes
@pytest.mark.slow
def test_bench_learner_quick_prints_json():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, str(REPO / "bench" / "learner.py"), "--quick", "--device", "cpu", "--threads", "1"],
                         cwd=REPO, capture_output=True, text=True, timeout=240, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("updates_per_s", "device", "batch", "image_size", "flop_utilization", "cpu_preset_updates_per_s"):
        assert key in result
    assert result["image_size"] == 128 and result["device"] == "cpu"
    assert result["updates_per_s"] > 0 and 0 < result["flop_utilization"] < 1.5
    assert result["flops_per_update"] > 1e9 and result["replay_samples_per_s_b256_64px"] > 5000


def test_configs_work_with_the_typed_config_helpers():
    config = pytest.importorskip("robot_stack.config")
    from policies.config import LearnerConfig
    from policies.parl import PARLConfig
    from policies.replay import ReplayConfig

    for cls in (LearnerConfig, ReplayConfig, PARLConfig):
        flat = config.to_flat_dict(cls())
        helps = {**config.field_help(cls)}
        for name in flat:
            assert name in config.flat_fields(cls), name
        assert all(text for _, _, text in config.flat_fields(cls).values()), f"{cls.__name__} has a field without a # comment"
        assert helps
    cfg = config.from_mapping(LearnerConfig, {"network.encoder.channels": 16, "calql.cql_alpha": 2.0, "network.image_keys": ["front", "wrist"]})
    assert cfg.network.encoder.channels == 16 and cfg.network.image_keys == ("front", "wrist")
    with pytest.raises(ValueError, match="cql_alpha"):
        config.from_mapping(LearnerConfig, {"calql.cql_alpha": -1.0})
