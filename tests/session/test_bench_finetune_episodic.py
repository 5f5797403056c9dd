"""bench/finetune_episodic.py fine-tunes a copy of a prepared session: random starts every episode,
ground-truth reward, the session's learner service at an exact update-to-data ratio; the source
run directory is only read."""

import json
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from policies.checkpoint import CheckpointManager
from robot_stack.session.runner import load_session_config
from robot_stack.store import EpisodeStore

pytestmark = [pytest.mark.slow]
BENCH = pathlib.Path(__file__).resolve().parents[2] / "bench" / "finetune_episodic.py"


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=600)


def test_finetune_episodic_trains_a_copy_and_reports_the_curve(prepared, tmp_path, capsys):
    source_versions = CheckpointManager(prepared / "checkpoints").versions()
    source_episodes = len(EpisodeStore.open(prepared / "episodes.zarr", read_only=True).episodes())
    out_dir = tmp_path / "episodic"
    out = bench("--from", str(prepared), "--out-dir", str(out_dir), "--online-steps", "40", "--eval-episodes", "2",
                "--curve-points", "2", "--publish-every", "8", "--block-episodes", "2", "--learner-set", "calql.alpha_lr=0")
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])

    # the online phase trained with the override (a fixed temperature), not the prepared config's value
    assert result["learner_overrides"] == {"calql.alpha_lr": 0}
    newest = CheckpointManager(out_dir / "checkpoints")
    meta = json.loads((newest.path(newest.latest_version()) / "meta.json").read_text())
    assert meta["config"]["calql"]["alpha_lr"] == 0
    assert json.loads((newest.path(1) / "meta.json").read_text())["config"]["calql"]["alpha_lr"] > 0

    horizon = load_session_config(prepared).episode.horizon
    steps = result["online_steps"]
    assert 40 <= steps < 40 + horizon
    # the update-to-data ratio (1 here) holds: the actor waits for the learner before each episode
    assert steps - horizon - 10 <= result["updates"] <= steps
    assert result["policy_version_finetuned"] >= 2, "the learner should have published from the online data"
    curve = {int(v): rate for v, rate in result["forward_success_by_version"].items()}
    assert 1 in curve and max(curve) == result["policy_version_finetuned"]
    assert curve[1] == result["forward_success_pretrained"] and curve[max(curve)] == result["forward_success_finetuned"]
    for k in ("forward_success_pretrained", "forward_success_finetuned", "backward_success_finetuned", "bc_baseline_success"):
        assert 0.0 <= result[k] <= 1.0
    # each scored version's rate again by kind of start (the same starts for all), adding up to it
    starts, by_start = result["eval_starts"], result["forward_success_by_start"]
    assert set(by_start) == {f"v{v}" for v in curve} | {"bc"} and sum(starts.values()) == result["eval_episodes"]
    for v, rate in curve.items():
        assert set(by_start[f"v{v}"]) == set(starts)
        assert sum(by_start[f"v{v}"][k] * n for k, n in starts.items()) / result["eval_episodes"] == pytest.approx(rate, abs=1e-3)

    eps = EpisodeStore.open(out_dir / "episodes.zarr", read_only=True).episodes(robot="sim-episodic")
    assert len(eps) == result["online_episodes"] and sum(e.length for e in eps) == steps
    assert [e.phase for e in eps] == ["forward", "backward"] * (len(eps) // 2) + ["forward"] * (len(eps) % 2)
    store = EpisodeStore.open(out_dir / "episodes.zarr", read_only=True)
    forward_truth = []
    for e in eps:
        assert e.data_source == "online" and not e.eval
        truth = bool(e.extra["ground_truth"])
        assert (e.outcome == "success") == truth
        reward = store.read_episode(e, fields=["reward"], cameras=[]).data["reward"]
        assert reward[-1] == float(truth) and not reward[:-1].any()  # the episode ends at its first success
        if e.phase == "forward":
            forward_truth.append(truth)
    blocks = [round(float(np.mean(forward_truth[i:i + 2])), 2) for i in range(0, len(forward_truth), 2)]
    assert result["forward_online_success_by_block"] == blocks

    # the out dir records what it trained with, so critic-report can read it as a run directory
    from robot_stack.cli import main

    trained = load_session_config(out_dir)
    assert json.loads(trained.learner_overrides) == {"calql.alpha_lr": 0} and trained.run_dir == str(out_dir)
    assert main(["critic-report", "--run", str(out_dir), "--samples", "32"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["version"] == result["policy_version_finetuned"] and report["transitions"]["online"] > 0

    # the source run directory was only read
    assert CheckpointManager(prepared / "checkpoints").versions() == source_versions
    assert len(EpisodeStore.open(prepared / "episodes.zarr", read_only=True).episodes()) == source_episodes
    again = bench("--from", str(prepared), "--out-dir", str(out_dir), "--online-steps", "1")
    assert again.returncode != 0 and "already holds a run" in again.stderr


def test_finetune_episodic_refuses_a_directory_that_is_not_prepared_and_bad_overrides(tmp_path):
    out = bench("--from", str(tmp_path), "--out-dir", str(tmp_path / "out"))
    assert out.returncode != 0 and "not a session run directory" in out.stderr
    out = bench("--from", str(tmp_path), "--out-dir", str(tmp_path / "out"), "--learner-set", "calql.alpha_lr")
    assert out.returncode == 2 and "FIELD=JSON" in out.stderr


def test_sigterm_ends_the_online_phase_and_the_bench_still_scores_it(prepared, tmp_path):
    """Also with a simulated operator: it takes over every episode not done by step 3, and its steps
    are recorded as interventions (the learner's demo buffer)."""
    out_dir, log = tmp_path / "episodic", tmp_path / "stderr.txt"
    with open(log, "w") as err:  # a file, not a pipe nobody reads while waiting: the progress bar cannot fill it
        proc = subprocess.Popen([sys.executable, str(BENCH), "--from", str(prepared), "--out-dir", str(out_dir),
                                 "--online-steps", "100000", "--eval-episodes", "2", "--curve-points", "1", "--publish-every", "8",
                                 "--operator-at", "3"],
                                stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            store = out_dir / "episodes.zarr"
            if store.exists() and any(e.robot_id == "sim-episodic" for e in EpisodeStore.open(store, read_only=True).episodes()):
                break
        assert proc.poll() is None, "the bench ended before any online episode"
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    stderr = log.read_text()
    assert proc.returncode == 0, stderr[-3000:]
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["stopped_by"] == "SIGTERM" and "ending the online phase" in stderr
    eps = EpisodeStore.open(out_dir / "episodes.zarr", read_only=True).episodes(robot="sim-episodic")
    assert 0 < result["online_steps"] == sum(e.length for e in eps) < 100000
    store = EpisodeStore.open(out_dir / "episodes.zarr", read_only=True)
    for e in eps:  # the tiny policy never succeeds within 3 steps: the operator took over each episode there
        flags = store.read_episode(e, fields=["intervention"], cameras=[]).data["intervention"].astype(bool)
        assert not flags[:3].any() and flags[3:].all() and e.has_intervention
    forward = (len(eps) + 1) // 2
    assert result["operator_at"] == 3 and result["forward_assisted_by_block"] == [1.0] * -(-forward // 20)
    assert not any(result["forward_online_success_by_block"])
    assert 0.0 <= result["forward_success_finetuned"] <= 1.0 and "1" in result["forward_success_by_version"]


def test_rounds_and_exploration_noise_are_the_sessions_self_imitation_settings(prepared, tmp_path):
    """``--reinit-every`` trains in rounds (a version per finished round, ``--publish-every`` ignored)
    and both settings land in the copy's session.json, as a session with them would record."""
    out_dir = tmp_path / "episodic"
    out = bench("--from", str(prepared), "--out-dir", str(out_dir), "--online-steps", "30", "--eval-episodes", "1",
                "--curve-points", "0", "--publish-every", "4", "--reinit-every", "10", "--exploration-noise", "0.3",
                "--ensemble-versions", "2")
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["reinit_every"] == 10 and result["exploration_noise"] == 0.3
    assert result["ensemble_versions"] == 2 and result["pretrained_versions"] == 1
    # each episode records the networks that acted: the newest version and the one before it, once there are two
    eps = EpisodeStore.open(out_dir / "episodes.zarr", read_only=True).episodes(robot="sim-episodic")
    members = [e.extra["policy_members"] for e in eps]
    assert members[0] == [1] and all(m[-1] == e.extra["policy_version"] and len(m) <= 2 for m, e in zip(members, eps))
    assert [2, 3] in members or [1, 2] in members
    assert result["updates"] >= 20
    # only finished rounds are published: v1 (pre-trained) plus one per 10 updates, never one per 4
    assert CheckpointManager(out_dir / "checkpoints").versions() == list(range(1, 2 + result["updates"] // 10))
    trained = load_session_config(out_dir)
    assert trained.reinit_every == 10 and trained.episode.exploration_noise == 0.3 and trained.ensemble_versions == 2
    assert load_session_config(prepared).reinit_every == 0  # the source is only read
    bad = bench("--from", str(prepared), "--out-dir", str(tmp_path / "bad"), "--exploration-noise", "1.5")
    assert bad.returncode == 2 and "--exploration-noise" in bad.stderr


def test_a_source_pre_trained_with_several_seeds_brings_them_all(prepared, tmp_path, monkeypatch):
    """pretrain_seeds N: the copy starts from all N pre-trained versions, as v1..vN."""
    import shutil

    monkeypatch.syspath_prepend(str(BENCH.parent))
    import finetune_episodic

    source = tmp_path / "source"
    shutil.copytree(prepared, source)
    manager = CheckpointManager(source / "checkpoints", keep=0)
    manager.adopt(manager.path(1))  # v2: a second pre-trained network
    manager.adopt(manager.path(1))  # v3
    record_path = source / "stages" / "pretrain.json"
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "versions": [2, 3], "version": 3}))  # v1 is not among them
    cfg, _, n = finetune_episodic.copy_prepared(source, tmp_path / "out")
    copied = CheckpointManager(tmp_path / "out" / "checkpoints")
    assert n == 2 and copied.versions() == [1, 2] and copied.latest_version() == 2
    adopted = [json.loads((copied.path(v) / "meta.json").read_text())["extra"]["adopted_from"] for v in (1, 2)]
    assert [a["path"].rsplit("-", 1)[1] for a in adopted] == ["000002", "000003"] and cfg.run_dir == str(tmp_path / "out")


class _MeanPolicy:
    """A policy whose mean is zero motion and whose samples move +-0.5, in turn (the arm stays inside
    its workspace): tells the two apart."""

    version = 1
    mean = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], dtype=np.float32)

    def __init__(self):
        self.deterministic: list[bool] = []

    def reset(self) -> None:
        pass

    def act(self, images, state, task_id, deterministic=False):
        self.deterministic.append(deterministic)
        sign = 1 if len(self.deterministic) % 2 else -1
        return self.mean if deterministic else self.mean + np.float32(0.5 * sign) * (np.arange(7) < 3)


@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_training_episodes_explore_as_the_actor_node_does(tmp_path, monkeypatch, noise):
    """noise 0: the policy's own sample is sent; noise > 0: its mean plus N(0, noise) per dimension."""
    from hardware.sim.scenes import make_scene

    monkeypatch.syspath_prepend(str(BENCH.parent))
    import finetune_episodic

    scene = make_scene("widowx250_cube_bowl", seed=0, image_size=16, cameras=("front",))
    store = EpisodeStore.create(tmp_path / "store.zarr")
    writer = store.writer("sim-episodic", {"arm": scene.robot_name}, {"front": (16, 16)}, scene.proprio_dim)
    policy = _MeanPolicy()
    steps, _, _ = finetune_episodic.run_episode(scene, policy, scene.tasks[0], writer, np.random.default_rng(3), 40,
                                                noise=noise)
    writer.close()
    scene.close()
    assert steps == 40 and policy.deterministic == [noise > 0] * 40
    store = EpisodeStore.open(tmp_path / "store.zarr", read_only=True)
    sent = store.read_episode(store.episodes()[0], fields=["action"], cameras=[]).data["action"][:, :3]
    if noise == 0:
        np.testing.assert_allclose(sent, 0.5 * np.array([[1], [-1]] * 20) * np.ones(3))
    else:
        assert 0.03 < float(np.std(sent)) < 0.07 and abs(float(np.mean(sent))) < 0.02


class _StillPolicy:
    """A policy that holds still: every episode is left to the operator from its first step."""

    version = 1

    def reset(self) -> None:
        pass

    def act(self, images, state, task_id, deterministic=False):
        return np.array([0, 0, 0, 0, 0, 0, 1], dtype=np.float32)


@pytest.mark.parametrize("gate", ["strict", "loose"])
def test_the_simulated_operator_acts_with_the_prior_demos_expert(tmp_path, monkeypatch, gate):
    """The bench's operator is the session's (``Session.sim_operator_settings``): the prior data's
    expert, its noise and descent gate, since corrections that ask for another motion than the demos
    would contradict them. It works from its own mirror of the scene, as the teleop node's does."""
    from hardware.sim.operator import SimOperator, SimOperatorConfig
    from hardware.sim.scenes import make_scene
    from robot_stack.session.config import SessionConfig
    from robot_stack.session.prior_data import PriorDataConfig
    from robot_stack.session.runner import Session

    monkeypatch.syspath_prepend(str(BENCH.parent))
    import finetune_episodic

    session = Session(SessionConfig(run_dir=str(tmp_path), prior=PriorDataConfig(expert_noise=0.0, expert_gate=gate)),
                      log=lambda s: None)
    operator = SimOperator(SimOperatorConfig(**session.sim_operator_settings(1))).connect()
    scene = make_scene("widowx250_cube_bowl", seed=0, image_size=16, cameras=("front",))
    assert operator.scene is not scene
    built = []
    real_expert = operator.scene.expert
    monkeypatch.setattr(operator.scene, "expert", lambda *a, **kw: built.append(kw) or real_expert(*a, **kw))
    store = EpisodeStore.create(tmp_path / "store.zarr")
    writer = store.writer("sim-episodic", {"arm": scene.robot_name}, {"front": (16, 16)}, scene.proprio_dim)
    results = [finetune_episodic.run_episode(scene, _StillPolicy(), scene.tasks[0], writer, np.random.default_rng(3), 60,
                                             operator, index) for index in range(2)]
    writer.close()
    scene.close()
    operator.disconnect()
    assert built == [{"noise": 0.0, "rng": built[0]["rng"], "gate": gate}] * 2  # one takeover per episode
    for steps, done, assisted in results:
        assert assisted and done and steps < 60  # the operator finished what the still policy left
    store = EpisodeStore.open(tmp_path / "store.zarr", read_only=True)
    for e in store.episodes():
        flags = store.read_episode(e, fields=["intervention"], cameras=[]).data["intervention"].astype(bool)
        assert not flags[0] and flags[1:].all()  # the policy's first step, then the operator's
