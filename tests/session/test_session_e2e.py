"""The whole fine-tuning graph in sim as separate processes over real DDS, a real store and HTTP.

One preparation (prior data, classifier, pre-trained policy) is shared by the tests through a
copied run directory; each test runs its own session on its own DDS domain.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil
import signal
import threading
import time

import httpx
import numpy as np
import pytest

from robot_stack.runtime import Node, msgs, qos
from robot_stack.session.config import SessionConfig
from robot_stack.session.runner import Session, load_session_config
from robot_stack.store import EpisodeStore

pytestmark = [pytest.mark.processes, pytest.mark.slow]
TELEOP = [0.0, 0.3, 0.0, 0.0, 0.0, 0.0, -1.0]  # web teleop: +y, close the gripper


def copy_run(prepared, dest) -> SessionConfig:
    shutil.copytree(prepared, dest)
    return load_session_config(dest)


class Running:
    """A session supervised in a background thread, its node output in a log file."""

    def __init__(self, cfg: SessionConfig, env: dict, log_path):
        self.session = Session(cfg, log=lambda s: None)
        self.log = open(log_path, "a")
        self.session.start(env=env, output=self.log)
        self.code = None
        self.thread = threading.Thread(target=self._supervise, daemon=True)
        self.thread.start()

    def _supervise(self):
        self.code = self.session.supervise()

    def stop(self):
        self.session.stop()
        self.thread.join(60)
        self.log.close()
        assert not self.thread.is_alive(), "session did not stop"


def store_of(cfg) -> EpisodeStore:
    return EpisodeStore.open(f"{cfg.run_dir}/episodes.zarr", read_only=True)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def robot_episodes(cfg):
    from robot_stack.store import EpisodeNotFoundError

    try:
        return store_of(cfg).episodes(robot=cfg.robot_id)
    except EpisodeNotFoundError:  # the robot's group appears with its first recorded step
        return []


def test_preparation_starts_calql_from_the_bc_policy(prepared):
    import torch

    from policies.checkpoint import load_agent

    stage = json.loads((prepared / "stages" / "pretrain_bc.json").read_text())
    assert stage["updates"] == 2 and stage["version"] == 1
    bc, calql = load_agent(prepared / "bc_policy"), load_agent(prepared / "checkpoints")
    # The image encoder is BC's, bit for bit (copied, then frozen); the rest of Cal-QL trained on.
    for (name, a), b in zip(bc.encoder.image.state_dict().items(), calql.encoder.image.state_dict().values()):
        assert torch.equal(a, b), name
    assert not all(torch.equal(a, b) for a, b in zip(bc.actor.parameters(), calql.actor.parameters()))


def test_a_moved_run_directory_keeps_its_preparation(prepared, tmp_path):
    from policies.checkpoint import CheckpointManager

    cfg = copy_run(prepared, tmp_path / "elsewhere" / "run")
    # session.json still names the directory it was written in; the loaded config names where it is now
    assert cfg.run_dir == str(tmp_path / "elsewhere" / "run") != json.loads((prepared / "session.json").read_text())["run_dir"]
    lines: list[str] = []
    Session(cfg, log=lines.append).prepare()
    assert len(lines) == 4 and all(": cached (" in line for line in lines), lines
    assert CheckpointManager(tmp_path / "elsewhere" / "run" / "checkpoints").versions() == [1]


def test_preparation_never_publishes_over_fine_tuned_versions(prepared, tmp_path):
    from policies.checkpoint import CheckpointManager

    cfg = copy_run(prepared, tmp_path / "run")
    checkpoints = tmp_path / "run" / "checkpoints"
    shutil.copytree(checkpoints / "policy-000001", checkpoints / "policy-000002")  # as if the learner published v2
    (checkpoints / "latest").write_text("policy-000002")
    cfg.pretrain_updates += 1  # a changed pre-training config would re-run the stage
    lines: list[str] = []
    Session(cfg, log=lines.append).prepare()
    assert any("pre-training: kept" in line and "v2" in line for line in lines), lines
    assert CheckpointManager(checkpoints).versions() == [1, 2] and CheckpointManager(checkpoints).latest_version() == 2


def test_preparation_trains_a_classifier_on_both_cameras_side_by_side(prepared):
    from reward_vlm import load_classifier, version_dirs

    from robot_stack.reward.training import RewardDataConfig, labelled_episodes, reverse_map

    clf = load_classifier(version_dirs(prepared / "classifier")[-1])
    assert clf.views == ("front", "wrist")
    report = json.loads(next((prepared / "classifier").glob("report-v*.json")).read_text())
    session = Session(load_session_config(prepared), log=lambda s: None)
    tasks = [session.forward, session.backward]
    from_store = labelled_episodes(EpisodeStore.open(prepared / "episodes.zarr", read_only=True), [t.id for t in tasks],
                                   RewardDataConfig(cameras=("front", "wrist")), reverse_map(tasks))
    # plus the 20 simulator-labelled snapshots: one group of frames, labelled for each of the 2 tasks
    assert report["episodes"] == len(from_store) + 2
    reward = next(n for n in session.graph()["nodes"] if n["name"] == "reward")
    assert reward["params"]["cameras"] == ["front", "wrist"]


def test_session_runs_learns_records_interventions_and_resumes_after_kill(prepared, tmp_path, dds_env):
    cfg = copy_run(prepared, tmp_path / "run")
    run = Running(cfg, dds_env, tmp_path / "nodes.log")
    try:
        wait_for(lambda: len(robot_episodes(cfg)) >= 3, 150, "three committed episodes")
        # A person takes over through the dashboard's web teleop (authenticated), for ~3 s: longer
        # than the arm's move home before an episode, so some of it lands inside one.
        url, auth = run.session.url, {"Authorization": f"Bearer {cfg.dashboard.token}"}
        with httpx.Client(timeout=5) as client:
            assert client.post(url + "api/teleop", json={"action": TELEOP}).status_code == 401
            for _ in range(15):
                r = client.post(url + "api/teleop", json={"action": TELEOP}, headers=auth)
                assert r.status_code == 200, r.text
                time.sleep(0.2)
        wait_for(lambda: any(e.has_intervention for e in robot_episodes(cfg)), 60, "an episode with an intervention")
        # The learner publishes new versions from online data; the actor switches at a boundary.
        wait_for(lambda: any(max(e.policy_versions or [0]) >= 2 for e in robot_episodes(cfg)), 180,
                 "an episode recorded under policy v2+")
        # A crash of everything at once: SIGKILL every node, then stop supervision.
        for name in list(run.session.launcher.children):
            run.session.launcher.kill(name, signal.SIGKILL)
    finally:
        run.stop()

    store = store_of(cfg)
    before = {e.episode_id: e for e in store.episodes(robot=cfg.robot_id)}
    # With switch_after_failures=1 every episode (training and eval) flips the task; a task the
    # classifier already calls done at its start is skipped unrecorded, which also flips it.
    # (An untrained policy mostly fails "put in", which leaves "take out" done: skipped.)
    phases = [e.phase for e in sorted(before.values(), key=lambda e: e.index)]
    log = (pathlib.Path(cfg.run_dir) / "logs" / "actor.log").read_text().splitlines()
    skipped = [json.loads(line.split("]: ", 1)[1])["phase"] for line in log if '"event": "task_already_done"' in line]
    assert {"forward", "backward"} <= set(phases) | set(skipped), (phases, skipped)
    repeats = sum(a == b for a, b in zip(phases, phases[1:]))
    assert repeats <= len(skipped), f"phases must alternate (up to {len(skipped)} skipped tasks), got {phases}"
    versions = sorted({v for e in before.values() for v in e.policy_versions})
    assert versions[0] == 1 and versions[-1] >= 2
    # The reward node scores both tasks on every frame: each phase's steps carry its own task's
    # probability (an actor keeping only the newest message saw mostly the other task's).
    for phase in set(phases):
        probs = np.concatenate([store.read_episode(e, fields=["success_prob"], cameras=[]).data["success_prob"]
                                for e in before.values() if e.phase == phase])
        assert np.isfinite(probs).mean() > 0.5, (phase, probs)
    for e in before.values():  # one policy version per episode: swaps happen only at boundaries
        assert len(set(e.policy_versions)) == 1, e.episode_id
    flagged = [e for e in before.values() if e.has_intervention]
    data = store.read_episode(flagged[0]).data
    # The stored action is what the controller applied: motion may be clamped at the workspace
    # edge, but the gripper command passes unchanged, so it identifies the person's steps.
    assert data["intervention"].any() and np.allclose(data["action"][data["intervention"]][:, 6], TELEOP[6])
    assert sum(s.end - s.start for e in before.values() for s in e.intervention_segments) >= 2
    # Lockstep sim: each recorded step's state change is the effect of its own recorded action,
    # as in the scripted demos (free-running timers gave 0.64-0.71 here: dropped/merged actions).
    moves, actions = [], []
    for e in before.values():
        d = store.read_episode(e, fields=["state", "action"], cameras=[]).data
        n = d["state"].shape[1] - 8  # ee xyz follows the joints
        moves.append(np.diff(d["state"][:, n:n + 3], axis=0))
        actions.append(d["action"][:-1, :3])
    moves, actions = np.concatenate(moves), np.concatenate(actions)
    corr = [np.corrcoef(moves[:, k], actions[:, k])[0, 1] for k in range(3)]
    assert min(corr) > 0.9, f"state changes should follow the recorded actions step for step, corr {corr}"

    # Resume after the crash: nothing committed is lost, the schedule continues.
    resumed = load_session_config(cfg.run_dir)
    resumed.run_dir = cfg.run_dir
    run = Running(resumed, dds_env, tmp_path / "nodes.log")
    try:
        wait_for(lambda: len(robot_episodes(cfg)) >= len(before) + 2, 150, "episodes after resume")
    finally:
        run.stop()
    after = {e.episode_id: e for e in store_of(cfg).episodes(robot=cfg.robot_id)}
    assert set(before) <= set(after)
    for eid, info in before.items():
        assert after[eid].length == info.length and after[eid].checksums == info.checksums
    assert store_of(cfg).verify(read_data=True).ok


def test_a_simulated_operator_takes_over_unfinished_episodes_and_finishes_them(prepared, tmp_path, dds_env):
    """The teleop node with the sim_operator device, in the graph: it follows the session and the
    world, and the episodes it takes over are recorded as interventions from its step on."""
    cfg = copy_run(prepared, tmp_path / "run")
    cfg.sim_operator_at = 3
    # Every episode runs its whole horizon (the tiny classifier's "done" ends none), long enough for
    # the expert to finish; noise-free, the loose gate's expert finishes every start in ~25 steps.
    cfg.episode.horizon, cfg.episode.success_ticks = 50, 10_000
    cfg.prior = dataclasses.replace(cfg.prior, expert_noise=0.0, expert_gate="loose")
    run = Running(cfg, dds_env, tmp_path / "nodes.log")
    try:
        assert "teleop" in run.session.launcher.children
        # The session starts with the cube in the bowl: its first episode, "take out", is taken over.
        # (Later ones depend on the tiny classifier: its false "done"s skip or re-stage tasks.)
        wait_for(lambda: any(e.has_intervention for e in robot_episodes(cfg)), 180, "an episode taken over")
    finally:
        run.stop()
    episodes = robot_episodes(cfg)
    assisted = [e for e in episodes if e.has_intervention and e.length == cfg.episode.horizon]
    assert assisted and not any(e.eval for e in assisted), "evaluation episodes measure the policy alone"
    for e in assisted:
        # session/state comes at 2 Hz, so the takeover lags its step by a few steps at most
        (segment,) = e.intervention_segments
        assert 3 <= segment.start <= 15 and segment.end == e.length, (e.episode_id, segment, e.length)
        assert e.extra["ground_truth"], f"the operator finishes what it takes over: {e.phase} {e.extra}"
    assert store_of(cfg).verify(read_data=True).ok


def test_kill_each_node_in_turn_holds_the_arm_reports_the_fault_and_continues(prepared, tmp_path, dds_env, runtime):
    cfg = copy_run(prepared, tmp_path / "run")
    probe = runtime.create_node(Node, name="probe")
    proprio: list = []
    probe.create_subscription(msgs.Float32MultiArray, "arm/proprio", lambda m: proprio.append(m.to_numpy()),
                              qos.SENSOR_DATA)
    run = Running(cfg, dds_env, tmp_path / "nodes.log")
    try:
        wait_for(lambda: len(robot_episodes(cfg)) >= 1, 150, "a first episode")
        for name in ["camera_front", "reward", "learner", "dashboard", "actor", "controller"]:
            n_faults = len(run.session.faults)
            old_pid = run.session.launcher.pid(name)
            run.session.launcher.kill(name, signal.SIGKILL)
            wait_for(lambda: len(run.session.faults) > n_faults, 20, f"the fault of {name} reported")
            assert run.session.faults[-1]["node"] == name and run.session.faults[-1]["returncode"] == -9
            if name == "actor":
                # No actor, no commands: the controller must hold the arm where it is.
                runtime.spin_until(lambda: False, timeout_s=1.0)
                start = len(proprio)
                runtime.spin_until(lambda: len(proprio) >= start + 10, timeout_s=10)
                ee = np.array([p[6:9] for p in proprio[start:]])
                assert np.ptp(ee, axis=0).max() < 0.003, f"arm moved while the actor was dead: {np.ptp(ee, axis=0)}"
            wait_for(lambda: run.session.launcher.pid(name) not in (None, old_pid)
                     and run.session.launcher.poll()[name] is None, 30, f"{name} respawned")
        n = len(robot_episodes(cfg))
        wait_for(lambda: len(robot_episodes(cfg)) >= n + 2, 180, "episodes after every node was restarted")
    finally:
        run.stop()
    events = (tmp_path / "run" / "events.jsonl").read_text()
    assert events.count('"event": "fault"') >= 6
    assert store_of(cfg).verify(read_data=True).ok


def test_actor_drops_camera_frames_of_the_wrong_size(prepared, tmp_path, runtime):
    """A misconfigured camera, or another graph's on the same DDS domain, sends frames the policy
    cannot take: the actor drops them (no fresh observation, the arm holds) instead of crashing."""
    from robot_stack.nodes.actor import ActorNode

    actor = runtime.create_node(ActorNode, params={
        "store": str(tmp_path / "s.zarr"), "checkpoints": str(prepared / "checkpoints"), "autostart": False,
        "cameras": ["front", "wrist"]})
    side = load_session_config(prepared).image_size
    assert actor.loop.policy.image_shape == (side, side, 3)
    actor.on_image("wrist", msgs.Image.from_numpy(np.zeros((2 * side, 2 * side, 3), np.uint8)))
    assert "wrist" not in actor._images
    actor.on_image("wrist", msgs.Image.from_numpy(np.zeros((side, side, 3), np.uint8)))
    assert actor._images["wrist"][0].shape == (side, side, 3)
