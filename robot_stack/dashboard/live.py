"""Live robot state the dashboard shows: the newest camera frames and the latest topic messages.

The ROS side (a dashboard node subscribing to the topics in TOPICS.md) or a test thread calls the
``publish_*`` methods from any thread; the web app reads snapshots and waits for changes. Nothing
here knows about ROS, so the dashboard runs and is tested without a graph.

Field names follow TOPICS.md: ``session/state`` keys (task_id, phase, episode, step,
policy_version, eval, intervening, paused, alert), ``reward/success`` data
([prob, threshold, decision, model_version] with the task id as label), ``learner/metrics`` keys
(updates, updates_per_s, losses/..., q/..., calibration_gap, data/...), ``arm/status`` keys
(estopped, watchdog_held, last_reason, connected).
"""

from __future__ import annotations

import asyncio
import collections
import io
import math
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
from PIL import Image

# The store's camera-id rule (letters, digits, '_' and '-', at most 64 characters).
CAMERA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_SESSION_KEYS = ("task_id", "phase", "episode", "step", "policy_version", "eval", "intervening", "paused", "alert")


def _finite(x: Any, what: str) -> float:
    v = float(x)
    if not math.isfinite(v):
        raise ValueError(f"{what} must be finite, got {x!r}")
    return v


def _json_safe(value: Any) -> Any:
    """Numbers/strings/bools/None and nested lists/dicts of them; NaN/inf become None (JSON has none)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_safe(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    return str(value)


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    """JPEG bytes of an RGB ``(H, W, 3)`` or grey ``(H, W)`` uint8 image."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


@dataclass
class _CameraSlot:
    image: np.ndarray  # (H, W, 3) uint8, the newest frame
    seq: int  # publisher's sequence number (or a local counter)
    stamp: float  # capture time, seconds (header.stamp / time.time() domain)
    received: float  # time.time() when handed to LiveState
    jpeg: bytes | None = None  # encoded lazily, once per frame
    lock: threading.Lock = field(default_factory=threading.Lock)


