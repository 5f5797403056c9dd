import json

import numpy as np
import pytest

from robot_stack.learner.builder import PolicySpec
from robot_stack.learner.pretrain import pretrain
from robot_stack.learner.service import LearnerService, LearnerServiceConfig
from robot_stack.session.adapters import CheckpointWatcher


def add_online_episode(store, steps=12, intervention_from=None):
    from robot_stack.store import EpisodeMeta

    w = store.writer("robot0", {"arm": "test"}, {"front": (32, 32)}, 14)
    rec = w.begin_episode(EpisodeMeta(task_id="put_cube_in_bowl", instruction="put the cube in the bowl"))
    rng = np.random.default_rng(0)
    for t in range(steps):
        rec.add_step(images={"front": rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)}, state=np.zeros(14, np.float32),
                     action=np.zeros(7, np.float32), intervention=intervention_from is not None and t >= intervention_from,
                     truncated=t == steps - 1)
    eid = rec.commit(outcome="failure")
    w.close()
    return eid


def test_pretrain_writes_a_loadable_version_with_eval_metrics(prior_store, spec, tmp_path):
    calls = []
    summary = pretrain(prior_store, tmp_path / "ckpt", spec, 6, eval_every=3,
                       evaluate=lambda policy: calls.append(policy.version) or {"success_rate": 0.25}, progress=False)
    assert summary["version"] == 1 and summary["updates"] == 6 and len(calls) == 2
    meta = json.loads((tmp_path / "ckpt" / "policy-000001" / "meta.json").read_text())
    assert meta["metrics"]["eval/success_rate"] == 0.25
    policy = CheckpointWatcher(tmp_path / "ckpt", spec.task_ids).load_latest()
    obs = {"front": np.zeros((32, 32, 3), np.uint8)}
    action = policy.act(obs, np.zeros(summary["state_dim"], np.float32), "take_cube_out_of_bowl", True)
    assert action.shape == (7,) and np.all(np.abs(action) <= 1)


def test_pretrain_evaluates_on_multiples_of_eval_every_and_at_the_end(prior_store, spec, tmp_path):
    summary = pretrain(prior_store, tmp_path / "ckpt", spec, 7, eval_every=3,
                       evaluate=lambda policy: {"success_rate": 0.0}, progress=False)
    assert [e["updates"] for e in summary["evals"]] == [3, 6, 7] and summary["updates"] == 7


def test_pretrain_refuses_a_store_without_the_tasks(prior_store, tmp_path):
    with pytest.raises(ValueError, match="no episode of tasks"):
        pretrain(prior_store, tmp_path / "c", PolicySpec(task_ids=("open_drawer",), image_size=32), 2, progress=False)


def test_calql_starts_from_a_bc_policy_and_refuses_one_that_does_not_fit(prior_store, spec, tmp_path):
    import dataclasses

    import torch

    from policies.checkpoint import CheckpointError, load_agent
    from robot_stack.learner.builder import build_learner, learner_config, state_dim_of
    from robot_stack.learner.pretrain import init_policy_from

    pretrain(prior_store, tmp_path / "bc", dataclasses.replace(spec, kind="bc"), 3, progress=False)
    bc = load_agent(tmp_path / "bc")
    config = learner_config(spec, state_dim_of(prior_store, spec.task_ids))
    learner = build_learner(spec, config)
    before = {k: v.clone() for k, v in learner.q_net.critic.state_dict().items()}
    assert not torch.equal(learner.actor.net[0].weight, bc.actor.net[0].weight)  # fresh init differs
    assert init_policy_from(learner, tmp_path / "bc", spec.task_ids) == 1
    for mine, theirs in ((learner.q_net.encoder, bc.encoder), (learner.actor, bc.actor)):
        for (name, a), b in zip(mine.state_dict().items(), theirs.state_dict().values()):
            assert torch.equal(a, b), name
    assert all(torch.equal(v, learner.q_net.critic.state_dict()[k]) for k, v in before.items())  # critic untouched

    summary = pretrain(prior_store, tmp_path / "cq", dataclasses.replace(spec, init_from=str(tmp_path / "bc")), 2, progress=False)
    assert summary["version"] == 1

    wide = dataclasses.replace(spec, image_size=48)
    with pytest.raises(ValueError, match="does not fit this learner"):
        init_policy_from(build_learner(wide, learner_config(wide, config.network.state_dim)), tmp_path / "bc")
    with pytest.raises(CheckpointError, match="trained with task ids"):  # "put in" would start from "take out"
        init_policy_from(learner, tmp_path / "bc", tuple(reversed(spec.task_ids)))
    (tmp_path / "bc" / "policy-000001" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError):
        init_policy_from(learner, tmp_path / "bc")


