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
it also rolls the policy out in sim from the same starts: with the actor's mean action, with one
sample of it per step, and with the best of ``--best-of`` sampled actions by Q. A critic that
cannot pick better actions than the actor's mean cannot teach the actor either (``--eval-room
session``: from starts in the ``--run`` session's own layout). ``--branch-starts``
asks the simulator directly: at states along the mean rollout, which of the actor's candidate
actions, tried once each, end in success, and whether the critic's Q knows.
"""

from __future__ import annotations

import argparse
import json

from robot_stack.cli import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from robot_stack.learner.builder import PolicySpec

    parser.add_argument("--run", default="", help="a session run directory: its store and checkpoints "
                        "(the options below override them)")
    parser.add_argument("--store", default="", help="episode store (directory or object-store URL)")
    parser.add_argument("--checkpoints", default="", help="checkpoint directory (or one policy-NNNNNN folder)")
    parser.add_argument("--version", type=int, default=0, help="policy version (0: the newest)")
    parser.add_argument("--task-ids", default="", help="the policy's task ids in its task-index order, comma-separated "
                        f"(default: the checkpoint's, else {','.join(PolicySpec.task_ids)})")
    parser.add_argument("--robots", default="", help="robot groups to sample from, comma-separated ('' = all)")
    parser.add_argument("--samples", type=int, default=2048, help="transitions in the batch (default: 2048)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the batch and of the actions the report samples")
    parser.add_argument("--eval-scene", default="", help="also roll out in this sim scene: the actor's mean action, "
                        "one sample of it, and the best of --best-of samples by Q ('' = no rollouts)")
    parser.add_argument("--eval-task", default="", help="task of the rollouts (default: the first of --task-ids)")
    parser.add_argument("--eval-episodes", type=int, default=100, help="rollouts per way of acting (default: 100; "
                        "0 = none, e.g. for --branch-starts alone)")
    parser.add_argument("--eval-horizon", type=int, default=60, help="steps per rollout (default: 60, the session's)")
    parser.add_argument("--eval-room", choices=("new", "session"), default="new",
                        help="rollouts and branch probes: new, a new layout per start (default); session, the "
                             "layout the --run session practised in, only the object moved")
    parser.add_argument("--best-of", type=int, default=16, help="actions sampled per step for the pick by Q (default: 16)")
    parser.add_argument("--branch-starts", type=int, default=0, help="with --eval-scene: from this many starts, branch "
                        "the simulator along the mean rollout and try the mean and samples once each, so the ground "
                        "truth says which succeed and whether Q knows (default: 0, off; 50 take ~6 min on 2 cores)")
    parser.add_argument("--branch-every", type=int, default=8, help="steps between branch points (default: 8)")
    parser.add_argument("--branch-candidates", type=int, default=8, help="actions tried per branch point, the mean "
                        "and samples (default: 8)")
    parser.add_argument("--branch-continuations", type=int, default=1, help="1: the mean action finishes each try "
                        "(exact, deterministic); R > 1: the stochastic policy finishes it R times, giving each "
                        "candidate's success rate, Q's own meaning (R times slower; default: 1)")


def critic_report(store, checkpoints: str, version: int = 0, task_ids: tuple[str, ...] = (), robots: tuple[str, ...] = (),
                  samples: int = 2048, seed: int = 0, eval_scene: str = "", eval_task: str = "", best_of: int = 16,
                  eval_episodes: int = 100, eval_horizon: int = 60, branch_starts: int = 0, branch_every: int = 8,
                  branch_candidates: int = 8, branch_continuations: int = 1, eval_layout_seed: int | None = None) -> dict:
    """The critic report of a Cal-QL checkpoint on ``samples`` transitions of ``store``.

    ``task_ids`` (the policy's task-index order; empty: those the checkpoint records, else
    ``PolicySpec``'s default pair) select and number the episodes as the learner did; ids that
    differ from the checkpoint's raise ``CheckpointError``. Returns the report plus ``version``, ``updates`` and
    ``transitions`` (per replay source); with ``eval_scene``, also ``_best_of_rollouts``'s rates
    and, with ``branch_starts``, ``branch_in_sim``'s ground truth on the critic's ranking; both from
    starts in new layouts, or with ``eval_layout_seed`` in the layout the scene builds from it.
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
    if branch_starts and not eval_scene:
        raise ValueError("--branch-starts needs --eval-scene")
    if branch_starts < 0 or branch_every < 1 or branch_candidates < 2 or branch_continuations < 1:
        raise ValueError("--branch-starts must be >= 0, --branch-every and --branch-continuations >= 1 "
                         "and --branch-candidates >= 2")
    loader = ReplayLoader(store, loader_config(spec, config, ReplayLoaderConfig(robots=tuple(robots))))
    loader.load_new()
    sizes = loader.sizes()
    if sum(sizes.values()) == 0:
        raise ValueError(f"no transitions of tasks {list(spec.task_ids)} (robots {list(robots) or 'all'}) in the store")
    batch = learner.to_torch(loader.replay().sample(samples, np.random.default_rng(seed)))
    out = {"version": int(meta["version"]), "updates": int(meta.get("step", 0)), "transitions": sizes,
           **learner.critic_report(batch, seed=seed)}
    if eval_scene and eval_episodes:
        out.update(_best_of_rollouts(learner, spec.task_ids, eval_scene, eval_task, best_of, eval_episodes, eval_horizon,
                                     eval_layout_seed))
    if branch_starts:
        from robot_stack.session.adapters import CheckpointPolicy
        from robot_stack.session.evaluate import branch_in_sim

        net = learner.config.network
        agent = learner.agent()  # best_of 0: the mean action is the actor's mode
        out.update(branch_in_sim(CheckpointPolicy(agent, spec.task_ids), eval_scene, eval_task, branch_starts,
                                 branch_candidates, branch_every, image_size=net.encoder.image_size,
                                 cameras=tuple(net.image_keys), horizon=eval_horizon,
                                 continuations=branch_continuations, progress=True, layout_seed=eval_layout_seed))
    return out


def _best_of_rollouts(learner, task_ids, scene: str, task: str, best_of: int, episodes: int, horizon: int,
                      layout_seed: int | None = None) -> dict:
    """Ground-truth success in ``scene``, from the same starts, of the actor's mean action, of one
    sample of it per step, and of the best by the critic's Q among the mean and ``best_of`` samples;
    keys ``eval/...``. Best-of above one sample says the critic ranks the actor's actions at all;
    above the mean, that it could teach the actor. The settings are checked (``_check_rollouts``)
    before the data is loaded."""
    from robot_stack.session.adapters import CheckpointPolicy
    from robot_stack.session.evaluate import evaluate_in_sim

    agent = learner.agent()
    net = learner.config.network
    rates = {}
    for name, k, deterministic in (("mean", 0, True), ("sampled", 0, False), (f"best_of_{best_of}", best_of, True)):
        agent.best_of = k  # the samples' noise follows from the learner's seeded construction
        r = evaluate_in_sim(CheckpointPolicy(agent, task_ids), scene, task, episodes, image_size=net.encoder.image_size,
                            cameras=tuple(net.image_keys), horizon=horizon, deterministic=deterministic, progress=True,
                            layout_seed=layout_seed)
        rates[f"eval/{name}_success"] = r["success_rate"]
    return {"eval/task": task, "eval/episodes": episodes, **rates}


def _check_rollouts(scene: str, task: str, task_ids, best_of: int, episodes: int, horizon: int) -> None:
    from hardware.sim.scenes import SCENES

    if scene not in SCENES:
        raise ValueError(f"unknown --eval-scene {scene!r}; sim scenes: {sorted(SCENES)}")
    if task not in task_ids:
        raise ValueError(f"--eval-task {task!r} is not one of the policy's tasks {list(task_ids)}")
    if best_of < 2 or episodes < 0 or horizon < 1:
        raise ValueError("--best-of must be >= 2, --eval-episodes >= 0 and --eval-horizon >= 1")


def run(args: argparse.Namespace) -> int:
    from policies.checkpoint import CheckpointError

    from robot_stack.store import EpisodeStore, StoreError

    split = lambda text: tuple(x.strip() for x in text.split(",") if x.strip())  # noqa: E731
    store_url, checkpoints, task_ids = args.store, args.checkpoints, split(args.task_ids)
    layout_seed = None
    try:
        if args.run:
            # Checkpoints record their task ids, so the run dir only has to name the paths.
            from robot_stack.session.runner import SessionPaths, load_session_config

            paths = SessionPaths(args.run).of_a_session()
            store_url, checkpoints = store_url or str(paths.store), checkpoints or str(paths.checkpoints)
            if args.eval_room == "session":
                layout_seed = load_session_config(args.run).seed  # the session's scene is built from it
        elif args.eval_room == "session":
            raise CliError("--eval-room session needs --run (the session whose room it is)")
        if not (store_url and checkpoints):
            raise CliError("give --run (a session run directory) or both --store and --checkpoints")
        store = EpisodeStore.open(store_url, read_only=True)
        out = critic_report(store, checkpoints, args.version, task_ids, split(args.robots), args.samples, args.seed,
                            args.eval_scene, args.eval_task, args.best_of, args.eval_episodes, args.eval_horizon,
                            args.branch_starts, args.branch_every, args.branch_candidates, args.branch_continuations,
                            layout_seed)
    except (StoreError, CheckpointError, ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from exc
    print(json.dumps(out, indent=2))
    return 0