class LiveState:
    """Thread-safe in-memory live state; publishers call ``publish_*``, the web app reads.

    ``history_s`` bounds the success-probability line kept for the live chart; ``metrics_history``
    bounds the number of learner-metric messages kept for the learning charts.
    """

    def __init__(self, history_s: float = 120.0, metrics_history: int = 5000, jpeg_quality: int = 80,
                 clock: Callable[[], float] = time.time) -> None:
        if history_s <= 0:
            raise ValueError(f"history_s must be > 0, got {history_s!r}")
        if not 1 <= jpeg_quality <= 95:
            raise ValueError(f"jpeg_quality must be in 1..95, got {jpeg_quality!r}")
        self.history_s = float(history_s)
        self.jpeg_quality = int(jpeg_quality)
        self._clock = clock
        self._lock = threading.Lock()
        self._cameras: dict[str, _CameraSlot] = {}
        self._success: dict[str, Any] | None = None
        self._success_history: collections.deque = collections.deque()  # (t, prob, threshold, task_id)
        self._session: dict[str, Any] = {}
        self._session_stamp: float | None = None
        self._events: collections.deque = collections.deque(maxlen=200)
        self._event_seq = 0
        self._metrics: dict[str, Any] = {}
        self._metrics_history: collections.deque = collections.deque(maxlen=int(metrics_history))
        self._policy_version: int | None = None
        self._intervening: bool | None = None
        self._arm_status: dict[str, Any] = {}
        self._ground_truth: dict[str, Any] = {}
        self._version = 0  # bumps on every change; waiters compare against it
        self._cond = threading.Condition(self._lock)
        self._async_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    # ------------------------------------------------------------------ publishers (any thread)
    def _changed(self) -> None:
        """Call with ``self._lock`` held."""
        self._version += 1
        self._cond.notify_all()
        for loop, event in list(self._async_waiters):
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # loop closed: the client is gone
                self._async_waiters.discard((loop, event))

    def publish_frame(self, camera: str, image: np.ndarray, stamp: float | None = None, seq: int | None = None) -> int:
        """Hand over the newest frame of ``camera``: ``image`` (H, W, 3) or (H, W) uint8 RGB.

        ``stamp`` is the capture time (seconds, same clock as ``time.time()``; default now), ``seq``
        the publisher's frame number (default: previous + 1). Returns the sequence number stored.
        """
        if not isinstance(camera, str) or not CAMERA_NAME.fullmatch(camera):
            raise ValueError(f"camera name must match {CAMERA_NAME.pattern}, got {camera!r}")
        image = np.asarray(image)
        if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
            raise ValueError(f"camera {camera!r}: image must be (H, W, 3) or (H, W) uint8, got {image.dtype} {image.shape}")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"camera {camera!r}: empty image {image.shape}")
        now = self._clock()
        with self._lock:
            old = self._cameras.get(camera)
            if seq is None:
                seq = (old.seq + 1) if old else 0
            self._cameras[camera] = _CameraSlot(np.ascontiguousarray(image), int(seq),
                                                float(stamp) if stamp is not None else now, now)
            self._changed()
        return int(seq)

    def publish_success(self, task_id: str, prob: float, threshold: float, decision: bool | float | None = None,
                        model_version: float | None = None, stamp: float | None = None) -> None:
        """A ``reward/success`` message: classifier success probability and its threshold for ``task_id``."""
        prob = _finite(prob, "success prob")
        threshold = _finite(threshold, "success threshold")
        if not (0.0 <= prob <= 1.0 and 0.0 <= threshold <= 1.0):
            raise ValueError(f"success prob/threshold must be in [0, 1], got {prob}, {threshold}")
        t = self._clock() if stamp is None else float(stamp)
        decided = bool(prob >= threshold) if decision is None else bool(decision)
        with self._lock:
            self._success = {"task_id": str(task_id), "prob": prob, "threshold": threshold, "decision": decided,
                             "model_version": _json_safe(model_version), "stamp": t}
            self._success_history.append((t, prob, threshold, str(task_id)))
            while self._success_history and self._success_history[0][0] < t - self.history_s:
                self._success_history.popleft()
            self._changed()

    def publish_success_array(self, label: str, data: list[float] | np.ndarray, stamp: float | None = None) -> None:
        """The raw ``reward/success`` Float32MultiArray: ``label`` = task id, data = [prob, threshold, decision, model_version]."""
        data = list(np.asarray(data, dtype=float).ravel())
        if len(data) < 2:
            raise ValueError(f"reward/success data needs at least [prob, threshold], got {data}")
        self.publish_success(label, data[0], data[1], data[2] >= 0.5 if len(data) > 2 else None,
                             data[3] if len(data) > 3 else None, stamp)

    def publish_session_state(self, state: Mapping[str, Any]) -> None:
        """A ``session/state`` message (dict decoded from its JSON)."""
        if not isinstance(state, Mapping):
            raise ValueError(f"session state must be a mapping, got {type(state).__name__}")
        with self._lock:
            self._session = _json_safe(dict(state))
            self._session_stamp = self._clock()
            self._changed()

    def publish_session_event(self, event: Mapping[str, Any]) -> None:
        """A ``session/events`` message (episode committed, task flipped, stuck, alert, fault)."""
        if not isinstance(event, Mapping):
            raise ValueError(f"session event must be a mapping, got {type(event).__name__}")
        with self._lock:
            self._event_seq += 1
            self._events.append({"seq": self._event_seq, "t": self._clock(), **_json_safe(dict(event))})
            self._changed()

    def publish_learner_metrics(self, metrics: Mapping[str, Any]) -> None:
        """A ``learner/metrics`` message; numeric values are kept as history for the charts."""
        if not isinstance(metrics, Mapping):
            raise ValueError(f"learner metrics must be a mapping, got {type(metrics).__name__}")
        clean = _json_safe(dict(metrics))
        with self._lock:
            self._metrics = clean
            numeric = {k: v for k, v in clean.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            self._metrics_history.append({"t": self._clock(), **numeric})
            self._changed()

    def publish_policy_version(self, version: int) -> None:
        """A ``learner/policy_version`` message."""
        if isinstance(version, bool) or int(version) != version or version < 0:
            raise ValueError(f"policy version must be a non-negative integer, got {version!r}")
        with self._lock:
            self._policy_version = int(version)
            self._changed()

    def publish_intervening(self, intervening: bool) -> None:
        """A ``teleop/intervening`` message."""
        with self._lock:
            self._intervening = bool(intervening)
            self._changed()

    def publish_arm_status(self, status: Mapping[str, Any]) -> None:
        """``arm/status`` key/values (estopped, watchdog_held, last_reason, connected, level)."""
        with self._lock:
            self._arm_status = _json_safe(dict(status))
            self._changed()

    def publish_ground_truth(self, truth: Mapping[str, Any]) -> None:
        """``sim/ground_truth``: {task_id: success bool} (shown for metrics only)."""
        with self._lock:
            self._ground_truth = _json_safe(dict(truth))
            self._changed()

    # ------------------------------------------------------------------ readers
    @property
    def version(self) -> int:
        with self._lock:
            return self._version

    def cameras(self) -> dict[str, dict[str, Any]]:
        """``{camera: {seq, stamp, received, width, height}}`` of the newest frames."""
        with self._lock:
            return {name: {"seq": s.seq, "stamp": s.stamp, "received": s.received,
                           "width": int(s.image.shape[1]), "height": int(s.image.shape[0])}
                    for name, s in self._cameras.items()}

    def frame_jpeg(self, camera: str) -> tuple[int, float, bytes] | None:
        """``(seq, stamp, jpeg bytes)`` of the newest frame of ``camera``, or None if it never sent one."""
        with self._lock:
            slot = self._cameras.get(camera)
        if slot is None:
            return None
        with slot.lock:  # encode each frame once, however many clients ask
            if slot.jpeg is None:
                slot.jpeg = encode_jpeg(slot.image, self.jpeg_quality)
            return slot.seq, slot.stamp, slot.jpeg

    def intervening(self) -> bool:
        with self._lock:
            if self._intervening is not None:
                return self._intervening
            return bool(self._session.get("intervening", False))

    def snapshot(self) -> dict[str, Any]:
        """Everything but frames, JSON-ready (see ``LiveSnapshot`` in models.py)."""
        with self._lock:
            session = dict(self._session)
            intervening = self._intervening if self._intervening is not None else bool(session.get("intervening", False))
            # The version the actor runs (session/state) if known, else the learner's newest checkpoint.
            running = session.get("policy_version")
            policy_version = running if isinstance(running, int) else self._policy_version
            return {
                "version": self._version,
                "now": self._clock(),
                "session": {k: session.get(k) for k in _SESSION_KEYS} | {k: v for k, v in session.items() if k not in _SESSION_KEYS},
                "session_stamp": self._session_stamp,
                "policy_version": policy_version,
                "learner_policy_version": self._policy_version,
                "intervening": intervening,
                "success": dict(self._success) if self._success else None,
                "arm_status": dict(self._arm_status),
                "ground_truth": dict(self._ground_truth),
                "learner": dict(self._metrics),
                "events": list(self._events)[-20:],
                "cameras": {name: {"seq": s.seq, "stamp": s.stamp, "width": int(s.image.shape[1]),
                                   "height": int(s.image.shape[0])} for name, s in self._cameras.items()},
            }

    def success_history(self, since: float | None = None) -> list[tuple[float, float, float, str]]:
        """``[(t, prob, threshold, task_id)]`` within the last ``history_s`` seconds (or newer than ``since``)."""
        with self._lock:
            return [h for h in self._success_history if since is None or h[0] > since]

    def metrics_history(self, since: float | None = None) -> list[dict[str, Any]]:
        """Learner metric messages ``[{t, key: value}]`` (numeric keys only), oldest first."""
        with self._lock:
            return [m for m in self._metrics_history if since is None or m["t"] > since]

    def wait(self, since_version: int, timeout: float) -> int:
        """Block until the version differs from ``since_version`` (or ``timeout``); returns the version."""
        with self._cond:
            self._cond.wait_for(lambda: self._version != since_version, timeout)
            return self._version

    async def wait_async(self, since_version: int, timeout: float) -> int:
        """Like :meth:`wait` for the event loop, without parking a thread per client."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        key = (loop, event)
        with self._lock:
            if self._version != since_version:
                return self._version
            self._async_waiters.add(key)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._lock:
                self._async_waiters.discard(key)
        return self.version
