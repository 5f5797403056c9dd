"""The launcher: real node processes, prefixed output, required/respawn supervision, clean stops."""

from __future__ import annotations

import io
import os
import pathlib
import re
import signal
import subprocess
import sys

import pytest
import yaml

from robot_stack.launcher import GraphError, Launcher, load_graph
from robot_stack.runtime.process import wait_for

pytestmark = pytest.mark.processes


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _zombie(pid: int) -> bool:
    """Exited but not reaped (an orphan's new parent may be a container init that never reaps)."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def test_required_node_death_stops_all(dds_env):
    graph = {"nodes": [
        {"name": "a", "node": "talker", "params": {"rate_hz": 5}},
        {"name": "b", "node": "talker", "params": {"rate_hz": 5}},
        {"name": "crasher", "node": "talker", "params": {"crash_after": 3, "rate_hz": 20}, "required": True},
    ]}
    out = io.StringIO()  # the launcher serialises its writes with a lock
    launcher = Launcher(graph, env=dds_env, output=out).start()
    try:
        assert launcher.wait(timeout=60) == 1
    finally:
        codes = launcher.stop()
    assert launcher.failure == "required node 'crasher' exited with code 1"
    assert codes == {"a": 0, "b": 0, "crasher": 1}, out.getvalue()
    text = out.getvalue()
    assert "[a] [INFO]" in text and "[b] [INFO]" in text
    assert "[crasher] robot-stack node: node '/crasher' crashed" in text
    assert all(_gone(launcher.pid(n)) for n in codes)


def test_cli_ctrl_c_stops_all_children_and_escalates(dds_env, tmp_path):
    graph = tmp_path / "graph.yaml"
    graph.write_text(yaml.safe_dump({"nodes": [
        {"name": "talk", "node": "talker", "params": {"rate_hz": 5}},
        {"name": "stubborn", "node": "stubborn"},
    ]}))
    proc = subprocess.Popen([sys.executable, "-m", "robot_stack.cli", "up", str(graph), "--sigint-timeout", "1"],
                            env=dds_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, pids = [], {}
    try:
        for line in proc.stdout:
            lines.append(line)
            m = re.match(r"\[launcher\] started node '(\w+)' \(\w+\) pid (\d+)", line)
            if m:
                pids[m.group(1)] = int(m.group(2))
            text = "".join(lines)
            if "[stubborn] " in text and "ignoring SIGINT" in text and "[talk] [INFO]" in text:
                break
        assert set(pids) == {"talk", "stubborn"}, lines
        proc.send_signal(signal.SIGINT)
        rest = proc.stdout.read()
        assert proc.wait(30) == 0, "".join(lines) + rest
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in pids.values():  # never leave a stubborn child behind if the test fails
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
    assert "stubborn still running: sending SIGTERM" in rest
    assert all(_gone(pid) for pid in pids.values())


def test_nodes_do_not_outlive_a_killed_launcher(dds_env, tmp_path):
    """SIGKILL gives the launcher no chance to stop its children: the kernel's parent-death signal does."""
    graph = tmp_path / "graph.yaml"
    graph.write_text(yaml.safe_dump({"nodes": [{"name": "talk", "node": "talker", "params": {"rate_hz": 5}}]}))
    proc = subprocess.Popen([sys.executable, "-m", "robot_stack.cli", "up", str(graph)],
                            env=dds_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pid = None
    try:
        for line in proc.stdout:
            m = re.match(r"\[launcher\] started node 'talk' \(talker\) pid (\d+)", line)
            if m:
                pid = int(m.group(1))
            if pid and "[talk] [INFO]" in line:
                break
        assert pid is not None and not _gone(pid)
        proc.kill()
        proc.wait(10)
        assert wait_for(lambda: _gone(pid) or _zombie(pid), timeout_s=10), "the node outlived its launcher"
    finally:
        if proc.poll() is None:
            proc.kill()
        if pid and not _gone(pid):
            os.kill(pid, signal.SIGKILL)


def test_respawn_kill_and_restart(dds_env, tmp_path):
    graph = {"nodes": [
        {"name": "steady", "node": "talker", "params": {"rate_hz": 5}},
        {"name": "flaky", "node": "talker", "params": {"crash_after": 2, "rate_hz": 20},
         "respawn": 2, "respawn_delay": 0.1},
    ]}
    out = io.StringIO()  # the launcher serialises its writes with a lock
    with Launcher(graph, env=dds_env, output=out, log_dir=tmp_path / "logs") as launcher:
        flaky = launcher.children["flaky"]
        # flaky crashes, is respawned twice, then stays down (not required: the graph keeps running)
        assert wait_for(lambda: launcher.check() is None and flaky.restarts == 2
                        and launcher.poll()["flaky"] == 1, 60), out.getvalue()
        assert launcher.poll()["steady"] is None
        old = launcher.pid("steady")
        launcher.kill("steady", signal.SIGKILL)
        assert wait_for(lambda: launcher.poll()["steady"] == -signal.SIGKILL, 10)
        assert launcher.check() is None  # not required: reported, nothing else stopped
        launcher.restart("steady")
        assert launcher.pid("steady") != old and launcher.poll()["steady"] is None
        assert wait_for(lambda: "[steady] [INFO]" in out.getvalue().split(f"pid {launcher.pid('steady')}")[-1], 20)
    assert launcher.poll()["steady"] == 0
    assert out.getvalue().count("node 'flaky' exited with code 1; respawning") == 2
    assert "started (cyclonedds backend)" in (tmp_path / "logs" / "flaky.log").read_text()


def test_graph_validation(tmp_path):
    with pytest.raises(GraphError, match="non-empty 'nodes'"):
        load_graph({"nodes": []})
    with pytest.raises(GraphError, match=r"node 'x': unknown key\(s\) \['parms'\]"):
        load_graph({"nodes": [{"name": "x", "node": "talker", "parms": {}}]})
    with pytest.raises(GraphError, match="node 'x': 'node' \\(a string\\) is required"):
        load_graph({"nodes": [{"name": "x"}]})
    with pytest.raises(GraphError, match="invalid node name 'reward-vlm'"):
        load_graph({"nodes": [{"name": "reward-vlm", "node": "talker"}]})
    with pytest.raises(GraphError, match="duplicate"):
        load_graph({"nodes": [{"name": "x", "node": "t"}, {"name": "x", "node": "t"}]})
    (tmp_path / "p.yaml").write_text("/**: {ros__parameters: {}}\n")
    g = tmp_path / "g.yaml"
    g.write_text("env: {A: 1}\nnodes:\n  - {name: x, node: talker, params_file: p.yaml, required: true}\n")
    demo, _ = load_graph(pathlib.Path(__file__).resolve().parents[2] / "launch" / "demo_graph.yaml")
    assert [d.node for d in demo] == ["talker", "echo"]
    specs, env = load_graph(g)
    assert env == {"A": "1"} and specs[0].params_files == [str(tmp_path / "p.yaml")] and specs[0].required
    assert specs[0].command()[-2:] == ["--params-file", str(tmp_path / "p.yaml")]


def test_ros2_launch_file_reads_the_same_graph(tmp_path):
    """launch/graph.launch.py cannot run without ROS 2: parse it, check it builds launch_ros Nodes
    through load_graph (same keys), and check the Node kwargs it derives from a graph."""
    import ast
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[2] / "launch" / "graph.launch.py"
    tree = ast.parse(path.read_text())
    names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert {"generate_launch_description", "node_kwargs"} <= names
    imported = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert ("launch_ros.actions", "Node") in imported and ("robot_stack.launcher", "load_graph") in imported

    spec = importlib.util.spec_from_file_location("graph_launch", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # importing must not need ROS 2
    (tmp_path / "cam.yaml").write_text("/**: {ros__parameters: {fps: 5}}\n")
    graph = tmp_path / "graph.yaml"
    graph.write_text(yaml.safe_dump({"env": {"A": "1"}, "nodes": [
        {"name": "cam", "node": "talker", "namespace": "/r1", "params": {"rate_hz": 2.0},
         "params_file": "cam.yaml", "remaps": {"chatter": "/x"}, "env": {"B": "2"}, "required": True,
         "respawn": 3},
    ]}))
    (kw,) = module.node_kwargs(str(graph))
    assert kw == {
        "executable": "robot-stack", "arguments": ["node", "talker"], "name": "cam", "namespace": "/r1",
        "parameters": [str(tmp_path / "cam.yaml"), {"rate_hz": 2.0}], "remappings": [("chatter", "/x")],
        "additional_env": {"A": "1", "B": "2"}, "respawn": True, "respawn_delay": 1.0, "output": "screen",
        "required": True,
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes: [{name: x, node: talker, parms: {}}]\n")
    with pytest.raises(GraphError, match="parms"):
        module.node_kwargs(str(bad))
