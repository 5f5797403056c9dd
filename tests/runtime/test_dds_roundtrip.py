"""Real DDS between real processes on loopback: every message type round-trips exactly.

The test process publishes each type to ``echo_in/<pkg>/<Name>``; an Echo node in a child
process decodes it and publishes it again on ``echo_out/...``; we compare what comes back.
"""

from __future__ import annotations

import importlib.util
import subprocess
import pathlib
import time

import numpy as np
import pytest

from robot_stack.nodes.demo import echo_topic
from robot_stack.runtime import MessageTypeError, Node, msgs, qos
from robot_stack.runtime.process import start_node, stop_process

_spec = importlib.util.spec_from_file_location("rt_samples", pathlib.Path(__file__).with_name("samples.py"))
samples = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(samples)

pytestmark = pytest.mark.processes


class Prober(Node):
    name = "prober"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.pubs, self.got = {}, {}
        for ros_type, cls in msgs.BY_TYPE.items():
            self.pubs[ros_type] = self.create_publisher(cls, echo_topic("echo_in", ros_type))
            self.got[ros_type] = []
            self.create_subscription(cls, echo_topic("echo_out", ros_type), self.got[ros_type].append)


def test_every_type_round_trips_through_another_process(runtime, dds_env, tmp_path):
    log = (tmp_path / "echo.log").open("w+")
    echo = start_node("echo", env=dds_env, stdout=log, stderr=log)
    try:
        prober = runtime.create_node(Prober)
        everything_matched = lambda: all(  # noqa: E731
            p.get_subscription_count() > 0 for p in prober.pubs.values()
        ) and all(s.get_publisher_count() > 0 for s in prober.subscriptions)
        assert runtime.spin_until(everything_matched, 20), "echo node never matched our topics"

        rng = np.random.default_rng(7)
        sent = {t: [samples.sample(cls, rng) for _ in range(3)] for t, cls in msgs.BY_TYPE.items()}
        sent["sensor_msgs/msg/Image"].append(samples.big_image(rng))
        for ros_type, items in sent.items():
            for m in items:
                prober.pubs[ros_type].publish(m)
        done = lambda: all(len(prober.got[t]) >= len(sent[t]) for t in sent)  # noqa: E731
        assert runtime.spin_until(done, 20), {t: len(v) for t, v in prober.got.items() if len(v) < len(sent[t])}
        for ros_type, items in sent.items():
            assert prober.got[ros_type] == items, ros_type
        big = prober.got["sensor_msgs/msg/Image"][-1]
        assert big.to_numpy().shape == (480, 640, 3)
        np.testing.assert_array_equal(big.to_numpy(), sent["sensor_msgs/msg/Image"][-1].to_numpy())

        # Cyclone checks raw bytes against the type on write: malformed samples never reach the wire
        with pytest.raises(RuntimeError, match="rt/echo_in/sensor_msgs/JointState"):
            prober.pubs["sensor_msgs/msg/JointState"]._impl.publish(b"\x00\x01\x00\x00\x05\x00\x00\x00")
    finally:
        assert stop_process(echo) == 0
    log.seek(0)
    assert "started (cyclonedds backend)" in log.read()


def test_publish_wrong_type_or_bad_field_names_topic(runtime):
    node = runtime.create_node(Node, name="typed")
    pub = node.create_publisher(msgs.String, "chatter")
    with pytest.raises(MessageTypeError, match="topic '/chatter'.*Int32"):
        pub.publish(msgs.Int32(data=1))
    with pytest.raises(MessageTypeError, match="topic '/chatter'.*String.data"):
        pub.publish(msgs.String(data=3))
    with pytest.raises(MessageTypeError, match="topic '/chatter'.*already used with type std_msgs/msg/String"):
        node.create_subscription(msgs.Int32, "/chatter", print)
    with pytest.raises(MessageTypeError, match="topic 'x'"):
        node.create_publisher(dict, "x")


def test_malformed_sample_is_logged_with_topic_and_dropped(runtime, caplog):
    """A sample that does not parse (e.g. raw bytes from the rclpy backend) is counted and logged, not fatal."""
    node = runtime.create_node(Node, name="listener")
    got = []
    sub = node.create_subscription(msgs.Image, "img", got.append, qos.SENSOR_DATA)
    pub = node.create_publisher(msgs.Image, "img", qos.SENSOR_DATA)
    assert runtime.spin_until(lambda: pub.get_subscription_count() > 0, 5)
    sub.on_bytes(b"\x00\x01\x00\x00\x01\x00")
    assert sub.malformed == 1 and not got
    assert "topic '/img': dropped a malformed sensor_msgs/msg/Image sample" in caplog.text, caplog.text
    pub.publish(msgs.Image.from_numpy(np.zeros((2, 2, 3), np.uint8)))
    assert runtime.spin_until(lambda: got, 5)
    assert got[0].to_numpy().shape == (2, 2, 3)


def test_timer_and_topic_namespaces(runtime):
    ticks = []

    class Ticker(Node):
        name = "ticker"

        def __init__(self, ctx):
            super().__init__(ctx)
            self.pub = self.create_publisher(msgs.Int32, "~/count")
            self.create_timer(0.02, lambda: ticks.append(time.monotonic()))

    node = runtime.create_node(Ticker, namespace="/robot1")
    assert node.pub.topic == "/robot1/ticker/count"
    runtime.spin(0.5)
    assert 15 <= len(ticks) <= 30, len(ticks)


def test_ros_discovery_info_lists_nodes_and_entities(runtime):
    """What `ros2 node list` reads: our nodes with the GUIDs of their readers and writers."""
    a = runtime.create_node(Node, name="alpha", namespace="/ns")
    pub = a.create_publisher(msgs.String, "out")
    a.create_subscription(msgs.String, "in", print)
    infos = runtime.backend.read_graph(timeout_s=5, min_nodes=1)
    nodes = [n for p in infos for n in p.node_entities_info_seq]
    (alpha,) = [n for n in nodes if n.node_name == "alpha"]
    assert alpha.node_namespace == "/ns"
    assert len(alpha.writer_gid_seq) == 1 and len(alpha.reader_gid_seq) == 1
    assert alpha.writer_gid_seq[0].data[:16].tobytes() == pub._impl.writer.guid.bytes
    assert infos[0].gid.data[:16].tobytes() == runtime.backend.dp.guid.bytes


def test_graphs_on_the_same_domain_with_other_tags_never_meet(runtime, dds_env, tmp_path):
    """Two sessions side by side may draw the same random domain id; their domain tags differ."""
    from robot_stack.runtime.dds import isolated_env
    from robot_stack.runtime.process import wait_for

    same_domain = {**dds_env, **isolated_env(int(dds_env["ROS_DOMAIN_ID"]))}
    assert same_domain["CYCLONEDDS_URI"] != dds_env["CYCLONEDDS_URI"]
    log_path = tmp_path / "echo.log"
    echo = start_node("echo", env=same_domain, stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: "started (cyclonedds backend)" in log_path.read_text(), timeout_s=30)
        prober = runtime.create_node(Prober)
        met = lambda: any(p.get_subscription_count() > 0 for p in prober.pubs.values())  # noqa: E731
        assert not runtime.spin_until(met, 5), "a graph with another domain tag matched our topics"
    finally:
        assert stop_process(echo) == 0
    with pytest.raises(ValueError, match="alphanumeric"):
        isolated_env(tag="a<b")
