"""DashboardConfig validation and the monitor CLI (a real process serving a real store)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx
import pytest

from robot_stack.dashboard import DashboardConfig

from dash_helpers import TOKEN

# `python -m robot_stack.cli` would make a second copy of the module (and of CliError) as __main__.
CLI = [sys.executable, "-c", "import sys; from robot_stack.cli import main; sys.exit(main())"]


@pytest.mark.parametrize("kw,field", [({"port": 70000}, "port"), ({"token": "short"}, "token"),
                                      ({"token": "has space in it 1234567"}, "token"), ({"max_stream_fps": 0}, "max_stream_fps"),
                                      ({"teleop_deadman_s": 0}, "teleop_deadman_s"), ({"stats_window": 0}, "stats_window"),
                                      ({"jpeg_quality": 100}, "jpeg_quality"), ({"host": ""}, "host")])
def test_config_rejects_bad_values_naming_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        DashboardConfig(**kw)


def test_allowed_hosts_default_to_loopback_names_when_bound_to_loopback():
    assert "localhost" in DashboardConfig().effective_allowed_hosts()
    assert DashboardConfig(host="0.0.0.0").effective_allowed_hosts() == ["*"]
    assert DashboardConfig(allowed_hosts=("lab-pc",)).effective_allowed_hosts() == ["lab-pc"]


@pytest.mark.processes
def test_monitor_cli_serves_a_recorded_store(store, tmp_path):
    env = {**os.environ, "ROBOT_STACK_DASHBOARD_TOKEN": TOKEN}
    proc = subprocess.Popen([*CLI, "monitor", "--store", store.url, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        m = re.search(r"open (http://127\.0\.0\.1:(\d+))/#token=(\S+)", line)
        assert m, line + proc.stderr.read() if proc.poll() is not None else line
        url, token = m.group(1), m.group(3)
        assert token == TOKEN  # from the environment, not the command line
        h = httpx.get(url + "/api/health").json()
        assert h["store"] is True and h["robot"] is False
        assert httpx.get(url + "/api/episodes").json()["total"] == 6
        assert httpx.post(url + "/api/estop").status_code == 401
        assert httpx.post(url + "/api/estop", headers={"Authorization": f"Bearer {token}"}).status_code == 503
    finally:
        proc.terminate()
        proc.wait(10)


def test_monitor_cli_reports_a_missing_store(tmp_path):
    r = subprocess.run([*CLI, "monitor", "--store", str(tmp_path / "nothing"),
                        "--port", "0"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "cannot open episode store" in r.stderr


def test_monitor_cli_reports_a_bad_config():
    r = subprocess.run([*CLI, "monitor", "--port", "99999"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "port" in r.stderr


def test_monitor_flags_map_to_the_config():
    import argparse

    from robot_stack.config import from_args
    from robot_stack.dashboard import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--store", "x.zarr", "--host", "0.0.0.0", "--public-read", "--port", "9000"])
    cfg = from_args(DashboardConfig, args)
    assert (cfg.host, cfg.port, cfg.public_read, args.store) == ("0.0.0.0", 9000, True, "x.zarr")
    assert from_args(DashboardConfig, parser.parse_args([])).public_read is False
    assert cli.start_url("0.0.0.0", 9000, "t" * 20) == "http://127.0.0.1:9000/#token=" + "t" * 20
