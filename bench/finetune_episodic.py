"""Benchmark: what online Cal-QL can do on this machine when practice starts where the eval starts.

bench/session.py measures the whole reset-free loop. When its curve stays flat, three things are
mixed up: the learner, the classifier's reward, and the starts the reset-free loop practises from
(only where the other task left the scene, while the ground-truth eval draws random starts). This
bench takes the learner alone. From a run directory that bench/session.py (or ``robot-stack run``)
prepared, it copies the prior data and the pre-trained policy into ``--out-dir`` (the source is
only read) and fine-tunes in one process:

- every training episode starts from a fresh random start of its task, the distribution the
  ground-truth eval draws from (episodic resets, as if a person reset the scene every time);
- the reward is the simulator's ground truth, so no classifier mistake reaches the learner;
- the learner is the session's own ``LearnerService`` (same replay mixing, update-to-data ratio and
  publishing) in a thread; the actor waits for it so the ratio holds exactly whatever the CPU speed,
  and loads the newest version at episode boundaries, as the actor node does;
- forward and backward episodes alternate, as in a session, with the stochastic policy (or, with
  ``--exploration-noise``, its mean plus fixed Gaussian noise, as the actor node explores);
- ``--reinit-every`` (or the source session's ``reinit_every``) trains the learner in rounds from
  fresh weights: from a run prepared with ``bench/session.py --policy-kind bc`` and with
  ``--exploration-noise`` this is the session's self-imitation learner (README, "Self-imitation
  instead of Cal-QL") under episodic starts;
- ``--ensemble-versions N`` (or the source session's ``ensemble_versions``) acts, and scores every
  version, as the actor node does with it: the mean action of the newest N versions; a source
  prepared with ``pretrain_seeds`` brings all its pre-trained versions along as v1..vN;
- ``--operator-at STEP`` adds a simulated operator: an episode not done by that step is taken over
  and finished by the scripted expert, its steps flagged as interventions, as a person with a
  teleop device would correct the robot; the learner's demo buffer gets them (HIL-SERL), and the
  evaluation still runs the policy alone.

Then the pre-trained policy (the newest pre-trained version), the BC baseline, ``--curve-points`` versions and the newest one are
scored from the same starts as bench/session.py (bench/session_common.py). If this bench cannot lift the
forward success, no scheduling of the reset-free loop will; if it can, the loop's starts or reward are
what hold a session back.

Prints one JSON object as its last line: forward_success_pretrained, forward_success_finetuned,
backward_success_finetuned, bc_baseline_success, online_steps, updates, policy_version_finetuned,
forward_success_by_version, forward_success_by_start (each of those versions' and BC's rate by
kind of start: in the open, against the bowl's wall, beside a distractor; eval_starts: how many
of each), forward_online_success_by_block (training forward episodes that
succeeded, per block of ``--block-episodes``; with ``--operator-at`` only those the policy finished
alone), forward_assisted_by_block (the share the simulated operator took over), stopped_by
(SIGTERM or SIGINT when a signal ended the online phase early: the bench then still scores the
versions saved so far; a second signal ends the process), plus timings and settings.
``--out-dir`` also gets the session.json it trained with (the source's, with this run's
update-to-data ratio, exploration noise, rounds and learner overrides), so ``robot-stack critic-report --run OUT`` inspects
its critics.

    python bench/finetune_episodic.py --from runs/sim-widowx250 --out-dir /tmp/episodic --online-steps 30000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import shutil
import sys
import threading
import time

from session_common import SimScores, StopRequest, add_learner_set, learner_overrides  # bench/, the script's directory

ROBOT_ID = "sim-episodic"  # the store group this bench records its episodes in (the source's groups stay unread)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--from", dest="source", required=True, help="a prepared session run directory (only read)")
    p.add_argument("--out-dir", required=True, help="where the copied store, the new checkpoints and the results go")
    p.add_argument("--online-steps", type=int, default=3000, help="robot steps to record online (as bench/session.py's default)")
    p.add_argument("--timeout-s", type=float, default=3600.0, help="stop the online phase after this long")
    p.add_argument("--utd-ratio", type=float, default=-1.0, help="learner updates per recorded step (< 0: the session's)")
    p.add_argument("--publish-every", type=int, default=0, help="updates between policy versions (0: the session's)")
    p.add_argument("--eval-episodes", type=int, default=100, help="ground-truth rollouts per evaluation (bench/session.py's starts)")
    p.add_argument("--curve-points", type=int, default=5, help="earlier versions whose forward success is also measured")
    p.add_argument("--exploration-noise", type=float, default=-1.0,
                   help="training episodes run the policy's mean plus N(0, this) per action dimension "
                        "(0 = sample the policy; < 0 = the source session's)")
    p.add_argument("--reinit-every", type=int, default=-1,
                   help="learner updates per round, each from fresh weights (0 = one learner; < 0 = the source session's)")
    p.add_argument("--ensemble-versions", type=int, default=0,
                   help="the actor acts with the mean action of the newest this many versions, and every score is of "
                        "what it runs (0 = the source session's ensemble_versions)")
    p.add_argument("--block-episodes", type=int, default=20, help="training forward episodes per online-success block")
    p.add_argument("--seed", type=int, default=1, help="seed of the training starts (the eval's starts have their own)")
    p.add_argument("--operator-at", type=int, default=0,
                   help="a simulated operator takes over training episodes not done by this step and finishes "
                        "them with the scripted expert, flagged as interventions (0 = nobody intervenes)")
    add_learner_set(p)
    args = p.parse_args(argv)
    args.learner_overrides = learner_overrides(p, args.learner_set)
    for name in ("online_steps", "eval_episodes", "block_episodes"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.timeout_s <= 0 or min(args.curve_points, args.publish_every, args.operator_at, args.ensemble_versions) < 0:
        p.error("--timeout-s must be > 0, --curve-points, --publish-every, --operator-at and --ensemble-versions >= 0")
    if args.exploration_noise > 1:
        p.error("--exploration-noise must be <= 1 (actions are normalised to [-1, 1])")
    return args


def copy_prepared(source: pathlib.Path, out: pathlib.Path):
    """A SessionConfig for ``out`` holding ``source``'s store and pre-trained versions only (v1, or
    v1..vN for ``pretrain_seeds`` N), and the number of pre-trained versions."""
    from policies.checkpoint import CheckpointManager

    from robot_stack.session.runner import SessionPaths, load_session_config
    from robot_stack.session.stages import stage_record

    try:
        cfg = load_session_config(source)
    except FileNotFoundError as exc:
        raise SystemExit(f"--from: {exc}") from None
    src, dst = SessionPaths(source), SessionPaths(out)
    record = stage_record(source, "pretrain") or {}
    pretrained = [int(v) for v in record.get("versions") or [record.get("version", 0)]]
    if not pretrained[-1]:
        raise SystemExit(f"{source} has no pre-trained policy (run its preparation first: bench/session.py or robot-stack run)")
    if dst.store.exists() or dst.checkpoints.exists():
        raise SystemExit(f"{out} already holds a run; give an empty --out-dir")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src.store, dst.store)  # the whole store: this bench reads only the prior group and its own
    if src.bc_policy.exists():  # the policy Cal-QL starts from: a learner in rounds starts each one from it
        shutil.copytree(src.bc_policy, dst.bc_policy)
    # the pre-trained policies become v1.. here, as in a session
    source_versions, copies = CheckpointManager(src.checkpoints), CheckpointManager(dst.checkpoints)
    for i, version in enumerate(pretrained, 1):
        copies.adopt(source_versions.path(version), version=i)
    cfg.run_dir = str(out)
    return cfg, src, len(pretrained)


def run_episode(scene, policy, task, writer, rng, horizon: int, operator=None, index: int = 0,
                noise: float = 0.0) -> tuple[int, bool, bool]:
    """One stochastic episode from a random start of ``task``, ground-truth reward; the policy acts as
    the actor node's training episodes do (``explore_action`` with ``noise``).

    ``operator``: the session's simulated operator (``hardware.sim.operator.SimOperator``, connected,
    mirroring its own scene) or None. It is fed the world state and the episode's progress each step,
    as the teleop node feeds it in a session, and when it intervenes its action replaces the
    policy's and the step is flagged as an intervention (HIL-SERL). ``index`` tells this episode
    from the last one apart for it. Returns (steps, success, assisted: the operator took over).
    """
    from robot_stack.session.actor_loop import explore_action, policy_members
    from robot_stack.session.prior_data import record_sim_episode

    scene.randomize(rng, task_id=task.id)
    policy.reset()
    step, intervened, assisted = 0, False, False

    def act(obs, images):
        nonlocal step, intervened, assisted
        if operator is not None:
            operator.set_state(scene.state())
            operator.set_episode(index, task.id, step, running=True)
            command = operator.read()
            intervened = command.intervening
            assisted |= intervened
        step += 1
        return command.action if intervened else explore_action(policy, images, obs.state_vector(), task.id, noise, rng)

    try:
        _, done, steps = record_sim_episode(scene, writer, task, act, horizon, data_source="online",
                                            extra={"start": "random", "policy_version": policy.version,
                                                   "policy_members": policy_members(policy)},
                                            policy_version=policy.version, intervening=lambda: intervened)
    finally:
        if operator is not None:
            operator.release()
    return steps, done, assisted


def main(argv=None) -> int:
    args = parse_args(argv)
    import numpy as np
    from tqdm import tqdm

    from hardware.sim.scenes import make_scene
    from robot_stack.learner.replay_loader import ReplayLoaderConfig
    from robot_stack.learner.service import LearnerService, LearnerServiceConfig
    from robot_stack.config import to_flat_dict
    from robot_stack.session.adapters import CheckpointWatcher
    from robot_stack.session.evaluate import curve_versions
    from robot_stack.session.runner import Session, SessionPaths
    from robot_stack.session.stages import write_json_atomic
    from robot_stack.store import EpisodeStore

    out = pathlib.Path(args.out_dir)
    cfg, src, n_pretrained = copy_prepared(pathlib.Path(args.source), out)
    utd = cfg.utd_ratio if args.utd_ratio < 0 else args.utd_ratio
    # What this run trained with, in the copy's session.json: `robot-stack critic-report --run OUT`
    # (and anyone reading the directory later) then sees this run, not its source.
    noise = cfg.episode.exploration_noise if args.exploration_noise < 0 else args.exploration_noise
    cfg = dataclasses.replace(cfg, utd_ratio=utd, learner_overrides=json.dumps(args.learner_overrides)
                              if args.learner_overrides else cfg.learner_overrides,
                              reinit_every=cfg.reinit_every if args.reinit_every < 0 else args.reinit_every,
                              ensemble_versions=args.ensemble_versions or cfg.ensemble_versions,
                              episode=dataclasses.replace(cfg.episode, exploration_noise=noise))
    write_json_atomic(SessionPaths(out).config, to_flat_dict(cfg))
    session = Session(cfg, log=log)
    fwd, bwd = session.forward, session.backward
    store = EpisodeStore.create(session.paths.store)
    service = LearnerService(LearnerServiceConfig(
        store=str(session.paths.store), checkpoints=str(session.paths.checkpoints), utd_ratio=utd,
        publish_every=args.publish_every or cfg.publish_every, reinit_every=cfg.reinit_every, keep_checkpoints=0,
        policy=session.policy, learner_overrides=json.dumps(args.learner_overrides),
        data=ReplayLoaderConfig(robots=(f"{cfg.robot_id}-prior", ROBOT_ID))), store=store)
    learner = threading.Thread(target=service.run, name="learner", daemon=True)
    learner.start()

    scene = make_scene(cfg.scene, seed=args.seed, image_size=cfg.image_size, cameras=tuple(cfg.cameras))
    writer = store.writer(ROBOT_ID, {"arm": scene.robot_name, "scene": cfg.scene, "sim": True},
                          {c: (cfg.image_size, cfg.image_size) for c in cfg.cameras}, scene.proprio_dim)
    rng = np.random.default_rng(args.seed)
    watcher = CheckpointWatcher(session.paths.checkpoints, session.policy.task_ids, ensemble=cfg.ensemble_versions, rng=rng)
    policy = watcher.load_latest()
    operator = None
    if args.operator_at:
        from hardware.sim.operator import SimOperator, SimOperatorConfig

        # the session's own operator (sim_operator_at), on its own mirror of the scene as in a session
        operator = SimOperator(SimOperatorConfig(**session.sim_operator_settings(args.operator_at))).connect()
    steps, forward_outcomes, forward_assisted, episodes = 0, [], [], 0
    bar = tqdm(total=args.online_steps, desc="online (episodic, ground truth)", unit="step")
    t0 = time.monotonic()
    with StopRequest() as stop:
        try:
            while steps < args.online_steps and time.monotonic() - t0 < args.timeout_s and not stop:
                # Hold the update-to-data ratio exactly: the next episode waits for the learner's updates.
                while learner.is_alive() and service.updates + service.cfg.chunk_updates < utd * steps and not stop:
                    time.sleep(0.05)
                if stop:
                    break
                if not learner.is_alive():
                    raise SystemExit("the learner thread stopped (see its log above)")
                policy = watcher.load_latest() or policy
                task = fwd if episodes % 2 == 0 else bwd
                n, ok, assisted = run_episode(scene, policy, task, writer, rng, cfg.episode.horizon, operator, episodes, noise)
                episodes += 1
                steps += n
                if task is fwd:
                    forward_outcomes.append(ok and not assisted)  # the policy's own successes
                    forward_assisted.append(assisted)
                recent = forward_outcomes[-args.block_episodes:]
                bar.update(n)
                bar.set_postfix(version=policy.version, updates=service.updates, forward_recent=f"{sum(recent)}/{len(recent)}",
                                **({"assisted": sum(forward_assisted[-args.block_episodes:])} if args.operator_at else {}))
        finally:
            bar.close()
            writer.close()
            scene.close()
            if operator is not None:
                operator.disconnect()
            service.stop()
            learner.join(600)
    online_s = time.monotonic() - t0

    success = SimScores(cfg, args.eval_episodes)
    # every score is of what the actor runs at that version (with ensemble_versions: the mean of the newest)
    watcher = CheckpointWatcher(session.paths.checkpoints, session.policy.task_ids, ensemble=cfg.ensemble_versions)
    finetuned = watcher.load_latest()
    curve = {str(v): success(watcher.load_acting(v), fwd.id, f"v{v}")
             for v in curve_versions(watcher.manager.versions(), finetuned.version, args.curve_points, start=n_pretrained)}
    forward_finetuned = success(finetuned, fwd.id, f"v{finetuned.version}")
    curve[str(finetuned.version)] = forward_finetuned
    bc = CheckpointWatcher(src.bc_policy, session.policy.task_ids).load_latest() if (src.bc_policy / "latest").exists() else None
    def by_block(flags: list[bool]) -> list[float]:
        return [round(float(np.mean(flags[i:i + args.block_episodes])), 2) for i in range(0, len(flags), args.block_episodes)]

    result = {
        "forward_success_pretrained": curve[str(n_pretrained)] if str(n_pretrained) in curve
        else success(watcher.load_acting(n_pretrained), fwd.id, f"v{n_pretrained}"),
        "forward_success_finetuned": forward_finetuned,
        "backward_success_finetuned": success(finetuned, bwd.id),
        "bc_baseline_success": success(bc, fwd.id, "bc") if bc is not None else None,
        "online_steps": steps,
        "online_episodes": episodes,
        "stopped_by": stop.signal,  # SIGTERM/SIGINT if the online phase was ended early by a signal, else null
        "updates": service.updates,
        "policy_version_finetuned": finetuned.version,
        "forward_success_by_version": curve,
        **success.report(),
        "forward_online_success_by_block": by_block(forward_outcomes),
        "operator_at": args.operator_at,
        "forward_assisted_by_block": by_block(forward_assisted),
        "online_s": round(online_s, 1),
        "utd_ratio": utd,
        "exploration_noise": noise,
        "reinit_every": cfg.reinit_every,
        "ensemble_versions": cfg.ensemble_versions,
        "pretrained_versions": n_pretrained,
        "learner_overrides": args.learner_overrides,
        "eval_episodes": args.eval_episodes,
        "starts": "random every episode (episodic)",
        "reward": "simulator ground truth",
        "source_run_dir": str(args.source),
        "out_dir": str(out),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
