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
