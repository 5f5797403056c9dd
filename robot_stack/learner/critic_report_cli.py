"""``robot-stack critic-report``: what a Cal-QL checkpoint's critic has learned on a store's data.

    robot-stack critic-report --run runs/sim-widowx250 [--version 12] [--robots sim-widowx250] \
        [--eval-scene widowx250_cube_bowl]
    robot-stack critic-report --store episodes.zarr --checkpoints checkpoints --task-ids fwd_task,bwd_task

Samples a batch the way the learner does (same replay mixing) and prints, as JSON, Q at the data's
actions against the Monte-Carlo returns and the TD targets, by kind of transition (the success
step, earlier steps of successful episodes, failed episodes), and Q at the data's actions against
the actor's and uniform random ones (``CalQLLearner.critic_report``). Use it when a session's
success curve stays flat: it tells a critic that fits nothing from one that only says "stay near
the data" (CQL's push-down on random actions far beyond the return range). With ``--eval-scene``
it also rolls the policy out in sim twice from the same starts: with the actor's mean action, and
with the best of ``--best-of`` sampled actions by Q. A critic that cannot pick better actions than
the actor's mean cannot teach the actor either.
"""

from __future__ import annotations

import argparse
import json

from robot_stack.cli import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from robot_stack.learner.builder import PolicySpec

    parser.add_argument("--run", default="", help="a session run directory: its store, checkpoints and task ids "
                        "(the options below override them)")
    parser.add_argument("--store", default="", help="episode store (directory or object-store URL)")
    parser.add_argument("--checkpoints", default="", help="checkpoint directory (or one policy-NNNNNN folder)")
    parser.add_argument("--version", type=int, default=0, help="policy version (0: the newest)")
    parser.add_argument("--task-ids", default="", help="the policy's task ids in its task-index order, comma-separated "
                        f"(default: the --run session's, else the checkpoint's, else {','.join(PolicySpec.task_ids)})")
    parser.add_argument("--robots", default="", help="robot groups to sample from, comma-separated ('' = all)")
    parser.add_argument("--samples", type=int, default=2048, help="transitions in the batch (default: 2048)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the batch and of the actions the report samples")
    parser.add_argument("--eval-scene", default="", help="also roll out in this sim scene: the actor's mean action "
                        "against the best of --best-of samples by Q ('' = no rollouts)")
    parser.add_argument("--eval-task", default="", help="task of the rollouts (default: the first of --task-ids)")
    parser.add_argument("--eval-episodes", type=int, default=100, help="rollouts per way of acting (default: 100)")
    parser.add_argument("--eval-horizon", type=int, default=60, help="steps per rollout (default: 60, the session's)")
    parser.add_argument("--best-of", type=int, default=16, help="actions sampled per step for the pick by Q (default: 16)")


def critic_report(store, checkpoints: str, version: int = 0, task_ids: tuple[str, ...] = (), robots: tuple[str, ...] = (),
                  samples: int = 2048, seed: int = 0, eval_scene: str = "", eval_task: str = "", best_of: int = 16,
                  eval_episodes: int = 100, eval_horizon: int = 60) -> dict:
    """The critic report of a Cal-QL checkpoint on ``samples`` transitions of ``store``.

    ``task_ids`` (the policy's task-index order; empty: those the checkpoint records, else
    ``PolicySpec``'s default pair) select and number the episodes as the learner did; ids that
    differ from the checkpoint's raise ``CheckpointError``. Returns the report plus ``version``, ``updates`` and
    ``transitions`` (per replay source); with ``eval_scene``, also ``_best_of_rollouts``'s rates.
    Raises ValueError for a BC checkpoint, a store without enough transitions and bad rollout
    settings, and ``CheckpointError`` for a corrupt checkpoint.
    """
    import dataclasses

    import numpy as np

    from policies.calql import CalQLLearner
    from policies.checkpoint import CheckpointManager, load_checkpoint, resolve_checkpoint_dir
    from policies.config import LearnerConfig

    from robot_stack.learner.builder import PolicySpec, loader_config
    from robot_stack.learner.replay_loader import ReplayLoader, ReplayLoaderConfig
    from robot_stack.session.adapters import checkpoint_task_ids

    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    path = resolve_checkpoint_dir(CheckpointManager(checkpoints).path(version) if version else checkpoints)
    ckpt = load_checkpoint(path, with_optimizer=False)
    meta = ckpt.meta
    if meta.get("kind") != CalQLLearner.kind:
        raise ValueError(f"{path} is a {meta.get('kind')!r} checkpoint; only Cal-QL checkpoints have a critic")
    config = LearnerConfig.from_dict(meta["config"])
    config.device = "cpu"
    learner = CalQLLearner(config)
    learner.load_state_dict(ckpt.learner_state(), load_optimizer=False)
    learner.train(False)
    recorded = checkpoint_task_ids(meta, path, expected=task_ids)
    task_ids = tuple(task_ids or recorded or PolicySpec.task_ids)
    spec = dataclasses.replace(PolicySpec(), task_ids=task_ids, cameras=tuple(config.network.image_keys))
    eval_task = eval_task or spec.task_ids[0]
    if eval_scene:
        _check_rollouts(eval_scene, eval_task, spec.task_ids, best_of, eval_episodes, eval_horizon)
    loader = ReplayLoader(store, loader_config(spec, config, ReplayLoaderConfig(robots=tuple(robots))))
    loader.load_new()
    sizes = loader.sizes()
    if sum(sizes.values()) == 0:
        raise ValueError(f"no transitions of tasks {list(spec.task_ids)} (robots {list(robots) or 'all'}) in the store")
    batch = learner.to_torch(loader.replay().sample(samples, np.random.default_rng(seed)))
    out = {"version": int(meta["version"]), "updates": int(meta.get("step", 0)), "transitions": sizes,
           **learner.critic_report(batch, seed=seed)}
    if eval_scene:
        out.update(_best_of_rollouts(learner, spec.task_ids, eval_scene, eval_task, best_of, eval_episodes, eval_horizon))
    return out


