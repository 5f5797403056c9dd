"""An autonomous fine-tuning session: prepare (cached), launch the node graph, supervise, stop.

Run directory layout (everything a session needs to be resumed or inspected)::

    <run_dir>/session.json        the SessionConfig it was started with (``--resume`` reads it)
    <run_dir>/episodes.zarr       the episode store (prior data + the robot's episodes)
    <run_dir>/checkpoints/        policy versions (pre-trained v1, then the learner's)
    <run_dir>/bc_policy/          the BC policy Cal-QL starts from (``bc_init_updates`` > 0)
    <run_dir>/classifier/         success-classifier versions
    <run_dir>/scheduler.json      the reset-free scheduler's state (written by the actor)
    <run_dir>/events.jsonl        faults and session events, one JSON object per line
    <run_dir>/logs/<node>.log     every node's output
    <run_dir>/stages/*.json       cache records of the preparation stages
    <run_dir>/tensorboard/        learner metrics
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import pathlib
import secrets
import signal
import socket
import sys
import threading
import time
from typing import Callable

from robot_stack.config import from_mapping, to_flat_dict
from robot_stack.session.config import SessionConfig
from robot_stack.session.scheduler import TaskSpec
from robot_stack.session.stages import (Stage, config_hash, run_stages, stage_record, stage_record_path,
                                       write_json_atomic)


class SessionPaths:
    def __init__(self, run_dir: str | pathlib.Path) -> None:
        self.root = pathlib.Path(run_dir)
        self.config = self.root / "session.json"
        self.store = self.root / "episodes.zarr"
        self.checkpoints = self.root / "checkpoints"
        self.bc_policy = self.root / "bc_policy"
        self.classifier = self.root / "classifier"
        self.scheduler = self.root / "scheduler.json"
        self.events = self.root / "events.jsonl"
        self.logs = self.root / "logs"
        self.tensorboard = self.root / "tensorboard"

    def of_a_session(self) -> "SessionPaths":
        """These paths; FileNotFoundError when ``root`` holds no session (no session.json)."""
        if not self.config.is_file():
            raise FileNotFoundError(f"{self.root} is not a session run directory (no {self.config.name})")
        return self


def load_session_config(run_dir: str | pathlib.Path) -> SessionConfig:
    """The config a session in ``run_dir`` was started with (for ``--resume``), its ``run_dir``
    set to ``run_dir``: the directory may have been moved or copied since the config was saved."""
    path = SessionPaths(run_dir).of_a_session().config
    cfg = from_mapping(SessionConfig, json.loads(path.read_text()), source=str(path))
    cfg.run_dir = str(run_dir)
    return cfg


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Session:
    """One session: ``prepare()`` then ``run()``; ``stop()`` from another thread ends it."""

    def __init__(self, cfg: SessionConfig, log: Callable[[str], None] = print) -> None:
        self.cfg = cfg
        self.paths = SessionPaths(cfg.run_dir)
        self.log = log
        self.forward, self.backward = self._tasks()
        other = self._other_task_ids()
        self.policy = dataclasses.replace(cfg.policy, task_ids=(self.forward.id, self.backward.id, *other),
                                          cameras=tuple(cfg.cameras), image_size=cfg.image_size,
                                          seed=cfg.seed)
        # Cal-QL pre-trained from a BC policy the session trains first (see prepare())
        self.bc_init = bool(cfg.bc_init_updates and self.policy.kind == "calql" and not cfg.pretrained)
        if self.bc_init:
            self.policy = dataclasses.replace(self.policy, init_from=str(self.paths.bc_policy))
        self.token = cfg.dashboard.token or secrets.token_urlsafe(18)
        self.launcher = None
        self._stop = threading.Event()
        self.faults: list[dict] = []

    @functools.cached_property
    def port(self) -> int:
        """The dashboard's port: the configured one, else a free one, picked when first needed
        (``evaluate`` and the benches build a Session for its paths and tasks, not its dashboard)."""
        return self.cfg.dashboard.port or free_port(self.cfg.dashboard.host)

    # -- tasks ------------------------------------------------------------------------------
    def _tasks(self) -> tuple[TaskSpec, TaskSpec]:
        c = self.cfg
        if c.scene:
            from hardware.sim.scenes import SCENES

            if c.scene not in SCENES:
                raise ValueError(f"unknown scene {c.scene!r}; sim scenes: {sorted(SCENES)}")
            fwd, bwd = SCENES[c.scene].tasks
            return (TaskSpec(c.forward_task or fwd.id, c.forward_instruction or fwd.instruction, "forward"),
                    TaskSpec(c.backward_task or bwd.id, c.backward_instruction or bwd.instruction, "backward"))
        return (TaskSpec(c.forward_task, c.forward_instruction, "forward"),
                TaskSpec(c.backward_task, c.backward_instruction, "backward"))

    def _other_task_ids(self) -> tuple[str, ...]:
        if not (self.cfg.scene and self.cfg.prior.other_scene and self.cfg.prior.other_episodes_per_task):
            return ()
        from hardware.sim.scenes import SCENES

        return tuple(t.id for t in SCENES[self.cfg.prior.other_scene].tasks)

    @property
    def classifier_path(self) -> str:
        return self.cfg.reward.classifier or str(self.paths.classifier)

    @property
    def reward_cameras(self) -> tuple[str, ...]:
        """The cameras the reward node scores (a classifier the session trains sees them side by side)."""
        c = self.cfg
        return c.reward.cameras or (c.cameras[:1] if c.reward.classifier else tuple(c.cameras))

    @property
    def checkpoints(self) -> str:
        return str(self.paths.checkpoints)

    # -- preparation ------------------------------------------------------------------------
    def prepare(self) -> dict:
        """Prior data, classifier and pre-trained policy, each cached in the run directory."""
        self.paths.root.mkdir(parents=True, exist_ok=True)
        self._save_config()
        stages = []
        c = self.cfg
        if c.scene:
            stages.append(Stage("collect_prior", self.prior_stage_config(), self._collect_prior,
                                "collect prior data with the scripted experts"))
        if not c.reward.classifier:
            stages.append(Stage("train_reward", {"reward": c.reward, "tasks": [self.forward.id, self.backward.id],
                                                 "cameras": list(self.reward_cameras)}, self._train_reward, "train the success classifier",
                                needs=("collect_prior",)))
        if c.pretrained:
            self._link_pretrained()
        elif (tuned := self._fine_tuned_version()) is not None:
            # Pre-training again (a changed policy config, or a new stage hash after an upgrade)
            # would publish a fresh policy as the newest version, over the fine-tuned ones.
            self.log(f"pre-training: kept, the session has fine-tuned it up to v{tuned} "
                     "(a new run directory pre-trains again)")
        else:
            if self.bc_init:
                stages.append(Stage("pretrain_bc", {"policy": self.bc_spec(), "updates": c.bc_init_updates},
                                    self._pretrain_bc, "pre-train the BC policy Cal-QL starts from", needs=("collect_prior",)))
            # the seed count joins the stage's settings only when set, so runs prepared before it keep their cache
            seeds = {"seeds": c.pretrain_seeds} if c.pretrain_seeds > 1 else {}
            stages.append(Stage("pretrain", {"policy": self.policy, "updates": c.pretrain_updates, **seeds},
                                self._pretrain, f"pre-train {self.policy.kind} offline", needs=("collect_prior", "pretrain_bc")))
        return run_stages(self.paths.root, stages, self.log)

    def prior_stage_config(self) -> dict:
        """What the prior data depends on (its stage re-runs, adding to the store, when this changes)."""
        c = self.cfg
        return {"scene": c.scene, "prior": c.prior, "seed": c.seed, "image_size": c.image_size, "cameras": list(c.cameras)}

    def _save_config(self) -> None:
        """Write session.json; a resume with other settings rewrites it (and says what changed), so
        the next plain ``--resume`` continues with what this one ran, not the first start's."""
        current = json.loads(json.dumps(to_flat_dict(self.cfg)))
        path = self.paths.config
        saved = json.loads(path.read_text()) if path.exists() else None
        if saved == current:
            return
        write_json_atomic(path, current)
        if saved is not None:
            # a field newer than the saved file, at its default, is no change of settings
            defaults = json.loads(json.dumps(to_flat_dict(SessionConfig())))
            changed = sorted(k for k in saved.keys() | current.keys() if k != "run_dir" and saved.get(k) != current.get(k)
                             and not (k not in saved and current.get(k) == defaults.get(k)))
            if changed:
                self.log("session.json: saved the new settings " + ", ".join(
                    f"{k} {saved.get(k)!r} -> {current.get(k)!r}" for k in changed))

    def _fine_tuned_version(self) -> int | None:
        """The newest policy version if the learner has published any after pre-training."""
        from policies.checkpoint import CheckpointManager

        try:
            pretrained = int((stage_record(self.paths.root, "pretrain") or {})["version"])
        except (KeyError, TypeError, ValueError):
            return None
        latest = CheckpointManager(self.paths.checkpoints).latest_version()
        return latest if latest is not None and latest > pretrained else None

    def _store(self):
        from robot_stack.store import EpisodeStore

        return EpisodeStore.create(self.paths.store)

    def _collect_prior(self, run_dir: pathlib.Path) -> dict:
        """Collect the prior data, or finish a collection of the same settings that was cut short.

        The store cannot delete, so prior data of other settings already in it would be trained on
        alongside the new: that is refused, naming the way out."""
        from robot_stack.session.prior_data import collect_prior_data, prior_groups

        store, group = self._store(), f"{self.cfg.robot_id}-prior"
        wanted = config_hash(self.prior_stage_config(), run_dir)
        started = "collect_prior.started"  # the settings of the last collection begun here, finished or not
        found = prior_groups(store, group)
        if found:
            earlier = stage_record(run_dir, started) or stage_record(run_dir, "collect_prior") or {}
            if earlier.get("config_hash") != wanted:
                raise RuntimeError(
                    f"{self.paths.store} already holds prior data ({', '.join(found)}) collected with other "
                    f"prior settings than these (prior.*, seed, image_size, cameras); the store keeps every episode, so "
                    f"both would be trained on. Start a new --run_dir, or resume with the settings it was prepared with")
            self.log(f"prior data: finishing the collection that was cut short in {self.paths.store}")
        write_json_atomic(stage_record_path(run_dir, started), {"config_hash": wanted})
        counts = collect_prior_data(store, self.cfg.scene, group, self.cfg.prior, seed=self.cfg.seed,
                                    image_size=self.cfg.image_size, cameras=tuple(self.cfg.cameras), resume=bool(found))
        return {"outputs": [self.paths.store.name], "counts": counts,
                "summary_line": ", ".join(f"{v} {k}" for k, v in counts.items() if v)}

    def _train_reward(self, run_dir: pathlib.Path) -> dict:
        from reward_vlm import RewardTrainConfig

        from robot_stack.reward.training import RewardDataConfig, train_from_store

        c = self.cfg
        extra = []
        if c.scene and c.reward.sim_snapshots:
            from robot_stack.session.prior_data import labelled_sim_snapshots

            extra = labelled_sim_snapshots(c.scene, (self.forward.id, self.backward.id), c.reward.sim_snapshots, seed=c.seed,
                                           image_size=c.image_size, cameras=self.reward_cameras,
                                           near_miss_share=c.reward.sim_near_misses,
                                           session_layout_share=c.reward.sim_session_layout,
                                           home_share=c.reward.sim_home_views)
        target, summary = train_from_store(
            self._store(), [self.forward, self.backward], self.paths.classifier,
            RewardDataConfig(cameras=self.reward_cameras, margin_frames=c.reward.margin_frames),
            RewardTrainConfig(image_size=c.image_size, epochs=c.reward.epochs, target_precision=c.reward.target_precision,
                              seed=c.seed), extra=extra)
        rep = summary["report"]
        return {"outputs": [str(target.relative_to(run_dir))], "classifier": str(target), "report": rep,
                "summary_line": f"held-out accuracy {rep['accuracy']:.3f}, precision {rep['precision']:.3f}, "
                                f"recall {rep['recall']:.3f}"}

    def _pretrain(self, run_dir: pathlib.Path) -> dict:
        """Pre-train ``pretrain_seeds`` networks, seeds seed, seed + 1, ..., as the next versions (v1..vN
        in a new run): an actor with ``ensemble_versions`` N starts from their mean. The record's
        ``version`` is the newest (where the learner starts), ``versions`` all of them."""
        updates, n = max(1, self.cfg.pretrain_updates), self.cfg.pretrain_seeds
        records = []
        for i in range(n):
            spec = dataclasses.replace(self.policy, seed=self.policy.seed + i)
            what = "policy" if n == 1 else f"policy (seed {spec.seed}, {i + 1} of {n})"
            records.append(self._pretrain_into(run_dir, self.paths.checkpoints, spec, updates, what))
        if n == 1:
            return records[0]
        return {**records[-1], "versions": [r["version"] for r in records],
                "outputs": [o for r in records for o in r["outputs"]],
                "summary_line": f"policy v{records[0]['version']}-v{records[-1]['version']}: {n} seeds, {updates} updates each"}

    def _pretrain_into(self, run_dir: pathlib.Path, checkpoints: pathlib.Path, spec, updates: int, what: str) -> dict:
        from robot_stack.learner.pretrain import pretrain

        summary = pretrain(self._store(), checkpoints, spec, updates)
        return {"outputs": [str(pathlib.Path(summary["checkpoint"]).relative_to(run_dir))], **summary,
                "summary_line": f"{what} v{summary['version']} after {summary['updates']} updates"}

    def bc_spec(self):
        """The BC learner on the same inputs as the session's policy (no init, no Cal-QL-only options,
        so changing those does not re-train it)."""
        return dataclasses.replace(self.policy, kind="bc", init_from="", freeze_image_encoder=False, bc_trains_encoder=False,
                                   cql_alpha=-1.0, bc_weight=-1.0, init_alpha=-1.0)

    def _pretrain_bc(self, run_dir: pathlib.Path) -> dict:
        return self._pretrain_into(run_dir, self.paths.bc_policy, self.bc_spec(), self.cfg.bc_init_updates, "BC policy")

    def _link_pretrained(self) -> None:
        """A real robot starts from a given checkpoint: copy it in (verified, renumbered as this run's
        first version) unless versions exist. One trained with another task order is refused here,
        at start, rather than by the actor, which would then have no policy to run."""
        from policies.checkpoint import CheckpointManager, read_meta

        from robot_stack.session.adapters import checkpoint_task_ids

        manager = CheckpointManager(self.paths.checkpoints)
        if manager.latest_version() is None:
            source, meta = read_meta(self.cfg.pretrained)
            checkpoint_task_ids(meta, source, expected=self.policy.task_ids)
            dst = manager.adopt(source)  # verifies the weights before it writes anything
            self.log(f"pre-trained policy {self.cfg.pretrained} -> {dst}")

    def sim_operator_settings(self, take_over_at: int) -> dict:
        """``SimOperatorConfig`` fields of this session's simulated operator: it corrects as the prior
        demos' expert acts (their noise and descent gate), so corrections never contradict the demos."""
        c = self.cfg
        return {"scene": c.scene, "seed": c.seed, "take_over_at": take_over_at,
                "noise": c.prior.expert_noise, "gate": c.prior.expert_gate}

    # -- the graph --------------------------------------------------------------------------
    def graph(self) -> dict:
        c, p = self.cfg, self.paths
        hz = c.episode.control_hz
        token_sha = hashlib.sha256(self.token.encode()).hexdigest()
        arm = c.arm or f"sim_{_scene_robot(c.scene)}"
        respawn = bool(c.respawn)
        nodes = [{"name": "controller", "node": "controller", "respawn": respawn,
                  "params": {"arm": arm, "scene": c.scene, "seed": c.seed, "image_size": c.image_size, "control_hz": hz,
                             "arm_config": c.arm_config if c.arm else "", "clear_token_sha256": token_sha,
                             "start_pose": "" if c.scene else "home", "lockstep": c.sim_lockstep}}]
        for cam in c.cameras:
            nodes.append({"name": f"camera_{cam}", "node": "camera", "respawn": respawn,
                          "params": {"driver": c.camera_driver, "name": cam, "fps": hz, "width": c.image_size,
                                     "height": c.image_size, "scene": c.scene or "widowx250_cube_bowl", "seed": c.seed,
                                     "sim_camera": cam, "driver_config": c.camera_config if c.camera_config != "{}" else "",
                                     "lockstep": c.sim_lockstep}})
        nodes.append({"name": "reward", "node": "reward", "respawn": respawn,
                      "params": {"classifier": self.classifier_path, "cameras": list(self.reward_cameras),
                                 "tasks": [self.forward.id, self.backward.id], "rate_hz": hz}})
        actor_params = {"store": str(p.store), "robot_id": c.robot_id, "checkpoints": self.checkpoints,
                        "robot_description": json.dumps({"arm": arm, "scene": c.scene, "sim": bool(c.scene)}),
                        "forward_task": self.forward.id, "forward_instruction": self.forward.instruction,
                        "backward_task": self.backward.id, "backward_instruction": self.backward.instruction,
                        "task_ids": list(self.policy.task_ids), "cameras": list(c.cameras), "state_file": str(p.scheduler),
                        "lockstep": c.sim_lockstep, "seed": c.seed, "ensemble_versions": c.ensemble_versions}
        actor_params.update({f"episode.{k}": v for k, v in to_flat_dict(c.episode).items()})
        actor_params.update({f"schedule.{k}": v for k, v in to_flat_dict(c.schedule).items()})
        nodes.append({"name": "actor", "node": "actor", "respawn": respawn, "params": actor_params})
        learner_params = {"store": str(p.store), "checkpoints": self.checkpoints, "utd_ratio": c.utd_ratio,
                          "learner_overrides": c.learner_overrides,
                          "publish_every": c.publish_every, "reinit_every": c.reinit_every, "keep_checkpoints": c.keep_checkpoints,
                          "tensorboard_dir": str(p.tensorboard)}
        learner_params.update({f"policy.{k}": v for k, v in to_flat_dict(self.policy).items()})
        nodes.append({"name": "learner", "node": "learner", "respawn": respawn, "params": learner_params})
        if c.sim_operator_at:
            operator = self.sim_operator_settings(c.sim_operator_at)
            nodes.append({"name": "teleop", "node": "teleop", "respawn": respawn,
                          "params": {"device": "sim_operator", "device_config": json.dumps(operator)}})
        web = {f"dashboard.{k}": v for k, v in to_flat_dict(c.dashboard).items() if k != "token"}
        web["dashboard.port"] = self.port
        # The token goes through the environment, not a parameter that `ps` would show.
        nodes.append({"name": "dashboard", "node": "dashboard", "respawn": respawn,
                      "env": {"ROBOT_STACK_DASHBOARD_TOKEN": self.token},
                      "params": {"store": str(p.store), "cameras": list(c.cameras), **web}})
        return {"nodes": nodes}

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.cfg.dashboard.host in ("0.0.0.0", "::") else self.cfg.dashboard.host
        return f"http://{host}:{self.port}/"

    # -- running ----------------------------------------------------------------------------
    def _event(self, event: dict) -> None:
        event = {"time": time.time(), **event}
        self.paths.events.parent.mkdir(parents=True, exist_ok=True)
        with self.paths.events.open("a") as fh:
            fh.write(json.dumps(event) + "\n")

    def committed_episodes(self) -> int:
        from robot_stack.store import EpisodeStore, StoreError

        try:
            return len(EpisodeStore.open(self.paths.store, read_only=True).episodes(robot=self.cfg.robot_id))
        except (StoreError, KeyError, ValueError):
            return 0

    def start(self, env: dict | None = None, output=None) -> None:
        from robot_stack.launcher import Launcher
        from robot_stack.runtime.dds import isolated_env

        # Sim sessions stay on loopback with their own domain: they never reach a lab robot.
        dds = isolated_env() if self.cfg.scene else {}
        self.launcher = Launcher(self.graph(), env={**dds, **(env or {})}, output=output, log_dir=self.paths.logs)
        self.launcher.start()
        self._event({"event": "session_started", "url": self.url, "nodes": list(self.launcher.children)})

    def supervise(self, poll_s: float = 0.2) -> int:
        """Supervise the graph until stopped, a stop condition, or a required node's death."""
        assert self.launcher is not None, "start() first"
        c = self.cfg
        start_episodes = self.committed_episodes()
        t0 = time.monotonic()
        reported: dict[str, int] = {}
        next_count = 0.0
        try:
            while not self._stop.is_set():
                for name, rc in self.launcher.poll().items():
                    pid = self.launcher.pid(name)
                    if rc is not None and reported.get(name) != pid:
                        reported[name] = pid
                        fault = {"event": "fault", "node": name, "returncode": rc,
                                 "action": "respawning" if c.respawn else "not restarted"}
                        self.faults.append(fault)
                        self._event(fault)
                        self.log(f"FAULT: node '{name}' exited with code {rc}; {fault['action']}")
                if self.launcher.check():
                    return 1
                now = time.monotonic()
                if c.duration_s and now - t0 >= c.duration_s:
                    self.log(f"duration {c.duration_s:g} s reached; stopping")
                    break
                if c.max_episodes and now >= next_count:
                    next_count = now + 2.0
                    done = self.committed_episodes() - start_episodes
                    if done >= c.max_episodes:
                        self.log(f"{done} episodes committed; stopping")
                        break
                self._stop.wait(poll_s)
            return 0
        finally:
            codes = self.launcher.stop()
            self._event({"event": "session_stopped", "exit_codes": codes})

    def stop(self) -> None:
        self._stop.set()


def _scene_robot(scene: str) -> str:
    from hardware.sim.scenes import SCENES

    return SCENES[scene].robot_name


def run_session(cfg: SessionConfig, log: Callable[[str], None] = print) -> int:
    """Prepare, start and supervise a session in the foreground; Ctrl-C stops it cleanly."""
    session = Session(cfg, log)
    session.prepare()
    session.start()
    log("")
    log(f"  robot_stack session running — run dir {session.paths.root}")
    log(f"  dashboard: {session.url}")
    log(f"  operator token: {session.token}")
    log("  (Ctrl-C stops the session; the episode in progress is committed, nothing recorded is lost)")
    log("")

    def on_signal(signum, _frame):
        session.stop()

    old = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    try:
        return session.supervise()
    finally:
        signal.signal(signal.SIGINT, old)
        signal.signal(signal.SIGTERM, old_term)
        sys.stdout.flush()

