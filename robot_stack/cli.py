"""`robot-stack` command line.

Each subcommand lives in its own module that defines ``add_arguments(parser)`` and
``run(args) -> int``; the table below maps names to modules so that ``robot-stack --help``
stays fast (modules are imported only when their subcommand runs or its help is asked for).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). Add a subcommand by adding one row.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "up": ("robot_stack.launcher", "start a node graph from YAML as separate processes"),
    "node": ("robot_stack.runtime.node_main", "run one node (the launcher and ROS 2 launch files call this)"),
    "store": ("robot_stack.store.cli", "inspect, relabel, import and export an episode store"),
    "pretrain": ("robot_stack.learner.pretrain_cli", "offline pre-training (Cal-QL/BC) from an episode store"),
    "critic-report": ("robot_stack.learner.critic_report_cli", "what a Cal-QL checkpoint's critic has learned on a store's data"),
    "learner": ("robot_stack.learner.service_cli", "the learner service: tails the store, trains, publishes checkpoints"),
    "train-reward": ("robot_stack.reward.train_cli", "train and calibrate a success classifier from the store"),
    "monitor": ("robot_stack.dashboard.cli", "the web dashboard"),
    "run": ("robot_stack.session.cli", "an autonomous reset-free fine-tuning session (default: simulated WidowX 250)"),
    "evaluate": ("robot_stack.session.evaluate_cli", "score a simulated session's policy versions by the simulator's ground truth"),
}


class CliError(Exception):
    """An error the user can fix; printed without a traceback, exit code 2."""


def _load(name: str):
    module_name, _ = SUBCOMMANDS[name]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == module_name or module_name.startswith(exc.name + ".")):
            raise CliError(f"'robot-stack {name}' is not available in this build ({module_name} missing)") from exc
        raise CliError(
            f"'robot-stack {name}' needs the Python package '{exc.name}', which is not installed; "
            f"install the matching extra (see README) or run 'make setup'"
        ) from exc


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robot-stack",
        description="Autonomous, reset-free robot policy fine-tuning on ROS 2.",
    )
    parser.add_argument("--version", action="version", version=f"robot-stack {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Only the chosen subcommand's module is imported, so one missing optional extra does not
    # break the others' help.
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (_, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            _load(name).add_arguments(p)
    return parser


def _version() -> str:
    from robot_stack import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return 2
        return int(_load(args.command).run(args) or 0)
    except CliError as exc:
        print(f"robot-stack: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # Run through the package module, not this __main__ copy, so subcommands raising
    # robot_stack.cli.CliError are caught by the same class.
    from robot_stack.cli import main as _main

    sys.exit(_main())
