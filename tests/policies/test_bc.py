"""BC objectives: in "mse" mode the likelihood of the std never reaches the shared trunk or encoder
(full likelihood there let the policy widen its std instead of learning saturated first moves)."""

import numpy as np
import pytest
import torch

from policies.bc import BCLearner
from policies.config import CalQLConfig, EncoderConfig, LearnerConfig, NetworkConfig
from policies.networks import GaussianPolicy


def _config(**kw):
    net = NetworkConfig(image_keys=("front",), state_dim=3, hidden_dims=(32, 32),
                        encoder=EncoderConfig(image_size=16, channels=8, strides=(2, 1, 1, 1), feature_dim=8))
    return LearnerConfig(network=net, batch_size=8, device="cpu", num_threads=1, **kw)


def _inputs(seed=0, b=6):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, 16, 16, generator=g), torch.randn(b, 3, generator=g), torch.zeros(b, dtype=torch.long)


def test_std_on_detached_trains_only_the_last_layer_from_a_std_loss():
    torch.manual_seed(0)
    policy = GaussianPolicy(_config().network)
    pix, state, task = _inputs()
    mean_a, std_a = policy(pix, state, task)
    mean_b, std_b = policy(pix, state, task, std_on_detached=True)
    assert torch.allclose(mean_a, mean_b) and torch.allclose(std_a, std_b)  # same values, different gradient paths
    std_b.sum().backward()
    last = policy.actor.net[-1]
    assert last.weight.grad.abs().sum() > 0
    trunk = [p for p in policy.encoder.parameters()] + [p for m in policy.actor.net[:-1] for p in m.parameters()]
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in trunk)
    policy.zero_grad()
    policy(pix, state, task)[1].sum().backward()  # default: the std loss does reach the encoder
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.encoder.parameters())


@pytest.mark.parametrize("loss", ["mse", "nll"])
def test_bc_update_fits_saturated_actions(loss):
    """A fixed batch of bang-bang (+-1) actions that depend on the image. 'mse' fits them; full
    likelihood ('nll') stays finite but, on this very batch, widens the std to its maximum instead
    of moving the mean (the targets sit at atanh ~ +-6): why 'mse' is the default."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    bright = images[..., 0].reshape(8, -1).mean(1) > np.median(images[..., 0].reshape(8, -1).mean(1))
    action = np.where(bright[:, None], 1.0, -1.0).astype(np.float32).repeat(7, 1)
    batch = {"image": {"front": images}, "state": rng.normal(size=(8, 3)).astype(np.float32), "action": action,
             "task": np.zeros(8, np.int64), "reward": np.zeros(8, np.float32), "done": np.zeros(8, np.float32),
             "next_state": rng.normal(size=(8, 3)).astype(np.float32), "next_image": {"front": images},
             "mc_return": np.zeros(8, np.float32)}
    bc = BCLearner(_config(bc_loss=loss, bc_lr=3e-3, calql=CalQLConfig(augment_pad=0)))
    first = bc.update(batch)["bc/mode_mse"]
    for _ in range(150):
        stats = bc.update(batch)
    assert np.isfinite(stats["losses/bc_nll"]) and np.isfinite(stats["bc/mode_mse"])
    if loss == "mse":
        assert stats["bc/mode_mse"] < 0.5 * first, (first, stats)


def test_bc_loss_is_validated():
    with pytest.raises(ValueError, match="bc_loss"):
        LearnerConfig(bc_loss="huber")
    with pytest.raises(ValueError, match="bc_data"):
        LearnerConfig(bc_data="demos")


@pytest.mark.parametrize("bc_data", ["all", "successes"])
def test_filtered_bc_imitates_only_steps_that_led_to_success(bc_data):
    """The same observations twice: once from an episode that went on to succeed (action +1), once
    from a failed one (action -1). Plain BC averages them to ~0; filtered BC follows the success."""
    rng = np.random.default_rng(0)
    images = np.repeat(rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8), 2, axis=0)
    state = np.repeat(rng.normal(size=(4, 3)).astype(np.float32), 2, axis=0)
    succeeded = np.tile([True, False], 4)
    batch = {"image": {"front": images}, "next_image": {"front": images}, "state": state, "next_state": state,
             "action": np.where(succeeded[:, None], 0.9, -0.9).astype(np.float32).repeat(7, 1),
             "task": np.zeros(8, np.int64), "reward": np.zeros(8, np.float32), "done": np.zeros(8, np.float32),
             "mc_return": np.where(succeeded, 0.8, 0.0).astype(np.float32), "intervention": np.zeros(8, bool)}
    bc = BCLearner(_config(bc_lr=3e-3, bc_data=bc_data, calql=CalQLConfig(augment_pad=0)))
    for _ in range(150):
        stats = bc.update(batch)
    assert stats["bc/imitated_frac"] == (0.5 if bc_data == "successes" else 1.0)
    with torch.no_grad():
        pix = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
        mode = torch.tanh(bc.policy(pix, torch.from_numpy(state), torch.zeros(8, dtype=torch.long))[0]).mean().item()
    if bc_data == "successes":
        assert mode > 0.6, mode
    else:
        assert abs(mode) < 0.3, mode
