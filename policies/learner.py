"""What every learner shares: device/threads/AMP setup, data-parallel wrapping, state dicts."""

from __future__ import annotations

import contextlib
import os
from typing import Any, Mapping

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from policies.batch import TorchBatch, random_shift, to_pixels, to_torch_batch
from policies.config import LearnerConfig


def resolve_device(name: str) -> torch.device:
    """"auto" -> cuda when available, else cpu; anything else as given (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for but CUDA is not available here")
    return dev


def set_cpu_threads(num_threads: int = 0) -> int:
    """Use every core this process may run on (``0``) or ``num_threads``; returns the count.

    torch defaults to the machine's physical cores, which oversubscribes a container limited
    by affinity/cgroups; the affinity mask is the honest number.
    """
    if num_threads <= 0:
        try:
            num_threads = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            num_threads = os.cpu_count() or 1
    if torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)
    return num_threads


class Learner:
    """Base of the learners: ``update(batch) -> stats``, ``state_dict()``/``load_state_dict()``.

    Subclasses register trainable modules in ``self.modules`` and optimisers in
    ``self.optimizers`` (names are the checkpoint key prefixes) and implement ``_update``.
    Data-parallel: when ``torch.distributed`` is initialised (or ``distributed=True``), the
    modules a loss trains are wrapped in ``DistributedDataParallel`` (one forward with grad per
    backward) and parameters are broadcast from rank 0, so every rank ends every update with the
    same weights; each rank samples its own batch (per-rank batch = ``config.batch_size``).
    """

    kind = "base"

    def __init__(self, config: LearnerConfig, *, distributed: bool | None = None):
        self.config = config
        self.device = resolve_device(config.device)
        if self.device.type == "cpu":
            threads = config.num_threads or (1 if not config.network.image_keys else 0)
            set_cpu_threads(threads)
        self.amp = config.amp == "bf16" or (config.amp == "auto" and self.device.type == "cuda")
        self.distributed = dist.is_available() and dist.is_initialized() if distributed is None else distributed
        if self.distributed and not dist.is_initialized():
            raise RuntimeError("distributed=True but torch.distributed is not initialised (call init_process_group first)")
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.step = 0  # updates done
        self.samples_seen = 0  # transitions consumed by updates (this rank)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(config.seed + 7919 * (dist.get_rank() if self.distributed else 0))

    # ---- helpers for subclasses ------------------------------------------------------------
    def _autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    @property
    def compiled(self) -> bool:
        """Whether ``torch.compile`` is applied (config "on", or "auto" on CUDA)."""
        return self.config.compile == "on" or (self.config.compile == "auto" and self.device.type == "cuda")

    def _compile(self, *modules: nn.Module | None) -> None:
        """``nn.Module.compile()`` in place on the pure-tensor hot spots (conv encoder, critic
        ensemble, actor): state-dict keys stay unchanged, so checkpoints do not depend on it."""
        if self.compiled:
            for m in modules:
                if m is not None:
                    m.compile()

    def _wrap(self, module: nn.Module) -> nn.Module:
        """DDP-wrap ``module`` when distributed (after broadcasting rank 0's weights)."""
        if not self.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.device.index if self.device.index is not None else torch.cuda.current_device()] if self.device.type == "cuda" else None
        return DDP(module, device_ids=ids, forward_sync_buffers=False)

    def _allreduce_grads(self, params) -> None:
        """Average gradients of parameters outside any DDP module (e.g. the temperature)."""
        if not self.distributed:
            return
        world = dist.get_world_size()
        for p in params:
            if p.grad is not None:
                dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                p.grad.div_(world)

    def _broadcast_params(self) -> None:
        if self.distributed:
            for module in self.modules.values():
                for t in list(module.parameters()) + list(module.buffers()):
                    dist.broadcast(t.data, src=0)

    def _clip(self, params) -> None:
        if self.config.calql.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, self.config.calql.grad_clip)

    def _pixels(self, tb: TorchBatch, augment_pad: int, with_next: bool = True) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Augmented float images of obs and next obs, (B, 3n, H, W) each, or (None, None)."""
        if tb.image is None:
            return None, None
        cl = self.config.channels_last
        side = self.config.network.encoder.image_size
        if tb.image.shape[1] != side or tb.image.shape[2] != side:
            raise ValueError(f"batch images are {tuple(tb.image.shape[1:3])}, the encoder expects {side}x{side}")
        pad = augment_pad if self._training else 0
        return (
            to_pixels(random_shift(tb.image, pad, self.generator), cl),
            to_pixels(random_shift(tb.next_image, pad, self.generator), cl) if with_next else None,
        )

    _training = True

    def to_torch(self, batch: Mapping) -> TorchBatch:
        """Move a numpy replay batch to this learner's device (once per batch)."""
        net = self.config.network
        return to_torch_batch(batch, net.image_keys, net.state_dim, self.device)

    # ---- public API ------------------------------------------------------------------------
    def update(self, batch: Mapping) -> dict[str, float]:
        """One gradient update on a replay batch (see ``ReplayBuffer.sample``); returns stats."""
        tb = batch if isinstance(batch, TorchBatch) else self.to_torch(batch)
        net = self.config.network
        if tb.action.shape[-1] != net.chunk_dim:
            raise ValueError(f"batch actions are {tb.action.shape[-1]} wide; the policy outputs {net.action_chunk} x "
                             f"{net.action_dim} = {net.chunk_dim} (sample the replay with action_chunk {net.action_chunk})")
        stats = self._update(tb)
        self.step += 1
        self.samples_seen += len(tb)
        # One device sync for all stats (not one per .item()): matters at hundreds of updates/s on GPU.
        keys = list(stats)
        values = torch.stack([torch.as_tensor(stats[k], dtype=torch.float32, device=self.device).reshape(()) for k in keys])
        return dict(zip(keys, values.tolist()))

    def _update(self, tb: TorchBatch) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def agent(self):
        """An ``Agent`` sharing this learner's current weights (for evaluation in-process)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """{"model": {name: module state}, "optim": {name: optimiser state}, "step", "samples_seen"}."""
        return {
            "model": {name: m.state_dict() for name, m in self.modules.items()},
            "optim": {name: o.state_dict() for name, o in self.optimizers.items()},
            "step": self.step,
            "samples_seen": self.samples_seen,
        }

    def load_state_dict(self, state: Mapping[str, Any], *, load_optimizer: bool = True) -> None:
        """Restore weights (strictly: every module, every key) and, optionally, optimiser state."""
        model = state["model"]
        missing = set(self.modules) - set(model)
        if missing:
            raise KeyError(f"checkpoint lacks module(s) {sorted(missing)} needed by the {self.kind} learner")
        for name, module in self.modules.items():
            module.load_state_dict(model[name], strict=True)
        if load_optimizer and state.get("optim"):
            for name, opt in self.optimizers.items():
                if name not in state["optim"]:
                    raise KeyError(f"checkpoint lacks optimiser state {name!r}")
                try:
                    opt.load_state_dict(state["optim"][name])
                except ValueError as exc:
                    raise OptimizerStateMismatch(f"optimiser state {name!r} does not fit this learner's trainable "
                                                 f"parameters (e.g. its image encoder is no longer frozen): {exc}") from exc
        self.step = int(state.get("step", self.step))
        self.samples_seen = int(state.get("samples_seen", self.samples_seen))

    def train(self, mode: bool = True) -> "Learner":
        self._training = mode
        for m in self.modules.values():
            m.train(mode)
        return self

    def num_parameters(self) -> int:
        return sum(p.numel() for m in self.modules.values() for p in m.parameters())


class OptimizerStateMismatch(ValueError):
    """A checkpoint's optimiser state was saved for another set of trainable parameters; its weights still fit."""


def make_adam(params, lr: float) -> torch.optim.Optimizer:
    """Adam with the fused kernel (one pass over each tensor: matters for the 5M-weight encoder
    projection on CPU as much as on CUDA); falls back to the default where unsupported."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(params, lr=lr)


def seed_everything(seed: int) -> np.random.Generator:
    """Seed torch's global RNG (initialisation) and return a numpy Generator for sampling."""
    torch.manual_seed(seed)
    return np.random.default_rng(seed)
