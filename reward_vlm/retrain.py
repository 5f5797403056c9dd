"""A new classifier version from human labels, focusing on the frames where humans disagreed."""

from __future__ import annotations

from typing import Any

import numpy as np

from reward_vlm.base import SuccessClassifier, TrainConfig
from reward_vlm.data import LabelledFrames
from reward_vlm.errors import RewardInputError
from reward_vlm.tasks import task_indices


def retrain_on_disagreements(classifier: SuccessClassifier, frames: np.ndarray, human_labels: np.ndarray,
                             task_ids: Any = None, *, upweight: float = 5.0, replay: LabelledFrames | None = None,
                             cfg: TrainConfig | None = None, holdout: LabelledFrames | None = None,
                             target_precision: float = 0.99) -> SuccessClassifier:
    """Fine-tune a COPY of `classifier` on human-labelled frames and return it as version + 1.

    frames: (N, H, W, 3) uint8; human_labels: (N,) 0/1; task_ids: (N,) ids (optional when the
    classifier has one task). Frames whose current decision disagrees with the human label get
    loss weight `upweight` (others 1). `replay` (earlier training frames) is mixed in so the
    new version does not forget; `holdout` (if given) re-fits temperature and thresholds.
    The input classifier is left untouched.
    """
    if upweight < 1:
        raise ValueError(f"upweight must be >= 1, got {upweight}")
    if task_ids is None:
        if len(classifier.tasks) != 1:
            raise RewardInputError(f"task_ids are required: the classifier has {len(classifier.tasks)} tasks")
        task_ids = 0
    probs, decided = classifier.decide(frames, task_ids)
    y = np.asarray(human_labels)
    if y.shape != probs.shape or not np.all((y == 0) | (y == 1)):
        raise RewardInputError(f"human_labels must be 0/1 of shape {probs.shape}, got {y.shape}")
    disagree = decided != y.astype(bool)
    idx = task_indices(classifier.tasks, task_ids, frames.shape[0])
    images, labels, tids = frames, y.astype(np.float32), idx
    weights = np.where(disagree, upweight, 1.0).astype(np.float32)
    if replay is not None and len(replay):
        if replay.images.shape[1:] != frames.shape[1:]:
            raise RewardInputError(f"replay frames are {replay.images.shape[1:]}, new frames {frames.shape[1:]}")
        images = np.concatenate([frames, replay.images])
        labels = np.concatenate([labels, replay.labels])
        tids = np.concatenate([tids, replay.task_ids])
        weights = np.concatenate([weights, replay.weights])
    new = classifier.copy()
    new.parent_version, new.version = classifier.version, classifier.version + 1
    new.metrics = {k: v for k, v in classifier.metrics.items() if k not in ("eval", "calibration")}
    stats = new.fit(images, labels, tids, weights, cfg or TrainConfig(epochs=5))
    _, after = new.decide(frames, tids[: frames.shape[0]])
    new.metrics["retrain"] = {
        "parent_version": classifier.version,
        "n_human_frames": int(frames.shape[0]),
        "n_disagreements_before": int(disagree.sum()),
        "n_disagreements_after": int((after != y.astype(bool)).sum()),
        "upweight": upweight,
        "n_replay": 0 if replay is None else len(replay),
        "epoch_losses": stats.epoch_losses,
    }
    if holdout is not None:
        new.calibrate(holdout.images, holdout.labels, holdout.task_ids, target_precision)
        new.evaluate(holdout.images, holdout.labels, holdout.task_ids)
    return new
