"""Episode-store benchmark: write rate, commit-to-visible latency across processes, bytes per
frame, replay sampling rate and sampling vs. the Cal-QL learner's consumption.

Frames: two 128x128 RGB cameras + 15-dim state + 7-dim action, whole-episode commits of 100
steps. The write rate uses pre-generated sim-like shaded scenes (``robot_stack.store.synthetic``,
no sensor noise) so rendering is not timed; bytes per frame are also measured on real MuJoCo
renders of the simulated WidowX 250 cube/bowl scene (``hardware.sim``) driven by its expert. Progress goes to stderr; the last stdout line is one JSON object.

    python bench/store.py            # full run
    python bench/store.py --quick    # smoke-test size
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

CAMS = {"front": (128, 128), "wrist": (128, 128)}
STATE_DIM = 15


def log(msg: str) -> None:
    print(f"[bench/store] {msg}", file=sys.stderr, flush=True)


def dir_bytes(path: pathlib.Path, sub: str = "") -> int:
    return sum(p.stat().st_size for p in (path / sub).rglob("*") if p.is_file())


def episode_pool(n_distinct: int, steps: int):
    from robot_stack.store.synthetic import synthetic_episode

    return [synthetic_episode(steps, CAMS, STATE_DIM, seed=k, intervention_span=(10, 20) if k % 2 else None)
            for k in range(n_distinct)]


def bench_write(store, pool, n_episodes: int) -> tuple[float, int]:
    from robot_stack.store import EpisodeMeta

    w = store.writer("bench-robot", {"arm": "widowx250 (synthetic)"}, CAMS, STATE_DIM, flush_interval_s=3.0)
    frames = 0
    c0 = time.process_time()  # CPU of all threads (zarr compresses on worker threads)
    t0 = time.perf_counter()
    for k in range(n_episodes):
        ep = w.begin_episode(EpisodeMeta(task_id="cube_into_bowl", phase="forward" if k % 2 == 0 else "backward"))
        for step in pool[k % len(pool)]:
            ep.add_step(**step)
        ep.commit(outcome="success")
        frames += len(pool[k % len(pool)])
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    w.close()
    return frames / dt, frames, cpu / frames


def bench_latency(url: str, pool, n_episodes: int, steps: int) -> dict:
    from robot_stack.store import EpisodeMeta, EpisodeStore

    tailer = subprocess.Popen([sys.executable, __file__, "--tailer", url, "--count", str(n_episodes)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = tailer.stdout.readline()
    if "ready" not in ready:
        raise RuntimeError(f"tailer failed: {tailer.stderr.read()}")
    store = EpisodeStore.open(url)
    w = store.writer("latency-robot", {}, CAMS, STATE_DIM)
    committed, started = {}, {}
    for k in range(n_episodes):
        ep = w.begin_episode(EpisodeMeta(task_id="cube_into_bowl"))
        for step in pool[k % len(pool)][:steps]:
            ep.add_step(**step)
        t_call = time.time()
        eid = ep.commit(outcome="success")
        committed[eid] = time.time()
        started[eid] = t_call
        time.sleep(0.15)
    w.close()
    out, err = tailer.communicate(timeout=120)
    seen = {}
    for line in out.splitlines():
        d = json.loads(line)
        seen[d["visible"]] = d["t"]
    missing = set(committed) - set(seen)
    if missing:
        raise RuntimeError(f"tailer never saw {sorted(missing)}: {err[-2000:]}")
    lat = np.array([seen[e] - committed[e] for e in committed])
    lat_call = np.array([seen[e] - started[e] for e in committed])
    return {
        "commit_to_visible_p50_s": float(np.percentile(lat, 50)),
        "commit_to_visible_p99_s": float(np.percentile(lat, 99)),
        "commit_call_to_visible_p99_s": float(np.percentile(lat_call, 99)),
    }


def bench_mujoco_bytes(store, url: str, n_episodes: int, steps: int) -> dict:
    """Bytes per frame on real MuJoCo renders: the simulated WidowX 250 cube/bowl scene, expert rollouts."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        from hardware.sim.scenes import make_scene
    except Exception as exc:  # the sim package is optional for this benchmark
        return {"mujoco_note": f"hardware.sim unavailable: {exc}"}
    from robot_stack.store import EpisodeMeta

    scene = make_scene("widowx250_cube_bowl", seed=0, image_size=128)
    rng = np.random.default_rng(0)
    state_dim = None
    w = None
    frames = 0
    for k in range(n_episodes):
        task = scene.tasks[k % 2]
        scene.randomize(rng, task_id=task.id)
        expert = scene.expert(task.id, noise=0.1, rng=rng)
        steps_data = []
        for t in range(steps):
            obs = scene.arm.get_observation()
            state = np.concatenate([obs.joint_positions, obs.ee_pose, [obs.gripper]]).astype(np.float32)
            images = {cam: scene.render(cam) for cam in CAMS}
            sent = scene.step(expert(obs))
            action = np.asarray(sent.action if sent is not None else np.zeros(7), np.float32)
            steps_data.append((images, state, action))
        if w is None:
            state_dim = len(steps_data[0][1])
            w = store.writer("mujoco-widowx250", {"arm": "widowx250 (MuJoCo sim)"}, CAMS, state_dim)
        ep = w.begin_episode(EpisodeMeta(task_id=task.id, instruction=task.instruction, phase=task.phase))
        for t, (images, state, action) in enumerate(steps_data):
            ep.add_step(images=images, state=state, action=action, timestamp=float(t), truncated=t == steps - 1)
        ep.commit()
        frames += steps
    w.close()
    group = pathlib.Path(url) / "mujoco-widowx250"
    images = sum(dir_bytes(group, f"data/image_{c}") for c in CAMS)
    return {"bytes_per_frame_mujoco": dir_bytes(group) / frames, "bytes_per_image_mujoco": images / (frames * len(CAMS)),
            "mujoco_frames": frames}


