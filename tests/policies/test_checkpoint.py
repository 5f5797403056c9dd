"""Checkpoints: bit-exact round trip (weights + optimiser), atomic versions, corrupt/truncated
files rejected with a clear error, pickles refused."""

import json
import pickle

import numpy as np
import pytest
import torch

from policies.bc import BCLearner
from policies.calql import CalQLLearner
from policies.checkpoint import CheckpointError, CheckpointManager, load_agent, load_checkpoint
from policies.config import EncoderConfig, LearnerConfig, NetworkConfig


def small_config(**kw) -> LearnerConfig:
    net = NetworkConfig(image_keys=("front",), state_dim=3, hidden_dims=(32, 32), encoder=EncoderConfig(image_size=16, channels=8, strides=(2, 1, 1, 1), feature_dim=8))
    return LearnerConfig(network=net, batch_size=8, device="cpu", num_threads=1, **kw)


def batch(rng, B=8):
    return {
        "image": rng.integers(0, 256, (B, 16, 16, 3), dtype=np.uint8), "next_image": rng.integers(0, 256, (B, 16, 16, 3), dtype=np.uint8),
        "state": rng.normal(size=(B, 3)).astype(np.float32), "next_state": rng.normal(size=(B, 3)).astype(np.float32),
        "action": rng.uniform(-1, 1, (B, 7)).astype(np.float32), "reward": rng.integers(0, 2, B).astype(np.float32),
        "done": rng.integers(0, 2, B).astype(np.float32), "mc_return": rng.uniform(0, 1, B).astype(np.float32),
        "task": rng.integers(0, 2, B), "intervention": np.zeros(B, bool),
    }


@pytest.fixture
def trained(tmp_path):
    rng = np.random.default_rng(0)
    learner = CalQLLearner(small_config())
    for _ in range(3):
        learner.update(batch(rng))
    mgr = CheckpointManager(tmp_path / "ckpt", keep=3)
    path = mgr.save(learner, metrics={"success_rate": 0.25}, data_seen={"episodes": 7})
    return learner, mgr, path


def test_round_trip_is_bit_exact_and_resume_continues_identically(trained):
    learner, mgr, path = trained
    assert path.name == "policy-000001" and (mgr.root / "latest").read_text().strip() == "policy-000001"
    assert {p.name for p in path.iterdir()} == {"model.safetensors", "optim.safetensors", "meta.json"}
    meta = json.loads((path / "meta.json").read_text())
    assert meta["kind"] == "calql" and meta["metrics"] == {"success_rate": 0.25} and meta["data_seen"] == {"episodes": 7}
    assert meta["step"] == 3 and meta["config"]["network"]["state_dim"] == 3

    fresh = CalQLLearner(small_config(seed=99))
    mgr.restore(fresh)
    for name, module in learner.modules.items():
        for (k, a), (k2, b) in zip(module.state_dict().items(), fresh.modules[name].state_dict().items()):
            assert k == k2 and torch.equal(a, b), f"{name}.{k}"
    for name, opt in learner.optimizers.items():
        sa, sb = opt.state_dict(), fresh.optimizers[name].state_dict()
        for ga, gb in zip(sa["param_groups"], sb["param_groups"]):
            assert ga["lr"] == gb["lr"] and tuple(ga["betas"]) == tuple(gb["betas"]) and ga["params"] == gb["params"]
        for pid in sa["state"]:
            for k, v in sa["state"][pid].items():
                assert torch.equal(v, sb["state"][pid][k]), f"{name} state {pid}.{k}"
    # Resuming gives the very same next update as continuing (same RNG state for both).
    rng = np.random.default_rng(5)
    b = batch(rng)
    torch.manual_seed(0)
    learner.generator.manual_seed(1)
    s1 = learner.update(b)
    torch.manual_seed(0)
    fresh.generator.manual_seed(1)
    s2 = fresh.update(b)
    assert s1 == s2
    assert all(torch.equal(a, b) for a, b in zip(learner.actor.parameters(), fresh.actor.parameters()))


def test_versions_latest_and_pruning(trained):
    learner, mgr, _ = trained
    for _ in range(4):
        mgr.save(learner)
    assert mgr.versions() == [3, 4, 5] and mgr.latest_version() == 5
    assert load_checkpoint(mgr.root).version == 5  # a root follows `latest`
    with pytest.raises(CheckpointError, match="already exists"):
        mgr.save(learner, version=5)
    assert not [p for p in mgr.root.iterdir() if p.name.startswith(".tmp")]


def test_agent_loads_from_checkpoint_and_acts_like_the_learner(trained):
    learner, mgr, _ = trained
    agent = load_agent(mgr.root)
    assert agent.version == 1
    rng = np.random.default_rng(1)
    obs = {"image": rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), "state": np.zeros(3, np.float32), "task": 1}
    a = agent.act(obs, deterministic=True)
    assert a.shape == (7,) and a.dtype == np.float32 and np.abs(a).max() <= 1
    np.testing.assert_array_equal(a, learner.agent().act(obs, deterministic=True))
    with pytest.raises(ValueError, match="task id"):
        agent.act({**obs, "task": 5})
    with pytest.raises(ValueError, match="16x16"):
        agent.act({**obs, "image": np.zeros((8, 8, 3), np.uint8)})


