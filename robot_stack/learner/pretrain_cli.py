"""``robot-stack pretrain``: offline pre-training (Cal-QL or BC) from an episode store.

    robot-stack pretrain --store runs/sim/episodes.zarr --checkpoints runs/sim/checkpoints \
        --updates 2000 --eval-every 500 --eval-scene widowx250_cube_bowl

Writes the next policy version (safetensors + JSON) into the checkpoint directory; with
``--eval-scene`` the policy is rolled out in that sim scene (ground-truth success) every
``--eval-every`` updates and at the end.
"""

from __future__ import annotations

import argparse
import json
import logging

from robot_stack.cli import CliError
from robot_stack.config import add_config_args, from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from robot_stack.learner.builder import PolicySpec
    from robot_stack.learner.replay_loader import ReplayLoaderConfig

    parser.add_argument("--store", required=True, help="episode store (directory or object-store URL)")
    parser.add_argument("--checkpoints", required=True, help="checkpoint directory; a new policy version is written")
    parser.add_argument("--updates", type=int, default=2000, help="gradient updates (default: 2000)")
    parser.add_argument("--eval-every", type=int, default=0, help="evaluate every N updates (0: only at the end)")
    parser.add_argument("--eval-scene", default="", help="sim scene for evaluation rollouts ('' = no evaluation)")
    parser.add_argument("--eval-episodes", type=int, default=5, help="rollouts per task per evaluation")
    add_config_args(parser, PolicySpec, "policy.")
    add_config_args(parser, ReplayLoaderConfig, "data.")


def sim_evaluator(scene: str, task_ids, episodes: int, image_size: int, cameras):
    """evaluate(policy) -> {"<task>/success_rate": ..., "success_rate": mean} over the scene's tasks."""
    from robot_stack.session.evaluate import evaluate_in_sim

    def evaluate(policy) -> dict:
        out = {}
        for task in task_ids:
            r = evaluate_in_sim(policy, scene, task, episodes, image_size=image_size, cameras=tuple(cameras))
            out[f"{task}/success_rate"] = r["success_rate"]
        out["success_rate"] = sum(out.values()) / len(out)
        return out

    return evaluate


def run(args: argparse.Namespace) -> int:
    from robot_stack.learner.builder import PolicySpec, learner_config
    from robot_stack.learner.pretrain import pretrain
    from robot_stack.learner.replay_loader import ReplayLoaderConfig
    from robot_stack.store import EpisodeStore, StoreError

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    spec = from_args(PolicySpec, args, "policy.")
    data = from_args(ReplayLoaderConfig, args, "data.")
    try:
        store = EpisodeStore.open(args.store, read_only=True)
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    evaluate = None
    if args.eval_scene:
        side = spec.image_size or learner_config(spec, 1).network.encoder.image_size
        from hardware.sim.scenes import SCENES

        if args.eval_scene not in SCENES:
            raise CliError(f"unknown --eval-scene {args.eval_scene!r}; sim scenes: {sorted(SCENES)}")
        sim_tasks = [t for t in spec.task_ids if t in {x.id for x in SCENES[args.eval_scene].tasks}]
        evaluate = sim_evaluator(args.eval_scene, sim_tasks, args.eval_episodes, side, spec.cameras)
    try:
        summary = pretrain(store, args.checkpoints, spec, args.updates, eval_every=args.eval_every,
                           evaluate=evaluate, loader=data)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    print(json.dumps(summary, indent=2, default=str))
    return 0
