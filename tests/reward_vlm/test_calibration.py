import numpy as np
import pytest
from PIL import Image

from reward_vlm import evaluate, fit_temperature, reliability_plot_png, threshold_for_precision
from reward_vlm.calibration import nll, sigmoid


def _calibrated_case(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(0, 2, n)
    labels = (rng.random(n) < sigmoid(true_logits)).astype(float)
    return true_logits, labels


def test_temperature_softens_overconfident_model():
    z, y = _calibrated_case()
    t = fit_temperature(4.0 * z, y)  # logits 4x too large
    assert 3.2 < t < 4.8
    assert nll(4.0 * z, y, t) < nll(4.0 * z, y, 1.0)


def test_temperature_sharpens_underconfident_model():
    z, y = _calibrated_case(seed=1)
    t = fit_temperature(0.25 * z, y)
    assert 0.2 < t < 0.3


def test_temperature_near_one_when_calibrated():
    z, y = _calibrated_case(seed=2)
    assert 0.85 < fit_temperature(z, y) < 1.15


def test_threshold_for_precision_hand_made():
    probs = np.array([0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.55, 0.3])
    labels = np.array([1, 1, 0, 1, 1, 0, 1, 0])
    # precision at cut 0.9: 2/2; at 0.85: 2/3; at 0.8: 3/4; at 0.7: 4/5 ; at 0.55: 5/7
    c = threshold_for_precision(probs, labels, target_precision=1.0)
    assert c.threshold == 0.9 and c.precision == 1.0 and c.recall == pytest.approx(2 / 5) and c.attainable
    c = threshold_for_precision(probs, labels, target_precision=0.75)
    assert c.threshold == 0.7 and c.precision == pytest.approx(0.8) and c.recall == pytest.approx(4 / 5)
    c = threshold_for_precision(probs, labels, target_precision=0.7)
    assert c.threshold == 0.55 and c.recall == 1.0
    # min_threshold keeps the cut above 0.75 even though 0.7 qualifies
    assert threshold_for_precision(probs, labels, 0.75, min_threshold=0.75).threshold == 0.8


def test_threshold_unattainable_and_ties():
    probs = np.array([0.9, 0.9, 0.2])
    labels = np.array([1, 0, 1])  # the tie at 0.9 cannot be split: precision 0.5
    c = threshold_for_precision(probs, labels, target_precision=0.99)
    assert not c.attainable and c.threshold == 1.0 and c.recall == 0.0  # never says success
    with pytest.raises(ValueError, match="target_precision"):
        threshold_for_precision(probs, labels, 0.0)


def test_evaluate_metrics_hand_made():
    probs = np.array([0.9, 0.8, 0.4, 0.3, 0.6, 0.1])
    labels = np.array([1, 1, 1, 0, 0, 0])
    r = evaluate(probs, labels, 0.5)  # TP=2 FN=1 FP=1 TN=2
    assert (r.accuracy, r.precision, r.recall, r.fpr, r.fnr) == pytest.approx((4 / 6, 2 / 3, 2 / 3, 1 / 3, 1 / 3))
    r2 = evaluate(probs, labels, np.array([0.95, 0.5, 0.3, 0.5, 0.5, 0.5]))  # per-frame thresholds
    assert r2.recall == pytest.approx(2 / 3) and r2.precision == pytest.approx(2 / 3)
    assert sum(b["count"] for b in r.bins) == 6


def test_reliability_png(artifacts_dir):
    z, y = _calibrated_case(n=2000, seed=3)
    report = evaluate(sigmoid(3 * z), y)
    path = reliability_plot_png(report, artifacts_dir / "reliability.png", title="overconfident")
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape == (360, 360, 3)
    blue = np.all(img == (31, 119, 180), axis=-1).sum()
    red = np.all(img == (214, 39, 40), axis=-1).sum()
    assert blue > 100 and red > 20, "bars and bin means are drawn"
    assert report.ece > evaluate(sigmoid(z), y).ece
