"""Task descriptions a classifier is conditioned on, and mapping task ids (str or int) to head indices."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Sequence

import numpy as np

from reward_vlm.errors import RewardInputError, UnknownTaskError


@dataclasses.dataclass(frozen=True)
class Task:
    """One task the classifier judges: a stable id and the instruction shown to a VLM."""

    id: str  # stable identifier, e.g. "cube_into_bowl" (matches hardware.sim TaskSpec.id)
    instruction: str  # natural-language instruction, e.g. "put the cube in the bowl"

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"Task.id must be a non-empty string, got {self.id!r}")
        if not isinstance(self.instruction, str) or not self.instruction.strip():
            raise ValueError(f"Task.instruction for {self.id!r} must be a non-empty string")


def as_tasks(tasks: Iterable[Any]) -> tuple[Task, ...]:
    """Normalise tasks given as `Task`, objects with `.id`/`.instruction` (e.g. a sim TaskSpec),
    dicts with those keys or `(id, instruction)` pairs. Ids must be unique and at least one given."""
    out: list[Task] = []
    for t in tasks:
        if isinstance(t, Task):
            out.append(t)
        elif isinstance(t, dict):
            out.append(Task(str(t["id"]), str(t["instruction"])))
        elif hasattr(t, "id") and hasattr(t, "instruction"):
            out.append(Task(str(t.id), str(t.instruction)))
        elif isinstance(t, (tuple, list)) and len(t) == 2:
            out.append(Task(str(t[0]), str(t[1])))
        else:
            raise ValueError(f"cannot read a task from {t!r}: need id and instruction")
    if not out:
        raise ValueError("a classifier needs at least one task")
    ids = [t.id for t in out]
    if len(set(ids)) != len(ids):
        raise ValueError(f"task ids must be unique, got {ids}")
    return tuple(out)


def task_indices(tasks: Sequence[Task], task_ids: Any, batch: int) -> np.ndarray:
    """Map task ids to head indices, shape (batch,) int64.

    `task_ids` is one id for the whole batch or a sequence of `batch` ids; an id is either the
    task's string id or its integer index in `tasks` (the replay buffer's `task` column).
    """
    if isinstance(task_ids, (str, int, np.integer)):
        task_ids = [task_ids] * batch
    if isinstance(task_ids, np.ndarray) and task_ids.ndim != 1:
        raise RewardInputError(f"task_ids must be 1-D, got shape {task_ids.shape}")
    try:
        seq = list(task_ids)
    except TypeError:
        raise RewardInputError(f"task_ids must be an id or a sequence of ids, got {type(task_ids).__name__}") from None
    if len(seq) != batch:
        raise RewardInputError(f"got {len(seq)} task ids for {batch} images")
    by_id = {t.id: i for i, t in enumerate(tasks)}
    out = np.empty(batch, dtype=np.int64)
    for k, tid in enumerate(seq):
        if isinstance(tid, (bool, np.bool_)):
            raise RewardInputError(f"task id {tid!r} is a boolean, expected a task id or index")
        if isinstance(tid, (int, np.integer)):
            if not 0 <= int(tid) < len(tasks):
                raise UnknownTaskError(f"unknown task index {int(tid)}: this classifier knows {len(tasks)} tasks {list(by_id)}")
            out[k] = int(tid)
        elif isinstance(tid, str):
            if tid not in by_id:
                raise UnknownTaskError(f"unknown task {tid!r}: this classifier knows {list(by_id)}")
            out[k] = by_id[tid]
        else:
            raise RewardInputError(f"task id {tid!r} must be a str id or an int index")
    return out
