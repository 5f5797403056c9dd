"""The learner service's training loop, free of ROS: tail the store, train, publish versions.

Resume is the default: on start the newest checkpoint (weights + optimiser state, e.g. the
offline pre-training result) is restored and the whole store is reloaded, so a crashed learner
continues where its last checkpoint left it. The update-to-data ratio bounds online training:
after the first ``warmup_updates`` only ``utd_ratio`` updates per new online transition are done,
so a slow robot does not make the learner overfit its first few episodes.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from robot_stack.config import json_object
from robot_stack.learner.builder import PolicySpec, build_learner, learner_config, loader_config, state_dim_of
from robot_stack.learner.replay_loader import ReplayLoader, ReplayLoaderConfig

log = logging.getLogger(__name__)


@dataclass
class LearnerServiceConfig:
    """The learner service: where data and checkpoints live, how fast it trains, when it publishes."""

    store: str = "episodes.zarr"  # episode store to tail (directory or object-store URL)
    checkpoints: str = "checkpoints"  # checkpoint directory (read to resume, written with new versions)
    utd_ratio: float = 1.0  # updates per new online transition once warm (update-to-data ratio)
    warmup_updates: int = 0  # updates allowed before/without online data (e.g. to continue pre-training)
    publish_every: int = 200  # updates between new policy versions (with reinit_every: ignored, a version per round)
    reinit_every: int = 0  # updates per round: start the learner from fresh weights (policy.init_from's, if set) every this many updates, trained on all the data so far, and publish only finished rounds (self-imitation: bench/session_runs.md); 0 = one learner throughout
    chunk_updates: int = 10  # updates between store polls and metric publishes
    max_updates: int = 0  # stop training after this many updates in this run (0 = no limit)
    keep_checkpoints: int = 5  # newest checkpoint versions kept on disk (0 = all)
    tensorboard_dir: str = ""  # TensorBoard log directory ('' = none)
    wait_for_data_s: float = 600.0  # how long to wait for the first episodes before giving up
    policy: PolicySpec = field(default_factory=PolicySpec)  # the policy being trained
    learner_overrides: str = ""  # JSON object of dotted LearnerConfig fields the policy spec does not carry, e.g. {"calql.alpha_lr": 0}
    data: ReplayLoaderConfig = field(default_factory=ReplayLoaderConfig)  # replay sources and mixing

    def __post_init__(self) -> None:
        if self.utd_ratio < 0:
            raise ValueError(f"utd_ratio must be >= 0, got {self.utd_ratio}")
        for name in ("warmup_updates", "max_updates", "keep_checkpoints", "reinit_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("publish_every", "chunk_updates"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.wait_for_data_s <= 0:
            raise ValueError(f"wait_for_data_s must be > 0, got {self.wait_for_data_s}")
        json_object("learner_overrides", self.learner_overrides)


class LearnerService:
    """Owns the learner, its replay and its checkpoints; ``run()`` trains until ``stop()``."""

    def __init__(self, cfg: LearnerServiceConfig, store=None) -> None:
        from policies.checkpoint import CheckpointManager
        from policies.learner import OptimizerStateMismatch
        from policies.trainer import Trainer

        from robot_stack.store import EpisodeStore

        self.cfg = cfg
        self.store = store or EpisodeStore.create(cfg.store)
        self._stop = threading.Event()
        self.config = learner_config(cfg.policy, self._wait_for_state_dim(), json_object("learner_overrides", cfg.learner_overrides))
        self.learner = build_learner(cfg.policy, self.config)
        self.manager = CheckpointManager(cfg.checkpoints, keep=cfg.keep_checkpoints)
        self.version = self.manager.latest_version() or 0
        self.objective_changes: list[str] = []  # loss settings that differ from the resumed checkpoint's
        if self.version:
            try:
                ckpt = self.manager.restore(self.learner, self.version)
            except OptimizerStateMismatch as exc:
                # e.g. pre-trained with a frozen encoder, fine-tuned with it trained: the weights are what matters
                log.warning("v%d: %s; weights restored, optimiser state starts afresh", self.version, exc)
                self.learner = build_learner(cfg.policy, self.config)  # no half-loaded optimisers
                ckpt = self.manager.restore(self.learner, self.version, with_optimizer=False)
            log.info("resumed from checkpoint v%d (%d updates)", self.version, self.learner.step)
            self.objective_changes = self.config.objective_changes(ckpt.meta.get("config") or {})
            if self.objective_changes:
                log.warning(
                    "v%d was trained with other loss settings than this learner's; going on with %s. "
                    "Give the learner the policy.* parameters (and learner_overrides) the checkpoint was trained with "
                    "unless that is meant.", self.version, "; ".join(self.objective_changes))
        self.loader = ReplayLoader(self.store, loader_config(cfg.policy, self.config, cfg.data))
        self.loader.load_new()
        self.online_at_start = self._online_transitions()
        self.trainer = Trainer(self.learner, self.loader.replay(), seed=cfg.policy.seed, checkpoints=self.manager)
        self.updates = 0  # updates in this run
        self._since_publish = 0
        if cfg.reinit_every and self.version:
            self._reinit()  # the restored version is a finished round (or pre-training): it is already published
        self.metrics: dict = {}
        self._lock = threading.Lock()
        self.tb = None
        if cfg.tensorboard_dir:
            from policies.tensorboard_log import TensorBoardLogger

            self.tb = TensorBoardLogger(cfg.tensorboard_dir)

    def _wait_for_state_dim(self) -> int:
        deadline = time.monotonic() + self.cfg.wait_for_data_s
        while True:
            try:
                return state_dim_of(self.store, self.cfg.policy.task_ids)
            except ValueError:
                if time.monotonic() > deadline or self._stop.wait(1.0):
                    raise
                log.info("waiting for the first episodes in %s", self.cfg.store)

    def _online_transitions(self) -> int:
        """Steps the robots recorded (online episodes and teleoperated demos), each counted once."""
        steps = self.loader.stats["steps_by_source"]
        return steps["online"] + steps["intervention"]

    def allowed_updates(self) -> int:
        """Updates the update-to-data ratio allows right now."""
        new_online = self._online_transitions() - self.online_at_start
        budget = self.cfg.warmup_updates + int(self.cfg.utd_ratio * new_online) - self.updates
        if self.cfg.max_updates:
            budget = min(budget, self.cfg.max_updates - self.updates)
        return max(0, budget)

    def step(self) -> bool:
        """Load new episodes, do one chunk of updates if allowed; returns whether it trained."""
        if self.loader.drain():
            self.trainer.replay = self.loader.replay()  # a new source may have become non-empty
        n = min(self.cfg.chunk_updates, self.allowed_updates())
        if self.cfg.reinit_every:
            n = min(n, self.cfg.reinit_every - self._since_publish)
        if n <= 0 or sum(self.loader.sizes().values()) < self.config.batch_size:
            return False
        stats = self.trainer.run(n)
        self.updates += n
        self._since_publish += n
        if self._since_publish >= (self.cfg.reinit_every or self.cfg.publish_every):
            self.publish_checkpoint(stats)
            if self.cfg.reinit_every:
                self._reinit()
        self._record(stats)
        return True

    def _reinit(self) -> None:
        """Start a new round: fresh weights and optimiser state (``policy.init_from``'s encoder and
        actor when set). Rounds make every published version one trained alike (the full
        ``reinit_every`` updates on all the data so far); the fresh start itself is not what lifts
        self-imitation: training on from the last round's weights for as many updates did as well
        (bench/session_runs.md, "Improvement without a critic")."""
        learner = build_learner(self.cfg.policy, self.config)
        if self.cfg.policy.init_from:
            from robot_stack.learner.pretrain import init_policy_from

            init_policy_from(learner, self.cfg.policy.init_from, self.cfg.policy.task_ids)
        # versions stay counted in updates: a round's learner continues the last one's step count
        learner.step, learner.samples_seen = self.learner.step, self.learner.samples_seen
        self.learner = self.trainer.learner = learner

    @property
    def round_updates(self) -> int:
        """reinit_every: updates of the round in training (each round is published as it ends, and
        only then, so these are the updates since the last version)."""
        return self._since_publish

    def publish_checkpoint(self, stats: dict | None = None) -> int:
        sizes = self.loader.sizes()
        self.trainer.checkpoint(metrics={k: float(v) for k, v in (stats or {}).items()},
                                data_seen={f"transitions/{k}": v for k, v in sizes.items()},
                                extra={"task_ids": list(self.cfg.policy.task_ids)})
        self.version = self.manager.latest_version() or self.version
        self._since_publish = 0
        log.info("published policy v%d after %d updates", self.version, self.learner.step)
        return self.version

    def _record(self, stats: dict) -> None:
        sizes = self.loader.sizes()
        m = {k: float(v) for k, v in stats.items()}
        m.update({"updates": self.learner.step, "updates_this_run": self.updates, "policy_version": self.version,
                  "updates_per_s": m.get("time/updates_per_s", 0.0),
                  **{f"data/{k}": v for k, v in sizes.items()},  # sampleable transitions per buffer
                  **{f"data/steps_{k}": v for k, v in self.loader.stats["steps_by_source"].items()},  # recorded steps
                  "data/episodes": sum(self.loader.stats["loaded"].values())})
        with self._lock:
            self.metrics = m
        if self.tb is not None:
            self.tb.log(self.learner.step, m)

    def snapshot(self) -> dict:
        """The latest training metrics, plus ``objective_changes`` when the resumed checkpoint was
        trained with other loss settings (the dashboard shows them: a missing ``policy.*`` line in
        a lab's launch file is easy to overlook in a log)."""
        with self._lock:
            out = dict(self.metrics)
        if self.objective_changes:
            out["objective_changes"] = list(self.objective_changes)
        return out

    def run(self, idle_s: float = 0.2) -> None:
        """Train until ``stop()`` (or ``max_updates``)."""
        self.loader.start()
        try:
            while not self._stop.is_set():
                if self.cfg.max_updates and self.updates >= self.cfg.max_updates:
                    break
                if not self.step():
                    self._stop.wait(idle_s)
        finally:
            self.loader.stop()
            if self._since_publish and self.cfg.reinit_every:  # a half-trained fresh network is worse than the last round's
                log.info("round cut short after %d of %d updates: not published", self._since_publish, self.cfg.reinit_every)
            elif self._since_publish:
                self.publish_checkpoint()
            if self.tb is not None:
                self.tb.close()

    def stop(self) -> None:
        self._stop.set()
