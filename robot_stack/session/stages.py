"""Cached preparation stages of a session (collect prior data, pre-train, train the classifier).

Each stage writes ``<run_dir>/stages/<name>.json`` last, with the hash of the config it ran with.
A stage is skipped when that file exists with the same hash and the outputs it lists still exist,
so ``robot-stack run`` a second time (or ``--resume``) goes straight to the session, while a
changed config or a deleted output re-runs exactly the stages affected. A stage that needs a
re-run one is re-run as well (its inputs changed); by default a stage needs every stage before it,
but one may name its inputs (``needs``), so a new success classifier does not re-train the policy.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import time
from dataclasses import dataclass
from typing import Any, Callable

from robot_stack.config import hashable_config


@dataclass
class Stage:
    name: str  # file-name-safe stage name, e.g. "collect_prior"
    config: Any  # JSON-serialisable (or dataclass) description of everything the stage depends on
    run: Callable[[pathlib.Path], dict]  # does the work in the run dir; returns a summary with "outputs"
    title: str = ""  # shown to the user
    needs: tuple[str, ...] | None = None  # stages whose outputs it reads (a re-run of one re-runs it); None = every earlier stage


def config_hash(config: Any, run_dir: str | os.PathLike | None = None) -> str:
    """Hash of a stage config (as ``hashable_config``: dataclasses may sit anywhere in it); paths
    inside ``run_dir`` count by their place in it, so a moved or copied run directory keeps its
    cache (an absolute path in the hash re-ran pre-training on ``--resume`` from a moved run,
    publishing a fresh policy over the fine-tuned ones)."""
    config = hashable_config(config)
    blob = json.dumps(_relative_to(config, str(run_dir)) if run_dir is not None else config, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _relative_to(value: Any, root: str) -> Any:
    """``value`` with every string path under ``root`` written as ``<run_dir>/...``."""
    if isinstance(value, dict):
        return {k: _relative_to(v, root) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_relative_to(v, root) for v in value]
    if isinstance(value, str) and (value == root or value.startswith(root + os.sep)):
        return "<run_dir>" + value[len(root):]
    return value


def stage_record_path(run_dir: pathlib.Path, name: str) -> pathlib.Path:
    return run_dir / "stages" / f"{name}.json"


def stage_record(run_dir: pathlib.Path, name: str) -> dict | None:
    """The record a finished stage ``name`` left in ``run_dir`` (None: never finished, or unreadable)."""
    try:
        return json.loads(stage_record_path(run_dir, name).read_text())
    except (OSError, ValueError):
        return None


def write_json_atomic(path: pathlib.Path, data: Any) -> None:
    """Write JSON so a crash leaves either the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def stage_done(run_dir: pathlib.Path, stage: Stage) -> dict | None:
    """The stage's record if it finished with this config and its outputs still exist."""
    record = stage_record(run_dir, stage.name)
    if record is None:
        return None
    if record.get("config_hash") != config_hash(stage.config, run_dir):
        return None
    if not all((run_dir / out).exists() for out in record.get("outputs", [])):
        return None
    return record


def run_stages(run_dir: pathlib.Path, stages: list[Stage], log: Callable[[str], None] = print) -> dict[str, dict]:
    """Run stages in order, skipping the cached ones; returns {name: record}."""
    records: dict[str, dict] = {}
    rerun: set[str] = set()
    for i, stage in enumerate(stages, 1):
        label = f"[{i}/{len(stages)}] {stage.title or stage.name}"
        inputs_changed = bool(rerun if stage.needs is None else rerun & set(stage.needs))
        record = None if inputs_changed else stage_done(run_dir, stage)
        if record is not None:
            log(f"{label}: cached ({record.get('summary_line', 'done')})")
            records[stage.name] = record
            continue
        rerun.add(stage.name)
        log(f"{label} ...")
        t0 = time.monotonic()
        summary = stage.run(run_dir)
        record = {
            "config_hash": config_hash(stage.config, run_dir),
            "seconds": round(time.monotonic() - t0, 2),
            "finished_at": time.time(),
            "outputs": list(summary.pop("outputs", [])),
            **summary,
        }
        write_json_atomic(stage_record_path(run_dir, stage.name), record)
        log(f"{label}: done in {record['seconds']:.1f} s ({record.get('summary_line', '')})")
        records[stage.name] = record
    return records
