"""The one interface every success classifier implements: frames (+ task) in, P(success) out.

numpy at the public edge: images are (B, H, W, 3) uint8 RGB, task ids are str ids or int
indices, probabilities come back as (B,) float32. Families (`cnn`, `vision_encoder`,
`vlm_yesno`) implement a handful of hooks; training loop, calibration, evaluation, validation
and versioned saving live here once.
"""

from __future__ import annotations

import abc
import copy
import dataclasses
import datetime
import hashlib
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from tqdm import tqdm

from reward_vlm import calibration as cal
from reward_vlm.errors import RewardInputError
from reward_vlm.tasks import Task, as_tasks, task_indices

ARTIFACT_FORMAT = "robot_stack.reward_vlm.classifier"
ARTIFACT_FORMAT_VERSION = 1
META_FILE = "classifier.json"
MIN_IMAGE_SIDE = 8


@dataclasses.dataclass
class TrainConfig:
    """How a classifier is fitted on labelled frames."""

    epochs: int = 10  # passes over the labelled frames
    batch_size: int = 64  # frames per optimiser step
    lr: float = 1e-3  # AdamW learning rate
    weight_decay: float = 1e-4  # AdamW weight decay
    cosine: bool = True  # decay the learning rate to 0 along a cosine over the run
    shift_pixels: int = 4  # random-shift augmentation in pixels at the network's input size (0 disables)
    color_jitter: float = 0.1  # brightness/contrast jitter amplitude (0 disables)
    balance_classes: bool = True  # reweight so positives and negatives weigh the same in the loss
    max_steps: int = 0  # stop after this many optimiser steps (0: no limit)
    seed: int = 0  # seed for shuffling and augmentation
    progress: bool = True  # show a tqdm bar on stderr

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay}")
        if self.shift_pixels < 0:
            raise ValueError(f"TrainConfig.shift_pixels must be >= 0, got {self.shift_pixels}")
        if not 0 <= self.color_jitter < 1:
            raise ValueError(f"TrainConfig.color_jitter must be in [0, 1), got {self.color_jitter}")
        if self.max_steps < 0:
            raise ValueError(f"TrainConfig.max_steps must be >= 0, got {self.max_steps}")


@dataclasses.dataclass
class TrainStats:
    """What one `fit` call did."""

    epoch_losses: list[float]  # mean weighted BCE per epoch (on augmented batches)
    steps: int
    n_frames: int
    n_pos: int
    seconds: float


@dataclasses.dataclass
class Prediction:
    """One frame's verdict."""

    task_id: str
    prob: float  # calibrated P(success)
    success: bool  # prob >= threshold
    threshold: float
    rationale: str  # short human-readable reason (VLM text when the family can generate it)


