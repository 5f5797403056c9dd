"""Learning statistics: Wilson intervals, windows, per-hour rates, disagreement."""

from __future__ import annotations

import pytest

from robot_stack.dashboard.episodes import EpisodeInfo, InterventionSegment
from robot_stack.dashboard.stats import disagreement, learning_stats, per_hour, success_rate_series, wilson_interval


@pytest.mark.parametrize("k,n,lo,hi", [
    (0, 0, 0.0, 1.0),
    (5, 10, 0.2366, 0.7634),   # hand-computed: centre 0.5, half-width 1.96*sqrt(.025+.0096)/1.384
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
    (1, 2, 0.0945, 0.9055),
])
def test_wilson_interval(k, n, lo, hi):
    got = wilson_interval(k, n)
    assert got[0] == pytest.approx(lo, abs=1e-4) and got[1] == pytest.approx(hi, abs=1e-4)


def test_wilson_interval_rejects_impossible_counts():
    for k, n in [(3, 2), (-1, 2), (0, -1)]:
        with pytest.raises(ValueError):
            wilson_interval(k, n)


def ep(i, outcome, eval=False, t=0.0, segments=0, classifier=None, human=None):
    return EpisodeInfo(id=f"r:{i:06d}", task_id="t", phase="forward", n_steps=10, outcome=outcome,
                       outcome_source="classifier", eval=eval, classifier_outcome=classifier, human_outcome=human,
                       intervention_segments=[InterventionSegment(0, 2, "", j) for j in range(segments)],
                       end_time=t, order=(t, "r", i))


def test_success_rate_windows_skip_unlabelled():
    eps = [ep(0, True), ep(1, None), ep(2, False), ep(3, True), ep(4, True)]
    s = success_rate_series(eps, 2)
    assert [(p["successes"], p["n"], p["n_before"]) for p in s] == [(1, 2, 0), (2, 2, 2)]
    assert s[0]["first_episode"] == "r:000000" and s[0]["last_episode"] == "r:000002"


def test_per_hour_counts_and_partial_last_hour():
    eps = [ep(0, True, t=0.0, segments=1), ep(1, True, t=1800.0), ep(2, False, t=3700.0, segments=2),
           ep(3, True, t=4300.0)]
    hours = per_hour(eps)
    assert [(h["hour"], h["episodes"], h["interventions"]) for h in hours] == [(0, 2, 1), (1, 2, 2)]
    assert hours[0]["episodes_per_hour"] == pytest.approx(2.0)
    # hour 1 covers 3600..4300 s so far (700 s): 2 episodes -> ~10.3/h
    assert hours[1]["episodes_per_hour"] == pytest.approx(2 * 3600 / 700)


def test_disagreement_and_train_eval_split():
    eps = [ep(0, True, classifier=True, human=True), ep(1, False, classifier=True, human=False),
           ep(2, True, eval=True, classifier=True), ep(3, False, eval=True, t=7200.0)]
    d = disagreement(eps)
    assert (d["n"], d["disagreements"], d["rate"]) == (2, 1, 0.5)
    st = learning_stats(eps, window=10)
    assert st["totals"]["train_success"]["n"] == 2 and st["totals"]["eval_success"]["successes"] == 1
    assert len(st["train"]) == 1 and len(st["eval"]) == 1
    assert st["totals"]["episodes_per_hour"] == pytest.approx(4 / 2.0)
