"""Session configuration as it reaches the node graph and its stages: the classifier's cameras, lockstep sim, the BC policy."""

import json
import pathlib

import pytest

from robot_stack.session.config import RewardSetup, SessionConfig
from robot_stack.session.runner import Session


def node_params(cfg: SessionConfig) -> dict:
    return {n["name"]: n["params"] for n in Session(cfg, log=lambda s: None).graph()["nodes"]}


def reward_node_cameras(cfg: SessionConfig) -> list:
    return node_params(cfg)["reward"]["cameras"]


def test_a_trained_classifier_sees_every_session_camera_and_a_given_one_the_first(tmp_path):
    assert reward_node_cameras(SessionConfig(run_dir=str(tmp_path))) == ["front", "wrist"]
    given = SessionConfig(run_dir=str(tmp_path), reward=RewardSetup(classifier=str(tmp_path / "clf")))
    assert reward_node_cameras(given) == ["front"]
    chosen = SessionConfig(run_dir=str(tmp_path), reward=RewardSetup(cameras=("wrist",)))
    assert reward_node_cameras(chosen) == ["wrist"]


def test_reward_cameras_must_be_session_cameras(tmp_path):
    with pytest.raises(ValueError, match=r"reward.cameras \['side'\]"):
        SessionConfig(run_dir=str(tmp_path), reward=RewardSetup(cameras=("front", "side")))
    with pytest.raises(ValueError, match="sim_snapshots"):
        RewardSetup(sim_snapshots=-1)
    for name in ("sim_near_misses", "sim_session_layout", "sim_home_views"):
        with pytest.raises(ValueError, match=name):
            RewardSetup(**{name: 1.5})


def test_sim_sessions_run_in_lockstep_and_real_arms_never(tmp_path):
    lockstep_nodes = ("controller", "camera_front", "camera_wrist", "actor")
    sim = node_params(SessionConfig(run_dir=str(tmp_path)))
    assert all(sim[n]["lockstep"] is True for n in lockstep_nodes)
    free = node_params(SessionConfig(run_dir=str(tmp_path), lockstep=False))
    assert not any(free[n]["lockstep"] for n in lockstep_nodes)
    real = node_params(SessionConfig(
        run_dir=str(tmp_path), scene="", arm="widowx250", camera_driver="opencv", forward_task="a",
        forward_instruction="do a", backward_task="b", backward_instruction="undo a", pretrained=str(tmp_path / "ckpt"),
        reward=RewardSetup(classifier=str(tmp_path / "clf"))))
    assert not any(real[n]["lockstep"] for n in lockstep_nodes)


def test_a_simulated_operator_is_a_teleop_node_acting_as_the_prior_data_expert(tmp_path):
    from robot_stack.nodes.teleop import TeleopNodeConfig
    from robot_stack.session.prior_data import PriorDataConfig

    assert "teleop" not in node_params(SessionConfig(run_dir=str(tmp_path))), "the autonomous default has no operator"
    cfg = SessionConfig(run_dir=str(tmp_path), sim_operator_at=25, seed=3,
                        prior=PriorDataConfig(expert_noise=0.05, expert_gate="loose"))
    params = node_params(cfg)["teleop"]
    TeleopNodeConfig(**params)  # the node takes them
    assert params["device"] == "sim_operator"
    assert json.loads(params["device_config"]) == {"scene": cfg.scene, "seed": 3, "take_over_at": 25, "noise": 0.05,
                                                   "gate": "loose"}
    with pytest.raises(ValueError, match="horizon"):
        SessionConfig(run_dir=str(tmp_path), sim_operator_at=60)
    with pytest.raises(ValueError, match="sim_operator_at"):
        SessionConfig(run_dir=str(tmp_path), sim_operator_at=-1)
    with pytest.raises(ValueError, match="a real robot's operator is a person"):
        SessionConfig(run_dir=str(tmp_path), scene="", arm="widowx250", forward_task="a", forward_instruction="do a",
                      backward_task="b", backward_instruction="undo a", pretrained=str(tmp_path / "ckpt"),
                      reward=RewardSetup(classifier=str(tmp_path / "clf")), sim_operator_at=10)


