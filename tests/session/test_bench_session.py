"""bench/session.py --quick runs the whole pipeline and prints its JSON contract as the last line; an
alert on the first failure makes it play the person (sim scene reset, Start) and go on."""

import json
import pathlib
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.processes, pytest.mark.slow]
BENCH = pathlib.Path(__file__).resolve().parents[2] / "bench" / "session.py"
KEYS = {"forward_success_pretrained", "forward_success_finetuned", "backward_success_finetuned", "online_steps",
        "human_resets", "bc_baseline_success"}


def test_bench_session_quick_prints_json(tmp_path, dds_env):
    run = tmp_path / "run"
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--run-dir", str(run), "--stuck-after", "1",
                          "--max-recoveries", "0", "--learner-set", "calql.alpha_lr=0"],
                         capture_output=True, text=True, timeout=600, env=dds_env)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert KEYS <= set(result)
    assert result["online_steps"] >= 40
    # an untrained policy fails, each failure is an alert here: the bench answered them all and went on
    assert 1 <= len(result["human_reset_at_steps"]) <= result["human_resets"]  # (one may come as the run ends)
    assert result["human_reset_at_steps"] == sorted(result["human_reset_at_steps"])
    assert result["human_reset_at_steps"][0] < 40 <= result["online_steps"]
    # the person re-staged the cube in the session's room, as in a lab: the layout the session practises stays
    assert "scene re-staged for a start of 'put_cube_in_bowl' (layout kept)" in (run / "logs" / "controller.log").read_text()
    for k in ("forward_success_pretrained", "forward_success_finetuned", "backward_success_finetuned", "bc_baseline_success"):
        assert 0.0 <= result[k] <= 1.0
    assert result["policy_version_finetuned"] >= 2, "the learner should have published during the online phase"
    # --learner-set reached the learner node: its versions trained with a fixed temperature, pre-training did not
    assert result["learner_overrides"] == {"calql.alpha_lr": 0}
    metas = {v: json.loads((run / "checkpoints" / f"policy-{v:06d}" / "meta.json").read_text())["config"]["calql"]
             for v in (1, result["policy_version_finetuned"])}
    assert metas[1]["alpha_lr"] > 0 and metas[result["policy_version_finetuned"]]["alpha_lr"] == 0
    vs_truth = result["forward_online_vs_ground_truth"]
    # (a 40-step run may record no forward episode: an untrained backward policy can use them all)
    assert 0 <= vs_truth["credited_but_false"] <= vs_truth["credited"] <= vs_truth["episodes"]
    assert vs_truth["true"] == vs_truth["credited"] - vs_truth["credited_but_false"] + vs_truth["missed"]
    assert 0 <= vs_truth["rejected_but_true"] <= vs_truth["rejected_from_reset_pose"] <= vs_truth["episodes"] - vs_truth["credited"]
    # the learning curve: measured versions up to the final one, whose figure is forward_success_finetuned
    curve = {int(v): rate for v, rate in result["forward_success_by_version"].items()}
    assert max(curve) == result["policy_version_finetuned"] and len(curve) >= 2
    assert curve[max(curve)] == result["forward_success_finetuned"]
    assert all(0.0 <= rate <= 1.0 for rate in curve.values())
    starts, by_start = result["eval_starts"], result["forward_success_by_start"]
    assert set(by_start) == {f"v{v}" for v in curve} | {"bc"} and sum(starts.values()) == result["eval_episodes"]
    for v, rate in curve.items():  # each version's rate by kind of start adds up to its rate
        assert sum(by_start[f"v{v}"].get(k, 0) * n for k, n in starts.items()) / result["eval_episodes"] == pytest.approx(rate, abs=1e-3)
    in_layout = result["forward_success_in_session_layout"]
    assert set(in_layout) == {"bc", "pretrained", "finetuned"} and all(0.0 <= r <= 1.0 for r in in_layout.values())
    assert isinstance(result["episodes_ending_out_of_workspace"], int) and result["episodes_ending_out_of_workspace"] >= 0


def test_bench_session_quick_self_imitation_publishes_finished_rounds_only(tmp_path, dds_env):
    """--policy-kind bc with --reinit-every: the learner node trains rounds from fresh weights and
    publishes each when it is finished; the BC baseline is the session's own pre-trained policy. With
    two pre-trained seeds and an actor acting with the newest two versions, as one."""
    run = tmp_path / "run"
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--run-dir", str(run), "--policy-kind", "bc",
                          "--bc-init-updates", "0", "--exploration-noise", "0.1", "--reinit-every", "10",
                          "--pretrain-seeds", "2", "--ensemble-versions", "2"],
                         capture_output=True, text=True, timeout=600, env=dds_env)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["policy_kind"] == "bc" and result["reinit_every"] == 10 and result["exploration_noise"] == 0.1
    assert result["bc_baseline_success"] == result["forward_success_pretrained"]
    assert not (run / "bc_policy").exists() and not (run / "bc_baseline").exists()  # no second BC trained
    assert result["ensemble_versions"] == 2 and result["pretrain_seeds"] == 2
    assert result["policy_version_finetuned"] >= 3, "the learner should have finished a round during the online phase"
    pretrained = [json.loads((run / "checkpoints" / f"policy-00000{v}" / "meta.json").read_text()) for v in (1, 2)]
    assert [m["config"]["seed"] for m in pretrained] == [0, 1]
    # the actor started from the mean of both pre-trained seeds (stamped with the newer) and moved on to rounds
    from robot_stack.store import EpisodeStore

    online = [e for e in EpisodeStore.open(run / "episodes.zarr", read_only=True).episodes() if e.data_source == "online"]
    stamped = [e.extra["policy_version"] for e in online]
    assert stamped[0] == 2 and stamped == sorted(stamped) and stamped[-1] >= 3
    pretrain_updates = pretrained[1]["data_seen"]["updates"]
    for v in range(3, result["policy_version_finetuned"] + 1):
        meta = json.loads((run / "checkpoints" / f"policy-{v:06d}" / "meta.json").read_text())
        assert meta["kind"] == "bc"
        assert (meta["data_seen"]["updates"] - pretrain_updates) % 10 == 0, f"v{v} published mid-round"
    assert "exploration_noise" in (run / "session.json").read_text()


def test_bench_session_prepare_only_stops_before_the_online_phase_and_is_cached(tmp_path):
    """--prepare-only: a run dir with prior data, classifier and v1, scored, and no node started;
    run again with the same flags, every stage is cached."""
    from robot_stack.store import EpisodeStore

    run = tmp_path / "run"
    args = [sys.executable, str(BENCH), "--quick", "--run-dir", str(run), "--policy-kind", "bc", "--bc-init-updates", "0",
            "--prepare-only"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["online_steps"] == 0 and result["policy_version_pretrained"] == 1
    assert result["bc_baseline_success"] == result["forward_success_pretrained"]
    assert 0.0 <= result["forward_success_pretrained"] <= 1.0 and set(result["forward_success_in_session_layout"]) == {"bc", "pretrained"}
    assert set(result["forward_success_by_start"]) == {"v1"} and sum(result["eval_starts"].values()) == result["eval_episodes"]
    assert result["policy_kind"] == "bc" and result["run_dir"] == str(run)
    store = EpisodeStore.open(run / "episodes.zarr", read_only=True)
    assert {e.data_source for e in store.episodes()} == {"prior"}  # nothing recorded online
    assert not (run / "logs" / "actor.log").exists()  # no node ran
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count(": cached (") == 3 and json.loads(again.stdout.strip().splitlines()[-1])["online_steps"] == 0
