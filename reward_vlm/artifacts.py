"""Loading classifiers: versioned artefact directories, bare VLM checkpoints and hub ids.

Everything that can go wrong with a model file is detected here, at start-up: a missing
directory or file, unreadable JSON, an unsupported format, a checksum mismatch, weights that do
not fit the architecture, or a model that produces non-finite output on a test frame.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pathlib
import re
from typing import Any, Sequence

import numpy as np

from reward_vlm.base import ARTIFACT_FORMAT, ARTIFACT_FORMAT_VERSION, META_FILE, SuccessClassifier
from reward_vlm.errors import ClassifierLoadError

#: family name -> "module:Class" (imported lazily so the CNN path never imports transformers)
FAMILIES = {
    "cnn": "reward_vlm.cnn:ConvSuccessClassifier",
    "vision_encoder": "reward_vlm.encoder_head:EncoderHeadClassifier",
    "vlm_yesno": "reward_vlm.vlm_yesno:VlmYesNoClassifier",
}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def family_class(name: str) -> type[SuccessClassifier]:
    if name not in FAMILIES:
        raise ClassifierLoadError(f"unknown classifier family {name!r}; known: {sorted(FAMILIES)}")
    module, cls = FAMILIES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def _verify_files(directory: pathlib.Path, meta: dict) -> None:
    files = meta.get("files")
    if not isinstance(files, dict) or not files:
        raise ClassifierLoadError(f"{directory / META_FILE}: no 'files' list with checksums")
    for rel, info in files.items():
        path = directory / rel
        if not path.is_file():
            raise ClassifierLoadError(f"classifier at {directory} is missing model file {rel!r}")
        if path.stat().st_size != info.get("bytes"):
            raise ClassifierLoadError(
                f"classifier file {path} is corrupt: {path.stat().st_size} bytes, expected {info.get('bytes')}")
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != info.get("sha256"):
            raise ClassifierLoadError(f"classifier file {path} is corrupt: sha256 does not match {META_FILE}")


def read_meta(directory: str | os.PathLike) -> dict:
    """Read and validate `classifier.json` of an artefact directory (no weights loaded)."""
    directory = pathlib.Path(directory)
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        raise ClassifierLoadError(f"{directory} is not a classifier artefact: no {META_FILE}")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ClassifierLoadError(f"{meta_path} is corrupt: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != ARTIFACT_FORMAT:
        raise ClassifierLoadError(f"{meta_path} is not a {ARTIFACT_FORMAT} file")
    if meta.get("format_version") != ARTIFACT_FORMAT_VERSION:
        raise ClassifierLoadError(
            f"{meta_path}: format_version {meta.get('format_version')!r} is not supported (this code reads {ARTIFACT_FORMAT_VERSION})")
    for key in ("family", "version", "tasks", "temperature", "thresholds", "config"):
        if key not in meta:
            raise ClassifierLoadError(f"{meta_path} lacks the field {key!r}")
    if not (isinstance(meta["temperature"], (int, float)) and meta["temperature"] > 0):
        raise ClassifierLoadError(f"{meta_path}: temperature must be > 0, got {meta['temperature']!r}")
    return meta


def _smoke_test(clf: SuccessClassifier, where: str) -> None:
    """One forward pass on a grey frame per task, so a broken model fails at start-up."""
    frames = np.full((len(clf.tasks), 64, 64, 3), 128, np.uint8)
    try:
        p = clf.predict(frames, list(range(len(clf.tasks))))
    except Exception as e:  # noqa: BLE001 - anything here means the model is unusable
        raise ClassifierLoadError(f"classifier from {where} failed its start-up check: {type(e).__name__}: {e}") from e
    if p.shape != (len(clf.tasks),) or not np.all(np.isfinite(p)):
        raise ClassifierLoadError(f"classifier from {where} produced invalid probabilities on a test frame: {p}")


def load_classifier(path_or_hub_id: str | os.PathLike, *, tasks: Sequence[Any] | None = None, device: str = "cpu",
                    check: bool = True, **vlm_kwargs: Any) -> SuccessClassifier:
    """Load a success classifier, failing now (ClassifierLoadError) rather than mid-run.

    - a directory with `classifier.json`: a saved artefact of any family (checksums verified);
    - a directory with a Hugging Face image-text-to-text checkpoint, or a hub id
      ("HuggingFaceTB/SmolVLM-256M-Instruct"): a zero-shot VLM yes/no classifier; `tasks`
      (ids + instructions) is then required. Hub ids honour HF_HUB_OFFLINE.
    `check` runs one forward pass on a test frame. Extra keyword arguments go to
    `VlmYesNoConfig` for the zero-shot case.
    """
    where = str(path_or_hub_id)
    path = pathlib.Path(os.path.expanduser(where))
    if path.is_dir() and (path / META_FILE).exists():
        meta = read_meta(path)
        cls = family_class(meta["family"])
        _verify_files(path, meta)
        try:
            clf = cls._load(path, meta, device)
            clf.views = tuple(meta.get("views") or ())
        except ClassifierLoadError:
            raise
        except Exception as e:  # noqa: BLE001 - wrap library errors with the path that caused them
            raise ClassifierLoadError(f"could not load {meta['family']} classifier from {path}: {type(e).__name__}: {e}") from e
    elif path.is_dir() and (path / "config.json").exists():
        clf = _zero_shot(where, tasks, device, vlm_kwargs)
    elif path.exists():
        raise ClassifierLoadError(f"{path} is neither a classifier artefact ({META_FILE}) nor a Hugging Face model directory")
    elif tasks and _HUB_ID.match(where) and not where.startswith((".", "/", "~")):
        clf = _zero_shot(where, tasks, device, vlm_kwargs)
    else:
        hint = " (a hub id also needs tasks=[(id, instruction), ...])" if _HUB_ID.match(where) else ""
        raise ClassifierLoadError(f"no classifier at {where!r}: no such directory{hint}")
    if check:
        _smoke_test(clf, where)
    return clf


def _zero_shot(model: str, tasks: Sequence[Any] | None, device: str, vlm_kwargs: dict) -> SuccessClassifier:
    if not tasks:
        raise ClassifierLoadError(f"{model} is a bare model: pass tasks=[(id, instruction), ...] to use it as a zero-shot classifier")
    from reward_vlm.vlm_yesno import VlmYesNoClassifier, VlmYesNoConfig

    try:
        return VlmYesNoClassifier(tasks, VlmYesNoConfig(model=model, **vlm_kwargs), device=device)
    except ClassifierLoadError:
        raise
    except Exception as e:  # noqa: BLE001
        raise ClassifierLoadError(f"could not load a VLM from {model!r}: {type(e).__name__}: {e}") from e