def test_checkpoint_retention_reaches_the_learner(tmp_path):
    assert node_params(SessionConfig(run_dir=str(tmp_path)))["learner"]["keep_checkpoints"] == 5
    assert node_params(SessionConfig(run_dir=str(tmp_path), keep_checkpoints=0))["learner"]["keep_checkpoints"] == 0
    with pytest.raises(ValueError, match="keep_checkpoints"):
        SessionConfig(run_dir=str(tmp_path), keep_checkpoints=-1)


def test_a_self_imitation_session_reaches_the_learner_and_the_actor(tmp_path):
    """policy.kind bc with reinit_every and episode.exploration_noise, as the nodes parse their parameters."""
    from robot_stack.config import from_mapping
    from robot_stack.learner.builder import PolicySpec
    from robot_stack.learner.service import LearnerServiceConfig
    from robot_stack.nodes.actor import ActorNodeConfig
    from robot_stack.session.actor_loop import ActorConfig

    cfg = SessionConfig(run_dir=str(tmp_path), policy=PolicySpec(kind="bc"), reinit_every=7500,
                        episode=ActorConfig(exploration_noise=0.1), seed=11)
    params = node_params(cfg)
    learner = from_mapping(LearnerServiceConfig, params["learner"])
    assert learner.reinit_every == 7500 and learner.policy.kind == "bc" and learner.policy.bc_data == "successes"
    actor = from_mapping(ActorNodeConfig, params["actor"])
    assert actor.episode.exploration_noise == 0.1 and actor.seed == 11  # the noise is seeded as the rest of the run
    assert from_mapping(LearnerServiceConfig, node_params(SessionConfig(run_dir=str(tmp_path)))["learner"]).reinit_every == 0
    with pytest.raises(ValueError, match="reinit_every"):
        SessionConfig(run_dir=str(tmp_path), reinit_every=-1)


def test_an_ensemble_of_versions_reaches_the_actor_and_the_learner_keeps_enough_of_them(tmp_path):
    from robot_stack.config import from_mapping
    from robot_stack.nodes.actor import ActorNodeConfig

    assert from_mapping(ActorNodeConfig, node_params(SessionConfig(run_dir=str(tmp_path)))["actor"]).ensemble_versions == 1
    params = node_params(SessionConfig(run_dir=str(tmp_path), ensemble_versions=3))
    assert from_mapping(ActorNodeConfig, params["actor"]).ensemble_versions == 3
    assert params["learner"]["keep_checkpoints"] == 5
    with pytest.raises(ValueError, match=r"keep_checkpoints \(2\) must be 0 \(all\) or >= ensemble_versions \(3\)"):
        SessionConfig(run_dir=str(tmp_path), ensemble_versions=3, keep_checkpoints=2)
    assert SessionConfig(run_dir=str(tmp_path), ensemble_versions=8, keep_checkpoints=0).ensemble_versions == 8
    for bad in ({"ensemble_versions": 0}, {"pretrain_seeds": 0}):
        with pytest.raises(ValueError, match="ensemble_versions and pretrain_seeds must be >= 1"):
            SessionConfig(run_dir=str(tmp_path), **bad)
    with pytest.raises(ValueError, match="ensemble_versions must be >= 1"):
        ActorNodeConfig(ensemble_versions=0)
    with pytest.raises(ValueError, match="a given pretrained checkpoint is one network"):
        SessionConfig(run_dir=str(tmp_path), pretrain_seeds=2, pretrained=str(tmp_path))


def test_pretrain_seeds_pre_trains_that_many_networks_as_the_next_versions(prepared, tmp_path):
    """Seeds seed, seed + 1, ... as the next versions; the stage records them all, and is cached after."""
    import dataclasses
    import shutil

    from policies.checkpoint import CheckpointManager, load_checkpoint
    from robot_stack.session.runner import load_session_config
    from robot_stack.session.stages import stage_record

    run = tmp_path / "run"
    shutil.copytree(prepared, run)
    cfg = dataclasses.replace(load_session_config(run), run_dir=str(run), pretrain_seeds=2)
    lines = []
    Session(cfg, log=lines.append).prepare()
    record = stage_record(run, "pretrain")
    assert record["versions"] == [2, 3] and record["version"] == 3  # v1 was the fixture's single network
    manager = CheckpointManager(run / "checkpoints")
    assert manager.versions() == [1, 2, 3] and manager.latest_version() == 3
    seeds = [load_checkpoint(manager.path(v), with_optimizer=False).meta["config"]["seed"] for v in (2, 3)]
    assert seeds == [cfg.seed, cfg.seed + 1]
    assert any("2 seeds" in line for line in lines)
    lines.clear()
    Session(cfg, log=lines.append).prepare()
    assert any("pre-train" in line and "cached" in line for line in lines) and manager.versions() == [1, 2, 3]


