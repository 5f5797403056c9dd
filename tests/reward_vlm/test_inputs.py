"""Bad input at the public edge gets a clear error naming the problem."""

import numpy as np
import pytest

from reward_vlm import ConvClassifierConfig, ConvSuccessClassifier, RewardInputError, UnknownTaskError


@pytest.fixture(scope="module")
def clf():
    return ConvSuccessClassifier([("a", "put the cube in the bowl"), ("b", "take it out")], ConvClassifierConfig(image_size=16, channels=4, hidden=8))


OK = np.zeros((2, 20, 20, 3), np.uint8)


@pytest.mark.parametrize("images, match", [
    (np.zeros((2, 20, 20, 3), np.float32), "uint8"),
    (np.zeros((20, 20, 3), np.uint8), "add a batch axis"),
    (np.zeros((2, 20, 20, 4), np.uint8), r"\(B, H, W, 3\)"),
    (np.zeros((2, 3, 20, 20), np.uint8), r"\(B, H, W, 3\)"),
    (np.zeros((0, 20, 20, 3), np.uint8), "empty batch"),
    (np.zeros((1, 4, 4, 3), np.uint8), "at least"),
    ([[0]], "numpy array"),
])
def test_bad_images(clf, images, match):
    with pytest.raises(RewardInputError, match=match):
        clf.predict(images, 0)


@pytest.mark.parametrize("task_ids, err, match", [
    ("c", UnknownTaskError, r"unknown task 'c'.*\['a', 'b'\]"),
    (2, UnknownTaskError, "unknown task index 2"),
    ([0, 1, 0], RewardInputError, "3 task ids for 2 images"),
    ([0.5, 1], RewardInputError, "str id or an int index"),
    (True, RewardInputError, "boolean"),
])
def test_bad_task_ids(clf, task_ids, err, match):
    with pytest.raises(err, match=match):
        clf.predict(OK, task_ids)


def test_bad_labels_and_weights(clf):
    with pytest.raises(RewardInputError, match="labels must have shape"):
        clf.fit(OK, np.zeros(3), 0)
    with pytest.raises(RewardInputError, match="0/1"):
        clf.fit(OK, np.array([0.0, 2.0]), 0)
    with pytest.raises(RewardInputError, match="weights"):
        clf.fit(OK, np.array([0, 1]), 0, weights=np.array([1.0, np.nan]))


def test_config_validation():
    with pytest.raises(ValueError, match="image_size"):
        ConvClassifierConfig(image_size=4)
    from reward_vlm import TrainConfig
    with pytest.raises(ValueError, match="TrainConfig.lr"):
        TrainConfig(lr=0)
    with pytest.raises(ValueError, match="unique"):
        ConvSuccessClassifier([("a", "x"), ("a", "y")])
