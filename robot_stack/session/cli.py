r"""``robot-stack run``: an autonomous, reset-free fine-tuning session.

    robot-stack run                                  # simulated WidowX 250, cube <-> bowl, dashboard
    robot-stack run --run_dir runs/exp1 --policy.preset gpu --pretrain_updates 20000
    robot-stack run --resume runs/sim-widowx250      # continue after a crash or a stop
    robot-stack run --scene '' --arm franka --arm_config '{"host": "172.16.0.2"}' --camera_driver realsense \
        --forward_task ... --pretrained ckpt/ --reward.classifier clf/   # a real robot

First run: prior data from the scripted experts, the success classifier and an offline Cal-QL
pre-training are made and cached in the run directory; then the node graph (controller, camera,
reward, actor, learner, dashboard) starts as separate processes and the dashboard URL and
operator token are printed. Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from robot_stack.cli import CliError
from robot_stack.config import ConfigError, add_config_args, from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from robot_stack.session.config import SessionConfig

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("--resume", metavar="RUN_DIR", default="",
                        help="continue the session in RUN_DIR with its saved config (other flags override it)")
    parser.add_argument("--prepare-only", action="store_true", help="make prior data, classifier and policy, then exit")
    add_config_args(parser, SessionConfig)


def run(args: argparse.Namespace) -> int:
    from robot_stack.session.config import SessionConfig
    from robot_stack.session.runner import Session, load_session_config, run_session

    try:
        given_dir = getattr(args, "cfg::run_dir", None)
        if args.resume and given_dir is not None and pathlib.Path(given_dir).resolve() != pathlib.Path(args.resume).resolve():
            raise CliError(f"--run_dir {given_dir} and --resume {args.resume} name different runs: a resumed "
                           "session continues in its own directory (copy it first to continue elsewhere)")
        base = load_session_config(args.resume) if args.resume else None
        cfg = from_args(SessionConfig, args, base=base)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from exc
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    try:
        if args.prepare_only:
            Session(cfg).prepare()
            return 0
        return run_session(cfg)
    except (ValueError, RuntimeError) as exc:
        print(f"robot-stack run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
