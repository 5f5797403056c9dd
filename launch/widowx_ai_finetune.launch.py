"""ROS 2 launch: autonomous fine-tuning on a real widowx_ai (graph: widowx_ai_finetune.yaml).

    ros2 launch launch/widowx_ai_finetune.launch.py [graph:=other.yaml]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from graph_launch_common import launch_description_for  # noqa: E402


def generate_launch_description():
    return launch_description_for(os.path.join(os.path.dirname(os.path.abspath(__file__)), "widowx_ai_finetune.yaml"))
