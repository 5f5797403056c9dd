"""``robot-stack store``: list, show, relabel, import, export and verify an episode store.

Examples::

    robot-stack store ls episodes.zarr --phase forward --outcome success
    robot-stack store show episodes.zarr widowx-1:000012
    robot-stack store relabel episodes.zarr widowx-1:000012 --outcome failure --by alice
    robot-stack store relabel episodes.zarr widowx-1:000012 --segment 0 --reason "about to hit the bowl" --by alice
    robot-stack store import episodes.zarr demos.hdf5 --robot prior-widowx --task-id cube_into_bowl
    robot-stack store export episodes.zarr out.hdf5 --eval no
    robot-stack store verify s3://bucket/episodes.zarr --s3-endpoint-url http://127.0.0.1:9000
"""

from __future__ import annotations

import argparse
import json
import sys

from robot_stack.store.episode_store import EpisodeStore, StoreConfig
from robot_stack.store.errors import StoreError
from robot_stack.store.meta import DATA_SOURCES, OUTCOME_SOURCES, PHASES


def _cli_error(msg: str):
    from robot_stack.cli import CliError

    return CliError(msg)


def _bool(value: str) -> bool:
    v = value.lower()
    if v in ("yes", "true", "1"):
        return True
    if v in ("no", "false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected yes/no, got {value!r}")


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", help="store location: a directory or an object-store URL (s3://bucket/prefix)")
    p.add_argument("--s3-endpoint-url", default=None, help="object-store endpoint (MinIO, moto, ...); credentials come from the usual AWS_* variables")
    p.add_argument("--storage-options", default=None, metavar="JSON", help="extra fsspec storage options as JSON")


def _filter_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--robot", default=None, help="only this robot group")
    p.add_argument("--task-id", default=None, help="only this task id")
    p.add_argument("--phase", choices=PHASES, default=None, help="only forward or backward episodes")
    p.add_argument("--outcome", choices=["success", "failure", "unknown"], default=None, help="current outcome label")
    p.add_argument("--eval", type=_bool, default=None, metavar="yes|no", help="only evaluation (yes) or training (no) episodes")
    p.add_argument("--policy-version", type=int, default=None, help="episodes with a step from this policy version")
    p.add_argument("--has-intervention", type=_bool, default=None, metavar="yes|no", help="with/without intervention segments")
    p.add_argument("--data-source", choices=DATA_SOURCES, default=None, help="online, demo or prior")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    p = sub.add_parser("ls", help="list committed episodes (filters combine with AND)")
    _store_args(p)
    _filter_args(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p = sub.add_parser("show", help="metadata, label history and array shapes of one episode")
    _store_args(p)
    p.add_argument("episode_id", help="'<robot>:<index>' as listed by ls")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("relabel", help="set an episode's outcome or an intervention segment's reason (metadata only; history kept)")
    _store_args(p)
    p.add_argument("episode_id")
    p.add_argument("--by", required=True, help="who gives the label")
    p.add_argument("--outcome", choices=["success", "failure", "none"], help="new outcome ('none' = unlabelled)")
    p.add_argument("--segment", type=int, help="intervention segment index (with --reason)")
    p.add_argument("--reason", help="why the person intervened")
    p.add_argument("--source", choices=OUTCOME_SOURCES, default="human", help="label source")
    p.add_argument("--note", default="", help="free-text note stored with the label")
    p = sub.add_parser("import", help="import a robomimic HDF5 file as episodes of a robot group")
    _store_args(p)
    p.add_argument("file", help="robomimic-style .hdf5 (data/demo_<i>/obs, actions, rewards, dones)")
    p.add_argument("--robot", required=True, help="robot group to create/append to, e.g. prior-widowx")
    p.add_argument("--task-id", default=None, help="task id (default: env_args.env_name of the file)")
    p.add_argument("--instruction", default="", help="language instruction")
    p.add_argument("--phase", choices=PHASES, default="forward")
    p.add_argument("--data-source", choices=DATA_SOURCES, default="prior", help="how the learner mixes it")
    p.add_argument("--state-keys", nargs="+", default=None, help="low-dim obs keys concatenated into state (default: all, sorted)")
    p.add_argument("--control-hz", type=float, default=10.0, help="timestamps = step / control_hz when the file has none")
    p = sub.add_parser("export", help="export (filtered) episodes to a robomimic HDF5 file")
    _store_args(p)
    p.add_argument("file", help="output .hdf5")
    _filter_args(p)
    p = sub.add_parser("verify", help="check every committed episode; exit 1 if any is damaged")
    _store_args(p)
    p.add_argument("--quick", action="store_true", help="check arrays and chunk presence only, do not decode data")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def _open(args, create: bool = False) -> EpisodeStore:
    opts = json.loads(args.storage_options) if args.storage_options else None
    cfg = StoreConfig(url=args.url, s3_endpoint_url=args.s3_endpoint_url)
    try:
        return EpisodeStore.create(args.url, opts, config=cfg) if create else EpisodeStore.open(args.url, opts, config=cfg)
    except StoreError as exc:
        raise _cli_error(str(exc)) from exc


def _filters(args) -> dict:
    return dict(robot=args.robot, task_id=args.task_id, phase=args.phase, outcome=args.outcome, eval=args.eval,
                policy_version=args.policy_version, has_intervention=args.has_intervention, data_source=args.data_source)


def run(args: argparse.Namespace) -> int:
    try:
        return _COMMANDS[args.store_command](args)
    except StoreError as exc:
        raise _cli_error(str(exc)) from exc
    except (ValueError, OSError) as exc:
        raise _cli_error(str(exc)) from exc


def _ls(args) -> int:
    store = _open(args)
    infos = store.episodes(**_filters(args))
    if args.json:
        for i in infos:
            print(json.dumps(i.to_dict()))
        return 0
    print(f"{'episode':<24} {'len':>5} {'task':<18} {'phase':<8} {'outcome':<8} {'by':<14} {'eval':<5} {'interv':>6} policy")
    for i in infos:
        print(f"{i.episode_id:<24} {i.length:>5} {i.task_id[:18]:<18} {i.phase:<8} {(i.outcome or '-'):<8} "
              f"{(i.outcome_by or '-')[:14]:<14} {('yes' if i.eval else 'no'):<5} {len(i.intervention_segments):>6} "
              f"{','.join(map(str, i.policy_versions))}")
    print(f"{len(infos)} episode(s)", file=sys.stderr)
    return 0


def _show(args) -> int:
    store = _open(args)
    info = store.episode(args.episode_id)
    ep = store.read_episode(info)
    shapes = {f"image_{c}": list(a.shape) for c, a in ep.data["images"].items()}
    shapes.update({k: list(v.shape) for k, v in ep.data.items() if k != "images"})
    doc = {**info.to_dict(), "arrays": shapes, "return": float(ep.data["reward"].sum())}
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    for k in ("episode_id", "task_id", "instruction", "phase", "eval", "data_source", "length", "outcome", "outcome_source",
              "outcome_by", "policy_versions", "recovered", "return"):
        print(f"{k:>16}: {doc[k]}")
    print(f"{'segments':>16}: " + ", ".join(f"[{s.start},{s.end}) {s.reason or ''}".strip() for s in info.intervention_segments))
    print(f"{'labels':>16}:")
    for lab in info.labels:
        seg = f" segment {lab.segment}" if lab.segment is not None else ""
        print(f"{'':>18}{lab.time:.3f} {lab.kind}{seg} = {lab.value} ({lab.source}, by {lab.by}) {lab.note}")
    print(f"{'arrays':>16}: " + ", ".join(f"{k} {tuple(v)}" for k, v in shapes.items()))
    return 0


def _relabel(args) -> int:
    store = _open(args)
    if (args.outcome is None) == (args.reason is None):
        raise _cli_error("give exactly one of --outcome or --segment/--reason")
    if args.outcome is not None:
        lab = store.relabel(args.episode_id, None if args.outcome == "none" else args.outcome, by=args.by, source=args.source, note=args.note)
    else:
        if args.segment is None:
            raise _cli_error("--reason needs --segment (see 'store show' for segment indices)")
        lab = store.label_intervention(args.episode_id, args.segment, args.reason, by=args.by, source=args.source, note=args.note)
    print(json.dumps(lab.to_dict()))
    return 0


def _import(args) -> int:
    from robot_stack.store.robomimic_io import import_robomimic

    store = _open(args, create=True)
    ids = import_robomimic(store, args.file, args.robot, task_id=args.task_id, instruction=args.instruction, phase=args.phase,
                           data_source=args.data_source, state_keys=args.state_keys, control_hz=args.control_hz, progress=True)
    print(f"imported {len(ids)} episode(s): {ids[0]} .. {ids[-1]}")
    return 0


def _export(args) -> int:
    from robot_stack.store.robomimic_io import export_robomimic

    store = _open(args)
    infos = store.episodes(**_filters(args))
    if not infos:
        raise _cli_error("no episode matches the filters; nothing exported")
    n = export_robomimic(store, args.file, infos, progress=True)
    print(f"exported {n} episode(s) to {args.file}")
    return 0


def _verify(args) -> int:
    store = _open(args)
    report = store.verify(read_data=not args.quick, progress=not args.json)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        for p in report.problems:
            print(f"PROBLEM {p}")
        for eid, msgs in report.bad_episodes.items():
            for m in msgs:
                print(f"BAD {eid}: {m}")
        print(f"{report.n_episodes} episode(s), {len(report.bad_episodes)} bad, {len(report.problems)} store problem(s)")
    return 0 if report.ok else 1


_COMMANDS = {"ls": _ls, "show": _show, "relabel": _relabel, "import": _import, "export": _export, "verify": _verify}
