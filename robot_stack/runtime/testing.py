"""pytest fixtures for any test that talks DDS (import them into your tests/<area>/conftest.py)::

    from robot_stack.runtime.testing import dds_env, runtime  # noqa: F401  (pytest fixtures)

- ``dds_env``: this test (and the children it starts with ``env=dds_env``) uses loopback-only DDS
  on a random ``ROS_DOMAIN_ID``; returns the full environment for child processes.
- ``runtime``: an in-process Cyclone :class:`~robot_stack.runtime.Runtime` on that domain, shut
  down after the test (create probe nodes on it: ``runtime.create_node(Node, name="probe")``).
"""

from __future__ import annotations

import os

import pytest

from robot_stack.runtime.dds import isolated_env


@pytest.fixture
def dds_env(monkeypatch) -> dict[str, str]:
    """Loopback-only DDS on a random domain for this test; returns the env for child processes."""
    for k, v in isolated_env().items():
        monkeypatch.setenv(k, v)
    return dict(os.environ)


@pytest.fixture
def runtime(dds_env):
    """A Cyclone-backend Runtime in this process on the isolated domain."""
    from robot_stack.runtime import Runtime

    rt = Runtime(backend="cyclonedds")
    yield rt
    rt.shutdown()
