"""Episode metadata types of the store: what the actor gives at episode start, labels, and committed-episode info.

Everything here is plain Python (JSON-able dicts in and out); no zarr.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Literal

from robot_stack.store.errors import IncompatibleStoreError

# Bump the major number for any change an older reader cannot read correctly.
FORMAT_VERSION = 1
FORMAT_NAME = "robot_stack.episode_store"

PHASES = ("forward", "backward")
OUTCOMES = ("success", "failure")
OUTCOME_SOURCES = ("classifier", "human", "scripted")
DATA_SOURCES = ("online", "demo", "prior")

Phase = Literal["forward", "backward"]
DataSource = Literal["online", "demo", "prior"]

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")

# Per-step arrays (besides one image array per camera): name -> (dtype, per-step shape; None = state/action dim).
STEP_FIELDS: dict[str, tuple[str, tuple[int, ...] | str]] = {
    "state": ("float32", "state_dim"),
    "action": ("float32", "action_dim"),
    "reward": ("float32", ()),
    "success_prob": ("float32", ()),
    "intervention": ("bool", ()),
    "policy_version": ("int64", ()),
    "timestamp": ("float64", ()),
    "terminal": ("bool", ()),
    "truncated": ("bool", ()),
}
IMAGE_PREFIX = "image_"  # data/image_<camera>, (N, H, W, 3) uint8


def validate_id(kind: str, value: str) -> str:
    """Check a robot or camera id (letters, digits, '_' and '-', ≤ 64 chars); returns it."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise ValueError(f"{kind} {value!r} is invalid: use letters, digits, '_' or '-' (≤ 64 chars)")
    return value


def episode_id(robot_id: str, index: int) -> str:
    """The public id of episode ``index`` of ``robot_id``: ``"<robot>:<index:06d>"``."""
    return f"{robot_id}:{index:06d}"


def parse_episode_id(eid: str) -> tuple[str, int]:
    """Inverse of :func:`episode_id`; raises ValueError naming the bad id."""
    robot, sep, idx = str(eid).rpartition(":")
    if not sep or not robot or not idx.isdigit():
        raise ValueError(f"episode id {eid!r} is not of the form '<robot>:<index>'")
    return robot, int(idx)


@dataclasses.dataclass
class EpisodeMeta:
    """What the actor knows when an episode starts."""

    task_id: str  # task identifier, e.g. "cube_into_bowl"
    instruction: str = ""  # language instruction given to the policy
    phase: Phase = "forward"  # reset-free phase: "forward" task or its "backward" reverse
    eval: bool = False  # evaluation episode (the replay loader skips these by default)
    data_source: DataSource = "online"  # "online" (actor), "demo" (teleoperated demo) or "prior" (imported)
    extra: dict = dataclasses.field(default_factory=dict)  # free-form JSON-able extras (scene seed, ...)

    def __post_init__(self) -> None:
        if not isinstance(self.task_id, str) or not self.task_id:
            raise ValueError(f"task_id must be a non-empty string, got {self.task_id!r}")
        if self.phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {self.phase!r}")
        if self.data_source not in DATA_SOURCES:
            raise ValueError(f"data_source must be one of {DATA_SOURCES}, got {self.data_source!r}")
        if not isinstance(self.extra, dict):
            raise ValueError(f"extra must be a dict, got {type(self.extra).__name__}")
        self.eval = bool(self.eval)

    @classmethod
    def coerce(cls, meta: "EpisodeMeta | dict") -> "EpisodeMeta":
        if isinstance(meta, cls):
            return meta
        if isinstance(meta, dict):
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = set(meta) - known
            if unknown:
                raise ValueError(f"unknown episode meta field(s) {sorted(unknown)}; known: {sorted(known)}")
            return cls(**meta)
        raise TypeError(f"episode meta must be EpisodeMeta or dict, got {type(meta).__name__}")


@dataclasses.dataclass(frozen=True)
class Label:
    """One entry of an episode's label history (never edited, only appended)."""

    kind: Literal["outcome", "intervention_reason"]
    value: str | None  # outcome: "success"/"failure"/None; intervention_reason: the reason text
    source: str  # "classifier", "human" or "scripted"
    by: str  # who gave it (user name, "actor:<robot>", "import")
    time: float  # unix seconds
    segment: int | None = None  # intervention segment index (intervention_reason labels)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Label":
        return cls(**{f.name: d.get(f.name) for f in dataclasses.fields(cls) if f.name in d})