def _best_of_rollouts(learner, task_ids, scene: str, task: str, best_of: int, episodes: int, horizon: int) -> dict:
    """Ground-truth success in ``scene`` of the actor's mean action and of the best by the critic's Q
    among the mean and ``best_of`` samples, from the same starts; keys ``eval/...``. The settings
    are checked (``_check_rollouts``) before the data is loaded."""
    from robot_stack.session.adapters import CheckpointPolicy
    from robot_stack.session.evaluate import evaluate_in_sim

    agent = learner.agent()
    net = learner.config.network
    rates = {}
    for name, k in (("mean", 0), (f"best_of_{best_of}", best_of)):
        agent.best_of = k  # the samples' noise follows from the learner's seeded construction
        r = evaluate_in_sim(CheckpointPolicy(agent, task_ids), scene, task, episodes, image_size=net.encoder.image_size,
                            cameras=tuple(net.image_keys), horizon=horizon, progress=True)
        rates[f"eval/{name}_success"] = r["success_rate"]
    return {"eval/task": task, "eval/episodes": episodes, **rates}


def _check_rollouts(scene: str, task: str, task_ids, best_of: int, episodes: int, horizon: int) -> None:
    from hardware.sim.scenes import SCENES

    if scene not in SCENES:
        raise ValueError(f"unknown --eval-scene {scene!r}; sim scenes: {sorted(SCENES)}")
    if task not in task_ids:
        raise ValueError(f"--eval-task {task!r} is not one of the policy's tasks {list(task_ids)}")
    if best_of < 2 or episodes < 1 or horizon < 1:
        raise ValueError("--best-of must be >= 2, --eval-episodes and --eval-horizon >= 1")


def run(args: argparse.Namespace) -> int:
    from policies.checkpoint import CheckpointError

    from robot_stack.store import EpisodeStore, StoreError

    split = lambda text: tuple(x.strip() for x in text.split(",") if x.strip())  # noqa: E731
    store_url, checkpoints, task_ids = args.store, args.checkpoints, split(args.task_ids)
    try:
        if args.run:
            from robot_stack.session.runner import Session, SessionPaths, load_session_config

            paths = SessionPaths(args.run)
            session = Session(load_session_config(args.run), log=lambda _: None)
            store_url, checkpoints = store_url or str(paths.store), checkpoints or str(paths.checkpoints)
            task_ids = task_ids or session.policy.task_ids
        if not (store_url and checkpoints):
            raise CliError("give --run (a session run directory) or both --store and --checkpoints")
        store = EpisodeStore.open(store_url, read_only=True)
        out = critic_report(store, checkpoints, args.version, task_ids, split(args.robots), args.samples, args.seed,
                            args.eval_scene, args.eval_task, args.best_of, args.eval_episodes, args.eval_horizon)
    except (StoreError, CheckpointError, ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from exc
    print(json.dumps(out, indent=2))
    return 0