def test_learner_overrides_reach_the_learner_node_only(tmp_path):
    """The online learner takes them; the learner node's config accepts them as given; bad JSON is refused."""
    from robot_stack.config import from_mapping
    from robot_stack.learner.service import LearnerServiceConfig

    overrides = '{"calql.alpha_lr": 0, "calql.floor_targets": true}'
    cfg = SessionConfig(run_dir=str(tmp_path), learner_overrides=overrides)
    params = node_params(cfg)["learner"]
    assert params["learner_overrides"] == overrides
    assert from_mapping(LearnerServiceConfig, params).learner_overrides == overrides
    assert Session(cfg, log=lambda s: None).policy == Session(SessionConfig(run_dir=str(tmp_path)), log=lambda s: None).policy
    with pytest.raises(ValueError, match="learner_overrides must be a JSON object"):
        SessionConfig(run_dir=str(tmp_path), learner_overrides="calql.alpha_lr=0")


def test_the_bc_policy_does_not_depend_on_cal_ql_only_options(tmp_path):
    """Tuning Cal-QL (its conservative weight, its BC term) must not re-train the BC policy it starts from."""
    from robot_stack.learner.builder import PolicySpec

    def bc(**calql):
        return Session(SessionConfig(run_dir=str(tmp_path), policy=PolicySpec(**calql)), log=lambda s: None).bc_spec()

    base = bc()
    assert base.kind == "bc" and not base.init_from
    assert bc(cql_alpha=0.5, bc_weight=10.0, init_alpha=0.1, freeze_image_encoder=True) == base
    assert bc(batch_size=32) != base  # what BC itself uses still counts


def lab_checkpoints(tmp_path, task_ids, versions: int = 1):
    """A lab's checkpoint root holding ``versions`` tiny Cal-QL policies for ``task_ids``."""
    from policies.calql import CalQLLearner
    from policies.checkpoint import CheckpointManager
    from policies.config import EncoderConfig, LearnerConfig, NetworkConfig

    net = NetworkConfig(image_keys=("front",), state_dim=3, hidden_dims=(16,), num_tasks=2,
                        encoder=EncoderConfig(image_size=16, channels=4, strides=(2, 1, 1, 1), feature_dim=4))
    lab = CheckpointManager(tmp_path / "lab")
    for _ in range(versions):
        lab.save(CalQLLearner(LearnerConfig(network=net, device="cpu", num_threads=1)), extra={"task_ids": list(task_ids)})
    return lab.root


def real_arm_config(tmp_path, pretrained) -> SessionConfig:
    return SessionConfig(run_dir=str(tmp_path / "run"), scene="", arm="widowx250", camera_driver="opencv", forward_task="a",
                         forward_instruction="do a", backward_task="b", backward_instruction="undo a", pretrained=str(pretrained),
                         reward=RewardSetup(classifier=str(tmp_path / "clf")))


@pytest.mark.parametrize("order", [("a", "b"), ("b", "a")])
def test_a_given_pretrained_policy_becomes_version_1_of_the_run_unless_trained_for_another_task_order(tmp_path, order):
    """A lab's checkpoint (here v3 of its root) is copied in as v1, so the versions the actor stamps
    and the learner numbers on from agree; one whose task order would swap "do a" and "undo a" is
    refused before the session starts."""
    from policies.checkpoint import CheckpointError, CheckpointManager

    from robot_stack.session.adapters import CheckpointWatcher

    session = Session(real_arm_config(tmp_path, lab_checkpoints(tmp_path, order, versions=3)), log=lambda s: None)
    if order != ("a", "b"):
        with pytest.raises(CheckpointError, match="trained with task ids"):
            session.prepare()
        assert CheckpointManager(session.checkpoints).versions() == []
        return
    session.prepare()
    session.prepare()  # a resumed session keeps what it has
    run = CheckpointManager(session.checkpoints)
    assert run.versions() == [1] and run.latest_version() == 1
    policy = CheckpointWatcher(session.checkpoints, session.policy.task_ids).load_latest()
    assert policy is not None and policy.version == 1