@dataclasses.dataclass(frozen=True)
class InterventionSegment:
    """Steps [start, end) of an episode in which a person drove the robot."""

    start: int
    end: int
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def intervention_segments(flags) -> list[InterventionSegment]:
    """Contiguous runs of True in a (T,) bool array, as segments [start, end)."""
    segments, start = [], None
    for i, f in enumerate(list(map(bool, flags)) + [False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            segments.append(InterventionSegment(start, i))
            start = None
    return segments


@dataclasses.dataclass
class EpisodeInfo:
    """A committed episode as readers see it: commit-time metadata merged with later labels."""

    episode_id: str
    robot_id: str
    index: int  # episode number within the robot group
    start: int  # first frame (row of the robot's data/ arrays)
    end: int  # one past the last frame
    task_id: str
    instruction: str
    phase: str
    eval: bool
    data_source: str
    policy_versions: list[int]
    outcome: str | None  # current outcome: latest outcome label
    outcome_source: str | None
    outcome_by: str | None
    labels: list[Label]  # full history, oldest first
    intervention_segments: list[InterventionSegment]
    robot_description: dict
    cameras: dict  # camera -> {"shape": [H, W, 3], "description": ...}
    committed_at: float
    recovered: bool  # committed on restart from a crash-flushed partial episode (truncated)
    extra: dict
    checksums: dict  # array name -> crc32 of its bytes in this episode

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def has_intervention(self) -> bool:
        return bool(self.intervention_segments)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["length"] = self.length
        d["has_intervention"] = self.has_intervention
        return d

    @classmethod
    def build(cls, robot_id: str, robot_attrs: dict, doc: dict, labels: list[Label]) -> "EpisodeInfo":
        """Merge an episode's commit document with its label history (sorted by time)."""
        history = [Label.from_dict(x) for x in doc.get("labels", [])] + sorted(labels, key=lambda l: l.time)
        outcome = source = by = None
        segments = [InterventionSegment(**s) for s in doc.get("intervention_segments", [])]
        for lab in history:
            if lab.kind == "outcome":
                outcome, source, by = lab.value, lab.source, lab.by
            elif lab.kind == "intervention_reason" and lab.segment is not None and 0 <= lab.segment < len(segments):
                s = segments[lab.segment]
                segments[lab.segment] = InterventionSegment(s.start, s.end, lab.value)
        return cls(
            episode_id=episode_id(robot_id, doc["index"]),
            robot_id=robot_id,
            index=doc["index"],
            start=doc["start"],
            end=doc["end"],
            task_id=doc["task_id"],
            instruction=doc.get("instruction", ""),
            phase=doc["phase"],
            eval=bool(doc.get("eval", False)),
            data_source=doc.get("data_source", "online"),
            policy_versions=list(doc.get("policy_versions", [])),
            outcome=outcome,
            outcome_source=source,
            outcome_by=by,
            labels=history,
            intervention_segments=segments,
            robot_description=robot_attrs.get("robot", {}).get("description", {}),
            cameras=robot_attrs.get("cameras", {}),
            committed_at=doc.get("committed_at", 0.0),
            recovered=bool(doc.get("recovered", False)),
            extra=doc.get("extra", {}),
            checksums=doc.get("checksums", {}),
        )

    def matches(
        self,
        *,
        robot: str | None = None,
        task_id: str | None = None,
        phase: str | None = None,
        outcome: str | None = None,
        eval: bool | None = None,
        policy_version: int | None = None,
        has_intervention: bool | None = None,
        data_source: str | None = None,
    ) -> bool:
        """Filter predicate; ``None`` means "any". ``outcome="unknown"`` matches unlabelled episodes."""
        if robot is not None and self.robot_id != robot:
            return False
        if task_id is not None and self.task_id != task_id:
            return False
        if phase is not None and self.phase != phase:
            return False
        if outcome is not None and (self.outcome or "unknown") != outcome:
            return False
        if eval is not None and self.eval != bool(eval):
            return False
        if policy_version is not None and int(policy_version) not in self.policy_versions:
            return False
        if has_intervention is not None and self.has_intervention != bool(has_intervention):
            return False
        if data_source is not None and self.data_source != data_source:
            return False
        return True


def check_format(attrs: dict, where: str) -> None:
    """Raise IncompatibleStoreError unless ``attrs`` carry this release's format name and version."""
    fmt = attrs.get("format")
    if not isinstance(fmt, dict) or fmt.get("name") != FORMAT_NAME:
        raise IncompatibleStoreError(f"{where}: not a robot_stack episode store (no '{FORMAT_NAME}' format attribute)")
    version = fmt.get("version")
    if version != FORMAT_VERSION:
        raise IncompatibleStoreError(
            f"{where}: written with episode-store format version {version}; this robot_stack reads version "
            f"{FORMAT_VERSION} only (convert it with a matching robot_stack release, or export/import)"
        )


def format_attr() -> dict:
    """The format attribute written on the root and every robot group."""
    return {"name": FORMAT_NAME, "version": FORMAT_VERSION}


def check_label_source(source: str) -> str:
    """Validate a label source (classifier / human / scripted); returns it."""
    if source not in OUTCOME_SOURCES:
        raise ValueError(f"label source must be one of {OUTCOME_SOURCES}, got {source!r}")
    return source
