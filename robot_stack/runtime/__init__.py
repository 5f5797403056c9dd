"""Node runtime: the small rclpy-like API every robot_stack node is written against.

    from robot_stack.runtime import Node, Runtime, msgs, qos

Two backends behind one API (see :mod:`backend`): rclpy when a ROS 2 install is sourced,
otherwise Cyclone DDS speaking ROS 2's wire conventions (:mod:`dds`). Messages are the standard
ROS 2 types in :mod:`msgs`; QoS profiles in :mod:`qos`. This package is the only place that
imports rclpy or cyclonedds (lazily: importing it does not start DDS).
"""

from robot_stack.runtime import msgs, qos
from robot_stack.runtime.backend import Runtime, select_backend
from robot_stack.runtime.node import MessageTypeError, Node, NodeContext, Publisher, Subscription, Timer

__all__ = ["Node", "NodeContext", "Runtime", "Publisher", "Subscription", "Timer", "MessageTypeError",
           "msgs", "qos", "select_backend"]
