"""Adapts the episode store (``robot_stack.store.EpisodeStore``) to the dashboard's EpisodeSource.

Labels go through the store's relabel API (``relabel``, ``label_intervention``), which appends to
the episode's label history without touching its arrays, so the dashboard can label while the
robot's writer appends episodes.
"""

from __future__ import annotations

import collections
import getpass
import threading
from typing import Any

import numpy as np

from robot_stack.store import EpisodeNotFoundError, EpisodeStore, StoreError
from robot_stack.store import EpisodeInfo as StoreEpisodeInfo

from .episodes import EpisodeInfo, InterventionSegment

SERIES_FIELDS = ["timestamp", "success_prob", "reward", "intervention", "policy_version", "action"]


def _bool_outcome(value: str | None) -> bool | None:
    return None if value is None else value == "success"


def convert(info: StoreEpisodeInfo) -> EpisodeInfo:
    """The store's EpisodeInfo as the dashboard's (classifier vs human label split out of the history)."""
    classifier = human = None
    history = []
    for lab in info.labels:
        history.append(lab.to_dict())
        if lab.kind == "outcome":
            if lab.source == "classifier":
                classifier = _bool_outcome(lab.value)
            elif lab.source == "human":
                human = _bool_outcome(lab.value)
    segments = [InterventionSegment(s.start, s.end, s.reason or "", i) for i, s in enumerate(info.intervention_segments)]
    return EpisodeInfo(
        id=info.episode_id, task_id=info.task_id, phase=info.phase, n_steps=info.length,
        outcome=_bool_outcome(info.outcome), outcome_source=info.outcome_source, eval=info.eval,
        instruction=info.instruction, classifier_outcome=classifier, human_outcome=human, label_history=history,
        intervention_segments=segments, intervention_steps=sum(s.end - s.start for s in segments),
        start_time=None, end_time=info.committed_at or None, policy_versions=list(info.policy_versions),
        cameras=sorted(info.cameras), robot_id=info.robot_id,
        order=(info.committed_at, info.robot_id, info.index),
    )


class StoreEpisodeSource:
    """EpisodeSource over an EpisodeStore; keeps the last few played-back camera arrays in memory
    so scrubbing an episode does not re-read and re-verify its images for every step."""

    def __init__(self, store: EpisodeStore, labeller: str | None = None, frame_cache: int = 4) -> None:
        self.store = store
        try:
            user = getpass.getuser()
        except Exception:  # no user database entry (containers)
            user = "operator"
        self.labeller = labeller or f"dashboard:{user}"
        self._lock = threading.Lock()  # the store object caches metadata; one caller at a time
        self._frames: collections.OrderedDict[tuple[str, str], np.ndarray] = collections.OrderedDict()
        self._frame_cache = int(frame_cache)

    def _info(self, episode_id: str) -> StoreEpisodeInfo:
        try:
            with self._lock:
                return self.store.episode(episode_id)
        except (EpisodeNotFoundError, ValueError) as exc:
            raise KeyError(str(exc)) from None

    def list_episodes(self) -> list[EpisodeInfo]:
        with self._lock:
            infos = self.store.episodes()
        return sorted((convert(i) for i in infos), key=lambda e: e.order)

    def get_episode(self, episode_id: str) -> EpisodeInfo:
        return convert(self._info(episode_id))

    def series(self, episode_id: str) -> dict[str, np.ndarray]:
        info = self._info(episode_id)
        with self._lock:
            ep = self.store.read_episode(info, fields=SERIES_FIELDS, cameras=[])
        return {k: v for k, v in ep.data.items() if k != "images"}

    def frame(self, episode_id: str, camera: str, step: int) -> np.ndarray:
        key = (episode_id, camera)
        with self._lock:
            images = self._frames.get(key)
            if images is not None:
                self._frames.move_to_end(key)
        if images is None:
            info = self._info(episode_id)
            if camera not in info.cameras:
                raise KeyError(f"episode {episode_id} has no camera {camera!r}")
            with self._lock:
                images = self.store.read_episode(info, fields=[], cameras=[camera]).data["images"][camera]
                self._frames[key] = images
                while len(self._frames) > self._frame_cache:
                    self._frames.popitem(last=False)
        if not 0 <= step < len(images):
            raise IndexError(f"episode {episode_id} has {len(images)} steps; no step {step}")
        return images[step]

    def set_outcome(self, episode_id: str, success: bool, source: str, note: str) -> EpisodeInfo:
        self._info(episode_id)
        with self._lock:
            self.store.relabel(episode_id, "success" if success else "failure", by=self.labeller, source=source, note=note)
        return self.get_episode(episode_id)

    def label_intervention(self, episode_id: str, segment: int, reason: str, note: str) -> EpisodeInfo:
        self._info(episode_id)
        with self._lock:
            self.store.label_intervention(episode_id, segment, reason, by=self.labeller, source="human", note=note)
        return self.get_episode(episode_id)


def open_store(path: str, storage_options: dict[str, Any] | None = None) -> EpisodeStore:
    """Open an existing episode store read/write for labelling (StoreError if there is none)."""
    return EpisodeStore.open(path, storage_options=storage_options)


class PendingStoreSource:
    """EpisodeSource for a store the actor has not created yet: empty until it appears, then the real one.

    Lets the dashboard node start before (or without) the actor in ``robot-stack run``.
    """

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url, self.storage_options = url, storage_options
        self._inner: StoreEpisodeSource | None = None
        self._lock = threading.Lock()

    def _source(self) -> StoreEpisodeSource | None:
        with self._lock:
            if self._inner is None:
                try:
                    self._inner = StoreEpisodeSource(open_store(self.url, self.storage_options))
                except StoreError:
                    return None
            return self._inner

    def _require(self, episode_id: str) -> StoreEpisodeSource:
        src = self._source()
        if src is None:
            raise KeyError(f"episode {episode_id}: the store {self.url} does not exist yet")
        return src

    def list_episodes(self) -> list[EpisodeInfo]:
        src = self._source()
        return src.list_episodes() if src is not None else []

    def get_episode(self, episode_id: str) -> EpisodeInfo:
        return self._require(episode_id).get_episode(episode_id)

    def series(self, episode_id: str) -> dict[str, np.ndarray]:
        return self._require(episode_id).series(episode_id)

    def frame(self, episode_id: str, camera: str, step: int) -> np.ndarray:
        return self._require(episode_id).frame(episode_id, camera, step)

    def set_outcome(self, episode_id: str, success: bool, source: str, note: str) -> EpisodeInfo:
        return self._require(episode_id).set_outcome(episode_id, success, source, note)

    def label_intervention(self, episode_id: str, segment: int, reason: str, note: str) -> EpisodeInfo:
        return self._require(episode_id).label_intervention(episode_id, segment, reason, note)
