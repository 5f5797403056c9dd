"""Typed configs: one dataclass per component, overridable from the CLI and from ROS parameters.

Configs live next to the code they configure (``hardware``, ``policies``, ``reward_vlm`` and
``robot_stack``) as plain dataclasses that validate themselves in ``__post_init__``; each field
carries a one-line ``#`` comment, which this module turns into ``--help`` text. This module
is the one place that maps them to command-line flags and to flat ROS parameter dicts, so the
same names work in ``robot-stack run --actor.horizon 60``, ``--ros-args -p horizon:=60`` and
a ``--params-file`` YAML.

Nested dataclass fields flatten with dots (``encoder.channels``), as ROS 2 parameter names do.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import enum
import functools
import inspect
import io
import json
import pathlib
import textwrap
import tokenize
import types
import typing
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value that cannot be applied; the message names the field and the source."""


#: ``dataclasses.field`` metadata for a field added to a config whose hash keys cached work (a
#: session's preparation stages): while it holds its default the field is left out of
#: ``hashable_config``, so work cached before the field existed stays valid instead of being
#: redone (re-collecting prior data appends a second copy to the run's store).
HASH_OMITS_DEFAULT = {"hash": "omit_at_default"}


def hashable_config(value: Any) -> Any:
    """``value`` as JSON-ready data for a content hash: dataclasses as dicts of their fields, less
    the ``HASH_OMITS_DEFAULT`` ones that hold their default; dicts, lists and tuples recursively.
    For fields without that metadata this is what ``dataclasses.asdict`` gives, so hashes taken
    from asdict dicts stay the same."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if f.metadata.get("hash") == HASH_OMITS_DEFAULT["hash"] and v == _field_default(f):
                continue
            out[f.name] = hashable_config(v)
        return out
    if isinstance(value, dict):
        return {k: hashable_config(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [hashable_config(v) for v in value]
    return value


@functools.lru_cache(maxsize=None)
def field_help(cls: type) -> dict[str, str]:
    """Map each field of dataclass ``cls`` (inherited ones too) to its ``#`` comment."""
    helps: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            helps.update(_own_field_help(klass))
    return helps


