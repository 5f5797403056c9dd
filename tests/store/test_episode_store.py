"""In-process tests of the episode store on a real zarr directory: round trip, layout, commit
protocol, partial episodes, relabelling, filters and clear errors on damage."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from robot_stack.store import (
    EpisodeMeta,
    EpisodeNotFoundError,
    EpisodeReadError,
    EpisodeStore,
    IncompatibleStoreError,
    StoreConfig,
    StoreError,
    WriterConflictError,
)
from robot_stack.store.synthetic import synthetic_episode

CAMS = {"front": (32, 40), "wrist": (16, 16)}
S = 9


def write_episode(w, steps, **meta):
    ep = w.begin_episode(EpisodeMeta(**{"task_id": "cube_into_bowl", **meta}))
    for s in steps:
        ep.add_step(**s)
    return ep


@pytest.fixture
def store(tmp_path):
    return EpisodeStore.create(tmp_path / "ep.zarr")


@pytest.fixture
def writer(store):
    w = store.writer("widowx-1", {"arm": "widowx250", "serial": "x"}, CAMS, S,
                     camera_descriptions={"front": {"serial": "123"}})
    yield w
    w.close()


def test_round_trip_exact_arrays_and_metadata(store, writer):
    steps = synthetic_episode(23, CAMS, S, seed=3, intervention_span=(4, 9))
    eid = write_episode(writer, steps, instruction="put the cube in the bowl", phase="backward").commit(
        outcome="success", source="classifier", intervention_reasons={0: "cube slipped"})
    assert eid == "widowx-1:000000"
    reader = EpisodeStore.open(store.url, read_only=True)
    ep = reader.read_episode(eid)
    for cam in CAMS:
        assert ep.data["images"][cam].dtype == np.uint8
        np.testing.assert_array_equal(ep.data["images"][cam], np.stack([s["images"][cam] for s in steps]))
    for key, dtype in [("state", np.float32), ("action", np.float32), ("reward", np.float32), ("timestamp", np.float64),
                       ("intervention", bool), ("terminal", bool), ("truncated", bool), ("policy_version", np.int64)]:
        np.testing.assert_array_equal(ep.data[key], np.asarray([s[key] for s in steps], dtype=dtype))
    info = ep.info
    assert (info.start, info.end, info.length) == (0, 23, 23)
    assert info.phase == "backward" and info.instruction == "put the cube in the bowl"
    assert info.outcome == "success" and info.outcome_source == "classifier" and info.outcome_by == "actor:widowx-1"
    assert [(s.start, s.end, s.reason) for s in info.intervention_segments] == [(4, 9, "cube slipped")]
    assert info.robot_description == {"arm": "widowx250", "serial": "x"}
    assert info.cameras["front"] == {"shape": [32, 40, 3], "description": {"serial": "123"}}
    assert info.policy_versions == [0]


def test_steps_are_copied_at_add_time(store, writer):
    steps = synthetic_episode(3, CAMS, S)
    buf = steps[0]["images"]["front"].copy()
    state = steps[0]["state"].copy()
    ep = writer.begin_episode(EpisodeMeta(task_id="t"))
    ep.add_step(**{**steps[0], "images": {**steps[0]["images"], "front": buf}, "state": state})
    buf[:] = 0  # a camera driver reusing its frame buffer
    state[:] = 123
    eid = ep.commit()
    data = store.read_episode(eid).data
    np.testing.assert_array_equal(data["images"]["front"][0], steps[0]["images"]["front"])
    np.testing.assert_array_equal(data["state"][0], steps[0]["state"])


def test_layout_follows_replay_buffer_convention(store, writer, tmp_path):
    for k in range(3):
        write_episode(writer, synthetic_episode(5 + k, CAMS, S, seed=k)).commit()
    root = tmp_path / "ep.zarr" / "widowx-1"
    meta = json.loads((root / "data" / "image_front" / "zarr.json").read_text())
    assert meta["chunk_grid"]["configuration"]["chunk_shape"][1:] == [32, 40, 3]  # chunked in time only
    assert meta["chunk_key_encoding"] == {"name": "default", "configuration": {"separator": "."}}
    codecs = [c["name"] for c in meta["codecs"]]
    assert "zstd" in codecs and not any("shuffle" in c for c in codecs)
    assert (root / "data" / "image_front" / "c.0.0.0.0").is_file()
    ends = EpisodeStore.open(store.url)._backend.read_frames("widowx-1/meta/episode_ends", 0, 3)
    assert ends.tolist() == [5, 11, 18]  # cumulative, Diffusion Policy's meta/episode_ends


def test_uncommitted_episode_invisible_and_discard(store, writer):
    write_episode(writer, synthetic_episode(4, CAMS, S)).commit()
    ep = write_episode(writer, synthetic_episode(6, CAMS, S, seed=1))
    ep.flush()  # partial data lands in the arrays beyond the marker
    reader = EpisodeStore.open(store.url)
    assert [i.episode_id for i in reader.episodes()] == ["widowx-1:000000"]
    assert reader._backend.length("widowx-1/data/state", fresh=True) == 10  # rows exist, yet not visible
    with pytest.raises(EpisodeNotFoundError, match="not committed"):
        reader.episode("widowx-1:000001")
    ep.discard()
    assert reader._backend.length("widowx-1/data/state", fresh=True) == 4  # trimmed back to the marker
    eid = write_episode(writer, synthetic_episode(3, CAMS, S, seed=2)).commit()
    assert eid == "widowx-1:000001" and reader.episode(eid).length == 3


@pytest.mark.parametrize("policy", ["recover", "drop"])
def test_partial_episode_on_restart(tmp_path, policy):
    store = EpisodeStore.create(tmp_path / "s.zarr")
    w = store.writer("r", {}, CAMS, S, flush_interval_s=1e-6)  # flush on every step
    write_episode(w, synthetic_episode(5, CAMS, S)).commit(outcome="failure")
    steps = synthetic_episode(8, CAMS, S, seed=9)
    ep = write_episode(w, steps[:6])  # crash after 6 steps: no commit, no close
    del ep, w
    w2 = store.writer("r", takeover=True, partial_policy=policy)
    infos = EpisodeStore.open(store.url).episodes()
    if policy == "drop":
        assert [i.length for i in infos] == [5]
        assert w2.store._backend.length("r/data/image_front", fresh=True) == 5  # trimmed back to the marker
    else:
        assert [i.length for i in infos] == [5, 6]
        rec = infos[1]
        assert rec.recovered and rec.outcome is None
        data = EpisodeStore.open(store.url).read_episode(rec.episode_id).data
        assert data["truncated"].tolist() == [False] * 5 + [True]
        np.testing.assert_array_equal(data["images"]["front"], np.stack([s["images"]["front"] for s in steps[:6]]))
    eid = write_episode(w2, synthetic_episode(4, CAMS, S, seed=4)).commit()
    assert EpisodeStore.open(store.url).read_episode(eid).info.length == 4
    w2.close()


def test_recovered_episode_that_had_ended_stays_terminal(tmp_path):
    store = EpisodeStore.create(tmp_path / "s.zarr")
    w = store.writer("r", {}, CAMS, S, flush_interval_s=1e-6)
    write_episode(w, synthetic_episode(5, CAMS, S))  # all 5 steps flushed, last one terminal; crash before commit
    del w
    store.writer("r", takeover=True).close()
    (info,) = store.episodes()
    data = store.read_episode(info).data
    assert info.recovered and data["terminal"][-1] and not data["truncated"].any()


def test_relabel_keeps_history_and_never_touches_arrays(store, writer, tmp_path):
    eid = write_episode(writer, synthetic_episode(12, CAMS, S, intervention_span=(2, 5))).commit(outcome="success")
    group = tmp_path / "ep.zarr" / "widowx-1"
    # Arrays, the commit marker (the group's zarr.json) and episode documents are never rewritten.
    watched = [p for p in group.rglob("*") if p.is_file() and "labels" not in p.parts]
    before = {p: p.stat().st_mtime_ns for p in watched}
    other = EpisodeStore.open(store.url)  # e.g. the dashboard process
    other.relabel(eid, "failure", by="alice", note="cube fell out")
    other.relabel(eid, "success", by="bob", source="human")
    other.label_intervention(eid, 0, "gripper about to collide", by="alice")
    after = {p: p.stat().st_mtime_ns for p in watched}
    assert before == after and group / "zarr.json" in before
    info = EpisodeStore.open(store.url).episode(eid)
    assert [(l.kind, l.value, l.source, l.by) for l in info.labels] == [
        ("outcome", "success", "classifier", "actor:widowx-1"),
        ("outcome", "failure", "human", "alice"),
        ("outcome", "success", "human", "bob"),
        ("intervention_reason", "gripper about to collide", "human", "alice"),
    ]
    assert info.labels[1].note == "cube fell out" and info.labels[1].time <= info.labels[2].time
    assert info.outcome == "success" and info.outcome_by == "bob"
    assert info.intervention_segments[0].reason == "gripper about to collide"
    with pytest.raises(ValueError, match="outcome"):
        other.relabel(eid, "maybe", by="x")
    with pytest.raises(ValueError, match="no segment 3"):
        other.label_intervention(eid, 3, "r", by="x")
    with pytest.raises(EpisodeNotFoundError):
        other.relabel("widowx-1:000099", "success", by="x")


def test_label_being_written_is_skipped_until_its_metadata_lands(store, writer, tmp_path):
    """A reader listing labels between the writer's mkdir and its metadata rename must not fail."""
    eid = write_episode(writer, synthetic_episode(4, CAMS, S)).commit(outcome="failure")
    reader = EpisodeStore.open(store.url)
    in_flight = tmp_path / "ep.zarr" / "widowx-1" / "labels" / "000000.1.deadbeef"
    in_flight.mkdir(parents=True)
    assert reader.episode(eid).outcome == "failure"
    store.relabel(eid, "success", by="alice")
    assert reader.episode(eid).outcome == "success"  # a later relabel is still picked up


