import numpy as np
import pytest

from reward_vlm import ConvClassifierConfig, ConvSuccessClassifier, TrainConfig, load_classifier

TASKS = [("cube_into_bowl", "put the cube in the bowl"), ("cube_out_of_bowl", "take the cube out of the bowl")]


def test_forward_shapes_and_per_task_heads(ring_data):
    x = ring_data[0][:10]
    clf = ConvSuccessClassifier(TASKS, ConvClassifierConfig(image_size=32))
    p0, p1 = clf.predict(x, 0), clf.predict(x, "cube_out_of_bowl")
    assert p0.shape == (10,) and p0.dtype == np.float32
    assert np.all((p0 > 0) & (p0 < 1))
    assert not np.allclose(p0, p1), "each task has its own head"
    mixed = clf.predict(x, [0, 1] * 5)
    np.testing.assert_allclose(mixed[::2], p0[::2], rtol=1e-5)
    np.testing.assert_allclose(mixed[1::2], p1[1::2], rtol=1e-5)


def test_fit_reduces_loss_and_generalises(ring_data):
    x, y, xt, yt = ring_data
    clf = ConvSuccessClassifier(TASKS[:1], ConvClassifierConfig(image_size=32))
    before = clf.loss(x, y, 0)
    stats = clf.fit(x, y, 0, cfg=TrainConfig(epochs=12, progress=False))
    assert stats.steps == 12 * 5
    assert clf.loss(x, y, 0) < 0.5 * before
    report = clf.evaluate(xt, yt, 0)
    assert report.accuracy >= 0.85, report


def test_save_load_round_trip_identical(ring_data, tmp_path):
    x, y, xt, _ = ring_data
    clf = ConvSuccessClassifier(TASKS, ConvClassifierConfig(image_size=32, channels=8, hidden=16))
    clf.fit(x[:64], y[:64], 0, cfg=TrainConfig(epochs=1, progress=False))
    clf.temperature, clf.thresholds["cube_into_bowl"] = 1.7, 0.8
    clf.metrics["note"] = "x"
    clf.save(tmp_path / "v1")
    loaded = load_classifier(tmp_path / "v1")
    assert isinstance(loaded, ConvSuccessClassifier)
    np.testing.assert_array_equal(loaded.predict(xt, 1), clf.predict(xt, 1))
    assert loaded.temperature == 1.7 and loaded.thresholds["cube_into_bowl"] == 0.8
    assert loaded.version == 1 and loaded.metrics["note"] == "x" and loaded.task_ids == [t[0] for t in TASKS]
    with pytest.raises(FileExistsError):
        clf.save(tmp_path / "v1")
    clf.save(tmp_path / "v1", overwrite=True)


def test_decide_uses_task_thresholds(ring_data):
    x = ring_data[0][:6]
    clf = ConvSuccessClassifier(TASKS, ConvClassifierConfig(image_size=32))
    probs = clf.predict(x, 0)
    clf.thresholds["cube_into_bowl"] = float(np.median(probs))
    p, ok = clf.decide(x, 0)
    np.testing.assert_array_equal(ok, probs >= np.median(probs))
    preds = clf.predict_with_rationale(x[:2], ["cube_into_bowl", "cube_out_of_bowl"])
    assert [q.task_id for q in preds] == ["cube_into_bowl", "cube_out_of_bowl"]
    assert "put the cube in the bowl" in preds[0].rationale and preds[0].prob == pytest.approx(float(p[0]), rel=1e-5)


def test_crop_ignores_pixels_outside_and_round_trips(tmp_path):
    cfg = ConvClassifierConfig(image_size=16, channels=4, hidden=8, crop=(0.5, 0.0, 0.5, 1.0))
    clf = ConvSuccessClassifier(TASKS[:1], cfg)
    x = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    y = x.copy()
    y[:, :16] = 255 - y[:, :16]  # top half is outside the crop
    np.testing.assert_array_equal(clf.predict(x, 0), clf.predict(y, 0))
    y[:, 20:] = 0
    assert not np.allclose(clf.predict(x, 0), clf.predict(y, 0))
    clf.save(tmp_path / "c")
    loaded = load_classifier(tmp_path / "c")
    assert loaded.cfg.crop == (0.5, 0.0, 0.5, 1.0)
    np.testing.assert_array_equal(loaded.predict(x, 0), clf.predict(x, 0))
    with pytest.raises(ValueError, match="crop"):
        ConvClassifierConfig(crop=(0.5, 0.0, 0.6, 1.0))


def test_training_path_sees_the_same_pixels_as_inference():
    """Frames prepared once for training (crop + resize) give the logits inference computes."""
    clf = ConvSuccessClassifier(TASKS, ConvClassifierConfig(image_size=24, channels=4, hidden=8, crop=(0.2, 0.1, 0.6, 0.7)))
    x = np.random.default_rng(1).integers(0, 255, (5, 50, 40, 3), dtype=np.uint8)
    import torch
    with torch.no_grad():
        clf._train_mode(False)
        train_path = clf._forward_logits(clf._training_frames(x), np.array([0, 1, 0, 1, 0]), prepared=True).numpy()
    np.testing.assert_allclose(train_path, clf.logits(x, [0, 1, 0, 1, 0]), rtol=1e-5, atol=1e-6)
