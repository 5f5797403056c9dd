"""One call from labelled frames to a calibrated, evaluated classifier (what `train-reward` runs)."""

from __future__ import annotations

import dataclasses
import pathlib
import re
from typing import Any, Sequence

import numpy as np

from reward_vlm.base import SuccessClassifier, TrainConfig
from reward_vlm.calibration import EvalReport
from reward_vlm.data import LabelledFrames
from reward_vlm.errors import RewardInputError

FAMILY_NAMES = ("cnn", "vision_encoder", "vlm_yesno")


@dataclasses.dataclass
class RewardTrainConfig:
    """Training a success classifier from labelled frames."""

    family: str = "cnn"  # classifier family: cnn / vision_encoder / vlm_yesno
    base_model: str = ""  # hub id or directory of the pretrained model (vision_encoder, vlm_yesno)
    image_size: int = 64  # cnn: input size frames are resized to
    epochs: int = 20  # passes over the training frames
    batch_size: int = 64  # frames per optimiser step
    lr: float = 1e-3  # learning rate
    holdout_fraction: float = 0.2  # share of EPISODES kept out of training for calibration/evaluation
    target_precision: float = 0.99  # per-task thresholds are chosen to reach this held-out precision
    device: str = "cpu"  # torch device: cpu / cuda / auto
    seed: int = 0  # seed for the split, initialisation and shuffling

    def __post_init__(self) -> None:
        if self.family not in FAMILY_NAMES:
            raise ValueError(f"RewardTrainConfig.family must be one of {FAMILY_NAMES}, got {self.family!r}")
        if self.family != "cnn" and not self.base_model:
            raise ValueError(f"RewardTrainConfig.base_model is required for family {self.family!r}")
        if not 0 < self.holdout_fraction < 1:
            raise ValueError(f"RewardTrainConfig.holdout_fraction must be in (0, 1), got {self.holdout_fraction}")
        if not 0 < self.target_precision <= 1:
            raise ValueError(f"RewardTrainConfig.target_precision must be in (0, 1], got {self.target_precision}")
        for name in ("epochs", "batch_size", "image_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"RewardTrainConfig.{name} must be >= 1, got {getattr(self, name)}")


def new_classifier(tasks: Sequence[Any], cfg: RewardTrainConfig) -> SuccessClassifier:
    """An untrained classifier of `cfg.family` for `tasks`."""
    if cfg.family == "cnn":
        from reward_vlm.cnn import ConvClassifierConfig, ConvSuccessClassifier

        return ConvSuccessClassifier(tasks, ConvClassifierConfig(image_size=cfg.image_size), seed=cfg.seed, device=cfg.device)
    if cfg.family == "vision_encoder":
        from reward_vlm.encoder_head import EncoderHeadClassifier, EncoderHeadConfig

        return EncoderHeadClassifier(tasks, EncoderHeadConfig(encoder=cfg.base_model), seed=cfg.seed, device=cfg.device)
    from reward_vlm.vlm_yesno import VlmYesNoClassifier, VlmYesNoConfig

    return VlmYesNoClassifier(tasks, VlmYesNoConfig(model=cfg.base_model), device=cfg.device)


def split_by_episode(data: LabelledFrames, fraction: float, seed: int = 0) -> tuple[LabelledFrames, LabelledFrames]:
    """(train, holdout): whole episodes go to one side, so held-out frames are not near-duplicates."""
    eps = np.unique(data.episode)
    if eps.size < 2:
        raise RewardInputError(f"need frames from at least 2 episodes to hold some out, got {eps.size}")
    rng = np.random.default_rng(seed)
    n_hold = min(eps.size - 1, max(1, int(round(fraction * eps.size))))
    held = rng.choice(eps, size=n_hold, replace=False)
    m = np.isin(data.episode, held)
    return data.subset(~m), data.subset(m)


def train_classifier(data: LabelledFrames, tasks: Sequence[Any], cfg: RewardTrainConfig | None = None,
                     holdout: LabelledFrames | None = None, reliability_png: str | pathlib.Path | None = None,
                     progress: bool = True) -> tuple[SuccessClassifier, EvalReport]:
    """Fit a new classifier, calibrate it (temperature + per-task thresholds) and evaluate it.

    data: labelled frames (see `build_labelled_frames`); `holdout` defaults to a split of `data`
    by episode. Returns (classifier, held-out report); metrics are stored in `clf.metrics`.
    Note: the report is measured on the same frames the thresholds were chosen on, so it is
    optimistic; evaluate on a third set for an unbiased number.
    """
    cfg = cfg or RewardTrainConfig()
    if holdout is None:
        data, holdout = split_by_episode(data, cfg.holdout_fraction, cfg.seed)
    clf = new_classifier(tasks, cfg)
    stats = clf.fit(data.images, data.labels, data.task_ids, data.weights,
                    TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed, progress=progress))
    clf.metrics["train"] = {"n_frames": stats.n_frames, "n_pos": stats.n_pos, "steps": stats.steps,
                            "epoch_losses": stats.epoch_losses, "seconds": round(stats.seconds, 1)}
    clf.calibrate(holdout.images, holdout.labels, holdout.task_ids, cfg.target_precision)
    report = clf.evaluate(holdout.images, holdout.labels, holdout.task_ids, reliability_png=reliability_png)
    return clf, report


_VERSION_DIR = re.compile(r"^v(\d+)$")


def version_dirs(root: str | pathlib.Path) -> list[pathlib.Path]:
    """Artefact directories `root/v0001`, `root/v0002`, ... in version order."""
    root = pathlib.Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _VERSION_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def next_version_dir(root: str | pathlib.Path, version: int) -> pathlib.Path:
    """`root/v{version:04d}`; refuses to reuse an existing version directory."""
    path = pathlib.Path(root) / f"v{version:04d}"
    if path.exists():
        raise FileExistsError(f"classifier version directory {path} already exists")
    return path
