"""robomimic HDF5 import/export: a lab-style file made here (no downloads) imports; an export of
our episodes re-imports with identical arrays and metadata."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from robot_stack.store import EpisodeMeta, EpisodeStore
from robot_stack.store.robomimic_io import export_robomimic, import_robomimic
from robot_stack.store.synthetic import sim_like_images, synthetic_episode


def make_robomimic_file(path, n_demos=3):
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = '{"env_name": "Lift", "type": 1, "env_kwargs": {}}'
        total = 0
        for i in range(n_demos):
            T = 10 + i
            g = data.create_group(f"demo_{i}")
            g.create_dataset("obs/agentview_image", data=sim_like_images(T, 84, 84, seed=i))
            g.create_dataset("obs/robot0_eye_in_hand_image", data=sim_like_images(T, 84, 84, seed=10 + i))
            g.create_dataset("obs/robot0_eef_pos", data=rng.normal(size=(T, 3)))
            g.create_dataset("obs/robot0_gripper_qpos", data=rng.normal(size=(T, 2)))
            g.create_dataset("actions", data=rng.uniform(-1, 1, size=(T, 7)))
            rewards = np.zeros(T)
            rewards[-1] = 1.0
            g.create_dataset("rewards", data=rewards)
            g.create_dataset("dones", data=(rewards > 0).astype(np.int64))
            g.attrs["num_samples"] = T
            total += T
        data.attrs["total"] = total


def test_import_lab_robomimic_file(tmp_path):
    src = tmp_path / "lift_ph.hdf5"
    make_robomimic_file(src)
    store = EpisodeStore.create(tmp_path / "s.zarr")
    ids = import_robomimic(store, src, "prior-lift", instruction="lift the cube", state_keys=["robot0_eef_pos", "robot0_gripper_qpos"])
    assert ids == ["prior-lift:000000", "prior-lift:000001", "prior-lift:000002"]
    info = store.episode(ids[1])
    assert (info.task_id, info.data_source, info.outcome, info.outcome_source, info.length) == ("Lift", "prior", "success", "human", 11)
    assert set(info.cameras) == {"agentview", "robot0_eye_in_hand"}
    ep = store.read_episode(ids[1]).data
    with h5py.File(src) as f:
        d = f["data/demo_1"]
        np.testing.assert_array_equal(ep["images"]["agentview"], d["obs/agentview_image"][()])
        np.testing.assert_allclose(ep["state"], np.concatenate([d["obs/robot0_eef_pos"][()], d["obs/robot0_gripper_qpos"][()]], 1).astype(np.float32))
        np.testing.assert_allclose(ep["action"], d["actions"][()].astype(np.float32))
    assert ep["terminal"].tolist() == [False] * 10 + [True] and not ep["truncated"].any()
    with pytest.raises(ValueError, match="state key"):
        import_robomimic(store, src, "prior-lift-2", state_keys=["nope"])


def test_export_then_import_round_trip(tmp_path):
    cams = {"front": (32, 32), "wrist": (24, 24)}
    a = EpisodeStore.create(tmp_path / "a.zarr")
    w = a.writer("widowx-1", {"arm": "widowx250"}, cams, 8)
    for k in range(3):
        ep = w.begin_episode(EpisodeMeta(task_id="cube_into_bowl", phase=["forward", "backward"][k % 2], eval=k == 2,
                                         instruction="put the cube in the bowl", extra={"seed": k}))
        for s in synthetic_episode(9 + k, cams, 8, seed=k, intervention_span=(2, 4), success=k != 1):
            ep.add_step(**s)
        ep.commit(outcome="success" if k != 1 else "failure", intervention_reasons={0: "slipped"})
    w.close()
    a.relabel("widowx-1:000001", "success", by="alice", note="actually fine")
    out = tmp_path / "export.hdf5"
    assert export_robomimic(a, out, a.episodes()) == 3
    with h5py.File(out) as f:  # readable as plain robomimic
        assert sorted(f["data"]) == ["demo_0", "demo_1", "demo_2"]
        assert f["data/demo_0/obs/front_image"].shape == (9, 32, 32, 3) and f["data/demo_0/actions"].shape == (9, 7)
        assert f["data"].attrs["total"] == 9 + 10 + 11
    b = EpisodeStore.create(tmp_path / "b.zarr")
    ids = import_robomimic(b, out, "widowx-1-copy")
    for src, dst in zip(a.episodes(), (b.episode(i) for i in ids)):
        ea, eb = a.read_episode(src).data, b.read_episode(dst).data
        for cam in cams:
            np.testing.assert_array_equal(ea["images"][cam], eb["images"][cam])
        for key in ("state", "action", "reward", "success_prob", "intervention", "policy_version", "timestamp", "terminal", "truncated"):
            np.testing.assert_array_equal(ea[key], eb[key], err_msg=key)
        for field in ("task_id", "instruction", "phase", "eval", "outcome", "outcome_by", "extra", "policy_versions"):
            assert getattr(src, field) == getattr(dst, field), field
        assert [(l.kind, l.value, l.by, l.note) for l in src.labels] == [(l.kind, l.value, l.by, l.note) for l in dst.labels]
        assert src.intervention_segments == dst.intervention_segments