def test_filters(store, writer):
    specs = [
        dict(phase="forward", eval=False, task_id="a", outcome="success", span=None, pv=0),
        dict(phase="backward", eval=False, task_id="b", outcome="failure", span=(1, 3), pv=1),
        dict(phase="forward", eval=True, task_id="a", outcome=None, span=None, pv=2),
        dict(phase="backward", eval=False, task_id="a", outcome="success", span=(0, 2), pv=2),
    ]
    w2 = store.writer("franka-1", {}, {"front": (8, 8)}, 4)
    for k, sp in enumerate(specs):
        steps = synthetic_episode(6, CAMS, S, seed=k, intervention_span=sp["span"])
        for s in steps:
            s["policy_version"] = sp["pv"]
        write_episode(writer, steps, phase=sp["phase"], eval=sp["eval"], task_id=sp["task_id"]).commit(outcome=sp["outcome"])
    write_episode(w2, synthetic_episode(3, {"front": (8, 8)}, 4), data_source="demo").commit(outcome="success", source="human")
    r = EpisodeStore.open(store.url)
    ids = lambda **f: [i.index for i in r.episodes(**f) if i.robot_id == "widowx-1"]
    assert ids(phase="backward") == [1, 3]
    assert ids(eval=False) == [0, 1, 3]
    assert ids(task_id="a", eval=False) == [0, 3]
    assert ids(outcome="success") == [0, 3] and ids(outcome="unknown") == [2]
    assert ids(policy_version=2) == [2, 3]
    assert ids(has_intervention=True) == [1, 3]
    assert [i.episode_id for i in r.episodes(robot="franka-1")] == ["franka-1:000000"]
    assert [i.robot_id for i in r.episodes(data_source="demo")] == ["franka-1"]
    r.relabel("widowx-1:000002", "failure", by="carol")
    assert ids(outcome="failure") == [1, 2]
    w2.close()


