r"""``robot-stack evaluate``: score a simulated session's policy versions by the simulator's ground truth.

    robot-stack evaluate runs/sim-widowx250                          # the newest version, forward, its own room
    robot-stack evaluate runs/sim-widowx250 --versions curve:5 --bc  # a learning curve, and the BC policy
    robot-stack evaluate runs/exp1 --versions 1,69,137 --task both --room both --episodes 100
    robot-stack evaluate runs/si --versions 6,7,8 --ensemble         # also their mean action, as one policy

Every version is rolled out from the same starts (``--seed``), with the session's scene, cameras,
image size and horizon, acting with the policy's mean action. ``--room session`` keeps the layout
the session practised in (bowl, distractors, lighting, cameras) and moves only the task's object,
as a lab evaluates its fine-tuned policy; ``--room new`` draws a new layout for every start, a test
of generalisation (``bench/session.py`` reports both). 100 episodes give about +-10 points.

The last line printed is one JSON object: ``{"scores": {"v12": {"forward": {"session": 0.6}}}, ...}``;
with ``--by-start`` also ``"by_start"``, the same rates by kind of start (the cube against the bowl's
wall, beside a distractor, in the open), to see where a policy fails and where it improved.
``--ensemble`` also scores the picked versions as one policy acting with the mean of their mean
actions (``"mean(v6,v7,v8)"``): a self-imitation session's rounds are trained from fresh weights,
and their mean can beat each of them (bench/session_runs.md, "Seeds and ensembles"). A session
whose actor acted with the mean of its newest versions (``ensemble_versions`` N) has each picked
version scored as it acted, the mean of it and the N - 1 versions before it (``"mean(v4,v5,v6)"``);
``--acting 1`` scores each version alone.
Real robots have no ground truth to roll out against: their success curve is the session's own
evaluation episodes (``schedule.eval_every``), flagged ``eval`` in the store.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from robot_stack.cli import CliError

ROOMS = ("session", "new")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("run_dir", help="a session run directory (made by 'robot-stack run' on a sim scene)")
    parser.add_argument("--versions", default="latest",
                        help="'latest' (default), 'all', 'curve:N' (N evenly spaced, first to latest) or numbers: 1,69,137")
    parser.add_argument("--bc", action="store_true", help="also score the BC policy the session's Cal-QL started from")
    parser.add_argument("--task", choices=("forward", "backward", "both"), default="forward",
                        help="which of the session's tasks to roll out (default: forward)")
    parser.add_argument("--room", choices=(*ROOMS, "both"), default="session",
                        help="session: the session's own layout, only the object moved (default); "
                             "new: a new layout per start; both")
    parser.add_argument("--episodes", type=int, default=100, help="rollouts per version, task and room (default: 100)")
    parser.add_argument("--seed", type=int, default=1000,
                        help="seed of the starts (default: 1000, the session benchmarks' starts)")
    parser.add_argument("--by-start", action="store_true",
                        help="also report each rate by kind of start (e.g. the cube against the bowl's wall)")
    parser.add_argument("--ensemble", action="store_true",
                        help="also score the picked versions (two or more) as one policy: the mean of their mean actions")
    parser.add_argument("--acting", type=int, default=0,
                        help="score each picked version as an actor acting with the mean of the newest N versions ran it "
                             "(default 0: the session's ensemble_versions; 1 = each version alone)")
    parser.add_argument("--out", default="", help="also write the JSON result to this file")


def run(args: argparse.Namespace) -> int:
    from policies.checkpoint import CheckpointError

    if args.episodes < 1 or args.acting < 0:
        raise CliError(f"--episodes must be >= 1 and --acting >= 0, got {args.episodes} and {args.acting}")
    try:
        result = evaluate_run(args.run_dir, args.versions, tasks=_choice(args.task, ("forward", "backward")),
                              rooms=_choice(args.room, ROOMS), episodes=args.episodes, seed=args.seed,
                              bc=args.bc, by_start=args.by_start, ensemble=args.ensemble, acting=args.acting, log=lambda s: print(s, file=sys.stderr, flush=True))
    except (FileNotFoundError, ValueError, CheckpointError) as exc:
        raise CliError(str(exc)) from exc
    line = json.dumps(result)
    if args.out:
        pathlib.Path(args.out).write_text(line + "\n")
    print(line)
    return 0


def _choice(value: str, every: tuple[str, ...]) -> tuple[str, ...]:
    return every if value == "both" else (value,)


def evaluate_run(run_dir: str, versions: str = "latest", tasks: tuple[str, ...] = ("forward",),
                 rooms: tuple[str, ...] = ("session",), episodes: int = 100, seed: int = 1000, bc: bool = False,
                 by_start: bool = False, ensemble: bool = False, acting: int = 0, log=lambda s: None) -> dict:
    """Ground-truth success of a session run's policies: ``{"scores": {name: {task role: {room: rate}}}}``.

    ``name`` is ``v<N>`` for each policy version ``versions`` picks (``pick_versions``) and ``bc``
    for the BC policy (``bc``); task roles are ``forward``/``backward``, rooms ``session``/``new``.
    ``by_start``: also ``{"by_start": {name: {task role: {room: {start kind: {"episodes",
    "success_rate"}}}}}}``, ``evaluate_in_sim``'s breakdown by the kind of start the scene staged.
    ``ensemble``: also the picked versions as one ``PolicyEnsemble``, named ``mean(v<N>,...)``.
    ``acting`` N > 1 (0: the session's ``ensemble_versions``): each picked version as the actor ran
    it, the mean of it and the N - 1 versions before it, named the same way.
    Raises FileNotFoundError when ``run_dir`` is not a session run, ValueError for a run without a
    sim scene or a version that is not there, and ``CheckpointError`` for a corrupt checkpoint.
    """
    from robot_stack.session.adapters import CheckpointWatcher, PolicyEnsemble
    from robot_stack.session.evaluate import pick_versions, sim_evaluation
    from robot_stack.session.runner import Session, load_session_config

    cfg = load_session_config(run_dir)
    if not cfg.scene:
        raise ValueError(f"{run_dir} ran on a real robot (no sim scene): there is no ground truth to roll out "
                         "against; its success curve is the session's eval episodes in the store")
    session = Session(cfg, log=log)
    task_ids = {"forward": session.forward.id, "backward": session.backward.id}
    acting = acting or cfg.ensemble_versions
    watcher = CheckpointWatcher(session.paths.checkpoints, session.policy.task_ids, ensemble=acting)
    manager = watcher.manager
    picked = pick_versions(versions, manager.versions(), manager.latest_version())

    def name(members: list[int]) -> str:
        return f"v{members[0]}" if len(members) == 1 else f"mean({','.join(f'v{v}' for v in members)})"

    policies = {name(watcher.acting_versions(v)): (lambda v=v: watcher.load_acting(v)) for v in picked}
    if ensemble:
        if len(picked) < 2:
            raise ValueError(f"--ensemble needs two or more versions; --versions {versions!r} picks {picked}")
        policies[name(picked)] = lambda: PolicyEnsemble([watcher.load(v) for v in picked])
    if bc:
        bc_watcher = CheckpointWatcher(session.paths.bc_policy, session.policy.task_ids)
        if bc_watcher.manager.latest_version() is None:
            raise ValueError(f"{run_dir} has no BC policy ({session.paths.bc_policy} is empty: the session "
                             "pre-trained Cal-QL without a BC start, bc_init_updates 0)")
        policies = {"bc": bc_watcher.load_newest, **policies}  # a corrupt one raises (load_latest would give None)
    evaluators = {room: sim_evaluation(cfg, episodes, session_layout=room == "session", seed=seed) for room in rooms}
    scores: dict[str, dict] = {}
    starts: dict[str, dict] = {}
    for name, load in policies.items():
        policy = load()
        results = {task: {room: evaluate(policy, task_ids[task]) for room, evaluate in evaluators.items()} for task in tasks}
        scores[name] = {task: {room: r["success_rate"] for room, r in by_room.items()} for task, by_room in results.items()}
        if by_start:
            starts[name] = {task: {room: {kind: {"episodes": k["episodes"], "success_rate": k["success_rate"]}
                                          for kind, k in r["by_start"].items()}
                                   for room, r in by_room.items()} for task, by_room in results.items()}
        log(f"{name}: " + ", ".join(f"{task} {room} {rate:.2f}" for task, by_room in scores[name].items()
                                    for room, rate in by_room.items()))
    result = {"run_dir": str(run_dir), "scene": cfg.scene, "episodes": episodes, "seed": seed,
              "tasks": {t: task_ids[t] for t in tasks}, "scores": scores}
    if by_start:
        result["by_start"] = starts
    return result
