"""`robot-stack critic-report --run DIR` reads a session run directory: its store and its checkpoints
(which record the policy's task ids)."""

import json

from robot_stack.cli import main


def test_critic_report_takes_a_session_run_directory(prepared, capsys):
    assert main(["critic-report", "--run", str(prepared), "--samples", "32"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == 1 and out["transitions"]["prior"] > 0
    assert out["n/terminal"] + out["n/to_success"] + out["n/failed"] == 32
    # ids other than those the checkpoint was trained with would number the tasks wrongly
    assert main(["critic-report", "--run", str(prepared), "--task-ids", "take_cube_out_of_bowl,put_cube_in_bowl"]) == 2
    assert "trained with task ids" in capsys.readouterr().err


def test_critic_report_refuses_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert main(["critic-report", "--run", str(tmp_path)]) == 2
    assert "not a session run directory" in capsys.readouterr().err


def test_critic_report_rolls_out_in_the_sessions_room_only_for_a_session(prepared, capsys):
    assert main(["critic-report", "--run", str(prepared), "--samples", "16", "--eval-scene", "widowx250_cube_bowl",
                 "--eval-room", "session", "--eval-episodes", "1", "--eval-horizon", "2", "--best-of", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["eval/episodes"] == 1 and 0.0 <= out["eval/mean_success"] <= 1.0
    store, checkpoints = prepared / "episodes.zarr", prepared / "checkpoints"
    assert main(["critic-report", "--store", str(store), "--checkpoints", str(checkpoints),
                 "--eval-scene", "widowx250_cube_bowl", "--eval-room", "session"]) == 2
    assert "--eval-room session needs --run" in capsys.readouterr().err
