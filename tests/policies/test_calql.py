"""Cal-QL learner: one image update end to end, calibration on/off, online mixing, and a learning
test on the point-mass reach pair (offline Cal-QL, BC, and PA-RL on a binned policy, all on the
same noisy-expert + random data)."""

import json
import time

import numpy as np
import pytest
import torch

from policies.bc import BCLearner
from policies.calql import CalQLLearner
from policies.config import EncoderConfig, LearnerConfig, NetworkConfig
from policies.networks import EnsembleLinear
from policies.parl import BinnedPolicy, PARLConfig, PARLLearner, q_network_critic
from policies.replay import ReplayBuffer, ReplayConfig
from policies.trainer import Trainer

from pointmass import success_rate  # noqa: E402  (conftest.py puts this folder on sys.path)


def image_config(**kw):
    net = NetworkConfig(image_keys=("front",), state_dim=3, hidden_dims=(32, 32), encoder=EncoderConfig(image_size=16, channels=8, strides=(2, 1, 1, 1), feature_dim=8))
    return LearnerConfig(network=net, batch_size=8, device="cpu", num_threads=1, **kw)


def image_episode(rng, T=10, success=True, task=0):
    return {
        "image": rng.integers(0, 256, (T, 16, 16, 3), dtype=np.uint8), "state": rng.normal(size=(T, 3)).astype(np.float32),
        "action": rng.uniform(-1, 1, (T, 7)).astype(np.float32), "reward": np.r_[np.zeros(T - 1), float(success)].astype(np.float32),
        "terminal": np.r_[np.zeros(T - 1), success].astype(bool), "truncated": np.r_[np.zeros(T - 1), not success].astype(bool),
        "task": np.full(T, task),
    }


def test_image_update_runs_and_changes_every_network():
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(capacity=500)
    for i in range(6):
        buf.add_episode(image_episode(rng, success=i % 2 == 0, task=i % 2))
    learner = CalQLLearner(image_config())
    learner.config.calql.bc_weight = 0.1  # exercise the optional BC regulariser too
    before = {n: [p.clone() for p in m.parameters()] for n, m in learner.modules.items()}
    stats = Trainer(learner, buf).run(3)
    for key in ("losses/td", "losses/cql", "losses/actor", "losses/bc_mse", "q/data", "calql/clamped_frac", "time/updates_per_s"):
        assert np.isfinite(stats[key]), key
    learner.config.bc_loss = "nll"  # the likelihood form of the regulariser
    assert np.isfinite(Trainer(learner, buf).run(1)["losses/bc_nll"])
    for name, module in learner.modules.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[name], module.parameters())), f"{name} did not change"
    assert learner.step == 4 and learner.samples_seen == 32
    with pytest.raises(ValueError, match="16x16"):
        learner.update({**buf.sample(4, rng), "image": np.zeros((4, 8, 8, 3), np.uint8), "next_image": np.zeros((4, 8, 8, 3), np.uint8)})


def test_bc_regulariser_imitates_only_successes_and_interventions():
    """bc_data='successes': the actor's BC term ignores steps of failed episodes (the policy's own
    failed online attempts, noisy prior failures) but keeps a person's corrections."""
    from policies.batch import TorchBatch

    learner = CalQLLearner(image_config(bc_data="successes"))
    B = 6
    mean, log_std = torch.zeros(B, 7), torch.zeros(B, 7)
    action = torch.full((B, 7), 0.5)

    def term(mc, intervention):
        tb = TorchBatch(image=None, next_image=None, state=None, next_state=None, action=action, reward=torch.zeros(B),
                        done=torch.zeros(B), mc_return=torch.tensor(mc), task=torch.zeros(B, dtype=torch.long),
                        intervention=torch.tensor(intervention))
        return learner._bc_term(mean, log_std, tb).item()

    no = [False] * B
    assert term([0.0] * B, no) == 0.0  # only failures: nothing to imitate
    assert term([0.0] * 3 + [0.7] * 3, no) == pytest.approx(7 * 0.25)  # mean over the 3 successful steps
    assert term([0.0] * B, [True] + [False] * 5) == pytest.approx(7 * 0.25)  # a correction counts
    learner.config.bc_data = "all"
    assert term([0.0] * B, no) == pytest.approx(7 * 0.25)


