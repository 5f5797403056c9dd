"""--ros-args / --params-file parsing and their mapping onto a node's typed Config."""

from __future__ import annotations

import dataclasses

import pytest

from robot_stack.config import ConfigError
from robot_stack.runtime import Node
from robot_stack.runtime.backend import select_backend
from robot_stack.runtime.params import RosArgsError, parse_ros_args, resolve_params, resolve_topic


@dataclasses.dataclass
class Inner:
    channels: int = 32  # conv channels


@dataclasses.dataclass
class Cfg:
    rate_hz: float = 10.0  # rate
    name: str = "x"  # a name
    enabled: bool = False  # switch
    sizes: list[int] = dataclasses.field(default_factory=lambda: [1])  # list param
    encoder: Inner = dataclasses.field(default_factory=Inner)  # nested


class CfgNode(Node):
    name = "cfg_node"
    Config = Cfg


def test_parse_ros_args_values_and_remaps():
    ra = parse_ros_args(["--ros-args", "-p", "rate_hz:=3", "-p", "name:='7'", "-p", "sizes:=[1, 2]",
                         "-r", "__node:=n2", "-r", "__ns:=robot1", "-r", "chatter:=/talk", "--log-level", "debug"])
    assert ra.node_name == "n2" and ra.namespace == "/robot1" and ra.remaps == {"chatter": "/talk"}
    assert ra.log_level == "debug"
    assert resolve_params(ra, "/robot1/n2", "n2") == {"rate_hz": 3, "name": "7", "sizes": [1, 2]}


@pytest.mark.parametrize("argv", [["-p", "x:=1"], ["--ros-args", "-p", "x=1"], ["--ros-args", "-p"],
                                  ["--ros-args", "--bogus"]])
def test_bad_ros_args(argv):
    with pytest.raises(RosArgsError):
        parse_ros_args(argv)


