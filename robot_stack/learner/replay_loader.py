"""Load committed episodes from the episode store into the learner's in-memory replay.

Three sources, sampled by ratio through ``policies.replay.MixedReplay``:
- ``prior``: episodes with ``data_source="prior"`` (imported offline data, e.g. robomimic files);
- ``online``: the robots' own episodes (``data_source="online"``);
- ``intervention``: teleoperated demos (``data_source="demo"``) plus every intervention segment
  of online episodes (HIL-SERL: intervention steps go to both the RL and the demo buffer; the
  online ``ReplayBuffer`` routes them itself through its ``demo_buffer``).

Evaluation episodes are skipped unless ``include_eval``. Images stay uint8 (optionally resized
at load). A human relabel of an episode's outcome rewrites that episode's sparse reward and
terminal flag at load time (the store's arrays are never rewritten).

Tail mode: ``start()`` runs a background thread that polls the store's commit markers and
reads new episodes (the slow part: I/O + decompression) into a queue; the learner calls
``drain()`` between updates, so buffers are only ever mutated on the learner's thread.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from typing import Any, Callable, Literal

import numpy as np

from policies.replay import MixedReplay, ReplayBuffer, ReplayConfig
from robot_stack.store import EpisodeInfo, EpisodeReadError, EpisodeStore, StoreCursor, StoreError

log = logging.getLogger(__name__)

SOURCES = ("prior", "online", "intervention")


@dataclasses.dataclass
class ReplayLoaderConfig:
    """Which episodes the learner loads and how the sources are mixed."""

    include_eval: bool = False  # also load evaluation episodes (normally kept out of training)
    prior_ratio: float = 0.5  # share of each batch from prior/offline data (Cal-QL mixes offline/online 0.5)
    online_ratio: float = 0.25  # share of each batch from the robots' own online episodes
    intervention_ratio: float = 0.25  # share from teleoperated demos and intervention segments (RLPD/HIL-SERL); while none exist it is spread over the others (prior 2/3, online 1/3: what the session figures were measured with)
    task_key: Literal["phase", "task_id"] = "phase"  # episode field that selects the task index
    tasks: tuple[str, ...] = ("forward", "backward")  # task index order: values of task_key; others are skipped
    cameras: tuple[str, ...] = ()  # cameras loaded into replay (empty = all cameras of the first episode)
    robots: tuple[str, ...] = ()  # robot groups to load (empty = all)
    image_size: int = 0  # resize images to this square side when loading (0 = as stored)
    relabel_rewards: bool = True  # a human outcome label overrides the recorded sparse reward/terminal
    poll_s: float = 0.5  # tail mode: seconds between polls of the commit markers
    queue_episodes: int = 64  # tail mode: episodes read ahead before the reader thread waits
    replay: ReplayConfig = dataclasses.field(default_factory=ReplayConfig)  # capacity/gamma of each buffer

    def __post_init__(self) -> None:
        ratios = (self.prior_ratio, self.online_ratio, self.intervention_ratio)
        if any(not np.isfinite(r) or r < 0 for r in ratios) or sum(ratios) <= 0:
            raise ValueError(f"prior/online/intervention ratios must be >= 0 and not all 0, got {ratios}")
        if self.task_key not in ("phase", "task_id"):
            raise ValueError(f"task_key must be 'phase' or 'task_id', got {self.task_key!r}")
        if not self.tasks:
            raise ValueError("tasks must name at least one task")
        if self.image_size < 0:
            raise ValueError(f"image_size must be >= 0, got {self.image_size!r}")
        if not self.poll_s > 0:
            raise ValueError(f"poll_s must be > 0, got {self.poll_s!r}")
        if isinstance(self.replay, dict):
            self.replay = ReplayConfig(**self.replay)

    @property
    def ratios(self) -> dict[str, float]:
        return {"prior": self.prior_ratio, "online": self.online_ratio, "intervention": self.intervention_ratio}


def source_of(info: EpisodeInfo) -> str:
    """The replay source an episode goes to: prior, intervention (demos) or online."""
    return {"prior": "prior", "demo": "intervention"}.get(info.data_source, "online")


class ReplayLoader:
    """Fills a prior / online / intervention set of ``ReplayBuffer`` from an ``EpisodeStore``.

    ``loader = ReplayLoader(store, config)``; ``loader.load_new()`` (synchronous) or
    ``loader.start()`` + ``loader.drain()`` (tail mode); ``loader.replay()`` -> ``MixedReplay``
    over the non-empty sources; ``loader.stats`` counts loaded/skipped episodes.
    ``make_buffer(name, replay_config, demo_buffer)`` may be given to build buffers differently.
    """

    def __init__(self, store: EpisodeStore, config: ReplayLoaderConfig | None = None,
                 make_buffer: Callable[[str, ReplayConfig, ReplayBuffer | None], ReplayBuffer] | None = None):
        self.store = store
        self.config = config or ReplayLoaderConfig()
        make = make_buffer or (lambda name, cfg, demo_buffer: ReplayBuffer(cfg, demo_buffer=demo_buffer))
        intervention = make("intervention", self.config.replay, None)
        self.buffers: dict[str, ReplayBuffer] = {
            "prior": make("prior", self.config.replay, None),
            # Online episodes' intervention segments are copied to the intervention buffer too.
            "online": make("online", self.config.replay, intervention),
            "intervention": intervention,
        }
        self.cursor = StoreCursor()
        # steps_by_source counts recorded steps once per episode (an online episode's intervention
        # steps also sit in the intervention buffer, so buffer sizes would double-count them).
        self.stats: dict[str, Any] = {"loaded": {s: 0 for s in SOURCES}, "skipped": 0, "steps": 0,
                                      "steps_by_source": {s: 0 for s in SOURCES}, "errors": []}
        self._cameras: tuple[str, ...] | None = tuple(self.config.cameras) or None
        self._queue: "queue.Queue[tuple[EpisodeInfo, dict] | None]" = queue.Queue(maxsize=self.config.queue_episodes)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task_index = {name: i for i, name in enumerate(self.config.tasks)}

    # ---------------------------------------------------------------- selection and conversion
    def wanted(self, info: EpisodeInfo) -> bool:
        """Whether an episode is loaded at all (eval filter, robots, known task)."""
        cfg = self.config
        if info.eval and not cfg.include_eval:
            return False
        if cfg.robots and info.robot_id not in cfg.robots:
            return False
        key = info.phase if cfg.task_key == "phase" else info.task_id
        if key not in self._task_index:
            self._skip(info, f"task {cfg.task_key}={key!r} not in tasks {list(cfg.tasks)}")
            return False
        return True

    def to_arrays(self, info: EpisodeInfo, data: dict) -> dict:
        """Store episode -> the ``ReplayBuffer.add_episode`` contract (time-major, images uint8)."""
        cfg = self.config
        T = info.length
        cams = self._cameras or tuple(sorted(data["images"]))
        missing = set(cams) - set(data["images"])
        if missing:
            raise ValueError(f"episode {info.episode_id} lacks camera(s) {sorted(missing)}")
        images = {c: _resize(data["images"][c], cfg.image_size) for c in cams}
        reward = data["reward"].astype(np.float32)
        terminal = data["terminal"].astype(bool)
        truncated = data["truncated"].astype(bool)
        relabelled = [l for l in info.labels if l.kind == "outcome" and l.source == "human"]
        if cfg.relabel_rewards and relabelled and info.outcome in ("success", "failure"):
            # Sparse reward from the human label: 1 on the last step of a success, else 0.
            success = info.outcome == "success"
            reward = np.zeros(T, np.float32)
            reward[-1] = float(success)
            terminal = np.zeros(T, bool)
            terminal[-1] = success
            truncated = np.zeros(T, bool)
            truncated[-1] = not success
        else:
            # Only the last step may end an episode in replay; an earlier flag is an actor bug.
            if terminal[:-1].any() or truncated[:-1].any():
                raise ValueError(f"episode {info.episode_id} has terminal/truncated before its last step")
        key = info.phase if cfg.task_key == "phase" else info.task_id
        return {
            "image": images,
            "state": data["state"],
            "action": data["action"],
            "reward": reward,
            "terminal": terminal,
            "truncated": truncated,
            "intervention": data["intervention"].astype(bool),
            "task": np.full(T, self._task_index[key], dtype=np.int64),
        }

    def _read(self, info: EpisodeInfo) -> dict | None:
        try:
            data = self.store.read_episode(info, cameras=list(self._cameras) if self._cameras else None).data
        except (EpisodeReadError, ValueError) as exc:
            self._skip(info, str(exc))
            return None
        if self._cameras is None:
            self._cameras = tuple(sorted(data["images"]))
        return data

    def _add(self, info: EpisodeInfo, data: dict) -> bool:
        try:
            arrays = self.to_arrays(info, data)
            self.buffers[source_of(info)].add_episode(arrays)
        except ValueError as exc:
            self._skip(info, str(exc))
            return False
        self.stats["loaded"][source_of(info)] += 1
        self.stats["steps"] += info.length
        self.stats["steps_by_source"][source_of(info)] += info.length
        return True

    def _skip(self, info: EpisodeInfo, why: str) -> None:
        self.stats["skipped"] += 1
        if len(self.stats["errors"]) < 100:
            self.stats["errors"].append(f"{info.episode_id}: {why}")
        log.warning("replay loader: skipping %s: %s", info.episode_id, why)

    # ---------------------------------------------------------------- synchronous loading
    def load_new(self, max_episodes: int | None = None) -> int:
        """Poll the store once and add every new wanted committed episode; returns how many were added."""
        new, self.cursor = self.store.poll(self.cursor)
        added = 0
        for info in new[:max_episodes] if max_episodes else new:
            if self.wanted(info):
                data = self._read(info)
                if data is not None and self._add(info, data):
                    added += 1
        if max_episodes and len(new) > max_episodes:  # re-read the rest on the next call
            self.cursor = _rewind(self.cursor, new[max_episodes:])
        return added

    # ---------------------------------------------------------------- tail mode
    def start(self) -> None:
        """Start the background reader thread (tail mode)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._tail, name="replay-loader", daemon=True)
        self._thread.start()

    def _tail(self) -> None:
        cursor = self.cursor
        while not self._stop.is_set():
            try:
                new, cursor = self.store.poll(cursor)
            except StoreError as exc:
                log.warning("replay loader: store poll failed: %s", exc)
                new = []
            for info in new:
                if self._stop.is_set():
                    return
                if self.wanted(info):
                    data = self._read(info)
                    if data is not None:
                        while not self._stop.is_set():
                            try:
                                self._queue.put((info, data), timeout=0.2)
                                break
                            except queue.Full:
                                continue
            self.cursor = cursor
            if not new:
                self._stop.wait(self.config.poll_s)

    def drain(self, max_episodes: int | None = None) -> int:
        """Add the episodes the reader thread has read so far (call between learner updates)."""
        added = 0
        while max_episodes is None or added < max_episodes:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None and self._add(*item):
                added += 1
        return added

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> "ReplayLoader":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------------- sampling
    def replay(self) -> MixedReplay:
        """A ``MixedReplay`` over the sources by the configured ratios (empty sources get no share)."""
        return MixedReplay(self.buffers, self.config.ratios)

    def sizes(self) -> dict[str, int]:
        return {name: len(buf) for name, buf in self.buffers.items()}


def _rewind(cursor: StoreCursor, not_loaded: list[EpisodeInfo]) -> StoreCursor:
    pos = dict(cursor.positions)
    for info in not_loaded:
        pos[info.robot_id] = min(pos.get(info.robot_id, info.index), info.index)
    return StoreCursor(pos)


def _resize(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, size, size, 3) uint8 (block mean for integer factors, else OpenCV area)."""
    if not size or frames.shape[1:3] == (size, size):
        return frames
    T, H, W, C = frames.shape
    if H % size == 0 and W % size == 0:
        fh, fw = H // size, W // size
        return frames.reshape(T, size, fh, size, fw, C).mean(axis=(2, 4)).round().astype(np.uint8)
    import cv2

    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])
