"""A tiny real run for learner tests: scripted prior data at 32x32 in a real store."""

import pytest

from robot_stack.learner.builder import PolicySpec
from robot_stack.session.prior_data import PriorDataConfig, collect_prior_data
from robot_stack.store import EpisodeStore

TINY = dict(image_size=32, batch_size=16)


@pytest.fixture(scope="module")
def prior_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "episodes.zarr"
    store = EpisodeStore.create(path)
    collect_prior_data(store, "widowx250_cube_bowl", "sim", PriorDataConfig(demos_per_task=2, failures_per_task=1),
                       image_size=32, progress=False)
    return store


@pytest.fixture
def spec():
    return PolicySpec(**TINY)
