"""Adapters between the actor loop and the packages it drives: the store and the policy.

Kept apart from the node so they are testable without DDS: ``StoreEpisodeSink`` streams the
actor's steps into the episode store's recorder; ``CheckpointPolicy`` wraps a ``policies.Agent``
and ``CheckpointWatcher`` offers a newer checkpoint (if the learner wrote one) when the loop asks
at an episode boundary; ``PolicyEnsemble`` acts with the mean action of several.
"""

from __future__ import annotations

import logging
import pathlib
from typing import Any, Mapping, Sequence

import numpy as np

from robot_stack.session.scheduler import EpisodePlan

log = logging.getLogger(__name__)


class StoreEpisodeSink:
    """Streams episodes into one robot group of an ``EpisodeStore`` (created on the first step)."""

    def __init__(self, store, robot_id: str, robot_description: dict, camera_descriptions: dict | None = None,
                 data_source: str = "online") -> None:
        self.store = store
        self.robot_id = robot_id
        self.robot_description = robot_description
        self.camera_descriptions = camera_descriptions or {}
        self.data_source = data_source
        self.writer = None
        self._plan: EpisodePlan | None = None
        self._policy_version = 0
        self._recorder = None

    def begin(self, plan: EpisodePlan, policy_version: int) -> None:
        self._plan, self._policy_version, self._recorder = plan, policy_version, None

    def _open(self, step: dict[str, Any]) -> None:
        from robot_stack.store import EpisodeMeta

        if self.writer is None:
            cams = {c: tuple(img.shape[:2]) for c, img in step["images"].items()}
            # The writer learns the shapes from the first real step, so the same node works for
            # any camera set and proprio size; a restart reopens the group and checks they match.
            self.writer = self.store.writer(self.robot_id, self.robot_description, cams, int(np.asarray(step["state"]).shape[0]),
                                            camera_descriptions=self.camera_descriptions)
        plan = self._plan
        assert plan is not None, "add_step before begin"
        meta = EpisodeMeta(task_id=plan.task.id, instruction=plan.task.instruction, phase=plan.task.phase,
                           eval=plan.eval, data_source=self.data_source,
                           extra={"episode_index": plan.index, "recovery": plan.recovery,
                                  "policy_version": self._policy_version})
        self._recorder = self.writer.begin_episode(meta)

    def add_step(self, step: dict[str, Any]) -> None:
        if self._recorder is None:
            self._open(step)
        self._recorder.add_step(**step)

    def commit(self, outcome: str, extra: dict) -> str:
        # Facts known only at the end (e.g. sim ground truth, why it ended) join the metadata the
        # store writes at commit; the arrays are already flushed.
        self._recorder.meta.extra.update({k: v for k, v in extra.items() if v is not None})
        eid = self._recorder.commit(outcome=outcome, source="classifier")
        self._recorder = None
        return eid

    def discard(self) -> None:
        if self._recorder is not None:
            self._recorder.discard()
        self._recorder = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class CheckpointPolicy:
    """A ``policies`` agent as the actor loop's policy: task ids -> indices, camera selection.

    A policy of action chunks (``action_chunk`` h > 1) plans h actions from one observation and
    hands out the first ``steps_per_plan`` of them (all h unless ``chunk_steps_run`` says fewer),
    one per ``act`` call; ``reset()`` drops what is left of the plan (call it when an episode
    begins and when a person takes over, so the next action comes from a fresh observation).
    """

    def __init__(self, agent, task_ids: Sequence[str]) -> None:
        self.agent = agent
        self.task_index = {t: i for i, t in enumerate(task_ids)}
        self.cameras = tuple(agent.config.network.image_keys)
        side = agent.config.network.encoder.image_size
        self.image_shape = (side, side, 3)  # what every camera frame must be
        self.action_chunk = int(agent.config.network.action_chunk)
        self.steps_per_plan = int(agent.config.network.steps_per_plan)  # actions run from each plan
        self._planned: list[np.ndarray] = []  # the rest of the current chunk, next action first

    @property
    def version(self) -> int:
        return int(self.agent.version)

    def reset(self) -> None:
        """Forget the rest of the current action chunk (the next ``act`` plans afresh)."""
        self._planned = []

    def act(self, images: dict[str, np.ndarray], proprio: np.ndarray, task_id: str, deterministic: bool) -> np.ndarray:
        """images {camera: (H, W, 3) uint8}, proprio (S,) -> action (7,) float32 in [-1, 1]."""
        if self.action_chunk == 1:
            return self.agent.act(self._observation(images, proprio, task_id), deterministic=deterministic)
        if not self._planned:
            chunk = self.agent.act(self._observation(images, proprio, task_id), deterministic=deterministic)
            self._planned = list(chunk[:self.steps_per_plan])
        return self._planned.pop(0)

    def _observation(self, images: dict[str, np.ndarray], proprio: np.ndarray, task_id: str) -> dict:
        if task_id not in self.task_index:
            raise KeyError(f"policy knows tasks {sorted(self.task_index)}, not {task_id!r}")
        obs = {"state": np.asarray(proprio, dtype=np.float32), "task": self.task_index[task_id]}
        if self.cameras:
            obs["image"] = {c: images[c] for c in self.cameras}
        return obs

    def scored_candidates(self, images: dict[str, np.ndarray], proprio: np.ndarray, task_id: str,
                          k: int) -> tuple[np.ndarray, np.ndarray]:
        """The actor's mean action and ``k`` samples, (k + 1, 7) (row 0 the mean; (k + 1, h, 7)
        for chunks of h), with the critic's Q of each, (k + 1,); needs an agent with a critic
        (``CalQLLearner.agent()``)."""
        return self.agent.scored_candidates(self._observation(images, proprio, task_id), k)


