"""What the branching probe concludes from its branch states (``summarize_branches``); the probe
itself runs on the real simulator in tests/learner/test_pretrain_and_service.py."""

import pytest

from robot_stack.session.evaluate import summarize_branches


def row(outcomes, q, rollout_success=None):
    replay = bool(outcomes[0]) if rollout_success is None else not rollout_success
    return {"rollout_success": bool(outcomes[0]) if rollout_success is None else rollout_success,
            "replay_success": replay, "outcomes": [float(o) for o in outcomes], "q": q}


def test_a_critic_that_ranks_picks_the_winners_and_one_that_does_not_is_at_chance():
    mixed = [row([False, True, False, False], [0.1, 0.9, 0.2, 0.0]),  # Q's best (index 1) wins
             row([True, True, False, False], [0.5, 0.6, 0.1, 0.2])]  # index 1 again
    decided = [row([True] * 4, [0.0] * 4), row([False] * 4, [1.0, 0.0, 0.0, 0.0]), row([False] * 4, [0.0] * 4)]
    s = summarize_branches(mixed + decided)
    assert s["branch/states"] == 5 and s["branch/mixed"] == 2
    assert s["branch/all_succeed"] == 1 and s["branch/all_fail"] == 2 and s["branch/deterministic"] == 1.0
    assert s["branch/pick_success"] == 1.0 and s["branch/chance"] == pytest.approx((0.25 + 0.5) / 2)
    assert s["branch/mean_success"] == 0.5
    assert s["branch/q_gap"] == pytest.approx(((0.9 - 0.1) + (0.55 - 0.15)) / 2)
    assert s["branch/q_corr"] > 0.8 and "branch/excess_var" not in s

    backwards = summarize_branches([row(r["outcomes"], [-x for x in r["q"]]) for r in mixed])
    assert backwards["branch/pick_success"] == 0.0 and backwards["branch/q_gap"] < 0


def test_a_replay_that_diverges_is_reported_and_no_mixed_states_leave_the_ranking_open():
    s = summarize_branches([row([False, False], [0.0, 1.0], rollout_success=True), row([True, True], [0.0, 0.0])])
    assert s["branch/deterministic"] == 0.5 and s["branch/mixed"] == 0
    assert s["branch/pick_success"] is None and s["branch/q_gap"] is None
    assert summarize_branches([])["branch/states"] == 0


def test_with_several_continuations_rates_are_compared_and_the_coin_flips_discounted():
    """Rates over R stochastic continuations: candidates that truly differ (0 vs 1 every time)
    give a positive excess variance; equal rates, which only coin flips could separate, do not."""
    differ = row([0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.2, 0.8])
    alike = row([0.5, 0.5, 0.5, 0.5], [0.3, 0.1, 0.2, 0.0])
    s = summarize_branches([differ, alike], continuations=6)
    assert s["branch/mixed"] == 2 and s["branch/continuations"] == 6 and "branch/q_gap" not in s
    assert s["branch/pick_success"] == pytest.approx((1.0 + 0.5) / 2) and s["branch/chance"] == 0.5
    expected = ((1 / 3 - 0.0) + (0.0 - 0.25 / 5)) / 2  # per state: variance across candidates minus r(1-r)/(R-1)
    assert s["branch/excess_var"] == pytest.approx(expected)
    assert summarize_branches([alike], continuations=6)["branch/excess_var"] < 0 < summarize_branches([differ], continuations=6)["branch/excess_var"]