def _own_field_help(cls: type) -> dict[str, str]:
    """Comments of the fields declared in ``cls``'s own body (same line, else the lines above)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments = {
        tok.start[0]: tok.string.lstrip("#").strip()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    code_rows = {i + 1 for i, line in enumerate(source.splitlines()) if line.strip() and not line.strip().startswith("#")}
    helps: dict[str, str] = {}
    classdef = ast.parse(source).body[0]
    for node in getattr(classdef, "body", []):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        same_line = [comments[r] for r in range(node.lineno, (node.end_lineno or node.lineno) + 1) if r in comments]
        if same_line:
            helps[node.target.id] = same_line[-1]
            continue
        above, row = [], node.lineno - 1
        while row in comments and row not in code_rows:
            above.insert(0, comments[row])
            row -= 1
        if above:
            helps[node.target.id] = " ".join(above)
    return helps


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert ``value`` (from YAML, a ROS parameter or a CLI string) to type ``tp``."""
    tp, optional = _strip_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: null is not allowed here")
    if optional and isinstance(value, str) and value.lower() in ("none", "null", "~"):
        return None
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of {list(choices)}")
        return value
    if origin in (tuple, list):
        args = typing.get_args(tp)
        if isinstance(value, str):
            value = [value]
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            # "2,2,1,1", "2 2 1 1" and ["2,2", "1,1"] (argparse nargs) all mean the same list of
            # numbers; strings split on commas only, since an item may contain spaces.
            numeric = bool(args) and args[0] in (int, float)
            value = [p.strip() for v in value for p in (v.replace(",", " ").split() if numeric else v.split(","))
                     if p.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, where) for v, a in zip(value, args))
        item = args[0] if args else Any
        out = [_coerce(v, item, where) for v in value]
        return tuple(out) if origin is tuple else out
    if tp is Any:
        return value
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not one of {[e.value for e in tp]}") from None
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise ConfigError(f"{where}: expected a boolean, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    if tp in (pathlib.Path,):
        return pathlib.Path(value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}")
        return from_mapping(tp, value, where)
    return value


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def flat_fields(cls: type, prefix: str = "", defaults: Any = None) -> dict[str, tuple[Any, Any, str]]:
    """Flattened ``{dotted.name: (type, default, help)}`` of a (possibly nested) config dataclass.

    A nested config's defaults are those of the parent's default for it (``defaults``), as
    ``from_mapping`` builds it, not the nested class's own.
    """
    out: dict[str, tuple[Any, Any, str]] = {}
    hints = _hints(cls)
    helps = field_help(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints[f.name]
        if defaults is not None:
            default = getattr(defaults, f.name)
        elif f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = dataclasses.MISSING
        name = prefix + f.name
        inner, _ = _strip_optional(tp)
        if dataclasses.is_dataclass(inner) and isinstance(inner, type):
            out.update(flat_fields(inner, name + ".", default if isinstance(default, inner) else None))
        else:
            out[name] = (tp, default, helps.get(f.name, ""))
    return out


def from_mapping(cls: type[T], values: Mapping[str, Any], source: str = "config", base: T | None = None) -> T:
    """Build ``cls`` from a nested or flat dotted mapping; unknown keys and bad types raise ConfigError.

    ``base`` supplies values for keys not given (defaults otherwise).
    """
    flat: dict[str, Any] = {}

    def walk(prefix: str, m: Mapping[str, Any]) -> None:
        for k, v in m.items():
            key = f"{prefix}{k}"
            if isinstance(v, Mapping) and not key in known:
                walk(key + ".", v)
            else:
                flat[key] = v

    known = flat_fields(cls)
    walk("", values)
    unknown = sorted(set(flat) - set(known))
    if unknown:
        raise ConfigError(
            f"{source}: unknown parameter(s) {unknown} for {cls.__name__}; known: {sorted(known)}"
        )
    return _build(cls, flat, source, base, "")


def _build(cls: type[T], flat: Mapping[str, Any], source: str, base: Any, prefix: str) -> T:
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        name = prefix + f.name
        tp = hints[f.name]
        inner, _ = _strip_optional(tp)
        # Without a base, a nested config starts from the parent's own default for it (e.g. an
        # arm's default_factory safety box), not from the nested class's generic defaults.
        sub_base = getattr(base, f.name) if base is not None else _field_default(f)
        if dataclasses.is_dataclass(inner) and isinstance(inner, type):
            if any(k.startswith(name + ".") for k in flat) or sub_base is not None:
                kwargs[f.name] = _build(inner, flat, source, sub_base, name + ".")
        elif name in flat:
            kwargs[f.name] = _coerce(flat[name], tp, f"{source}: parameter '{name}'")
        elif base is not None:
            kwargs[f.name] = getattr(base, f.name)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: invalid {cls.__name__}: {exc}") from exc


def _field_default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None if f.default is dataclasses.MISSING else f.default


def json_object(name: str, text: str) -> dict:
    """Parse a config field holding a JSON object ('' = {}); ValueError naming the field otherwise.

    Used for per-device overrides (arm, camera, teleop configs) that a ROS parameter can only
    carry as a string.
    """
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object, got {text!r}")
    return value


def to_flat_dict(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten a config instance to ``{dotted.name: value}`` with JSON/YAML-friendly values."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        name = prefix + f.name
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            out.update(to_flat_dict(v, name + "."))
        elif isinstance(v, enum.Enum):
            out[name] = v.value
        elif isinstance(v, pathlib.Path):
            out[name] = str(v)
        elif isinstance(v, tuple):
            out[name] = list(v)
        else:
            out[name] = v
    return out


def add_config_args(parser: argparse.ArgumentParser, cls: type, prefix: str = "") -> None:
    """Add one ``--<prefix><field>`` flag per (flattened) field of ``cls``; defaults stay unset."""
    group = parser.add_argument_group(f"{prefix.rstrip('.') or cls.__name__} options")
    for name, (tp, default, help_text) in flat_fields(cls).items():
        shown = "required" if default is dataclasses.MISSING else f"default: {default!r}"
        inner, _ = _strip_optional(tp)
        kwargs: dict[str, Any] = {"default": None, "dest": f"cfg::{prefix}{name}", "help": f"{help_text} ({shown})"}
        if inner is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(inner) in (tuple, list):
            kwargs["nargs"] = "+"
            kwargs["metavar"] = "V"
        elif typing.get_origin(inner) is typing.Literal:
            kwargs["choices"] = list(typing.get_args(inner))
        else:
            kwargs["metavar"] = getattr(inner, "__name__", "V").upper()
        group.add_argument(f"--{prefix}{name}", **kwargs)


def from_args(cls: type[T], args: argparse.Namespace, prefix: str = "", base: T | None = None) -> T:
    """Build ``cls`` from flags added by :func:`add_config_args`, on top of ``base`` (or defaults)."""
    given = {
        key[len("cfg::") + len(prefix):]: v
        for key, v in vars(args).items()
        if key.startswith(f"cfg::{prefix}") and v is not None
    }
    return from_mapping(cls, given, source="command line", base=base)
