"""Transport benchmark: our node runtime over Cyclone DDS between two processes on loopback.

Measures (last stdout line is one JSON object):
- ``image128_p50_ms`` / ``image128_p99_ms`` / ``image640_*``: publish→callback latency of rgb8
  images (128x128 and 640x480) at 30 Hz, sensor-data QoS (best effort, keep last 5). The stamp
  is ``time.time_ns()`` taken just before ``publish`` (serialization included); the receiver
  subtracts it from its own ``time.time_ns()`` in the callback (same machine, same clock).
- ``jointstate_msgs_per_s`` / ``jointstate_lost``: 7-joint JointState messages offered at
  ``--js-rate`` (default 4000/s, in chunks of 10), reliable, keep last ``--js-depth`` (default
  10 = rmw's default QoS: a receiver descheduled for > depth/rate seconds loses samples); rate = received count over the receive window; lost = sent - received (sequence
  numbers in ``header.frame_id``). Flooding back to back instead only measures how fast the
  keep-last-10 reader history overflows, so the offered rate is explicit.

Usage: ``python bench/transport.py [--quick]`` (quick: fewer frames, a smaller burst).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from robot_stack.runtime import Node, Runtime, msgs, qos
from robot_stack.runtime.dds import isolated_env

TOPICS = {"image128": (128, 128), "image640": (640, 480)}


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def receiver(js_depth: int) -> int:
    """Child process: record latencies and JointState arrivals; print them as JSON on 'done'."""
    lat: dict[str, list[float]] = {k: [] for k in TOPICS}
    js_seen: set[int] = set()
    js_times: list[float] = []
    with Runtime(backend="cyclonedds") as rt:
        node = rt.create_node(Node, name="bench_receiver")

        def on_image(key):
            def cb(msg: msgs.Image) -> None:
                lat[key].append((time.time_ns() - msg.header.stamp.to_ns()) / 1e6)
            return cb

        def on_js(msg: msgs.JointState) -> None:
            js_seen.add(int(msg.header.frame_id))
            js_times.append(time.perf_counter())

        for key in TOPICS:
            node.create_subscription(msgs.Image, f"bench/{key}", on_image(key), qos.SENSOR_DATA)
        node.create_subscription(msgs.JointState, "bench/joints", on_js, qos.QoSProfile(depth=js_depth))
        node.create_subscription(msgs.String, "bench/done", lambda m: rt.request_shutdown(), qos.DEFAULT)
        rt.spin(timeout_s=600)
    window = (js_times[-1] - js_times[0]) if len(js_times) > 1 else 0.0
    print(json.dumps({"latency_ms": lat, "js_received": len(js_seen), "js_window_s": window}), flush=True)
    return 0


def sender(quick: bool, js_rate: float, frames: int | None = None, js_depth: int = 10) -> dict:
    n_frames = frames or (60 if quick else 600)
    n_js = 3000 if quick else 20000
    env = {**os.environ, **isolated_env()}
    if os.environ.get("BENCH_CYCLONEDDS_URI"):  # try other Cyclone settings without editing code
        env["CYCLONEDDS_URI"] = os.environ["BENCH_CYCLONEDDS_URI"]
    os.environ.update(env)
    child = subprocess.Popen([sys.executable, __file__, "--role", "receiver", "--js-depth", str(js_depth)], env=env,
                             stdout=subprocess.PIPE, text=True)
    try:
        with Runtime(backend="cyclonedds") as rt:
            node = rt.create_node(Node, name="bench_sender")
            pubs = {k: node.create_publisher(msgs.Image, f"bench/{k}", qos.SENSOR_DATA) for k in TOPICS}
            js_pub = node.create_publisher(msgs.JointState, "bench/joints", qos.QoSProfile(depth=js_depth))
            done = node.create_publisher(msgs.String, "bench/done", qos.DEFAULT)
            everyone = [*pubs.values(), js_pub, done]
            if not rt.spin_until(lambda: all(p.get_subscription_count() for p in everyone), 30):
                raise RuntimeError("receiver never matched")
            time.sleep(0.5)
            rng = np.random.default_rng(0)
            for key, (w, h) in TOPICS.items():
                img = msgs.Image.from_numpy(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "rgb8",
                                            msgs.Header(frame_id="bench"))
                log(f"{key}: {n_frames} frames at 30 Hz")
                t_next = time.perf_counter()
                for _ in range(n_frames):
                    img.header.stamp = msgs.Time.from_ns(time.time_ns())
                    pubs[key].publish(img)
                    t_next += 1 / 30
                    time.sleep(max(0.0, t_next - time.perf_counter()))
            log(f"jointstate: {n_js} messages at {js_rate:g}/s")
            js = msgs.JointState(name=[f"joint{i}" for i in range(7)], position=np.zeros(7),
                                 velocity=np.zeros(7), effort=np.zeros(7))
            chunk = 10
            t0 = t_next = time.perf_counter()
            for i in range(n_js):
                js.header = msgs.Header(stamp=msgs.Time.from_ns(time.time_ns()), frame_id=str(i))
                js.position = rng.normal(size=7)
                js_pub.publish(js)
                if i % chunk == chunk - 1:
                    t_next += chunk / js_rate
                    time.sleep(max(0.0, t_next - time.perf_counter()))
            log(f"jointstate: sent in {time.perf_counter() - t0:.2f} s")
            time.sleep(1.0)  # let reliable retransmissions finish
            done.publish(msgs.String(data="done"))
            out, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    res = json.loads(out.strip().splitlines()[-1])
    result: dict = {}
    for key in TOPICS:
        lat = np.asarray(res["latency_ms"][key])
        result[f"{key}_p50_ms"] = round(float(np.percentile(lat, 50)), 3) if lat.size else None
        result[f"{key}_p99_ms"] = round(float(np.percentile(lat, 99)), 3) if lat.size else None
        result[f"{key}_received"] = int(lat.size)
        result[f"{key}_sent"] = n_frames
    window = res["js_window_s"]
    result["jointstate_msgs_per_s"] = round(res["js_received"] / window, 1) if window > 0 else None
    result["jointstate_lost"] = n_js - res["js_received"]
    result["jointstate_sent"] = n_js
    result["jointstate_offered_per_s"] = js_rate
    result["jointstate_qos_depth"] = js_depth
    result["quick"] = quick
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short run (smoke test)")
    parser.add_argument("--frames", type=int, default=None, help="images per size (default 600, quick 60)")
    parser.add_argument("--js-rate", type=float, default=4000.0, help="offered JointState messages per second")
    parser.add_argument("--js-depth", type=int, default=10,
                        help="JointState reliable keep-last depth (10 = rmw default QoS)")
    parser.add_argument("--role", choices=["sender", "receiver"], default="sender", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "receiver":
        return receiver(args.js_depth)
    print(json.dumps(sender(args.quick, args.js_rate, args.frames, args.js_depth)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
