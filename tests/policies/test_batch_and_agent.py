"""DrQ random shift, batch conversion, bf16 autocast path, and the Agent's output safety."""

import numpy as np
import pytest
import torch

from policies.agent import Agent
from policies.batch import random_shift, to_pixels, to_torch_batch
from policies.calql import CalQLLearner
from policies.config import EncoderConfig, LearnerConfig, NetworkConfig


def test_random_shift_is_an_edge_replicated_translation():
    img = torch.arange(6 * 6, dtype=torch.uint8).view(1, 6, 6, 1).repeat(64, 1, 1, 3)
    g = torch.Generator().manual_seed(0)
    out = random_shift(img, 2, g)
    assert out.shape == img.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(img[0].permute(2, 0, 1).float().unsqueeze(0), (2, 2, 2, 2), mode="replicate")[0, 0]
    shifts = set()
    for b in range(64):
        matches = [(dy, dx) for dy in range(5) for dx in range(5) if torch.equal(padded[dy : dy + 6, dx : dx + 6], out[b, :, :, 0].float())]
        assert matches, f"sample {b} is not a shifted crop"
        shifts.add(matches[0])
    assert len(shifts) > 5  # shifts differ per sample
    assert torch.equal(random_shift(img, 0), img)


def test_to_pixels_channels_last_and_range():
    x = to_pixels(torch.full((2, 4, 4, 6), 255, dtype=torch.uint8))
    assert x.shape == (2, 6, 4, 4) and x.is_contiguous(memory_format=torch.channels_last) and x.max() == 1.0


def test_batch_camera_mismatch_is_named():
    b = {"image": {"front": np.zeros((2, 8, 8, 3), np.uint8)}, "next_image": {"front": np.zeros((2, 8, 8, 3), np.uint8)},
         "action": np.zeros((2, 7)), "reward": np.zeros(2), "done": np.zeros(2), "mc_return": np.zeros(2), "task": np.zeros(2)}
    with pytest.raises(ValueError, match="wrist"):
        to_torch_batch(b, ("front", "wrist"), 0, torch.device("cpu"))


def tiny_config(**kw):
    net = NetworkConfig(image_keys=("front",), state_dim=3, hidden_dims=(16, 16), encoder=EncoderConfig(image_size=16, channels=8, strides=(2, 1, 1, 1), feature_dim=8))
    return LearnerConfig(network=net, batch_size=4, device="cpu", num_threads=1, **kw)


def test_bf16_autocast_update_path():
    """The bf16 autocast path (used on CUDA) runs and gives finite losses (exercised here on CPU)."""
    rng = np.random.default_rng(0)
    learner = CalQLLearner(tiny_config(amp="bf16"))
    assert learner.amp
    b = {"image": rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8), "next_image": rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8),
         "state": np.zeros((4, 3), np.float32), "next_state": np.zeros((4, 3), np.float32), "action": np.zeros((4, 7), np.float32),
         "reward": np.ones(4, np.float32), "done": np.ones(4, np.float32), "mc_return": np.ones(4, np.float32), "task": np.zeros(4, np.int64)}
    stats = learner.update(b)
    assert all(np.isfinite(v) for v in stats.values())


def test_agent_never_returns_unsafe_actions():
    agent = Agent.build(tiny_config())
    obs = {"image": {"front": np.zeros((16, 16, 3), np.uint8)}, "state": np.zeros(3, np.float32), "task": 0}
    a = agent.act(obs)
    assert a.shape == (7,) and np.isfinite(a).all() and np.abs(a).max() <= 1
    batch = agent.act({"image": np.zeros((5, 16, 16, 3), np.uint8), "state": np.zeros((5, 3)), "task": np.arange(5) % 2}, deterministic=True)
    assert batch.shape == (5, 7)
    with pytest.raises(ValueError, match="NaN"):
        agent.act({**obs, "state": np.array([np.nan, 0, 0])})
    with torch.no_grad():
        agent.actor.net[-1].bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite"):
        agent.act(obs, deterministic=True)


