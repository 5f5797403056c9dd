"""``robot-stack train-reward``: train, calibrate and evaluate a success classifier from the store.

    robot-stack train-reward --store runs/sim/episodes.zarr --out runs/sim/classifier \
        --task put_cube_in_bowl="put the cube in the bowl" --task take_cube_out_of_bowl="take the cube out of the bowl"
    robot-stack train-reward --store ... --out runs/sim/classifier --retrain   # from human labels

Each run writes a new version directory (v0001, v0002, ...) plus a JSON report and a
reliability plot next to it; the reward node picks the newest version up while running.
"""

from __future__ import annotations

import argparse
import json

from robot_stack.cli import CliError
from robot_stack.config import add_config_args, from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from reward_vlm import RewardTrainConfig

    from robot_stack.reward.training import RewardDataConfig

    parser.add_argument("--store", required=True, help="episode store (directory or object-store URL)")
    parser.add_argument("--out", required=True, help="classifier root; a new version vNNNN is written under it")
    parser.add_argument("--task", action="append", default=[], metavar="ID=INSTRUCTION",
                        help="a task to classify (repeatable); default: every task with labelled episodes")
    parser.add_argument("--retrain", action="store_true",
                        help="fine-tune the newest version on human-labelled episodes (disagreements weighted up)")
    parser.add_argument("--upweight", type=float, default=5.0, help="loss weight of frames where humans disagreed (--retrain)")
    add_config_args(parser, RewardDataConfig, "data.")
    add_config_args(parser, RewardTrainConfig, "train.")


def _tasks(args, store) -> list[dict]:
    if args.task:
        tasks = []
        for spec in args.task:
            tid, sep, instruction = spec.partition("=")
            if not sep or not tid or not instruction:
                raise CliError(f"--task expects ID=INSTRUCTION, got {spec!r}")
            tasks.append({"id": tid, "instruction": instruction})
        return tasks
    seen: dict[str, str] = {}
    for e in store.episodes():
        seen.setdefault(e.task_id, e.instruction or e.task_id.replace("_", " "))
    if not seen:
        raise CliError(f"the store {args.store} has no episodes")
    return [{"id": k, "instruction": v} for k, v in seen.items()]


def run(args: argparse.Namespace) -> int:
    from reward_vlm import RewardTrainConfig

    from robot_stack.reward.training import RewardDataConfig, retrain_from_human_labels, train_from_store
    from robot_stack.store import EpisodeStore, StoreError

    data_cfg = from_args(RewardDataConfig, args, "data.")
    train_cfg = from_args(RewardTrainConfig, args, "train.")
    try:
        store = EpisodeStore.open(args.store, read_only=True)
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    try:
        if args.retrain:
            target, summary = retrain_from_human_labels(store, args.out, data_cfg, args.upweight)
        else:
            target, summary = train_from_store(store, _tasks(args, store), args.out, data_cfg, train_cfg)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    print(json.dumps({"classifier": str(target), **summary}, default=float, indent=2))
    return 0
