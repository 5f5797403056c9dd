"""ReplayBuffer / MixedReplay: the COMMON.md "Replay batches" contract."""

import numpy as np
import pytest
import torch

from policies.replay import MixedReplay, ReplayBuffer, ReplayConfig


def episode(T, *, start=0.0, terminal=True, task=0, images=True, side=8, intervention=None, reward=None, cams=("front",)):
    """Step t's state is [start + t, ...] and its image is filled with (start + t) % 256: next-obs checks are exact."""
    values = start + np.arange(T, dtype=np.float32)
    ep = {
        "state": np.stack([values, values * 0 + task], axis=1),
        "action": np.tile(np.linspace(-1, 1, 7, dtype=np.float32), (T, 1)) * 0.5,
        "reward": np.zeros(T, np.float32) if reward is None else np.asarray(reward, np.float32),
        "terminal": np.r_[np.zeros(T - 1), float(terminal)].astype(bool),
        "truncated": np.r_[np.zeros(T - 1), float(not terminal)].astype(bool),
        "task": np.full(T, task),
    }
    if intervention is not None:
        ep["intervention"] = np.asarray(intervention, bool)
    if images:
        imgs = (values.astype(np.int64) % 256).astype(np.uint8)[:, None, None, None] * np.ones((1, side, side, 3), np.uint8)
        ep["image"] = {c: imgs for c in cams} if len(cams) > 1 else imgs
    return ep


def test_sample_keys_dtypes_and_next_obs():
    buf = ReplayBuffer(capacity=1000, gamma=0.9)
    buf.add_episode(episode(5, start=10, terminal=True, reward=[0, 0, 0, 0, 1]))
    buf.add_episode(episode(4, start=100, terminal=True, task=1))
    assert len(buf) == 9
    b = buf.sample(64, np.random.default_rng(0))
    assert b["image"].shape == (64, 8, 8, 3) and b["image"].dtype == np.uint8
    assert b["next_image"].dtype == np.uint8
    assert b["state"].dtype == np.float32 and b["state"].shape == (64, 2)
    assert b["action"].shape == (64, 7) and b["task"].dtype == np.int64 and b["intervention"].dtype == bool
    for k in ("reward", "done", "mc_return"):
        assert b[k].shape == (64,)
    not_last = b["done"] == 0
    np.testing.assert_array_equal(b["next_state"][not_last, 0], b["state"][not_last, 0] + 1)
    np.testing.assert_array_equal(b["next_image"][not_last, 0, 0, 0], b["image"][not_last, 0, 0, 0] + 1)
    # done only at the terminal last steps (states 14 and 103).
    assert set(b["state"][b["done"] == 1, 0]) <= {14.0, 103.0}
    # mc_return of episode 1 (success at t=4): 0.9^(4-t).
    first = b["state"][:, 0] < 50
    np.testing.assert_allclose(b["mc_return"][first], 0.9 ** (14 - b["state"][first, 0]), rtol=1e-6)
    # all-failure episode 2: r_neg / (1 - gamma) = 0
    np.testing.assert_array_equal(b["mc_return"][~first], 0.0)
    np.testing.assert_array_equal(b["task"], (b["state"][:, 0] >= 100).astype(int))


def test_an_episode_ends_at_its_first_success():
    """A scripted demo records settle frames after its first success (for the classifier), each
    with reward 1; online episodes end at the success. For the critic both end there."""
    buf = ReplayBuffer(capacity=100, gamma=0.9)
    buf.add_episode(episode(6, start=10, terminal=True, reward=[0, 0, 0, 1, 1, 1]))
    assert len(buf) == 4 and buf.steps_added == 4
    b = buf.sample(200, np.random.default_rng(0))
    assert set(b["state"][:, 0]) == {10.0, 11.0, 12.0, 13.0}
    assert (b["done"] == (b["state"][:, 0] == 13)).all() and b["reward"].sum() == (b["state"][:, 0] == 13).sum()
    np.testing.assert_allclose(b["mc_return"], 0.9 ** (13 - b["state"][:, 0]), rtol=1e-6)  # one reward, not 2.71
    keep_all = ReplayBuffer(ReplayConfig(capacity=100, gamma=0.9, end_at_first_success=False))
    keep_all.add_episode(episode(6, start=10, terminal=True, reward=[0, 0, 0, 1, 1, 1]))
    assert len(keep_all) == 6


