"""Benchmark: does an autonomous reset-free session improve the policy? (sim cube <-> bowl)

1. prepare a session in a run dir: scripted prior data (100 demos per task by default, front +
   wrist cameras), the success classifier (both cameras side by side, plus simulator-labelled
   snapshots with decoys), a filtered-BC policy
   (``--bc-init-updates``) and offline Cal-QL started from it with the image encoder fixed and a
   BC regulariser on successful steps (``--bc-weight``);
2. evaluate the pre-trained Cal-QL policy by ground truth in sim, and the BC policy (the
   baseline: same prior data);
3. run the whole node graph (separate processes, classifier reward, no human) until it has
   recorded ``--online-steps`` steps (``--operator-at N`` adds a simulated operator who takes
   over training episodes not done by step N: human-in-the-loop, not the autonomous target).
   When the scheduler gives up and asks for a person (an alert), the bench plays that person
   (``--on-alert reset``: the dashboard's sim scene reset, the cube re-placed in the session's
   layout as a person would re-stage a lab scene, then Start) and counts it in
   ``human_resets``, so a long run still reports its whole budget; ``--on-alert stop`` ends the
   online phase at the first alert instead, and so does a SIGTERM or Ctrl-C (``stopped_by`` in
   the result; a second one ends the process);
4. evaluate the newest policy version on the forward and backward tasks, and ``--curve-points``
   earlier versions on the forward task (the learning curve).

With ``--ensemble-versions N`` every policy scored is what the actor runs: the mean action of the
newest N versions up to it; ``--pretrain-seeds N`` pre-trains N networks as v1..vN, so the pre-trained
policy is already such a mean (README, "Ensembles of versions").

Every figure is a ground-truth success rate from ``--eval-episodes`` starts, each in a new layout
(bowl, distractors, lighting, cameras: generalisation), except
``forward_success_in_session_layout``: BC, pre-trained and fine-tuned from starts in the session
scene's own layout, only the cube moved (the room the robot practised in, RoboFuME's protocol).

Prints one JSON object as its last line: forward_success_pretrained, forward_success_finetuned,
backward_success_finetuned, online_steps, human_resets (alerts that asked for a person; must be
0), human_reset_at_steps (online steps recorded by each answered alert), bc_baseline_success,
forward_online_vs_ground_truth (online forward episodes the classifier credited, truly
succeeded, credited falsely, missed; classifier successes rejected from the reset pose, and how
many of those were true), forward_success_by_version (the curve), forward_success_by_start (those
versions' and BC's rates by kind of start: in the open, against the bowl's wall, beside a
distractor; eval_starts: how many of each), forward_success_in_session_layout,
episodes_ending_out_of_workspace (online training episodes that left an object outside the
workspace), operator_at and episodes_assisted (training episodes per phase, and how many the
operator took over), plus timings and settings. ``--quick`` is a smoke run (minutes, tiny).
``--prepare-only`` stops after step 2 (the JSON then holds the pre-trained and BC figures,
``online_steps`` 0): a prepared run dir for bench/finetune_episodic.py, or for this bench later with
the same preparation flags (its stages are then cached).

    python bench/session.py                 # CPU-sized default: prepare ~10 min on 2 cores, then 3,000 online steps
    python bench/session.py --device cuda --preset gpu --online-steps 30000
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time

from session_common import SimScores, StopRequest, add_learner_set, learner_overrides  # bench/, the script's directory


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main() -> int:
    from typing import get_args

    from robot_stack.session.config import SessionConfig
    from robot_stack.session.prior_data import ExpertGate
    from robot_stack.session.scheduler import SchedulerConfig

    default = SessionConfig()  # the bench measures what `robot-stack run` runs unless told otherwise
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny smoke run")
    p.add_argument("--run-dir", default="", help="run directory (default: a temporary one)")
    p.add_argument("--online-steps", type=int, default=3000, help="robot steps to record online")
    p.add_argument("--pretrain-updates", type=int, default=default.pretrain_updates, help="offline updates (Cal-QL and BC)")
    # 7.5k: where BC's forward success peaks on the default prior data (0.48 at 2.5k, 0.75 at 5k, 0.81 at
    # 7.5k, 0.75 at 10k): a BC baseline stopped early makes any fine-tuning look better than it is.
    p.add_argument("--bc-init-updates", type=int, default=default.bc_init_updates,
                   help="BC updates before Cal-QL, also the BC baseline; Cal-QL starts from that policy with its image "
                        "encoder fixed (0 = Cal-QL from scratch; the BC baseline then trains --pretrain-updates)")
    # The Cal-QL weights (this and --cql-alpha) of every run in bench/session_runs.md's table.
    p.add_argument("--bc-weight", type=float, default=default.policy.bc_weight, help="BC regulariser of the Cal-QL actor")
    p.add_argument("--utd-ratio", type=float, default=default.utd_ratio, help="online learner updates per recorded robot step")
    p.add_argument("--cql-alpha", type=float, default=default.policy.cql_alpha,
                   help="weight of Cal-QL's conservative term (< 0 = the preset's)")
    p.add_argument("--policy-kind", default=default.policy.kind, choices=["calql", "bc"],
                   help="online learner: Cal-QL, or filtered BC on the prior demos and the session's own successes "
                        "(self-imitation: with --exploration-noise and --reinit-every; its pre-trained policy is the BC baseline)")
    p.add_argument("--exploration-noise", type=float, default=default.episode.exploration_noise,
                   help="training episodes run the policy's mean plus N(0, this) per action dimension (0 = sample the policy)")
    p.add_argument("--reinit-every", type=int, default=default.reinit_every,
                   help="online learner updates per round, each from fresh weights (0 = one learner throughout)")
    p.add_argument("--ensemble-versions", type=int, default=default.ensemble_versions,
                   help="the actor acts with the mean action of the newest this many versions; every score is of what it runs")
    p.add_argument("--pretrain-seeds", type=int, default=default.pretrain_seeds,
                   help="networks pre-trained from the prior data (seeds 0, 1, ...) as versions 1..N")
    p.add_argument("--demos-per-task", type=int, default=default.prior.demos_per_task, help="scripted demos per task in the prior data")
    p.add_argument("--forward-demos", type=int, default=default.prior.forward_demos,
                   help="scripted demos of the forward task instead (-1 = --demos-per-task): a weak forward policy "
                        "with a reliable reset partner")
    p.add_argument("--expert-gate", default=default.prior.expert_gate, choices=get_args(ExpertGate),
                   help="when the scripted pick expert of the prior data starts down onto the cube")
    p.add_argument("--operator-at", type=int, default=0,
                   help="a simulated operator (teleop node, device sim_operator) takes over training episodes not "
                        "done by this step and finishes them with the prior data's expert, flagged as interventions "
                        "(0 = none: the autonomous session the target is about)")
    p.add_argument("--eval-episodes", type=int, default=100,
                   help="ground-truth rollouts per evaluation (the same starts for every policy; 20 left +-15 points of noise)")
    p.add_argument("--cameras", nargs="+", default=list(default.cameras), help="cameras the policy and the classifier see")
    p.add_argument("--preset", default="cpu", choices=["cpu", "gpu"], help="learner size preset")
    p.add_argument("--device", default="auto", help="torch device of the learner")
    p.add_argument("--curve-points", type=int, default=6,
                   help="intermediate policy versions (evenly spaced) whose forward success is also measured")
    p.add_argument("--timeout-s", type=float, default=3 * 3600, help="stop the online phase after this long")
    p.add_argument("--max-recoveries", type=int, default=SchedulerConfig.max_recoveries,
                   help="recovery attempts in a row before the session raises an alert")
    p.add_argument("--stuck-after", type=int, default=SchedulerConfig.stuck_after,
                   help="episodes without a success in either direction that count as stuck")
    p.add_argument("--on-alert", default="reset", choices=["reset", "stop"],
                   help="when the session asks for a person: 'reset' plays that person (sim scene reset, then Start; "
                        "counted in human_resets), 'stop' ends the online phase")
    p.add_argument("--prepare-only", action="store_true",
                   help="prepare the run dir (cached stages are skipped), score BC and the pre-trained policy, "
                        "print the JSON and stop: a run dir for bench/finetune_episodic.py or a later session")
    add_learner_set(p)
    args = p.parse_args()
    overrides = learner_overrides(p, args.learner_set)

    from policies.config import LearnerConfig
    from robot_stack.dashboard.config import DashboardConfig
    from robot_stack.learner.builder import PolicySpec
    from robot_stack.learner.pretrain import pretrain
    from robot_stack.session.actor_loop import ActorConfig
    from robot_stack.session.adapters import CheckpointWatcher
    from robot_stack.session.config import RewardSetup, SessionConfig
    from robot_stack.session.evaluate import curve_versions, sim_success
    from robot_stack.session.prior_data import PriorDataConfig
    from robot_stack.session.runner import Session
    from robot_stack.store import EpisodeNotFoundError, EpisodeStore

    if args.quick:
        args.online_steps, args.pretrain_updates, args.eval_episodes = 40, 5, 2
        args.bc_init_updates = min(args.bc_init_updates, 5)
    run_dir = pathlib.Path(args.run_dir or tempfile.mkdtemp(prefix="bench-session-"))
    image = 32 if args.quick else (64 if args.preset == "cpu" else 128)
    prior = (PriorDataConfig(demos_per_task=2, failures_per_task=1) if args.quick
             else PriorDataConfig(demos_per_task=args.demos_per_task, forward_demos=args.forward_demos,
                                  failures_per_task=max(1, args.demos_per_task // 3), expert_gate=args.expert_gate))
    cfg = SessionConfig(
        run_dir=str(run_dir), image_size=image, prior=prior, cameras=tuple(args.cameras), pretrain_updates=args.pretrain_updates,
        reward=RewardSetup(epochs=2 if args.quick else 15), dashboard=DashboardConfig(port=0),
        policy=PolicySpec(preset=args.preset, device=args.device, batch_size=16 if args.quick else 0,
                          bc_weight=args.bc_weight, cql_alpha=args.cql_alpha, freeze_image_encoder=args.bc_init_updates > 0,
                          kind=args.policy_kind),
        bc_init_updates=args.bc_init_updates, utd_ratio=args.utd_ratio, reinit_every=args.reinit_every,
        ensemble_versions=args.ensemble_versions, pretrain_seeds=args.pretrain_seeds, learner_overrides=json.dumps(overrides) if overrides else "",
        episode=ActorConfig(horizon=15 if args.quick else 60, exploration_noise=args.exploration_noise), publish_every=20 if args.quick else 200,
        schedule=SchedulerConfig(max_recoveries=args.max_recoveries, stuck_after=args.stuck_after),
        keep_checkpoints=0,  # every version stays, for the learning curve
        sim_operator_at=args.operator_at,
    )
    session = Session(cfg, log=log)
    t0 = time.monotonic()
    session.prepare()
    prepare_s = time.monotonic() - t0
    fwd, bwd = session.forward.id, session.backward.id

    success = SimScores(cfg, args.eval_episodes)
    success_in_layout = sim_success(cfg, args.eval_episodes, session_layout=True)

    # every score is of what the actor runs at that version (ensemble_versions > 1: the mean of the newest)
    pretrained = CheckpointWatcher(session.checkpoints, session.policy.task_ids, ensemble=cfg.ensemble_versions).load_newest()
    forward_pre = success(pretrained, fwd, f"v{pretrained.version}")
    log(f"pre-trained policy v{pretrained.version}: forward success {forward_pre:.2f}")

    # The baseline is BC on the same prior data: the policy Cal-QL started from when there is one,
    # and a BC session's own pre-trained policy.
    if args.policy_kind == "bc":
        bc, bc_success = pretrained, forward_pre
    else:
        bc_dir = session.paths.bc_policy if session.bc_init else run_dir / "bc_baseline"
        if not (bc_dir / "latest").exists():
            store = EpisodeStore.open(session.paths.store, read_only=True)
            pretrain(store, bc_dir, session.bc_spec(), args.pretrain_updates)
        bc = CheckpointWatcher(bc_dir, session.policy.task_ids).load_newest()
        bc_success = success(bc, fwd, "bc")
    log(f"BC baseline: forward success {bc_success:.2f}")
    in_layout = {"bc": success_in_layout(bc, fwd), "pretrained": success_in_layout(pretrained, fwd)}
    log(f"in the session's layout: BC {in_layout['bc']:.2f}, pre-trained {in_layout['pretrained']:.2f}")
    settings = {
        "prepare_s": round(prepare_s, 1),
        "eval_episodes": args.eval_episodes,
        "on_alert": args.on_alert,
        "policy_kind": args.policy_kind,
        "bc_updates": args.bc_init_updates if session.bc_init else args.pretrain_updates,
        "calql_pretrain_updates": args.pretrain_updates if args.policy_kind == "calql" else 0,
        "exploration_noise": args.exploration_noise,
        "reinit_every": args.reinit_every,
        "ensemble_versions": args.ensemble_versions,
        "pretrain_seeds": args.pretrain_seeds,
        "bc_weight": args.bc_weight,
        "utd_ratio": args.utd_ratio,
        "learner_overrides": overrides,
        "cql_alpha": args.cql_alpha if args.cql_alpha >= 0 else LearnerConfig.preset(args.preset).calql.cql_alpha,
        "demos_per_task": prior.demos_per_task,
        "forward_demos": prior.demos_for(0),
        "expert_gate": prior.expert_gate,
        "cameras": list(cfg.cameras),
        "bc_data": cfg.policy.bc_data,
        "preset": args.preset,
        "device": args.device,
        "quick": args.quick,
        "run_dir": str(run_dir),
    }
    if args.prepare_only:
        print(json.dumps({"forward_success_pretrained": forward_pre, "bc_baseline_success": bc_success,
                          "policy_version_pretrained": pretrained.version, "online_steps": 0,
                          "forward_success_in_session_layout": in_layout, **success.report(), **settings}))
        return 0

    def training_episodes() -> list:
        """The robot's online training episodes (none before its group exists: nothing recorded yet)."""
        try:
            eps = EpisodeStore.open(session.paths.store, read_only=True).episodes(robot=cfg.robot_id)
        except EpisodeNotFoundError:
            return []
        return [e for e in eps if not e.eval]

    def online_steps(episodes: list | None = None) -> int:
        return sum(e.length for e in (training_episodes() if episodes is None else episodes))

    def credited_forward(episodes: list) -> dict:
        """Online forward training episodes: successes the classifier credited vs the simulator's ground truth."""
        eps = [e for e in episodes if e.phase == "forward"]
        truth = [bool((e.extra or {}).get("ground_truth")) for e in eps]
        credited = [e.outcome == "success" for e in eps]
        # the classifier said done, but not from the reset pose (ActorConfig.confirm_success)
        rejected = [(e.extra or {}).get("end_reason") == "success_not_confirmed" for e in eps]
        return {"episodes": len(eps), "credited": sum(credited), "true": sum(truth),
                "credited_but_false": sum(c and not t for c, t in zip(credited, truth)),
                "missed": sum(t and not c for c, t in zip(credited, truth)),
                "rejected_from_reset_pose": sum(rejected), "rejected_but_true": sum(r and t for r, t in zip(rejected, truth))}

    def assisted(episodes: list) -> dict:
        """Training episodes per phase, and how many of them the (simulated) operator took over."""
        return {phase: {"episodes": sum(e.phase == phase for e in episodes),
                        "assisted": sum(e.phase == phase and bool(e.intervention_segments) for e in episodes)}
                for phase in ("forward", "backward")}

    def count_alerts() -> int:
        """Alerts the actor raised (each asks for a person) in this run's log."""
        path = session.paths.logs / "actor.log"
        return sum('"event": "alert"' in line for line in path.read_text().splitlines()) if path.exists() else 0

    def play_the_person() -> None:
        """What a person does after an alert, through the dashboard like one: fix the scene, press Start."""
        import httpx

        auth = {"Authorization": f"Bearer {session.token}"}
        # the cube re-placed, the bowl and the room as they were: the session's layout stays the one it practises in
        httpx.post(session.url + "api/sim/reset_scene", json={"keep_layout": True}, headers=auth, timeout=10).raise_for_status()
        time.sleep(2.0)  # the session is paused: let the re-staged world reach the cameras before it resumes
        httpx.post(session.url + "api/session/command", json={"cmd": "start"}, headers=auth, timeout=10).raise_for_status()

    steps_before = online_steps()
    session.start(output=open(run_dir / "nodes.log", "a"))
    import threading

    thread = threading.Thread(target=session.supervise, daemon=True)
    thread.start()
    t1 = time.monotonic()
    reset_at: list[int] = []  # online steps recorded when each alert was answered
    with StopRequest() as stop:
        while time.monotonic() - t1 < args.timeout_s and online_steps() - steps_before < args.online_steps and not stop:
            time.sleep(2.0)
            if not thread.is_alive():
                break
            if count_alerts() > len(reset_at):
                # The scheduler gave up and paused the session until a person comes: a human reset.
                reset_at.append(online_steps() - steps_before)
                if args.on_alert == "stop":
                    log("the session raised an alert (a person is needed): ending the online phase")
                    break
                log(f"the session raised an alert at {reset_at[-1]} online steps: playing the person (scene reset, Start)")
                play_the_person()
    session.stop()
    thread.join(120)
    online_s = time.monotonic() - t1
    events = [json.loads(line) for line in session.paths.events.read_text().splitlines()] if session.paths.events.exists() else []
    alerts = count_alerts()

    watcher = CheckpointWatcher(session.checkpoints, session.policy.task_ids, ensemble=cfg.ensemble_versions)
    finetuned = watcher.load_newest()
    # The curve says whether fine-tuning helped at some point and then lost it, or never helped.
    picks = curve_versions(watcher.manager.versions(), finetuned.version, args.curve_points, start=pretrained.version)
    curve = {str(v): forward_pre if v == pretrained.version else success(watcher.load_acting(v), fwd, f"v{v}") for v in picks}
    forward_finetuned = success(finetuned, fwd, f"v{finetuned.version}")
    curve[str(finetuned.version)] = forward_finetuned
    online = training_episodes()
    result = {
        "forward_success_pretrained": forward_pre,
        "forward_success_finetuned": forward_finetuned,
        "backward_success_finetuned": success(finetuned, bwd),
        "online_steps": online_steps(online) - steps_before,
        "stopped_by": stop.signal,  # SIGTERM/SIGINT if the online phase was ended early by a signal, else null
        "human_resets": alerts,
        "human_reset_at_steps": reset_at,
        "bc_baseline_success": bc_success,
        "policy_version_finetuned": finetuned.version,
        # reward hacking and missed successes show here first: the policy learns what the classifier credits
        "forward_online_vs_ground_truth": credited_forward(online),
        "forward_success_by_version": curve,
        **success.report(),
        "forward_success_in_session_layout": {**in_layout, "finetuned": success_in_layout(finetuned, fwd)},
        "operator_at": args.operator_at,
        "episodes_assisted": assisted(online),
        "episodes_ending_out_of_workspace": sum(bool((e.extra or {}).get("out_of_workspace")) for e in online),
        "faults": sum(1 for e in events if e.get("event") == "fault"),
        "online_s": round(online_s, 1),
        **settings,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
