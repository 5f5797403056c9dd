import numpy as np
import pytest

from reward_vlm import (ConvSuccessClassifier, Episode, RewardTrainConfig, build_labelled_frames, load_classifier,
                        next_version_dir, split_by_episode, train_classifier, version_dirs)


def _episodes(x, y, per_episode=8):
    """Group synthetic frames into 'episodes' whose per-frame labels are ground truth."""
    return [Episode(x[i:i + per_episode], "in", None, "scripted", frame_labels=y[i:i + per_episode].astype(np.int8))
            for i in range(0, len(y), per_episode)]


def test_train_classifier_end_to_end(ring_data, tmp_path, artifacts_dir):
    x, y, _, _ = ring_data
    data = build_labelled_frames(_episodes(x, y), [("in", "put the cube in the bowl")])
    train, held = split_by_episode(data, 0.25, seed=0)
    assert not set(train.episode) & set(held.episode) and len(train) + len(held) == len(data)
    cfg = RewardTrainConfig(image_size=32, epochs=20, target_precision=0.95)
    clf, report = train_classifier(train, [("in", "put the cube in the bowl")], cfg, holdout=held,
                                   reliability_png=artifacts_dir / "reliability.png", progress=False)
    assert isinstance(clf, ConvSuccessClassifier)
    assert (artifacts_dir / "reliability.png").stat().st_size > 1000
    # thresholds were chosen on `held` for precision >= 0.95, so the report must show it
    assert report.precision >= 0.95 and report.recall > 0.5, report
    assert clf.metrics["calibration"]["tasks"]["in"]["attainable"]
    from reward_vlm import evaluate
    assert evaluate(clf.predict(held.images, 0), held.labels, 0.5).accuracy > 0.85
    assert clf.metrics["train"]["n_frames"] == len(train) and "calibration" in clf.metrics
    assert clf.thresholds["in"] >= 0.5
    root = tmp_path / "reward"
    clf.save(next_version_dir(root, clf.version))
    assert [p.name for p in version_dirs(root)] == ["v0001"]
    with pytest.raises(FileExistsError):
        next_version_dir(root, 1)
    assert load_classifier(version_dirs(root)[-1]).metrics["eval"]["accuracy"] == pytest.approx(report.accuracy)


def test_config_errors():
    with pytest.raises(ValueError, match="base_model is required"):
        RewardTrainConfig(family="vlm_yesno")
    with pytest.raises(ValueError, match="family"):
        RewardTrainConfig(family="svm")


def test_a_task_without_held_out_successes_never_says_success(ring_data):
    """No held-out positive shows any threshold reaches the precision target: the classifier must
    not claim success for that task (the old 0.5 default fired on an uncalibrated model)."""
    x, y, _, _ = ring_data
    clf = ConvSuccessClassifier([("in", "put the cube in the bowl")], seed=0)
    summary = clf.calibrate(x[:16], np.zeros(16), 0, target_precision=0.99)
    assert clf.thresholds["in"] == 1.0 and summary["tasks"]["in"]["attainable"] is False
    assert not clf.decide(x, 0)[1].any()
