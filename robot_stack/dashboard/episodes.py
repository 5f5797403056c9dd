"""What the dashboard needs from the episode store, as one small interface.

:class:`EpisodeSource` is the dashboard's view of recorded episodes; ``store_source.py`` adapts the
real zarr episode store (``robot_stack.store``) to it, so the rest of the dashboard does not
depend on the store's internals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

# Episode ids are the store's "<robot>:<index>" ids: a robot id (letters, digits, '_', '-', at most
# 64 characters, as the store validates them) and a decimal index of at most 9 ASCII digits.
EPISODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}:[0-9]{1,9}$")


def parse_episode_id(text: str) -> tuple[str, int]:
    """Strictly parse ``"<robot>:<index>"`` from a URL; raises ValueError naming the bad value."""
    if not isinstance(text, str) or not EPISODE_ID.fullmatch(text):
        raise ValueError(f"episode id must look like '<robot>:<index>' (e.g. 'widowx-1:000012'), got {text!r}")
    robot, _, index = text.rpartition(":")
    return robot, int(index)


@dataclass
class InterventionSegment:
    start: int  # first step (inclusive)
    end: int  # last step (exclusive)
    reason: str = ""  # why the person took over ("" = not labelled yet)
    index: int = 0  # position in the episode's segment list (what labels refer to)


@dataclass
class EpisodeInfo:
    """One episode's metadata, as the dashboard lists and filters it."""

    id: str  # "<robot>:<index:06d>"
    task_id: str
    phase: str  # "forward" | "backward"
    n_steps: int
    outcome: bool | None  # current label: True success, False failure, None unlabelled
    outcome_source: str | None  # "classifier" | "human" | "scripted" | None
    eval: bool  # an interleaved evaluation episode
    instruction: str = ""
    classifier_outcome: bool | None = None  # the classifier's decision, if it gave one
    human_outcome: bool | None = None  # the newest human label, if any
    label_history: list[dict[str, Any]] = field(default_factory=list)
    intervention_segments: list[InterventionSegment] = field(default_factory=list)
    intervention_steps: int = 0  # steps with intervention=True
    start_time: float | None = None  # seconds since the epoch
    end_time: float | None = None
    policy_versions: list[int] = field(default_factory=list)
    cameras: list[str] = field(default_factory=list)
    robot_id: str = ""
    order: tuple = ()  # sort key: commit time, robot, index

    @property
    def intervened(self) -> bool:
        return bool(self.intervention_segments) or self.intervention_steps > 0


@runtime_checkable
class EpisodeSource(Protocol):
    """Read episodes and write labels. Unknown ids raise KeyError; bad steps/cameras raise IndexError/KeyError."""

    def list_episodes(self) -> list[EpisodeInfo]:
        """All committed episodes, oldest first."""

    def get_episode(self, episode_id: str) -> EpisodeInfo:
        """One episode's metadata (KeyError if it does not exist)."""

    def series(self, episode_id: str) -> dict[str, np.ndarray]:
        """Per-step arrays of one episode: ``timestamp (T,)``, ``success_prob (T,)``, ``reward (T,)``,
        ``intervention (T,) bool``, ``policy_version (T,)``, ``action (T, 7)``."""

    def frame(self, episode_id: str, camera: str, step: int) -> np.ndarray:
        """Camera ``camera``'s image at ``step``: (H, W, 3) uint8."""

    def set_outcome(self, episode_id: str, success: bool, source: str, note: str) -> EpisodeInfo:
        """Label the outcome (the store keeps the label history); returns the updated metadata."""

    def label_intervention(self, episode_id: str, segment: int, reason: str, note: str) -> EpisodeInfo:
        """Give intervention segment number ``segment`` a ``reason``; returns the updated metadata."""