def tailer_main(url: str, count: int) -> int:
    from robot_stack.store import EpisodeStore

    store = EpisodeStore.open(url, read_only=True)
    cursor = store.cursor(at_end=True)
    print(json.dumps({"ready": True}), flush=True)
    n = 0
    deadline = time.monotonic() + 300
    for info in store.follow(cursor, poll_s=0.05, robot_discovery_s=0.2, stop=lambda: n >= count or time.monotonic() > deadline):
        print(json.dumps({"visible": info.episode_id, "t": time.time()}), flush=True)
        n += 1
    return 0


def bench_sampling(store, seconds: float, batch_size: int, image_size: int = 0, cameras=()) -> tuple[float, object]:
    from policies.replay import ReplayConfig
    from robot_stack.learner.replay_loader import ReplayLoader, ReplayLoaderConfig

    loader = ReplayLoader(store, ReplayLoaderConfig(replay=ReplayConfig(capacity=20_000), image_size=image_size,
                                                    cameras=tuple(cameras), prior_ratio=0.0, online_ratio=0.5,
                                                    intervention_ratio=0.5, robots=("bench-robot",)))
    loader.load_new()
    replay = loader.replay()
    rng = np.random.default_rng(0)
    replay.sample(batch_size, rng)
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        replay.sample(batch_size, rng)
        n += 1
    return n * batch_size / (time.perf_counter() - t0), replay