def test_poll_cursor(store, writer):
    r = EpisodeStore.open(store.url)
    new, cur = r.poll()
    assert new == []
    a = write_episode(writer, synthetic_episode(3, CAMS, S)).commit()
    b = write_episode(writer, synthetic_episode(3, CAMS, S)).commit()
    new, cur = r.poll(cur)
    assert [i.episode_id for i in new] == [a, b]
    new, cur2 = r.poll(cur)
    assert new == [] and cur2.to_dict() == {"widowx-1": 2}
    c = write_episode(writer, synthetic_episode(3, CAMS, S)).commit()
    assert [i.episode_id for i in r.poll(type(cur).from_dict(cur.to_dict()))[0]] == [c]


def test_bad_steps_rejected_with_field_names(writer):
    ep = write_episode(writer, [])
    good = synthetic_episode(1, CAMS, S)[0]
    with pytest.raises(ValueError, match="action contains NaN"):
        ep.add_step(**{**good, "action": np.full(7, np.nan, np.float32)})
    with pytest.raises(ValueError, match=r"state must have shape \(9,\)"):
        ep.add_step(**{**good, "state": np.zeros(3)})
    with pytest.raises(ValueError, match=r"images\['front'\] must be a \(32, 40, 3\) uint8"):
        ep.add_step(**{**good, "images": {**good["images"], "front": np.zeros((32, 40, 3), np.float32)}})
    with pytest.raises(ValueError, match="cameras"):
        ep.add_step(**{**good, "images": {"front": good["images"]["front"]}})
    with pytest.raises(StoreError, match="empty episode"):
        ep.commit()
    with pytest.raises(StoreError, match="already open"):
        writer.begin_episode(EpisodeMeta(task_id="t"))
    ep.discard()
    with pytest.raises(ValueError, match="phase"):
        EpisodeMeta(task_id="t", phase="sideways")
    with pytest.raises(ValueError, match="JSON"):
        writer.begin_episode(EpisodeMeta(task_id="t", extra={"x": object()}))
    with pytest.raises(ValueError, match="partial_policy"):
        StoreConfig(partial_policy="keep")


