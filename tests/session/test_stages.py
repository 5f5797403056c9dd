import json

import pytest

from robot_stack.session.stages import Stage, run_stages, write_json_atomic


def make_stage(name, cfg, calls, output=None):
    def run(run_dir):
        calls.append(name)
        out = output or f"{name}.out"
        (run_dir / out).write_text("x")
        return {"outputs": [out], "summary_line": f"{name} ok"}
    return Stage(name, cfg, run, title=name)


def test_second_run_skips_cached_stages(tmp_path):
    calls, logs = [], []
    stages = [make_stage("a", {"n": 1}, calls), make_stage("b", {"n": 2}, calls)]
    run_stages(tmp_path, stages, logs.append)
    run_stages(tmp_path, stages, logs.append)
    assert calls == ["a", "b"]
    assert any("cached" in line for line in logs)


def test_changed_config_reruns_that_stage_and_everything_after(tmp_path):
    calls = []
    run_stages(tmp_path, [make_stage("a", {"n": 1}, calls), make_stage("b", {}, calls), make_stage("c", {}, calls)], lambda s: None)
    calls.clear()
    run_stages(tmp_path, [make_stage("a", {"n": 1}, calls), make_stage("b", {"k": 9}, calls), make_stage("c", {}, calls)], lambda s: None)
    assert calls == ["b", "c"]


def test_a_stage_naming_its_inputs_reruns_only_when_one_of_them_did(tmp_path):
    calls = []

    def stages(reward_cfg):
        reward = make_stage("reward", reward_cfg, calls)
        reward.needs = ("data",)
        policy = make_stage("policy", {}, calls)
        policy.needs = ("data",)
        return [make_stage("data", {}, calls), reward, policy]

    run_stages(tmp_path, stages({"n": 1}), lambda s: None)
    calls.clear()
    run_stages(tmp_path, stages({"n": 2}), lambda s: None)  # a new classifier config: the policy stays cached
    assert calls == ["reward"]
    (tmp_path / "data.out").unlink()  # the data they both read is made again: both re-run
    calls.clear()
    run_stages(tmp_path, stages({"n": 2}), lambda s: None)
    assert calls == ["data", "reward", "policy"]


def test_missing_output_reruns(tmp_path):
    calls = []
    stages = [make_stage("a", {}, calls)]
    run_stages(tmp_path, stages, lambda s: None)
    (tmp_path / "a.out").unlink()
    run_stages(tmp_path, stages, lambda s: None)
    assert calls == ["a", "a"]


def test_failed_stage_leaves_no_record(tmp_path):
    def boom(run_dir):
        raise RuntimeError("collector crashed")
    with pytest.raises(RuntimeError):
        run_stages(tmp_path, [Stage("a", {}, boom)], lambda s: None)
    assert not (tmp_path / "stages" / "a.json").exists()


def test_atomic_json_replaces_whole_file(tmp_path):
    path = tmp_path / "x.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"b": 2})
    assert json.loads(path.read_text()) == {"b": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_paths_inside_the_run_dir_hash_by_their_place_in_it(tmp_path):
    import shutil

    calls = []
    first = tmp_path / "a" / "run"
    first.mkdir(parents=True)
    run_stages(first, [make_stage("s", {"init_from": str(first / "bc_policy"), "other": "/elsewhere"}, calls)], lambda s: None)
    moved = tmp_path / "b" / "run"
    shutil.copytree(first, moved)
    run_stages(moved, [make_stage("s", {"init_from": str(moved / "bc_policy"), "other": "/elsewhere"}, calls)], lambda s: None)
    assert calls == ["s"]  # the copy is cached: its own bc_policy is the same input
    run_stages(moved, [make_stage("s", {"init_from": str(moved / "bc_policy"), "other": "/elsewhere2"}, calls)], lambda s: None)
    assert calls == ["s", "s"]  # a path outside it still counts as written



def test_a_field_added_with_hash_omits_default_keeps_older_caches_until_it_is_set(tmp_path):
    """Run dirs prepared before a config field existed keep their stages (re-collecting prior data
    would append a second copy to the store); setting the new field re-runs them."""
    import dataclasses

    from robot_stack.config import HASH_OMITS_DEFAULT
    from robot_stack.session.stages import config_hash

    @dataclasses.dataclass
    class Inner:
        size: tuple[int, int] = (64, 64)

    @dataclasses.dataclass
    class Before:
        demos: int = 5
        inner: Inner = dataclasses.field(default_factory=Inner)

    @dataclasses.dataclass
    class WithMarkedField(Before):
        fewer: int = dataclasses.field(default=-1, metadata=HASH_OMITS_DEFAULT)

    @dataclasses.dataclass
    class WithPlainField(Before):
        fewer: int = -1

    calls = []
    run_stages(tmp_path, [make_stage("s", {"cfg": dataclasses.asdict(Before())}, calls)], lambda s: None)
    run_stages(tmp_path, [make_stage("s", {"cfg": Before()}, calls)], lambda s: None)
    assert calls == ["s"]  # a dataclass hashes as its asdict() did, nested ones and tuples included
    assert config_hash({"cfg": WithPlainField()}) != config_hash({"cfg": Before()})  # an unmarked new field counts even at its default
    run_stages(tmp_path, [make_stage("s", {"cfg": WithMarkedField()}, calls)], lambda s: None)
    assert calls == ["s"]  # at its default the marked field leaves the hash as before it existed
    run_stages(tmp_path, [make_stage("s", {"cfg": WithMarkedField(fewer=2)}, calls)], lambda s: None)
    assert calls == ["s", "s"]  # set, it counts
