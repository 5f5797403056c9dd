"""``robot-stack learner``: the learner service as a node (same as ``robot-stack node learner``).

    robot-stack learner --store runs/sim/episodes.zarr --checkpoints runs/sim/checkpoints \
        --policy.preset gpu --utd_ratio 1 --publish_every 500

Flags map onto the node's ROS parameters, so a ROS 2 launch file or ``--params-file`` can set
the same values. It resumes from the newest checkpoint and tails the store.
"""

from __future__ import annotations

import argparse

from robot_stack.config import add_config_args, flat_fields


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from robot_stack.learner.service import LearnerServiceConfig

    parser.add_argument("--backend", default="auto", choices=["auto", "rclpy", "cyclonedds"], help="runtime backend")
    add_config_args(parser, LearnerServiceConfig)


def run(args: argparse.Namespace) -> int:
    from robot_stack.learner.service import LearnerServiceConfig
    from robot_stack.runtime import node_main
    from robot_stack.runtime.process import param_arg

    ros_args = ["--ros-args"]
    for name in flat_fields(LearnerServiceConfig):
        value = getattr(args, f"cfg::{name}", None)
        if value is not None:
            ros_args += ["-p", param_arg(name, value)]
    return node_main.run(argparse.Namespace(node="learner", backend=args.backend, ros_args=ros_args))
