"""Versioned checkpoints: safetensors weights + optimiser state, JSON metadata, atomic writes.

Layout::

    <root>/policy-000012/model.safetensors   # every module's tensors, keys "<module>.<param>"
    <root>/policy-000012/optim.safetensors   # optimiser tensors, keys "<optim>/<param id>/<name>"
    <root>/policy-000012/meta.json           # version, kind, config, data seen, metrics,
                                             # optimiser scalars/structure, sha256 of both files
    <root>/latest                            # "policy-000012\n", replaced last

A version is written into a hidden temporary folder (each file fsync'd), renamed into place
(atomic on POSIX), and only then does ``latest`` move (tmp + fsync + rename), so a reader that
follows ``latest`` never sees a half-written checkpoint. Loading never unpickles: weights come
from safetensors, everything else from JSON; hashes are checked before any tensor is parsed.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

FORMAT = "robot_stack.policy/1"
MODEL_FILE, OPTIM_FILE, META_FILE, LATEST = "model.safetensors", "optim.safetensors", "meta.json", "latest"
_DIR_RE = re.compile(r"^policy-(\d{6,})$")
_PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".joblib"}


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be loaded (missing, corrupt, truncated, or pickle-based)."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: ``model`` {module: {key: tensor}}, ``optim`` {name: optimizer state dict}."""

    path: pathlib.Path
    version: int
    meta: dict
    model: dict[str, dict[str, torch.Tensor]]
    optim: dict[str, dict] = field(default_factory=dict)

    def learner_state(self) -> dict:
        """The dict ``Learner.load_state_dict`` takes."""
        return {"model": self.model, "optim": self.optim, "step": self.meta.get("step", 0), "samples_seen": self.meta.get("samples_seen", 0)}


