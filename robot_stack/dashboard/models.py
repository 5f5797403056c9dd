"""Pydantic models of the dashboard's JSON API (they make the OpenAPI schema at /openapi.json)."""

from __future__ import annotations

import math
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

Outcome = Literal["success", "failure"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ----------------------------------------------------------------------------- requests
class LabelRequest(Strict):
    outcome: Outcome = Field(description="the human label of the episode's outcome")
    note: str = Field("", max_length=500, description="optional free text kept in the label history")


class InterventionRequest(Strict):
    reason: str = Field(min_length=1, max_length=200, description="why the person took over")
    note: str = Field("", max_length=500, description="optional free text kept in the label history")

    @field_validator("reason")
    @classmethod
    def _printable(cls, v: str) -> str:
        v = v.strip()
        if not v or not v.isprintable():
            raise ValueError("reason must be non-empty printable text")
        return v


class SessionCommandRequest(Strict):
    cmd: Literal["start", "pause", "resume", "stop"] = Field(description="session command published on session/command")


class ResetSceneRequest(Strict):
    task: str = Field("", max_length=128, pattern=r"^[A-Za-z0-9_.:/-]*$",
                      description="task id whose start to stage ('' = the forward task of the pair)")
    keep_layout: bool = Field(False, description="move only the task's object, as a person re-staging the scene "
                                                 "would; fixtures, distractors and lighting stay where they are")


class TeleopRequest(Strict):
    action: list[float] = Field(min_length=7, max_length=7,
                                description="[dx, dy, dz, droll, dpitch, dyaw, gripper], each in [-1, 1]; gripper -1 closed, +1 open")

    @field_validator("action")
    @classmethod
    def _in_range(cls, v: list[float]) -> list[float]:
        for i, x in enumerate(v):
            if not math.isfinite(x) or not -1.0 <= x <= 1.0:
                raise ValueError(f"action[{i}] = {x!r} is not a finite number in [-1, 1]")
        return v


# ----------------------------------------------------------------------------- responses
class Ok(BaseModel):
    ok: bool = True
    detail: str = ""


class Health(BaseModel):
    ok: bool
    version: str
    store: bool = Field(description="an episode store is attached")
    robot: bool = Field(description="commands reach a robot (False: store browser only)")
    public_read: bool
    auth_required_for_read: bool = Field(description="whether this client must send the token to read")


class AuthCheck(BaseModel):
    valid: bool


class SegmentOut(BaseModel):
    index: int = Field(description="segment number (what /interventions/{segment} refers to)")
    start: int = Field(description="first step (inclusive)")
    end: int = Field(description="last step (exclusive)")
    reason: str = Field(description="'' until labelled")


class EpisodeSummary(BaseModel):
    id: str = Field(description="'<robot>:<index>'")
    task_id: str
    instruction: str
    phase: str
    n_steps: int
    outcome: Optional[Outcome]
    outcome_source: Optional[str]
    classifier_outcome: Optional[Outcome]
    human_outcome: Optional[Outcome]
    eval: bool
    intervened: bool
    intervention_steps: int
    intervention_segments: list[SegmentOut]
    start_time: Optional[float]
    end_time: Optional[float]
    policy_versions: list[int]
    cameras: list[str]
    robot_id: str


class EpisodeList(BaseModel):
    total: int = Field(description="episodes matching the filter")
    offset: int
    limit: int
    episodes: list[EpisodeSummary]
    tasks: list[str] = Field(description="all task ids in the store (for the filter menu)")


class EpisodeDetail(EpisodeSummary):
    label_history: list[dict[str, Any]]
    series: dict[str, list[Any]] = Field(
        description="per-step arrays: timestamp, success_prob, reward, intervention, policy_version, action")


class LiveSnapshot(BaseModel):
    version: int
    now: float
    session: dict[str, Any]
    session_stamp: Optional[float]
    policy_version: Optional[int] = Field(description="policy the actor runs (session/state), else the learner's newest")
    learner_policy_version: Optional[int] = Field(description="newest checkpoint the learner wrote (learner/policy_version)")
    intervening: bool
    success: Optional[dict[str, Any]]
    arm_status: dict[str, Any]
    ground_truth: dict[str, Any]
    learner: dict[str, Any]
    events: list[dict[str, Any]]
    cameras: dict[str, dict[str, Any]]
    estop_sent: bool = Field(False, description="this dashboard sent an e-stop that it has not cleared")
    web_teleop: bool = Field(False, description="web teleop currently has control")


class SuccessHistory(BaseModel):
    points: list[list[Any]] = Field(description="[t, prob, threshold, task_id] newest last")


class LearnerHistory(BaseModel):
    keys: list[str]
    points: list[dict[str, Any]]


class RatePoint(BaseModel):
    first_episode: str
    last_episode: str
    n_before: int = Field(description="labelled episodes of this kind before this window (x axis)")
    t: Optional[float]
    successes: int
    n: int
    rate: Optional[float]
    lo: float
    hi: float


class LearningStats(BaseModel):
    window: int
    train: list[RatePoint]
    eval: list[RatePoint]
    hourly: list[dict[str, Any]]
    disagreement: dict[str, Any]
    totals: dict[str, Any]