def test_trainer_prefetch_gives_the_same_training():
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(capacity=500)
    for i in range(4):
        buf.add_episode(image_episode(rng, success=i % 2 == 0))
    weights = []
    for prefetch in (0, 2):
        learner = CalQLLearner(image_config())
        torch.manual_seed(1)
        stats = Trainer(learner, buf, seed=3, prefetch=prefetch).run(3)
        assert 0 <= stats["time/sample_fraction"] < 1
        weights.append([p.detach().clone() for p in learner.actor.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights))


def test_calibration_changes_the_conservative_term():
    """Same weights, same batch, same noise: Cal-QL's clamp can only raise the policy Q-values in the
    logsumexp, so its conservative term is >= plain CQL's, and strictly when some Q < MC return."""
    rng = np.random.default_rng(0)
    b = {
        "image": rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8), "next_image": rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8),
        "state": rng.normal(size=(8, 3)).astype(np.float32), "next_state": rng.normal(size=(8, 3)).astype(np.float32),
        "action": rng.uniform(-1, 1, (8, 7)).astype(np.float32), "reward": np.ones(8, np.float32), "done": np.ones(8, np.float32),
        "mc_return": np.full(8, 50.0, np.float32), "task": np.zeros(8, np.int64), "intervention": np.zeros(8, bool),
    }
    cql = {}
    for calibrate in (False, True):
        cfg = image_config()
        cfg.calql.calibrate = calibrate
        learner = CalQLLearner(cfg)
        torch.manual_seed(0)
        learner.generator.manual_seed(0)
        cql[calibrate] = learner.update(b)["losses/cql"]
    assert cql[True] > cql[False] + 1.0  # MC return 50 >> untrained Q ~ 0: the clamp is active


def test_online_replay_mixes_offline_and_online():
    rng = np.random.default_rng(0)
    offline, online = ReplayBuffer(capacity=500), ReplayBuffer(capacity=500)
    offline.add_episode(image_episode(rng))
    online.add_episode(image_episode(rng, success=False))
    mixed = CalQLLearner.online_replay(offline, online)
    assert mixed.counts(256) == {"offline": 128, "online": 128}
    assert CalQLLearner.online_replay(offline, online, offline_ratio=0.25).counts(8) == {"offline": 2, "online": 6}
    learner = CalQLLearner(image_config())
    assert np.isfinite(Trainer(learner, mixed).run(2)["losses/critic"])


@pytest.mark.slow
def test_offline_calql_and_bc_learn_point_mass_reach(pointmass_data, artifacts_dir):
    buf = ReplayBuffer(capacity=50_000, gamma=0.9)
    for ep in pointmass_data:
        buf.add_episode(ep)
    rng = np.random.default_rng(7)
    chance = success_rate(lambda o: rng.uniform(-1, 1, o["state"].shape).astype(np.float32))

    t0 = time.perf_counter()
    cfg = LearnerConfig.state(2, 2, **{
        "network.hidden_dims": (64, 64), "batch_size": 128, "num_threads": 1, "calql.cql_n_actions": 4,
        "calql.cql_alpha": 1.0, "calql.gamma": 0.9, "calql.tau": 0.01, "calql.init_alpha": 0.05, "calql.actor_lr": 1e-3,
    })
    calql = CalQLLearner(cfg)
    stats = Trainer(calql, buf, seed=0).run(2000)
    agent = calql.agent()
    calql_success = success_rate(lambda o: agent.act(o, deterministic=True))
    calql_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    bc = BCLearner(LearnerConfig.state(2, 2, **{"network.hidden_dims": (64, 64), "batch_size": 128, "num_threads": 1, "bc_lr": 1e-3}))
    Trainer(bc, buf, seed=0).run(1000)
    bc_agent = bc.agent()
    bc_success = success_rate(lambda o: bc_agent.act(o, deterministic=True))
    bc_s = time.perf_counter() - t0

    # PA-RL: a discretised-bin (non-Gaussian) policy, BC-trained on the same data, improved with
    # the Cal-QL critic by sample -> re-rank -> action gradient steps -> distillation.
    t0 = time.perf_counter()
    torch.manual_seed(0)
    binned = BinnedPolicy(cfg.network, bins=21)
    opt = torch.optim.Adam(binned.parameters(), lr=1e-3)
    brng = np.random.default_rng(1)
    for _ in range(500):
        b = buf.sample(128, brng)
        loss = binned.distill_loss(None, torch.from_numpy(b["state"]), torch.from_numpy(b["task"]), torch.from_numpy(b["action"]))
        opt.zero_grad()
        loss.backward()
        opt.step()

    def binned_act(o):
        return binned.mode(None, torch.from_numpy(o["state"]), torch.from_numpy(o["task"])).numpy()

    binned_bc_success = success_rate(binned_act)
    parl = PARLLearner(cfg, binned, q_network_critic(calql.q_net), PARLConfig(distill_lr=1e-3))
    parl_stats = Trainer(parl, buf, seed=2).run(300)
    parl_success = success_rate(binned_act)
    parl_s = time.perf_counter() - t0

    report = {"chance": chance, "calql": calql_success, "bc": bc_success, "binned_bc": binned_bc_success, "binned_parl": parl_success,
              "calql_seconds": calql_s, "bc_seconds": bc_s, "parl_seconds": parl_s,
              "calql_q_data": stats["q/data"], "calql_updates_per_s": stats["time/updates_per_s"],
              "parl_q_samples": parl_stats["parl/q_base_samples"], "parl_q_optimised": parl_stats["parl/q_optimised"]}
    (artifacts_dir / "pointmass_success.json").write_text(json.dumps(report, indent=1))
    assert calql_success >= max(0.35, 2.5 * chance), report
    assert bc_success > chance + 0.05, report
    assert parl_success >= binned_bc_success + 0.15 and parl_success >= 2.5 * chance, report


