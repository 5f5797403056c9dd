"""Success-classifier training data from the episode store, and versioned training runs.

Labels come from episode outcomes with their source: scripted (sim experts), classifier (the
running reward node) and human (the dashboard). The newest label wins, so a person's
correction overrides the automatic one; ``reward_vlm.build_labelled_frames`` then turns episodes
into frames (last frames of successes positive, earlier frames and failures negative).
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass
class RewardDataConfig:
    """Which store episodes become classifier training frames."""

    cameras: tuple[str, ...] = ("front",)  # cameras the classifier sees: several are put side by side into one image (``reward_vlm.tile_views``), in this order
    robots: tuple[str, ...] = ()  # robot groups to read (empty = all)
    include_eval: bool = True  # evaluation episodes are fine for the classifier (their labels are as good)
    sources: tuple[str, ...] = ("scripted", "human")  # outcome sources trusted as labels for training
    max_episodes: int = 0  # newest episodes to use (0 = all)
    reverse_frames: int = 3  # reset-free pairs: first/last frames of a successful episode labelled for the reverse task (0 = off)
    margin_frames: int = 3  # frames just before a success onset kept out of the negatives: 3 for classifier-ended episodes (onset uncertain), 0 for scripted ones (onset exact)

    def __post_init__(self) -> None:
        if not self.cameras or len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f"cameras must name one or more distinct cameras, got {list(self.cameras)}")
        bad = set(self.sources) - {"scripted", "human", "classifier"}
        if bad:
            raise ValueError(f"sources must be among scripted/human/classifier, got {sorted(bad)}")
        if self.max_episodes < 0 or self.reverse_frames < 0 or self.margin_frames < 0:
            raise ValueError("max_episodes, reverse_frames and margin_frames must be >= 0, got "
                             f"{self.max_episodes}, {self.reverse_frames}, {self.margin_frames}")

    def label_rule(self):
        """The ``reward_vlm.LabelRule`` these settings imply."""
        from reward_vlm import LabelRule

        return LabelRule(margin_frames=self.margin_frames)


def labelled_episodes(store, task_ids: Sequence[str], cfg: RewardDataConfig, reverse: dict[str, str] | None = None) -> list:
    """Episodes of ``task_ids`` whose current outcome comes from a trusted source, as reward_vlm Episodes.

    ``reverse`` maps a task to its reverse in a reset-free pair. Each episode of a task starts
    where that task is not done, which in a pair means its reverse IS done; so a successful
    episode's first ``cfg.reverse_frames`` frames are positives for the reverse task and its last
    ones negatives. Without these frames the classifier only ever sees "done" at the end of a
    demonstration (arm just released) and misses a finished task when the arm is elsewhere.
    """
    from reward_vlm import Episode, tile_views

    infos = [e for e in store.episodes() if e.task_id in set(task_ids) and e.outcome in ("success", "failure")
             and e.outcome_source in cfg.sources and (cfg.include_eval or not e.eval)
             and (not cfg.robots or e.robot_id in cfg.robots) and set(cfg.cameras) <= set(e.cameras)]
    if cfg.max_episodes:
        infos = infos[-cfg.max_episodes:]
    out = []
    for info in infos:
        ep = store.read_episode(info, fields=[], cameras=list(cfg.cameras))
        frames = tile_views([ep.data["images"][c] for c in cfg.cameras])
        out.append(Episode(frames=frames, task=info.task_id, outcome=info.outcome == "success",
                           label_source=info.outcome_source, group=info.episode_id))
        k = cfg.reverse_frames
        rev = (reverse or {}).get(info.task_id)
        if rev and k and info.outcome == "success" and len(frames) >= 2 * k:
            ends = np.concatenate([frames[:k], frames[-k:]])
            out.append(Episode(frames=ends, task=rev, outcome=None, label_source=info.outcome_source,
                               frame_labels=np.array([1] * k + [0] * k, dtype=np.int8), group=info.episode_id))
    return out


def reverse_map(tasks: Sequence) -> dict[str, str]:
    """{forward id: backward id, backward id: forward id} for a (forward, backward) pair of TaskSpecs."""
    phases = {getattr(t, "phase", None): t.id for t in tasks if hasattr(t, "id")}
    if len(tasks) == 2 and {"forward", "backward"} <= set(phases):
        return {phases["forward"]: phases["backward"], phases["backward"]: phases["forward"]}
    return {}


def train_from_store(store, tasks: Sequence, out_root: str | pathlib.Path, data_cfg: RewardDataConfig,
                     train_cfg=None, progress: bool = True, extra: Sequence = ()) -> tuple[pathlib.Path, dict]:
    """Train, calibrate and save a new classifier version under ``out_root``; returns (dir, report).

    ``extra``: more labelled ``reward_vlm.Episode``s (frames tiled like ``data_cfg.cameras``), e.g.
    simulator-labelled scenes; they are split into training and calibration like the store's.
    """
    from reward_vlm import build_labelled_frames, next_version_dir, train_classifier, version_dirs

    task_ids = [t.id if hasattr(t, "id") else t["id"] for t in tasks]
    episodes = labelled_episodes(store, task_ids, data_cfg, reverse_map(tasks))
    if len(episodes) < 4:
        raise ValueError(f"only {len(episodes)} labelled episodes of tasks {task_ids} with cameras "
                         f"{list(data_cfg.cameras)} in the store; need at least 4")
    episodes += list(extra)
    frames = build_labelled_frames(episodes, tasks, data_cfg.label_rule())
    out_root = pathlib.Path(out_root)
    existing = version_dirs(out_root)
    version = int(existing[-1].name[1:]) + 1 if existing else 1
    target = next_version_dir(out_root, version)
    out_root.mkdir(parents=True, exist_ok=True)
    png = out_root / f"reliability-v{version:04d}.png"
    clf, report = train_classifier(frames, tasks, train_cfg, reliability_png=png, progress=progress)
    clf.version, clf.views = version, tuple(data_cfg.cameras)
    clf.save(target)
    summary = {"version": version, "dir": str(target), "episodes": len(episodes), "frames": len(frames),
               "positives": int(frames.labels.sum()), "report": report.as_dict(), "reliability_png": str(png)}
    (out_root / f"report-v{version:04d}.json").write_text(json.dumps(summary, indent=2, default=float))
    return target, summary


def retrain_from_human_labels(store, classifier_root: str | pathlib.Path, data_cfg: RewardDataConfig,
                              upweight: float = 5.0) -> tuple[pathlib.Path, dict]:
    """A new classifier version fine-tuned on human-labelled episodes (disagreements weighted up)."""
    from reward_vlm import build_labelled_frames, load_classifier, next_version_dir, retrain_on_disagreements, version_dirs

    versions = version_dirs(classifier_root)
    if not versions:
        raise ValueError(f"no classifier versions under {classifier_root}; train one first")
    clf = load_classifier(versions[-1])
    cameras = clf.views or data_cfg.cameras  # the views the classifier was trained on
    human = labelled_episodes(store, clf.task_ids, RewardDataConfig(cameras=cameras, robots=data_cfg.robots,
                                                                     include_eval=True, sources=("human",)))
    if not human:
        raise ValueError("no human-labelled episodes in the store: label some in the dashboard first")
    frames = build_labelled_frames(human, clf.tasks, data_cfg.label_rule())
    replay_eps = labelled_episodes(store, clf.task_ids, RewardDataConfig(cameras=cameras, sources=("scripted",)))
    replay = build_labelled_frames(replay_eps, clf.tasks, data_cfg.label_rule()) if replay_eps else None
    tasks = [clf.task_ids[i] for i in frames.task_ids]
    new = retrain_on_disagreements(clf, frames.images, frames.labels.astype(np.int64), tasks, upweight=upweight, replay=replay)
    target = next_version_dir(classifier_root, new.version)
    new.save(target)
    return target, dict(new.metrics.get("retrain", {}))

