"""Networks: image encoder (RoboFuME-style conv or a local pretrained backbone), observation
encoder with proprio + task conditioning, tanh-Gaussian actor, and a vectorised critic ensemble.
"""

from __future__ import annotations

import math
import pathlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from policies.config import EncoderConfig, NetworkConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SpatialSoftmax(nn.Module):
    """Per-channel softmax over the image plane -> expected (x, y) in [-1, 1] (Levine et al. 2016).

    Input (B, C, H, W); output (B, 2C). A learned temperature sharpens the attention as training goes.
    """

    def __init__(self, height: int, width: int):
        super().__init__()
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
        self.register_buffer("grid", torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1), persistent=False)  # (HW, 2)
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, c = h.shape[:2]
        attn = torch.softmax(h.reshape(b, c, -1).float() / self.log_temperature.exp(), dim=-1)  # (B, C, HW)
        return (attn @ self.grid).reshape(b, 2 * c).to(h.dtype)


class ConvEncoder(nn.Module):
    """RoboFuME/DrQ-style encoder: N x [3x3 conv, 32 ch, LayerNorm over (C,H,W), ReLU], then
    flatten (or spatial-softmax keypoints) -> Linear -> LayerNorm -> tanh.

    Input (B, C_in, H, W) float in [0, 1] with H = W = ``cfg.image_size``; output (B, feature_dim).
    """

    def __init__(self, cfg: EncoderConfig, in_channels: int):
        super().__init__()
        layers: list[nn.Module] = []
        c, side = in_channels, cfg.image_size
        for stride in cfg.strides:
            layers += [nn.Conv2d(c, cfg.channels, 3, stride=stride), nn.GroupNorm(1, cfg.channels), nn.ReLU(inplace=True)]
            c = cfg.channels
            side = (side - 3) // stride + 1
            if side < 1:
                raise ValueError(f"encoder.strides {cfg.strides} shrink a {cfg.image_size}px image to nothing")
        if cfg.pooling == "spatial_softmax":
            # the keypoint softmax needs raw scores: drop the last ReLU, which would zero most of the map
            layers.pop()
            self.pool: nn.Module = SpatialSoftmax(side, side)
            self.flat_dim = 2 * c
        else:
            self.pool = nn.Flatten(1)
            self.flat_dim = c * side * side
        self.convs = nn.Sequential(*layers)
        self.project = nn.Sequential(nn.Linear(self.flat_dim, cfg.feature_dim), nn.LayerNorm(cfg.feature_dim), nn.Tanh())
        self.output_dim = cfg.feature_dim

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        # (x - 0.5) centres inputs for the first conv, as DrQ does.
        h = self.convs(pixels - 0.5)
        return self.project(self.pool(h))