def test_service_resumes_respects_utd_and_publishes_versions(prior_store, spec, tmp_path):
    ckpt = tmp_path / "ckpt"
    pretrain(prior_store, ckpt, spec, 2, progress=False)
    cfg = LearnerServiceConfig(store=str(prior_store.url), checkpoints=str(ckpt), utd_ratio=0.5, publish_every=4,
                               chunk_updates=2, policy=spec)
    service = LearnerService(cfg, store=prior_store)
    assert service.version == 1 and service.learner.step == 2  # resumed pre-training, optimiser included
    assert service.objective_changes == []  # same spec: same loss as pre-training
    assert not service.step() and service.allowed_updates() == 0  # no online data yet: nothing to learn from
    add_online_episode(prior_store, steps=12, intervention_from=8)
    service.loader.load_new()
    assert service.allowed_updates() == 6  # 0.5 updates per transition of 12
    while service.step():
        pass
    assert service.updates == 6 and service.version >= 2
    m = service.snapshot()
    # 12 steps recorded; the truncated last one has no next observation, so 11 are sampleable, and
    # the 4 intervention steps (3 sampleable) also feed the intervention buffer (HIL-SERL).
    assert m["data/steps_online"] == 12 and m["data/online"] == 11 and m["data/intervention"] == 3
    assert m["policy_version"] == service.version
    watcher = CheckpointWatcher(ckpt, spec.task_ids)
    assert watcher.load_latest().version == service.version
    assert watcher.load(1).version == 1  # an earlier version, e.g. for a learning curve
    published = json.loads((ckpt / f"policy-{service.version:06d}" / "meta.json").read_text())
    assert published["extra"]["task_ids"] == list(spec.task_ids)


def test_checkpoints_record_their_task_ids_and_a_watcher_refuses_another_order(prior_store, spec, tmp_path):
    from policies.checkpoint import CheckpointError

    pretrain(prior_store, tmp_path / "c", spec, 2, progress=False)
    meta_path = tmp_path / "c" / "policy-000001" / "meta.json"
    meta = json.loads(meta_path.read_text())
    assert meta["extra"]["task_ids"] == list(spec.task_ids)
    swapped = list(reversed(spec.task_ids))  # "put in" would run the policy's "take out"
    with pytest.raises(CheckpointError, match="trained with task ids"):
        CheckpointWatcher(tmp_path / "c", swapped).load(1)
    assert CheckpointWatcher(tmp_path / "c", swapped).load_latest() is None  # the actor keeps its policy
    assert CheckpointWatcher(tmp_path / "c", spec.task_ids).load_latest().version == 1
    del meta["extra"]["task_ids"]  # a checkpoint from before they were recorded still loads
    meta_path.write_text(json.dumps(meta))
    assert CheckpointWatcher(tmp_path / "c", swapped).load(1).version == 1


def test_policy_spec_overrides_reach_the_learner_config():
    from robot_stack.learner.builder import learner_config

    plain = learner_config(PolicySpec(), state_dim=14)
    assert plain.network.encoder.pooling == "flatten" and not plain.calql.bc_trains_encoder
    cfg = learner_config(PolicySpec(encoder_pooling="spatial_softmax", bc_weight=0.5, bc_trains_encoder=True), state_dim=14)
    assert cfg.network.encoder.pooling == "spatial_softmax" and cfg.network.state_dim == 14
    assert cfg.calql.bc_weight == 0.5 and cfg.calql.bc_trains_encoder
    with pytest.raises(ValueError, match="pooling"):
        learner_config(PolicySpec(encoder_pooling="avg"), state_dim=14)


def test_learner_overrides_set_fields_the_policy_spec_does_not_carry(prior_store, spec, tmp_path):
    from robot_stack.learner.builder import learner_config

    assert learner_config(spec, 14).calql.alpha_lr > 0
    fixed = learner_config(spec, 14, {"calql.alpha_lr": 0.0, "calql.q_max": 1.0})
    assert fixed.calql.alpha_lr == 0.0 and fixed.calql.q_max == 1.0 and fixed.calql.bc_weight == learner_config(spec, 14).calql.bc_weight
    with pytest.raises(ValueError, match="unknown learner config field"):
        learner_config(spec, 14, {"calql.alpha_rate": 0.0})
    with pytest.raises(ValueError, match="alpha_lr"):
        learner_config(spec, 14, {"calql.alpha_lr": -1.0})
    # the service takes them as a JSON object (a ROS parameter is a string)
    cfg = LearnerServiceConfig(store=str(prior_store.url), checkpoints=str(tmp_path / "ckpt"), policy=spec,
                               learner_overrides='{"calql.alpha_lr": 0}')
    assert LearnerService(cfg, store=prior_store).learner.config.calql.alpha_lr == 0
    for bad in ("calql.alpha_lr=0", "[1]"):
        with pytest.raises(ValueError, match="learner_overrides must be a JSON object"):
            LearnerServiceConfig(learner_overrides=bad)


