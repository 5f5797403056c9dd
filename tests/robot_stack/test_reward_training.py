"""Classifier training data from a real store: outcome labels and reset-free reverse-task labels."""

import numpy as np

from reward_vlm import LabelRule, build_labelled_frames
from reward_vlm.train import split_by_episode
from robot_stack.reward.training import RewardDataConfig, labelled_episodes, reverse_map
from robot_stack.session.scheduler import TaskSpec
from robot_stack.store import EpisodeMeta, EpisodeStore

FWD = TaskSpec("put_cube_in_bowl", "put the cube in the bowl", "forward")
BWD = TaskSpec("take_cube_out_of_bowl", "take the cube out of the bowl", "backward")


def record(writer, task, outcome, source, n=8):
    rec = writer.begin_episode(EpisodeMeta(task_id=task.id, instruction=task.instruction, phase=task.phase))
    for t in range(n):
        rec.add_step(images={"front": np.full((8, 8, 3), t, np.uint8)}, state=np.zeros(3, np.float32),
                     action=np.zeros(7, np.float32), terminal=t == n - 1 and outcome == "success")
    return rec.commit(outcome=outcome, source=source)


def test_successful_episodes_also_label_the_reverse_task(tmp_path):
    store = EpisodeStore.create(tmp_path / "s.zarr")
    w = store.writer("r", {}, {"front": (8, 8)}, 3)
    record(w, FWD, "success", "scripted")
    record(w, BWD, "failure", "scripted")
    record(w, BWD, "success", "classifier")  # untrusted source: skipped
    w.close()
    assert reverse_map([FWD, BWD]) == {FWD.id: BWD.id, BWD.id: FWD.id}
    eps = labelled_episodes(store, [FWD.id, BWD.id], RewardDataConfig(reverse_frames=2), reverse_map([FWD, BWD]))
    assert [(e.task, e.outcome) for e in eps] == [(FWD.id, True), (BWD.id, None), (BWD.id, False)]
    rev = eps[1]
    # first frames (forward not yet done = cube out of the bowl) are positives for the reverse task
    assert rev.frame_labels.tolist() == [1, 1, 0, 0]
    assert [int(f[0, 0, 0]) for f in rev.frames] == [0, 1, 6, 7]
    assert len(labelled_episodes(store, [FWD.id, BWD.id], RewardDataConfig(reverse_frames=0), reverse_map([FWD, BWD]))) == 2
    # Both entries of one recording are one group: a held-out split never sees half of it.
    assert eps[0].group == eps[1].group != eps[2].group
    data = build_labelled_frames(eps, [FWD, BWD], LabelRule(positive_frames=2, margin_frames=0))
    assert sorted(set(data.episode.tolist())) == [0, 2]
    for seed in range(5):
        train, held = split_by_episode(data, 0.5, seed)
        assert set(train.episode.tolist()).isdisjoint(held.episode.tolist())
        assert len(train) + len(held) == len(data) and {len(train), len(held)} == {len(data.subset(data.episode == 0)), 8}



def test_margin_frames_decide_whether_frames_just_before_success_are_negatives(tmp_path):
    """Scripted episodes know their success onset exactly (margin 0: "cube held just above the
    bowl" is a negative); classifier-ended ones keep a margin of unlabelled frames before it."""
    store = EpisodeStore.create(tmp_path / "s.zarr")
    w = store.writer("r", {}, {"front": (8, 8)}, 3)
    record(w, FWD, "success", "scripted", n=16)
    w.close()
    negatives = {}
    for margin in (0, 3):
        cfg = RewardDataConfig(reverse_frames=0, margin_frames=margin)
        data = build_labelled_frames(labelled_episodes(store, [FWD.id, BWD.id], cfg), [FWD, BWD], cfg.label_rule())
        negatives[margin] = set(data.frame[data.labels == 0].tolist())
    first_positive = 16 - LabelRule().positive_frames
    assert negatives[0] - negatives[3] == {first_positive - 3, first_positive - 2, first_positive - 1}
    with np.testing.assert_raises(ValueError):
        RewardDataConfig(margin_frames=-1)


def test_several_cameras_are_tiled_into_one_frame_in_their_order(tmp_path):
    store = EpisodeStore.create(tmp_path / "s.zarr")
    w = store.writer("r", {}, {"front": (8, 8), "wrist": (8, 8)}, 3)
    rec = w.begin_episode(EpisodeMeta(task_id=FWD.id, instruction=FWD.instruction, phase=FWD.phase))
    for t in range(6):
        rec.add_step(images={"front": np.full((8, 8, 3), t, np.uint8), "wrist": np.full((8, 8, 3), 100 + t, np.uint8)},
                     state=np.zeros(3, np.float32), action=np.zeros(7, np.float32), terminal=t == 5)
    rec.commit(outcome="success", source="scripted")
    w.close()
    cfg = RewardDataConfig(cameras=("wrist", "front"), reverse_frames=2)
    eps = labelled_episodes(store, [FWD.id, BWD.id], cfg, reverse_map([FWD, BWD]))
    assert [e.frames.shape for e in eps] == [(6, 8, 16, 3), (4, 8, 16, 3)]
    assert eps[0].frames[2, 0, 0, 0] == 102 and eps[0].frames[2, 0, 15, 0] == 2  # wrist left, front right
    assert labelled_episodes(store, [FWD.id], RewardDataConfig(cameras=("front", "side"))) == []  # no such camera: skipped
    with np.testing.assert_raises(ValueError):
        RewardDataConfig(cameras=("front", "front"))
