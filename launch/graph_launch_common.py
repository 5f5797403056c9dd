"""Shared by the per-robot launch files: a LaunchDescription for a graph YAML with a default."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import importlib.util  # noqa: E402

_spec = importlib.util.spec_from_file_location("graph_launch", os.path.join(os.path.dirname(os.path.abspath(__file__)), "graph.launch.py"))
graph_launch = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(graph_launch)


def launch_description_for(default_graph: str):
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    return LaunchDescription([
        DeclareLaunchArgument("graph", default_value=default_graph, description="robot_stack graph YAML"),
        OpaqueFunction(function=graph_launch._launch_setup),
    ])
