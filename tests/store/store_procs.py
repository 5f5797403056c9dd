"""Helper programs the store tests run as separate OS processes (writer, checking reader, tailer).

Run as ``python tests/store/store_procs.py <mode> ...``. Every frame a writer writes is
self-describing (state[0] = episode number + 1, state[1] = step, timestamp > 0, image pixel
[0, 0, 0] = 1 + step % 250), so a reader can tell a zero-filled or foreign row from a real one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from robot_stack.store import EpisodeMeta, EpisodeStore

CAMS = {"front": (24, 32), "wrist": (16, 16)}
STATE_DIM = 6


def make_step(ep_number: int, t: int, last: bool) -> dict:
    images = {}
    for c, (h, w) in CAMS.items():
        img = np.full((h, w, 3), 40 + (ep_number * 7 + t) % 200, dtype=np.uint8)
        img[0, 0, 0] = 1 + t % 250
        images[c] = img
    state = np.zeros(STATE_DIM, np.float32)
    state[0], state[1] = ep_number + 1, t
    return dict(images=images, state=state, action=np.full(7, 0.1, np.float32), reward=float(last),
                success_prob=0.5, intervention=(t % 5 == 0), policy_version=ep_number % 4,
                timestamp=1.0 + ep_number * 1000 + t, terminal=last, truncated=False)


def check_episode(ep) -> None:
    """Raise AssertionError if a read-back episode is not exactly what make_step wrote."""
    d = ep.data
    n = ep.info.length
    ep_number = int(d["state"][0, 0]) - 1
    assert ep_number >= 0, f"{ep.info.episode_id}: zero-filled state row"
    for t in range(n):
        exp = make_step(ep_number, t, t == n - 1)
        assert d["state"][t, 0] == ep_number + 1 and d["state"][t, 1] == t, f"{ep.info.episode_id}: bad state row {t}"
        assert d["timestamp"][t] == exp["timestamp"], f"{ep.info.episode_id}: bad timestamp row {t}"
        for c in CAMS:
            assert np.array_equal(d["images"][c][t], exp["images"][c]), f"{ep.info.episode_id}: bad image {c} row {t}"
    if ep.info.recovered:
        # A crash-flushed episode committed on restart ends either where the crash cut it (marked
        # truncated) or, if the crash came between its last step and its commit, at its real terminal.
        ends = (bool(d["terminal"][-1]), bool(d["truncated"][-1]))
        assert ends in ((True, False), (False, True)), f"{ep.info.episode_id}: recovered episode ends {ends}"
    else:
        assert bool(d["terminal"][-1]), f"{ep.info.episode_id}: last step not terminal"


def writer(args) -> int:
    store = EpisodeStore.create(args.url, storage_options=json.loads(args.storage_options or "{}"))
    w = store.writer(args.robot, {"kind": "test"}, CAMS, STATE_DIM, partial_policy=args.policy,
                     flush_interval_s=args.flush_s, takeover=True)
    print(json.dumps({"ready": True, "n_episodes": w.n_episodes}), flush=True)
    rng = np.random.default_rng(args.seed)
    k = w.n_episodes
    deadline = time.monotonic() + args.seconds
    while (args.episodes < 0 or k < args.episodes) and time.monotonic() < deadline:
        ep = w.begin_episode(EpisodeMeta(task_id="t", phase="forward" if k % 2 == 0 else "backward"))
        n = int(rng.integers(args.min_len, args.max_len + 1))
        for t in range(n):
            ep.add_step(**make_step(k, t, t == n - 1))
            if args.step_sleep:
                time.sleep(args.step_sleep)
        t_commit = time.time()
        eid = ep.commit(outcome="success")
        print(json.dumps({"committed": eid, "t": t_commit, "t_visible_write": time.time(), "length": n}), flush=True)
        k += 1
        if args.pause:
            time.sleep(args.pause)
    w.close()
    return 0


def reader(args) -> int:
    """Read every committed episode as it appears and check it; report counts as JSON."""
    store = EpisodeStore.open(args.url, storage_options=json.loads(args.storage_options or "{}"), read_only=True)
    cursor, seen, polls = None, 0, 0
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        new, cursor = store.poll(cursor)
        polls += 1
        for info in new:
            check_episode(store.read_episode(info))
            seen += 1
        # Also read everything below the marker in one slice: no zero-filled row may appear.
        for r in store.robots():
            n = store.robot_info(r)["commit"]["n_frames"]
            if n:
                ts = store._backend.read_frames(f"{r}/data/timestamp", 0, n)
                assert (ts > 0).all(), f"robot {r}: zero-filled timestamp below the commit marker"
        time.sleep(0.005)
    print(json.dumps({"seen": seen, "polls": polls}), flush=True)
    return 0


def tailer(args) -> int:
    """Print the wall time each new episode became visible to this process."""
    store = EpisodeStore.open(args.url, storage_options=json.loads(args.storage_options or "{}"), read_only=True)
    print(json.dumps({"ready": True}), flush=True)
    deadline = time.monotonic() + args.seconds
    count = 0
    for info in store.follow(store.cursor(at_end=True), poll_s=0.01, stop=lambda: time.monotonic() > deadline or count >= args.episodes):
        print(json.dumps({"visible": info.episode_id, "t": time.time()}), flush=True)
        count += 1
    return 0


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["writer", "reader", "tailer"])
    p.add_argument("url")
    p.add_argument("--robot", default="r1")
    p.add_argument("--episodes", type=int, default=-1)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--min-len", type=int, default=5)
    p.add_argument("--max-len", type=int, default=40)
    p.add_argument("--flush-s", type=float, default=0.05)
    p.add_argument("--step-sleep", type=float, default=0.0)
    p.add_argument("--pause", type=float, default=0.0)
    p.add_argument("--policy", default="recover")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--storage-options", default="")
    args = p.parse_args()
    return {"writer": writer, "reader": reader, "tailer": tailer}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
