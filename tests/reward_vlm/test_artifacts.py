"""Missing or corrupt classifiers fail at load time with ClassifierLoadError naming the file."""

import json

import numpy as np
import pytest

from reward_vlm import ClassifierLoadError, ConvClassifierConfig, ConvSuccessClassifier, load_classifier, read_meta


@pytest.fixture
def saved(tmp_path):
    clf = ConvSuccessClassifier([("a", "put the cube in the bowl")], ConvClassifierConfig(image_size=16, channels=4, hidden=8))
    clf.metrics["eval"] = {"precision": float("nan")}
    return clf.save(tmp_path / "clf")


def test_metadata_fields(saved):
    meta = read_meta(saved)
    assert meta["family"] == "cnn" and meta["version"] == 1 and meta["temperature"] == 1.0
    assert meta["tasks"] == [{"id": "a", "instruction": "put the cube in the bowl"}]
    assert meta["thresholds"] == {"a": 0.5}
    assert set(meta["files"]) == {"model.safetensors"} and len(meta["files"]["model.safetensors"]["sha256"]) == 64
    text = (saved / "classifier.json").read_text()
    assert "NaN" not in text, "metadata must be strict JSON"
    assert meta["views"] == [] and load_classifier(saved).views == ()


def test_multi_view_classifier_keeps_its_views(tmp_path):
    """A classifier trained on tiled cameras must say which, so the reward node tiles the same way."""
    clf = ConvSuccessClassifier([("a", "put the cube in the bowl")], ConvClassifierConfig(image_size=16, channels=4, hidden=8),
                                views=("front", "wrist"))
    loaded = load_classifier(clf.save(tmp_path / "clf"))
    assert loaded.views == ("front", "wrist") and read_meta(tmp_path / "clf")["views"] == ["front", "wrist"]
    assert loaded.copy().views == ("front", "wrist")


def test_missing_directory(tmp_path):
    with pytest.raises(ClassifierLoadError, match="no such directory"):
        load_classifier(tmp_path / "nope")


def test_directory_without_model(tmp_path):
    with pytest.raises(ClassifierLoadError, match="neither a classifier artefact"):
        load_classifier(tmp_path)


def test_missing_weights(saved):
    (saved / "model.safetensors").unlink()
    with pytest.raises(ClassifierLoadError, match="missing model file 'model.safetensors'"):
        load_classifier(saved)


def test_flipped_byte_detected(saved):
    path = saved / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ClassifierLoadError, match="corrupt: sha256"):
        load_classifier(saved)


def test_truncated_weights(saved):
    path = saved / "model.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ClassifierLoadError, match="corrupt: 100 bytes"):
        load_classifier(saved)


def test_corrupt_json(saved):
    (saved / "classifier.json").write_text("{not json")
    with pytest.raises(ClassifierLoadError, match="classifier.json is corrupt"):
        load_classifier(saved)


def test_unsupported_format_version(saved):
    meta = json.loads((saved / "classifier.json").read_text())
    meta["format_version"] = 99
    (saved / "classifier.json").write_text(json.dumps(meta))
    with pytest.raises(ClassifierLoadError, match="format_version 99"):
        load_classifier(saved)


def test_weights_not_matching_architecture(saved):
    meta = json.loads((saved / "classifier.json").read_text())
    meta["config"]["cnn"]["channels"] = 8  # checksums still fine, shapes are not
    (saved / "classifier.json").write_text(json.dumps(meta))
    with pytest.raises(ClassifierLoadError, match="could not load cnn classifier"):
        load_classifier(saved)


def test_unknown_family(saved):
    meta = json.loads((saved / "classifier.json").read_text())
    meta["family"] = "magic"
    (saved / "classifier.json").write_text(json.dumps(meta))
    with pytest.raises(ClassifierLoadError, match="unknown classifier family 'magic'"):
        load_classifier(saved)


def test_hub_id_offline_fails_cleanly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ClassifierLoadError, match="could not load a VLM from 'no-such-org/no-such-vlm'"):
        load_classifier("no-such-org/no-such-vlm", tasks=[("a", "put the cube in the bowl")])


def test_hub_id_needs_tasks():
    with pytest.raises(ClassifierLoadError, match="no such directory .a hub id also needs tasks="):
        load_classifier("no-such-org/no-such-vlm")


def test_round_trip_after_overwrite_is_consistent(saved):
    clf = load_classifier(saved)
    x = np.random.default_rng(0).integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
    clf.version = 2
    clf.save(saved, overwrite=True)
    again = load_classifier(saved)
    assert again.version == 2
    np.testing.assert_array_equal(again.predict(x, 0), clf.predict(x, 0))
