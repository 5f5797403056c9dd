"""Which cameras the session's success classifier sees, and the checks on them."""

import pytest

from robot_stack.session.config import RewardSetup, SessionConfig
from robot_stack.session.runner import Session


def reward_node_cameras(cfg: SessionConfig) -> list:
    return next(n for n in Session(cfg, log=lambda s: None).graph()["nodes"] if n["name"] == "reward")["params"]["cameras"]


def test_a_trained_classifier_sees_every_session_camera_and_a_given_one_the_first(tmp_path):
    assert reward_node_cameras(SessionConfig(run_dir=str(tmp_path))) == ["front", "wrist"]
    given = SessionConfig(run_dir=str(tmp_path), reward=RewardSetup(classifier=str(tmp_path / "clf")))
    assert reward_node_cameras(given) == ["front"]
    chosen = SessionConfig(run_dir=str(tmp_path), reward=RewardSetup(cameras=("wrist",)))
    assert reward_node_cameras(chosen) == ["wrist"]


def test_reward_cameras_must_be_session_cameras(tmp_path):
    with pytest.raises(ValueError, match=r"reward.cameras \['side'\]"):
        SessionConfig(run_dir=str(tmp_path), reward=RewardSetup(cameras=("front", "side")))
    with pytest.raises(ValueError, match="sim_snapshots"):
        RewardSetup(sim_snapshots=-1)
