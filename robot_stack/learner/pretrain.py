"""Offline pre-training from an episode store (Cal-QL or BC), with progress and periodic evaluation."""

from __future__ import annotations

import logging
import pathlib
from typing import Callable

from tqdm import tqdm

from robot_stack.learner.builder import PolicySpec, build_learner, learner_config, loader_config, state_dim_of
from robot_stack.learner.replay_loader import ReplayLoader, ReplayLoaderConfig

log = logging.getLogger(__name__)
PROGRESS_CHUNK = 50  # updates between progress-bar refreshes


def pretrain(store, checkpoint_dir: str | pathlib.Path, spec: PolicySpec, updates: int, *,
             eval_every: int = 0, evaluate: Callable[[object], dict] | None = None,
             loader: ReplayLoaderConfig | None = None, progress: bool = True) -> dict:
    """Train ``updates`` steps on every committed non-eval episode; write one checkpoint version.

    ``evaluate(policy) -> metrics`` (e.g. a sim rollout) runs every ``eval_every`` updates and at
    the end; its last result is stored in the checkpoint's metrics. ``spec.init_from`` starts the
    learner's encoder and actor from another checkpoint's policy (Cal-QL from a BC policy).
    """
    from policies.checkpoint import CheckpointManager
    from policies.trainer import Trainer

    from robot_stack.session.adapters import CheckpointPolicy

    if updates < 1:
        raise ValueError(f"updates must be >= 1, got {updates}")
    config = learner_config(spec, state_dim_of(store, spec.task_ids))
    replay_loader = ReplayLoader(store, loader_config(spec, config, loader))
    n = replay_loader.load_new()
    sizes = replay_loader.sizes()
    if n == 0 or sum(sizes.values()) < config.batch_size:
        raise ValueError(f"only {sum(sizes.values())} transitions of tasks {list(spec.task_ids)} in the store "
                         f"({n} episodes); need at least one batch ({config.batch_size})")
    learner = build_learner(spec, config)
    if spec.init_from:
        init_policy_from(learner, spec.init_from, spec.task_ids)
    manager = CheckpointManager(checkpoint_dir)
    trainer = Trainer(learner, replay_loader.replay(), seed=spec.seed, checkpoints=manager)
    log.info("pre-training %s on %d episodes (%s) for %d updates", spec.kind, n, sizes, updates)
    done, stats, evals = 0, {}, []
    bar = tqdm(total=updates, desc=f"pretrain {spec.kind}", disable=not progress, unit="upd")
    while done < updates:
        # Short chunks keep the progress bar moving; evaluations land exactly on multiples of eval_every.
        next_eval = (done // eval_every + 1) * eval_every if eval_every > 0 else updates
        k = min(PROGRESS_CHUNK, next_eval - done, updates - done)
        stats = trainer.run(k)
        done += k
        bar.update(k)
        bar.set_postfix({key.split("/")[-1]: f"{v:.3g}" for key, v in stats.items()
                         if key in ("losses/critic", "losses/actor", "bc/mode_mse", "time/updates_per_s")})
        if evaluate is not None and (done == updates or (eval_every > 0 and done % eval_every == 0)):
            result = evaluate(CheckpointPolicy(learner.agent(), spec.task_ids))
            evals.append({"updates": done, **result})
            log.info("eval after %d updates: %s", done, result)
    bar.close()
    metrics = {k: float(v) for k, v in stats.items()}
    if evals:
        metrics.update({f"eval/{k}": v for k, v in evals[-1].items() if isinstance(v, (int, float))})
    path = trainer.checkpoint(metrics=metrics, data_seen={"episodes": n, **{f"transitions/{k}": v for k, v in sizes.items()}},
                              extra={"task_ids": list(spec.task_ids)})
    return {"checkpoint": str(path), "version": manager.latest_version(), "episodes": n, "transitions": sizes,
            "updates": done, "stats": metrics, "evals": evals, "state_dim": config.network.state_dim}


def init_policy_from(learner, checkpoint: str | pathlib.Path, task_ids: tuple[str, ...] = ()) -> int:
    """Copy the policy (encoder + actor) of ``checkpoint`` into ``learner``; returns its version.

    Cal-QL's image encoder learns only from sparse-reward TD and, on CPU budgets, learns almost
    nothing useful; starting it (and the actor) from a BC policy trained on the same data gives
    the critic features that already locate the cube. The critic and target start fresh.
    Raises ``CheckpointError`` for a corrupt checkpoint or one trained with another order of
    ``task_ids`` (when given), and ``ValueError`` for another network shape.
    """
    from robot_stack.session.adapters import load_task_agent

    source = load_task_agent(checkpoint, task_ids)
    try:
        learner.agent().load_weights(source.encoder.state_dict(), source.actor.state_dict(), version=learner.step)
    except RuntimeError as exc:
        raise ValueError(f"init_from {checkpoint}: its policy does not fit this learner's networks "
                         f"(same preset, cameras, image size and tasks needed): {str(exc).splitlines()[0]}") from None
    log.info("initialised %s encoder + actor from %s (v%d)", learner.kind, checkpoint, source.version)
    return source.version
