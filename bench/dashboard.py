"""Dashboard benchmark: live frame latency (LiveState hand-over -> drawn in chromium) and page load time.

A publisher thread hands frames to LiveState with their sequence numbers and the wall-clock time;
the page logs each frame it draws as {cam, seq, t = performance.timeOrigin + performance.now()}
(the same wall clock on this machine); latency = drawn - handed over, per frame.
page_load_ms: navigation start -> page ready with the first live state, a camera frame and the
episode table drawn (median of several loads).

Usage: python bench/dashboard.py [--quick] [--seconds S] [--fps F] [--size H W] [--cameras N] [--image sim|noise]
Last stdout line: one JSON object. Targets: live_frame_latency_p95_ms <= 250, page_load_ms <= 1000.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import tempfile
import threading
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from robot_stack.dashboard import DashboardConfig, DashboardServer, LiveState, RecordingControlSink, create_app  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TOKEN = "bench-token-0123456789abcdef"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def make_store(path: pathlib.Path, n_episodes: int):
    from robot_stack.store import EpisodeMeta, EpisodeStore
    from robot_stack.store.synthetic import synthetic_episode

    store = EpisodeStore.create(str(path))
    cams = {"front": (128, 128)}
    with store.writer("bench-robot", {"arm": "sim"}, cameras=cams, state_dim=8) as w:
        for i in range(n_episodes):
            rec = w.begin_episode(EpisodeMeta(task_id=["cube_into_bowl", "cube_out_of_bowl"][i % 2],
                                              phase=["forward", "backward"][i % 2], eval=i % 5 == 4))
            for step in synthetic_episode(20, cams, 8, seed=i, success=i % 3 != 0):
                rec.add_step(**step)
            rec.commit(outcome="success" if i % 3 else "failure", source="classifier")
    return store


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short run for smoke tests")
    ap.add_argument("--seconds", type=float, default=None, help="seconds of live streaming measured")
    ap.add_argument("--fps", type=float, default=30.0, help="frames per second published per camera")
    ap.add_argument("--size", type=int, nargs=2, default=(128, 128), metavar=("H", "W"), help="camera image size")
    ap.add_argument("--cameras", type=int, default=2, help="number of cameras")
    ap.add_argument("--image", choices=["sim", "noise"], default="sim",
                    help="frame content: a rendered-looking scene with sensor noise (sim) or uniform noise "
                         "(worst case for JPEG: ~5x bigger frames than a camera's)")
    ap.add_argument("--loads", type=int, default=None, help="page loads timed")
    ap.add_argument("--episodes", type=int, default=None, help="episodes in the store the page lists")
    args = ap.parse_args(argv)
    seconds = args.seconds or (3.0 if args.quick else 15.0)
    loads = args.loads or (3 if args.quick else 10)
    n_episodes = args.episodes or (6 if args.quick else 60)
    h, w = args.size
    cams = [f"cam{i}" for i in range(args.cameras)]

    from playwright.sync_api import sync_playwright

    tmp = tempfile.TemporaryDirectory(prefix="bench-dashboard-")
    log(f"writing a store with {n_episodes} episodes ...")
    store = make_store(pathlib.Path(tmp.name) / "episodes.zarr", n_episodes)
    live = LiveState()
    app = create_app(DashboardConfig(token=TOKEN), store=store, live=live, control=RecordingControlSink())
    handed: dict[tuple[str, int], float] = {}
    stop = threading.Event()
    rng = np.random.default_rng(0)
    if args.image == "noise":
        base = rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)
    else:
        from robot_stack.store.synthetic import sim_like_images

        scene = sim_like_images(1, h, w)[0].astype(np.int16)
        base = np.clip(scene + rng.normal(0, 3, scene.shape).astype(np.int16), 0, 255).astype(np.uint8)

    def publisher() -> None:
        seq, period = 0, 1.0 / args.fps
        next_t = time.perf_counter()
        while not stop.is_set():
            img = np.roll(base, seq % w, axis=1)
            for cam in cams:
                t = time.time()
                live.publish_frame(cam, img, stamp=t, seq=seq)
                handed[(cam, seq)] = t
            live.publish_success("cube_into_bowl", float(seq % 100) / 100, 0.85)
            seq += 1
            next_t += period
            time.sleep(max(0.0, next_t - time.perf_counter()))

    pub = threading.Thread(target=publisher, daemon=True)
    result: dict = {}
    with DashboardServer(app) as srv, sync_playwright() as p:
        pub.start()
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            ready = ("() => window.__dash && window.__dash.ready && window.__dash.states > 0 && "
                     "window.__dash.framesDrawn > 0 && document.querySelectorAll('#ep-table tbody tr').length > 0")
            page.goto(f"{srv.url}/#token={TOKEN}")  # warm-up (first chromium page, imports on the server side)
            page.wait_for_function(ready, timeout=30000)
            load_ms = []
            for i in range(loads):
                t0 = time.perf_counter()
                page.goto(f"{srv.url}/?load={i}#token={TOKEN}")
                page.wait_for_function(ready, timeout=30000, polling=5)
                load_ms.append((time.perf_counter() - t0) * 1000)
            log(f"page loads (ms): {[round(x) for x in load_ms]}")
            page.evaluate("() => { window.__dash.frameLog.length = 0; }")
            log(f"streaming {seconds:.0f} s of {len(cams)} x {h}x{w} frames at {args.fps} fps ...")
            t_start = time.time()
            page.wait_for_timeout(seconds * 1000)
            t_end = time.time()
            drawn = page.evaluate("() => window.__dash.frameLog.slice()")
        finally:
            stop.set()
            browser.close()
    pub.join(2)
    lat = [d["t"] - handed[(d["cam"], d["seq"])] * 1000 for d in drawn if (d["cam"], d["seq"]) in handed]
    published = sum(1 for (c, s), t in handed.items() if t_start <= t <= t_end)
    result = {
        "live_frame_latency_p50_ms": round(percentile(lat, 50), 1),
        "live_frame_latency_p95_ms": round(percentile(lat, 95), 1),
        "live_frame_latency_max_ms": round(max(lat), 1) if lat else None,
        "frames_drawn": len(lat),
        "frames_published": published,
        "drawn_fps_per_camera": round(len(lat) / len(cams) / (t_end - t_start), 1),
        "page_load_ms": round(statistics.median(load_ms), 1),
        "page_load_p95_ms": round(percentile(load_ms, 95), 1),
        "cameras": len(cams), "image_size": [h, w], "image": args.image, "publish_fps": args.fps, "episodes": n_episodes,
        "seconds": seconds, "quick": args.quick,
    }
    result["targets_met"] = bool(result["live_frame_latency_p95_ms"] <= 250 and result["page_load_ms"] <= 1000)
    tmp.cleanup()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
