"""The one place that turns a run's description (tasks, cameras, preset) into a learner and its replay.

``pretrain``, the learner service and the session all go through :func:`build_learner` and
:func:`loader_config`, so the policy's task-index order, camera set and image size agree
everywhere (the actor maps task ids with the same ``task_ids`` list).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from robot_stack.learner.replay_loader import ReplayLoaderConfig


@dataclass
class PolicySpec:
    """What policy is trained on what data."""

    kind: Literal["calql", "bc"] = "calql"  # learner: Cal-QL (CQL with the calibration clamp) or the BC baseline
    preset: Literal["cpu", "gpu"] = "cpu"  # network/batch size preset: cpu (64 px, batch 128) or gpu (128 px, batch 256)
    task_ids: tuple[str, ...] = ("put_cube_in_bowl", "take_cube_out_of_bowl")  # the policy's task-index order
    cameras: tuple[str, ...] = ("front",)  # cameras fed to the encoder
    image_size: int = 0  # square image side (0 = the preset's)
    batch_size: int = 0  # transitions per update (0 = the preset's)
    action_chunk: int = 1  # actions per policy output, scored whole by the critic (1 = one per control step)
    chunk_steps_run: int = 0  # actions of each chunk run before planning again (0 = the whole chunk, open loop; 1 = receding horizon)
    encoder_pooling: str = ""  # conv map -> vector: flatten or spatial_softmax ('' = the preset's)
    cql_alpha: float = -1.0  # weight of the conservative term (< 0 = the preset's)
    bc_weight: float = -1.0  # BC regulariser on the Cal-QL actor (< 0 = the preset's)
    init_alpha: float = -1.0  # initial entropy temperature of Cal-QL's actor (<= 0 = the preset's: cpu 0.01, gpu 1.0)
    bc_trains_encoder: bool = False  # with bc_weight > 0: the BC term also trains the shared image encoder
    freeze_image_encoder: bool = False  # Cal-QL: keep the image encoder fixed (with init_from a BC policy)
    bc_data: Literal["all", "successes"] = "successes"  # what BC (and Cal-QL's BC term) imitates: all transitions, or steps that led to success + interventions
    init_from: str = ""  # checkpoint (dir or root) whose encoder + actor start this learner, e.g. a BC policy ('' = random init)
    device: str = "auto"  # torch device: auto, cpu, cuda, cuda:1
    seed: int = 0  # seed of initialisation and sampling

    def __post_init__(self) -> None:
        if not self.task_ids:
            raise ValueError("task_ids must name at least one task")
        if len(set(self.task_ids)) != len(self.task_ids):
            raise ValueError(f"task_ids must be unique, got {list(self.task_ids)}")
        if self.image_size < 0 or self.batch_size < 0:
            raise ValueError("image_size and batch_size must be >= 0 (0 = the preset's)")
        from policies.config import NetworkConfig

        # The network's own checks of the chunk fields, here so a bad value stops a session before
        # minutes of preparation rather than when the learner is built.
        NetworkConfig(action_chunk=self.action_chunk, chunk_steps_run=self.chunk_steps_run)


def learner_config(spec: PolicySpec, state_dim: int, extra: Mapping[str, Any] | None = None):
    """The ``policies.LearnerConfig`` for ``spec`` with a proprio vector of ``state_dim``.

    ``extra``: dotted ``LearnerConfig`` fields set last, for what ``PolicySpec`` does not carry
    (e.g. ``{"calql.alpha_lr": 0.0}``); an unknown field raises ValueError.
    """
    from policies.config import LearnerConfig

    overrides: dict = {
        "network.image_keys": tuple(spec.cameras),
        "network.state_dim": int(state_dim),
        "network.num_tasks": len(spec.task_ids),
        "network.action_chunk": spec.action_chunk,
        "network.chunk_steps_run": spec.chunk_steps_run,
        "seed": spec.seed,
    }
    if spec.image_size:
        overrides["network.encoder.image_size"] = spec.image_size
    if spec.batch_size:
        overrides["batch_size"] = spec.batch_size
    if spec.encoder_pooling:
        overrides["network.encoder.pooling"] = spec.encoder_pooling
    if spec.cql_alpha >= 0:
        overrides["calql.cql_alpha"] = spec.cql_alpha
    if spec.bc_weight >= 0:
        overrides["calql.bc_weight"] = spec.bc_weight
    if spec.init_alpha > 0:
        overrides["calql.init_alpha"] = spec.init_alpha
    if spec.bc_trains_encoder:
        overrides["calql.bc_trains_encoder"] = True
    if spec.freeze_image_encoder:
        overrides["calql.freeze_image_encoder"] = True
    overrides["bc_data"] = spec.bc_data
    if spec.device != "auto":
        overrides["device"] = spec.device
    overrides.update(extra or {})
    return LearnerConfig.preset(spec.preset, **overrides)


def build_learner(spec: PolicySpec, config):
    """A fresh learner of ``spec.kind`` for ``config``."""
    if spec.kind == "bc":
        from policies.bc import BCLearner

        return BCLearner(config)
    from policies.calql import CalQLLearner

    return CalQLLearner(config)


def loader_config(spec: PolicySpec, config, base: ReplayLoaderConfig | None = None) -> ReplayLoaderConfig:
    """Replay-loader settings consistent with the policy: task ids, cameras, image size, discount, action chunk."""
    base = base or ReplayLoaderConfig()
    defaults = type(base.replay)()
    for field, value, flag in (("gamma", config.calql.gamma, "calql.gamma"),
                               ("action_chunk", config.network.action_chunk, "--policy.action_chunk")):
        given = getattr(base.replay, field)
        # The policy owns these; a different replay value would train on transitions the policy does not use.
        if given != getattr(defaults, field) and given != value:
            raise ValueError(f"data.replay.{field} is {given!r} but the policy's is {value!r}: set {flag} instead "
                             "(the replay follows the policy)")
    replay = dataclasses.replace(base.replay, gamma=config.calql.gamma, action_chunk=config.network.action_chunk)
    return dataclasses.replace(base, task_key="task_id", tasks=tuple(spec.task_ids), cameras=tuple(spec.cameras),
                               image_size=config.network.encoder.image_size, replay=replay)


def state_dim_of(store, task_ids) -> int:
    """Proprio size of the first stored episode of one of ``task_ids`` (the learner sizes its input from data)."""
    for info in store.episodes():
        if info.task_id in task_ids:
            return int(store.read_episode(info, fields=["state"], cameras=[]).data["state"].shape[1])
    raise ValueError(f"the store has no episode of tasks {list(task_ids)}: nothing to size the policy from")