def check_images(images: Any) -> np.ndarray:
    """Validate a batch of frames: np.ndarray uint8 of shape (B, H, W, 3), B >= 1."""
    if not isinstance(images, np.ndarray):
        raise RewardInputError(f"images must be a numpy array (B, H, W, 3) uint8, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise RewardInputError(f"images must be uint8 RGB, got dtype {images.dtype}")
    if images.ndim == 3 and images.shape[-1] == 3:
        raise RewardInputError(f"images must be a batch (B, H, W, 3); got one frame {images.shape}: add a batch axis (images[None])")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise RewardInputError(f"images must have shape (B, H, W, 3) (RGB, channels last), got {images.shape}")
    if images.shape[0] == 0:
        raise RewardInputError("images is an empty batch (B=0)")
    if min(images.shape[1:3]) < MIN_IMAGE_SIDE:
        raise RewardInputError(f"images are {images.shape[1]}x{images.shape[2]} px; need at least {MIN_IMAGE_SIDE} px per side")
    return images


def _sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda when available else cpu; otherwise torch.device(device)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def augment(images: np.ndarray, rng: np.random.Generator, shift: int, jitter: float) -> np.ndarray:
    """Random-shift (replicate-pad then crop, as DrQ/HIL-SERL) and brightness/contrast jitter.

    images: (B, H, W, 3) uint8 -> same shape uint8.
    """
    out = images
    if shift > 0:
        b, h, w, _ = images.shape
        padded = np.pad(images, ((0, 0), (shift, shift), (shift, shift), (0, 0)), mode="edge")
        dy = rng.integers(0, 2 * shift + 1, size=b)
        dx = rng.integers(0, 2 * shift + 1, size=b)
        out = np.stack([padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(b)])
    if jitter > 0:
        b = out.shape[0]
        # brightness/contrast per frame plus a smaller per-channel gain (lighting colour)
        gain = 1.0 + rng.uniform(-jitter, jitter, size=(b, 1, 1, 1)) + rng.uniform(-jitter / 2, jitter / 2, size=(b, 1, 1, 3))
        bias = 255.0 * rng.uniform(-jitter, jitter, size=(b, 1, 1, 1))
        out = np.clip(out.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
    return out


class SuccessClassifier(abc.ABC):
    """P(task done | frame). Subclasses implement the `_hooks`; everything public lives here.

    Attributes kept in the artefact: `tasks`, `temperature` (applied to logits), per-task
    `thresholds`, `version` (incremented by retraining), `parent_version`, `metrics` and `views`.

    `views`: the cameras whose frames were put side by side (`tile_views`, in this order) to make
    each training image; () or one camera means frames of a single camera. A classifier trained
    on several views must be given frames tiled the same way.
    """

    family: ClassVar[str] = ""
    #: frames per forward pass at inference
    inference_batch: int = 64

    def __init__(self, tasks: Sequence[Any], *, device: str = "cpu", temperature: float = 1.0,
                 thresholds: dict[str, float] | None = None, version: int = 1,
                 parent_version: int | None = None, metrics: dict | None = None, views: Sequence[str] = ()) -> None:
        self.tasks: tuple[Task, ...] = as_tasks(tasks)
        self.device = resolve_device(device)
        self.temperature = float(temperature)
        self.thresholds = {t.id: 0.5 for t in self.tasks}
        self.thresholds.update({k: float(v) for k, v in (thresholds or {}).items() if k in self.thresholds})
        self.version = int(version)
        self.parent_version = parent_version
        self.metrics: dict = dict(metrics or {})
        self.views: tuple[str, ...] = tuple(views)

    # ------------------------------------------------------------------ family hooks
    @abc.abstractmethod
    def _forward_logits(self, images: np.ndarray, task_idx: np.ndarray, prepared: bool = False) -> torch.Tensor:
        """Raw success logits (B,) for uint8 frames (B, H, W, 3) and head indices (B,).
        Called under torch.no_grad() at inference and with grad during `fit`, where `prepared`
        says the frames already went through `_training_frames`."""

    @abc.abstractmethod
    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """Parameters `fit` optimises (a head, a projector, or the whole small network)."""

    @abc.abstractmethod
    def _modules(self) -> list[torch.nn.Module]:
        """Torch modules to switch between train() and eval()."""

    @abc.abstractmethod
    def _save_weights(self, directory: pathlib.Path) -> None:
        """Write weights (safetensors) and any model/processor files into `directory`."""

    @abc.abstractmethod
    def _family_config(self) -> dict:
        """JSON-able config that, with the weights, rebuilds this classifier in `_load`."""

    @classmethod
    @abc.abstractmethod
    def _load(cls, directory: pathlib.Path, meta: dict, device: str) -> "SuccessClassifier":
        """Rebuild from an artefact directory whose checksums were already verified."""

    @property
    def model_name(self) -> str:
        """Short description of the model, e.g. for benchmark reports."""
        return self.family

    def _training_frames(self, images: np.ndarray) -> np.ndarray:
        """Frames as the training loop should hold them; families that crop/resize anyway can do
        it once here so augmentation and batching work on small arrays (then `_forward_logits`
        gets prepared=True and must not do it again). Default: unchanged."""
        return images

    def _train_mode(self, on: bool) -> None:
        for m in self._modules():
            m.train(on)

    def _rationale(self, images: np.ndarray, task_idx: np.ndarray, probs: np.ndarray) -> list[str]:
        """Per-frame reasons; families that can explain themselves override this."""
        return [
            f"{self.family}: P(success)={p:.3f} vs threshold {self.thresholds[self.tasks[i].id]:.3f} "
            f"for '{self.tasks[i].instruction}'"
            for p, i in zip(probs, task_idx)
        ]

    # ------------------------------------------------------------------ inference
    @property
    def task_ids(self) -> list[str]:
        return [t.id for t in self.tasks]

    def _inputs(self, images: Any, task_ids: Any) -> tuple[np.ndarray, np.ndarray]:
        images = check_images(images)
        return images, task_indices(self.tasks, task_ids, images.shape[0])

    def logits(self, images: np.ndarray, task_ids: Any) -> np.ndarray:
        """Raw (uncalibrated) success logits, (B,) float32, for frames (B, H, W, 3) uint8."""
        images, idx = self._inputs(images, task_ids)
        return self._logits_np(images, idx)

    def _logits_np(self, images: np.ndarray, idx: np.ndarray) -> np.ndarray:
        self._train_mode(False)
        out = []
        with torch.inference_mode():
            for s in range(0, images.shape[0], self.inference_batch):
                z = self._forward_logits(images[s:s + self.inference_batch], idx[s:s + self.inference_batch])
                out.append(z.detach().float().cpu().numpy())
        z = np.concatenate(out).astype(np.float32)
        if not np.all(np.isfinite(z)):
            raise FloatingPointError(f"{self.family} classifier produced non-finite logits")
        return z

    def predict(self, images: np.ndarray, task_ids: Any) -> np.ndarray:
        """Calibrated P(success), (B,) float32, for frames (B, H, W, 3) uint8 RGB.

        task_ids: one id for the batch or (B,) ids, each a task's str id or int index.
        """
        return cal.sigmoid(self.logits(images, task_ids) / self.temperature).astype(np.float32)

    def thresholds_for(self, task_ids: Any, batch: int) -> np.ndarray:
        """(B,) decision thresholds of the given tasks."""
        idx = task_indices(self.tasks, task_ids, batch)
        return np.array([self.thresholds[self.tasks[i].id] for i in idx], dtype=np.float32)

    def decide(self, images: np.ndarray, task_ids: Any) -> tuple[np.ndarray, np.ndarray]:
        """(probs (B,) float32, success (B,) bool) using each task's calibrated threshold."""
        probs = self.predict(images, task_ids)
        return probs, probs >= self.thresholds_for(task_ids, probs.shape[0])

    def predict_with_rationale(self, images: np.ndarray, task_ids: Any) -> list[Prediction]:
        """One `Prediction` (prob, decision, threshold, rationale) per frame."""
        images, idx = self._inputs(images, task_ids)
        probs = cal.sigmoid(self._logits_np(images, idx) / self.temperature)
        reasons = self._rationale(images, idx, probs)
        out = []
        for p, i, r in zip(probs, idx, reasons):
            tid = self.tasks[i].id
            out.append(Prediction(task_id=tid, prob=float(p), success=bool(p >= self.thresholds[tid]),
                                  threshold=self.thresholds[tid], rationale=r))
        return out

    # ------------------------------------------------------------------ training
    def _check_labels(self, images: Any, labels: Any, task_ids: Any, weights: Any):
        images, idx = self._inputs(images, task_ids)
        y = np.asarray(labels)
        if y.shape != (images.shape[0],):
            raise RewardInputError(f"labels must have shape ({images.shape[0]},), got {y.shape}")
        if not np.all((y == 0) | (y == 1)):
            raise RewardInputError("labels must be 0/1 (or bool)")
        w = np.ones(images.shape[0], np.float32) if weights is None else np.asarray(weights, np.float32)
        if w.shape != (images.shape[0],) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise RewardInputError(f"weights must be finite, >= 0 and of shape ({images.shape[0]},)")
        return images, y.astype(np.float32), idx, w

    def loss(self, images: np.ndarray, labels: np.ndarray, task_ids: Any, weights: np.ndarray | None = None) -> float:
        """Weighted mean BCE of the raw logits (no augmentation, eval mode)."""
        images, y, idx, w = self._check_labels(images, labels, task_ids, weights)
        return cal.nll(self._logits_np(images, idx), y, 1.0, w)

    def fit(self, images: np.ndarray, labels: np.ndarray, task_ids: Any, weights: np.ndarray | None = None,
            cfg: TrainConfig | None = None) -> TrainStats:
        """Train `trainable_parameters()` with weighted BCE on labelled frames.

        images: (N, H, W, 3) uint8; labels: (N,) 0/1; task_ids: (N,) ids; weights: (N,) >= 0
        (e.g. human labels or disagreements weighted up). Does not change temperature/thresholds:
        call `calibrate` on held-out frames afterwards.
        """
        cfg = cfg or TrainConfig()
        images, y, idx, w = self._check_labels(images, labels, task_ids, weights)
        images = self._training_frames(images)
        n = images.shape[0]
        if cfg.balance_classes:
            w = w.copy()
            pos, neg = y == 1, y == 0
            # per task, give positives and negatives equal total weight
            for t in np.unique(idx):
                m = idx == t
                wp, wn = w[m & pos].sum(), w[m & neg].sum()
                if wp > 0 and wn > 0:
                    w[m & pos] *= (wp + wn) / (2 * wp)
                    w[m & neg] *= (wp + wn) / (2 * wn)
        params = self.trainable_parameters()
        if not params:
            raise RuntimeError(f"{self.family} classifier has no trainable parameters")
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        rng = np.random.default_rng(cfg.seed)
        torch.manual_seed(cfg.seed)
        steps_per_epoch = (n + cfg.batch_size - 1) // cfg.batch_size
        total = cfg.epochs * steps_per_epoch if not cfg.max_steps else min(cfg.max_steps, cfg.epochs * steps_per_epoch)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total, 1)) if cfg.cosine else None
        t0, steps, losses = time.perf_counter(), 0, []
        self._train_mode(True)
        bar = tqdm(total=total, desc=f"fit {self.family}", disable=not cfg.progress, file=sys.stderr, leave=False)
        try:
            for _ in range(cfg.epochs):
                perm = rng.permutation(n)
                tot, tot_w = 0.0, 0.0
                for s in range(0, n, cfg.batch_size):
                    b = perm[s:s + cfg.batch_size]
                    batch = augment(images[b], rng, cfg.shift_pixels, cfg.color_jitter)
                    z = self._forward_logits(batch, idx[b], prepared=True).float()
                    yt = torch.as_tensor(y[b], device=z.device)
                    wt = torch.as_tensor(w[b], device=z.device)
                    per = torch.nn.functional.binary_cross_entropy_with_logits(z, yt, reduction="none")
                    loss = (per * wt).sum() / wt.sum().clamp_min(1e-8)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if sched is not None:
                        sched.step()
                    tot += loss.item() * wt.sum().item()
                    tot_w += wt.sum().item()
                    steps += 1
                    bar.update(1)
                    if cfg.max_steps and steps >= cfg.max_steps:
                        break
                losses.append(tot / max(tot_w, 1e-8))
                if cfg.max_steps and steps >= cfg.max_steps:
                    break
        finally:
            bar.close()
            self._train_mode(False)
        return TrainStats(epoch_losses=losses, steps=steps, n_frames=n, n_pos=int(y.sum()), seconds=time.perf_counter() - t0)

    # ------------------------------------------------------------------ calibration / evaluation
    def calibrate(self, images: np.ndarray, labels: np.ndarray, task_ids: Any, target_precision: float = 0.99,
                  fit_temp: bool = True, min_threshold: float = 0.5) -> dict:
        """Fit the temperature and choose each task's threshold for `target_precision` on
        HELD-OUT frames (N, H, W, 3) with 0/1 labels. Stores and returns a summary dict."""
        images, y, idx, _ = self._check_labels(images, labels, task_ids, None)
        z = self._logits_np(images, idx)
        if fit_temp:
            self.temperature = cal.fit_temperature(z, y)
        probs = cal.sigmoid(z / self.temperature)
        per_task = {}
        for i, t in enumerate(self.tasks):
            m = idx == i
            if not m.any():
                # Nothing shows the target precision is reached at any threshold: never say success
                # (a false "done" teaches the policy the wrong thing) until frames are labelled.
                self.thresholds[t.id] = 1.0
                per_task[t.id] = {"threshold": 1.0, "n": 0, "attainable": False,
                                  "note": "no held-out frames: threshold 1.0 (never says success)"}
                continue
            # Without held-out positives the target is unattainable: threshold 1.0, attainable False.
            choice = cal.threshold_for_precision(probs[m], y[m], target_precision, min_threshold)
            self.thresholds[t.id] = choice.threshold
            per_task[t.id] = {**dataclasses.asdict(choice), "n": int(m.sum())}
        summary = {"temperature": self.temperature, "target_precision": target_precision, "tasks": per_task}
        self.metrics["calibration"] = summary
        return summary

    def evaluate(self, images: np.ndarray, labels: np.ndarray, task_ids: Any,
                 reliability_png: str | pathlib.Path | None = None) -> cal.EvalReport:
        """Held-out metrics at each task's threshold (accuracy, precision, recall, FPR, FNR, ECE);
        optionally draw the reliability diagram as a PNG. Stores the summary in `metrics['eval']`."""
        images, y, idx, _ = self._check_labels(images, labels, task_ids, None)
        probs = cal.sigmoid(self._logits_np(images, idx) / self.temperature)
        thr = np.array([self.thresholds[self.tasks[i].id] for i in idx])
        report = cal.evaluate(probs, y, thr)
        if reliability_png is not None:
            cal.reliability_plot_png(report, reliability_png, title=f"{self.model_name} v{self.version}")
        self.metrics["eval"] = report.as_dict()
        return report

    # ------------------------------------------------------------------ persistence
    def copy(self) -> "SuccessClassifier":
        """An independent deep copy (weights included)."""
        return copy.deepcopy(self)

    def meta(self) -> dict:
        return {
            "format": ARTIFACT_FORMAT,
            "format_version": ARTIFACT_FORMAT_VERSION,
            "family": self.family,
            "version": self.version,
            "parent_version": self.parent_version,
            "tasks": [dataclasses.asdict(t) for t in self.tasks],
            "temperature": self.temperature,
            "thresholds": dict(self.thresholds),
            "metrics": self.metrics,
            "views": list(self.views),
            "config": self._family_config(),
        }

    def save(self, directory: str | os.PathLike, overwrite: bool = False) -> pathlib.Path:
        """Write the versioned artefact: weights (safetensors, plus model/processor files for HF
        families) and `classifier.json` (family, tasks, temperature, thresholds, version, metrics,
        sha256 of every file). Written to a temporary sibling first, then renamed into place."""
        directory = pathlib.Path(directory)
        if directory.exists() and any(directory.iterdir()) and not overwrite:
            raise FileExistsError(f"{directory} exists and is not empty (pass overwrite=True to replace it)")
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            self._save_weights(tmp)
            files = {}
            for p in sorted(tmp.rglob("*")):
                if p.is_file():
                    files[p.relative_to(tmp).as_posix()] = {"sha256": _sha256(p), "bytes": p.stat().st_size}
            meta = _json_safe(self.meta())
            meta["files"] = files
            meta["saved_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=_json_default, allow_nan=False))
            if directory.exists():
                shutil.rmtree(directory)
            os.replace(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory


def _json_safe(o: Any) -> Any:
    """Replace NaN/inf by None so classifier.json stays strict JSON (readable from JS)."""
    if isinstance(o, dict):
        return {str(k): _json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_safe(v) for v in o]
    if isinstance(o, (float, np.floating)):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, np.integer):
        return int(o)
    return o


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, pathlib.Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")
