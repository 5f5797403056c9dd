"""`robot-stack node ...` as a real process: params, lifecycle, exit codes, error messages."""

from __future__ import annotations

import subprocess

import pytest

from robot_stack.runtime import Node, msgs
from robot_stack.runtime.node_main import NodeLookupError, load_node_class
from robot_stack.runtime.process import node_command, start_node, stop_process

pytestmark = pytest.mark.processes


def test_params_from_file_and_command_line_reach_the_node(runtime, dds_env, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(
        "/**:\n  ros__parameters:\n    message: from-wildcard\n    rate_hz: 5.0\n"
        "chatty:\n  ros__parameters:\n    message: from-file\n"
    )
    # -p after --params-file wins for rate_hz; the node is renamed, so 'chatty' matches
    talker = start_node("talker", env=dds_env, name="chatty", namespace="/r1", params_files=[params],
                        params={"rate_hz": 50.0, "topic": "words"}, stderr=subprocess.PIPE)
    # started concurrently: the failure cases (each exits on its own)
    crash = start_node("talker", env=dds_env, params={"crash_after": 2, "rate_hz": 50.0},
                       stderr=subprocess.PIPE)
    bad_type = start_node("talker", env=dds_env, params={"rate_hz": "fast"}, stderr=subprocess.PIPE)
    unknown = start_node("talker", env=dds_env, params={"rat_hz": 1}, stderr=subprocess.PIPE)
    counted = start_node("talker", env=dds_env, params={"count": 3, "rate_hz": 50.0}, stderr=subprocess.PIPE)
    try:
        probe = runtime.create_node(Node, name="probe")
        got = []
        probe.create_subscription(msgs.String, "/r1/words", got.append)
        assert runtime.spin_until(lambda: len(got) >= 5, 20), got
        assert all(m.data.startswith("from-file ") for m in got), got[:3]
        numbers = [int(m.data.split()[1]) for m in got]
        assert numbers == sorted(numbers)
    finally:
        rc = stop_process(talker)  # SIGINT: clean shutdown
    err = talker.stderr.read().decode()
    assert rc == 0, err
    assert "[r1.chatty]: started" in err

    assert crash.wait(20) == 1
    err = crash.stderr.read().decode()
    assert "node '/talker' crashed: RuntimeError: crash_after=2 reached" in err, err

    assert bad_type.wait(20) == 2
    err = bad_type.stderr.read().decode()
    assert "node '/talker': parameter 'rate_hz': expected a number, got 'fast'" in err, err

    assert unknown.wait(20) == 2
    err = unknown.stderr.read().decode()
    assert "node '/talker': unknown parameter(s) ['rat_hz']" in err, err

    assert counted.wait(20) == 0, counted.stderr.read().decode()


def test_sigterm_stops_cleanly(dds_env):
    talker = start_node("talker", env=dds_env, stderr=subprocess.PIPE)
    try:
        line = talker.stderr.readline().decode()
        assert "started" in line, line
        talker.terminate()
        assert talker.wait(10) == 0
    finally:
        stop_process(talker)


def test_unknown_node_and_bad_command_line(dds_env):
    out = subprocess.run(node_command("no_such_node"), env=dds_env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "unknown node 'no_such_node'" in out.stderr
    cmd = node_command("talker") + ["-p", "x:=1"]
    out = subprocess.run(cmd, env=dds_env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "--ros-args" in out.stderr


def test_load_node_class():
    from robot_stack.nodes.demo import Talker

    assert load_node_class("talker") is Talker
    assert load_node_class("robot_stack.nodes.demo:Echo").name == "echo"
    with pytest.raises(NodeLookupError, match="not a robot_stack.runtime.Node"):
        load_node_class("robot_stack.nodes.demo:TalkerConfig")
    with pytest.raises(NodeLookupError, match="cannot import"):
        load_node_class("robot_stack.nodes.nope:X")
