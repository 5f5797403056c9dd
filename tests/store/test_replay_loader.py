"""Store -> in-memory replay (policies.replay): source routing, eval filter, ratios, relabelled
rewards, tail mode and damaged episodes."""

from __future__ import annotations

import time

import numpy as np
import pytest

from policies.replay import ReplayConfig
from robot_stack.learner.replay_loader import ReplayLoader, ReplayLoaderConfig
from robot_stack.store import EpisodeMeta, EpisodeStore
from robot_stack.store.synthetic import synthetic_episode

CAMS = {"front": (32, 32)}
S = 5


def commit(w, n, seed=0, span=None, success=True, **meta):
    ep = w.begin_episode(EpisodeMeta(**{"task_id": "cube", **meta}))
    for s in synthetic_episode(n, CAMS, S, seed=seed, intervention_span=span, success=success):
        ep.add_step(**s)
    return ep.commit(outcome="success" if success else "failure")


@pytest.fixture
def store(tmp_path):
    store = EpisodeStore.create(tmp_path / "s.zarr")
    prior = store.writer("prior-1", {}, CAMS, S)
    commit(prior, 10, seed=1, data_source="prior")
    commit(prior, 12, seed=2, data_source="prior", phase="backward")
    prior.close()
    w = store.writer("widowx-1", {}, CAMS, S)
    commit(w, 8, seed=3)                                   # online forward
    commit(w, 9, seed=4, span=(2, 5), phase="backward")    # online, 3 intervention steps
    commit(w, 7, seed=5, eval=True)                        # eval: skipped by default
    commit(w, 6, seed=6, data_source="demo")               # teleoperated demo
    w.close()
    return store


def test_routing_eval_filter_and_ratios(store):
    loader = ReplayLoader(store, ReplayLoaderConfig(replay=ReplayConfig(capacity=1000)))
    assert loader.load_new() == 5
    # terminal episodes: every step is a transition; the intervention buffer gets the demo (6) and the segment (3).
    assert loader.sizes() == {"prior": 22, "online": 17, "intervention": 9}
    assert loader.stats["loaded"] == {"prior": 2, "online": 2, "intervention": 1}
    batch = loader.replay().sample(256, np.random.default_rng(0))
    assert batch["image"].dtype == np.uint8 and batch["image"].shape == (256, 32, 32, 3)
    assert np.bincount(batch["source"], minlength=3).tolist() == [128, 64, 64]  # prior, online, intervention
    assert set(np.unique(batch["task"]).tolist()) == {0, 1}
    assert loader.load_new() == 0  # nothing new
    with_eval = ReplayLoader(store, ReplayLoaderConfig(include_eval=True))
    assert with_eval.load_new() == 6 and with_eval.sizes()["online"] == 24


def test_without_interventions_prior_data_keeps_two_thirds(tmp_path):
    """The mix every session figure was measured with: the intervention share spread over prior and online alike."""
    store = EpisodeStore.create(tmp_path / "s.zarr")
    prior = store.writer("prior-1", {}, CAMS, S)
    commit(prior, 10, seed=1, data_source="prior")
    prior.close()
    w = store.writer("widowx-1", {}, CAMS, S)
    commit(w, 8, seed=3)
    w.close()
    loader = ReplayLoader(store)
    assert loader.load_new() == 2 and loader.sizes()["intervention"] == 0
    assert loader.replay().counts(258) == {"prior": 172, "online": 86}


def test_human_relabel_rewrites_reward_at_load(store):
    store.relabel("widowx-1:000000", "failure", by="alice")
    loader = ReplayLoader(store)
    info = store.episode("widowx-1:000000")
    arrays = loader.to_arrays(info, store.read_episode(info).data)
    assert arrays["reward"].sum() == 0 and not arrays["terminal"].any() and arrays["truncated"][-1]
    assert store.read_episode(info).data["reward"][-1] == 1.0  # the store itself is unchanged
    images = loader.to_arrays(info, store.read_episode(info).data)["image"]["front"]
    assert images.dtype == np.uint8


def test_resize_and_damaged_episode_skipped(store, tmp_path):
    chunk = tmp_path / "s.zarr" / "prior-1" / "data" / "state" / "c.0.0"
    chunk.write_bytes(b"not zstd")
    loader = ReplayLoader(store, ReplayLoaderConfig(image_size=16))
    assert loader.load_new() == 3  # both prior episodes share the damaged chunk
    assert loader.stats["skipped"] == 2 and "prior-1:000000" in loader.stats["errors"][0]
    assert loader.replay().sample(8, np.random.default_rng(0))["image"].shape == (8, 16, 16, 3)


def test_tail_mode_loads_new_commits(store):
    loader = ReplayLoader(store, ReplayLoaderConfig(poll_s=0.02))
    loader.start()
    try:
        deadline = time.monotonic() + 20
        while sum(loader.stats["loaded"].values()) < 5 and time.monotonic() < deadline:
            loader.drain()
            time.sleep(0.02)
        assert sum(loader.stats["loaded"].values()) == 5
        w = store.writer("widowx-2", {}, CAMS, S)
        commit(w, 11, seed=9)
        w.close()
        while loader.stats["loaded"]["online"] < 3 and time.monotonic() < deadline:
            loader.drain()
            time.sleep(0.02)
        assert loader.stats["loaded"]["online"] == 3 and loader.sizes()["online"] == 28
    finally:
        loader.stop()
