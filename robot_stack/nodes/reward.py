"""Reward node: the success classifier, scoring camera frames at camera rate.

For each new set of frames it scores every task of the pair in ONE batch (cameras x tasks) and
publishes, per task, ``reward/success`` = [prob, threshold, decision, model_version] with the task
id as the layout label. With several cameras the probability is their mean, unless the classifier
was trained on those cameras' frames side by side (its ``views``): then the node tiles the newest
frame of each the same way and scores one image. The classifier is
loaded (and smoke-tested) at start-up, so a missing or corrupt model stops the node at once
rather than mid-session; a newer version in the classifier directory (e.g. after retraining on
human labels) is picked up while running, and a bad new version is refused with the old one kept.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np

from robot_stack.runtime import Node, msgs, qos


@dataclass
class RewardNodeConfig:
    """Which classifier scores which cameras and tasks."""

    classifier: str = "classifier"  # artefact dir, a root of versions v0001/v0002/..., or a VLM hub id / dir
    cameras: tuple[str, ...] = ("front",)  # cameras scored (topics camera/<name>/image); a multi-view classifier needs exactly its views, in order
    tasks: tuple[str, ...] = ()  # task ids to score; empty = every task the classifier knows
    rate_hz: float = 10.0  # most scoring passes per second (camera rate or below)
    reload_every_s: float = 10.0  # how often to look for a newer classifier version (0 = never)
    device: str = "cpu"  # torch device for inference

    def __post_init__(self) -> None:
        if not self.cameras:
            raise ValueError("cameras must name at least one camera")
        if not 0.1 <= self.rate_hz <= 200:
            raise ValueError(f"rate_hz must be in [0.1, 200], got {self.rate_hz}")
        if self.reload_every_s < 0:
            raise ValueError(f"reload_every_s must be >= 0, got {self.reload_every_s}")


def resolve_classifier_dir(path: str) -> str:
    """A version root (``v0001``, ``v0002``, ...) resolves to its newest version; anything else is itself."""
    from reward_vlm import version_dirs

    versions = version_dirs(path) if pathlib.Path(path).is_dir() else []
    return str(versions[-1]) if versions else path


class RewardNode(Node):
    name = "reward"
    Config = RewardNodeConfig

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        cfg: RewardNodeConfig = self.cfg
        self.loaded_from = resolve_classifier_dir(cfg.classifier)
        self.classifier = self._load(self.loaded_from)  # raises ClassifierLoadError: the node exits at start-up
        self._check_views(self.classifier, self.loaded_from)
        self.tasks = list(cfg.tasks) or list(self.classifier.task_ids)
        unknown = sorted(set(self.tasks) - set(self.classifier.task_ids))
        if unknown:
            raise ValueError(f"reward: tasks {unknown} unknown to the classifier at {self.loaded_from} "
                             f"(it knows {self.classifier.task_ids})")
        self._frames: dict[str, np.ndarray] = {}
        self._fresh = False
        self.scored = 0
        self.pub = self.create_publisher(msgs.Float32MultiArray, "reward/success", qos.SENSOR_DATA)
        for cam in cfg.cameras:
            self.create_subscription(msgs.Image, f"camera/{cam}/image", lambda m, cam=cam: self.on_image(cam, m),
                                     qos.SENSOR_DATA)
        self.create_timer(1.0 / cfg.rate_hz, self.score)
        if cfg.reload_every_s > 0:
            self.create_timer(cfg.reload_every_s, self.maybe_reload)
        self.get_logger().info(f"reward up: {self.classifier.family} v{self.classifier.version} "
                               f"from {self.loaded_from}, tasks {self.tasks}, cameras {list(cfg.cameras)}")

    def _load(self, path: str):
        from reward_vlm import load_classifier

        return load_classifier(path, device=self.cfg.device)

    def _check_views(self, clf, where: str) -> None:
        """A multi-view classifier scores its cameras tiled in its order: anything else is a config error."""
        if len(clf.views) > 1 and tuple(clf.views) != tuple(self.cfg.cameras):
            raise ValueError(f"reward: the classifier at {where} sees cameras {list(clf.views)} side by side; "
                             f"set the node's cameras to exactly those (got {list(self.cfg.cameras)})")

    def on_image(self, cam: str, msg: msgs.Image) -> None:
        self._frames[cam] = msg.to_numpy()
        self._fresh = True

    def score(self) -> None:
        cams = self.cfg.cameras
        if not self._fresh or any(c not in self._frames for c in cams):
            return
        self._fresh = False
        if len(self.classifier.views) > 1:
            from reward_vlm import tile_views

            frames = tile_views([self._frames[c] for c in cams])[None]  # (1, H, C*W, 3)
        else:
            frames = np.stack([self._frames[c] for c in cams])  # (C, H, W, 3), scored one by one
        n_cams, n_tasks = frames.shape[0], len(self.tasks)
        images = np.repeat(frames, n_tasks, axis=0)  # (C*T, H, W, 3): camera-major
        task_ids = [t for _ in range(n_cams) for t in self.tasks]
        probs = self.classifier.predict(images, task_ids).reshape(n_cams, n_tasks).mean(axis=0)
        thresholds = self.classifier.thresholds_for(self.tasks, n_tasks)
        version = float(self.classifier.version or 0)
        for task, p, th in zip(self.tasks, probs, thresholds):
            data = np.array([p, th, float(p >= th), version], dtype=np.float32)
            self.pub.publish(msgs.Float32MultiArray.from_numpy(data, labels=[task]))
        self.scored += 1

    def maybe_reload(self) -> None:
        newest = resolve_classifier_dir(self.cfg.classifier)
        if newest == self.loaded_from:
            return
        try:
            candidate = self._load(newest)
        except Exception as exc:  # noqa: BLE001 - any failure keeps the working classifier
            self.get_logger().error(f"new classifier at {newest} refused, keeping v{self.classifier.version}: {exc}")
            self.loaded_from = newest  # do not retry the same broken version every period
            return
        missing = sorted(set(self.tasks) - set(candidate.task_ids))
        try:
            if missing:
                raise ValueError(f"it lacks tasks {missing}")
            self._check_views(candidate, newest)
        except ValueError as exc:
            self.get_logger().error(f"new classifier at {newest} refused, keeping v{self.classifier.version}: {exc}")
            self.loaded_from = newest
            return
        self.classifier, self.loaded_from = candidate, newest
        self.get_logger().info(f"reward: switched to classifier v{candidate.version} ({newest})")
