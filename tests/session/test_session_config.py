"""Session configuration as it reaches the node graph: the classifier's cameras, lockstep sim."""

import pytest

from robot_stack.session.config import RewardSetup, SessionConfig
from robot_stack.session.runner import Session


def node_params(cfg: SessionConfig) -> dict:
    return {n["name"]: n["params"] for n in Session(cfg, log=lambda s: None).graph()["nodes"]}


def reward_node_cameras(cfg: SessionConfig) -> list:
    return node_params(cfg)["reward"]["cameras"]


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


def test_sim_sessions_run_in_lockstep_and_real_arms_never(tmp_path):
    lockstep_nodes = ("controller", "camera_front", "camera_wrist", "actor")
    sim = node_params(SessionConfig(run_dir=str(tmp_path)))
    assert all(sim[n]["lockstep"] is True for n in lockstep_nodes)
    free = node_params(SessionConfig(run_dir=str(tmp_path), lockstep=False))
    assert not any(free[n]["lockstep"] for n in lockstep_nodes)
    real = node_params(SessionConfig(
        run_dir=str(tmp_path), scene="", arm="widowx250", camera_driver="opencv", forward_task="a",
        forward_instruction="do a", backward_task="b", backward_instruction="undo a", pretrained=str(tmp_path / "ckpt"),
        reward=RewardSetup(classifier=str(tmp_path / "clf"))))
    assert not any(real[n]["lockstep"] for n in lockstep_nodes)
