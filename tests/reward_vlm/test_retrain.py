import numpy as np

from reward_vlm import ConvClassifierConfig, ConvSuccessClassifier, LabelledFrames, TrainConfig, load_classifier, retrain_on_disagreements


def test_retrain_fixes_disagreements_and_bumps_version(ring_data, tmp_path):
    x, y, xt, yt = ring_data
    clf = ConvSuccessClassifier([("in", "put the cube in the bowl")], ConvClassifierConfig(image_size=32))
    # a weak first version: only a couple of steps
    clf.fit(x[:128], y[:128], 0, cfg=TrainConfig(epochs=1, max_steps=2, progress=False))
    before = clf.predict(xt, 0)
    human_x, human_y = x[128:], y[128:]
    _, decided = clf.decide(human_x, 0)
    n_disagree = int((decided != human_y.astype(bool)).sum())
    assert n_disagree > 10
    replay = LabelledFrames(x[:128], y[:128], np.zeros(128, np.int64), np.ones(128, np.float32),
                            np.zeros(128, np.int64), np.arange(128), np.zeros(128, bool))
    holdout = LabelledFrames(xt, yt, np.zeros(len(yt), np.int64), np.ones(len(yt), np.float32),
                             np.zeros(len(yt), np.int64), np.arange(len(yt)), np.zeros(len(yt), bool))
    new = retrain_on_disagreements(clf, human_x, human_y, replay=replay, holdout=holdout, target_precision=0.95,
                                   cfg=TrainConfig(epochs=8, progress=False))
    assert new.version == 2 and new.parent_version == 1
    r = new.metrics["retrain"]
    assert r["n_disagreements_before"] == n_disagree
    assert r["n_disagreements_after"] < n_disagree / 3
    assert new.metrics["eval"]["accuracy"] > 0.8
    np.testing.assert_array_equal(clf.predict(xt, 0), before)  # the old version is untouched
    new.save(tmp_path / "v2")
    assert load_classifier(tmp_path / "v2").version == 2
