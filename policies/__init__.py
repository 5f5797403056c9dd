"""Policies and learners: networks, Cal-QL / CQL / BC / PA-RL, in-memory replay, checkpoints.

Must not import ROS, `hardware` or zarr: it sees episodes only as numpy arrays.
"""
