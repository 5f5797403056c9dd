"""Writer side of the episode store: one ``RobotWriter`` per robot group, one open ``EpisodeRecorder``.

The commit protocol lives here: an episode's rows (and its ``meta/episode_ends`` entry and
document) are written beyond the commit marker, and only then is the marker advanced, in one
atomic write of the robot group's attributes. See ``episode_store`` for the layout.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import time
import uuid
import zlib
from typing import TYPE_CHECKING

import numpy as np

from robot_stack.store.errors import MissingNodeError, StoreError, WriterConflictError
from robot_stack.store.meta import (
    IMAGE_PREFIX,
    OUTCOMES,
    STEP_FIELDS,
    EpisodeMeta,
    InterventionSegment,
    Label,
    check_format,
    check_label_source,
    episode_id,
    format_attr,
    intervention_segments,
    validate_id,
)

if TYPE_CHECKING:
    from robot_stack.store.episode_store import EpisodeStore

log = logging.getLogger(__name__)


class RobotWriter:
    """Appends episodes to one robot's group. Exactly one live writer per robot group.

    Created by :meth:`EpisodeStore.writer`. On open it applies the partial-episode policy to an
    episode a crashed writer left flushed but uncommitted ("drop" it, or "recover" it as a
    truncated, unlabelled episode) and trims arrays back to the commit marker.
    """

    def __init__(self, store: EpisodeStore, robot_id: str, robot_description: dict, cameras, state_dim, action_dim,
                 *, camera_descriptions: dict, partial_policy: str, flush_interval_s: float, takeover: bool):
        self.store = store
        self.robot_id = validate_id("robot id", robot_id)
        self._b = store._backend
        self.partial_policy = partial_policy
        self.flush_interval_s = float(flush_interval_s)
        self._open_episode: EpisodeRecorder | None = None
        half_created = False
        try:
            attrs = self._b.read_attrs(self.robot_id)
            exists = bool(attrs)
            half_created = not attrs  # {}: a creation that crashed before its last step; create again
        except MissingNodeError:
            exists = False
        if exists:
            check_format(attrs, f"{store.url} (robot '{self.robot_id}')")
            self._check_same_layout(attrs, cameras, state_dim, action_dim)
        else:
            if cameras is None or state_dim is None:
                raise ValueError(f"robot '{robot_id}' is new: cameras and state_dim are required")
            attrs = self._create_group(robot_description, cameras, camera_descriptions, int(state_dim), int(action_dim),
                                       overwrite=half_created)
        self._attrs = attrs
        self.cameras: dict[str, tuple[int, int]] = {c: tuple(v["shape"][:2]) for c, v in attrs["cameras"].items()}
        self.state_dim = int(attrs["state_dim"])
        self.action_dim = int(attrs["action_dim"])
        self._take_lease(takeover)
        self._recover()

    # -- setup
    def _create_group(self, robot_description, cameras, camera_descriptions, state_dim, action_dim, overwrite: bool) -> dict:
        cfg = self.store.config
        cams = {}
        for name, hw in cameras.items():
            validate_id("camera name", name)
            h, w = (int(x) for x in tuple(hw)[:2])
            if h < 1 or w < 1:
                raise ValueError(f"camera '{name}': bad image size {hw!r}")
            cams[name] = {"shape": [h, w, 3], "description": camera_descriptions.get(name, {})}
        if state_dim < 1 or action_dim < 1:
            raise ValueError(f"state_dim and action_dim must be >= 1, got {state_dim}, {action_dim}")
        r = self.robot_id
        for name, (h, w, _) in ((n, c["shape"]) for n, c in cams.items()):
            self._b.create_time_array(f"{r}/data/{IMAGE_PREFIX}{name}", (h, w, 3), "uint8", cfg.image_chunk_frames, cfg.zstd_level, overwrite)
        dims = {"state_dim": state_dim, "action_dim": action_dim}
        for name, (dtype, shape) in STEP_FIELDS.items():
            frame_shape = (dims[shape],) if isinstance(shape, str) else shape
            self._b.create_time_array(f"{r}/data/{name}", frame_shape, dtype, cfg.lowdim_chunk_frames, cfg.zstd_level, overwrite)
        self._b.create_time_array(f"{r}/meta/episode_ends", (), "int64", cfg.lowdim_chunk_frames, cfg.zstd_level, overwrite)
        self._b.create_group(f"{r}/meta/episodes")
        self._b.create_group(f"{r}/labels")
        attrs = {
            "format": format_attr(),
            "robot": {"id": r, "description": dict(robot_description)},
            "cameras": cams,
            "state_dim": state_dim,
            "action_dim": action_dim,
            "commit": {"n_episodes": 0, "n_frames": 0, "seq": 0, "time": time.time()},
            "partial": None,
            "writer": None,
        }
        # The group's attributes are written last: until then readers see an empty group, i.e. no episodes.
        self._b.write_attrs(r, attrs)
        return attrs

    def _check_same_layout(self, attrs, cameras, state_dim, action_dim) -> None:
        where = f"{self.store.url} (robot '{self.robot_id}')"
        if cameras is not None:
            have = {c: tuple(v["shape"][:2]) for c, v in attrs["cameras"].items()}
            want = {c: tuple(int(x) for x in tuple(hw)[:2]) for c, hw in cameras.items()}
            if have != want:
                raise StoreError(f"{where}: cameras {want} differ from the stored group's {have}; use a new robot id")
        if state_dim is not None and int(state_dim) != attrs["state_dim"]:
            raise StoreError(f"{where}: state_dim {state_dim} differs from the stored {attrs['state_dim']}")
        if action_dim is not None and int(action_dim) != attrs["action_dim"]:
            raise StoreError(f"{where}: action_dim {action_dim} differs from the stored {attrs['action_dim']}")

    def _take_lease(self, takeover: bool) -> None:
        lease = self._attrs.get("writer")
        host = socket.gethostname()
        if lease and not takeover and lease.get("host") == host and lease.get("pid") != os.getpid() and _pid_alive(lease.get("pid")):
            raise WriterConflictError(
                f"{self.store.url}: robot '{self.robot_id}' is being written by pid {lease['pid']} on {host}; "
                f"one writer per robot group (pass takeover=True if that process is gone)"
            )
        self._token = uuid.uuid4().hex
        self._attrs["writer"] = {"host": host, "pid": os.getpid(), "token": self._token, "since": time.time()}
        self._write_attrs()

    def _write_attrs(self) -> None:
        self._b.write_attrs(self.robot_id, self._attrs, cache=True)

    @property
    def n_episodes(self) -> int:
        return int(self._attrs["commit"]["n_episodes"])

    @property
    def n_frames(self) -> int:
        return int(self._attrs["commit"]["n_frames"])

    def _array_names(self) -> list[str]:
        return [IMAGE_PREFIX + c for c in self.cameras] + list(STEP_FIELDS)

    def _recover(self) -> None:
        """Apply the partial-episode policy, then trim every array to the committed frame count."""
        partial = self._attrs.get("partial")
        if partial and partial.get("n_frames", 0) > 0 and self.partial_policy == "recover":
            try:
                self._commit_recovered(partial)
            except StoreError as exc:
                log.warning("robot %s: could not recover partial episode (%s); dropping it", self.robot_id, exc)
        elif partial:
            log.info("robot %s: dropping partial episode of %s frames", self.robot_id, partial.get("n_frames"))
        if self._attrs.get("partial") is not None:
            self._attrs["partial"] = None
            self._write_attrs()
        self._trim_to_commit(fresh=True)

    def _trim_to_commit(self, fresh: bool = False) -> None:
        """Shrink arrays holding rows of an uncommitted episode back to the commit marker."""
        n = self.n_frames
        for name in self._array_names():
            path = f"{self.robot_id}/data/{name}"
            if self._b.length(path, fresh=fresh) > n:
                self._b.resize(path, n)
        ends = f"{self.robot_id}/meta/episode_ends"
        if self._b.length(ends, fresh=fresh) > self.n_episodes:
            self._b.resize(ends, self.n_episodes)

    def _commit_recovered(self, partial: dict) -> None:
        start, n = int(partial["start"]), int(partial["n_frames"])
        if start != self.n_frames:
            raise StoreError(f"partial episode starts at {start}, commit marker at {self.n_frames}")
        checksums, flags, versions, ended = {}, None, None, False
        for name in self._array_names():
            path = f"{self.robot_id}/data/{name}"
            values = self._b.read_frames(path, start, start + n)
            if name == "terminal":
                ended = bool(values[-1])
            if name == "truncated" and not ended:  # cut short by the crash (a terminal end stays terminal)
                values = values.copy()
                values[-1] = True
                self._b.write_frames(path, start + n - 1, values[-1:])
            checksums[name] = zlib.crc32(np.ascontiguousarray(values).data)
            if name == "intervention":
                flags = values
            if name == "policy_version":
                versions = values
        meta = EpisodeMeta.coerce(partial["meta"])
        self._finish_commit(meta, start, n, checksums, flags, versions, labels=[], reasons={}, recovered=True)
        log.info("robot %s: recovered partial episode %d (%d frames) as truncated", self.robot_id, self.n_episodes - 1, n)

    # -- episodes
    def begin_episode(self, meta: EpisodeMeta | dict) -> "EpisodeRecorder":
        """Start buffering a new episode; only one may be open at a time."""
        if self._open_episode is not None:
            raise StoreError(f"robot '{self.robot_id}': an episode is already open; commit() or discard() it first")
        meta = EpisodeMeta.coerce(meta)
        try:
            json.dumps(meta.extra)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"episode meta 'extra' must be JSON-serialisable: {exc}") from None
        self._open_episode = EpisodeRecorder(self, meta)
        return self._open_episode

    def _write_rows(self, start: int, columns: dict[str, np.ndarray]) -> None:
        # Arrays are independent: write them concurrently, in one trip through zarr's event loop.
        self._b.write_columns([(f"{self.robot_id}/data/{name}", start, values) for name, values in columns.items()])

    def _set_partial(self, partial: dict | None) -> None:
        self._attrs["partial"] = partial
        self._write_attrs()

    def _finish_commit(self, meta: EpisodeMeta, start: int, length: int, checksums: dict, flags, versions,
                       labels: list[Label], reasons: dict, recovered: bool,
                       rows: tuple[int, dict[str, np.ndarray]] | None = None) -> str:
        index = self.n_episodes
        end = start + length
        r = self.robot_id
        # The episode's last rows and its episode_ends entry, together (both lie beyond the marker).
        writes = [(f"{r}/meta/episode_ends", index, np.array([end], dtype=np.int64))]
        if rows is not None:
            writes += [(f"{r}/data/{name}", rows[0], values) for name, values in rows[1].items()]
        self._b.write_columns(writes)
        segments = intervention_segments(flags)
        for k, reason in reasons.items():
            if not 0 <= int(k) < len(segments):
                raise ValueError(f"intervention reason for segment {k}, but the episode has {len(segments)} segment(s)")
            s = segments[int(k)]
            segments[int(k)] = InterventionSegment(s.start, s.end, str(reason))
        doc = {
            "index": index,
            "start": start,
            "end": end,
            **{k: v for k, v in dataclasses.asdict(meta).items()},
            "policy_versions": sorted({int(v) for v in np.asarray(versions).tolist()}),
            "intervention_segments": [s.to_dict() for s in segments],
            "labels": [l.to_dict() for l in labels],
            "committed_at": time.time(),
            "recovered": recovered,
            "checksums": checksums,
        }
        # Overwrites a stale document a crashed writer may have left for this (then uncommitted) index.
        self._b.write_attrs(f"{r}/meta/episodes/{index:06d}", doc)
        # LAST: advance the commit marker (and clear the partial record) in one atomic write.
        commit = self._attrs["commit"]
        self._attrs["commit"] = {"n_episodes": index + 1, "n_frames": end, "seq": int(commit.get("seq", 0)) + 1, "time": time.time()}
        self._attrs["partial"] = None
        self._write_attrs()
        return episode_id(r, index)

    def close(self) -> None:
        """Release the writer lease. An open episode stays flushed as partial (the next writer applies the policy)."""
        if self._open_episode is not None and self._open_episode.n_steps:
            self._open_episode.flush()
            self._open_episode = None
        if self._attrs.get("writer", {}) and self._attrs["writer"].get("token") == self._token:
            self._attrs["writer"] = None
            self._write_attrs()

    def __enter__(self) -> "RobotWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class EpisodeRecorder:
    """One open episode: buffers steps in memory, flushes them in parts every ``flush_interval_s``."""

    def __init__(self, writer: RobotWriter, meta: EpisodeMeta):
        self.w = writer
        self.meta = meta
        self.start = writer.n_frames
        self._pending: dict[str, list] = {name: [] for name in writer._array_names()}
        self._n_flushed = 0
        self._crc: dict[str, int] = {name: 0 for name in writer._array_names()}
        self._flags: list[bool] = []
        self._versions: list[int] = []
        self._last_flush = time.monotonic()
        self._closed = False

    @property
    def n_steps(self) -> int:
        return self._n_flushed + len(self._pending["reward"])

    def __len__(self) -> int:
        return self.n_steps

    def add_step(
        self,
        *,
        images: dict[str, np.ndarray],
        state,
        action,
        reward: float = 0.0,
        success_prob: float = float("nan"),
        intervention: bool = False,
        policy_version: int = 0,
        timestamp: float | None = None,
        terminal: bool = False,
        truncated: bool = False,
    ) -> None:
        """Append one step. ``images[camera]`` (H, W, 3) uint8 for every camera; ``state`` (S,); ``action`` (A,).

        ValueError naming the field on wrong shapes or non-finite state/action/reward.
        """
        self._check_open()
        w = self.w
        if set(images) != set(w.cameras):
            raise ValueError(f"images has cameras {sorted(images)}, the robot group has {sorted(w.cameras)}")
        for cam, (h, wd) in w.cameras.items():
            img = images[cam]
            if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.shape != (h, wd, 3):
                raise ValueError(f"images['{cam}'] must be a ({h}, {wd}, 3) uint8 array, got "
                                 f"{getattr(img, 'shape', None)} {getattr(img, 'dtype', type(img).__name__)}")
        state = _vector("state", state, w.state_dim)
        action = _vector("action", action, w.action_dim)
        if not np.isfinite(reward):
            raise ValueError(f"reward must be finite, got {reward!r}")
        p = self._pending
        for cam in w.cameras:  # copies: camera drivers may reuse their frame buffers
            p[IMAGE_PREFIX + cam].append(images[cam].copy())
        p["state"].append(state)
        p["action"].append(action)
        p["reward"].append(float(reward))
        p["success_prob"].append(float(success_prob))
        p["intervention"].append(bool(intervention))
        p["policy_version"].append(int(policy_version))
        p["timestamp"].append(time.time() if timestamp is None else float(timestamp))
        p["terminal"].append(bool(terminal))
        p["truncated"].append(bool(truncated))
        self._flags.append(bool(intervention))
        self._versions.append(int(policy_version))
        if time.monotonic() - self._last_flush >= w.flush_interval_s:
            self.flush()

    def _columns(self) -> dict[str, np.ndarray]:
        out = {}
        for name, values in self._pending.items():
            if name.startswith(IMAGE_PREFIX):
                out[name] = np.stack(values) if values else None
            else:
                dtype, _ = STEP_FIELDS[name]
                out[name] = np.asarray(values, dtype=dtype)
        return out

    def _take_pending(self) -> tuple[int, dict[str, np.ndarray]]:
        """Buffered steps as columns (start row, {array: values}); counts them as written, updates checksums."""
        n = len(self._pending["reward"])
        start = self.start + self._n_flushed
        if n == 0:
            return start, {}
        cols = self._columns()
        for name, values in cols.items():
            self._crc[name] = zlib.crc32(np.ascontiguousarray(values).data, self._crc[name])
        self._pending = {name: [] for name in self._pending}
        self._n_flushed += n
        return start, cols

    def _write_pending(self) -> int:
        """Write buffered steps beyond the marker; returns how many rows were written."""
        before = self._n_flushed
        start, cols = self._take_pending()
        if cols:
            self.w._write_rows(start, cols)
        return self._n_flushed - before

    def flush(self) -> None:
        """Write buffered steps to the store as the (invisible) partial episode; called automatically."""
        self._check_open()
        self._last_flush = time.monotonic()
        if self._write_pending():
            self.w._set_partial({"start": self.start, "n_frames": self._n_flushed, "meta": dataclasses.asdict(self.meta)})

    def commit(
        self,
        outcome: str | None = None,
        source: str = "classifier",
        by: str | None = None,
        intervention_reasons: dict[int, str] | None = None,
        note: str = "",
    ) -> str:
        """Write the rest of the episode and make it visible; returns its episode id ("<robot>:<index>").

        ``outcome``: "success", "failure" or None (unlabelled); ``source``: classifier/human/scripted.
        ``intervention_reasons``: {segment index: reason} for the episode's intervention segments.
        """
        self._check_open()
        if outcome is not None and outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES} or None, got {outcome!r}")
        check_label_source(source)
        if self.n_steps == 0:
            raise StoreError(f"robot '{self.w.robot_id}': cannot commit an empty episode")
        last_rows = self._take_pending()
        labels = []
        if outcome is not None:
            labels.append(Label("outcome", outcome, source, by or f"actor:{self.w.robot_id}", time.time(), None, note))
        eid = self.w._finish_commit(self.meta, self.start, self._n_flushed, dict(self._crc), np.array(self._flags),
                                    np.array(self._versions), labels, intervention_reasons or {}, recovered=False,
                                    rows=last_rows)
        self._close()
        return eid

    def discard(self) -> None:
        """Drop the episode (nothing becomes visible; flushed rows are overwritten by the next episode)."""
        self._check_open()
        if self._n_flushed:
            self.w._set_partial(None)
            self.w._trim_to_commit()
        self._close()

    def _close(self) -> None:
        self._closed = True
        self.w._open_episode = None

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"robot '{self.w.robot_id}': this episode was already committed or discarded")


def _vector(name: str, value, dim: int) -> np.ndarray:
    arr = np.array(value, dtype=np.float32)  # a copy, never a view of the caller's buffer
    if arr.shape != (dim,):
        raise ValueError(f"{name} must have shape ({dim},), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN/inf: {arr.tolist()}")
    return arr


def _pid_alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True
