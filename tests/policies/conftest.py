"""Fixtures of the policies tests; the point-mass task lives in pointmass.py beside this file."""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # importlib mode: make pointmass / ddp_worker importable

from pointmass import collect  # noqa: E402


@pytest.fixture(scope="session")
def pointmass_data():
    """150 noisy-expert + 250 uniform-random episodes (the random ones mostly fail)."""
    rng = np.random.default_rng(0)
    return collect(rng, 150, "expert", noise=0.5) + collect(rng, 250, "random")