def test_service_resumes_weights_when_the_trainable_set_changed(prior_store, spec, tmp_path, caplog):
    """Pre-trained with a frozen image encoder, fine-tuned with it trained: the checkpoint's optimiser state
    cannot fit, so the service restores the weights and starts the optimisers afresh, with a warning."""
    import dataclasses

    import torch

    from policies.checkpoint import CheckpointManager, load_checkpoint

    frozen = dataclasses.replace(spec, freeze_image_encoder=True)
    ckpt = tmp_path / "ckpt"
    pretrain(prior_store, ckpt, frozen, 2, progress=False)
    saved = load_checkpoint(CheckpointManager(ckpt).path(1)).learner_state()["model"]["q_net"]
    cfg = LearnerServiceConfig(store=str(prior_store.url), checkpoints=str(ckpt), policy=frozen,
                               learner_overrides='{"calql.freeze_image_encoder": false}')
    with caplog.at_level("WARNING"):
        service = LearnerService(cfg, store=prior_store)
    assert "optimiser state starts afresh" in caplog.text and "does not fit" in caplog.text
    # going on with another objective than the checkpoint's is named, so a lab notices a missing policy.*
    assert service.objective_changes == ["calql.freeze_image_encoder: True -> False"]
    assert "other loss settings" in caplog.text and "freeze_image_encoder: True -> False" in caplog.text
    assert service.version == 1 and service.learner.step == 2
    image = service.learner.q_net.encoder.image
    assert all(p.requires_grad for p in image.parameters())
    assert all(torch.equal(v, saved[k]) for k, v in service.learner.q_net.state_dict().items())
    before = [p.clone() for p in image.parameters()]
    service.trainer.run(1)  # it trains, encoder included
    assert any(not torch.equal(a, b) for a, b in zip(before, image.parameters()))
    # the same checkpoint with the same trainable set still restores its optimiser state
    same = LearnerService(dataclasses.replace(cfg, learner_overrides=""), store=prior_store)
    assert same.learner.optimizers["critic"].state_dict()["state"]
    assert same.objective_changes == []
    # e.g. a launch file without the pre-training's BC weight
    other = LearnerService(dataclasses.replace(cfg, learner_overrides="", policy=dataclasses.replace(frozen, bc_weight=7.0)),
                           store=prior_store)
    assert other.objective_changes == [f"calql.bc_weight: {same.config.calql.bc_weight!r} -> 7.0"]
    # and its metrics (what the learner node publishes to the dashboard) carry them from the start
    assert other.snapshot()["objective_changes"] == other.objective_changes
    assert "objective_changes" not in same.snapshot()


