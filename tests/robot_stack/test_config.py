import argparse
import dataclasses
from typing import Literal, Optional

import pytest

from robot_stack.config import (
    ConfigError,
    add_config_args,
    field_help,
    flat_fields,
    from_args,
    from_mapping,
    to_flat_dict,
)


@dataclasses.dataclass
class Encoder:
    channels: int = 32  # conv channels
    # image side
    # in pixels
    size: int = 64


@dataclasses.dataclass
class Learner:
    lr: float = 3e-4  # learning rate
    mode: Literal["calql", "bc"] = "calql"  # which learner
    compile: bool = False  # torch.compile the update
    encoder: Encoder = dataclasses.field(default_factory=Encoder)
    workspace: tuple[float, ...] = (0.1, 0.2)  # box corners
    resume: Optional[str] = None  # checkpoint dir

    def __post_init__(self):
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


def test_field_comments_become_help():
    assert field_help(Learner)["lr"] == "learning rate"
    assert field_help(Encoder) == {"channels": "conv channels", "size": "image side in pixels"}
    assert set(flat_fields(Learner)) == {"lr", "mode", "compile", "encoder.channels", "encoder.size", "workspace", "resume"}


def test_cli_flags_override_defaults_only_where_given():
    p = argparse.ArgumentParser()
    add_config_args(p, Learner, "learner.")
    args = p.parse_args(["--learner.lr", "0.1", "--learner.encoder.size", "12", "--learner.compile",
                         "--learner.workspace", "1", "2", "3"])
    cfg = from_args(Learner, args, "learner.")
    assert cfg == Learner(lr=0.1, compile=True, encoder=Encoder(size=12), workspace=(1.0, 2.0, 3.0))
    assert "learning rate" in p.format_help()


def test_cli_overrides_apply_on_top_of_a_base_config():
    p = argparse.ArgumentParser()
    add_config_args(p, Learner)
    base = Learner(lr=0.5, mode="bc")
    assert from_args(Learner, p.parse_args(["--encoder.channels", "8"]), base=base) == Learner(
        lr=0.5, mode="bc", encoder=Encoder(channels=8))


def test_mapping_accepts_nested_and_dotted_and_strings_from_ros_params():
    cfg = from_mapping(Learner, {"encoder": {"channels": "7"}, "encoder.size": 9, "mode": "bc", "resume": "none"})
    assert cfg.encoder == Encoder(channels=7, size=9) and cfg.mode == "bc" and cfg.resume is None


@pytest.mark.parametrize("values, message", [
    ({"lr": -1}, "lr must be > 0"),
    ({"lr": "abc"}, "parameter 'lr': expected a number"),
    ({"nope": 1}, "unknown parameter(s) ['nope']"),
    ({"mode": "sac"}, "'sac' is not one of"),
    ({"encoder.channels": 1.5}, "'encoder.channels': expected an integer"),
    ({"compile": "maybe"}, "expected a boolean"),
])
def test_bad_values_name_source_and_parameter(values, message):
    with pytest.raises(ConfigError) as info:
        from_mapping(Learner, values, "node 'learner'")
    assert "node 'learner'" in str(info.value)
    assert message in str(info.value)


def test_flat_dict_round_trips():
    cfg = Learner(lr=0.2, encoder=Encoder(channels=3))
    assert from_mapping(Learner, to_flat_dict(cfg)) == cfg


@dataclasses.dataclass
class Limits:
    box: tuple[float, ...] = (-1.0, 1.0)  # generic box
    timeout: float = 0.5  # watchdog


@dataclasses.dataclass
class ArmBase:
    hz: float = 5.0  # control rate


@dataclasses.dataclass
class SmallArm(ArmBase):
    limits: Limits = dataclasses.field(default_factory=lambda: Limits(box=(0.1, 0.4)))  # this arm's box


def test_nested_override_keeps_the_parents_default_factory():
    cfg = from_mapping(SmallArm, {"limits.timeout": 2.0})
    assert cfg.limits == Limits(box=(0.1, 0.4), timeout=2.0)
    # --help shows the default the config is built with, not the nested class's own
    assert flat_fields(SmallArm)["limits.box"][1] == (0.1, 0.4)
    p = argparse.ArgumentParser()
    add_config_args(p, SmallArm)
    assert "(default: (0.1, 0.4))" in " ".join(p.format_help().split())


def test_inherited_fields_have_help():
    assert field_help(SmallArm)["hz"] == "control rate"
    assert flat_fields(SmallArm)["hz"][2] == "control rate"


def test_list_flags_accept_commas_and_spaces():
    p = argparse.ArgumentParser()
    add_config_args(p, Learner)
    assert from_args(Learner, p.parse_args(["--workspace", "1,2", "3"])).workspace == (1.0, 2.0, 3.0)
    assert from_mapping(Learner, {"workspace": "4, 5"}).workspace == (4.0, 5.0)


def test_string_list_items_keep_their_spaces():
    @dataclasses.dataclass
    class Tasks:
        names: tuple[str, ...] = ()  # instructions

    assert from_mapping(Tasks, {"names": "put the cube in, take it out"}).names == ("put the cube in", "take it out")
    assert from_mapping(Tasks, {"names": ["a b", "c"]}).names == ("a b", "c")