def test_layout_mismatch_and_writer_conflict(store, writer):
    with pytest.raises(StoreError, match="cameras"):
        store.writer("widowx-1", {}, {"front": (64, 64)}, S)
    import subprocess
    import sys

    # A live writer in another process holds the group: a second writer is refused.
    script = ("import sys,time; from robot_stack.store import EpisodeStore; "
              "w=EpisodeStore.open(sys.argv[1]).writer('franka-2', {}, {'c': (4, 4)}, 3); print('ok', flush=True); time.sleep(30)")
    p = subprocess.Popen([sys.executable, "-c", script, store.url], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ok"
        with pytest.raises(WriterConflictError, match="pid"):
            store.writer("franka-2")
    finally:
        p.kill()
        p.wait()


def test_incompatible_version_and_not_a_store(tmp_path, store, writer):
    write_episode(writer, synthetic_episode(3, CAMS, S)).commit()
    b = store._backend
    attrs = b.read_attrs("")
    attrs["format"]["version"] = 99
    b.write_attrs("", attrs)
    with pytest.raises(IncompatibleStoreError, match="format version 99"):
        EpisodeStore.open(store.url)
    attrs["format"]["version"] = 1
    b.write_attrs("", attrs)
    robot = b.read_attrs("widowx-1")
    robot["format"]["version"] = 2
    b.write_attrs("widowx-1", robot)
    with pytest.raises(IncompatibleStoreError, match=r"robot 'widowx-1'.*version 2"):
        EpisodeStore.open(store.url).episodes()
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group", "attributes": {}}')
    with pytest.raises(IncompatibleStoreError, match="not a robot_stack episode store"):
        EpisodeStore.open(tmp_path / "plain")
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / ".zgroup").write_text('{"zarr_format": 2}')
    with pytest.raises(IncompatibleStoreError, match="zarr v2"):
        EpisodeStore.open(tmp_path / "v2")
    with pytest.raises(StoreError, match="no episode store"):
        EpisodeStore.open(tmp_path / "nothing")


