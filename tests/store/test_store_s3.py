"""The store on an S3 object store (moto's server on 127.0.0.1): two robot writers at once, in two
processes, through zarr's FsspecStore + s3fs; a reader tails and reads both."""

from __future__ import annotations

import json
import pathlib
import socket
import subprocess
import sys
import time

import pytest

from robot_stack.store import EpisodeStore, StoreError

PROCS = str(pathlib.Path(__file__).with_name("store_procs.py"))
sys.path.insert(0, str(pathlib.Path(__file__).parent))
from store_procs import check_episode  # noqa: E402

pytestmark = [pytest.mark.processes, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_server():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    opts = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
    import boto3

    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                 region_name="us-east-1").create_bucket(Bucket="robot-data")
    yield opts
    server.stop()


def test_two_robot_writers_on_s3_and_a_tailing_reader(s3_server, capsys):
    url = "s3://robot-data/fleet/episodes.zarr"
    store = EpisodeStore.create(url, storage_options=s3_server)
    opts = json.dumps(s3_server)
    cursor = store.cursor()
    writers = [
        subprocess.Popen([sys.executable, PROCS, "writer", url, "--robot", robot, "--episodes", "3", "--seed", str(k),
                          "--storage-options", opts, "--min-len", "5", "--max-len", "12", "--flush-s", "0.2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k, robot in enumerate(["widowx-1", "widowx-2"])
    ]
    seen = []
    deadline = time.monotonic() + 60
    while len(seen) < 6 and time.monotonic() < deadline:
        new, cursor = store.poll(cursor)
        seen += new
        time.sleep(0.2)
    for w in writers:
        out, err = w.communicate(timeout=60)
        assert w.returncode == 0, err[-3000:]
    assert sorted(i.episode_id for i in seen) == sorted(f"{r}:{k:06d}" for r in ["widowx-1", "widowx-2"] for k in range(3))
    reader = EpisodeStore.open(url, storage_options=s3_server, read_only=True)
    assert reader.robots() == ["widowx-1", "widowx-2"]
    for info in reader.episodes():
        check_episode(reader.read_episode(info))
    assert reader.verify().ok
    with pytest.raises(StoreError, match="read-only"):
        reader.relabel("widowx-2:000001", "failure", by="alice")
    store.relabel("widowx-2:000001", "failure", by="alice")
    assert reader.episode("widowx-2:000001").outcome == "failure"
    # The CLI reaches the same store through --s3-endpoint-url (credentials as storage options here).
    from robot_stack.cli import main

    creds = json.dumps({"key": s3_server["key"], "secret": s3_server["secret"]})
    endpoint = s3_server["client_kwargs"]["endpoint_url"]
    assert main(["store", "ls", url, "--s3-endpoint-url", endpoint, "--storage-options", creds, "--outcome", "failure", "--json"]) == 0
    assert [json.loads(l)["episode_id"] for l in capsys.readouterr().out.splitlines()] == ["widowx-2:000001"]