def bench_learner(store, quick: bool) -> dict:
    """Sampling rate ÷ the Cal-QL learner's consumption at its CPU preset, in this run."""
    try:
        import torch

        from policies.calql import CalQLLearner
        from policies.config import LearnerConfig
    except ImportError as exc:
        return {"sample_over_update_ratio": None, "learner_note": f"no Cal-QL learner importable: {exc}"}
    cfg = LearnerConfig.cpu(**{"network.image_keys": ("front",), "network.state_dim": STATE_DIM})
    size, bs = cfg.network.encoder.image_size, cfg.batch_size
    sample_rate, replay = bench_sampling(store, 0.5 if quick else 3.0, bs, image_size=size, cameras=("front",))
    learner = CalQLLearner(cfg)
    rng = np.random.default_rng(0)
    learner.update(replay.sample(bs, rng))  # warm-up
    n = 1 if quick else 3
    t0 = time.perf_counter()
    for _ in range(n):
        learner.update(replay.sample(bs, rng))
    dt = (time.perf_counter() - t0) / n
    consumption = bs / dt
    return {
        "sample_over_update_ratio": sample_rate / consumption,
        "learner_update_s": dt,
        "learner_transitions_per_s": consumption,
        "learner_config": f"LearnerConfig.cpu(): {size}x{size} images, batch {bs}, torch threads {torch.get_num_threads()}",
        "sample_per_s_at_learner_config": sample_rate,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes for a smoke test")
    p.add_argument("--dir", default=None, help="where to put the store (default: a temp dir, removed after)")
    p.add_argument("--tailer", default=None, help=argparse.SUPPRESS)
    p.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.tailer:
        return tailer_main(args.tailer, args.count)

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from robot_stack.store import EpisodeStore

    quick = args.quick
    root = pathlib.Path(args.dir or tempfile.mkdtemp(prefix="bench-store-"))
    url = str(root / "episodes.zarr")
    result: dict = {"quick": quick, "images": "write rate: synthetic sim-like shaded tabletop scenes (robot_stack.store.synthetic); "
                    "bytes: MuJoCo renders of hardware.sim widowx250_cube_bowl with the scripted expert; 2 cameras 128x128 RGB"}
    try:
        steps = 100
        log("generating sim-like episodes")
        pool = episode_pool(2 if quick else 6, steps)
        store = EpisodeStore.create(url)
        n_write = 3 if quick else 30
        log(f"writing {n_write} episodes x {steps} frames")
        fps, frames, cpu_per_frame = bench_write(store, pool, n_write)
        group = pathlib.Path(url) / "bench-robot"
        total = dir_bytes(group)
        images = sum(dir_bytes(group, f"data/image_{c}") for c in CAMS)
        log("bytes per frame on real MuJoCo renders (hardware.sim widowx250_cube_bowl)")
        mujoco = bench_mujoco_bytes(store, url, 2 if quick else 6, 40 if quick else 60)
        synthetic_bpf = total / frames
        result.update({
            "write_frames_per_s": fps,
            # Load-independent view of the same run: frames per second of CPU the writer used.
            "write_cpu_ms_per_frame": 1000 * cpu_per_frame,
            "write_frames_per_cpu_s": 1.0 / cpu_per_frame,
            "frames_written": frames,
            # Headline: real MuJoCo renders when the sim is importable, else the synthetic scenes.
            "bytes_per_frame": mujoco.get("bytes_per_frame_mujoco", synthetic_bpf),
            "bytes_source": "mujoco renders" if "bytes_per_frame_mujoco" in mujoco else "synthetic",
            "bytes_per_frame_synthetic": synthetic_bpf,
            "bytes_per_image_synthetic": images / (frames * len(CAMS)),
            **mujoco,
        })
        log(f"write {fps:.0f} frames/s, {total / frames:.0f} B/frame")
        n_lat = 4 if quick else 40
        log(f"commit-to-visible latency over {n_lat} episodes (tailer in another process)")
        result.update(bench_latency(url, pool, n_lat, 30))
        log("replay sampling (batches of 256, 128x128, both cameras)")
        rate, _ = bench_sampling(store, 0.5 if quick else 3.0, 256)
        result["sample_per_s"] = rate
        log("Cal-QL learner consumption")
        result.update(bench_learner(store, quick))
        result["note"] = "shared 2-core machine: timings are noisy"
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