def test_params_file_wildcard_specific_and_order(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(
        "/**:\n  ros__parameters:\n    rate_hz: 1.5\n    name: wild\n"
        "cfg_node:\n  ros__parameters:\n    name: specific\n    encoder:\n      channels: 64\n"
        "/other/node:\n  ros__parameters:\n    name: not_me\n"
    )
    ra = parse_ros_args(["--ros-args", "--params-file", str(f), "-p", "rate_hz:=2.5"])
    assert resolve_params(ra, "/cfg_node", "cfg_node") == {"rate_hz": 2.5, "name": "specific", "encoder.channels": 64}
    ra = parse_ros_args(["--ros-args", "-p", "rate_hz:=2.5", "--params-file", str(f)])
    assert resolve_params(ra, "/cfg_node", "cfg_node")["rate_hz"] == 1.5  # later source wins, as in rcl
    assert resolve_params(ra, "/other/node", "node")["name"] == "not_me"


def test_params_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cfg_node:\n  rate_hz: 3\n")
    with pytest.raises(RosArgsError, match="ros__parameters"):
        resolve_params(parse_ros_args(["--ros-args", "--params-file", str(bad)]), "/cfg_node", "cfg_node")
    with pytest.raises(RosArgsError, match="no such file"):
        resolve_params(parse_ros_args(["--ros-args", "--params-file", str(tmp_path / "nope.yaml")]), "/a", "a")


def test_params_map_onto_typed_config(runtime):
    node = runtime.create_node(CfgNode, params={"rate_hz": 3, "enabled": "true", "encoder.channels": 16})
    assert node.cfg == Cfg(rate_hz=3.0, enabled=True, encoder=Inner(channels=16))
    assert isinstance(node.cfg.rate_hz, float)


def test_wrong_type_and_unknown_param_name_node_and_parameter(runtime):
    with pytest.raises(ConfigError, match=r"node '/cfg_node': parameter 'rate_hz': expected a number"):
        runtime.create_node(CfgNode, params={"rate_hz": "fast"})
    with pytest.raises(ConfigError, match=r"node '/n3'.*unknown parameter\(s\) \['ratehz'\]"):
        runtime.create_node(CfgNode, name="n3", params={"ratehz": 1})
    with pytest.raises(ConfigError, match=r"node '/bare'.*takes no parameters"):
        runtime.create_node(Node, name="bare", params={"x": 1})
    # parameters every ROS 2 node accepts (set by launch files) are not "unknown"
    node = runtime.create_node(CfgNode, name="n4", params={"use_sim_time": False, "qos_overrides./x.depth": 3})
    assert node.cfg == Cfg()


def test_topic_resolution():
    assert resolve_topic("a/b", "/ns", "n") == "/ns/a/b"
    assert resolve_topic("/a", "/ns", "n") == "/a"
    assert resolve_topic("~/a", "/ns", "n") == "/ns/n/a"
    assert resolve_topic("chatter", "/", "n", {"chatter": "/talk"}) == "/talk"
    with pytest.raises(RosArgsError):
        resolve_topic("bad topic", "/", "n")


def test_backend_selection(monkeypatch):
    monkeypatch.delenv("ROBOT_STACK_BACKEND", raising=False)
    assert select_backend("auto", rclpy_available=lambda: True) == "rclpy"
    assert select_backend("auto", rclpy_available=lambda: False) == "cyclonedds"
    assert select_backend("cyclonedds", rclpy_available=lambda: True) == "cyclonedds"
    monkeypatch.setenv("ROBOT_STACK_BACKEND", "cyclonedds")
    assert select_backend("auto", rclpy_available=lambda: True) == "cyclonedds"
    with pytest.raises(RuntimeError, match="rclpy"):
        select_backend("rclpy", rclpy_available=lambda: False)
    with pytest.raises(ValueError, match="unknown runtime backend"):
        select_backend("zenoh")
    # here (no ROS 2 sourced) auto must pick Cyclone
    monkeypatch.delenv("ROBOT_STACK_BACKEND")
    assert select_backend("auto") == "cyclonedds"


def test_rclpy_backend_wiring_with_a_stand_in_rclpy(monkeypatch, tmp_path):
    """rclpy is not installable here: drive the adapter against tests/runtime/fake_ros (a stand-in
    for the few rclpy calls it makes) to check auto-selection, params, bytes in/out and timers."""
    import pathlib
    import sys

    from robot_stack.runtime import Runtime, msgs

    fake = pathlib.Path(__file__).with_name("fake_ros")
    monkeypatch.syspath_prepend(str(fake))
    for mod in [m for m in sys.modules if m == "rclpy" or m.startswith(("rclpy.", "std_msgs"))]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.delenv("ROBOT_STACK_BACKEND", raising=False)
    assert select_backend("auto") == "rclpy"
    rt = Runtime(ros_args=["--ros-args", "-p", "rate_hz:=4.0", "-p", "encoder.channels:=8"])
    try:
        assert rt.backend_name == "rclpy"
        node = rt.create_node(CfgNode)
        assert node.cfg.rate_hz == 4.0 and node.cfg.encoder.channels == 8
        # every Config field is declared as a ROS parameter
        assert node._impl.rcl._parameters["name"].value == "x"
        got, ticks = [], []
        node.create_subscription(msgs.String, "chatter", got.append)
        pub = node.create_publisher(msgs.String, "chatter")
        assert pub.get_subscription_count() == 1
        pub.publish(msgs.String(data="über"))
        timer = node.create_timer(0.01, lambda: ticks.append(1))
        assert rt.spin_until(lambda: got and len(ticks) >= 2, 5)
        assert got == [msgs.String(data="über")]
        timer.cancel()
        assert node._impl.rcl.timers[0].cancelled
        assert node.now() == msgs.Time(sec=1, nanosec=500_000_000)
    finally:
        rt.shutdown()
    assert node._impl.rcl.destroyed
