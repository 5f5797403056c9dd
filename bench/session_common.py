"""What the session benchmarks (bench/session.py, bench/finetune_episodic.py) share.

Both score policies the same way, from the same starts, so their figures compare:
``SimScores`` (``robot_stack.session.evaluate``'s ground truth, as ``robot-stack evaluate``), with
the session's scene, cameras, image size and horizon, seeded by the evaluation's own seed, and
report the forward rates by kind of start too (``forward_success_by_start``). Both
take ``--learner-set FIELD=JSON`` for the online learner, and both end their online phase early,
not the process, on SIGTERM or Ctrl-C (``StopRequest``), so a stopped run still scores what it saved.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys


class SimScores:
    """``scores(policy, task_id, name="") -> success rate`` by the simulator's ground truth for the
    session config ``cfg``, from the same ``episodes`` starts in new layouts every call. A named call
    also keeps the rate by kind of start the scene staged: ``by_start[name] = {kind: rate}``, with
    ``starts = {kind: episodes}`` (the same for every call)."""

    def __init__(self, cfg, episodes: int) -> None:
        from robot_stack.session.evaluate import sim_evaluation

        self._evaluate = sim_evaluation(cfg, episodes)
        self.by_start: dict[str, dict[str, float]] = {}
        self.starts: dict[str, int] = {}

    def __call__(self, policy, task_id: str, name: str = "") -> float:
        result = self._evaluate(policy, task_id)
        if name:
            self.by_start[name] = {k: round(r["success_rate"], 3) for k, r in result["by_start"].items()}
            self.starts = {k: r["episodes"] for k, r in result["by_start"].items()}
        return result["success_rate"]

    def report(self) -> dict:
        """The JSON fields: ``forward_success_by_start`` and ``eval_starts`` (episodes per kind)."""
        return {"forward_success_by_start": self.by_start, "eval_starts": self.starts}


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


class StopRequest:
    """``with StopRequest() as stop:`` around an online phase: the first SIGTERM or SIGINT only sets
    ``stop.signal`` (its name; ``bool(stop)`` is then True) for the loop to end at its next check,
    so the bench goes on to score the versions it saved and print its JSON line. The handlers are put
    back at once, so a second signal acts as usual (ends the process)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signal: str | None = None
        self._old: dict = {}

    def __bool__(self) -> bool:
        return self.signal is not None

    def _on_signal(self, signum, _frame) -> None:
        self.signal = signal.Signals(signum).name
        self._restore()
        print(f"{self.signal}: ending the online phase; the saved versions are scored next "
              "(send it again to stop at once)", file=sys.stderr, flush=True)

    def _restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}

    def __enter__(self) -> "StopRequest":
        self._old = {sig: signal.signal(sig, self._on_signal) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        self._restore()
