"""ROS 2 launch file for a robot_stack graph YAML (the file ``robot-stack up`` reads).

    ros2 launch launch/graph.launch.py graph:=/path/to/graph.yaml

Each graph node becomes a ``launch_ros.actions.Node`` running ``robot-stack node <type>`` (the
``robot-stack`` script must be on PATH: ``pip install robot-stack`` in the ROS 2 Python env).
launch_ros adds ``--ros-args -r __node:= -r __ns:= --params-file ...`` itself; with ROS 2
sourced the nodes use the rclpy backend. ``required: true`` shuts the launch down when that
node exits; ``respawn`` maps to launch's respawn (a restart *count* is not enforced in Humble).

The YAML is parsed by ``robot_stack.launcher.load_graph``, so both launchers accept exactly the
same keys and report the same errors.
"""

from __future__ import annotations

from typing import Any


def node_kwargs(graph_path: str) -> list[dict[str, Any]]:
    """``launch_ros.actions.Node`` keyword arguments for every node of the graph (pure Python)."""
    from robot_stack.launcher import load_graph

    specs, graph_env = load_graph(graph_path)
    out = []
    for spec in specs:
        out.append({
            "executable": "robot-stack",
            "arguments": ["node", spec.node],
            "name": spec.name,
            "namespace": spec.namespace or "",
            # files first, then inline values (later wins, as with robot-stack up)
            "parameters": [*spec.params_files, *([spec.params] if spec.params else [])],
            "remappings": list(spec.remaps.items()),
            "additional_env": {**graph_env, **spec.env},
            "respawn": bool(spec.respawn),
            "respawn_delay": spec.respawn_delay,
            "output": "screen",
            "required": spec.required,  # popped below: becomes on_exit=Shutdown
        })
    return out


def _launch_setup(context, *args, **kwargs):
    from launch.actions import Shutdown
    from launch_ros.actions import Node

    graph = context.launch_configurations["graph"]
    actions = []
    for kw in node_kwargs(graph):
        required = kw.pop("required")
        if required:
            kw["on_exit"] = Shutdown(reason=f"required node '{kw['name']}' exited")
        actions.append(Node(**kw))
    return actions


def generate_launch_description():
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    return LaunchDescription([
        DeclareLaunchArgument("graph", description="robot_stack graph YAML (same file as `robot-stack up`)"),
        OpaqueFunction(function=_launch_setup),
    ])
