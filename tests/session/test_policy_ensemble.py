"""``PolicyEnsemble``: several checkpoint policies acting as one (``robot-stack evaluate --ensemble``)."""

import numpy as np
import pytest
import torch

from policies.agent import Agent
from policies.config import LearnerConfig
from robot_stack.session.adapters import CheckpointPolicy, PolicyEnsemble

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
