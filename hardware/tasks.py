"""Task descriptions shared by sim scenes, real-robot sessions and the scheduler (no MuJoCo import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Phase = Literal["forward", "backward"]


@dataclass(frozen=True)
class TaskSpec:
    """One direction of a reset-free task pair."""

    id: str  # stable identifier stored with episodes, e.g. "put_cube_in_bowl"
    instruction: str  # natural-language instruction for language-conditioned policies / the VLM
    phase: Phase  # "forward" or "backward" (its reverse)
