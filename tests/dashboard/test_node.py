"""The dashboard node over real DDS (Cyclone, loopback, random domain): topics feed the page's live
state; the page's commands come out as topic messages."""

from __future__ import annotations

import hashlib
import json

import httpx
import numpy as np
import pytest

from robot_stack.runtime import Node, msgs

from dash_helpers import ROBOT, TOKEN, frame

pytestmark = pytest.mark.processes
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_dashboard_node_bridges_topics_and_commands(runtime, store):
    from robot_stack.dashboard.node import DashboardNode

    node = runtime.create_node(DashboardNode, params={"store": store.url, "cameras": ["front", "wrist"],
                                                      "dashboard.port": 0, "dashboard.token": TOKEN})
    url = node.server.url
    probe = runtime.create_node(Node, name="probe")
    got: dict[str, list] = {k: [] for k in ("cmd", "estop", "clear", "reset", "teleop", "intervening")}
    probe.create_subscription(msgs.String, "session/command", got["cmd"].append)
    probe.create_subscription(msgs.Bool, "arm/estop", got["estop"].append)
    probe.create_subscription(msgs.String, "arm/estop_clear", got["clear"].append)
    probe.create_subscription(msgs.String, "sim/reset_scene", got["reset"].append)
    probe.create_subscription(msgs.Float32MultiArray, "teleop/action", got["teleop"].append)
    probe.create_subscription(msgs.Bool, "teleop/intervening", got["intervening"].append)
    pubs = {
        "image": probe.create_publisher(msgs.Image, "camera/front/image"),
        "success": probe.create_publisher(msgs.Float32MultiArray, "reward/success"),
        "state": probe.create_publisher(msgs.String, "session/state"),
        "metrics": probe.create_publisher(msgs.String, "learner/metrics"),
        "version": probe.create_publisher(msgs.Int32, "learner/policy_version"),
        "status": probe.create_publisher(msgs.DiagnosticArray, "arm/status"),
    }
    assert runtime.spin_until(lambda: all(p.get_subscription_count() > 0 for p in pubs.values()), timeout_s=10)

    def publish_all():
        pubs["image"].publish(msgs.Image.from_numpy(frame(5), "rgb8", header=msgs.Header(stamp=msgs.Time.now())))
        pubs["success"].publish(msgs.Float32MultiArray.from_numpy(np.array([0.9, 0.85, 1, 2], np.float32),
                                                                  labels=["cube_into_bowl"]))
        pubs["state"].publish(msgs.String(data=json.dumps({"task_id": "cube_into_bowl", "phase": "backward",
                                                           "episode": 3, "paused": False})))
        pubs["metrics"].publish(msgs.String(data=json.dumps({"updates": 7, "losses/critic": 0.25})))
        pubs["version"].publish(msgs.Int32(data=4))
        pubs["status"].publish(msgs.DiagnosticArray(status=[msgs.DiagnosticStatus(
            level=0, name="arm", values=[msgs.KeyValue(key="estopped", value="false"),
                                         msgs.KeyValue(key="connected", value="true")])]))

    def live():
        return httpx.get(url + "/api/live").json()

    def arrived():
        s = live()
        return ("front" in s["cameras"] and s["success"] and s["session"]["phase"] == "backward"
                and s["policy_version"] == 4 and s["learner"].get("updates") == 7 and s["arm_status"])

    for _ in range(20):  # SENSOR QoS is best effort: republish until everything arrived
        publish_all()
        if runtime.spin_until(arrived, timeout_s=0.5):
            break
    s = live()
    assert s["success"]["prob"] == pytest.approx(0.9) and s["success"]["task_id"] == "cube_into_bowl"
    assert s["arm_status"]["estopped"] is False and s["arm_status"]["connected"] is True
    assert httpx.get(url + "/api/cameras/front/latest.jpg").status_code == 200

    # a malformed message is dropped, not fatal
    pubs["state"].publish(msgs.String(data="{not json"))
    runtime.spin_until(lambda: False, timeout_s=0.3)

    assert httpx.post(url + "/api/session/command", json={"cmd": "pause"}, headers=AUTH).status_code == 200
    assert httpx.post(url + "/api/estop", headers=AUTH).status_code == 200
    assert httpx.post(url + "/api/estop/clear", headers=AUTH).status_code == 200
    assert httpx.post(url + "/api/sim/reset_scene", json={"task": "cube_into_bowl", "keep_layout": True},
                      headers=AUTH).status_code == 200
    assert httpx.post(url + "/api/teleop", json={"action": [0.5, 0, 0, 0, 0, 0, 1]}, headers=AUTH).status_code == 200
    assert httpx.post(url + "/api/teleop/release", headers=AUTH).status_code == 200
    assert runtime.spin_until(lambda: got["cmd"] and got["estop"] and got["clear"] and got["reset"] and len(got["teleop"]) >= 2
                              and len(got["intervening"]) >= 2, timeout_s=10)
    assert json.loads(got["cmd"][0].data) == {"cmd": "pause"}
    assert got["estop"][0].data is True
    assert json.loads(got["clear"][0].data) == {"token_hash": hashlib.sha256(TOKEN.encode()).hexdigest()}
    assert json.loads(got["reset"][0].data) == {"token_hash": hashlib.sha256(TOKEN.encode()).hexdigest(),
                                                "task": "cube_into_bowl", "keep_layout": True}
    assert got["teleop"][0].to_numpy().tolist() == [0.5, 0, 0, 0, 0, 0, 1]
    assert [m.data for m in got["intervening"]][:2] == [True, False]
    # the store side works through the node too
    assert httpx.get(url + f"/api/episodes/{ROBOT}:000001").json()["n_steps"] == 12
    node.on_shutdown()


