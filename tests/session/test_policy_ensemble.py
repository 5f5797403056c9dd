"""``PolicyEnsemble``: several checkpoint policies acting as one (``robot-stack evaluate --ensemble``),
and ``CheckpointWatcher(ensemble=K)``: what an actor acting with the newest K versions runs."""

import numpy as np
import pytest
import torch

from policies.agent import Agent
from policies.bc import BCLearner
from policies.checkpoint import CheckpointManager
from policies.config import LearnerConfig
from robot_stack.session.adapters import CheckpointPolicy, CheckpointWatcher, PolicyEnsemble

TASKS = ["put_cube_in_bowl", "take_cube_out_of_bowl"]


def member(seed: int, version: int, **overrides) -> CheckpointPolicy:
    torch.manual_seed(seed)
    agent = Agent.build(LearnerConfig.state(3, 7, **overrides))
    agent.version = version
    return CheckpointPolicy(agent, TASKS)


def test_the_ensemble_acts_with_the_mean_of_its_members_mean_actions():
    members = [member(0, 6), member(1, 8), member(2, 7)]
    ensemble = PolicyEnsemble(members, rng=np.random.default_rng(0))
    assert ensemble.version == 8  # the newest member's: what the actor stamps
    state = np.array([0.1, -0.2, 0.3], np.float32)
    alone = [m.act({}, state, TASKS[0], True) for m in members]
    assert not np.allclose(alone[0], alone[1])  # different networks: the mean is not any one of them
    action = ensemble.act({}, state, TASKS[0], True)
    assert action.shape == (7,) and action.dtype == np.float32
    np.testing.assert_allclose(action, np.mean(alone, axis=0), rtol=1e-6)


def test_a_sampled_action_comes_from_one_member_drawn_at_each_reset():
    members = [member(0, 1), member(1, 2)]
    ensemble = PolicyEnsemble(members, rng=np.random.default_rng(3))
    state = np.zeros(3, np.float32)
    drawn = set()
    for _ in range(12):
        ensemble.reset()
        torch.manual_seed(5)
        sample = ensemble.act({}, state, TASKS[1], False)
        # the same noise through each member: the sample is exactly one member's
        matches = []
        for i, m in enumerate(members):
            torch.manual_seed(5)
            matches.append(np.allclose(sample, m.act({}, state, TASKS[1], False)))
        assert sum(matches) == 1
        drawn.add(matches.index(True))
    assert drawn == {0, 1}


def test_an_ensemble_refuses_no_members_and_members_that_see_other_frames():
    with pytest.raises(ValueError, match="at least one policy"):
        PolicyEnsemble([])
    with pytest.raises(ValueError, match="different camera frames"):
        PolicyEnsemble([member(0, 1), member(1, 2, **{"network.encoder.image_size": 32})])


def publish(manager: CheckpointManager, seed: int) -> int:
    """A freshly initialised state BC network saved as the next version, as the learner publishes."""
    torch.manual_seed(seed)
    manager.save(BCLearner(LearnerConfig.state(3, 7)), extra={"task_ids": TASKS})
    return manager.latest_version()


def test_the_watcher_offers_the_mean_of_the_newest_versions_loading_each_once(tmp_path, monkeypatch):
    manager = CheckpointManager(tmp_path / "ckpt", keep=0)
    publish(manager, 0)
    watcher = CheckpointWatcher(tmp_path / "ckpt", TASKS, ensemble=3, rng=np.random.default_rng(0))
    loads = []
    real_load = watcher.load
    monkeypatch.setattr(watcher, "load", lambda v: loads.append(v) or real_load(v))
    first = watcher.load_latest()
    assert [m.version for m in first.members] == [1] and first.version == 1  # fewer versions than K: those there are
    assert watcher.load_latest() is None  # nothing newer: the actor keeps what it runs
    for seed in (1, 2, 3):
        publish(manager, seed)
    newest = watcher.load_latest()
    assert [m.version for m in newest.members] == [2, 3, 4] and newest.version == 4
    assert sorted(loads) == [1, 2, 3, 4]  # every version loaded once, however many ensembles it joins
    publish(manager, 4)
    assert [m.version for m in watcher.load_latest().members] == [3, 4, 5]
    assert sorted(loads) == [1, 2, 3, 4, 5]
    # an earlier version is what the actor ran while it was the newest: the bench scores curves so
    assert [m.version for m in watcher.load_acting(2).members] == [1, 2]
    assert watcher.acting_versions(2) == [1, 2] and watcher.acting_versions(5) == [3, 4, 5]
    state = np.array([0.1, -0.2, 0.3], np.float32)
    acting = watcher.load_acting(5)
    alone = [m.act({}, state, TASKS[0], True) for m in acting.members]
    np.testing.assert_allclose(acting.act({}, state, TASKS[0], True), np.mean(alone, axis=0), rtol=1e-6)
    # ensemble 1 is the plain policy, as before
    single = CheckpointWatcher(tmp_path / "ckpt", TASKS).load_newest()
    assert isinstance(single, CheckpointPolicy) and single.version == 5


def test_a_corrupt_older_version_is_left_out_and_a_corrupt_newest_keeps_the_policy(tmp_path, caplog):
    manager = CheckpointManager(tmp_path / "ckpt", keep=0)
    for seed in range(3):
        publish(manager, seed)
    (manager.path(2) / "model.safetensors").write_bytes(b"not a checkpoint")
    watcher = CheckpointWatcher(tmp_path / "ckpt", TASKS, ensemble=3)
    ensemble = watcher.load_latest()
    assert [m.version for m in ensemble.members] == [1, 3]
    assert "v2 left out" in caplog.text
    publish(manager, 3)
    (manager.path(4) / "model.safetensors").write_bytes(b"truncated")
    assert watcher.load_latest() is None  # the actor keeps acting with v1 + v3
    assert "checkpoint 4 not loaded" in caplog.text
    with pytest.raises(ValueError, match="ensemble must be >= 1"):
        CheckpointWatcher(tmp_path / "ckpt", TASKS, ensemble=0)