class PretrainedEncoder(nn.Module):
    """A transformers vision backbone loaded from a LOCAL folder (never downloaded) + projection.

    Any ``AutoModel`` whose output has ``pooler_output`` or ``last_hidden_state`` works (ResNet,
    ViT, ConvNeXt, DINOv2...). Input (B, 3*n, H, W) in [0, 1]: each camera goes through the
    backbone separately (ImageNet normalisation) and the pooled features are concatenated.
    """

    def __init__(self, cfg: EncoderConfig, in_channels: int):
        super().__init__()
        path = pathlib.Path(cfg.pretrained_path)
        if not path.is_dir():
            raise FileNotFoundError(f"encoder.pretrained_path {str(path)!r} is not a local model folder")
        if in_channels % 3:
            raise ValueError(f"pretrained encoder needs RGB cameras stacked on channels, got {in_channels} channels")
        from transformers import AutoModel  # imported lazily: transformers is slow to import

        # use_safetensors: refuse pickle (.bin) weights.
        self.backbone = AutoModel.from_pretrained(str(path), local_files_only=True, use_safetensors=True)
        self.n_cams = in_channels // 3
        if cfg.freeze_backbone:
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        self.freeze = cfg.freeze_backbone
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        with torch.no_grad():
            dim = self._pool(torch.zeros(1, 3, cfg.image_size, cfg.image_size)).shape[-1]
        self.project = nn.Sequential(nn.Linear(dim * self.n_cams, cfg.feature_dim), nn.LayerNorm(cfg.feature_dim), nn.Tanh())
        self.output_dim = cfg.feature_dim

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze:
            self.backbone.eval()
        return self

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        out = self.backbone(pixel_values=(x - self.mean) / self.std)
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:
            pooled = out.last_hidden_state
            pooled = pooled.mean(dim=1) if pooled.dim() == 3 else pooled.mean(dim=(2, 3))
        return pooled.flatten(1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        cams = pixels.split(3, dim=1)
        return self.project(torch.cat([self._pool(c) for c in cams], dim=-1))


class ObservationEncoder(nn.Module):
    """Images (optional) + proprio (optional) + task -> one feature vector (B, output_dim).

    Task conditioning: with ``language_dim > 0`` the task ids index a buffer of precomputed
    instruction embeddings (``task_embeddings``, (num_tasks, language_dim), e.g. from a text
    encoder) that a Linear projects; otherwise a learned ``nn.Embedding(num_tasks, dim)``. Both
    live in the state dict, so a checkpoint carries its task conditioning.
    """

    def __init__(self, cfg: NetworkConfig, task_embeddings: np.ndarray | torch.Tensor | None = None):
        super().__init__()
        self.cfg = cfg
        dim = 0
        self.image: nn.Module | None = None
        if cfg.image_keys:
            cls = ConvEncoder if cfg.encoder.kind == "conv" else PretrainedEncoder
            self.image = cls(cfg.encoder, 3 * len(cfg.image_keys))
            dim += self.image.output_dim
        dim += cfg.state_dim
        self.task_dim = cfg.task_embedding_dim
        if cfg.language_dim > 0:
            if task_embeddings is None:
                task_embeddings = torch.zeros(cfg.num_tasks, cfg.language_dim)
            emb = torch.as_tensor(np.asarray(task_embeddings), dtype=torch.float32)
            if emb.shape != (cfg.num_tasks, cfg.language_dim):
                raise ValueError(
                    f"task_embeddings must be (num_tasks={cfg.num_tasks}, language_dim={cfg.language_dim}), got {tuple(emb.shape)}"
                )
            self.register_buffer("language", emb)
            self.task = nn.Linear(cfg.language_dim, cfg.task_embedding_dim) if cfg.task_embedding_dim else None
        else:
            if task_embeddings is not None:
                raise ValueError("task_embeddings were given but network.language_dim is 0")
            self.task = nn.Embedding(cfg.num_tasks, cfg.task_embedding_dim) if cfg.task_embedding_dim else None
        dim += cfg.task_embedding_dim
        self.output_dim = dim

    def forward(self, pixels: torch.Tensor | None, state: torch.Tensor | None, task: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.image is not None:
            parts.append(self.image(pixels))
        if self.cfg.state_dim:
            parts.append(state)
        if self.task is not None:
            if self.cfg.language_dim > 0:
                parts.append(self.task(self.language[task]))
            else:
                parts.append(self.task(task))
        return torch.cat([p.float() for p in parts], dim=-1) if len(parts) > 1 else parts[0].float()


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int, layer_norm: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(in_dim, h)] + ([nn.LayerNorm(h)] if layer_norm else []) + [nn.ReLU(inplace=True)]
        in_dim = h
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


def _atanh_clipped(a: torch.Tensor) -> torch.Tensor:
    a = a.clamp(-1 + 1e-5, 1 - 1e-5)
    return 0.5 * (torch.log1p(a) - torch.log1p(-a))


class TanhGaussianActor(nn.Module):
    """pi(a|s) = tanh(N(mu(s), sigma(s))): features (B, F) -> actions in (-1, 1)^A."""

    def __init__(self, in_dim: int, action_dim: int, hidden: tuple[int, ...], log_std_min: float = -5.0, log_std_max: float = 2.0):
        super().__init__()
        self.net = mlp(in_dim, hidden, 2 * action_dim)
        self.action_dim = action_dim
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, features: torch.Tensor, std_on_detached: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean (B, A), log_std (B, A)) of the pre-tanh Gaussian.

        ``std_on_detached``: log_std comes from the last layer applied to the DETACHED hidden
        features, so a loss on log_std trains only that layer and never the shared trunk/encoder.
        """
        if std_on_detached:
            hidden = self.net[:-1](features)
            mean = self.net[-1](hidden).float().chunk(2, dim=-1)[0]
            log_std = self.net[-1](hidden.detach()).float().chunk(2, dim=-1)[1]
        else:
            mean, log_std = self.net(features).float().chunk(2, dim=-1)
        # Smooth squashing of log_std into [min, max] (SAC-style, keeps gradients everywhere).
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(log_std) + 1)
        return mean, log_std

    @staticmethod
    def _log_prob_pre_tanh(u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
        gauss = -0.5 * ((u - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
        # log |d tanh(u)/du| = log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), numerically stable.
        jac = 2 * (math.log(2.0) - u - F.softplus(-2 * u))
        return (gauss - jac).sum(-1)

    @classmethod
    def sample_from(cls, mean: torch.Tensor, log_std: torch.Tensor, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised sample from given (mean, log_std) (B, A): actions (B, A) or (B, n, A)
        in (-1, 1) and their log-probs (B,) or (B, n)."""
        if n is not None:
            mean = mean.unsqueeze(1).expand(-1, n, -1)
            log_std = log_std.unsqueeze(1).expand(-1, n, -1)
        u = mean + log_std.exp() * torch.randn_like(mean)
        return torch.tanh(u), cls._log_prob_pre_tanh(u, mean, log_std)

    @classmethod
    def log_prob_from(cls, mean: torch.Tensor, log_std: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log pi(action|s) (B,) of dataset actions in [-1, 1] (clipped just inside the open box)."""
        return cls._log_prob_pre_tanh(_atanh_clipped(action.float()), mean, log_std)

    def sample(self, features: torch.Tensor, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised sample: actions (B, A) or (B, n, A) and log-probs (B,) or (B, n)."""
        mean, log_std = self(features)
        return self.sample_from(mean, log_std, n)

    def log_prob(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log pi(action|s) (B,) for dataset actions in [-1, 1]."""
        mean, log_std = self(features)
        return self.log_prob_from(mean, log_std, action)

    def mode(self, features: torch.Tensor) -> torch.Tensor:
        """Deterministic action tanh(mean) (B, A)."""
        return torch.tanh(self(features)[0])


class EnsembleLinear(nn.Module):
    """E independent Linear layers applied in one batched matmul: (E, N, in) -> (E, N, out)."""

    def __init__(self, ensemble: int, in_dim: int, out_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(ensemble, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(ensemble, 1, out_dim))
        bound = 1 / math.sqrt(in_dim)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class CriticEnsemble(nn.Module):
    """E Q-functions Q_i(s, a) evaluated for K actions per state in one pass.

    forward(features (B, F), actions (B, K, A)) -> (E, B, K). The first layer's state part is
    computed once per state and broadcast over the K actions (CQL evaluates ~30 actions/state).
    """

    def __init__(self, in_dim: int, action_dim: int, hidden: tuple[int, ...], ensemble: int = 2, layer_norm: bool = True):
        super().__init__()
        self.ensemble = ensemble
        self.first_state = EnsembleLinear(ensemble, in_dim, hidden[0])
        self.first_action = EnsembleLinear(ensemble, action_dim, hidden[0])
        with torch.no_grad():  # one bias for the first layer
            self.first_action.bias.zero_()
        self.norms = nn.ModuleList([nn.LayerNorm(h) if layer_norm else nn.Identity() for h in hidden])
        self.hidden = nn.ModuleList([EnsembleLinear(ensemble, a, b) for a, b in zip(hidden[:-1], hidden[1:])])
        self.out = EnsembleLinear(ensemble, hidden[-1], 1)

    def forward(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        B, K, A = actions.shape
        E = self.ensemble
        hs = self.first_state(features.unsqueeze(0).expand(E, -1, -1))  # (E, B, H)
        ha = self.first_action(actions.reshape(1, B * K, A).expand(E, -1, -1).to(hs.dtype))  # (E, B*K, H)
        h = (ha.view(E, B, K, -1) + hs.unsqueeze(2)).view(E, B * K, -1)
        h = F.relu(self.norms[0](h))
        for layer, norm in zip(self.hidden, self.norms[1:]):
            h = F.relu(norm(layer(h)))
        return self.out(h).view(E, B, K).float()


class QNetwork(nn.Module):
    """Observation encoder + critic ensemble: the module the critic loss trains (and DDP wraps)."""

    def __init__(self, cfg: NetworkConfig, task_embeddings=None):
        super().__init__()
        self.encoder = ObservationEncoder(cfg, task_embeddings)
        self.critic = CriticEnsemble(self.encoder.output_dim, cfg.chunk_dim, cfg.hidden_dims, cfg.num_critics, cfg.critic_layer_norm)

    def forward(self, pixels, state, task, actions: torch.Tensor, more_actions=None):
        """Q-values of ``actions`` (B, K, A) and, when ``more_actions`` is given, of the actions
        it returns: ``more_actions(features.detach()) -> (actions (B, K2, A), aux)``, e.g. policy
        samples that need the features of this very pass (one encoder pass, one DDP forward).

        Returns (Q (E, B, K[+K2]), features (B, F), aux or None).
        """
        feats = self.encoder(pixels, state, task)
        aux = None
        if more_actions is not None:
            extra, aux = more_actions(feats.detach())
            actions = torch.cat([actions, extra.to(actions.dtype)], dim=1)
        return self.critic(feats, actions), feats, aux


class GaussianPolicy(nn.Module):
    """Encoder + tanh-Gaussian actor: a self-contained policy (BC trains it; the Agent runs it)."""

    def __init__(self, cfg: NetworkConfig, task_embeddings=None, encoder: ObservationEncoder | None = None):
        super().__init__()
        self.encoder = encoder if encoder is not None else ObservationEncoder(cfg, task_embeddings)
        self.actor = TanhGaussianActor(self.encoder.output_dim, cfg.chunk_dim, cfg.hidden_dims, cfg.log_std_min, cfg.log_std_max)

    def forward(self, pixels, state, task, std_on_detached: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        return self.actor(self.encoder(pixels, state, task), std_on_detached)
