"""Trainer: runs N learner updates on batches from a replay, with stats and checkpoints."""

from __future__ import annotations

import queue
import threading
import time
from collections import defaultdict
from typing import Callable, Mapping

import numpy as np
import torch.distributed as dist
from tqdm import tqdm

from policies.checkpoint import CheckpointManager


class Trainer:
    """Drives ``learner.update`` with batches from ``replay`` (ReplayBuffer or MixedReplay).

    ``run(n)`` does n updates and returns the mean of every stat over them plus
    ``time/updates_per_s``; ``checkpoint(metrics)`` writes a version through ``checkpoints``.
    In data-parallel runs each rank draws its own batches (seeded by ``seed + rank``) and only
    rank 0 writes checkpoints. ``prefetch`` (default: 2 on CUDA, 0 on CPU) batches are prepared by
    a background thread; add episodes to the replay between ``run`` calls, not during one.
    """

    def __init__(
        self,
        learner,
        replay,
        *,
        batch_size: int | None = None,
        seed: int = 0,
        checkpoints: CheckpointManager | None = None,
        on_stats: Callable[[int, Mapping[str, float]], None] | None = None,
        stats_every: int = 100,
        prefetch: int | None = None,
    ):
        self.learner = learner
        self.replay = replay
        self.batch_size = int(batch_size or learner.config.batch_size)
        self.rank = dist.get_rank() if learner.distributed else 0
        self.rng = np.random.default_rng(seed + self.rank)
        self.checkpoints = checkpoints
        self.on_stats = on_stats
        self.stats_every = stats_every
        if prefetch is None:  # overlap sampling + host-to-device copies with GPU updates; pointless on CPU
            prefetch = 2 if learner.device.type == "cuda" else 0
        if prefetch < 0:
            raise ValueError(f"prefetch must be >= 0, got {prefetch!r}")
        self.prefetch = prefetch

    def _batches(self, n: int):
        """Yield (device batch, seconds spent sampling) n times; with ``prefetch`` > 0 a thread
        samples and copies the next batches to the device while the current update runs (the
        same rng sequence, so the batches are identical to the unthreaded path)."""
        if self.prefetch == 0:
            for _ in range(n):
                ts = time.perf_counter()
                tb = self.learner.to_torch(self.replay.sample(self.batch_size, self.rng))
                yield tb, time.perf_counter() - ts
            return
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def produce():
            try:
                for _ in range(n):
                    if stop.is_set():
                        return
                    q.put((self.learner.to_torch(self.replay.sample(self.batch_size, self.rng)), None))
            except BaseException as e:  # surfaced in the consumer
                q.put((None, e))

        worker = threading.Thread(target=produce, name="replay-prefetch", daemon=True)
        worker.start()
        try:
            for _ in range(n):
                ts = time.perf_counter()
                tb, err = q.get()
                if err is not None:
                    raise err
                yield tb, time.perf_counter() - ts
        finally:
            stop.set()
            while worker.is_alive():  # unblock a producer waiting on a full queue
                try:
                    q.get_nowait()
                except queue.Empty:
                    pass
                worker.join(timeout=0.05)

    def run(self, num_updates: int, *, progress: bool = False) -> dict[str, float]:
        """Do ``num_updates`` updates; returns mean stats, ``time/updates_per_s`` and
        ``time/sample_fraction`` (share of the wall time spent waiting for batches)."""
        if num_updates <= 0:
            return {}
        sums: dict[str, float] = defaultdict(float)
        sample_s = 0.0
        t0 = time.perf_counter()
        bar = tqdm(range(num_updates), desc=f"{self.learner.kind} updates", disable=not progress or self.rank != 0, leave=False)
        batches = self._batches(num_updates)
        for i in bar:
            tb, waited = next(batches)
            sample_s += waited
            stats = self.learner.update(tb)
            for k, v in stats.items():
                sums[k] += v
            if self.on_stats is not None and (i + 1) % self.stats_every == 0:
                self.on_stats(self.learner.step, stats)
        batches.close()
        elapsed = time.perf_counter() - t0
        out = {k: v / num_updates for k, v in sums.items()}
        out["time/updates_per_s"] = num_updates / elapsed
        out["time/sample_fraction"] = sample_s / elapsed
        return out

    def checkpoint(self, metrics: Mapping | None = None, data_seen: Mapping | None = None, extra: Mapping | None = None):
        """Write a checkpoint version (rank 0 only); returns its path or None. ``extra``: JSON-able
        facts the caller keeps with it (e.g. the task ids in the policy's task-index order)."""
        if self.checkpoints is None or self.rank != 0:
            return None
        seen = {"updates": self.learner.step, "samples": self.learner.samples_seen}
        seen.update(data_seen or {})
        return self.checkpoints.save(self.learner, metrics=metrics, data_seen=seen, extra=extra)
