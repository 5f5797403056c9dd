"""LiveState: validation, snapshots, histories, waiting across threads."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from robot_stack.dashboard import LiveState

from dash_helpers import frame


def test_frames_are_kept_latest_only_and_encoded_once():
    live = LiveState()
    assert live.frame_jpeg("front") is None
    live.publish_frame("front", frame(1), seq=10)
    assert live.publish_frame("front", frame(2)) == 11  # default seq: previous + 1
    seq, _stamp, jpeg = live.frame_jpeg("front")
    assert seq == 11 and jpeg[:2] == b"\xff\xd8"
    assert live.frame_jpeg("front")[2] is jpeg  # cached, not re-encoded
    live.publish_frame("gray", np.zeros((4, 5), np.uint8))
    assert live.cameras()["gray"]["width"] == 5


@pytest.mark.parametrize("camera,image", [
    ("front", np.zeros((4, 4, 3), np.float32)), ("front", np.zeros((4, 4, 4), np.uint8)),
    ("front", np.zeros((0, 4, 3), np.uint8)), ("../x", np.zeros((4, 4, 3), np.uint8)),
    ("", np.zeros((4, 4, 3), np.uint8)), ("a b", np.zeros((4, 4, 3), np.uint8)),
])
def test_bad_frames_are_rejected_with_a_clear_error(camera, image):
    with pytest.raises(ValueError, match="camera"):
        LiveState().publish_frame(camera, image)


@pytest.mark.parametrize("prob,threshold", [(float("nan"), 0.5), (0.5, float("inf")), (1.5, 0.5), (0.5, -0.1)])
def test_bad_success_messages_are_rejected(prob, threshold):
    live = LiveState()
    with pytest.raises(ValueError):
        live.publish_success("t", prob, threshold)
    assert live.snapshot()["success"] is None


def test_success_history_is_bounded_in_time():
    now = [1000.0]
    live = LiveState(history_s=10.0, clock=lambda: now[0])
    for i in range(30):
        now[0] = 1000.0 + i
        live.publish_success("t", 0.1, 0.85)
    hist = live.success_history()
    assert hist[0][0] >= now[0] - 10 and hist[-1][0] == now[0] and len(hist) == 11
    assert [h[0] for h in live.success_history(since=1027.0)] == [1028.0, 1029.0]


def test_snapshot_merges_session_state_policy_version_and_intervention():
    live = LiveState()
    live.publish_session_state({"task_id": "a", "phase": "forward", "policy_version": 1, "intervening": True, "extra": 5})
    s = live.snapshot()
    assert s["policy_version"] == 1 and s["intervening"] is True and s["session"]["extra"] == 5
    assert s["session"]["paused"] is None  # every TOPICS.md key is present
    live.publish_policy_version(4)  # the learner has a newer checkpoint than the actor runs
    live.publish_intervening(False)
    s = live.snapshot()
    assert s["policy_version"] == 1 and s["learner_policy_version"] == 4 and s["intervening"] is False
    live.publish_session_state({"policy_version": 4})
    assert live.snapshot()["policy_version"] == 4
    only_learner = LiveState()
    only_learner.publish_policy_version(2)
    assert only_learner.snapshot()["policy_version"] == 2
    with pytest.raises(ValueError):
        live.publish_policy_version(-1)
    with pytest.raises(ValueError):
        live.publish_session_state(["not", "a", "dict"])


def test_learner_metrics_history_keeps_numbers_only():
    live = LiveState(metrics_history=3)
    for i in range(5):
        live.publish_learner_metrics({"updates": i, "losses/critic": 0.5, "note": "text", "flag": True})
    hist = live.metrics_history()
    assert [h["updates"] for h in hist] == [2, 3, 4] and "note" not in hist[0] and "flag" not in hist[0]
    assert live.snapshot()["learner"]["note"] == "text"


def test_wait_wakes_on_publish_from_another_thread():
    live = LiveState()
    v = live.version
    threading.Timer(0.05, lambda: live.publish_intervening(True)).start()
    t0 = time.monotonic()
    assert live.wait(v, timeout=5) != v
    assert time.monotonic() - t0 < 2


def test_wait_async_wakes_on_publish_from_another_thread():
    live = LiveState()

    async def main():
        v = live.version
        threading.Timer(0.05, lambda: live.publish_frame("front", frame(0))).start()
        t0 = time.monotonic()
        got = await live.wait_async(v, 5)
        return got != v, time.monotonic() - t0

    changed, dt = asyncio.run(main())
    assert changed and dt < 2
    assert asyncio.run(live.wait_async(live.version, 0.05)) == live.version  # timeout path