def test_truncation_is_not_done_and_last_step_needs_final_obs():
    buf = ReplayBuffer(capacity=100)
    buf.add_episode(episode(5, terminal=False))
    assert len(buf) == 4  # the truncated last step has no next observation: not sampled
    ep = episode(5, start=50, terminal=False)
    ep["final_state"] = np.array([55.0, 0.0], np.float32)
    ep["final_image"] = np.full((8, 8, 3), 55, np.uint8)
    buf.add_episode(ep)
    assert len(buf) == 9
    b = buf.sample(500, np.random.default_rng(1))
    assert (b["done"] == 0).all()  # truncated is never done
    last = b["state"][:, 0] == 54
    assert last.any()
    assert (b["next_state"][last, 0] == 55).all() and (b["next_image"][last] == 55).all()


def test_multi_camera_dict_and_consistency_checks():
    buf = ReplayBuffer(capacity=100)
    buf.add_episode(episode(3, cams=("front", "wrist")))
    b = buf.sample(4, np.random.default_rng(0))
    assert set(b["image"]) == {"front", "wrist"} and b["image"]["wrist"].shape == (4, 8, 8, 3)
    with pytest.raises(ValueError, match="cameras"):
        buf.add_episode(episode(3, cams=("front", "top")))


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda e: e.update(action=e["action"][:-1]), "steps"),
        (lambda e: e["action"].__setitem__((0, 0), np.nan), "NaN"),
        (lambda e: e.update(image=e["image"].astype(np.float32)), "uint8"),
        (lambda e: e["terminal"].__setitem__(0, True), "only the last step"),
        (lambda e: e.pop("reward"), "reward"),
    ],
)
def test_bad_episodes_are_rejected_and_lose_nothing(change, match):
    buf = ReplayBuffer(capacity=100)
    buf.add_episode(episode(4))
    ep = episode(4, start=20)
    change(ep)
    with pytest.raises(ValueError, match=match):
        buf.add_episode(ep)
    assert len(buf) == 4 and buf.num_episodes == 1