def test_critic_report_cli_reads_a_calql_checkpoint_and_refuses_a_bc_one(prior_store, spec, tmp_path, capsys):
    import dataclasses

    from robot_stack.cli import main

    pretrain(prior_store, tmp_path / "calql", spec, 2, progress=False)
    args = ["critic-report", "--store", str(prior_store.url), "--checkpoints", str(tmp_path / "calql"), "--samples", "64"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == 1 and out["updates"] == 2 and out["transitions"]["prior"] > 0
    assert out["n/terminal"] + out["n/to_success"] + out["n/failed"] == 64 and out["mc/terminal"] == 1.0
    assert main(args + ["--version", "2"]) == 2 and "does not exist" in capsys.readouterr().err
    rollouts = ["--eval-scene", "widowx250_cube_bowl", "--eval-episodes", "2", "--eval-horizon", "3", "--best-of", "2"]
    assert main(args + rollouts) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["eval/task"] == spec.task_ids[0] and out["eval/episodes"] == 2
    assert {k for k in out if k.startswith("eval/") and k.endswith("_success")} == {"eval/mean_success", "eval/sampled_success", "eval/best_of_2_success"}
    assert all(0 <= out[k] <= 1 for k in out if k.startswith("eval/") and k.endswith("_success"))
    # the branching probe alone: replaying the mean action from a saved state must end as the rollout did
    branches = ["--eval-scene", "widowx250_cube_bowl", "--eval-episodes", "0", "--eval-horizon", "4",
                "--branch-starts", "1", "--branch-every", "2", "--branch-candidates", "3"]
    assert main(args + branches) == 0
    out = json.loads(capsys.readouterr().out)
    assert not any(k.startswith("eval/") and k.endswith("_success") for k in out)
    assert out["branch/states"] == 2 and out["branch/deterministic"] == 1.0
    assert out["branch/all_succeed"] + out["branch/all_fail"] + out["branch/mixed"] == 2
    assert main(args + branches + ["--branch-continuations", "2"]) == 0  # the stochastic policy finishes, twice
    out = json.loads(capsys.readouterr().out)
    assert out["branch/continuations"] == 2 and out["branch/states"] == 2 and out["branch/deterministic"] == 1.0
    assert "branch/excess_var" in out and "branch/q_gap" not in out
    assert main(args + branches[2:]) == 2 and "--branch-starts needs --eval-scene" in capsys.readouterr().err
    assert main(args + ["--eval-scene", "kitchen"]) == 2 and "unknown --eval-scene" in capsys.readouterr().err
    assert main(args[:3]) == 2 and "give --run" in capsys.readouterr().err
    assert main(args + ["--task-ids", "open_drawer"]) == 2 and "trained with task ids" in capsys.readouterr().err
    pretrain(prior_store, tmp_path / "bc", dataclasses.replace(spec, kind="bc"), 2, progress=False)
    assert main([*args[:3], "--checkpoints", str(tmp_path / "bc")]) == 2
    assert "only Cal-QL checkpoints have a critic" in capsys.readouterr().err


def _same_weights(a, b) -> bool:
    import torch

    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_service_with_reinit_every_trains_rounds_from_fresh_weights_and_publishes_only_finished_ones(prior_store, spec, tmp_path):
    import dataclasses

    from robot_stack.learner.builder import build_learner

    bc = dataclasses.replace(spec, kind="bc")
    ckpt = tmp_path / "ckpt"
    pretrain(prior_store, ckpt, bc, 3, progress=False)
    cfg = LearnerServiceConfig(store=str(prior_store.url), checkpoints=str(ckpt), utd_ratio=1.0, publish_every=1,
                               chunk_updates=3, reinit_every=4, max_updates=10, policy=bc)
    service = LearnerService(cfg, store=prior_store)
    fresh = build_learner(bc, service.config)
    # the restored v1 is published already: the first round starts afresh, its update count goes on
    assert service.version == 1 and service.learner.step == 3 and _same_weights(service.learner.policy, fresh.policy)
    add_online_episode(prior_store, steps=12)
    service.run(idle_s=0.01)  # 10 updates: rounds of 4, 4 and 2
    assert service.updates == 10 and service.version == 3  # the round cut short at 2 updates is not published
    assert _same_weights(service.learner.policy, fresh.policy) is False  # trained 2 updates into round 3
    watcher = CheckpointWatcher(ckpt, bc.task_ids)
    v2, v3 = watcher.load(2), watcher.load(3)
    metas = [json.loads((ckpt / f"policy-{v:06d}" / "meta.json").read_text()) for v in (2, 3)]
    assert [m["data_seen"]["updates"] for m in metas] == [7, 11]
    assert not _same_weights(v2.agent.actor, v3.agent.actor)
    # a restart resumes from the last finished round and starts the next one afresh
    again = LearnerService(dataclasses.replace(cfg, max_updates=0), store=prior_store)
    assert again.version == 3 and again.round_updates == 0 and _same_weights(again.learner.policy, fresh.policy)
    with pytest.raises(ValueError, match="reinit_every"):
        LearnerServiceConfig(reinit_every=-1)


def test_a_calql_round_starts_from_init_from(prior_store, spec, tmp_path):
    import dataclasses

    pretrain(prior_store, tmp_path / "bc", dataclasses.replace(spec, kind="bc"), 2, progress=False)
    cq = dataclasses.replace(spec, init_from=str(tmp_path / "bc"))
    pretrain(prior_store, tmp_path / "ckpt", cq, 2, progress=False)
    service = LearnerService(LearnerServiceConfig(store=str(prior_store.url), checkpoints=str(tmp_path / "ckpt"),
                                                  reinit_every=4, policy=cq), store=prior_store)
    bc = CheckpointWatcher(tmp_path / "bc", spec.task_ids).load(1).agent
    assert _same_weights(service.learner.actor, bc.actor) and _same_weights(service.learner.q_net.encoder, bc.encoder)


def test_load_newest_refuses_a_missing_or_corrupt_checkpoint_that_load_latest_skips(prior_store, spec, tmp_path):
    from policies.checkpoint import CheckpointError

    with pytest.raises(FileNotFoundError, match="no policy checkpoint"):
        CheckpointWatcher(tmp_path / "none", spec.task_ids).load_newest()
    pretrain(prior_store, tmp_path / "c", spec, 2, progress=False)
    assert CheckpointWatcher(tmp_path / "c", spec.task_ids).load_newest().version == 1
    weights = tmp_path / "c" / "policy-000001" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])
    assert CheckpointWatcher(tmp_path / "c", spec.task_ids).load_latest() is None  # an actor keeps its policy
    with pytest.raises(CheckpointError):
        CheckpointWatcher(tmp_path / "c", spec.task_ids).load_newest()
