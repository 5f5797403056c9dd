"""The loss math of Cal-QL, in small named functions that tests check on hand-computed cases."""

from __future__ import annotations

import math

import torch


def calibration_lower_bound(q_policy: torch.Tensor, mc_return: torch.Tensor) -> torch.Tensor:
    """Cal-QL's calibration: clamp policy-action Q-values from below by the data's MC return.

    q_policy: (..., B, N) Q-values of N policy actions per state; mc_return: (B,) Monte-Carlo
    return-to-go of the state's trajectory (the replay already maps sparse all-failure episodes
    to r_neg/(1-gamma)). Returns max(q_policy, mc_return) with the same shape as q_policy. The
    conservative term then stops pushing down Q-values that are already at or below the value
    of the behaviour policy, which keeps the learned Q calibrated for online fine-tuning.
    """
    return torch.maximum(q_policy, mc_return.to(q_policy.dtype).unsqueeze(-1))


def conservative_penalty(
    q_data: torch.Tensor,
    q_ood: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
    """CQL(H) conservative term per critic: T * logsumexp(q_ood / T) - q_data, averaged over states.

    q_data: (E, B) Q-values of the dataset actions; q_ood: (E, B, K) Q-values of the K sampled
    actions (random / policy, already importance-corrected and, for Cal-QL, calibrated). Returns
    (E,) - one penalty per critic of the ensemble.
    """
    lse = temperature * torch.logsumexp(q_ood / temperature, dim=-1)
    return (lse - q_data).mean(dim=-1)


def td_target(
    reward: torch.Tensor,
    done: torch.Tensor,
    next_q: torch.Tensor,
    gamma: float | torch.Tensor,
    next_log_prob: torch.Tensor | None = None,
    alpha: float | torch.Tensor = 0.0,
    q_max: float = 0.0,
    q_min: float | None = None,
) -> torch.Tensor:
    """Bellman target ``r + gamma * (1 - done) * (min_i Q_i'(s', a') - alpha * log pi(a'|s'))``.

    reward, done: (B,); gamma: a float, or (B,) per transition (gamma^k for one spanning k steps);
    next_q: (E, B) target-critic Q-values at (s', a' ~ pi(s')); ``done`` is
    TERMINAL only: a truncated (time-limit) step still bootstraps from s', because the state did
    not end - the episode was merely cut. ``q_max`` > 0 caps the target at the largest return an
    episode can earn, so an over-estimate cannot feed on itself; ``q_min`` (None: no floor) floors it
    at the smallest return, so an under-estimate cannot either. Returns (B,), without gradient.
    """
    v = next_q.min(dim=0).values
    if next_log_prob is not None:
        v = v - alpha * next_log_prob
    y = reward + gamma * (1.0 - done) * v
    if q_max > 0:
        y = y.clamp(max=q_max)
    if q_min is not None:
        y = y.clamp(min=q_min)
    return y.detach()


def uniform_log_density(action_dim: int) -> float:
    """log of the density of Uniform([-1, 1]^action_dim): the importance weight of random CQL actions."""
    return -action_dim * math.log(2.0)


def imitation_weights(mc_return: torch.Tensor, intervention: torch.Tensor | None, successes_only: bool) -> torch.Tensor:
    """(B,) float weights of the transitions a BC objective imitates.

    ``successes_only``: 1 where the episode went on to succeed from this step (sparse 0/1 rewards:
    MC return-to-go > 0) or a person chose the action, else 0 - filtered BC, so neither the noisy
    failure episodes of prior data nor the policy's own failed online attempts are imitated.
    Otherwise all ones. mc_return: (B,); intervention: (B,) bool or None.
    """
    if not successes_only:
        return torch.ones_like(mc_return, dtype=torch.float32)
    keep = mc_return > 0
    if intervention is not None:
        keep = keep | intervention
    return keep.float()


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum(w * v) / sum(w) over (B,) values and weights; 0 (with gradient) when every weight is 0."""
    return (weights * values).sum() / weights.sum().clamp(min=1.0)