def test_capacity_evicts_oldest_whole_episodes():
    buf = ReplayBuffer(capacity=20)
    for i in range(6):
        buf.add_episode(episode(6, start=100 * i, images=False))
    assert len(buf) <= 20
    b = buf.sample(1000, np.random.default_rng(0))
    episodes_seen = set((b["state"][:, 0] // 100).astype(int))
    assert 5 in episodes_seen and 0 not in episodes_seen
    np.testing.assert_array_equal(b["next_state"][b["done"] == 0, 0], b["state"][b["done"] == 0, 0] + 1)


def test_interventions_also_go_to_demo_buffer():
    demo = ReplayBuffer(capacity=100)
    rl = ReplayBuffer(capacity=100, demo_buffer=demo)
    inter = [0, 1, 1, 0, 0, 1, 1]  # two segments: steps 1-2 and 5-6 (6 is the terminal last step)
    rl.add_episode(episode(7, start=10, intervention=inter, reward=[0, 0, 0, 0, 0, 0, 1]))
    assert len(rl) == 7 and len(demo) == 4
    b = demo.sample(200, np.random.default_rng(0))
    assert set(b["state"][:, 0]) == {11.0, 12.0, 15.0, 16.0}
    assert b["intervention"].all()
    seg1 = b["state"][:, 0] == 12  # segment end inside the episode: next obs is step 13, not done
    assert (b["next_state"][seg1, 0] == 13).all() and (b["done"][seg1] == 0).all()
    assert (b["done"][b["state"][:, 0] == 16] == 1).all()
    # mc_return is the whole episode's return-to-go, not the segment's.
    np.testing.assert_allclose(b["mc_return"][seg1], 0.99**4, rtol=1e-6)
    mixed = MixedReplay({"rl": rl, "demo": demo}, {"rl": 0.5, "demo": 0.5})
    mb = mixed.sample(64, np.random.default_rng(0))
    assert (mb["source"] == 1).sum() == 32 and mb["intervention"][mb["source"] == 1].all()


def test_policy_steps_a_person_took_over_from_earn_no_return_of_their_own():
    """The operator corrected them: the rescued success must not make filtered BC imitate them or
    lift Cal-QL's lower bound on them. Steps the policy took after the person let go keep theirs."""
    from policies.losses import imitation_weights

    buf = ReplayBuffer(capacity=100, gamma=0.9)
    buf.add_episode(episode(7, start=10, intervention=[0, 0, 1, 1, 0, 0, 0], reward=[0, 0, 0, 0, 0, 0, 1], images=False))
    b = buf.gather(np.arange(7))
    np.testing.assert_allclose(b["mc_return"], [0.0, 0.0, 0.9**4, 0.9**3, 0.9**2, 0.9, 1.0], rtol=1e-6)
    weights = imitation_weights(torch.as_tensor(b["mc_return"]), torch.as_tensor(b["intervention"]), successes_only=True)
    assert weights.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    # a success the policy reached alone keeps every step's return
    buf.add_episode(episode(3, start=50, reward=[0, 0, 1], images=False))
    np.testing.assert_allclose(buf.gather(np.arange(8, 11))["mc_return"], [0.81, 0.9, 1.0], rtol=1e-6)


def test_mixed_replay_ratios_and_empty_sources():
    a, b = ReplayBuffer(capacity=100), ReplayBuffer(capacity=100)
    a.add_episode(episode(10, images=False))
    mixed = MixedReplay({"offline": a, "online": b}, {"offline": 0.5, "online": 0.5})
    assert mixed.counts(10) == {"offline": 10}  # online still empty: its share goes to offline
    b.add_episode(episode(10, start=100, images=False))
    assert mixed.counts(256) == {"offline": 128, "online": 128}
    assert MixedReplay({"offline": a, "online": b}, {"offline": 0.25, "online": 0.75}).counts(7) == {"offline": 2, "online": 5}
    batch = mixed.sample(256, np.random.default_rng(0))
    assert ((batch["state"][:, 0] >= 100) == (batch["source"] == 1)).all()
    with pytest.raises(ValueError, match="ratios"):
        MixedReplay({"offline": a}, {"online": 1.0})


def test_config_validation():
    with pytest.raises(ValueError, match="gamma"):
        ReplayConfig(gamma=1.0)
    with pytest.raises(ValueError, match="truncation_tail"):
        ReplayConfig(truncation_tail="maybe")


def test_chunked_transitions_span_h_steps_and_stop_at_the_episode_end():
    """action_chunk h: a transition's action is the next h actions (the last repeated past the
    end), its reward their discounted sum, its next observation the one after them; ``steps`` k
    says how many steps it spans, so the learner bootstraps with gamma^k."""
    buf = ReplayBuffer(ReplayConfig(capacity=100, gamma=0.5, action_chunk=3))
    ep = episode(5, start=10, terminal=True, reward=[0, 0, 0, 0, 1])
    ep["action"] = np.arange(5 * 7, dtype=np.float32).reshape(5, 7) / 100
    ep["final_state"], ep["final_image"] = np.array([15, 0], np.float32), np.full((8, 8, 3), 15, np.uint8)
    buf.add_episode(ep)
    b = buf.gather(np.arange(5))  # the episode's slots: t = 0..4
    np.testing.assert_array_equal(b["steps"], [3, 3, 3, 2, 1])
    np.testing.assert_array_equal(b["next_state"][:, 0], [13, 14, 15, 15, 15])  # 15: the observation after the last step
    np.testing.assert_array_equal(b["next_image"][:, 0, 0, 0], [13, 14, 15, 15, 15])
    np.testing.assert_array_equal(b["done"], [0, 0, 1, 1, 1])
    np.testing.assert_allclose(b["reward"], [0, 0, 0.25, 0.5, 1])  # the success at t=4, seen from t: 0.5^(4-t) within reach
    a = ep["action"]
    np.testing.assert_array_equal(b["action"][0], a[0:3].ravel())
    np.testing.assert_array_equal(b["action"][3], np.r_[a[3], a[4], a[4]])  # padded with the last action
    np.testing.assert_array_equal(b["action"][4], np.r_[a[4], a[4], a[4]])
    np.testing.assert_allclose(b["mc_return"], 0.5 ** (4 - np.arange(5)))  # step t's own return-to-go


def test_chunks_never_bootstrap_from_a_missing_final_observation():
    """A truncated episode without its final observation cannot bootstrap its last step, so a chunk
    stops before it; a sampled batch only ever holds spans inside one episode."""
    buf = ReplayBuffer(ReplayConfig(capacity=100, gamma=0.9, action_chunk=4))
    buf.add_episode(episode(5, start=10, terminal=False))  # t = 0..3 sampleable, t = 4 not
    buf.add_episode(episode(3, start=50, terminal=True, reward=[0, 0, 1]))
    b = buf.gather(np.arange(4))
    np.testing.assert_array_equal(b["steps"], [4, 3, 2, 1])
    np.testing.assert_array_equal(b["next_state"][:, 0], [14, 14, 14, 14])
    np.testing.assert_array_equal(b["done"], 0)
    s = buf.sample(500, np.random.default_rng(0))
    start, live = s["state"][:, 0], s["done"] == 0
    np.testing.assert_array_equal(s["next_state"][live, 0], (start + s["steps"])[live])
    assert set(start) == {10, 11, 12, 13, 50, 51, 52} and s["action"].shape == (500, 28)
    with pytest.raises(ValueError, match="action_chunk"):
        ReplayConfig(action_chunk=0)
