"""Benchmark: Cal-QL learner updates/s and FLOP utilisation (last stdout line = one JSON object).

Full-size config (``LearnerConfig.gpu()``: one 128x128 camera + 15-d proprio, batch 256) on
``--device``; FLOPs of one update counted with ``torch.utils.flop_counter.FlopCounterMode``;
``flop_utilization`` = FLOPs/update x updates/s / the dense matmul FLOP/s torch reaches on the
same device in the same run (bf16 matmul on CUDA where the learner autocasts to bf16, fp32 on
CPU). Also: the CPU preset's updates/s (``LearnerConfig.cpu()``) and replay sampling rate.

    python bench/learner.py [--device auto|cpu|cuda] [--quick]

Progress goes to stderr. On a shared CPU the numbers are noisy (other processes compete).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from policies.calql import CalQLLearner  # noqa: E402
from policies.config import LearnerConfig  # noqa: E402
from policies.replay import ReplayBuffer  # noqa: E402
from policies.trainer import Trainer  # noqa: E402


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def make_replay(image_size: int, state_dim: int, steps: int, rng: np.random.Generator) -> ReplayBuffer:
    buf = ReplayBuffer(capacity=steps + 64)
    T = 50
    for e in range(max(1, steps // T)):
        success = e % 2 == 0
        buf.add_episode({
            "image": rng.integers(0, 256, (T, image_size, image_size, 3), dtype=np.uint8),
            "state": rng.normal(size=(T, state_dim)).astype(np.float32),
            "action": rng.uniform(-1, 1, (T, 7)).astype(np.float32),
            "reward": np.r_[np.zeros(T - 1), float(success)].astype(np.float32),
            "terminal": np.r_[np.zeros(T - 1), success].astype(bool),
            "truncated": np.r_[np.zeros(T - 1), not success].astype(bool),
            "task": np.full(T, e % 2),
        })
    return buf


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_flops_per_s(device: torch.device, dtype: torch.dtype, seconds: float) -> float:
    """Dense square matmul throughput torch reaches here (the utilisation denominator)."""
    n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    sync(device)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
        if device.type == "cuda" and reps % 10:
            continue
        sync(device)
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def time_updates(learner, replay, batch_size: int, n: int, warmup: int) -> tuple[float, float]:
    """(updates/s, fraction of wall time waiting for batches) over ``n`` updates after ``warmup``,
    through the same ``Trainer`` the learner service uses (batch prefetch thread on CUDA)."""
    trainer = Trainer(learner, replay, batch_size=batch_size, seed=1)
    trainer.run(warmup)
    sync(learner.device)
    t0 = time.perf_counter()
    stats = trainer.run(n, progress=True)
    sync(learner.device)
    return n / (time.perf_counter() - t0), stats["time/sample_fraction"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--quick", action="store_true", help="short smoke run: batch 8, 2 timed updates (numbers not meaningful)")
    p.add_argument("--batch", type=int, default=256, help="full-size batch")
    p.add_argument("--updates", type=int, default=0, help="timed updates (0 = auto per device)")
    p.add_argument("--compile", default="auto", choices=("auto", "on", "off"), help="torch.compile of the networks")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = every core we may use)")
    args = p.parse_args(argv)

    rng = np.random.default_rng(0)
    batch = 8 if args.quick else args.batch
    cfg = LearnerConfig.gpu(device=args.device, batch_size=batch, compile=args.compile, num_threads=args.threads)
    side = cfg.network.encoder.image_size
    learner = CalQLLearner(cfg)
    device = learner.device
    on_gpu = device.type == "cuda"
    n = args.updates or (2 if args.quick else (200 if on_gpu else 4))
    warmup = 1 if args.quick else (20 if on_gpu else 1)
    log(f"device={device} threads={torch.get_num_threads()} batch={batch} image={side} amp={learner.amp}")

    replay = make_replay(side, cfg.network.state_dim, 400 if args.quick else 2000, rng)
    # FLOPs of one update (forward + backward of every network, all optimiser-free matmuls/convs).
    learner.update(replay.sample(batch, rng))
    with FlopCounterMode(display=False) as counter:
        learner.update(replay.sample(batch, rng))
    flops = counter.get_total_flops()
    log(f"FLOPs/update: {flops / 1e9:.1f} GFLOP")

    ups, sample_frac = time_updates(learner, replay, batch, n, warmup)
    peak = matmul_flops_per_s(device, torch.bfloat16 if learner.amp else torch.float32, 0.5 if args.quick else 3.0)
    util = flops * ups / peak
    log(f"full size: {ups:.3f} updates/s, matmul peak {peak / 1e9:.1f} GFLOP/s, utilisation {util:.2f}")

    # CPU preset (what the simulated default trains with).
    cpu_cfg = LearnerConfig.cpu(num_threads=args.threads)
    if args.quick:
        cpu_cfg.batch_size = 8
    cpu_learner = CalQLLearner(cpu_cfg)
    cpu_side = cpu_cfg.network.encoder.image_size
    cpu_replay = make_replay(cpu_side, cpu_cfg.network.state_dim, 400 if args.quick else 2000, rng)
    cpu_learner.update(cpu_replay.sample(cpu_cfg.batch_size, rng))
    with FlopCounterMode(display=False) as counter:
        cpu_learner.update(cpu_replay.sample(cpu_cfg.batch_size, rng))
    cpu_flops = counter.get_total_flops()
    cpu_ups, _ = time_updates(cpu_learner, cpu_replay, cpu_cfg.batch_size, 2 if args.quick else 20, 1)
    cpu_peak = peak if device.type == "cpu" else matmul_flops_per_s(torch.device("cpu"), torch.float32, 1.0)
    log(f"cpu preset: {cpu_ups:.2f} updates/s at batch {cpu_cfg.batch_size}, {cpu_side}px")

    # Replay sampling rate at batch 256 of 64x64 images (what the learner's data path must beat).
    samp_replay = cpu_replay if cpu_side == 64 else make_replay(64, 15, 2000, rng)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < (0.3 if args.quick else 2.0):
        samp_replay.sample(256, rng)
        reps += 1
    samples_per_s = 256 * reps / (time.perf_counter() - t0)

    result = {
        "bench": "learner",
        "quick": args.quick,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if on_gpu else "cpu",
        "threads": torch.get_num_threads(),
        "batch": batch,
        "image_size": side,
        "updates_per_s": round(ups, 4),
        "flops_per_update": flops,
        "matmul_flops_per_s": peak,
        "flop_utilization": round(util, 4),
        "sample_time_fraction": round(sample_frac, 4),
        "amp_bf16": learner.amp,
        "compiled": learner.compiled,
        "cpu_preset_updates_per_s": round(cpu_ups, 3),
        "cpu_preset_batch": cpu_cfg.batch_size,
        "cpu_preset_image_size": cpu_side,
        "cpu_preset_flop_utilization": round(cpu_flops * cpu_ups / cpu_peak, 4),
        "replay_samples_per_s_b256_64px": round(samples_per_s),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
