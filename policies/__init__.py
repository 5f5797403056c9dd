"""Policies and learners: networks, Cal-QL / CQL / BC / PA-RL, in-memory replay, checkpoints.

Must not import ROS, `hardware` or zarr: it sees episodes only as numpy arrays.
``policies.replay`` is numpy-only; everything else needs torch. Names below are imported lazily
so ``from policies.replay import ReplayBuffer`` never pulls in torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "LearnerConfig": "policies.config", "NetworkConfig": "policies.config", "EncoderConfig": "policies.config",
    "CalQLConfig": "policies.config", "PRESETS": "policies.config",
    "ReplayBuffer": "policies.replay", "ReplayConfig": "policies.replay", "MixedReplay": "policies.replay",
    "mc_return_to_go": "policies.replay",
    "CalQLLearner": "policies.calql", "BCLearner": "policies.bc",
    "PARLLearner": "policies.parl", "PARLConfig": "policies.parl", "BinnedPolicy": "policies.parl",
    "Agent": "policies.agent", "Trainer": "policies.trainer",
    "CheckpointManager": "policies.checkpoint", "CheckpointError": "policies.checkpoint",
    "load_checkpoint": "policies.checkpoint", "load_agent": "policies.checkpoint",
    "init_data_parallel": "policies.distributed", "shutdown_data_parallel": "policies.distributed",
    "data_parallel": "policies.distributed",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'policies' has no attribute {name!r}")