class PreferTarget(torch.nn.Module):
    """A stand-in critic ensemble (E=2) whose Q is highest at ``target``: (B, F), (B, K, A) -> (2, B, K)."""

    def __init__(self, target):
        super().__init__()
        self.target = torch.as_tensor(target, dtype=torch.float32)

    def forward(self, features, actions):
        q = -((actions - self.target) ** 2).sum(-1)
        return torch.stack([q, q + 1.0])


def test_best_of_picks_the_action_the_critic_prefers_and_needs_a_critic():
    torch.manual_seed(0)
    target = np.full(7, 0.5, np.float32)
    agent = Agent.build(tiny_config())
    with torch.no_grad():
        agent.actor.net[-1].bias[7:].fill_(0.0)  # log-std 0: samples spread widely around the mode
    obs = {"image": np.zeros((16, 16, 16, 3), np.uint8), "state": np.zeros((16, 3)), "task": np.arange(16) % 2}
    mode = agent.act(obs, deterministic=True)
    agent.best_of = 32
    with pytest.raises(ValueError, match="needs a critic"):
        agent.act(obs, deterministic=True)
    agent.critic = PreferTarget(target)
    best = agent.act(obs, deterministic=True)
    dist = lambda a: ((a - target) ** 2).sum(-1)  # noqa: E731
    assert np.all(dist(best) <= dist(mode) + 1e-6) and dist(best).mean() < 0.8 * dist(mode).mean()
    assert np.abs(best).max() <= 1 and not np.allclose(agent.act(obs), best)  # sampling is not affected
    learner = CalQLLearner(tiny_config())
    assert learner.agent().critic is learner.q_net.critic  # a learner's agent carries its critic
    # one observation's candidates, scored: row 0 is what act() returns, Q is the critic's
    one = {"image": obs["image"][0], "state": obs["state"][0], "task": 1}
    actions, q = agent.scored_candidates(one, 5)
    assert actions.shape == (6, 7) and q.shape == (6,) and np.abs(actions).max() <= 1
    agent.best_of = 0
    np.testing.assert_allclose(actions[0], agent.act(one, deterministic=True), atol=1e-6)
    np.testing.assert_allclose(q, -((actions - target) ** 2).sum(-1), atol=1e-5)  # min over the two heads
    assert len({tuple(a) for a in actions}) == 6
    with pytest.raises(ValueError, match="without a batch axis"):
        agent.scored_candidates(obs, 5)


def test_a_chunked_agent_returns_chunks_and_scores_them_whole():
    """action_chunk h: act gives (h, A) per observation, (B, h, A) for a batch; the critic scores a
    candidate chunk as one action of width h * A."""
    cfg = tiny_config()
    cfg.network.action_chunk = 4
    learner = CalQLLearner(cfg)
    agent = learner.agent()
    one = {"image": np.zeros((16, 16, 3), np.uint8), "state": np.zeros(3), "task": 1}
    batch = {"image": np.zeros((5, 16, 16, 3), np.uint8), "state": np.zeros((5, 3)), "task": np.arange(5) % 2}
    assert agent.act(one).shape == (4, 7) and agent.act(batch, deterministic=True).shape == (5, 4, 7)
    actions, q = agent.scored_candidates(one, 3)
    assert actions.shape == (4, 4, 7) and q.shape == (4,)
    np.testing.assert_allclose(actions[0], agent.act(one, deterministic=True), atol=1e-6)
    with torch.no_grad():
        feats = agent.encoder(to_pixels(torch.zeros(1, 16, 16, 3, dtype=torch.uint8)), torch.zeros(1, 3),
                              torch.ones(1, dtype=torch.int64))
        direct = learner.q_net.critic(feats, torch.from_numpy(actions.reshape(1, 4, 28))).min(dim=0).values[0]
    np.testing.assert_allclose(q, direct.numpy(), atol=1e-5)
    agent.best_of = 8
    assert agent.act(one, deterministic=True).shape == (4, 7)
    with pytest.raises(ValueError, match="network.action_chunk must be >= 1"):
        NetworkConfig(action_chunk=0)
