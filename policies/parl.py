"""PA-RL-style policy improvement (Sobol Mark et al. 2024) for a base policy of any class.

For each state: sample N actions from the base policy, keep the top-k by Q (min over the critic
ensemble), take a few gradient-ascent steps on those actions w.r.t. Q (staying inside [-1, 1]),
pick the best, and distil it back into the base policy with the policy's OWN loss. The base
policy only has to implement ``BasePolicy``: a diffusion policy, an autoregressive/binned
policy or a Gaussian one all fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from policies.batch import TorchBatch
from policies.config import LearnerConfig, NetworkConfig
from policies.learner import Learner, make_adam
from policies.networks import ObservationEncoder, mlp

# critic(pixels, state, task, actions (B, K, A)) -> Q (E, B, K)
CriticFn = Callable[[Any, Any, torch.Tensor, torch.Tensor], torch.Tensor]


class BasePolicy(Protocol):
    def sample_actions(self, pixels, state, task, n: int) -> torch.Tensor:
        """(B, n, A) actions in [-1, 1], no gradient needed."""

    def distill_loss(self, pixels, state, task, target: torch.Tensor) -> torch.Tensor:
        """Scalar loss that moves the policy towards ``target`` actions (B, A)."""


class BinnedPolicy(nn.Module):
    """A non-Gaussian base policy: each action dimension is a categorical over ``bins`` equal
    bins of [-1, 1] (as in RT-style discretised policies). Sampling draws a bin per dimension
    and a uniform point inside it; ``mode`` is the centre of the most likely bin."""

    def __init__(self, cfg: NetworkConfig, bins: int = 21, task_embeddings=None):
        super().__init__()
        if bins < 2:
            raise ValueError(f"bins must be >= 2, got {bins!r}")
        self.encoder = ObservationEncoder(cfg, task_embeddings)
        self.bins, self.action_dim = bins, cfg.chunk_dim
        self.head = mlp(self.encoder.output_dim, cfg.hidden_dims, cfg.chunk_dim * bins)
        self.register_buffer("centres", torch.linspace(-1 + 1 / bins, 1 - 1 / bins, bins), persistent=False)

    def logits(self, pixels, state, task) -> torch.Tensor:
        """(B, A, bins)."""
        return self.head(self.encoder(pixels, state, task)).view(-1, self.action_dim, self.bins).float()

    def to_bins(self, action: torch.Tensor) -> torch.Tensor:
        return ((action.clamp(-1, 1) + 1) / 2 * self.bins).long().clamp_(0, self.bins - 1)

    @torch.no_grad()
    def sample_actions(self, pixels, state, task, n: int) -> torch.Tensor:
        logits = self.logits(pixels, state, task)  # (B, A, bins)
        B = logits.shape[0]
        idx = torch.distributions.Categorical(logits=logits.unsqueeze(1).expand(B, n, -1, -1)).sample()  # (B, n, A)
        jitter = (torch.rand(idx.shape, device=idx.device) - 0.5) * (2.0 / self.bins)
        return (self.centres[idx] + jitter).clamp(-1, 1)

    def distill_loss(self, pixels, state, task, target: torch.Tensor) -> torch.Tensor:
        logits = self.logits(pixels, state, task)
        return F.cross_entropy(logits.reshape(-1, self.bins), self.to_bins(target).reshape(-1))

    @torch.no_grad()
    def mode(self, pixels, state, task) -> torch.Tensor:
        return self.centres[self.logits(pixels, state, task).argmax(-1)]


@dataclass
class PARLConfig:
    """Action optimisation and distillation settings."""

    num_samples: int = 16  # actions sampled from the base policy per state
    top_k: int = 4  # best sampled actions (by Q) that get gradient steps
    grad_steps: int = 5  # gradient-ascent steps on each kept action
    step_size: float = 0.05  # action-space step size of each gradient step (actions live in [-1, 1])
    distill_lr: float = 1e-3  # learning rate of the base policy's distillation
    distill_steps: int = 1  # base-policy gradient steps per update on the optimised actions

    def __post_init__(self) -> None:
        if self.num_samples < 1 or not 1 <= self.top_k <= self.num_samples:
            raise ValueError(f"need num_samples >= 1 and 1 <= top_k <= num_samples, got {self.num_samples}, {self.top_k}")
        if self.grad_steps < 0 or self.step_size < 0 or self.distill_steps < 1 or self.distill_lr <= 0:
            raise ValueError("parl.grad_steps/step_size must be >= 0, distill_steps >= 1, distill_lr > 0")


def optimise_actions(critic: CriticFn, base: BasePolicy, pixels, state, task, cfg: PARLConfig) -> tuple[torch.Tensor, dict]:
    """PA-RL's action optimisation: (B, A) improved actions and stats (Q before/after)."""
    with torch.no_grad():
        cand = base.sample_actions(pixels, state, task, cfg.num_samples)  # (B, N, A)
        q = critic(pixels, state, task, cand).min(dim=0).values  # (B, N)
        top = q.topk(cfg.top_k, dim=-1).indices
        acts = cand.gather(1, top.unsqueeze(-1).expand(-1, -1, cand.shape[-1])).clone()  # (B, k, A)
    q_base = q.mean()
    for _ in range(cfg.grad_steps):
        acts.requires_grad_(True)
        with torch.enable_grad():
            q_k = critic(pixels, state, task, acts).min(dim=0).values.sum()
            (grad,) = torch.autograd.grad(q_k, acts)
        acts = (acts.detach() + cfg.step_size * grad.sign()).clamp(-1, 1)  # sign step: scale-free in Q
    with torch.no_grad():
        q_final = critic(pixels, state, task, acts).min(dim=0).values  # (B, k)
        best = q_final.argmax(-1)
        out = acts[torch.arange(acts.shape[0], device=acts.device), best]
    return out, {"parl/q_base_samples": q_base, "parl/q_optimised": q_final.max(-1).values.mean()}


class PARLLearner(Learner):
    """Improves ``base`` (module ``base``) by distilling Q-optimised actions of ``critic``.

    ``critic`` is e.g. ``CalQLLearner.q_net`` (it is not trained here).
    """

    kind = "parl"

    def __init__(self, config: LearnerConfig, base: nn.Module, critic: CriticFn, parl: PARLConfig | None = None, *, distributed=None):
        super().__init__(config, distributed=distributed)
        self.parl = parl or PARLConfig()
        self.base = base.to(self.device)
        self.critic = critic
        self.modules = {"base": self.base}
        self._broadcast_params()
        self.optimizers = {"base": make_adam(self.base.parameters(), self.parl.distill_lr)}

    def _update(self, tb: TorchBatch) -> dict[str, Any]:
        pix, _ = self._pixels(tb, 0, with_next=False)
        target, stats = optimise_actions(self.critic, self.base, pix, tb.state, tb.task, self.parl)
        for _ in range(self.parl.distill_steps):
            loss = self.base.distill_loss(pix, tb.state, tb.task, target)
            opt = self.optimizers["base"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            self._allreduce_grads(self.base.parameters())
            opt.step()
        stats["losses/distill"] = loss.detach()
        return stats


def q_network_critic(q_net) -> CriticFn:
    """Adapt a ``QNetwork`` (e.g. ``CalQLLearner.q_net``) to the ``critic(...) -> (E, B, K)`` form."""

    def critic(pixels, state, task, actions):
        return q_net(pixels, state, task, actions)[0]

    return critic
