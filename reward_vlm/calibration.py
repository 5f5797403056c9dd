"""Calibration and held-out evaluation of success probabilities (numpy only).

Temperature scaling (Guo et al. 2017) rescales logits by 1/T to fix over/under-confidence; the
decision threshold is then chosen per task so that held-out precision reaches a target (a false
"success" ends an episode early and rewards the wrong behaviour, so precision is what matters).
"""

from __future__ import annotations

import dataclasses
import math
import pathlib

import numpy as np

from reward_vlm.errors import RewardInputError

T_MIN, T_MAX = 0.02, 50.0


def _as_binary(labels: np.ndarray, n: int, what: str = "labels") -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise RewardInputError(f"{what} must have shape ({n},), got {labels.shape}")
    if not np.all((labels == 0) | (labels == 1)):
        raise RewardInputError(f"{what} must be 0/1 (or bool)")
    return labels.astype(np.float64)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0, weights: np.ndarray | None = None) -> float:
    """Weighted mean binary cross-entropy of sigmoid(logits / temperature) against 0/1 labels."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    y = np.asarray(labels, dtype=np.float64)
    # log(1 + exp(-|z|)) + max(z, 0) - y z  ==  BCE with logits, stable for large |z|
    per = np.logaddexp(0.0, z) - y * z
    w = np.ones_like(per) if weights is None else np.asarray(weights, dtype=np.float64)
    return float(np.sum(w * per) / max(np.sum(w), 1e-12))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Temperature T > 0 minimising held-out NLL of sigmoid(logits / T).

    logits: (N,) raw classifier logits; labels: (N,) 0/1. T > 1 softens an over-confident model,
    T < 1 sharpens an under-confident one. NLL is unimodal in log T, so a golden-section search
    on [log T_MIN, log T_MAX] finds the optimum without tuning.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 1 or logits.size == 0:
        raise RewardInputError(f"logits must be a non-empty 1-D array, got shape {logits.shape}")
    if not np.all(np.isfinite(logits)):
        raise RewardInputError("logits contain NaN or inf")
    y = _as_binary(labels, logits.size)
    f = lambda log_t: nll(logits, y, math.exp(log_t), weights)  # noqa: E731
    lo, hi = math.log(T_MIN), math.log(T_MAX)
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = f(a), f(b)
    for _ in range(80):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = f(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = f(b)
    return float(math.exp((lo + hi) / 2))


@dataclasses.dataclass
class ThresholdChoice:
    """A decision threshold (success iff prob >= threshold) and its held-out precision/recall."""

    threshold: float
    precision: float  # on the data it was chosen on (nan when nothing is predicted positive)
    recall: float
    attainable: bool  # False: no threshold >= min_threshold reached the target precision


def threshold_for_precision(
    probs: np.ndarray, labels: np.ndarray, target_precision: float = 0.99, min_threshold: float = 0.5
) -> ThresholdChoice:
    """Lowest threshold (highest recall) whose precision on (probs, labels) is >= target_precision.

    probs, labels: (N,). Candidates are the observed probabilities >= min_threshold. When no
    candidate reaches the target, the threshold is 1.0 (the classifier never says success; just
    above the largest held-out probability would still fire on any frame it is a little more sure
    of) and `attainable` is False.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 1 or probs.size == 0:
        raise RewardInputError(f"probs must be a non-empty 1-D array, got shape {probs.shape}")
    if not 0.0 < target_precision <= 1.0:
        raise ValueError(f"target_precision must be in (0, 1], got {target_precision}")
    y = _as_binary(labels, probs.size)
    n_pos = y.sum()
    order = np.argsort(-probs, kind="stable")
    p_sorted, y_sorted = probs[order], y[order]
    tp = np.cumsum(y_sorted)
    k = np.arange(1, probs.size + 1)
    # only the last index of a run of equal probabilities is a valid cut (ties go together)
    last_of_tie = np.append(p_sorted[1:] != p_sorted[:-1], True)
    ok = last_of_tie & (p_sorted >= min_threshold) & (tp / k >= target_precision - 1e-12)
    if not np.any(ok):
        return ThresholdChoice(threshold=1.0, precision=float("nan"), recall=0.0, attainable=False)
    i = int(np.flatnonzero(ok)[-1])
    return ThresholdChoice(threshold=float(p_sorted[i]), precision=float(tp[i] / k[i]),
                           recall=float(tp[i] / n_pos) if n_pos else float("nan"), attainable=True)


