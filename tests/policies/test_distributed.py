"""Data-parallel training: two gloo ranks on CPU end identical and match single-process
training on the concatenated batch; a rank that fails leaves at once."""

import os
import pathlib
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from policies.bc import BCLearner

HERE = pathlib.Path(__file__).parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))  # ddp_worker is a plain script beside this test (conftest does this too)


def start_ranks(tmp_path, *mode: str) -> list[subprocess.Popen]:
    """Two ddp_worker.py ranks in one gloo group."""
    # Loopback only, like every test here: gloo otherwise picks the interface the hostname resolves to.
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1",
           "GLOO_SOCKET_IFNAME": "lo"}
    store = tmp_path / "store"
    return [
        subprocess.Popen([sys.executable, str(HERE / "ddp_worker.py"), str(r), "2", str(store), str(tmp_path), *mode], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for r in range(2)
    ]


@pytest.mark.processes
def test_two_rank_gloo_matches_single_process(tmp_path):
    import ddp_worker

    procs = start_ranks(tmp_path)
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out

    for name in ("bc", "calql"):
        r0, r1 = load_file(tmp_path / f"{name}_rank0.safetensors"), load_file(tmp_path / f"{name}_rank1.safetensors")
        assert r0.keys() == r1.keys()
        for k in r0:
            assert torch.equal(r0[k], r1[k]), f"{name} ranks disagree on {k}"

    # Single process on the concatenated batch (16 = 2 x 8): same weights within float tolerance.
    single = BCLearner(ddp_worker.config(), distributed=False)
    data = ddp_worker.full_batch(0, 16)
    for _ in range(3):
        single.update(data)
    ref = ddp_worker.params(single)
    r0 = load_file(tmp_path / "bc_rank0.safetensors")
    init = ddp_worker.params(BCLearner(ddp_worker.config(), distributed=False))
    for k, v in ref.items():
        torch.testing.assert_close(r0[k], v, rtol=1e-4, atol=1e-5, msg=f"DDP vs single-process differ on {k}")
    assert any(not torch.equal(init[k], v) for k, v in ref.items())  # training moved the weights


@pytest.mark.processes
def test_a_failed_rank_leaves_without_waiting_for_its_peers(tmp_path):
    stuck, failing = start_ranks(tmp_path, "stuck-peer")
    try:
        # The group's timeout is 120 s: a rank waiting in the shutdown barrier would still be here.
        out, _ = failing.communicate(timeout=60)
        assert failing.returncode != 0 and "rank 1 failed on purpose" in out, out
        assert stuck.poll() is None  # its peer never reached any barrier
    finally:
        for p in (stuck, failing):
            p.kill()
            p.communicate()
