"""Success classifiers that turn camera frames (+ a task instruction) into a success probability.

Public edge is numpy: images (B, H, W, 3) uint8 RGB and task ids in, P(success) (B,) out.
Must not import ROS or `hardware`. Families:

- ``cnn``: small CNN + per-task heads trained on scene frames (offline default, fast on CPU);
- ``vision_encoder``: frozen SigLIP/CLIP vision tower (transformers) + trained per-task head;
- ``vlm_yesno``: generative VLM asked "Is <task> done?", scored P(yes) vs P(no) from the
  next-token logits, with projector fine-tuning.

    clf = load_classifier("runs/reward/v0003")          # or a hub id + tasks= for zero-shot VLM
    probs = clf.predict(frames, task_ids)              # (B,) float32
    probs, success = clf.decide(frames, task_ids)       # per-task calibrated thresholds
"""

from reward_vlm.artifacts import FAMILIES, load_classifier, read_meta
from reward_vlm.base import Prediction, SuccessClassifier, TrainConfig, TrainStats, check_images
from reward_vlm.calibration import EvalReport, ThresholdChoice, evaluate, fit_temperature, reliability_plot_png, threshold_for_precision
from reward_vlm.cnn import ConvClassifierConfig, ConvSuccessClassifier
from reward_vlm.data import Episode, LabelledFrames, LabelRule, build_labelled_frames, tile_views
from reward_vlm.errors import ClassifierLoadError, RewardInputError, UnknownTaskError
from reward_vlm.retrain import retrain_on_disagreements
from reward_vlm.tasks import Task
from reward_vlm.train import RewardTrainConfig, new_classifier, next_version_dir, split_by_episode, train_classifier, version_dirs

#: `Classifier` is the name the rest of the stack codes against.
Classifier = SuccessClassifier

__all__ = [
    "FAMILIES", "Classifier", "ClassifierLoadError", "ConvClassifierConfig", "ConvSuccessClassifier", "Episode",
    "EvalReport", "LabelRule", "LabelledFrames", "Prediction", "RewardInputError", "SuccessClassifier", "Task",
    "ThresholdChoice", "TrainConfig", "TrainStats", "UnknownTaskError", "build_labelled_frames", "check_images",
    "evaluate", "fit_temperature", "load_classifier", "read_meta", "reliability_plot_png", "retrain_on_disagreements",
    "threshold_for_precision", "tile_views", "RewardTrainConfig", "new_classifier", "next_version_dir", "split_by_episode",
    "train_classifier", "version_dirs",
]