@dataclasses.dataclass
class EvalReport:
    """Binary classification metrics at the classifier's thresholds (rates are nan when undefined)."""

    n: int
    n_pos: int
    n_neg: int
    accuracy: float
    precision: float
    recall: float
    fpr: float
    fnr: float
    ece: float  # expected calibration error over `bins` equal-width bins
    brier: float
    bins: list[dict] = dataclasses.field(default_factory=list)  # reliability: lo, hi, count, mean_prob, frac_pos

    def as_dict(self, with_bins: bool = False) -> dict:
        d = dataclasses.asdict(self)
        if not with_bins:
            d.pop("bins")
        return d


def _div(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def reliability_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> list[dict]:
    """Equal-width bins over [0, 1]: count, mean predicted probability and fraction positive."""
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    idx = np.clip((probs * n_bins).astype(int), 0, n_bins - 1)
    out = []
    for b in range(n_bins):
        m = idx == b
        c = int(m.sum())
        out.append({"lo": b / n_bins, "hi": (b + 1) / n_bins, "count": c,
                    "mean_prob": float(probs[m].mean()) if c else float("nan"),
                    "frac_pos": float(y[m].mean()) if c else float("nan")})
    return out


def evaluate(probs: np.ndarray, labels: np.ndarray, thresholds: float | np.ndarray = 0.5, n_bins: int = 10) -> EvalReport:
    """Metrics of decisions `probs >= thresholds` against 0/1 labels.

    probs, labels: (N,); thresholds: scalar or (N,) (per-frame, e.g. each frame's task threshold).
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 1 or probs.size == 0:
        raise RewardInputError(f"probs must be a non-empty 1-D array, got shape {probs.shape}")
    y = _as_binary(labels, probs.size).astype(bool)
    pred = probs >= np.asarray(thresholds, dtype=np.float64)
    tp, fp = int(np.sum(pred & y)), int(np.sum(pred & ~y))
    fn, tn = int(np.sum(~pred & y)), int(np.sum(~pred & ~y))
    bins = reliability_bins(probs, y, n_bins)
    ece = sum(b["count"] * abs(b["mean_prob"] - b["frac_pos"]) for b in bins if b["count"]) / probs.size
    return EvalReport(
        n=int(probs.size), n_pos=tp + fn, n_neg=fp + tn,
        accuracy=(tp + tn) / probs.size, precision=_div(tp, tp + fp), recall=_div(tp, tp + fn),
        fpr=_div(fp, fp + tn), fnr=_div(fn, fn + tp), ece=float(ece),
        brier=float(np.mean((probs - y) ** 2)), bins=bins,
    )


def reliability_plot_png(report: EvalReport, path: str | pathlib.Path, title: str = "reliability", size: int = 360) -> pathlib.Path:
    """Draw a reliability diagram (bars: fraction positive per probability bin; dashed: ideal
    diagonal; grey: bin counts) as a PNG with PIL. Returns the path written."""
    from PIL import Image, ImageDraw

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    margin_l, margin_b, margin_t, margin_r = 48, 40, 28, 12
    w = h = size
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    x0, y0, x1, y1 = margin_l, margin_t, w - margin_r, h - margin_b  # plot box, y grows downwards
    px = lambda v: x0 + v * (x1 - x0)  # noqa: E731
    py = lambda v: y1 - v * (y1 - y0)  # noqa: E731
    max_count = max([b["count"] for b in report.bins] + [1])
    for b in report.bins:
        if b["count"] == 0:
            continue
        # bin population as a faint grey bar (scaled to the biggest bin)
        d.rectangle([px(b["lo"]) + 1, py(b["count"] / max_count * 0.25), px(b["hi"]) - 1, py(0)], fill=(215, 215, 215))
        d.rectangle([px(b["lo"]) + 3, py(b["frac_pos"]), px(b["hi"]) - 3, py(0)], outline=(31, 119, 180), width=2)
        cx = (px(b["lo"]) + px(b["hi"])) / 2
        d.ellipse([cx - 3, py(b["mean_prob"]) - 3, cx + 3, py(b["mean_prob"]) + 3], fill=(214, 39, 40))
    steps = 40
    for i in range(0, steps, 2):  # dashed diagonal: perfect calibration
        a, c = i / steps, (i + 1) / steps
        d.line([px(a), py(a), px(c), py(c)], fill=(0, 0, 0), width=1)
    d.rectangle([x0, y0, x1, y1], outline=(0, 0, 0))
    for t in (0.0, 0.5, 1.0):
        d.text((px(t) - 8, y1 + 6), f"{t:.1f}", fill=(0, 0, 0))
        d.text((4, py(t) - 6), f"{t:.1f}", fill=(0, 0, 0))
    d.text((x0, h - 16), "predicted probability (red dots: bin mean)", fill=(0, 0, 0))
    d.text((x0, 6), f"{title}  n={report.n} ECE={report.ece:.3f} acc={report.accuracy:.3f}", fill=(0, 0, 0))
    img.save(path, format="PNG")
    return path
