"""Cal-QL (Nakamoto et al. 2023): CQL whose conservative term is calibrated by MC returns.

One update (DrQ-v2-style single encoder, trained by the critic loss only):
  features  f = enc(aug(o)), f' = enc(aug(o')) (no grad)
  target    y = clamp(r + gamma (1 - terminal) min_i Q'_i(f', a'), 0, q_max),  a' ~ pi(f')  [losses.td_target; q_max 0: no cap,
                                                                                  the floor only with floor_targets]
  critic    sum_i (Q_i(f, a) - y)^2 + cql_alpha * CQL_i                           [one pass, K actions]
  CQL_i     = T logsumexp_K([Q_i(f, a_rand) - log U, max(Q_i(f, a_pi), G) - log pi,
                             max(Q_i(f, a'_pi), G) - log pi']/T) - Q_i(f, a)      [losses.conservative_penalty,
                                                                                  losses.calibration_lower_bound]
  actor     alpha log pi(a~|f) - min_i Q_i(f, a~) + bc_weight * BC(f, a_data)  on f.detach()
            (BC: |tanh(mu) - a_data|^2 summed over action dims, or -log pi(a_data|f); config.bc_loss)
  alpha     -log_alpha (log pi + target_entropy)
Offline pre-training and online fine-tuning use the same update; the mix of offline and online
data comes from ``MixedReplay`` (ratio 0.5 by default, ``CalQLLearner.online_replay``).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from policies.agent import Agent
from policies.batch import TorchBatch
from policies.config import LearnerConfig
from policies.learner import Learner, make_adam
from policies.losses import (calibration_lower_bound, conservative_penalty, imitation_weights, td_target,
                             uniform_log_density, weighted_mean)
from policies.networks import QNetwork, TanhGaussianActor
from policies.replay import MixedReplay, ReplayBuffer


class Temperature(torch.nn.Module):
    """The SAC entropy temperature alpha = exp(log_alpha)."""

    def __init__(self, init: float):
        super().__init__()
        self.log_alpha = torch.nn.Parameter(torch.tensor(float(np.log(init))))

    def forward(self) -> torch.Tensor:
        return self.log_alpha.exp()


class CalQLLearner(Learner):
    """Cal-QL / CQL learner with image + proprio + task inputs.

    ``CalQLLearner(config, task_embeddings=None)``; ``update(batch) -> stats``;
    ``agent() -> Agent``; ``state_dict()/load_state_dict()``. Modules (checkpoint prefixes):
    ``q_net`` (encoder + critic ensemble), ``target_critic``, ``actor``, ``temperature``.
    ``config.calql.calibrate=False`` gives plain CQL.
    """

    kind = "calql"

    def __init__(self, config: LearnerConfig, task_embeddings=None, *, distributed: bool | None = None):
        super().__init__(config, distributed=distributed)
        torch.manual_seed(config.seed)
        net, c = config.network, config.calql
        self.q_net = QNetwork(net, task_embeddings).to(self.device)
        if config.channels_last:
            self.q_net = self.q_net.to(memory_format=torch.channels_last)
        if c.freeze_image_encoder and self.q_net.encoder.image is not None:
            # A BC-trained encoder already locates the objects; sparse TD on CPU budgets would
            # mostly move it away from that. Frozen, it also skips the costliest backward pass.
            self.q_net.encoder.image.requires_grad_(False)
        self.target_critic = copy.deepcopy(self.q_net.critic).requires_grad_(False)
        self.actor = TanhGaussianActor(self.q_net.encoder.output_dim, net.chunk_dim, net.hidden_dims, net.log_std_min, net.log_std_max).to(self.device)
        self.temperature = Temperature(c.init_alpha).to(self.device)
        self.target_entropy = c.target_entropy if c.target_entropy != 0.0 else -float(net.chunk_dim)
        self.modules = {"q_net": self.q_net, "target_critic": self.target_critic, "actor": self.actor, "temperature": self.temperature}
        self._broadcast_params()
        self._compile(self.q_net.encoder.image, self.q_net.critic, self.target_critic, self.actor)
        self.q_train = self._wrap(self.q_net)
        self.actor_train = self._wrap(self.actor)
        self.optimizers = {
            "critic": make_adam((p for p in self.q_net.parameters() if p.requires_grad), c.critic_lr),
            "actor": make_adam(self.actor.parameters(), c.actor_lr),
            "temperature": make_adam(self.temperature.parameters(), c.alpha_lr),
        }

    @staticmethod
    def online_replay(offline: ReplayBuffer, online: ReplayBuffer, offline_ratio: float = 0.5) -> MixedReplay:
        """Cal-QL fine-tuning replay: ``offline_ratio`` of each batch from the prior data."""
        if not 0.0 <= offline_ratio <= 1.0:
            raise ValueError(f"offline_ratio must be in [0, 1], got {offline_ratio!r}")
        return MixedReplay({"offline": offline, "online": online}, {"offline": offline_ratio, "online": 1.0 - offline_ratio})

    def _update(self, tb: TorchBatch) -> dict[str, Any]:
        c = self.config.calql
        B, A = tb.action.shape
        N = c.cql_n_actions
        alpha = self.temperature().detach()
        pix, next_pix = self._pixels(tb, c.augment_pad)
        stats: dict[str, Any] = {}

        with self._autocast():
            # ---- critic ----------------------------------------------------------------------
            with torch.no_grad():
                next_feats = self.q_net.encoder(next_pix, tb.next_state, tb.task)
                next_mean, next_log_std = self.actor(next_feats)
                next_a, next_logp = TanhGaussianActor.sample_from(next_mean, next_log_std)
                next_q = self.target_critic(next_feats, next_a.unsqueeze(1)).squeeze(-1)  # (E, B)
                y = td_target(tb.reward, tb.done, next_q, self._discount(tb), next_logp if c.backup_entropy else None, alpha,
                              c.q_max, 0.0 if c.floor_targets else None)
                # CQL actions: uniform, policy at s, policy at s' (evaluated at s, as in CQL).
                rand_a = torch.rand(B, N, A, device=self.device) * 2 - 1
                next_pi_a, next_pi_logp = TanhGaussianActor.sample_from(next_mean, next_log_std, N)

            def policy_actions(feats_detached):
                # Policy samples at s need this pass's features; drawn without grad (critic loss only).
                with torch.no_grad():
                    pi_a, pi_logp = self.actor.sample(feats_detached.float(), N)
                return torch.cat([pi_a, next_pi_a], dim=1), pi_logp

            fixed_a = torch.cat([tb.action.unsqueeze(1), rand_a], dim=1)  # (B, 1 + N, A)
            q_all, feats, pi_logp = self.q_train(pix, tb.state, tb.task, fixed_a, policy_actions)  # (E, B, 1 + 3N)
            q_data = q_all[..., 0]
            q_rand, q_pi, q_next_pi = q_all[..., 1:].split(N, dim=-1)
            if c.calibrate:
                stats["calql/clamped_frac"] = (q_pi < tb.mc_return.unsqueeze(-1)).float().mean().detach()
                q_pi = calibration_lower_bound(q_pi, tb.mc_return)
                q_next_pi = calibration_lower_bound(q_next_pi, tb.mc_return)
            q_ood = torch.cat(
                [q_rand - uniform_log_density(A), q_pi - pi_logp.unsqueeze(0), q_next_pi - next_pi_logp.unsqueeze(0)], dim=-1
            )
            td_loss = ((q_data - y.unsqueeze(0)) ** 2).mean(dim=-1)  # (E,) MSE, as in the CQL/Cal-QL reference code
            cql = conservative_penalty(q_data, q_ood, c.cql_temperature)  # (E,)
            critic_loss = (td_loss + c.cql_alpha * cql).sum()
            if c.bc_weight > 0 and c.bc_trains_encoder:
                # Sparse-reward TD is slow to teach the encoder where things are; the BC error of the
                # actor on these (non-detached) features is a dense signal for it. Only the encoder
                # keeps these gradients: the actor's optimiser clears its own before its step.
                aux_mean, aux_log_std = self.actor(feats.float())
                aux_bc = self._bc_term(aux_mean, aux_log_std, tb)
                critic_loss = critic_loss + c.bc_weight * aux_bc
                stats["losses/bc_encoder"] = aux_bc.detach()

        opt = self.optimizers["critic"]
        opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self._clip(self.q_net.parameters())
        opt.step()

        # ---- actor + temperature (on detached features, critic frozen) -------------------------
        feats_d = feats.detach().float()
        self.q_net.critic.requires_grad_(False)
        try:
            with self._autocast():
                mean, log_std = self.actor_train(feats_d)
                a, logp = TanhGaussianActor.sample_from(mean, log_std)
                q_a = self.q_net.critic(feats_d, a.unsqueeze(1)).squeeze(-1).min(dim=0).values
                actor_loss = (alpha * logp - q_a).mean()
                if c.bc_weight > 0:
                    bc_term = self._bc_term(mean, log_std, tb)
                    actor_loss = actor_loss + c.bc_weight * bc_term
                    stats[f"losses/bc_{self.config.bc_loss}"] = bc_term.detach()
        finally:
            self.q_net.critic.requires_grad_(True)
        opt = self.optimizers["actor"]
        opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self._clip(self.actor.parameters())
        opt.step()

        alpha_loss = -(self.temperature.log_alpha * (logp.detach().float() + self.target_entropy)).mean()
        if c.alpha_lr > 0:  # 0 = a fixed temperature
            opt = self.optimizers["temperature"]
            opt.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self._allreduce_grads(self.temperature.parameters())
            opt.step()

        # ---- target critic (Polyak) -----------------------------------------------------------
        with torch.no_grad():
            online = list(self.q_net.critic.parameters())
            target = list(self.target_critic.parameters())
            torch._foreach_lerp_(target, online, c.tau)

        stats.update({
            "losses/critic": critic_loss.detach(),
            "losses/td": td_loss.mean().detach(),
            "losses/cql": cql.mean().detach(),
            "losses/actor": actor_loss.detach(),
            "losses/alpha": alpha_loss.detach(),
            "alpha": alpha,
            "q/data": q_data.mean().detach(),
            "q/policy": q_pi.mean().detach(),
            "q/random": q_rand.mean().detach(),  # far below q/data: CQL's push-down (see critic_report)
            "q/target": y.mean(),
            "q/mc_return": tb.mc_return.mean(),
            "policy/entropy": -logp.mean().detach(),
        })
        return stats

    @torch.no_grad()
    def critic_report(self, tb: TorchBatch, random_actions: int = 10, seed: int = 0) -> dict[str, float]:
        """What the critic has learned on a batch: Q against MC returns and TD targets, by kind of
        transition, and Q at the data's actions against the actor's and uniform random ones.

        No augmentation; the TD target is the training one (a' ~ pi(s'), the config's floor/cap).
        Kinds, for 0/1 success rewards (a failed episode's return-to-go is 0): ``terminal`` (the
        success step), ``to_success`` (earlier steps of successful episodes), ``failed``. Keys:
        ``q/data|mode|random`` (means), ``gap/data_minus_mode|random``, ``corr/q_mc``,
        ``q/sample_spread`` (per state, the std of Q over ``random_actions`` samples of the actor;
        mean over states), and per kind ``n/K``, ``q/K``, ``mc/K``, ``td_mse/K``, ``q_mc_mse/K``
        (absent kinds are left out). A ``gap/data_minus_random`` far above the return range (CQL's
        push-down) means the actor's Q-gradient mostly says "stay near the data"; ``td_mse`` near
        var(mc) means Q fits nothing; a ``q/sample_spread`` that is a sizeable part of the return
        range, among actions the actor finds alike, is what a pick by Q (and the actor's gradient)
        follows, and unless the critic ranks them, that is noise.
        """
        c = self.config.calql
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):  # seeded here, the caller's random streams untouched
            torch.manual_seed(seed)
            pix, next_pix = self._pixels(tb, 0)
            f = self.q_net.encoder(pix, tb.state, tb.task).float()
            nf = self.q_net.encoder(next_pix, tb.next_state, tb.task).float()
            q_data = self.q_net.critic(f, tb.action.unsqueeze(1)).squeeze(-1).min(dim=0).values  # (B,)
            q_mode = self.q_net.critic(f, self.actor.mode(f).unsqueeze(1)).squeeze(-1).min(dim=0).values
            rand_a = torch.rand(tb.action.shape[0], random_actions, tb.action.shape[1], device=self.device) * 2 - 1
            q_rand = self.q_net.critic(f, rand_a).min(dim=0).values.mean(-1)  # (B,) mean over the random actions
            own_a, _ = self.actor.sample(f, random_actions)  # (B, K, A)
            q_spread = self.q_net.critic(f, own_a).min(dim=0).values.std(dim=-1)  # (B,) over the actor's own samples
            next_a, _ = self.actor.sample(nf)
            next_q = self.target_critic(nf, next_a.unsqueeze(1)).squeeze(-1)
            y = td_target(tb.reward, tb.done, next_q, self._discount(tb), q_max=c.q_max, q_min=0.0 if c.floor_targets else None)
        mc = tb.mc_return.float()
        report = {"q/data": q_data.mean(), "q/mode": q_mode.mean(), "q/random": q_rand.mean(),
                  "gap/data_minus_mode": (q_data - q_mode).mean(), "gap/data_minus_random": (q_data - q_rand).mean(),
                  "q/sample_spread": q_spread.mean()}
        if mc.std() > 0 and q_data.std() > 0:
            report["corr/q_mc"] = torch.corrcoef(torch.stack([q_data, mc]))[0, 1]
        kinds = {"terminal": tb.done > 0, "to_success": (mc > 0) & (tb.done == 0), "failed": mc <= 0}
        for kind, m in kinds.items():
            if m.any():
                report.update({f"n/{kind}": m.sum(), f"q/{kind}": q_data[m].mean(), f"mc/{kind}": mc[m].mean(),
                               f"td_mse/{kind}": ((q_data - y)[m] ** 2).mean(), f"q_mc_mse/{kind}": ((q_data - mc)[m] ** 2).mean()})
        return {k: float(v) for k, v in report.items()}

    def _discount(self, tb: TorchBatch) -> float | torch.Tensor:
        """The bootstrap's discount: gamma, or (B,) gamma^k for transitions spanning k steps (action chunks)."""
        gamma = self.config.calql.gamma
        return gamma if tb.steps is None else gamma ** tb.steps

    def _bc_term(self, mean: torch.Tensor, log_std: torch.Tensor, tb: TorchBatch) -> torch.Tensor:
        """The BC objective of ``config.bc_loss`` for (B, h*A) actor outputs on the batch's actions,
        over the transitions ``config.bc_data`` selects; per control step (a chunk's sum over its
        h steps divided by h), so ``bc_weight`` weighs it against Q the same whatever the chunk."""
        weights = imitation_weights(tb.mc_return, tb.intervention, self.config.bc_data == "successes")
        per_chunk = self.config.network.action_chunk
        if self.config.bc_loss == "mse":  # as the BC learner: squared error of the mode
            return weighted_mean(((torch.tanh(mean) - tb.action) ** 2).sum(-1), weights) / per_chunk
        return weighted_mean(-TanhGaussianActor.log_prob_from(mean, log_std, tb.action), weights) / per_chunk

    def agent(self) -> Agent:
        """An Agent sharing this learner's encoder, actor and critic (live weights, eval mode copy not made)."""
        return Agent(self.config, self.q_net.encoder, self.actor, version=self.step, device=self.device, critic=self.q_net.critic)

    # Where the Agent's weights live inside this learner's state dict (used by checkpoints).
    agent_prefixes = {"encoder": "q_net.encoder.", "actor": "actor."}