def test_agent_reloads_only_newer_versions(trained):
    learner, mgr, _ = trained
    agent = load_agent(mgr.root)
    assert not agent.reload_if_newer(mgr.root)  # already at version 1
    learner.update(batch(np.random.default_rng(3)))
    mgr.save(learner)
    assert agent.reload_if_newer(mgr.root) and agent.version == 2
    assert all(torch.equal(a, b) for a, b in zip(agent.actor.parameters(), learner.actor.parameters()))
    # A corrupt newer version raises and the agent keeps its weights and version.
    learner.update(batch(np.random.default_rng(4)))
    path = mgr.save(learner)
    (path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError):
        agent.reload_if_newer(mgr.root)
    assert agent.version == 2


def test_bc_checkpoint_and_kind_mismatch(tmp_path):
    bc = BCLearner(small_config())
    bc.update(batch(np.random.default_rng(0)))
    mgr = CheckpointManager(tmp_path)
    mgr.save(bc)
    assert load_agent(tmp_path).act({"image": np.zeros((16, 16, 3), np.uint8), "state": np.zeros(3), "task": 0}).shape == (7,)
    with pytest.raises(CheckpointError, match="'bc' checkpoint"):
        mgr.restore(CalQLLearner(small_config()))


def test_adopt_copies_a_verified_checkpoint_in_as_this_roots_version(trained, tmp_path, monkeypatch):
    import policies.checkpoint as checkpoint

    learner, mgr, _ = trained
    for _ in range(2):
        mgr.save(learner, extra={"task_ids": ["a", "b"]})
    run = CheckpointManager(tmp_path / "run")
    path = run.adopt(mgr.root)  # a root: its latest, v3
    assert path.name == "policy-000001" and run.latest_version() == 1
    meta = json.loads((path / "meta.json").read_text())
    assert meta["version"] == 1 and meta["extra"]["task_ids"] == ["a", "b"]
    assert meta["extra"]["adopted_from"] == {"path": str(mgr.path(3).resolve()), "version": 3}
    assert load_agent(run.root).version == 1  # what an actor stamps on its steps is this run's number
    restored = CalQLLearner(small_config(seed=7))
    run.restore(restored)  # weights and optimiser state came along bit-exact
    assert all(torch.equal(a, b) for a, b in zip(restored.actor.parameters(), learner.actor.parameters()))
    assert run.adopt(mgr.path(2)).name == "policy-000002"
    with pytest.raises(CheckpointError, match="already exists"):
        run.adopt(mgr.path(2), version=2)

    # A damaged source is refused before anything is written; a crash mid-copy leaves no version.
    fresh = CheckpointManager(tmp_path / "fresh")
    data = bytearray((mgr.path(3) / "optim.safetensors").read_bytes())
    (mgr.path(2) / "optim.safetensors").write_bytes(bytes(data[:-5]))
    with pytest.raises(CheckpointError, match="truncated"):
        fresh.adopt(mgr.path(2))
    assert fresh.versions() == [] and fresh.latest_version() is None
    real_write = checkpoint._write_file
    def crash_on_meta(path, data):
        if path.name == "meta.json":
            raise OSError("disk full")
        real_write(path, data)
    monkeypatch.setattr(checkpoint, "_write_file", crash_on_meta)
    with pytest.raises(OSError, match="disk full"):
        fresh.adopt(mgr.root)
    assert fresh.versions() == [] and not list(fresh.root.iterdir())
    monkeypatch.undo()
    assert fresh.adopt(mgr.root).name == "policy-000001"  # and a retry succeeds


@pytest.mark.parametrize("damage", ["flip", "truncate", "meta"])
def test_corrupt_or_truncated_checkpoint_is_refused(trained, damage):
    _, mgr, path = trained
    target = path / ("meta.json" if damage == "meta" else "model.safetensors")
    data = bytearray(target.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) // 3]
    else:
        data = data[:-10]
    target.write_bytes(bytes(data))
    expected = {"flip": "corrupt: sha256", "truncate": "truncated", "meta": "meta.json is corrupt"}[damage]
    with pytest.raises(CheckpointError, match=expected):
        mgr.load()
    with pytest.raises(CheckpointError):
        load_agent(path)


def test_pickles_are_refused(tmp_path):
    pt = tmp_path / "policy.pt"
    torch.save({"w": torch.zeros(2)}, pt)
    with pytest.raises(CheckpointError, match="never unpickled"):
        load_checkpoint(pt)
    raw = tmp_path / "weights"
    raw.write_bytes(pickle.dumps({"w": 1}))  # no suffix: caught by the pickle magic byte
    with pytest.raises(CheckpointError, match="pickle"):
        load_agent(raw)
    folder = tmp_path / "old"
    folder.mkdir()
    torch.save({"w": torch.zeros(2)}, folder / "model.pth")
    with pytest.raises(CheckpointError, match="pickle-based weights"):
        load_checkpoint(folder)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing")


def test_language_task_embeddings_travel_with_the_checkpoint(tmp_path):
    cfg = small_config()
    cfg.network.language_dim = 6
    lang = np.random.default_rng(0).normal(size=(2, 6)).astype(np.float32)
    learner = CalQLLearner(cfg, task_embeddings=lang)
    learner.update(batch(np.random.default_rng(0)))
    CheckpointManager(tmp_path).save(learner)
    agent = load_agent(tmp_path)
    assert torch.equal(agent.encoder.language, torch.from_numpy(lang))
    obs = {"image": np.zeros((16, 16, 3), np.uint8), "state": np.zeros(3, np.float32), "task": 1}
    np.testing.assert_array_equal(agent.act(obs, deterministic=True), learner.agent().act(obs, deterministic=True))
