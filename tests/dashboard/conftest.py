"""Fixtures of the dashboard tests: a small real episode store, a live state, a recording control sink."""

from __future__ import annotations

import pathlib
import shutil
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # dash_helpers, under --import-mode=importlib

from dash_helpers import TOKEN, make_store  # noqa: E402

from robot_stack.dashboard import DashboardConfig, LiveState, RecordingControlSink, create_app  # noqa: E402
from robot_stack.store import EpisodeStore  # noqa: E402


@pytest.fixture(scope="session")
def _store_template(tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("dashboard-store") / "episodes.zarr"
    make_store(path).close()
    return path


@pytest.fixture
def store(tmp_path, _store_template) -> EpisodeStore:
    """A fresh copy of a small real store (tests relabel it)."""
    path = tmp_path / "episodes.zarr"
    shutil.copytree(_store_template, path)
    return EpisodeStore.open(str(path))


@pytest.fixture
def live() -> LiveState:
    return LiveState()


@pytest.fixture
def sink() -> RecordingControlSink:
    return RecordingControlSink()


@pytest.fixture
def config() -> DashboardConfig:
    return DashboardConfig(token=TOKEN, allowed_hosts=("testserver", "127.0.0.1", "localhost"))


@pytest.fixture
def app(config, store, live, sink):
    return create_app(config, store=store, live=live, control=sink)


