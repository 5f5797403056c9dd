"""PolicySpec -> learner config: presets and the overrides a session passes on."""

import pytest

from robot_stack.learner.builder import PolicySpec, learner_config


def test_entropy_temperature_starts_low_on_the_cpu_preset_and_can_be_set():
    """A CPU session pre-trains ~1,000 updates: the paper's initial temperature 1.0 would still be
    ~0.7 by then and the sampled actions near-uniform noise, so the CPU preset starts at 0.01."""
    assert learner_config(PolicySpec(preset="cpu"), state_dim=14).calql.init_alpha == pytest.approx(0.01)
    assert learner_config(PolicySpec(preset="gpu"), state_dim=14).calql.init_alpha == pytest.approx(1.0)
    assert learner_config(PolicySpec(init_alpha=0.2), state_dim=14).calql.init_alpha == pytest.approx(0.2)


def test_the_cpu_learner_samples_near_its_mean_from_the_start():
    """With the low initial temperature the learner's temperature module really starts there."""
    from policies.calql import CalQLLearner

    cfg = learner_config(PolicySpec(preset="cpu", cameras=("front",), image_size=32), state_dim=14)
    learner = CalQLLearner(cfg)
    assert float(learner.temperature().detach()) == pytest.approx(0.01, rel=1e-4)


def test_the_replay_follows_the_policys_chunk_and_discount_and_refuses_a_different_one():
    """The replay's chunk length and discount come from the policy; a data-side value that
    disagrees would train the critic on transitions the policy never runs, so it is refused."""
    from policies.replay import ReplayConfig
    from robot_stack.learner.replay_loader import ReplayLoaderConfig
    from robot_stack.learner.builder import loader_config

    spec = PolicySpec(preset="cpu", action_chunk=3)
    cfg = learner_config(spec, state_dim=14)
    replay = loader_config(spec, cfg).replay
    assert (replay.action_chunk, replay.gamma) == (3, cfg.calql.gamma)
    assert loader_config(spec, cfg, ReplayLoaderConfig(replay=ReplayConfig(action_chunk=3))).replay.action_chunk == 3
    with pytest.raises(ValueError, match="set --policy.action_chunk instead"):
        loader_config(spec, cfg, ReplayLoaderConfig(replay=ReplayConfig(action_chunk=5)))
    with pytest.raises(ValueError, match="data.replay.gamma"):
        loader_config(spec, cfg, ReplayLoaderConfig(replay=ReplayConfig(gamma=0.5)))


def test_a_policy_spec_checks_its_chunk_fields_when_made():
    """A session builds its learner only after collecting prior data; a bad chunk setting must stop
    it at once, with the network's own message."""
    with pytest.raises(ValueError, match="network.action_chunk must be >= 1"):
        PolicySpec(action_chunk=0)
    with pytest.raises(ValueError, match=r"chunk_steps_run must be in \[0, action_chunk=3\]"):
        PolicySpec(action_chunk=3, chunk_steps_run=4)
    assert PolicySpec(action_chunk=3, chunk_steps_run=1).chunk_steps_run == 1
