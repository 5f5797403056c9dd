"""Loss math on small hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from policies.losses import (calibration_lower_bound, conservative_penalty, imitation_weights, td_target,
                             uniform_log_density, weighted_mean)
from policies.replay import mc_return_to_go


def test_calibration_lower_bound_hand_case():
    # Two states, three policy actions each; MC returns 0.5 and -2.
    q_pi = torch.tensor([[0.2, 0.7, -1.0], [-3.0, -2.0, 1.0]])
    mc = torch.tensor([0.5, -2.0])
    out = calibration_lower_bound(q_pi, mc)
    expected = torch.tensor([[0.5, 0.7, 0.5], [-2.0, -2.0, 1.0]])
    assert torch.equal(out, expected)
    # Leading ensemble axis broadcasts: (E, B, N).
    out_e = calibration_lower_bound(torch.stack([q_pi, q_pi - 10]), mc)
    assert torch.equal(out_e[0], expected)
    assert torch.equal(out_e[1], torch.tensor([[0.5, 0.5, 0.5], [-2.0, -2.0, -2.0]]))


def test_calibration_passes_gradient_only_where_not_clamped():
    q_pi = torch.tensor([[0.2, 0.7]], requires_grad=True)
    calibration_lower_bound(q_pi, torch.tensor([0.5])).sum().backward()
    assert q_pi.grad.tolist() == [[0.0, 1.0]]


def test_conservative_penalty_logsumexp_form():
    q_data = torch.tensor([[1.0, 0.0]])  # (E=1, B=2)
    q_ood = torch.tensor([[[0.0, math.log(3.0)], [math.log(2.0), math.log(2.0)]]])  # (1, 2, K=2)
    # state 0: log(e^0 + e^log3) - 1 = log 4 - 1; state 1: log(2 + 2) - 0 = log 4
    expected = ((math.log(4.0) - 1.0) + math.log(4.0)) / 2
    assert conservative_penalty(q_data, q_ood).item() == pytest.approx(expected, rel=1e-6)
    # temperature T: T * logsumexp(q / T); with T=0.5, state 0: 0.5*log(1 + 9) - 1
    t = 0.5
    expected_t = ((t * math.log(1 + 9.0) - 1.0) + t * math.log(4 + 4.0)) / 2
    assert conservative_penalty(q_data, q_ood, temperature=t).item() == pytest.approx(expected_t, rel=1e-6)


def test_td_target_terminal_vs_truncated():
    reward = torch.tensor([1.0, 0.0, 0.5])
    # Step 0 terminal; step 1 was the last step of a TRUNCATED episode (done=0: still bootstraps); step 2 mid-episode.
    done = torch.tensor([1.0, 0.0, 0.0])
    next_q = torch.tensor([[10.0, 4.0, 2.0], [8.0, 6.0, 3.0]])  # (E=2, B=3): min -> [8, 4, 2]
    y = td_target(reward, done, next_q, gamma=0.9)
    assert torch.allclose(y, torch.tensor([1.0, 0.9 * 4.0, 0.5 + 0.9 * 2.0]))
    # With the entropy backup: subtract alpha * log pi(a'|s').
    y2 = td_target(reward, done, next_q, gamma=0.9, next_log_prob=torch.tensor([1.0, -1.0, 2.0]), alpha=0.5)
    assert torch.allclose(y2, torch.tensor([1.0, 0.9 * (4.0 + 0.5), 0.5 + 0.9 * (2.0 - 1.0)]))
    assert not y.requires_grad
    # q_max caps over-estimates at the largest return (the terminal 1 and 0.5 + 0.9 * 2 here); values under it pass.
    y3 = td_target(reward, done, next_q, gamma=0.9, q_max=2.0)
    assert torch.allclose(y3, torch.tensor([1.0, 2.0, 2.0]))
    assert torch.equal(td_target(reward, done, next_q * 0.1, gamma=0.9, q_max=2.0), td_target(reward, done, next_q * 0.1, gamma=0.9))
    # q_min floors under-estimates (a negative next Q from CQL's push-down) at the smallest return; values over it pass.
    low = -next_q
    assert torch.allclose(td_target(reward, done, low, gamma=0.9), torch.tensor([1.0, -0.9 * 6.0, 0.5 - 0.9 * 3.0]))
    assert torch.allclose(td_target(reward, done, low, gamma=0.9, q_min=0.0), torch.tensor([1.0, 0.0, 0.0]))
    assert torch.equal(td_target(reward, done, next_q, gamma=0.9, q_min=0.0), y)


def test_uniform_log_density():
    assert uniform_log_density(7) == pytest.approx(math.log(0.5**7))


def test_mc_return_terminal_success():
    g = mc_return_to_go(np.array([0.0, 0.0, 1.0]), 0.9, terminal_end=True)
    np.testing.assert_allclose(g, [0.81, 0.9, 1.0], rtol=1e-6)


def test_mc_return_all_failure_sparse_uses_r_neg_over_one_minus_gamma():
    g = mc_return_to_go(np.full(4, -1.0), 0.9, terminal_end=False, reward_neg=-1.0)
    np.testing.assert_allclose(g, np.full(4, -10.0), rtol=1e-6)
    # Same for a failed episode that ended terminal (e.g. the object fell): still "failure forever".
    g = mc_return_to_go(np.zeros(3), 0.9, terminal_end=True, reward_neg=0.0)
    np.testing.assert_allclose(g, np.zeros(3))


def test_mc_return_truncated_tail_is_failure_value():
    # r_neg = -1, gamma = 0.5: a success reward 0 at step 1, then cut after step 2.
    r = np.array([-1.0, 0.0, -1.0])
    tail = -1.0 / (1 - 0.5)  # -2
    g2 = -1.0 + 0.5 * tail  # -2
    g1 = 0.0 + 0.5 * g2  # -1
    g0 = -1.0 + 0.5 * g1  # -1.5
    got = mc_return_to_go(r, 0.5, terminal_end=False, reward_neg=-1.0)
    np.testing.assert_allclose(got, [g0, g1, g2], rtol=1e-6)
    # "zero" tail: the Cal-QL reference code's plain discounted sum.
    got0 = mc_return_to_go(r, 0.5, terminal_end=False, reward_neg=-1.0, truncation_tail="zero")
    np.testing.assert_allclose(got0, [-1.25, -0.5, -1.0], rtol=1e-6)
    # Dense rewards (sparse_reward=False) never use the all-failure rule.
    got_dense = mc_return_to_go(np.full(2, -1.0), 0.5, terminal_end=True, reward_neg=-1.0, sparse_reward=False)
    np.testing.assert_allclose(got_dense, [-1.5, -1.0], rtol=1e-6)


def test_imitation_weights_keep_steps_that_led_to_success_and_human_actions():
    mc = torch.tensor([0.0, 0.9, 0.0, 0.0, 0.5])
    intervention = torch.tensor([False, False, True, False, True])
    assert imitation_weights(mc, intervention, successes_only=True).tolist() == [0.0, 1.0, 1.0, 0.0, 1.0]
    assert imitation_weights(mc, None, successes_only=True).tolist() == [0.0, 1.0, 0.0, 0.0, 1.0]
    assert imitation_weights(mc, intervention, successes_only=False).tolist() == [1.0] * 5


def test_weighted_mean_ignores_zero_weights_and_is_zero_without_any():
    v = torch.tensor([1.0, 3.0, 100.0], requires_grad=True)
    assert weighted_mean(v, torch.tensor([1.0, 1.0, 0.0])).item() == 2.0
    none = weighted_mean(v, torch.zeros(3))
    none.backward()
    assert none.item() == 0.0 and v.grad.abs().sum() == 0
