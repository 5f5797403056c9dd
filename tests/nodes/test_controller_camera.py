"""Controller and camera nodes over real DDS (in one process, on an isolated loopback domain)."""

import hashlib
import json

import numpy as np
import pytest

from robot_stack.nodes.camera import CameraNode
from robot_stack.nodes.controller import ControllerNode, action_seq, make_action_msg
from robot_stack.runtime import Node, msgs, qos

pytestmark = pytest.mark.processes

TOKEN = "s3cret"


@pytest.fixture
def graph(runtime):
    ctrl = runtime.create_node(ControllerNode, params={
        "control_hz": 20.0, "clear_token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest()})
    runtime.create_node(CameraNode, params={"fps": 10.0, "width": 48, "height": 48})
    probe = runtime.create_node(Node, name="probe")
    got = {"sent": [], "proprio": [], "status": [], "image": [], "truth": []}
    probe.create_subscription(msgs.Float32MultiArray, "arm/action_sent", got["sent"].append)
    probe.create_subscription(msgs.Float32MultiArray, "arm/proprio", got["proprio"].append, qos.SENSOR_DATA)
    probe.create_subscription(msgs.DiagnosticArray, "arm/status", got["status"].append)
    probe.create_subscription(msgs.Image, "camera/front/image", got["image"].append, qos.SENSOR_DATA)
    probe.create_subscription(msgs.String, "sim/ground_truth", got["truth"].append)
    pubs = {
        "action": probe.create_publisher(msgs.Float32MultiArray, "arm/action"),
        "estop": probe.create_publisher(msgs.Bool, "arm/estop"),
        "clear": probe.create_publisher(msgs.String, "arm/estop_clear"),
        "reset": probe.create_publisher(msgs.String, "sim/reset_scene"),
    }
    assert runtime.spin_until(lambda: got["proprio"] and got["image"], timeout_s=30)
    return runtime, ctrl, got, pubs


def ee_xyz(got):
    v = got["proprio"][-1].to_numpy()
    n = len(v) - 8
    return v[n:n + 3].copy()


def status(got):
    return {kv.key: kv.value for kv in got["status"][-1].status[0].values}


def drive(runtime, got, pubs, action, n, seq0=1):
    for i in range(n):
        before = len(got["sent"])
        pubs["action"].publish(make_action_msg(np.asarray(action, np.float32), seq0 + i))
        assert runtime.spin_until(lambda: len(got["sent"]) > before, timeout_s=5)


def test_actions_move_the_arm_and_are_echoed_with_sequence_numbers(graph):
    runtime, ctrl, got, pubs = graph
    start = ee_xyz(got)
    drive(runtime, got, pubs, [1, 0, 0, 0, 0, 0, 1], 10, seq0=100)
    assert [action_seq(m) for m in got["sent"][-10:]] == list(range(100, 110))
    runtime.spin_until(lambda: False, timeout_s=0.3)
    moved = ee_xyz(got) - start
    assert moved[0] > 0.03, f"arm should move +x, moved {moved}"
    truth = json.loads(got["truth"][-1].data)
    assert truth.keys() == {t.id for t in ctrl.scene.tasks} | {"out_of_workspace"}
    assert truth["out_of_workspace"] is False  # the cube was not touched


def test_camera_mirrors_the_world_the_controller_simulates(graph):
    runtime, ctrl, got, pubs = graph
    first = got["image"][-1].to_numpy().astype(int)
    drive(runtime, got, pubs, [0, 0, 1, 0, 0, 0, -1], 10)
    n = len(got["image"])
    assert runtime.spin_until(lambda: len(got["image"]) > n + 2, timeout_s=10)
    last = got["image"][-1].to_numpy().astype(int)
    assert last.shape == (48, 48, 3)
    assert np.abs(last - first).mean() > 0.5, "frames should change when the arm moves"


def test_nan_action_is_rejected_and_arm_holds(graph):
    runtime, ctrl, got, pubs = graph
    start = ee_xyz(got)
    drive(runtime, got, pubs, [np.nan, 0, 0, 0, 0, 0, 1], 5)
    runtime.spin_until(lambda: False, timeout_s=0.3)
    assert np.linalg.norm(ee_xyz(got) - start) < 0.005
    assert np.all(np.isfinite(got["sent"][-1].to_numpy()))


def test_arm_holds_when_commands_stop(graph):
    runtime, ctrl, got, pubs = graph
    drive(runtime, got, pubs, [0, 1, 0, 0, 0, 0, 1], 5)
    runtime.spin_until(lambda: False, timeout_s=0.3)
    held_at = ee_xyz(got)
    runtime.spin_until(lambda: False, timeout_s=1.0)  # no commands for 20 control periods
    assert np.linalg.norm(ee_xyz(got) - held_at) < 0.005


def test_estop_latches_until_cleared_with_the_token(graph):
    runtime, ctrl, got, pubs = graph
    pubs["estop"].publish(msgs.Bool(data=True))
    assert runtime.spin_until(lambda: got["status"] and status(got)["estopped"] == "true", timeout_s=5)
    start = ee_xyz(got)
    drive(runtime, got, pubs, [1, 0, 0, 0, 0, 0, 1], 5)
    runtime.spin_until(lambda: False, timeout_s=0.3)
    assert np.linalg.norm(ee_xyz(got) - start) < 0.005, "a latched e-stop must not move"
    pubs["clear"].publish(msgs.String(data=json.dumps({"token_hash": hashlib.sha256(b"wrong").hexdigest()})))
    runtime.spin_until(lambda: False, timeout_s=1.0)
    assert ctrl.arm.estopped and status(got)["estopped"] == "true"
    pubs["clear"].publish(msgs.String(data=json.dumps({"token_hash": hashlib.sha256(TOKEN.encode()).hexdigest()})))
    assert runtime.spin_until(lambda: not ctrl.arm.estopped, timeout_s=5)
    drive(runtime, got, pubs, [1, 0, 0, 0, 0, 0, 1], 5)
    runtime.spin_until(lambda: False, timeout_s=0.3)
    assert ee_xyz(got)[0] - start[0] > 0.01


def test_sim_scene_reset_needs_the_token_and_stages_a_start_of_the_task(graph):
    runtime, ctrl, got, pubs = graph
    assert runtime.spin_until(lambda: got["status"], timeout_s=5) and status(got)["sim"] == "true"
    fwd, bwd = (t.id for t in ctrl.scene.tasks)
    drive(runtime, got, pubs, [1, 0, -1, 0, 0, 0, 1], 8)  # the arm away from its reset pose
    cube = lambda: ctrl.scene.privileged()["cube_pose"][:3].copy()  # noqa: E731
    before, away = cube(), ee_xyz(got)

    def send(**body):
        n = len(got["proprio"])
        pubs["reset"].publish(msgs.String(data=json.dumps(body)))
        runtime.spin_until(lambda: len(got["proprio"]) > n + 3, timeout_s=5)

    send(token_hash=hashlib.sha256(b"wrong").hexdigest())
    send(token_hash=hashlib.sha256(TOKEN.encode()).hexdigest(), task="no_such_task")
    send(task=fwd)
    pubs["estop"].publish(msgs.Bool(data=True))
    assert runtime.spin_until(lambda: status(got)["estopped"] == "true", timeout_s=5)
    send(token_hash=hashlib.sha256(TOKEN.encode()).hexdigest(), task=fwd)  # the e-stop holds the arm
    assert np.allclose(cube(), before) and np.allclose(ee_xyz(got), away, atol=0.005), "unauthorised or bad: nothing moves"
    pubs["clear"].publish(msgs.String(data=json.dumps({"token_hash": hashlib.sha256(TOKEN.encode()).hexdigest()})))
    assert runtime.spin_until(lambda: not ctrl.arm.estopped, timeout_s=5)
    for task, reverse in ((bwd, fwd), (fwd, bwd)):
        send(token_hash=hashlib.sha256(TOKEN.encode()).hexdigest(), task=task)
        assert not ctrl.scene.success(task) and ctrl.scene.success(reverse), f"a start of {task}"
        assert json.loads(got["truth"][-1].data)[reverse] is True  # the new world went out at once
        assert np.linalg.norm(ee_xyz(got) - away) > 0.03, "the arm is back at its reset pose"
        assert not np.allclose(cube(), before)
        before = cube()
    # keep_layout (a person re-staging the scene): the cube moves, the bowl and the room stay
    bowl, looks = ctrl.scene.privileged()["bowl_xy"].copy(), ctrl.scene.world.appearance_vector()
    send(token_hash=hashlib.sha256(TOKEN.encode()).hexdigest(), task=fwd, keep_layout=True)
    assert not ctrl.scene.success(fwd) and not np.allclose(cube(), before)
    assert np.array_equal(ctrl.scene.privileged()["bowl_xy"], bowl)
    assert np.array_equal(ctrl.scene.world.appearance_vector(), looks)
    send(token_hash=hashlib.sha256(TOKEN.encode()).hexdigest(), task=fwd, keep_layout="yes")  # only a JSON true
    assert not np.array_equal(ctrl.scene.world.appearance_vector(), looks), "a new room"
    drive(runtime, got, pubs, [0, 1, 0, 0, 0, 0, 1], 3)  # and it still takes commands
    assert status(got)["estopped"] == "false"


@pytest.fixture
def lockstep_graph(runtime):
    ctrl = runtime.create_node(ControllerNode, params={"control_hz": 10.0, "lockstep": True})
    runtime.create_node(CameraNode, params={"fps": 10.0, "width": 48, "height": 48, "lockstep": True})
    probe = runtime.create_node(Node, name="probe")
    got = {"proprio": [], "image": [], "world": []}
    probe.create_subscription(msgs.Float32MultiArray, "arm/proprio", got["proprio"].append, qos.SENSOR_DATA)
    probe.create_subscription(msgs.Image, "camera/front/image", got["image"].append, qos.SENSOR_DATA)
    probe.create_subscription(msgs.Float64MultiArray, "sim/world_state", got["world"].append, qos.SENSOR_DATA)
    pub = probe.create_publisher(msgs.Float32MultiArray, "arm/action")
    assert runtime.spin_until(lambda: got["proprio"] and got["image"], timeout_s=30)
    return runtime, ctrl, got, pub


def test_lockstep_world_moves_one_control_period_per_command_and_frames_show_it(lockstep_graph):
    runtime, ctrl, got, pub = lockstep_graph
    period = 1.0 / ctrl.arm.config.control_hz
    for seq in (5, 6, 7):
        before = got["image"][-1].header.stamp.to_sec()
        pub.publish(make_action_msg(np.array([1, 0, 0, 0, 0, 0, 1], np.float32), seq))
        # proprio and world state say which command they show; the frame, which world time
        assert runtime.spin_until(lambda: action_seq(got["proprio"][-1]) == seq
                                  and got["image"][-1].header.stamp.to_sec() > before, timeout_s=5)
        world = next(w for w in reversed(got["world"]) if action_seq(w) == seq)
        assert got["image"][-1].header.stamp.to_sec() == pytest.approx(world.data[0], abs=1e-6)
        assert world.data[0] - before == pytest.approx(period, abs=1e-6)
    # Without commands the world stands still (the arm holds) while frames keep coming.
    n_images, still = len(got["image"]), float(got["world"][-1].data[0])
    runtime.spin_until(lambda: False, timeout_s=1.0)
    assert len(got["image"]) > n_images
    assert {float(w.data[0]) for w in got["world"][-5:]} == {still}
    assert got["image"][-1].header.stamp.to_sec() == pytest.approx(still, abs=1e-6)


def test_lockstep_is_refused_for_real_hardware():
    from robot_stack.nodes.camera import CameraNodeConfig
    from robot_stack.nodes.controller import ControllerNodeConfig

    with pytest.raises(ValueError, match="sim arm"):
        ControllerNodeConfig(arm="widowx250", lockstep=True)
    with pytest.raises(ValueError, match="sim driver"):
        CameraNodeConfig(driver="opencv", lockstep=True)
