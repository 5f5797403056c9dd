"""ROS 2 command-line arguments (``--ros-args ...``), parameter files and name resolution.

Implements the subset of ROS 2's argument syntax our nodes need, with ROS semantics, so the
same command line works with and without a ROS 2 install:

- ``-p name:=value`` / ``--param name:=value``: value parsed as YAML (``3`` int, ``3.0`` float,
  ``true`` bool, ``[1, 2]`` list, anything else a string), as rcl does.
- ``--params-file f.yaml``: ``{node_name | /ns/node_name | /**: {ros__parameters: {...}}}``;
  ``/**`` (or ``/**/name``-style wildcards) apply to every node, nested dicts flatten to dots.
- ``-r __node:=name``, ``-r __ns:=/ns``, ``-r from:=to`` (topic remap), ``--log-level LEVEL``.
- Sources apply in command-line order; later wins (as in rcl).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import pathlib
from typing import Any

import yaml


class RosArgsError(ValueError):
    """A malformed ``--ros-args`` command line or parameter file."""


@dataclasses.dataclass
class RosArgs:
    """What ``--ros-args`` said, before it is matched to a node."""

    node_name: str | None = None  # -r __node:=
    namespace: str | None = None  # -r __ns:=
    remaps: dict[str, str] = dataclasses.field(default_factory=dict)  # topic remaps from:=to
    # ordered sources: ("param", name, value) or ("file", path)
    sources: list[tuple] = dataclasses.field(default_factory=list)
    log_level: str | None = None


def parse_value(text: str) -> Any:
    """Parse a ``-p`` value the way rcl does (YAML scalar or list)."""
    try:
        return yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError:
        return text


def parse_ros_args(argv: list[str]) -> RosArgs:
    """Parse everything after (and including) ``--ros-args``; several ``--ros-args ... --`` blocks allowed."""
    out = RosArgs()
    i, inside = 0, False
    while i < len(argv):
        a = argv[i]
        if a == "--ros-args":
            inside = True
            i += 1
            continue
        if a == "--":
            inside = False
            i += 1
            continue
        if not inside:
            raise RosArgsError(f"unexpected argument {a!r} outside --ros-args")

        def value() -> str:
            if i + 1 >= len(argv):
                raise RosArgsError(f"{a} needs a value")
            return argv[i + 1]

        if a in ("-p", "--param"):
            name, sep, text = value().partition(":=")
            if not sep or not name:
                raise RosArgsError(f"{a} {value()!r}: expected name:=value")
            # "node_name:param:=v" targets one node (rcl syntax); keep the node prefix
            out.sources.append(("param", name, parse_value(text)))
            i += 2
        elif a in ("-r", "--remap"):
            src, sep, dst = value().partition(":=")
            if not sep or not src or not dst:
                raise RosArgsError(f"{a} {value()!r}: expected from:=to")
            if src == "__node" or src == "__name":
                out.node_name = dst
            elif src == "__ns":
                out.namespace = dst if dst.startswith("/") else "/" + dst
            else:
                out.remaps[src] = dst
            i += 2
        elif a == "--params-file":
            out.sources.append(("file", value()))
            i += 2
        elif a == "--log-level":
            out.log_level = value().split(":=")[-1]
            i += 2
        elif a in ("--enable-rosout-logs", "--disable-rosout-logs", "--enable-stdout-logs",
                   "--disable-stdout-logs", "--enable-external-lib-logs", "--disable-external-lib-logs"):
            i += 1
        else:
            raise RosArgsError(f"unsupported ROS argument {a!r}")
    return out


def _flatten(prefix: str, m: dict, out: dict) -> None:
    for k, v in m.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            _flatten(key + ".", v, out)
        else:
            out[key] = v


def _node_matches(pattern: str, fqn: str, name: str) -> bool:
    if pattern in ("/**", "**"):
        return True
    if not pattern.startswith("/"):
        # "node_name" (no namespace) is accepted by rcl and matches the node name
        return pattern == name or fnmatch.fnmatchcase(fqn, "/" + pattern) or fnmatch.fnmatchcase(name, pattern)
    return fnmatch.fnmatchcase(fqn, pattern.replace("/**", "*"))


def load_params_file(path: str | pathlib.Path, fqn: str, name: str) -> dict[str, Any]:
    """Parameters for node ``fqn`` from a ROS 2 params YAML: wildcard entries first, then specific ones."""
    path = pathlib.Path(path)
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise RosArgsError(f"--params-file {path}: no such file") from None
    except yaml.YAMLError as exc:
        raise RosArgsError(f"--params-file {path}: invalid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise RosArgsError(f"--params-file {path}: expected a mapping of node names at the top level")
    wildcard: dict[str, Any] = {}
    specific: dict[str, Any] = {}
    for pattern, body in doc.items():
        if not isinstance(body, dict) or "ros__parameters" not in body:
            raise RosArgsError(f"--params-file {path}: entry {pattern!r} has no 'ros__parameters' mapping")
        params = body["ros__parameters"] or {}
        if not isinstance(params, dict):
            raise RosArgsError(f"--params-file {path}: {pattern}.ros__parameters must be a mapping")
        if _node_matches(str(pattern), fqn, name):
            _flatten("", params, wildcard if "*" in str(pattern) else specific)
    return {**wildcard, **specific}


def resolve_params(ros_args: RosArgs, fqn: str, name: str) -> dict[str, Any]:
    """The flat ``{dotted.name: value}`` parameters for node ``fqn`` (later sources override)."""
    params: dict[str, Any] = {}
    for source in ros_args.sources:
        if source[0] == "file":
            params.update(load_params_file(source[1], fqn, name))
        else:
            key, value = source[1], source[2]
            if ":" in key:  # node_name:param targets one node
                node, _, key = key.partition(":")
                if node not in (name, fqn):
                    continue
            params[key] = value
    return params


def validate_name(name: str, what: str) -> str:
    ok = name and all(c.isalnum() or c == "_" for c in name) and not name[0].isdigit()
    if not ok:
        raise RosArgsError(f"invalid {what} {name!r}: use letters, digits and '_' (not starting with a digit)")
    return name


def resolve_topic(topic: str, namespace: str, node_name: str, remaps: dict[str, str] | None = None) -> str:
    """Fully-qualified topic name (``/ns/topic``), ROS 2 rules: relative names join the namespace,
    ``~`` is the node's private namespace; remaps apply to the given or the resolved name."""
    if remaps:
        topic = remaps.get(topic, topic)
    if topic.startswith("~"):
        base = namespace.rstrip("/") + "/" + node_name
        fqn = base + topic[1:] if topic[1:].startswith("/") or topic == "~" else base + "/" + topic[1:]
    elif topic.startswith("/"):
        fqn = topic
    else:
        fqn = namespace.rstrip("/") + "/" + topic
    if remaps and fqn in remaps:
        fqn = remaps[fqn]
    parts = [p for p in fqn.split("/") if p]
    if not parts:
        raise RosArgsError(f"invalid topic name {topic!r}")
    for p in parts:
        if not all(c.isalnum() or c == "_" for c in p) or p[0].isdigit():
            raise RosArgsError(f"invalid topic name {topic!r}: token {p!r} (letters, digits, '_' only)")
    return "/" + "/".join(parts)
