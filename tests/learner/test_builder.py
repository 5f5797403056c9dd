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
