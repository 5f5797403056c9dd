"""What the session benchmarks (bench/session.py, bench/finetune_episodic.py) share.

Both score policies the same way, from the same starts, so their figures compare: ``evaluate_in_sim``
with the session's scene, cameras, image size and horizon, seeded by the evaluation's own seed. Both
take ``--learner-set FIELD=JSON`` for the online learner.
"""

from __future__ import annotations

import argparse
import json
from typing import Callable


def add_learner_set(p: argparse.ArgumentParser) -> None:
    """``--learner-set FIELD=JSON`` (repeatable): a LearnerConfig field for the online learner."""
    p.add_argument("--learner-set", action="append", default=[], metavar="FIELD=JSON",
                   help="a LearnerConfig field for the online learner, e.g. calql.alpha_lr=0 (repeatable)")


def learner_overrides(p: argparse.ArgumentParser, items: list[str]) -> dict:
    """The ``--learner-set`` items as {field: value}; a malformed one is a usage error."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            sep = ""
        if not sep or not key.strip():
            p.error(f"--learner-set wants FIELD=JSON (e.g. calql.alpha_lr=0), got {item!r}")
    return out


def sim_success(cfg, episodes: int) -> Callable[[object, str], float]:
    """``success(policy, task_id) -> rate`` by simulator ground truth for the session config ``cfg``."""
    from robot_stack.session.evaluate import evaluate_in_sim

    def success(policy, task: str) -> float:
        return evaluate_in_sim(policy, cfg.scene, task, episodes, image_size=cfg.image_size, cameras=tuple(cfg.cameras),
                               horizon=cfg.episode.horizon, progress=True)["success_rate"]

    return success


def curve_versions(versions: list[int], final: int, points: int) -> list[int]:
    """Up to ``points`` versions before ``final``, evenly spaced from the first: the learning curve's x."""
    earlier = [v for v in versions if v < final]
    return sorted({earlier[round(i * (len(earlier) - 1) / max(1, points - 1))] for i in range(min(points, len(earlier)))})