class PolicyEnsemble:
    """Several policies of one session acting as one: the mean of their mean actions.

    Networks trained on the same data differ a lot in where they fail: four BC seeds on one
    prior store scored 0.42-0.54, the mean of three of them 0.67 (bench/session_runs.md, "Seeds
    and ensembles"). A sampled action (``deterministic`` False) comes from one member, drawn
    afresh at every ``reset``, so an episode explores as one of them would (a mixture per episode).
    """

    def __init__(self, members: Sequence, rng: np.random.Generator | None = None) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one policy")
        shapes = {getattr(m, "image_shape", None) for m in members}
        if len(shapes) > 1:
            raise ValueError(f"ensemble members see different camera frames: {sorted(map(str, shapes))}")
        self.members = list(members)
        self.image_shape = shapes.pop()
        self.rng = rng or np.random.default_rng()
        self._sampler = self.members[0]

    @property
    def version(self) -> int:
        """The newest member's version (what the actor stamps on its steps)."""
        return max(int(m.version) for m in self.members)

    def reset(self) -> None:
        for m in self.members:
            m.reset()
        self._sampler = self.members[self.rng.integers(len(self.members))]

    def act(self, images: dict[str, np.ndarray], proprio: np.ndarray, task_id: str, deterministic: bool) -> np.ndarray:
        """images {camera: (H, W, 3) uint8}, proprio (S,) -> action (7,) float32 in [-1, 1]."""
        if not deterministic:
            return np.asarray(self._sampler.act(images, proprio, task_id, False), dtype=np.float32)
        return np.mean([np.asarray(m.act(images, proprio, task_id, True), dtype=np.float32) for m in self.members], axis=0)