def test_a_resume_with_other_settings_saves_them_for_the_next_resume(tmp_path):
    """``--resume RUN --episode.horizon 40`` runs with 40; the next plain ``--resume`` must too, not
    fall back to the first start's settings; the log says what changed."""
    from robot_stack.session.runner import load_session_config

    cfg = real_arm_config(tmp_path, lab_checkpoints(tmp_path, ("a", "b")))
    Session(cfg, log=lambda s: None).prepare()
    first = load_session_config(cfg.run_dir)
    assert first.episode.horizon == cfg.episode.horizon != 40
    resumed = load_session_config(cfg.run_dir)
    resumed.episode.horizon = 40
    lines = []
    Session(resumed, log=lines.append).prepare()
    assert load_session_config(cfg.run_dir).episode.horizon == 40
    assert any(f"episode.horizon {cfg.episode.horizon} -> 40" in line for line in lines)
    lines.clear()
    Session(load_session_config(cfg.run_dir), log=lines.append).prepare()
    assert not any("session.json" in line for line in lines)  # nothing changed: nothing said
    # a session.json written before a field existed: at its default the new field is no change
    path = pathlib.Path(cfg.run_dir) / "session.json"
    saved = json.loads(path.read_text())
    del saved["prior.forward_demos"]
    path.write_text(json.dumps(saved))
    resumed = load_session_config(cfg.run_dir)
    resumed.episode.horizon = 41
    lines.clear()
    Session(resumed, log=lines.append).prepare()
    said = [line for line in lines if "session.json" in line]
    assert said and "episode.horizon" in said[0] and "forward_demos" not in said[0]


def test_the_default_session_is_the_measured_recipe_and_a_fixed_encoder_needs_a_trained_one(tmp_path):
    """`make run` runs what bench/session.py measured (run F); freezing a random encoder is refused."""
    from robot_stack.learner.builder import PolicySpec

    cfg = SessionConfig(run_dir=str(tmp_path))
    assert (cfg.prior.demos_per_task, cfg.bc_init_updates, cfg.policy.bc_weight, cfg.policy.cql_alpha) == (100, 7500, 30.0, 0.5)
    session = Session(cfg, log=lambda s: None)
    assert session.bc_init and session.policy.init_from == str(session.paths.bc_policy)
    with pytest.raises(ValueError, match="freeze_image_encoder keeps a trained image encoder fixed"):
        SessionConfig(run_dir=str(tmp_path), bc_init_updates=0)
    assert not SessionConfig(run_dir=str(tmp_path), bc_init_updates=0,
                             policy=PolicySpec(freeze_image_encoder=False)).policy.freeze_image_encoder


@pytest.mark.parametrize("field, value", [("forward_demos", 2), ("expert_gate", "loose")])
def test_an_unset_new_prior_field_leaves_the_prior_stage_as_run_dirs_from_before_it(tmp_path, field, value):
    """A new PriorDataConfig field must not re-collect (and so duplicate) an older run dir's prior data."""
    import dataclasses

    from robot_stack.session.prior_data import PriorDataConfig
    from robot_stack.session.stages import config_hash

    def prior_hash(**kw):
        return config_hash(Session(SessionConfig(run_dir=str(tmp_path), prior=PriorDataConfig(**kw)), log=lambda s: None).prior_stage_config())

    def hash_before_the_fields(**kw):  # the stage config as run dirs prepared before the new fields recorded it
        cfg = SessionConfig(run_dir=str(tmp_path), prior=PriorDataConfig(**kw))
        prior = dataclasses.asdict(cfg.prior)
        del prior["forward_demos"], prior["expert_gate"]
        return config_hash({"scene": cfg.scene, "prior": prior, "seed": cfg.seed, "image_size": cfg.image_size,
                            "cameras": list(cfg.cameras)})

    assert prior_hash(demos_per_task=5) == hash_before_the_fields(demos_per_task=5)
    assert prior_hash(demos_per_task=5, **{field: value}) != prior_hash(demos_per_task=5)


