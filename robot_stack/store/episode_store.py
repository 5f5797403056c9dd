"""The episode store: one zarr v3 group per robot, time-major arrays, commit marker, labels.

Layout (Diffusion Policy replay-buffer convention, one group per robot)::

    <root>/zarr.json                      attrs: format name + version
    <root>/<robot>/zarr.json              attrs: format, robot + camera description, dims,
                                          "commit" marker {n_episodes, n_frames, seq},
                                          "partial" (flushed, uncommitted episode), writer lease
    <root>/<robot>/data/image_<camera>    (N, H, W, 3) uint8
    <root>/<robot>/data/state             (N, S) float32     ... action (N, A) float32, reward,
                                          success_prob (N,) float32, intervention, terminal,
                                          truncated (N,) bool, policy_version (N,) int64,
                                          timestamp (N,) float64
    <root>/<robot>/meta/episode_ends      (E,) int64, cumulative (exclusive) frame ends
    <root>/<robot>/meta/episodes/<index>  attrs: that episode's metadata at commit (immutable)
    <root>/<robot>/labels/<index>.<ns>.<rand>  attrs: one relabel (append-only history)

Commit protocol: the writer writes an episode's frames, then ``episode_ends``, then the
episode document, and only then advances the commit marker (one atomic write of the robot
group's zarr.json). Readers read the marker first and never read rows at or above its
``n_frames``, so they never see a partial episode or the zero-filled rows a zarr append
exposes before its data lands.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
import zlib
from typing import Any, Callable, Iterator, Literal

import numpy as np

from robot_stack.store.errors import (
    EpisodeNotFoundError,
    EpisodeReadError,
    MissingNodeError,
    StoreError,
)
from robot_stack.store.meta import (
    IMAGE_PREFIX,
    OUTCOMES,
    STEP_FIELDS,
    EpisodeInfo,
    Label,
    check_format,
    check_label_source,
    format_attr,
    parse_episode_id,
)
from robot_stack.store.writer import RobotWriter
from robot_stack.store.zarr_backend import ZarrBackend


@dataclasses.dataclass
class StoreConfig:
    """Where the episode store lives and how it is written."""

    url: str = "episodes.zarr"  # store location: a directory or an object-store URL (s3://bucket/prefix)
    s3_endpoint_url: str | None = None  # object-store endpoint (MinIO, moto, ...); None = the URL scheme's default
    flush_interval_s: float = 3.0  # write an open episode's new steps to the store at least this often (crash safety)
    partial_policy: Literal["drop", "recover"] = "recover"  # on writer restart: drop a flushed uncommitted episode or commit it as truncated
    image_chunk_frames: int = 32  # frames per chunk of image arrays (chunked in time only)
    lowdim_chunk_frames: int = 1024  # frames per chunk of state/action/scalar arrays
    zstd_level: int = 3  # zstd compression level (no shuffle)
    verify_checksums: bool = True  # readers check each episode array against its crc32 from commit time

    def __post_init__(self) -> None:
        if not str(self.url):
            raise ValueError("url must not be empty")
        if not self.flush_interval_s > 0:
            raise ValueError(f"flush_interval_s must be > 0, got {self.flush_interval_s!r}")
        if self.partial_policy not in ("drop", "recover"):
            raise ValueError(f"partial_policy must be 'drop' or 'recover', got {self.partial_policy!r}")
        for name in ("image_chunk_frames", "lowdim_chunk_frames"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not 1 <= int(self.zstd_level) <= 22:
            raise ValueError(f"zstd_level must be in 1..22, got {self.zstd_level!r}")

    def storage_options(self, extra: dict | None = None) -> dict:
        opts = dict(extra or {})
        if self.s3_endpoint_url:
            opts.setdefault("client_kwargs", {})["endpoint_url"] = self.s3_endpoint_url
            opts.setdefault("endpoint_url", self.s3_endpoint_url)
        return opts


@dataclasses.dataclass
class Episode:
    """A committed episode read back: ``data`` holds time-major numpy arrays.

    ``data["images"][camera]`` (T, H, W, 3) uint8; ``state`` (T, S) float32; ``action`` (T, A)
    float32; ``reward``/``success_prob`` (T,) float32; ``intervention``/``terminal``/``truncated``
    (T,) bool; ``policy_version`` (T,) int64; ``timestamp`` (T,) float64.
    """

    info: EpisodeInfo
    data: dict[str, Any]

    def __len__(self) -> int:
        return self.info.length


@dataclasses.dataclass
class StoreCursor:
    """How far a reader has read: committed episode count per robot. JSON-able via to_dict/from_dict."""

    positions: dict[str, int] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, int]:
        return dict(self.positions)

    @classmethod
    def from_dict(cls, d: dict[str, int]) -> "StoreCursor":
        return cls({str(k): int(v) for k, v in d.items()})


@dataclasses.dataclass
class VerifyReport:
    """Result of :meth:`EpisodeStore.verify`: bad episodes name their arrays and what is wrong."""

    n_episodes: int
    bad_episodes: dict[str, list[str]]
    problems: list[str]  # store-level problems (unreadable robot group, inconsistent marker, ...)

    @property
    def ok(self) -> bool:
        return not self.bad_episodes and not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "n_episodes": self.n_episodes, "bad_episodes": self.bad_episodes, "problems": self.problems}


class EpisodeStore:
    """Owns all access to one episode store (a directory or an object-store prefix).

    Writers: ``store.writer(robot_id, ...)`` (one per robot group, in that robot's actor).
    Readers: ``episodes()``, ``read_episode()``, ``poll()``/``follow()``, from any process.
    """

    def __init__(self, config: StoreConfig, storage_options: dict | None = None, read_only: bool = False):
        self.config = config
        self.url = str(config.url)
        self._backend = ZarrBackend(self.url, config.storage_options(storage_options), read_only=read_only)
        self._docs: dict[str, dict[int, dict]] = {}  # robot -> index -> commit document (immutable)
        self._labels: dict[str, dict[str, tuple[int, Label]]] = {}  # robot -> label key -> (index, label)
        self._robot_attrs: dict[str, dict] = {}

    # ---------------------------------------------------------------- constructors
    @classmethod
    def create(cls, url: str | os.PathLike, storage_options: dict | None = None, config: StoreConfig | None = None, **overrides) -> "EpisodeStore":
        """Open the store at ``url``, creating an empty one if nothing is there."""
        cfg = _config(url, config, overrides)
        store = cls(cfg, storage_options)
        try:
            attrs = store._backend.read_attrs("")
        except MissingNodeError:
            store._backend.write_attrs("", {"format": format_attr()})
            return store
        check_format(attrs, store.url)
        return store

    @classmethod
    def open(cls, url: str | os.PathLike, storage_options: dict | None = None, config: StoreConfig | None = None,
             read_only: bool = False, **overrides) -> "EpisodeStore":
        """Open an existing store; StoreError if there is none, IncompatibleStoreError if its version differs."""
        cfg = _config(url, config, overrides)
        store = cls(cfg, storage_options, read_only=read_only)
        try:
            attrs = store._backend.read_attrs("")
        except MissingNodeError as exc:
            raise StoreError(f"{store.url}: no episode store here (create one with EpisodeStore.create)") from exc
        check_format(attrs, store.url)
        return store

    @classmethod
    def from_config(cls, config: StoreConfig, storage_options: dict | None = None, create: bool = True) -> "EpisodeStore":
        return (cls.create if create else cls.open)(config.url, storage_options, config=config)

    def close(self) -> None:
        self._backend.forget()

    def __enter__(self) -> "EpisodeStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- writing
    def writer(
        self,
        robot_id: str,
        robot_description: dict | None = None,
        cameras: dict[str, tuple[int, int]] | None = None,
        state_dim: int | None = None,
        action_dim: int = 7,
        *,
        camera_descriptions: dict[str, Any] | None = None,
        partial_policy: str | None = None,
        flush_interval_s: float | None = None,
        takeover: bool = False,
    ) -> "RobotWriter":
        """The writer of robot ``robot_id``'s group (created on first use; reopened after a restart)."""
        return RobotWriter(
            self, robot_id, robot_description or {}, cameras, state_dim, action_dim,
            camera_descriptions=camera_descriptions or {},
            partial_policy=partial_policy or self.config.partial_policy,
            flush_interval_s=flush_interval_s or self.config.flush_interval_s,
            takeover=takeover,
        )

    # ---------------------------------------------------------------- reading: robots and episodes
    def robots(self) -> list[str]:
        """Robot groups in the store (sorted)."""
        return [n for n in self._backend.list_groups("") if not n.startswith(".")]

    def robot_info(self, robot_id: str) -> dict:
        """Robot group attributes: description, cameras, dims, commit marker."""
        return self._read_robot_attrs(robot_id)

    def _read_robot_attrs(self, robot_id: str) -> dict:
        try:
            attrs = self._backend.read_attrs(robot_id)
        except MissingNodeError as exc:
            raise EpisodeNotFoundError(f"{self.url}: no robot '{robot_id}' in the store") from exc
        if attrs:  # {}: a robot group being created (zarr writes parent groups first): nothing committed yet
            check_format(attrs, f"{self.url} (robot '{robot_id}')")
        self._robot_attrs[robot_id] = attrs
        return attrs

    def _committed(self, robot_id: str) -> tuple[dict, int, int]:
        attrs = self._read_robot_attrs(robot_id)
        commit = attrs.get("commit") or {}
        return attrs, int(commit.get("n_episodes", 0)), int(commit.get("n_frames", 0))

    def _load_docs(self, robot_id: str, n_episodes: int) -> dict[int, dict]:
        docs = self._docs.setdefault(robot_id, {})
        missing = [i for i in range(n_episodes) if i not in docs]
        if missing:
            paths = {f"{robot_id}/meta/episodes/{i:06d}": i for i in missing}
            try:
                for path, attrs in self._backend.read_many_attrs(paths).items():
                    docs[paths[path]] = attrs
            except MissingNodeError as exc:
                raise StoreError(f"{self.url}: robot '{robot_id}': committed episode metadata missing: {exc}") from exc
        return docs

    def _load_labels(self, robot_id: str) -> dict[int, list[Label]]:
        cache = self._labels.setdefault(robot_id, {})
        names = self._backend.list_child_names(f"{robot_id}/labels")
        new = [n for n in names if n not in cache and n.split(".")[0].isdigit()]
        if new:
            # A label being written right now may be listed before its metadata lands: pick it up next time.
            paths = (f"{robot_id}/labels/{n}" for n in new)
            for path, attrs in self._backend.read_many_attrs(paths, skip_missing=True).items():
                name = path.rsplit("/", 1)[1]
                cache[name] = (int(name.split(".")[0]), Label.from_dict(attrs))
        by_episode: dict[int, list[Label]] = {}
        for index, label in cache.values():
            by_episode.setdefault(index, []).append(label)
        return by_episode

    def _infos(self, robot_id: str, first: int = 0, with_labels: bool = True) -> list[EpisodeInfo]:
        attrs, n_episodes, _ = self._committed(robot_id)
        docs = self._load_docs(robot_id, n_episodes)
        labels = self._load_labels(robot_id) if with_labels else {}
        return [EpisodeInfo.build(robot_id, attrs, docs[i], labels.get(i, [])) for i in range(first, n_episodes)]

    def episodes(
        self,
        robot: str | None = None,
        *,
        task_id: str | None = None,
        phase: str | None = None,
        outcome: str | None = None,
        eval: bool | None = None,
        policy_version: int | None = None,
        has_intervention: bool | None = None,
        data_source: str | None = None,
    ) -> list[EpisodeInfo]:
        """Committed episodes matching every given filter (``None`` = any), ordered by robot then index.

        ``outcome``: "success", "failure" or "unknown" (never labelled); labels applied later count.
        """
        robots = [robot] if robot is not None else self.robots()
        out = []
        for r in robots:
            out.extend(
                i for i in self._infos(r)
                if i.matches(task_id=task_id, phase=phase, outcome=outcome, eval=eval, policy_version=policy_version,
                             has_intervention=has_intervention, data_source=data_source)
            )
        return out

    def episode(self, eid: str) -> EpisodeInfo:
        """Metadata (with label history) of committed episode ``eid`` ("<robot>:<index>")."""
        robot, index = parse_episode_id(eid)
        attrs, n_episodes, _ = self._committed(robot)
        if index >= n_episodes:
            raise EpisodeNotFoundError(f"{self.url}: episode {eid} is not committed (robot '{robot}' has {n_episodes})")
        docs = self._load_docs(robot, n_episodes)
        return EpisodeInfo.build(robot, attrs, docs[index], self._load_labels(robot).get(index, []))

    def read_episode(
        self,
        eid: "str | EpisodeInfo",
        fields: list[str] | None = None,
        cameras: list[str] | None = None,
        verify: bool | None = None,
    ) -> Episode:
        """Read a committed episode's arrays (see :class:`Episode`); ``fields``/``cameras`` select a subset.

        Raises EpisodeReadError naming the episode and array on missing arrays, undecodable chunks or
        checksum mismatches (a missing chunk reads back as zeros and fails the checksum).
        """
        info = eid if isinstance(eid, EpisodeInfo) else self.episode(eid)
        verify = self.config.verify_checksums if verify is None else verify
        cams = list(info.cameras) if cameras is None else list(cameras)
        unknown = set(cams) - set(info.cameras)
        if unknown:
            raise ValueError(f"episode {info.episode_id}: unknown camera(s) {sorted(unknown)}; has {sorted(info.cameras)}")
        names = list(STEP_FIELDS) if fields is None else list(fields)
        bad = set(names) - set(STEP_FIELDS)
        if bad:
            raise ValueError(f"unknown field(s) {sorted(bad)}; fields: {list(STEP_FIELDS)}")
        data: dict[str, Any] = {"images": {}}
        for name in [IMAGE_PREFIX + c for c in cams] + names:
            values = self._read_array(info, name, verify)
            if name.startswith(IMAGE_PREFIX):
                data["images"][name[len(IMAGE_PREFIX):]] = values
            else:
                data[name] = values
        return Episode(info, data)

    def _read_array(self, info: EpisodeInfo, name: str, verify: bool) -> np.ndarray:
        path = f"{info.robot_id}/data/{name}"
        try:
            values = self._backend.read_frames(path, info.start, info.end)
        except (EpisodeReadError, MissingNodeError) as exc:
            raise EpisodeReadError(f"episode {info.episode_id}: array data/{name}: {exc}", info.episode_id, name) from exc
        if verify and name in info.checksums:
            crc = zlib.crc32(np.ascontiguousarray(values).data)
            if crc != info.checksums[name]:
                raise EpisodeReadError(
                    f"episode {info.episode_id}: array data/{name} rows [{info.start}, {info.end}) fail their checksum "
                    f"(a chunk is missing or damaged)", info.episode_id, name,
                )
        return values

    # ---------------------------------------------------------------- tailing
    def cursor(self, at_end: bool = False) -> StoreCursor:
        """A cursor at the start of the store, or (``at_end``) after everything committed now."""
        if not at_end:
            return StoreCursor()
        return StoreCursor({r: self._committed(r)[1] for r in self.robots()})

    def poll(self, cursor: StoreCursor | None = None, discover_robots: bool = True) -> tuple[list[EpisodeInfo], StoreCursor]:
        """Episodes committed after ``cursor`` and the advanced cursor. One small marker read per robot."""
        cursor = cursor or StoreCursor()
        robots = self.robots() if discover_robots else list(cursor.positions)
        positions = dict(cursor.positions)
        new: list[EpisodeInfo] = []
        for r in robots:
            attrs, n_episodes, _ = self._committed(r)
            seen = positions.get(r, 0)
            if n_episodes > seen:
                docs = self._load_docs(r, n_episodes)
                labels = self._load_labels(r)
                new.extend(EpisodeInfo.build(r, attrs, docs[i], labels.get(i, [])) for i in range(seen, n_episodes))
            positions[r] = max(seen, n_episodes)
        return new, StoreCursor(positions)

    def follow(
        self,
        cursor: StoreCursor | None = None,
        poll_s: float = 0.05,
        stop: Callable[[], bool] | None = None,
        robot_discovery_s: float = 1.0,
    ) -> Iterator[EpisodeInfo]:
        """Yield committed episodes as they appear (from ``cursor``), polling the commit markers every ``poll_s``.

        New robot groups are discovered every ``robot_discovery_s``; ``self.last_cursor`` holds the
        cursor after the latest poll (save it to resume later).
        """
        cursor = cursor or StoreCursor()
        last_discovery = 0.0
        while not (stop and stop()):
            now = time.monotonic()
            discover = now - last_discovery >= robot_discovery_s
            if discover:
                last_discovery = now
            new, cursor = self.poll(cursor, discover_robots=discover)
            self.last_cursor = cursor
            yield from new
            if not new:
                time.sleep(poll_s)

    # ---------------------------------------------------------------- labels
    def relabel(self, eid: str, outcome: str | None, by: str, source: str = "human", note: str = "") -> Label:
        """Record a new outcome label ("success"/"failure"/None) for a committed episode. Arrays are untouched."""
        if outcome not in OUTCOMES and outcome is not None:
            raise ValueError(f"outcome must be one of {OUTCOMES} or None, got {outcome!r}")
        return self._add_label(eid, Label("outcome", outcome, check_label_source(source), str(by), time.time(), None, note))

    def label_intervention(self, eid: str, segment: int, reason: str, by: str, source: str = "human", note: str = "") -> Label:
        """Attach a reason to intervention segment ``segment`` (index into info.intervention_segments)."""
        info = self.episode(eid)
        if not 0 <= int(segment) < len(info.intervention_segments):
            raise ValueError(f"episode {eid} has {len(info.intervention_segments)} intervention segment(s); no segment {segment}")
        return self._add_label(eid, Label("intervention_reason", str(reason), check_label_source(source), str(by), time.time(), int(segment), note))

    def label_history(self, eid: str) -> list[Label]:
        return self.episode(eid).labels

    def _add_label(self, eid: str, label: Label) -> Label:
        if self._backend.read_only:
            raise StoreError(f"{self.url}: opened read-only; open it writable to relabel episodes")
        robot, index = parse_episode_id(eid)
        self.episode(eid)  # must be committed
        name = f"{index:06d}.{time.time_ns()}.{uuid.uuid4().hex[:8]}"
        # A new group per label: concurrent relabellers and the robot's writer never write the same key.
        self._backend.create_group(f"{robot}/labels/{name}", label.to_dict(), exist_ok=False)
        return label

    # ---------------------------------------------------------------- verification
    def verify(self, read_data: bool = True, progress: bool = False) -> VerifyReport:
        """Check every committed episode: arrays present, chunks present, data decodes and matches checksums."""
        from tqdm import tqdm

        bad: dict[str, list[str]] = {}
        problems: list[str] = []
        n = 0
        for r in self.robots():
            try:
                attrs, n_episodes, n_frames = self._committed(r)
                infos = self._infos(r)
            except StoreError as exc:
                problems.append(f"robot '{r}': {exc}")
                continue
            n += len(infos)
            names = [IMAGE_PREFIX + c for c in attrs.get("cameras", {})] + list(STEP_FIELDS)
            for name in names:
                path = f"{r}/data/{name}"
                try:
                    length = self._backend.length(path, fresh=True)
                    holes = self._backend.missing_chunks(path, n_frames)
                except MissingNodeError:
                    for i in infos:
                        bad.setdefault(i.episode_id, []).append(f"array data/{name} is missing")
                    continue
                if length < n_frames:
                    problems.append(f"robot '{r}': array data/{name} has {length} frames, commit marker says {n_frames}")
                for a, b in holes:
                    for i in infos:
                        if i.start < b and a < i.end:
                            bad.setdefault(i.episode_id, []).append(f"array data/{name}: chunk for rows [{a}, {b}) is missing")
            try:
                ends = self._backend.read_frames(f"{r}/meta/episode_ends", 0, n_episodes) if n_episodes else np.zeros(0)
                if any(int(e) != i.end for e, i in zip(ends, infos)):
                    problems.append(f"robot '{r}': meta/episode_ends disagrees with the episode documents")
            except StoreError as exc:
                problems.append(f"robot '{r}': meta/episode_ends unreadable: {exc}")
            if read_data:
                for info in tqdm(infos, desc=f"verify {r}", disable=not progress, unit="ep"):
                    for name in names:
                        if any(name in msg for msg in bad.get(info.episode_id, [])):
                            continue
                        try:
                            self._read_array(info, name, verify=True)
                        except EpisodeReadError as exc:
                            bad.setdefault(info.episode_id, []).append(str(exc))
        return VerifyReport(n, bad, problems)


def _config(url, config: StoreConfig | None, overrides: dict) -> StoreConfig:
    base = dataclasses.asdict(config) if config is not None else {}
    base.update(overrides)
    base["url"] = os.fspath(url)
    return StoreConfig(**base)
