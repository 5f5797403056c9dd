"""Import prior data from, and export episodes to, robomimic-style HDF5 (``data/demo_<i>/...``).

robomimic's layout is what most lab datasets (robomimic, RoboCasa, MimicGen, many
teleoperation pipelines) ship as, and it needs only h5py. (LeRobotDataset v3 would need pyarrow
and a video decoder, neither of which this environment has.)

Layout read and written::

    data/                        attrs: total, env_args (JSON)
    data/demo_<i>/               attrs: num_samples [, robot_stack_meta (JSON, our exports)]
        actions   (T, A) float   rewards (T,)   dones (T,)
        obs/<camera>_image (T, H, W, 3) uint8        # every 4-D uint8 obs is a camera
        obs/<low-dim key> (T, k)                     # concatenated into our state vector
    mask/train                   demo names (exports: all)

Exports add per-step datasets robomimic ignores (``success_prob``, ``intervention``,
``policy_version``, ``timestamps``, ``truncated``) and the episode metadata as JSON, so an
export re-imports exactly.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Iterable

import numpy as np

from robot_stack.store.episode_store import EpisodeStore
from robot_stack.store.meta import FORMAT_VERSION, EpisodeInfo, EpisodeMeta, Label

_IMAGE_SUFFIX = "_image"


def _h5py():
    try:
        import h5py
    except ModuleNotFoundError as exc:  # pragma: no cover - h5py is in the 'interop' extra
        raise RuntimeError("robomimic import/export needs h5py: pip install 'robot-stack[interop]'") from exc
    return h5py


def export_robomimic(store: EpisodeStore, path: str | os.PathLike, episodes: Iterable[EpisodeInfo], progress: bool = False) -> int:
    """Write ``episodes`` to a robomimic HDF5 file at ``path``; returns the number written."""
    from tqdm import tqdm

    h5py = _h5py()
    episodes = list(episodes)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        names, total = [], 0
        for i, info in enumerate(tqdm(episodes, desc="export", disable=not progress, unit="ep")):
            ep = store.read_episode(info)
            d = ep.data
            g = data.create_group(f"demo_{i}")
            obs = g.create_group("obs")
            for cam, frames in d["images"].items():
                obs.create_dataset(cam + _IMAGE_SUFFIX, data=frames, compression="gzip", compression_opts=4, chunks=(1, *frames.shape[1:]))
            obs.create_dataset("state", data=d["state"])
            g.create_dataset("actions", data=d["action"])
            g.create_dataset("rewards", data=d["reward"])
            g.create_dataset("dones", data=d["terminal"].astype(np.int64))
            for key, name in [("success_prob", "success_prob"), ("intervention", "intervention"),
                              ("policy_version", "policy_version"), ("timestamp", "timestamps"), ("truncated", "truncated")]:
                g.create_dataset(name, data=d[key])
            g.attrs["num_samples"] = info.length
            g.attrs["robot_stack_meta"] = json.dumps(info.to_dict())
            names.append(f"demo_{i}")
            total += info.length
        data.attrs["total"] = total
        data.attrs["env_args"] = json.dumps({"env_name": "robot_stack", "type": 0, "env_kwargs": {}})
        data.attrs["robot_stack_format_version"] = FORMAT_VERSION
        f.create_dataset("mask/train", data=np.array(names, dtype="S"))
    return len(episodes)


def import_robomimic(
    store: EpisodeStore,
    path: str | os.PathLike,
    robot_id: str,
    *,
    task_id: str | None = None,
    instruction: str = "",
    phase: str = "forward",
    data_source: str = "prior",
    outcome_source: str = "human",
    state_keys: list[str] | None = None,
    control_hz: float = 10.0,
    demos: list[str] | None = None,
    progress: bool = False,
) -> list[str]:
    """Import every demo of a robomimic HDF5 file as committed episodes of robot group ``robot_id``.

    Cameras: every 4-D uint8 ``obs`` dataset (name without ``_image``). State: the low-dim
    ``obs`` datasets in ``state_keys`` order (default: sorted), concatenated to float32.
    Files we exported keep their own metadata (task, phase, labels, extras). Returns the new ids.
    """
    from tqdm import tqdm

    h5py = _h5py()
    path = os.fspath(path)
    with h5py.File(path, "r") as f:
        if "data" not in f:
            raise ValueError(f"{path}: not a robomimic file (no 'data' group)")
        data = f["data"]
        env_args = _json_attr(data.attrs.get("env_args"), {})
        names = demos or sorted((k for k in data if k.startswith("demo_")), key=lambda k: int(k.split("_")[-1]) if k.split("_")[-1].isdigit() else 0)
        if not names:
            raise ValueError(f"{path}: no demo_<i> groups under 'data'")
        first = data[names[0]]
        cameras, low_dim = _split_obs(first, path, names[0])
        keys = list(state_keys) if state_keys else low_dim
        missing = set(keys) - set(low_dim)
        if missing:
            raise ValueError(f"{path}: state key(s) {sorted(missing)} not among the low-dim obs {low_dim}")
        state_dim = sum(int(np.prod(first["obs"][k].shape[1:])) for k in keys)
        action_dim = int(first["actions"].shape[1])
        cam_shapes = {c: tuple(first["obs"][k].shape[1:3]) for c, k in cameras.items()}
        w = store.writer(robot_id, {"imported_from": os.path.basename(path), "env_args": env_args}, cam_shapes, state_dim,
                         action_dim, flush_interval_s=1e9)
        ids = []
        try:
            for name in tqdm(names, desc=f"import {os.path.basename(path)}", disable=not progress, unit="demo"):
                ids.append(_import_demo(w, data[name], f"{path}:{name}", cameras, keys, task_id or env_args.get("env_name") or "imported",
                                        instruction, phase, data_source, outcome_source, control_hz))
        finally:
            w.close()
    return ids


def _split_obs(demo, path: str, name: str) -> tuple[dict[str, str], list[str]]:
    if "obs" not in demo or "actions" not in demo:
        raise ValueError(f"{path}:{name}: a demo needs 'obs' and 'actions'")
    cameras, low_dim = {}, []
    for k, ds in demo["obs"].items():
        if ds.ndim == 4 and ds.dtype == np.uint8 and ds.shape[-1] == 3:
            cam = k[: -len(_IMAGE_SUFFIX)] if k.endswith(_IMAGE_SUFFIX) else k
            cameras[cam] = k
        elif ds.ndim <= 2:
            low_dim.append(k)
    if not cameras:
        raise ValueError(f"{path}:{name}: no image observations ((T, H, W, 3) uint8) found")
    return cameras, sorted(low_dim)


def _import_demo(w, demo, where, cameras, keys, task_id, instruction, phase, data_source, outcome_source, control_hz) -> str:
    T = int(demo["actions"].shape[0])
    ours = _json_attr(demo.attrs.get("robot_stack_meta"), None)
    imgs = {c: demo["obs"][k][()] for c, k in cameras.items()}
    state = np.concatenate([demo["obs"][k][()].reshape(T, -1).astype(np.float32) for k in keys], axis=1)
    actions = demo["actions"][()].astype(np.float32)
    rewards = demo["rewards"][()].astype(np.float32) if "rewards" in demo else np.zeros(T, np.float32)
    dones = demo["dones"][()].astype(bool) if "dones" in demo else np.zeros(T, bool)
    get = lambda name, default: demo[name][()] if name in demo else default
    success_prob = get("success_prob", np.full(T, np.nan, np.float32))
    intervention = get("intervention", np.zeros(T, bool))
    policy_version = get("policy_version", np.zeros(T, np.int64))
    timestamps = get("timestamps", np.arange(T) / control_hz)
    truncated = get("truncated", None)
    if truncated is None:
        truncated = np.zeros(T, bool)
        truncated[-1] = not dones[-1]
    for name, arr in [("state", state), ("actions", actions), ("rewards", rewards)]:
        if len(arr) != T or not np.all(np.isfinite(arr)):
            raise ValueError(f"{where}: '{name}' has {len(arr)} rows (expected {T}) or non-finite values")
    if ours:
        meta = EpisodeMeta(task_id=ours["task_id"], instruction=ours.get("instruction", ""), phase=ours["phase"],
                           eval=ours.get("eval", False), data_source=ours.get("data_source", data_source), extra=ours.get("extra", {}))
    else:
        meta = EpisodeMeta(task_id=task_id, instruction=instruction, phase=phase, data_source=data_source,
                           extra={"source_demo": where})
    ep = w.begin_episode(meta)
    for t in range(T):
        ep.add_step(images={c: imgs[c][t] for c in imgs}, state=state[t], action=actions[t], reward=float(rewards[t]),
                    success_prob=float(success_prob[t]), intervention=bool(intervention[t]), policy_version=int(policy_version[t]),
                    timestamp=float(timestamps[t]), terminal=bool(dones[t]), truncated=bool(truncated[t]))
    if ours:
        # Our own export: restore the label history as it was (first label at commit, the rest appended).
        labels = [Label.from_dict(l) for l in ours.get("labels", [])]
        reasons = {i: s["reason"] for i, s in enumerate(ours.get("intervention_segments", [])) if s.get("reason")}
        first = labels[0] if labels and labels[0].kind == "outcome" else None
        eid = ep.commit(outcome=first.value if first else None, source=first.source if first else "human",
                        by=first.by if first else None, note=first.note if first else "", intervention_reasons=reasons)
        for lab in labels[1:] if first else labels:
            w.store._add_label(eid, lab)
        return eid
    success = bool(dones[-1] or rewards.max() > 0)
    return ep.commit(outcome="success" if success else None, source=outcome_source, by="import")


def _json_attr(value: Any, default):
    if value is None:
        return default
    if isinstance(value, bytes):
        value = value.decode()
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return default
