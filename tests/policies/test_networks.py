"""Network shapes, task conditioning, the tanh-Gaussian density, the vectorised ensemble, and the
pretrained-backbone option (loaded from a local folder, random init: no downloads)."""

import numpy as np
import pytest
import torch

from policies.config import EncoderConfig, LearnerConfig, NetworkConfig
from policies.networks import ConvEncoder, CriticEnsemble, ObservationEncoder, QNetwork, TanhGaussianActor


def test_conv_encoder_layout_and_shapes():
    enc = ConvEncoder(EncoderConfig(image_size=64, strides=(2, 2, 1, 1)), in_channels=6)
    convs = [m for m in enc.convs if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4 and all(c.out_channels == 32 and c.kernel_size == (3, 3) for c in convs)
    assert [c.stride[0] for c in convs] == [2, 2, 1, 1]
    assert enc.flat_dim == 32 * 11 * 11  # 64 -> 31 -> 15 -> 13 -> 11
    out = enc(torch.rand(5, 6, 64, 64))
    assert out.shape == (5, 50) and out.abs().max() <= 1


def test_spatial_softmax_encoder_reports_where_a_bright_spot_is():
    enc = ConvEncoder(EncoderConfig(image_size=32, strides=(2, 1, 1, 1), pooling="spatial_softmax"), in_channels=3)
    assert enc.flat_dim == 2 * 32 and isinstance(enc.convs[-1], torch.nn.GroupNorm)  # raw scores, no final ReLU
    pool = enc.pool
    # one hot spot per channel: the expected coordinates are where it is, in [-1, 1] (x right, y down)
    h = torch.full((2, 1, 9, 9), -20.0)
    h[0, 0, 0, 8] = 20.0  # top right
    h[1, 0, 4, 4] = 20.0  # centre
    xy = pool(h)
    assert torch.allclose(xy, torch.tensor([[1.0, -1.0], [0.0, 0.0]]), atol=1e-3)
    out = enc(torch.rand(4, 3, 32, 32))
    assert out.shape == (4, 50) and out.abs().max() <= 1
    out.sum().backward()
    assert pool.log_temperature.grad is not None and enc.convs[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="pooling"):
        EncoderConfig(pooling="max")


def test_full_size_preset_matches_robofume_encoder():
    cfg = LearnerConfig.gpu()
    assert cfg.network.encoder.image_size == 128 and cfg.network.encoder.channels == 32 and len(cfg.network.encoder.strides) == 4
    assert cfg.batch_size == 256 and cfg.network.num_critics >= 2
    cpu = LearnerConfig.preset("cpu")
    assert cpu.network.encoder.image_size == 64 and cpu.device == "cpu" and cpu.compile == "off"
    with pytest.raises(ValueError, match="preset"):
        LearnerConfig.preset("tpu")
    with pytest.raises(ValueError, match="strides"):
        LearnerConfig.cpu(**{"network.encoder.strides": (3, 1)})


def test_task_conditioning_learned_and_language():
    cfg = NetworkConfig(image_keys=(), state_dim=3, action_dim=2, num_tasks=2, task_embedding_dim=4)
    enc = ObservationEncoder(cfg)
    f = enc(None, torch.zeros(2, 3), torch.tensor([0, 1]))
    assert f.shape == (2, 7) and not torch.allclose(f[0], f[1])  # same state, different task
    lang = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
    lcfg = NetworkConfig(image_keys=(), state_dim=3, action_dim=2, language_dim=8, task_embedding_dim=4)
    lenc = ObservationEncoder(lcfg, task_embeddings=lang)
    assert torch.equal(lenc.state_dict()["language"], torch.from_numpy(lang))  # travels with checkpoints
    g = lenc(None, torch.zeros(2, 3), torch.tensor([1, 1]))
    expected = lenc.task(torch.from_numpy(lang)[1])
    assert torch.allclose(g[0, 3:], expected)
    with pytest.raises(ValueError, match="task_embeddings"):
        ObservationEncoder(lcfg, task_embeddings=np.zeros((3, 8)))


def test_tanh_gaussian_log_prob_matches_change_of_variables():
    torch.manual_seed(0)
    actor = TanhGaussianActor(4, 3, (16,))
    feats = torch.randn(6, 4)
    a, logp = actor.sample(feats)
    assert a.abs().max() < 1
    mean, log_std = actor(feats)
    base = torch.distributions.Normal(mean, log_std.exp())
    u = torch.atanh(a)
    ref = (base.log_prob(u) - torch.log(1 - a**2)).sum(-1)
    assert torch.allclose(logp, ref, atol=1e-3)
    assert torch.allclose(actor.log_prob(feats, a), ref, atol=1e-3)
    a_n, logp_n = actor.sample(feats, n=5)
    assert a_n.shape == (6, 5, 3) and logp_n.shape == (6, 5)


def test_critic_ensemble_equals_independent_mlps():
    torch.manual_seed(0)
    crit = CriticEnsemble(5, 2, (8, 8), ensemble=3, layer_norm=False)
    feats, acts = torch.randn(4, 5), torch.randn(4, 6, 2)
    q = crit(feats, acts)
    assert q.shape == (3, 4, 6)
    i = 1  # recompute member i by hand: concat(state, action) through its own weights
    w1 = torch.cat([crit.first_state.weight[i], crit.first_action.weight[i]], 0)
    x = torch.cat([feats.unsqueeze(1).expand(-1, 6, -1), acts], -1)
    h = torch.relu(x @ w1 + crit.first_state.bias[i] + crit.first_action.bias[i])
    h = torch.relu(h @ crit.hidden[0].weight[i] + crit.hidden[0].bias[i])
    ref = (h @ crit.out.weight[i] + crit.out.bias[i]).squeeze(-1)
    assert torch.allclose(q[i], ref, atol=1e-5)
    assert not torch.allclose(q[0], q[1])  # members are independent


def test_multi_camera_qnetwork():
    cfg = NetworkConfig(image_keys=("front", "wrist"), state_dim=4, encoder=EncoderConfig(image_size=32, strides=(2, 1, 1, 1)))
    q, feats, _ = QNetwork(cfg)(torch.rand(3, 6, 32, 32), torch.zeros(3, 4), torch.tensor([0, 1, 0]), torch.zeros(3, 2, 7))
    assert q.shape == (2, 3, 2) and feats.shape == (3, 50 + 4 + 16)


def test_pretrained_backbone_from_local_folder(tmp_path):
    transformers = pytest.importorskip("transformers")
    # A tiny random-init ResNet saved locally in safetensors: exactly what a lab's local copy looks like.
    rcfg = transformers.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    transformers.ResNetModel(rcfg).save_pretrained(tmp_path, safe_serialization=True)
    assert (tmp_path / "model.safetensors").exists()
    cfg = NetworkConfig(
        image_keys=("front",), state_dim=2,
        encoder=EncoderConfig(kind="pretrained", image_size=32, pretrained_path=str(tmp_path), freeze_backbone=True),
    )
    enc = ObservationEncoder(cfg)
    before = [p.clone() for p in enc.image.backbone.parameters()]
    trainable = [n for n, p in enc.named_parameters() if p.requires_grad]
    assert trainable and not any(n.startswith("image.backbone") for n in trainable)
    out = enc(torch.rand(2, 3, 32, 32), torch.zeros(2, 2), torch.tensor([0, 1]))
    out.sum().backward()
    assert out.shape == (2, 50 + 2 + 16)
    assert all(torch.equal(a, b) for a, b in zip(before, enc.image.backbone.parameters()))
    with pytest.raises(FileNotFoundError, match="pretrained_path"):
        ObservationEncoder(NetworkConfig(encoder=EncoderConfig(kind="pretrained", pretrained_path=str(tmp_path / "nope"))))
