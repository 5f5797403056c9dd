"""Where the system touches the world: arms, MuJoCo sim arms and scenes, cameras, teleop, safety.

Vendor SDKs are imported only inside `hardware/<device>`; nothing here imports ROS, torch or zarr.
"""
