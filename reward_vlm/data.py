"""Labelled frame sets built from recorded episodes (numpy in, numpy out).

Rule (RoboFuME/HIL-SERL): the last frames of a successful episode are positives; its earlier
frames and every frame of a failed episode are negatives; per-frame human labels override the
automatic ones, and human-labelled frames weigh more.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Hashable, Iterable, Literal, Sequence

import numpy as np

from reward_vlm.base import check_images
from reward_vlm.errors import RewardInputError
from reward_vlm.tasks import Task, as_tasks, task_indices

LabelSource = Literal["human", "scripted", "classifier"]
LABEL_SOURCES = ("human", "scripted", "classifier")


@dataclasses.dataclass
class Episode:
    """One recorded episode as the labeller sees it."""

    frames: np.ndarray  # (T, H, W, 3) uint8, time-major
    task: str | int  # task id or index into the task list
    outcome: bool | None  # episode succeeded? None: unknown (only human frame labels are used)
    label_source: str = "scripted"  # who decided `outcome`: human / scripted / classifier
    frame_labels: np.ndarray | None = None  # (T,) int8 per-frame human labels: 1 success, 0 not, -1 unlabelled
    group: Hashable | None = None  # episodes sharing a group (e.g. one recording labelled for two tasks) are split together

    def __post_init__(self) -> None:
        check_images(self.frames)
        if self.label_source not in LABEL_SOURCES:
            raise RewardInputError(f"Episode.label_source must be one of {LABEL_SOURCES}, got {self.label_source!r}")
        if self.frame_labels is not None:
            fl = np.asarray(self.frame_labels)
            if fl.shape != (self.frames.shape[0],):
                raise RewardInputError(f"Episode.frame_labels must have shape ({self.frames.shape[0]},), got {fl.shape}")
            if not np.all(np.isin(fl, (-1, 0, 1))):
                raise RewardInputError("Episode.frame_labels must hold 1 (success), 0 (not) or -1 (unlabelled)")
            self.frame_labels = fl.astype(np.int8)


@dataclasses.dataclass
class LabelRule:
    """How episodes become labelled frames."""

    positive_frames: int = 3  # last frames of a successful episode labelled success
    margin_frames: int = 3  # frames just before those left out (the scene may already look done)
    negative_stride: int = 1  # keep every k-th automatic negative (subsamples long episodes)
    source_weights: dict = dataclasses.field(default_factory=lambda: {"human": 2.0, "scripted": 1.0, "classifier": 0.5})  # loss weight by label source
    human_frame_weight: float = 2.0  # loss weight of frames with a per-frame human label

    def __post_init__(self) -> None:
        if self.positive_frames < 1:
            raise ValueError(f"LabelRule.positive_frames must be >= 1, got {self.positive_frames}")
        if self.margin_frames < 0:
            raise ValueError(f"LabelRule.margin_frames must be >= 0, got {self.margin_frames}")
        if self.negative_stride < 1:
            raise ValueError(f"LabelRule.negative_stride must be >= 1, got {self.negative_stride}")
        missing = set(LABEL_SOURCES) - set(self.source_weights)
        if missing or any(v < 0 for v in self.source_weights.values()):
            raise ValueError(f"LabelRule.source_weights needs a weight >= 0 for each of {LABEL_SOURCES}, got {self.source_weights}")
        if self.human_frame_weight < 0:
            raise ValueError(f"LabelRule.human_frame_weight must be >= 0, got {self.human_frame_weight}")


@dataclasses.dataclass
class LabelledFrames:
    """Training/evaluation set: N frames with labels, task indices and loss weights."""

    images: np.ndarray  # (N, H, W, 3) uint8
    labels: np.ndarray  # (N,) float32 0/1
    task_ids: np.ndarray  # (N,) int64 index into the task list
    weights: np.ndarray  # (N,) float32 loss weights
    episode: np.ndarray  # (N,) int64 index of the source episode (the first episode of its group)
    frame: np.ndarray  # (N,) int64 time index inside that episode
    human: np.ndarray  # (N,) bool: label came from a per-frame human label

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, mask_or_idx: np.ndarray) -> "LabelledFrames":
        return LabelledFrames(**{f.name: getattr(self, f.name)[mask_or_idx] for f in dataclasses.fields(self)})

    @staticmethod
    def concat(parts: Sequence["LabelledFrames"]) -> "LabelledFrames":
        parts = [p for p in parts if len(p)]
        if not parts:
            raise RewardInputError("nothing to concatenate: every part is empty")
        return LabelledFrames(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(LabelledFrames)})


def build_labelled_frames(episodes: Iterable[Episode], tasks: Sequence[Any], rule: LabelRule | None = None) -> LabelledFrames:
    """Apply the labelling rule to episodes; all frames must share one H x W.

    tasks: the classifier's tasks (ids + instructions); `Episode.task` is mapped to its index.
    Per-frame human labels (>= 0) override the automatic label of that frame and are always kept.
    """
    rule = rule or LabelRule()
    tasks_t: tuple[Task, ...] = as_tasks(tasks)
    imgs, labels, tids, weights, eps, frames, human = [], [], [], [], [], [], []
    shape = None
    first_of_group: dict = {}
    for e_i, ep in enumerate(episodes):
        ep_index = e_i if ep.group is None else first_of_group.setdefault(ep.group, e_i)
        t_len = ep.frames.shape[0]
        if shape is None:
            shape = ep.frames.shape[1:]
        elif ep.frames.shape[1:] != shape:
            raise RewardInputError(f"episode {e_i} has frames {ep.frames.shape[1:]}, others {shape}: resize before labelling")
        task = int(task_indices(tasks_t, ep.task, 1)[0])
        auto = np.full(t_len, -1, np.int8)  # -1: not used
        if ep.outcome is True:
            k = min(rule.positive_frames, t_len)
            auto[t_len - k:] = 1
            neg_end = max(0, t_len - k - rule.margin_frames)
            auto[:neg_end:rule.negative_stride] = 0
        elif ep.outcome is False:
            auto[::rule.negative_stride] = 0
        w_auto = rule.source_weights[ep.label_source]
        lab = auto.copy()
        w = np.full(t_len, w_auto, np.float32)
        is_human = np.zeros(t_len, bool)
        if ep.frame_labels is not None:
            is_human = ep.frame_labels >= 0
            lab[is_human] = ep.frame_labels[is_human]
            w[is_human] = rule.human_frame_weight
        keep = np.flatnonzero(lab >= 0)
        if keep.size == 0:
            continue
        imgs.append(ep.frames[keep])
        labels.append(lab[keep].astype(np.float32))
        tids.append(np.full(keep.size, task, np.int64))
        weights.append(w[keep])
        eps.append(np.full(keep.size, ep_index, np.int64))
        frames.append(keep.astype(np.int64))
        human.append(is_human[keep])
    if not imgs:
        raise RewardInputError("no labelled frames: every episode had an unknown outcome and no human frame labels")
    return LabelledFrames(np.concatenate(imgs), np.concatenate(labels), np.concatenate(tids), np.concatenate(weights),
                          np.concatenate(eps), np.concatenate(frames), np.concatenate(human))


def tile_views(views: Sequence[np.ndarray]) -> np.ndarray:
    """Frames of several cameras side by side, one image per time step (multi-view classifiers).

    views: per camera, (..., H, W, 3) uint8 frames of the same shape (one frame or a time-major
    stack). Returns (..., H, len(views) * W, 3): the first camera on the left. One view is
    returned as it is.
    """
    if not views:
        raise RewardInputError("tile_views needs at least one camera's frames")
    shapes = {np.shape(v) for v in views}
    if len(shapes) != 1:
        raise RewardInputError(f"tile_views needs frames of one shape from every camera, got {sorted(shapes)}")
    return views[0] if len(views) == 1 else np.concatenate(views, axis=-2)
