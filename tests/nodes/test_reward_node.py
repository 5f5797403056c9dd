"""The reward node over real DDS with a real (tiny) classifier artefact on disk."""

import numpy as np
import pytest

from robot_stack.nodes.reward import RewardNode
from robot_stack.runtime import Node, msgs, qos

pytestmark = pytest.mark.processes
TASKS = [("put_cube_in_bowl", "put the cube in the bowl"), ("take_cube_out_of_bowl", "take the cube out of the bowl")]


def save_classifier(root, version, threshold=0.5, views=()):
    from reward_vlm import ConvClassifierConfig, ConvSuccessClassifier

    clf = ConvSuccessClassifier(TASKS, ConvClassifierConfig(image_size=16, channels=8, hidden=16), seed=version, views=views)
    clf.version = version
    clf.thresholds = {t: threshold for t, _ in TASKS}
    clf.save(root / f"v{version:04d}")
    return clf


def test_scores_every_task_per_frame_and_picks_up_new_versions(runtime, tmp_path):
    root = tmp_path / "classifier"
    clf1 = save_classifier(root, 1)
    node = runtime.create_node(RewardNode, params={"classifier": str(root), "rate_hz": 20.0, "reload_every_s": 0.5})
    probe = runtime.create_node(Node, name="probe")
    got = []
    probe.create_subscription(msgs.Float32MultiArray, "reward/success", got.append, qos.SENSOR_DATA)
    pub = probe.create_publisher(msgs.Image, "camera/front/image", qos.SENSOR_DATA)
    frame = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)

    def publish_until(pred):
        def step():
            pub.publish(msgs.Image.from_numpy(frame, "rgb8"))
            return pred()
        for _ in range(100):
            if runtime.spin_until(step, timeout_s=0.1):
                return True
        return False

    assert publish_until(lambda: {m.layout.dim[0].label for m in got} == {t for t, _ in TASKS})
    by_task = {m.layout.dim[0].label: m.data for m in got}
    expected = clf1.predict(np.stack([frame, frame]), [t for t, _ in TASKS])
    for (task, _), p in zip(TASKS, expected):
        prob, threshold, decision, version = by_task[task]
        assert prob == pytest.approx(p, abs=1e-5) and threshold == 0.5 and decision == float(p >= 0.5) and version == 1

    save_classifier(root, 2)
    assert publish_until(lambda: got[-1].data[3] == 2.0), "the node should switch to v2"
    assert node.classifier.version == 2


def test_corrupt_classifier_fails_at_start_up_and_a_bad_new_version_is_refused(runtime, tmp_path):
    from reward_vlm import ClassifierLoadError

    root = tmp_path / "classifier"
    save_classifier(root, 1)
    weights = next((root / "v0001").glob("*.safetensors"))
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])
    with pytest.raises(ClassifierLoadError):
        runtime.create_node(RewardNode, params={"classifier": str(root)})

    weights.write_bytes(good)
    node = runtime.create_node(RewardNode, params={"classifier": str(root), "reload_every_s": 0.2}, name="reward2")
    save_classifier(root, 2)
    (next((root / "v0002").glob("*.safetensors"))).write_bytes(b"garbage")
    node.maybe_reload()
    assert node.classifier.version == 1 and node.loaded_from.endswith("v0002")


def test_unknown_task_is_a_start_up_error(runtime, tmp_path):
    save_classifier(tmp_path / "c", 1)
    with pytest.raises(ValueError, match="open_drawer"):
        runtime.create_node(RewardNode, params={"classifier": str(tmp_path / "c"), "tasks": ["open_drawer"]})


def test_a_multi_view_classifier_scores_its_cameras_side_by_side(runtime, tmp_path):
    from reward_vlm import tile_views

    root = tmp_path / "classifier"
    clf = save_classifier(root, 1, views=("front", "wrist"))
    with pytest.raises(ValueError, match=r"sees cameras \['front', 'wrist'\] side by side"):
        runtime.create_node(RewardNode, params={"classifier": str(root)})  # default cameras: front only
    node = runtime.create_node(RewardNode, params={"classifier": str(root), "cameras": ["front", "wrist"], "rate_hz": 20.0},
                               name="reward_mv")
    scored_shapes = []
    predict = node.classifier.predict
    node.classifier.predict = lambda images, tasks: (scored_shapes.append(images.shape), predict(images, tasks))[1]
    probe = runtime.create_node(Node, name="probe_mv")
    got = []
    probe.create_subscription(msgs.Float32MultiArray, "reward/success", got.append, qos.SENSOR_DATA)
    pubs = {c: probe.create_publisher(msgs.Image, f"camera/{c}/image", qos.SENSOR_DATA) for c in ("front", "wrist")}
    rng = np.random.default_rng(1)
    frames = {c: rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for c in pubs}

    def step():
        for c, pub in pubs.items():
            pub.publish(msgs.Image.from_numpy(frames[c], "rgb8"))
        return {m.layout.dim[0].label for m in got[-2:]} == {t for t, _ in TASKS} and node.scored >= 3

    assert any(runtime.spin_until(step, timeout_s=0.1) for _ in range(100))
    tiled = tile_views([frames["front"], frames["wrist"]])
    expected = dict(zip([t for t, _ in TASKS], clf.predict(np.stack([tiled, tiled]), [t for t, _ in TASKS])))
    for m in got[-2:]:
        task = m.layout.dim[0].label
        assert m.data[0] == pytest.approx(expected[task], abs=1e-5)
    assert set(scored_shapes) == {(2, 32, 64, 3)}  # one tiled image per task, front on the left

    save_classifier(root, 2)  # a single-view version would need other cameras: refused, v1 kept
    save_classifier(root, 3, views=("wrist", "front"))
    node.maybe_reload()
    assert node.classifier.version == 1
