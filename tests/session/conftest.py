"""Fixtures of the session tests: one prepared run directory (prior data, classifier, policy v1), and
a recorder of the plans an agent makes."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from robot_stack.dashboard.config import DashboardConfig
from robot_stack.session.config import RewardSetup, SessionConfig
from robot_stack.session.prior_data import PriorDataConfig
from robot_stack.session.runner import Session

TINY = dict(
    image_size=32, prior=PriorDataConfig(demos_per_task=2, failures_per_task=1), reward=RewardSetup(epochs=2, sim_snapshots=20),
    pretrain_updates=3, utd_ratio=1.0, publish_every=8, dashboard=DashboardConfig(port=0, token="e2e-operator-token-0001"),
)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    """A run directory with prior data, classifier and policy v1 made once for the test run; tests copy it before changing anything."""
    from robot_stack.learner.builder import PolicySpec
    from robot_stack.session.actor_loop import ActorConfig
    from robot_stack.session.scheduler import SchedulerConfig

    root = tmp_path_factory.mktemp("prepared") / "run"
    # Cal-QL starts from a BC policy with its image encoder kept fixed (the CPU-budget setting).
    cfg = SessionConfig(run_dir=str(root), policy=PolicySpec(batch_size=16, freeze_image_encoder=True), bc_init_updates=2,
                        episode=ActorConfig(horizon=12, control_hz=10.0),
                        # the tiny classifier cannot be calibrated (no held-out success), so it never
                        # says "done": keep the stuck detector's alert (tested on its own) out of the way
                        schedule=SchedulerConfig(eval_every=4, switch_after_failures=1, stuck_after=1000), **TINY)
    Session(cfg, log=lambda s: None).prepare()
    return root


class Plan(NamedTuple):
    """One call of ``agent.act``: the proprio state it planned from (a copy), whether it was
    deterministic, and what it returned ((action_dim,) or, for chunks, (h, action_dim))."""
    state: Any
    deterministic: bool
    actions: Any


@pytest.fixture
def record_plans():
    """``record_plans(agent)`` wraps ``agent.act`` and returns the list its calls are appended to,
    as ``Plan``s, so a test can check when the policy planned and from what."""
    def wrap(agent) -> list[Plan]:
        plans: list[Plan] = []
        act = agent.act

        def planning(o, deterministic=False):
            plans.append(Plan(o["state"].copy(), deterministic, act(o, deterministic)))
            return plans[-1].actions

        agent.act = planning
        return plans
    return wrap
