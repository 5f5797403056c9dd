"""Learning-at-a-glance numbers computed from episode summaries: success rates with Wilson
intervals (training and evaluation episodes separately), episodes and interventions per hour,
and how often a person overruled the classifier."""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

from .episodes import EpisodeInfo


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``successes / n`` (95 % for z = 1.96).

    Unlike the normal approximation it stays inside [0, 1] and is sensible for 0 or n successes.
    ``n == 0`` gives the uninformative (0, 1).
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _rate_point(eps: Sequence[EpisodeInfo], n_before: int) -> dict[str, Any]:
    k = sum(1 for e in eps if e.outcome is True)
    n = len(eps)
    lo, hi = wilson_interval(k, n)
    return {"first_episode": eps[0].id, "last_episode": eps[-1].id, "n_before": n_before, "t": eps[-1].end_time,
            "successes": k, "n": n, "rate": k / n if n else None, "lo": lo, "hi": hi}


def success_rate_series(episodes: Iterable[EpisodeInfo], window: int) -> list[dict[str, Any]]:
    """Success rate over consecutive windows of ``window`` labelled episodes (oldest first).

    Episodes without an outcome are skipped; the last window may be shorter.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    labelled = [e for e in episodes if e.outcome is not None]
    return [_rate_point(labelled[i:i + window], i) for i in range(0, len(labelled), window)]


def per_hour(episodes: Sequence[EpisodeInfo]) -> list[dict[str, Any]]:
    """Episodes, intervention segments and intervened steps per wall-clock hour since the first episode."""
    timed = [e for e in episodes if e.end_time is not None]
    if not timed:
        return []
    t0 = min(e.start_time if e.start_time is not None else e.end_time for e in timed)
    bins: dict[int, dict[str, Any]] = {}
    for e in timed:
        h = int((e.end_time - t0) // 3600.0)
        b = bins.setdefault(h, {"hour": h, "t": t0 + h * 3600.0, "episodes": 0, "interventions": 0,
                                "intervened_episodes": 0, "seconds": 3600.0})
        b["episodes"] += 1
        b["interventions"] += len(e.intervention_segments)
        b["intervened_episodes"] += int(e.intervened)
    out = [bins[h] for h in sorted(bins)]
    # The newest hour is partial: report rates per hour over the time actually covered.
    last_end = max(e.end_time for e in timed)
    covered = max(last_end - out[-1]["t"], 60.0)
    out[-1]["seconds"] = min(3600.0, covered)
    for b in out:
        scale = 3600.0 / b["seconds"]
        b["episodes_per_hour"] = b["episodes"] * scale
        b["interventions_per_hour"] = b["interventions"] * scale
    return out


def disagreement(episodes: Iterable[EpisodeInfo]) -> dict[str, Any]:
    """Classifier vs human label disagreement among episodes that have both."""
    both = [e for e in episodes if e.classifier_outcome is not None and e.human_outcome is not None]
    k = sum(1 for e in both if e.classifier_outcome != e.human_outcome)
    lo, hi = wilson_interval(k, len(both))
    return {"n": len(both), "disagreements": k, "rate": k / len(both) if both else None, "lo": lo, "hi": hi}


def learning_stats(episodes: Sequence[EpisodeInfo], window: int = 10) -> dict[str, Any]:
    """Everything the "learning at a glance" panel draws, from episode summaries (any order)."""
    eps = sorted(episodes, key=lambda e: e.order or (e.end_time or 0.0, e.id))
    train = [e for e in eps if not e.eval]
    evals = [e for e in eps if e.eval]
    hours = per_hour(eps)
    span_h = 0.0
    timed = [e for e in eps if e.end_time is not None]
    if len(timed) >= 2:
        # At least a minute, so two quick episodes do not read as thousands per hour.
        span_h = max(60.0, max(e.end_time for e in timed) - min(e.start_time or e.end_time for e in timed)) / 3600.0
    totals = {
        "episodes": len(eps), "train_episodes": len(train), "eval_episodes": len(evals),
        "labelled": sum(1 for e in eps if e.outcome is not None),
        "interventions": sum(len(e.intervention_segments) for e in eps),
        "episodes_per_hour": (len(timed) / span_h) if span_h > 0 else None,
        "interventions_per_hour": (sum(len(e.intervention_segments) for e in timed) / span_h) if span_h > 0 else None,
    }
    for name, group in (("train", train), ("eval", evals)):
        labelled = [e for e in group if e.outcome is not None]
        k = sum(1 for e in labelled if e.outcome)
        lo, hi = wilson_interval(k, len(labelled))
        totals[f"{name}_success"] = {"successes": k, "n": len(labelled), "rate": k / len(labelled) if labelled else None,
                                     "lo": lo, "hi": hi}
    return {
        "window": window,
        "train": success_rate_series(train, window),
        "eval": success_rate_series(evals, window),
        "hourly": hours,
        "disagreement": disagreement(eps),
        "totals": totals,
    }
