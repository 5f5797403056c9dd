"""`robot-stack critic-report --run DIR` reads a session run directory: its store, its checkpoints and
its policy's task ids."""

import json

from robot_stack.cli import main


def test_critic_report_takes_a_session_run_directory(prepared, capsys):
    assert main(["critic-report", "--run", str(prepared), "--samples", "32"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == 1 and out["transitions"]["prior"] > 0
    assert out["n/terminal"] + out["n/to_success"] + out["n/failed"] == 32
    # --task-ids overrides the session's: a task it does not have finds no data
    assert main(["critic-report", "--run", str(prepared), "--task-ids", "open_drawer"]) == 2
    assert "open_drawer" in capsys.readouterr().err
