"""`robot-stack store ...` end to end through the real CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from robot_stack.cli import main
from robot_stack.store import EpisodeMeta, EpisodeStore
from robot_stack.store.synthetic import synthetic_episode

CAMS = {"front": (16, 16)}


@pytest.fixture
def url(tmp_path):
    store = EpisodeStore.create(tmp_path / "s.zarr")
    w = store.writer("widowx-1", {}, CAMS, 4)
    for k in range(3):
        ep = w.begin_episode(EpisodeMeta(task_id="t", phase=["forward", "backward"][k % 2]))
        for s in synthetic_episode(6, CAMS, 4, seed=k, intervention_span=(1, 3) if k == 1 else None):
            ep.add_step(**s)
        ep.commit(outcome="success")
    w.close()
    return store.url


def test_ls_show_relabel_verify(url, capsys, tmp_path):
    assert main(["store", "ls", url, "--phase", "backward", "--json"]) == 0
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert [r["episode_id"] for r in rows] == ["widowx-1:000001"]
    assert main(["store", "relabel", url, "widowx-1:000001", "--outcome", "failure", "--by", "alice"]) == 0
    assert main(["store", "relabel", url, "widowx-1:000001", "--segment", "0", "--reason", "about to collide", "--by", "bob"]) == 0
    capsys.readouterr()
    assert main(["store", "show", url, "widowx-1:000001", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["outcome"] == "failure" and doc["intervention_segments"][0]["reason"] == "about to collide"
    assert [l["by"] for l in doc["labels"]] == ["actor:widowx-1", "alice", "bob"]
    assert doc["arrays"]["image_front"] == [6, 16, 16, 3]
    assert main(["store", "ls", url]) == 0
    assert "widowx-1:000002" in capsys.readouterr().out
    assert main(["store", "verify", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    # Damage one chunk: verify exits 1 and names the episode and array.
    chunk = tmp_path / "s.zarr" / "widowx-1" / "data" / "action" / "c.0.0"
    chunk.write_bytes(b"garbage")
    assert main(["store", "verify", url]) == 1
    out = capsys.readouterr().out
    assert "BAD widowx-1:000000" in out and "data/action" in out


def test_user_errors_are_clear(url, capsys, tmp_path):
    assert main(["store", "show", url, "widowx-1:000009"]) == 2
    assert "not committed" in capsys.readouterr().err
    assert main(["store", "relabel", url, "widowx-1:000000", "--by", "x"]) == 2
    assert "exactly one of --outcome" in capsys.readouterr().err
    assert main(["store", "ls", str(tmp_path / "missing.zarr")]) == 2
    assert "no episode store" in capsys.readouterr().err


def test_export_import_and_help(url, tmp_path, capsys):
    out = tmp_path / "x.hdf5"
    assert main(["store", "export", url, str(out), "--phase", "forward"]) == 0
    dst = str(tmp_path / "d.zarr")
    assert main(["store", "import", dst, str(out), "--robot", "prior-1", "--data-source", "prior"]) == 0
    assert [i.episode_id for i in EpisodeStore.open(dst).episodes()] == ["prior-1:000000", "prior-1:000001"]
    r = subprocess.run([sys.executable, "-m", "robot_stack.cli", "store", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and all(a in r.stdout for a in ("ls", "show", "relabel", "import", "export", "verify"))