class CheckpointWatcher:
    """Offers the newest checkpoint of a directory when it is newer than the one in use.

    With ``ensemble`` K > 1 what it offers is what an actor acting with the mean of the newest K
    versions runs: the newest version and up to K - 1 before it on disk, as one ``PolicyEnsemble``
    (members already loaded are reused, so a new version costs one load).
    """

    def __init__(self, checkpoint_dir: str | pathlib.Path, task_ids: Sequence[str], device: str = "cpu",
                 ensemble: int = 1, rng: np.random.Generator | None = None) -> None:
        from policies.checkpoint import CheckpointManager

        if ensemble < 1:
            raise ValueError(f"ensemble must be >= 1 (the number of newest versions acting together), got {ensemble}")
        self.manager = CheckpointManager(checkpoint_dir)
        self.task_ids = list(task_ids)
        self.device = device
        self.ensemble = int(ensemble)
        self.rng = rng  # which member samples an episode's actions (ensembles only)
        self.loaded_version: int | None = None
        self._members: dict[int, CheckpointPolicy] = {}  # version -> loaded policy, the last ensemble's

    def load_latest(self) -> CheckpointPolicy | PolicyEnsemble | None:
        """The newest checkpoint as the acting policy (``load_acting``), or None if there is none (or
        it is the one loaded).

        A checkpoint that fails verification is skipped with an error in the log: the actor keeps
        its current policy rather than stopping the robot.
        """
        from policies.checkpoint import CheckpointError

        version = self.manager.latest_version()
        if version is None or version == self.loaded_version:
            return None
        try:
            policy = self.load_acting(version)
        except (CheckpointError, OSError, ValueError) as exc:
            log.error("checkpoint %s not loaded: %s", version, exc)
            return None
        self.loaded_version = version
        return policy

    def load_newest(self) -> CheckpointPolicy | PolicyEnsemble:
        """The newest checkpoint as the acting policy, for tools that must not go on without it (scoring
        a run): raises FileNotFoundError when there is none and, as ``load``, when it cannot be loaded,
        where ``load_latest`` logs it and returns None so that an actor keeps its policy."""
        version = self.manager.latest_version()
        if version is None:
            raise FileNotFoundError(f"{self.manager.root}: no policy checkpoint")
        return self.load_acting(version)

    def load_acting(self, version: int) -> CheckpointPolicy | PolicyEnsemble:
        """What the actor runs while ``version`` is the newest: that version alone (``ensemble`` 1),
        or the mean of it and the ``ensemble`` - 1 versions before it on disk. ``version`` itself must
        load (raises as ``load``); an older member that cannot is left out with a warning."""
        from policies.checkpoint import CheckpointError

        if self.ensemble == 1:
            return self.load(version)
        members = {version: self._members.get(version) or self.load(version)}
        for v in self.acting_versions(version)[:-1]:
            try:
                members[v] = self._members.get(v) or self.load(v)
            except (CheckpointError, OSError, ValueError) as exc:
                log.warning("ensemble of v%d: v%d left out: %s", version, v, exc)
        self._members = members
        return PolicyEnsemble([members[v] for v in sorted(members)], rng=self.rng)

    def acting_versions(self, version: int) -> list[int]:
        """The versions an actor with this watcher's ``ensemble`` K acts with while ``version`` is the
        newest, ascending: it and the K - 1 before it on disk (fewer when there are fewer)."""
        if self.ensemble == 1:
            return [version]
        return [v for v in self.manager.versions() if v < version][-(self.ensemble - 1):] + [version]

    def load(self, version: int) -> CheckpointPolicy:
        """Policy version ``version`` (verified; raises CheckpointError/OSError/ValueError if it cannot be).

        A checkpoint that names the task ids it was trained with (in its task-index order) must name
        this watcher's: with another order, "put the cube in" would run the policy's "take it out".
        """
        return CheckpointPolicy(load_task_agent(self.manager.path(version), self.task_ids, self.device), self.task_ids)


def load_task_agent(path, task_ids: Sequence[str], device: str = "cpu"):
    """The policy (``policies.Agent``) of a checkpoint (folder, or root's ``latest``), verified, and
    refused with ``CheckpointError`` when it records another task order than ``task_ids``."""
    from policies.checkpoint import agent_from_checkpoint, load_checkpoint

    ckpt = load_checkpoint(path, with_optimizer=False)  # verifies the files, meta.json included
    checkpoint_task_ids(ckpt.meta, ckpt.path, expected=task_ids)
    return agent_from_checkpoint(ckpt, device)


def checkpoint_task_ids(meta: Mapping[str, Any], path, expected: Sequence[str] = ()) -> list[str] | None:
    """The task ids (task-index order) a checkpoint's ``meta.json`` records, or None (checkpoints
    before they were recorded). Raises ``CheckpointError`` naming ``path`` when ``expected`` is
    given and the recorded ids differ from it (another order would run the wrong task)."""
    from policies.checkpoint import CheckpointError

    ids = (meta.get("extra") or {}).get("task_ids")
    recorded = [str(t) for t in ids] if isinstance(ids, list) else None
    if expected and recorded is not None and recorded != list(expected):
        raise CheckpointError(f"checkpoint {path} was trained with task ids {recorded}, in that order; "
                              f"it is asked to map {list(expected)}")
    return recorded
