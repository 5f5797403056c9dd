"""Fixtures for runtime tests: loopback-only DDS on a random domain, in-process runtimes."""

from robot_stack.runtime.testing import dds_env, runtime  # noqa: F401  (pytest fixtures)
