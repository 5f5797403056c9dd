"""Behaviour cloning: the baseline every report compares against.

Maximum likelihood of the dataset actions under the same tanh-Gaussian policy (own encoder,
same inputs as Cal-QL), with the same DrQ random-shift augmentation.
"""

from __future__ import annotations

from typing import Any

import torch

from policies.agent import Agent
from policies.batch import TorchBatch
from policies.config import LearnerConfig
from policies.learner import Learner, make_adam
from policies.losses import imitation_weights, weighted_mean
from policies.networks import GaussianPolicy, TanhGaussianActor


class BCLearner(Learner):
    """``BCLearner(config, task_embeddings=None)``; module ``policy`` (encoder + actor)."""

    kind = "bc"
    agent_prefixes = {"encoder": "policy.encoder.", "actor": "policy.actor."}

    def __init__(self, config: LearnerConfig, task_embeddings=None, *, distributed: bool | None = None):
        super().__init__(config, distributed=distributed)
        torch.manual_seed(config.seed)
        self.policy = GaussianPolicy(config.network, task_embeddings).to(self.device)
        if config.channels_last:
            self.policy = self.policy.to(memory_format=torch.channels_last)
        self.modules = {"policy": self.policy}
        self._broadcast_params()
        self._compile(self.policy.encoder.image, self.policy.actor)
        self.policy_train = self._wrap(self.policy)
        self.optimizers = {"policy": make_adam(self.policy.parameters(), config.bc_lr)}

    def _update(self, tb: TorchBatch) -> dict[str, Any]:
        pix, _ = self._pixels(tb, self.config.calql.augment_pad, with_next=False)
        mse_mode = self.config.bc_loss == "mse"
        weights = imitation_weights(tb.mc_return, tb.intervention, self.config.bc_data == "successes")
        with self._autocast():
            mean, log_std = self.policy_train(pix, tb.state, tb.task, std_on_detached=mse_mode)
            mse = weighted_mean(((torch.tanh(mean.float()) - tb.action) ** 2).mean(-1), weights)
            if mse_mode:
                # The mean (and with it the encoder) learns from squared error; the std only in the last
                # layer, from the likelihood around the fixed mean. Full likelihood through the shared
                # trunk kept the policy from ever learning the first move toward the cube (saturated +-1
                # actions sit at atanh ~ +-6: the cheapest fix for the likelihood is a wide std there).
                nll = weighted_mean(-TanhGaussianActor.log_prob_from(mean.detach(), log_std, tb.action), weights)
                loss = mse + nll
            else:
                nll = weighted_mean(-TanhGaussianActor.log_prob_from(mean, log_std, tb.action), weights)
                loss = nll
        opt = self.optimizers["policy"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        self._clip(self.policy.parameters())
        opt.step()
        return {"losses/bc_nll": nll.detach(), "bc/mode_mse": mse.detach(), "bc/imitated_frac": weights.mean()}

    def agent(self) -> Agent:
        return Agent(self.config, self.policy.encoder, self.policy.actor, version=self.step, device=self.device)