def test_dashboard_node_waits_for_a_store_the_actor_creates_later(runtime, tmp_path):
    from dash_helpers import make_store

    from robot_stack.dashboard.node import DashboardNode

    path = tmp_path / "later.zarr"
    node = runtime.create_node(DashboardNode, params={"store": str(path), "dashboard.port": 0, "dashboard.token": TOKEN})
    try:
        url = node.server.url
        assert httpx.get(url + "/api/episodes").json()["total"] == 0
        assert httpx.get(url + f"/api/episodes/{ROBOT}:000000").status_code == 404
        make_store(path)
        assert httpx.get(url + "/api/episodes").json()["total"] == 6
        r = httpx.post(url + f"/api/episodes/{ROBOT}:000000/label", json={"outcome": "failure"}, headers=AUTH)
        assert r.status_code == 200 and r.json()["outcome_source"] == "human"
    finally:
        node.on_shutdown()


def test_dashboard_node_rejects_bad_camera_names(runtime):
    from robot_stack.config import ConfigError
    from robot_stack.dashboard.node import DashboardNode

    with pytest.raises(ConfigError, match="cameras"):
        runtime.create_node(DashboardNode, params={"cameras": ["../etc"], "dashboard.port": 0})


def test_dashboard_node_as_a_process_starts_serves_and_stops_cleanly(tmp_path):
    import os
    import re
    import signal
    import subprocess
    import sys

    from robot_stack.runtime.dds import isolated_env

    env = {**os.environ, **isolated_env(), "ROBOT_STACK_DASHBOARD_TOKEN": TOKEN}
    cmd = [sys.executable, "-c", "import sys; from robot_stack.cli import main; sys.exit(main())", "node",
           "robot_stack.dashboard.node:DashboardNode", "--ros-args", "-p", "dashboard.port:=0", "-p", "cameras:=[front, wrist]"]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        m = None
        for _ in range(50):
            line = proc.stderr.readline()
            m = re.search(r"(http://127\.0\.0\.1:\d+)/#token=(\S+)", line)
            if m or not line:
                break
        assert m, "the node never printed its URL"
        assert m.group(2) == TOKEN
        assert httpx.get(m.group(1) + "/api/health").json()["robot"] is True
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
