"""robot_stack: ROS 2 nodes, episode store, reset-free session logic, learner service and dashboard.

This package wires `hardware`, `policies` and `reward_vlm` together. Importing it is cheap:
nothing here imports ROS, zarr or torch at module level.
"""

__version__ = "0.1.0"
