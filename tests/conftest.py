"""Shared test fixtures. Package-specific fixtures live in tests/<package>/conftest.py."""

from __future__ import annotations

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"

# Headless rendering: EGL (Mesa) unless the caller chose otherwise.
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
# Nothing in the suite may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def artifacts_dir(request) -> pathlib.Path:
    """A per-test folder under test-artifacts/ for screenshots, plots and logs kept after the run."""
    path = ARTIFACTS / request.node.name.replace("/", "_").replace("[", "_").replace("]", "")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def dds_env(monkeypatch) -> dict[str, str]:
    """Pin DDS to loopback and a random ROS_DOMAIN_ID for this test (this process and its children).

    Returns the full environment to give child processes (``subprocess.Popen(env=dds_env)``).
    """
    from robot_stack.runtime.dds import isolated_env

    for k, v in isolated_env().items():
        monkeypatch.setenv(k, v)
    return dict(os.environ)


@pytest.fixture
def runtime(dds_env):
    """A Cyclone-backend Runtime in this process on the isolated domain; shut down after the test."""
    from robot_stack.runtime import Runtime

    rt = Runtime(backend="cyclonedds")
    yield rt
    rt.shutdown()