# ---- (de)flattening -----------------------------------------------------------------------------
def flatten_model(model: Mapping[str, Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    out = {}
    for module, sd in model.items():
        if "." in module or "/" in module:
            raise ValueError(f"module name {module!r} must not contain '.' or '/'")
        for key, t in sd.items():
            out[f"{module}.{key}"] = t.detach().to("cpu").contiguous()
    return out


def unflatten_model(flat: Mapping[str, torch.Tensor], modules: list[str]) -> dict[str, dict[str, torch.Tensor]]:
    model: dict[str, dict[str, torch.Tensor]] = {m: {} for m in modules}
    for key, t in flat.items():
        module, _, rest = key.partition(".")
        if module not in model:
            raise CheckpointError(f"model tensor {key!r} belongs to no module listed in meta.json ({modules})")
        model[module][rest] = t
    return model


def flatten_optimizers(optim: Mapping[str, Mapping]) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimiser state dicts -> (tensors for safetensors, JSON structure with scalars and names)."""
    tensors: dict[str, torch.Tensor] = {}
    structure: dict[str, Any] = {}
    for name, sd in optim.items():
        state_json = {}
        for pid, pstate in sd["state"].items():
            entry = {}
            for k, v in pstate.items():
                if isinstance(v, torch.Tensor):
                    tkey = f"{name}/{pid}/{k}"
                    tensors[tkey] = v.detach().to("cpu").contiguous()
                    entry[k] = {"tensor": tkey}
                else:
                    entry[k] = {"value": _json_value(v, f"{name}.state.{pid}.{k}")}
            state_json[str(pid)] = entry
        groups = [{k: _json_value(v, f"{name}.param_groups.{k}") for k, v in g.items()} for g in sd["param_groups"]]
        structure[name] = {"state": state_json, "param_groups": groups}
    return tensors, structure


def unflatten_optimizers(tensors: Mapping[str, torch.Tensor], structure: Mapping) -> dict[str, dict]:
    optim = {}
    for name, s in structure.items():
        state = {}
        for pid, entry in s["state"].items():
            pstate = {}
            for k, v in entry.items():
                if "tensor" in v:
                    if v["tensor"] not in tensors:
                        raise CheckpointError(f"optimiser tensor {v['tensor']!r} listed in meta.json is missing")
                    pstate[k] = tensors[v["tensor"]]
                else:
                    pstate[k] = v["value"]
            state[int(pid)] = pstate
        optim[name] = {"state": state, "param_groups": [dict(g) for g in s["param_groups"]]}
    return optim


def _json_value(v: Any, where: str) -> Any:
    if isinstance(v, tuple):
        v = list(v)
    try:
        json.dumps(v, allow_nan=True)
    except TypeError:
        raise ValueError(f"optimiser entry {where} = {v!r} is not JSON-serialisable") from None
    return v


# ---- atomic file helpers ----------------------------------------------------------------------
def _fsync_dir(path: pathlib.Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: pathlib.Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(path: pathlib.Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file, fsync and rename (readers see old or new)."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    _write_file(tmp, text.encode())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def refuse_pickle(path: pathlib.Path) -> None:
    """Raise CheckpointError for anything that looks like a pickle / torch.save file."""
    path = pathlib.Path(path)
    if path.is_file():
        with open(path, "rb") as f:
            head = f.read(4)
        if path.suffix.lower() in _PICKLE_SUFFIXES or head[:1] == b"\x80" or head == b"PK\x03\x04":
            raise CheckpointError(
                f"refusing to load {path}: it is a pickle/torch.save file, and checkpoints are never unpickled "
                "(arbitrary code execution). Convert it to a safetensors checkpoint (policies.checkpoint)."
            )
    elif path.is_dir():
        pickles = sorted(p.name for p in path.iterdir() if p.suffix.lower() in _PICKLE_SUFFIXES)
        if pickles and not (path / MODEL_FILE).exists():
            raise CheckpointError(
                f"refusing to load {path}: it holds pickle-based weights {pickles} and no {MODEL_FILE}; "
                "checkpoints are never unpickled. Convert them to safetensors."
            )


# ---- manager ----------------------------------------------------------------------------------
class CheckpointManager:
    """Versioned checkpoints under ``root``; ``keep`` newest versions are kept (0 = all).

    ``save(learner, metrics=..., data_seen=...) -> path`` writes the next version;
    ``adopt(source)`` copies another root's finished checkpoint in as the next version;
    ``load(version=None)`` reads ``latest`` (or a given version) into a ``Checkpoint``;
    ``restore(learner)`` loads the latest into a learner (weights + optimisers, for resume).
    """

    def __init__(self, root: str | os.PathLike, keep: int = 5):
        self.root = pathlib.Path(root)
        if keep < 0:
            raise ValueError(f"keep must be >= 0, got {keep!r}")
        self.keep = keep

    def versions(self) -> list[int]:
        """Committed versions on disk, ascending (temporary folders are ignored)."""
        if not self.root.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.root.iterdir() if (m := _DIR_RE.match(p.name)) and p.is_dir())

    def latest_version(self) -> int | None:
        """The version ``latest`` points at (None when nothing was committed yet)."""
        pointer = self.root / LATEST
        if not pointer.exists():
            return None
        name = pointer.read_text().strip()
        m = _DIR_RE.match(name)
        if not m:
            raise CheckpointError(f"{pointer} is corrupt: {name!r} is not a policy-NNNNNN name")
        return int(m.group(1))

    def path(self, version: int) -> pathlib.Path:
        return self.root / f"policy-{int(version):06d}"

    def save(
        self,
        learner=None,
        *,
        state: Mapping | None = None,
        kind: str | None = None,
        config: Mapping | None = None,
        version: int | None = None,
        data_seen: Mapping | None = None,
        metrics: Mapping | None = None,
        extra: Mapping | None = None,
    ) -> pathlib.Path:
        """Write one checkpoint (of a ``Learner``, or of an explicit ``state`` dict) atomically.

        version: default = newest on disk + 1. data_seen: e.g. {"episodes": n, "transitions": m,
        "updates": k}; metrics: any JSON-able scalars (success rate, losses...).
        """
        if learner is not None:
            state = learner.state_dict()
            kind = kind or learner.kind
            config = config or learner.config.to_dict()
            prefixes = getattr(learner, "agent_prefixes", None)
        else:
            if state is None:
                raise ValueError("save() needs a learner or a state dict")
            prefixes = None
        version = self._new_version(version)
        model_bytes = st_save(flatten_model(state["model"]))
        optim_tensors, optim_structure = flatten_optimizers(state.get("optim") or {})
        optim_bytes = st_save(optim_tensors)
        meta = {
            "format": FORMAT,
            "version": int(version),
            "kind": kind or "unknown",
            "created_unix": time.time(),
            "step": int(state.get("step", 0)),
            "samples_seen": int(state.get("samples_seen", 0)),
            "modules": list(state["model"]),
            "agent_prefixes": prefixes,
            "config": dict(config) if config is not None else None,
            "data_seen": dict(data_seen or {}),
            "metrics": {k: (float(v) if isinstance(v, (int, float)) else v) for k, v in (metrics or {}).items()},
            "extra": dict(extra or {}),
            "optim": optim_structure,
            "files": {
                MODEL_FILE: {"sha256": _sha256(model_bytes), "bytes": len(model_bytes)},
                OPTIM_FILE: {"sha256": _sha256(optim_bytes), "bytes": len(optim_bytes)},
            },
        }
        return self._commit(meta, model_bytes, optim_bytes)

    def adopt(self, source: str | os.PathLike, version: int | None = None) -> pathlib.Path:
        """Copy a finished checkpoint (a ``policy-NNNNNN`` folder, or a root's ``latest``) in as
        ``version`` (default: newest on disk + 1) and point ``latest`` at it; returns its folder.

        The source is verified (format, both files' hashes) before anything is written, and the
        copy is committed like ``save`` (hidden folder, rename, then ``latest``), so a crash leaves
        either nothing or a whole version. Its meta.json is renumbered, since the version an actor
        stamps on its steps must be this root's; ``extra.adopted_from`` keeps where it came from.
        """
        path, src_meta = read_meta(source)  # each check load_checkpoint makes, on bytes read once
        files = src_meta.get("files", {})
        model_bytes = _read_verified(path, MODEL_FILE, files.get(MODEL_FILE, {}))
        optim_bytes = _read_verified(path, OPTIM_FILE, files.get(OPTIM_FILE, {}))
        _parse(path, src_meta, model_bytes, optim_bytes)
        version = self._new_version(version)
        adopted_from = {"path": str(path.resolve()), "version": int(src_meta["version"])}
        meta = {**src_meta, "version": version, "created_unix": time.time(),
                "extra": {**(src_meta.get("extra") or {}), "adopted_from": adopted_from}}
        return self._commit(meta, model_bytes, optim_bytes)

    def _new_version(self, version: int | None) -> int:
        """``version``, or the newest on disk + 1; refuses one that exists."""
        existing = self.versions()
        version = int(version) if version is not None else ((existing[-1] + 1) if existing else 1)
        if self.path(version).exists():
            raise CheckpointError(f"checkpoint version {version} already exists at {self.path(version)}")
        return version

    def _commit(self, meta: dict, model_bytes: bytes, optim_bytes: bytes) -> pathlib.Path:
        """Write one version's files into a hidden folder, rename it into place, then move ``latest``."""
        version = int(meta["version"])
        final = self.path(version)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-policy-{version:06d}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            _write_file(tmp / MODEL_FILE, model_bytes)
            _write_file(tmp / OPTIM_FILE, optim_bytes)
            _write_file(tmp / META_FILE, json.dumps(meta, indent=1, sort_keys=True).encode())
            _fsync_dir(tmp)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _fsync_dir(self.root)
        atomic_write_text(self.root / LATEST, final.name + "\n")
        self._prune()
        return final

    def _prune(self) -> None:
        if self.keep == 0:
            return
        latest = self.latest_version()
        for v in self.versions()[: -self.keep]:
            if v != latest:
                shutil.rmtree(self.path(v), ignore_errors=True)

    def load(self, version: int | None = None, *, with_optimizer: bool = True) -> Checkpoint:
        """Load ``version`` (default: what ``latest`` points at); verifies hashes first."""
        if version is None:
            version = self.latest_version()
            if version is None:
                refuse_pickle(self.root)
                raise CheckpointError(f"no checkpoint under {self.root} (no '{LATEST}' pointer)")
        return load_checkpoint(self.path(version), with_optimizer=with_optimizer)

    def restore(self, learner, version: int | None = None, *, with_optimizer: bool = True) -> Checkpoint:
        """Load a checkpoint into ``learner`` (kind must match); returns it (meta has metrics etc.)."""
        ckpt = self.load(version, with_optimizer=with_optimizer)
        if ckpt.meta.get("kind") not in (None, "unknown", learner.kind):
            raise CheckpointError(f"checkpoint {ckpt.path} is a {ckpt.meta['kind']!r} checkpoint, not {learner.kind!r}")
        learner.load_state_dict(ckpt.learner_state(), load_optimizer=with_optimizer)
        return ckpt


def resolve_checkpoint_dir(path: str | os.PathLike) -> pathlib.Path:
    """A ``policy-NNNNNN`` folder as given, or a checkpoint root's ``latest``."""
    path = pathlib.Path(path)
    refuse_pickle(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if (path / LATEST).exists():
        version = CheckpointManager(path).latest_version()
        path = path / f"policy-{version:06d}"
    return path


def _read_verified(path: pathlib.Path, name: str, info: Mapping) -> bytes:
    f = path / name
    if not f.exists():
        raise CheckpointError(f"checkpoint {path} is incomplete: {name} is missing")
    data = f.read_bytes()
    if len(data) != info.get("bytes"):
        raise CheckpointError(
            f"checkpoint file {f} is truncated or corrupt: {len(data)} bytes on disk, meta.json says {info.get('bytes')}"
        )
    if _sha256(data) != info.get("sha256"):
        raise CheckpointError(f"checkpoint file {f} is corrupt: sha256 does not match meta.json")
    return data


def read_meta(path: str | os.PathLike) -> tuple[pathlib.Path, dict]:
    """(the checkpoint folder, its parsed ``meta.json``) of a folder or a root (following
    ``latest``); the format is checked, the weight files are not read (``load_checkpoint`` does)."""
    path = resolve_checkpoint_dir(path)
    meta_path = path / META_FILE
    if not meta_path.exists():
        raise CheckpointError(f"{path} is not a checkpoint: {META_FILE} is missing")
    try:
        meta = json.loads(meta_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"checkpoint metadata {meta_path} is corrupt: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path} is not a {FORMAT} checkpoint (format={meta.get('format') if isinstance(meta, dict) else None!r})")
    return path, meta


def _parse(path: pathlib.Path, meta: Mapping, model_bytes: bytes, optim_bytes: bytes | None) -> tuple[dict, dict]:
    """(model, optim) from verified file bytes (optim {} when ``optim_bytes`` is None)."""
    try:
        model = unflatten_model(st_load(model_bytes), meta["modules"])
        optim = {} if optim_bytes is None else unflatten_optimizers(st_load(optim_bytes), meta.get("optim", {}))
    except CheckpointError:
        raise
    except Exception as e:  # safetensors header errors etc. on a file whose hash matched a bad write
        raise CheckpointError(f"checkpoint {path} could not be parsed: {e}") from None
    return model, optim


def load_checkpoint(path: str | os.PathLike, *, with_optimizer: bool = True) -> Checkpoint:
    """Load a checkpoint folder (or a root, following ``latest``). Never unpickles."""
    path, meta = read_meta(path)
    files = meta.get("files", {})
    model_bytes = _read_verified(path, MODEL_FILE, files.get(MODEL_FILE, {}))
    optim_bytes = _read_verified(path, OPTIM_FILE, files.get(OPTIM_FILE, {})) if with_optimizer else None
    model, optim = _parse(path, meta, model_bytes, optim_bytes)
    return Checkpoint(path=path, version=int(meta["version"]), meta=meta, model=model, optim=optim)


def load_agent(path: str | os.PathLike, device="cpu"):
    """Build an ``Agent`` from a checkpoint (folder or root): networks from meta.json's config,
    weights from model.safetensors (optimiser state is not read)."""
    return agent_from_checkpoint(load_checkpoint(path, with_optimizer=False), device)


def agent_from_checkpoint(ckpt: Checkpoint, device="cpu"):
    """An ``Agent`` from a loaded ``Checkpoint`` (for callers that also read its meta)."""
    from policies.agent import Agent
    from policies.config import LearnerConfig

    if not ckpt.meta.get("config") or not ckpt.meta.get("agent_prefixes"):
        raise CheckpointError(f"checkpoint {ckpt.path} has no policy config/agent prefixes in meta.json")
    config = LearnerConfig.from_dict(ckpt.meta["config"])
    agent = Agent.build(config, device=device)
    flat = flatten_model(ckpt.model)
    states = {}
    for part, prefix in ckpt.meta["agent_prefixes"].items():
        states[part] = {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}
        if not states[part]:
            raise CheckpointError(f"checkpoint {ckpt.path} has no tensors under {prefix!r} for the {part}")
    try:
        agent.load_weights(states["encoder"], states["actor"], version=ckpt.version)
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint {ckpt.path} does not fit its own config: {e}") from None
    return agent
