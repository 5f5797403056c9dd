"""``robot-stack evaluate``: a session run's policy versions scored by the simulator's ground truth,
and the version picks it takes (``pick_versions``)."""

import json
import shutil

import pytest

from robot_stack.cli import main
from robot_stack.session.evaluate import curve_versions, evaluate_in_sim, pick_versions
from robot_stack.session.runner import load_session_config


def test_version_picks():
    assert pick_versions("latest", [1, 2, 3], 3) == [3]
    assert pick_versions("all", [1, 2, 3], 3) == [1, 2, 3]
    assert pick_versions("curve:3", list(range(1, 134)), 133) == [1, 67, 133]
    assert pick_versions("curve:1", [1, 2, 3], 3) == [3]
    assert pick_versions("curve:9", [1, 2], 2) == [1, 2]  # no more points than versions
    assert pick_versions("curve:2", [1, 2, 3, 9], 3) == [1, 3]  # a version past ``latest`` (rolled back) is not in the curve
    assert pick_versions(" 9, 1,9", [1, 2, 9], 9) == [1, 9]
    with pytest.raises(ValueError, match=r"not on disk; committed: 1-3, 5"):
        pick_versions("4", [1, 2, 3, 5], 5)
    for bad in ("curve:0", "curve:x", "newest", "1;2"):
        with pytest.raises(ValueError):
            pick_versions(bad, [1, 2], 2)
    with pytest.raises(ValueError, match="no policy versions"):
        pick_versions("latest", [], None)


def test_curve_versions_for_the_bench():
    """The benches' curve: versions before the final one, evenly spaced from the first."""
    assert curve_versions(list(range(1, 11)), 10, 4) == [1, 4, 6, 9]
    assert curve_versions([1, 2, 3], 3, 1) == [1]
    # more points than earlier versions: every one (the spacing once dropped 4 and 5 of these)
    assert curve_versions([1, 2, 3, 4, 5, 6], 6, 8) == [1, 2, 3, 4, 5]
    assert curve_versions([1], 1, 3) == []
    # several pre-trained seeds (v1-v3): the curve starts at the newest of them
    assert curve_versions(list(range(1, 11)), 10, 3, start=3) == [3, 6, 9]


def copy_run(prepared, dest):
    shutil.copytree(prepared, dest)
    checkpoints = dest / "checkpoints"
    shutil.copytree(checkpoints / "policy-000001", checkpoints / "policy-000002")  # as if the learner published v2
    (checkpoints / "latest").write_text("policy-000002\n")
    return dest


