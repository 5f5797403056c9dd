"""The store's and the replay loader's config dataclasses work with robot_stack.config (CLI flags, ROS parameters)."""

from __future__ import annotations

import argparse

import pytest

from robot_stack.config import ConfigError, add_config_args, field_help, flat_fields, from_args, from_mapping
from robot_stack.learner.replay_loader import ReplayLoaderConfig
from robot_stack.store import StoreConfig


def test_every_field_documented():
    for cls in (StoreConfig, ReplayLoaderConfig):
        helps = field_help(cls)
        missing = [n for n in flat_fields(cls) if "." not in n and not helps.get(n)]
        assert not missing, f"{cls.__name__}: undocumented {missing}"


def test_from_mapping_and_cli_flags():
    cfg = from_mapping(StoreConfig, {"url": "s3://b/e.zarr", "partial_policy": "drop", "flush_interval_s": "2.5"})
    assert (cfg.url, cfg.partial_policy, cfg.flush_interval_s) == ("s3://b/e.zarr", "drop", 2.5)
    with pytest.raises(ConfigError, match="partial_policy"):
        from_mapping(StoreConfig, {"partial_policy": "keep"})
    with pytest.raises(ConfigError, match="zstd_level"):
        from_mapping(StoreConfig, {"zstd_level": 0})
    p = argparse.ArgumentParser()
    add_config_args(p, ReplayLoaderConfig)
    loader = from_args(ReplayLoaderConfig, p.parse_args(["--prior_ratio", "0.0", "--replay.capacity", "5000", "--tasks", "a", "b", "c"]))
    assert loader.prior_ratio == 0.0 and loader.replay.capacity == 5000 and loader.tasks == ("a", "b", "c")
    with pytest.raises(ConfigError, match="ratios"):
        from_mapping(ReplayLoaderConfig, {"prior_ratio": 0, "online_ratio": 0, "intervention_ratio": 0})