def test_bc_trains_encoder_touches_only_the_encoder():
    """With calql.bc_trains_encoder the BC error reaches the shared encoder and nothing else: after
    one identical update, encoders differ while critic heads and actors are bit-identical."""
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(capacity=500)
    for i in range(4):
        buf.add_episode(image_episode(rng, success=i % 2 == 0, task=i % 2))
    batch = buf.sample(8, np.random.default_rng(1))
    learners = {}
    for flag in (False, True):
        torch.manual_seed(0)
        cfg = image_config()
        cfg.calql.bc_weight, cfg.calql.bc_trains_encoder = 1.0, flag
        learners[flag] = CalQLLearner(cfg)
        stats = learners[flag].update(batch)
    assert np.isfinite(stats["losses/bc_encoder"])
    off, on = learners[False], learners[True]
    enc_same = [torch.equal(a, b) for a, b in zip(off.q_net.encoder.parameters(), on.q_net.encoder.parameters())]
    assert not all(enc_same)
    for name in ("critic",):
        assert all(torch.equal(a, b) for a, b in zip(getattr(off.q_net, name).parameters(), getattr(on.q_net, name).parameters()))
    assert all(torch.equal(a, b) for a, b in zip(off.actor.parameters(), on.actor.parameters()))


def test_frozen_image_encoder_stays_fixed_while_the_rest_learns():
    """calql.freeze_image_encoder (Cal-QL on a BC-trained encoder): updates leave the conv encoder
    and its projection bit-identical and still train the critic, actor and task embedding."""
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(capacity=500)
    for i in range(4):
        buf.add_episode(image_episode(rng, success=i % 2 == 0, task=i % 2))
    cfg = image_config()
    cfg.calql.freeze_image_encoder = True
    learner = CalQLLearner(cfg)
    image0 = [p.detach().clone() for p in learner.q_net.encoder.image.parameters()]
    critic0 = [p.detach().clone() for p in learner.q_net.critic.parameters()]
    actor0 = [p.detach().clone() for p in learner.actor.parameters()]
    task0 = learner.q_net.encoder.task.weight.detach().clone()
    for k in range(3):
        learner.update(buf.sample(8, np.random.default_rng(k)))
    assert all(torch.equal(a, b) for a, b in zip(image0, learner.q_net.encoder.image.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(critic0, learner.q_net.critic.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(actor0, learner.actor.parameters()))
    assert not torch.equal(task0, learner.q_net.encoder.task.weight)
    with pytest.raises(ValueError, match="nothing to train"):
        cfg = image_config()
        cfg.calql.freeze_image_encoder = True
        cfg.calql.bc_trains_encoder = True
        cfg.calql.__post_init__()


def test_fixed_temperature_stays_while_the_auto_tuned_one_moves():
    """alpha_lr 0 keeps alpha at init_alpha; otherwise alpha moves towards the target entropy."""
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(capacity=500)
    for i in range(4):
        buf.add_episode(image_episode(rng, success=i % 2 == 0))
    for alpha_lr in (0.0, 1e-2):
        learner = CalQLLearner(image_config(calql={"init_alpha": 0.05, "alpha_lr": alpha_lr}))
        actor_before = [p.clone() for p in learner.actor.parameters()]
        stats = Trainer(learner, buf).run(3)
        assert np.isfinite(stats["losses/alpha"])
        assert any(not torch.equal(a, b) for a, b in zip(actor_before, learner.actor.parameters()))
        alpha = float(learner.temperature().detach())
        if alpha_lr == 0.0:
            assert alpha == pytest.approx(0.05, rel=1e-6)
        else:
            assert abs(alpha - 0.05) > 1e-4, alpha
    with pytest.raises(ValueError, match="alpha_lr"):
        LearnerConfig.cpu(**{"calql.alpha_lr": -1e-4})


def test_floor_targets_keeps_td_targets_at_or_above_zero():
    """With floor_targets a target critic pushed far below 0 (as CQL's penalty can) gives targets >= 0."""
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(capacity=500)
    for i in range(4):
        buf.add_episode(image_episode(rng, success=i % 2 == 0))
    batch = buf.sample(16, np.random.default_rng(1))
    targets = {}
    for floor in (False, True):
        learner = CalQLLearner(image_config(calql={"floor_targets": floor}))
        with torch.no_grad():
            for p in learner.target_critic.parameters():
                p.zero_()
            last_biases = [m.bias for m in learner.target_critic.modules() if isinstance(m, EnsembleLinear)]
            last_biases[-1].fill_(-5.0)  # every next-state Q = -5
        targets[floor] = float(learner.update(batch)["q/target"])
    assert targets[False] < -1.0  # r + 0.99 * -5 on the non-terminal steps
    assert targets[True] >= 0.0


def test_critic_report_sorts_transitions_and_shows_cqls_push_down_on_random_actions():
    """critic_report (what `robot-stack critic-report` prints): its kinds partition the batch, the
    success step's target is its reward (so its TD and MC errors agree), and CQL's conservative
    term opens a gap between Q at the data's actions and at random ones that plain TD does not."""
    from policies.config import CalQLConfig

    rng = np.random.default_rng(0)
    buf = ReplayBuffer(capacity=500)
    for i in range(8):
        buf.add_episode(image_episode(rng, success=i % 2 == 0, task=i % 2))
    reports = {}
    for cql_alpha in (0.0, 5.0):
        learner = CalQLLearner(image_config(calql=CalQLConfig(cql_alpha=cql_alpha)))
        stats = Trainer(learner, buf, batch_size=32, seed=0).run(300)
        assert np.isfinite(stats["q/random"])
        batch = learner.to_torch(buf.sample(256, np.random.default_rng(1)))
        reports[cql_alpha] = r = learner.critic_report(batch)
        done, mc = batch.done.numpy() > 0, batch.mc_return.numpy()
        assert r["n/terminal"] == done.sum() and r["n/failed"] == (mc <= 0).sum()
        assert r["n/terminal"] + r["n/to_success"] + r["n/failed"] == 256
        assert r["td_mse/terminal"] == pytest.approx(r["q_mc_mse/terminal"], rel=1e-4)
        assert r["mc/terminal"] == pytest.approx(1.0) and r["mc/failed"] == 0.0
        assert all(np.isfinite(v) for v in r.values())
        assert r == learner.critic_report(batch)  # seeded: the same batch gives the same report
        assert r["q/sample_spread"] > 1e-3
        learner.actor.log_std_min = learner.actor.log_std_max = -12.0  # a near-deterministic actor: alike samples
        assert learner.critic_report(batch)["q/sample_spread"] < 1e-3 * r["q/sample_spread"]
    gaps = {a: r["gap/data_minus_random"] for a, r in reports.items()}
    assert gaps[5.0] > gaps[0.0] + 0.5, gaps


def test_action_chunks_learn_point_mass_reach_run_open_loop(pointmass_data):
    """action_chunk 3: the replay serves 3-step transitions (gamma^k bootstrap), the critic scores
    whole chunks, and Cal-QL and BC policies whose chunks run open loop still learn the reach."""
    cfg_replay = ReplayConfig(capacity=50_000, gamma=0.9, action_chunk=3)
    buf = ReplayBuffer(cfg_replay)
    for ep in pointmass_data:
        buf.add_episode(ep)
    rng = np.random.default_rng(7)
    chance = success_rate(lambda o: rng.uniform(-1, 1, o["state"].shape).astype(np.float32))
    common = {"network.hidden_dims": (64, 64), "network.action_chunk": 3, "batch_size": 128, "num_threads": 1}
    calql = CalQLLearner(LearnerConfig.state(2, 2, **common, **{
        "calql.cql_n_actions": 4, "calql.cql_alpha": 1.0, "calql.gamma": 0.9, "calql.tau": 0.01, "calql.init_alpha": 0.05,
        "calql.actor_lr": 1e-3}))
    assert calql.target_entropy == -6.0  # minus the width of a chunk
    stats = Trainer(calql, buf, seed=0).run(1500)
    agent = calql.agent()
    assert agent.act({"state": np.zeros(2), "task": 0}, deterministic=True).shape == (3, 2)
    calql_success = success_rate(lambda o: agent.act(o, deterministic=True))
    bc = BCLearner(LearnerConfig.state(2, 2, **common, bc_lr=1e-3))
    Trainer(bc, buf, seed=0).run(1000)
    bc_success = success_rate(lambda o: bc.agent().act(o, deterministic=True))
    assert calql_success >= max(0.35, 2.5 * chance), (calql_success, chance, stats)
    assert bc_success > chance + 0.05, (bc_success, chance)
    with pytest.raises(ValueError, match="sample the replay with action_chunk 3"):
        calql.update(_one_step_batch(pointmass_data))


def _one_step_batch(episodes):
    buf = ReplayBuffer(capacity=1000, gamma=0.9)
    buf.add_episode(episodes[0])
    return buf.sample(8, np.random.default_rng(0))


def test_chunk_bootstrap_is_discounted_by_the_steps_it_spans():
    """The TD target of a k-step transition bootstraps with gamma^k: with a critic that says 1
    everywhere, a target of r + gamma^k (non-terminal)."""
    from policies.batch import TorchBatch

    learner = CalQLLearner(LearnerConfig.state(2, 2, **{"network.action_chunk": 2, "num_threads": 1, "calql.gamma": 0.5}))
    tb = TorchBatch(image=None, next_image=None, state=torch.zeros(3, 2), next_state=torch.zeros(3, 2),
                    action=torch.zeros(3, 4), reward=torch.tensor([0.0, 0.25, 0.0]), done=torch.zeros(3),
                    mc_return=torch.zeros(3), task=torch.zeros(3, dtype=torch.int64), steps=torch.tensor([2.0, 1.0, 2.0]))
    discount = learner._discount(tb)
    torch.testing.assert_close(discount, torch.tensor([0.25, 0.5, 0.25]))
    from policies.losses import td_target

    torch.testing.assert_close(td_target(tb.reward, tb.done, torch.ones(2, 3), discount), torch.tensor([0.25, 0.75, 0.25]))
    assert learner._discount(TorchBatch(**{**tb.__dict__, "steps": None})) == 0.5


def test_the_bc_term_is_per_control_step_whatever_the_chunk():
    """A chunk of h copies of a step's action costs the same BC term as that step alone, so
    ``bc_weight`` weighs imitation against Q the same for any ``action_chunk``."""
    from policies.batch import TorchBatch

    torch.manual_seed(0)
    mean, log_std, action = torch.randn(6, 2), torch.randn(6, 2) * 0.1, torch.rand(6, 2) * 1.6 - 0.8
    tb = TorchBatch(image=None, next_image=None, state=torch.zeros(6, 2), next_state=torch.zeros(6, 2), action=action,
                    reward=torch.zeros(6), done=torch.zeros(6), mc_return=torch.ones(6), task=torch.zeros(6, dtype=torch.int64))
    for loss in ("mse", "nll"):
        one = CalQLLearner(LearnerConfig.state(2, 2, num_threads=1, bc_loss=loss))
        three = CalQLLearner(LearnerConfig.state(2, 2, num_threads=1, bc_loss=loss, **{"network.action_chunk": 3}))
        chunked = TorchBatch(**{**tb.__dict__, "action": action.repeat(1, 3)})
        expected = one._bc_term(mean, log_std, tb)
        torch.testing.assert_close(three._bc_term(mean.repeat(1, 3), log_std.repeat(1, 3), chunked), expected)
