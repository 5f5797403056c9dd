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



# Loopback-only DDS on a random domain (dds_env) and an in-process runtime (runtime), for any test.
from robot_stack.runtime.testing import dds_env, runtime  # noqa: E402,F401