def test_prior_collection_cut_short_is_finished_and_other_prior_settings_are_refused(tmp_path, monkeypatch):
    """Ctrl-C during the prior data, then ``robot-stack run`` again: the store ends with what the
    settings ask for, not the first try's episodes plus a whole second collection. Other prior
    settings on the same run dir are refused: the store cannot drop the old prior data."""
    from robot_stack.session import prior_data
    from robot_stack.session.prior_data import PriorDataConfig
    from robot_stack.store import EpisodeStore

    tasks = ("put_cube_in_bowl", "take_cube_out_of_bowl")

    def config(demos):  # a given policy and classifier leave only the prior data to prepare
        return SessionConfig(run_dir=str(tmp_path / "run"), image_size=16, cameras=("front",),
                             prior=PriorDataConfig(demos_per_task=demos, failures_per_task=1),
                             pretrained=str(lab_checkpoints(tmp_path, tasks)), reward=RewardSetup(classifier=str(tmp_path / "clf")))

    real, calls = prior_data.record_expert_episode, []

    def interrupted(*args, **kw):
        calls.append(kw.get("kind"))
        if len(calls) == 4:  # the forward task's demos and failure are done; Ctrl-C in the take-out's
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(prior_data, "record_expert_episode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Session(config(2), log=lambda s: None).prepare()
    monkeypatch.setattr(prior_data, "record_expert_episode", real)
    lines = []
    records = Session(config(2), log=lines.append).prepare()
    assert any("finishing the collection that was cut short" in line for line in lines)
    assert records["collect_prior"]["counts"]["kept"] >= 3
    store = EpisodeStore.open(Session(config(2), log=lambda s: None).paths.store, read_only=True)
    by_kind = {}
    for e in store.episodes("sim-widowx250-prior"):
        if e.extra["prior_kind"] == "failure" or e.extra.get("ground_truth"):
            by_kind[e.task_id, e.extra["prior_kind"]] = by_kind.get((e.task_id, e.extra["prior_kind"]), 0) + 1
    assert by_kind == {(t, k): n for t in tasks for k, n in (("demo", 2), ("failure", 1))}
    before = len(store.episodes("sim-widowx250-prior"))
    with pytest.raises(RuntimeError, match="already holds prior data .* Start a new --run_dir"):
        Session(config(3), log=lambda s: None).prepare()
    assert len(EpisodeStore.open(store.url, read_only=True).episodes("sim-widowx250-prior")) == before


def test_a_session_picks_its_dashboard_port_only_when_it_serves_one(tmp_path, monkeypatch):
    """Port 0 (any free one): ``evaluate`` and the benches build a Session for its paths and tasks, so
    no port is looked for until the dashboard needs one."""
    import robot_stack.session.runner as runner
    from robot_stack.dashboard.config import DashboardConfig

    picked = []
    monkeypatch.setattr(runner, "free_port", lambda host: picked.append(host) or 43210)
    session = Session(SessionConfig(run_dir=str(tmp_path), dashboard=DashboardConfig(port=0)), log=lambda s: None)
    assert session.forward.id and picked == []
    assert session.port == 43210 and session.port == 43210 and picked == ["127.0.0.1"]  # picked once, then kept


def test_resume_refuses_a_run_dir_that_names_another_run(tmp_path, capsys):
    """``--resume A --run_dir B`` silently continued A before: it is refused before anything is read
    or written."""
    from robot_stack.cli import main

    assert main(["run", "--resume", str(tmp_path / "a"), "--run_dir", str(tmp_path / "b")]) == 2
    assert "name different runs" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    # the same directory, spelt differently, is no conflict: it fails only for want of a session there
    assert main(["run", "--resume", str(tmp_path / "a"), "--run_dir", str(tmp_path / "x" / ".." / "a")]) == 2
    assert "not a session run directory" in capsys.readouterr().err