def _three_episodes(writer, n=40):
    return [write_episode(writer, synthetic_episode(n, CAMS, S, seed=k)).commit() for k in range(3)]


def test_corrupt_chunk_names_episode_and_array_rest_readable(tmp_path, store, writer):
    ids = _three_episodes(writer)  # image chunks hold 32 frames: chunk 1 = rows 32..63 = episodes 0 and 1
    chunk = tmp_path / "ep.zarr" / "widowx-1" / "data" / "image_front" / "c.3.0.0.0"  # rows 96..119 = episode 2
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    r = EpisodeStore.open(store.url)
    with pytest.raises(EpisodeReadError, match=r"episode widowx-1:000002: array data/image_front") as exc:
        r.read_episode(ids[2])
    assert exc.value.episode_id == ids[2] and exc.value.array == "image_front"
    assert r.read_episode(ids[2], cameras=["wrist"]).data["images"]["wrist"].shape == (40, 16, 16, 3)
    assert r.read_episode(ids[0]).info.length == 40
    report = r.verify()
    assert not report.ok and list(report.bad_episodes) == [ids[2]]
    assert "image_front" in report.bad_episodes[ids[2]][0]


def test_missing_chunk_and_missing_array(tmp_path, store, writer):
    ids = _three_episodes(writer)
    (tmp_path / "ep.zarr" / "widowx-1" / "data" / "image_wrist" / "c.0.0.0.0").unlink()  # rows 0..31
    r = EpisodeStore.open(store.url)
    with pytest.raises(EpisodeReadError, match=r"widowx-1:000000: array data/image_wrist .*checksum"):
        r.read_episode(ids[0])  # zarr would silently return zeros; the checksum catches it
    report = r.verify()
    assert set(report.bad_episodes) == {ids[0]}
    r._backend.delete_node("widowx-1/data/reward")
    r2 = EpisodeStore.open(store.url)
    with pytest.raises(EpisodeReadError, match=r"widowx-1:000001: array data/reward.*missing"):
        r2.read_episode(ids[1])
    assert r2.read_episode(ids[1], fields=["state", "action"]).data["state"].shape == (40, S)
    report = r2.verify()
    assert set(report.bad_episodes) == set(ids)
    assert any("data/reward is missing" in m for m in report.bad_episodes[ids[1]])


def test_half_created_robot_group_is_invisible_then_created_again(store):
    # A writer killed while creating its group leaves arrays under a group without attributes.
    store._backend.create_time_array("widowx-9/data/state", (3,), "float32", 8, 3)
    assert store.episodes() == [] and store.poll()[0] == []
    w = store.writer("widowx-9", {}, CAMS, S)
    eid = write_episode(w, synthetic_episode(4, CAMS, S)).commit()
    assert store.read_episode(eid).data["state"].shape == (4, S)
    w.close()


def test_write_columns_opens_uncached_arrays_outside_zarrs_loop(tmp_path):
    """A fresh backend (e.g. a writer recovering after a crash) writes arrays it never opened."""
    from robot_stack.store.zarr_backend import ZarrBackend

    first = ZarrBackend(tmp_path / "b.zarr")
    first.create_group("r")
    for name in ("a", "b"):
        first.create_time_array(f"r/{name}", (3,), "float32", chunk_frames=4, zstd_level=1)
    fresh = ZarrBackend(tmp_path / "b.zarr")
    rows = np.arange(15, dtype=np.float32).reshape(5, 3)
    fresh.write_columns([("r/a", 0, rows), ("r/b", 2, rows)])
    again = ZarrBackend(tmp_path / "b.zarr")
    assert np.array_equal(again.read_frames("r/a", 0, 5), rows) and np.array_equal(again.read_frames("r/b", 2, 7), rows)
    assert again.length("r/b") == 7
