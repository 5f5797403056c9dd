"""One rank of the data-parallel test (run as a subprocess by test_distributed.py).

``ddp_worker.py RANK WORLD STORE OUT [stuck-peer]``: with ``stuck-peer``, rank 0 joins the group and
then hangs, and rank 1 fails (the failure path of ``data_parallel``).
"""

import sys
import time

import numpy as np
import torch
from safetensors.torch import save_file

from policies.bc import BCLearner
from policies.calql import CalQLLearner
from policies.config import EncoderConfig, LearnerConfig, NetworkConfig
from policies.distributed import data_parallel


def full_batch(seed: int, B: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "image": rng.integers(0, 256, (B, 16, 16, 3), dtype=np.uint8), "next_image": rng.integers(0, 256, (B, 16, 16, 3), dtype=np.uint8),
        "state": rng.normal(size=(B, 3)).astype(np.float32), "next_state": rng.normal(size=(B, 3)).astype(np.float32),
        "action": rng.uniform(-1, 1, (B, 7)).astype(np.float32), "reward": rng.integers(0, 2, B).astype(np.float32),
        "done": rng.integers(0, 2, B).astype(np.float32), "mc_return": rng.uniform(0, 1, B).astype(np.float32),
        "task": rng.integers(0, 2, B), "intervention": np.zeros(B, bool),
    }


def config() -> LearnerConfig:
    net = NetworkConfig(image_keys=("front",), state_dim=3, hidden_dims=(32, 32), encoder=EncoderConfig(image_size=16, channels=8, strides=(2, 1, 1, 1), feature_dim=8))
    cfg = LearnerConfig(network=net, batch_size=8, device="cpu", num_threads=1, seed=0)
    cfg.calql.augment_pad = 0  # augmentation draws differ per rank: off for the exact comparison
    return cfg


def params(learner) -> dict:
    return {f"{m}.{k}": v.detach().contiguous() for m, mod in learner.modules.items() for k, v in mod.state_dict().items()}


def train(rank: int, out: str) -> None:
    """Both learners live only in here, so they are gone before the group is shut down."""
    data = full_batch(0, 16)
    half = {k: v[rank * 8 : (rank + 1) * 8] for k, v in data.items()}
    bc = BCLearner(config())
    assert bc.distributed
    for _ in range(3):
        bc.update(half)
    save_file(params(bc), f"{out}/bc_rank{rank}.safetensors")
    # Cal-QL: every rank samples its own batch (different noise); weights must still agree.
    torch.manual_seed(100 + rank)
    cql = CalQLLearner(config())
    for i in range(2):
        cql.update(full_batch(10 + 2 * i + rank, 8))
    save_file(params(cql), f"{out}/calql_rank{rank}.safetensors")


def main(rank: int, world: int, store: str, out: str, mode: str = "") -> None:
    with data_parallel(rank, world, store, backend="gloo"):
        if mode == "stuck-peer":
            if rank == 0:
                time.sleep(600)
            raise RuntimeError("rank 1 failed on purpose")
        train(rank, out)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], *sys.argv[5:])
