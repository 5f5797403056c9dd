# robot_stack on ROS 2 Humble: the image for the lab robot PC and for the GPU learner box.
#   docker build -t robot-stack .                                  # robot PC (CPU torch)
#   docker build -t robot-stack:gpu --build-arg TORCH_VARIANT=cuda .   # learner box (CUDA torch)
# Inside, nodes use the rclpy backend automatically (ROS 2 is sourced by the entrypoint), so
# `ros2 launch robot_stack_launch widowx250_finetune.launch.py`, `ros2 topic echo`, rqt and
# `ros2 bag record` work natively; RMW is Cyclone DDS, the same wire format as the no-ROS backend.
FROM ros:humble-ros-base

ARG TORCH_VARIANT=cpu
ENV DEBIAN_FRONTEND=noninteractive \
    RMW_IMPLEMENTATION=rmw_cyclonedds_cpp \
    MUJOCO_GL=egl \
    PYOPENGL_PLATFORM=egl \
    PYTHONUNBUFFERED=1

RUN apt-get update && apt-get install -y --no-install-recommends \
        python3-pip python3-venv ros-humble-rmw-cyclonedds-cpp ros-humble-launch-ros \
        libegl1 libgl1-mesa-dri libosmesa6 libgles2 libusb-1.0-0 ffmpeg \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/robot_stack
COPY pyproject.toml README.md ./
COPY robot_stack ./robot_stack
COPY policies ./policies
COPY reward_vlm ./reward_vlm
COPY hardware ./hardware
COPY launch ./launch

# torch is pinned; the CPU variant comes from PyTorch's CPU wheel index so the robot PC does not
# pull CUDA, the GPU variant from PyPI's default (CUDA) build.
RUN if [ "$TORCH_VARIANT" = "cpu" ]; then \
        pip3 install --no-cache-dir "torch==2.13.0" --index-url "https://download.pytorch.org/whl/cpu"; \
    else pip3 install --no-cache-dir "torch==2.13.0"; fi \
    && pip3 install --no-cache-dir ".[franka,widowx-ai,widowx250,realsense,opencv,spacemouse,vlm,cloud,logging]"

RUN printf '#!/bin/bash\nsource /opt/ros/humble/setup.bash\nexec "$@"\n' > /entrypoint.sh && chmod +x /entrypoint.sh
ENTRYPOINT ["/entrypoint.sh"]
CMD ["robot-stack", "--help"]
