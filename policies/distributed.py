"""Data-parallel set-up helpers around ``torch.distributed`` (gloo on CPU, nccl on GPUs)."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from datetime import timedelta

import torch
import torch.distributed as dist


def init_data_parallel(rank: int, world_size: int, store_file: str | os.PathLike, backend: str | None = None) -> None:
    """Join a process group through a FileStore (no network port needed on one machine).

    Multi-machine jobs use the usual env:// rendezvous instead (``torchrun``). After this, any
    learner built with ``distributed=None`` detects the group and wraps its modules in DDP.
    """
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    store = dist.FileStore(str(store_file), world_size)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size, timeout=timedelta(seconds=120))
    if backend == "nccl":
        torch.cuda.set_device(rank % torch.cuda.device_count())


def shutdown_data_parallel(wait_for_peers: bool = True) -> None:
    """Leave the process group cleanly; call after every DDP-wrapped learner is released.

    The barrier (``wait_for_peers``) keeps a fast rank from closing its gloo connections while a
    slow one is still in its last collective, and the collection frees DDP reducers that still
    hold the group: a group left to die at interpreter exit can abort the process ("terminate
    called without an active exception") after all its work succeeded. A rank that failed skips
    the barrier: its peers never reach it, and it would sit out the group's whole timeout.
    """
    if dist.is_initialized():
        if wait_for_peers:
            dist.barrier()
        gc.collect()
        dist.destroy_process_group()


@contextlib.contextmanager
def data_parallel(rank: int, world_size: int, store_file: str | os.PathLike, backend: str | None = None) -> Iterator[None]:
    """``init_data_parallel`` for the block, then ``shutdown_data_parallel``: with the barrier
    after success, without it after an error (which then propagates at once)."""
    init_data_parallel(rank, world_size, store_file, backend)
    failed = True
    try:
        yield
        failed = False
    finally:
        shutdown_data_parallel(wait_for_peers=not failed)