def test_evaluate_scores_the_picked_versions_and_the_bc_policy_from_the_same_starts(prepared, tmp_path, capsys):
    """Every picked version and the BC policy, each task in each room, from the same starts; with
    ``--by-start`` each rate also by kind of start, adding up to it."""
    from robot_stack.session.adapters import CheckpointWatcher
    from robot_stack.session.runner import Session

    run = copy_run(prepared, tmp_path / "run")
    out_file = tmp_path / "scores.json"
    assert main(["evaluate", str(run), "--versions", "all", "--bc", "--task", "both", "--room", "both",
                 "--episodes", "2", "--by-start", "--ensemble", "--out", str(out_file)]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert json.loads(out_file.read_text()) == result
    assert result["tasks"] == {"forward": "put_cube_in_bowl", "backward": "take_cube_out_of_bowl"}
    assert list(result["scores"]) == ["bc", "v1", "v2", "mean(v1,v2)"]
    for name, by_task in result["scores"].items():
        assert set(by_task) == {"forward", "backward"} and all(set(r) == {"session", "new"} for r in by_task.values())
        assert f"{name}: forward session" in captured.err
    # the same figure evaluate_in_sim gives with the session's settings, from the same starts
    cfg = load_session_config(run)
    session = Session(cfg, log=lambda s: None)
    v1 = CheckpointWatcher(session.paths.checkpoints, session.policy.task_ids).load(1)
    direct = evaluate_in_sim(v1, cfg.scene, "take_cube_out_of_bowl", 2, image_size=cfg.image_size,
                             cameras=tuple(cfg.cameras), horizon=cfg.episode.horizon, layout_seed=cfg.seed)
    assert result["scores"]["v1"]["backward"]["session"] == direct["success_rate"]
    by_start = result["by_start"]["v1"]["backward"]["session"]
    assert by_start == {k: {"episodes": r["episodes"], "success_rate": r["success_rate"]} for k, r in direct["by_start"].items()}
    for name, by_task in result["by_start"].items():
        for task, by_room in by_task.items():
            for room, kinds in by_room.items():
                assert sum(k["episodes"] for k in kinds.values()) == 2
                assert sum(k["episodes"] * k["success_rate"] for k in kinds.values()) / 2 == pytest.approx(
                    result["scores"][name][task][room])
    # v2 is a copy of v1: the same policy from the same starts scores the same, and so does their mean
    assert result["scores"]["v2"] == result["scores"]["v1"] == result["scores"]["mean(v1,v2)"]


def test_evaluate_scores_a_version_as_an_actor_acting_with_the_newest_versions_ran_it(prepared, tmp_path, capsys):
    """A session with ensemble_versions 2 has each version scored as the mean of it and the one
    before (v1 alone had nothing before it); ``--acting 1`` scores each alone."""
    run = copy_run(prepared, tmp_path / "run")
    config = json.loads((run / "session.json").read_text())
    (run / "session.json").write_text(json.dumps({**config, "ensemble_versions": 2}))

    def names(*flags):
        assert main(["evaluate", str(run), "--versions", "all", "--episodes", "1", *flags]) == 0
        return list(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["scores"])

    assert names() == ["v1", "mean(v1,v2)"]
    assert names("--acting", "1") == ["v1", "v2"]
    assert names("--acting", "3", "--versions", "2") == ["mean(v1,v2)"]  # only two versions are there
    assert main(["evaluate", str(run), "--acting", "-1"]) == 2
    assert "--acting >= 0" in capsys.readouterr().err


def test_evaluate_refuses_what_it_cannot_score(prepared, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "not a session run directory" in capsys.readouterr().err
    run = copy_run(prepared, tmp_path / "run")
    assert main(["evaluate", str(run), "--versions", "7"]) == 2
    assert "version(s) [7] not on disk; committed: 1-2" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--episodes", "0"]) == 2
    assert "--episodes must be >= 1" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--versions", "2", "--ensemble"]) == 2
    assert "--ensemble needs two or more versions; --versions '2' picks [2]" in capsys.readouterr().err

    shutil.rmtree(run / "bc_policy")
    assert main(["evaluate", str(run), "--bc", "--episodes", "1"]) == 2
    assert "has no BC policy" in capsys.readouterr().err

    config = json.loads((run / "session.json").read_text())
    real = {"scene": "", "arm": "franka", "camera_driver": "realsense", "pretrained": "ckpt", "reward.classifier": "clf",
            "forward_task": "wipe", "forward_instruction": "wipe the table",
            "backward_task": "spill", "backward_instruction": "spill the beans"}
    (run / "session.json").write_text(json.dumps({**config, **real}))
    assert main(["evaluate", str(run), "--episodes", "1"]) == 2
    assert "no ground truth" in capsys.readouterr().err


def test_a_corrupt_checkpoint_is_refused_not_scored(prepared, tmp_path, capsys):
    run = copy_run(prepared, tmp_path / "run")
    weights = run / "checkpoints" / "policy-000002" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])
    assert main(["evaluate", str(run), "--episodes", "1"]) == 2
    assert "policy-000002" in capsys.readouterr().err
    # the BC policy too: refused with its path, not scored as a missing policy
    bc_weights = next((run / "bc_policy").glob("policy-*")) / "model.safetensors"
    bc_weights.write_bytes(bc_weights.read_bytes()[:-64])
    assert main(["evaluate", str(run), "--versions", "1", "--bc", "--episodes", "1"]) == 2
    assert "bc_policy" in capsys.readouterr().err

